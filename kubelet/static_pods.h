// The kubelet's view of the pods this node should run, from its pod sources. This wave
// of knode tracks them (and serves the kubelet health endpoint); running them through a
// container runtime comes with the kubelet work.
#pragma once

#include <map>
#include <string>

#include "knode/store.h"

namespace knode::kubelet {

class StaticPods {
 public:
  StaticPods(ObjectStore& store, std::string node_name);
  void start();
  size_t count() const { return pods_.size(); }

 private:
  void on_pod(const Event& e);
  bool for_this_node(const api::Pod& pod) const;

  ObjectStore& store_;
  std::string node_;
  std::map<std::string, api::ObjectPtr> pods_;  // "ns/name"
};

}  // namespace knode::kubelet
