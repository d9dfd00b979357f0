// Standalone mode's EndpointSlice controller. Without an API server nobody runs
// kube-controller-manager, so this controller does its endpointslice part on the node:
// it reads Services, Pods (with the status the kubelet publishes) and Nodes (for zones)
// from the object store, and writes the EndpointSlices of every Service with a selector
// back into the same store, where the proxy reads them as it reads any other slice.
//
// Ownership: the controller writes, changes and deletes only the slices it created (it
// remembers them; the managed-by label is informational, since a manifest could carry it
// too). Slices from manifests are never touched, even for a service with a selector: the
// proxy merges them with the computed ones, as kube-proxy merges every slice labelled for a
// service. A computed slice never takes a name the store already holds; if a manifest later
// defines a slice under one of its names, the manifest's slice stays and the computed one
// moves to a fresh name.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "knode/store.h"
#include "standalone/desired_slices.h"

namespace knode::kubelet {

struct EndpointSliceControllerOptions {
  // Pods without spec.nodeName run on this node (standalone: every pod in the store does).
  std::string node_name;
  size_t max_endpoints_per_slice = kDefaultMaxEndpointsPerSlice;
};

class EndpointSliceController {
 public:
  // The name it syncs under in the store (ObjectStore::expect_source / on_synced).
  static constexpr const char* kSourceName = "endpointslice-controller";

  EndpointSliceController(ObjectStore& store, EndpointSliceControllerOptions options);
  EndpointSliceController(const EndpointSliceController&) = delete;
  EndpointSliceController& operator=(const EndpointSliceController&) = delete;

  // Subscribes to the store and registers as one of its sources. The sources the store
  // still expects at this point are the controller's inputs: it computes every service's
  // slices once they have all synced, then reports its own sync, so the store's "synced"
  // (and the proxy's first sync) includes the computed slices. Call it before the sources
  // start. The store keeps handlers into this object: it must outlive the store's events.
  void start();

  bool synced() const { return synced_; }
  // Slices this controller holds in the store now.
  size_t slice_count() const { return slice_owner_.size(); }

 private:
  using SliceMap = std::map<std::string, api::ObjectPtr>;  // slice name -> as emitted

  void initial_sync();
  void on_service(const Event& e);
  void on_pod(const Event& e);
  void on_node(const Event& e);
  void on_slice(const Event& e);
  void reconcile(const std::string& service_key);
  void publish(const std::string& service_key, const std::string& ns,
               std::vector<api::EndpointSlice> desired);
  void report(const std::string& service_key, std::vector<std::string> problems);
  void track_members(const std::string& service_key, std::set<std::string> pods);
  std::optional<std::string> zone_of(const std::string& node) const;

  ObjectStore& store_;
  EndpointSliceControllerOptions options_;
  bool computing_ = false;  // the inputs synced: events now reconcile
  bool synced_ = false;

  // Inputs, indexed the way a reconcile reads them.
  std::map<std::string, std::map<std::string, api::ObjectPtr>> services_;  // ns -> name -> Service
  std::map<std::string, std::map<std::string, api::ObjectPtr>> pods_;      // ns -> name -> Pod
  std::map<std::string, std::string> zones_;                               // node -> zone
  // Which services' slices hold each pod ("ns/pod" -> "ns/service"), so a pod that left a
  // selector is removed without knowing its old labels.
  std::map<std::string, std::set<std::string>> pod_services_;
  std::map<std::string, std::set<std::string>> service_pods_;

  // What this controller put into the store.
  std::map<std::string, SliceMap> owned_;                     // "ns/service" -> its slices
  std::map<std::string, std::string> slice_owner_;            // "ns/slice" -> "ns/service"
  std::map<std::string, std::vector<std::string>> problems_;  // last reported, per service
};

}  // namespace knode::kubelet
