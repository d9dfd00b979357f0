// The kubelet's pod lifecycle: the pods this node runs (static pods from the manifest
// directory), one PodWorker each, the relist that notices what the runtime did (PLEG, every
// second), and the pods' statuses, published into the object store as an API server would
// reflect them (so standalone Services find their endpoints) and served on /pods; in a
// cluster, also the pods the API server binds to this node, their statuses written back.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <map>
#include <mutex>
#include <set>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "knode/clock.h"
#include "knode/health.h"
#include "knode/runtime.h"
#include "knode/store.h"
#include "pod_runtime.h"
#include "gc/container_gc.h"
#include "pod_worker.h"
#include "cluster/pod_writer.h"
#include "probe_manager.h"

namespace knode::kubelet {

struct KubeletOptions {
  NodeSettings node;
  std::chrono::milliseconds relist_period{1000};
  // The relist must have succeeded this recently for /healthz (upstream's PLEG threshold).
  std::chrono::milliseconds relist_threshold{std::chrono::minutes(3)};
  // Every pod is synced this often even when nothing changed (upstream's syncFrequency).
  std::chrono::milliseconds resync_period{std::chrono::minutes(1)};
  // At start the kubelet reports its pods' status to the store before it counts as synced
  // (so the endpoints a proxy programs first are the real ones), or after this long.
  std::chrono::milliseconds initial_status_timeout{std::chrono::seconds(10)};
  // A cluster: pods also come from the API server (spec.nodeName = this node), and their
  // statuses, final deletions and the static pods' mirrors go to it. Null: standalone,
  // statuses are published into the store.
  ApiPods* api = nullptr;
  EventRecorder* events = nullptr;  // the pods' events, in a cluster
};

class Kubelet final : public PodStateProvider {
 public:
  // The kubelet is a source of the store too: the pods' statuses.
  static constexpr const char* kSourceName = "kubelet";

  Kubelet(boost::asio::io_context& io, ObjectStore& store, runtime::ContainerRuntime& rt, PodEnvironment& env,
          KubeletOptions options, health::HealthRegistry& health, const Clock& clock,
          boost::asio::any_io_executor pool);
  ~Kubelet();

  // Follows the store's pods; relists from now on.
  void start();
  void stop();

  // The pods of this node with their latest status (the read-only port's /pods).
  std::vector<api::Pod> pods() const;
  // Runs on the loop whenever a pod's status changes (probes follow it).
  void on_status_change(std::function<void(const api::Pod&)> fn) { status_hooks_.push_back(std::move(fn)); }
  // What the probes say now (from the loop); the pod's worker acts on it.
  void set_probes(const std::string& pod_uid, ProbeView view);

  size_t pod_count() const { return pods_.size(); }

  // PodStateProvider (container GC, from the pool): a pod the kubelet neither runs nor
  // is terminating may go entirely.
  bool should_pod_content_be_removed(const std::string& uid) const override;
  bool should_pod_runtime_be_removed(const std::string& uid) const override;

 private:
  struct Entry {
    std::shared_ptr<const api::Pod> pod;  // the static pod, with its latest status
    std::shared_ptr<PodWorker> worker;
  };

  void on_pod(const Event& e);
  void on_manifest_pod(const Event& e);
  void on_api_pod(const Event& e);
  void on_mirror_pod(const Event& e);
  void admit(std::shared_ptr<const api::Pod> pod);
  void remove(const std::string& uid, std::shared_ptr<const api::Pod> deleted = nullptr);
  void on_status(const api::Pod& pod, const api::PodStatus& status);
  void publish(const std::shared_ptr<const api::Pod>& pod, const std::shared_ptr<const api::Pod>& old);
  void arm_relist();
  void relisted(Result<Relist> r);
  void adopt_orphans(const Relist& r);
  void maybe_report_synced();
  void restate(const std::string& uid);

  boost::asio::io_context& io_;
  ObjectStore& store_;
  runtime::ContainerRuntime& rt_;
  PodEnvironment& env_;
  KubeletOptions options_;
  health::HealthRegistry& health_;
  const Clock& clock_;
  boost::asio::any_io_executor pool_;
  boost::asio::steady_timer relist_timer_;
  bool stopped_ = false;
  bool relist_in_flight_ = false;

  std::map<std::string, Entry> pods_;                // by UID
  std::map<std::string, std::string> from_manifest_;  // manifest pod "ns/name" -> UID
  std::map<std::string, std::shared_ptr<PodWorker>> terminating_;  // by UID
  std::optional<Relist> last_relist_;
  Clock::SteadyTime last_relist_ok_{};
  Clock::SteadyTime last_resync_{};
  bool inputs_synced_ = false, reported_synced_ = false;
  std::set<std::string> awaiting_status_;  // pods admitted before the first report
  std::set<std::string> has_status_;       // pods that have reported at least once
  // Pods whose conditions in the API differ from the kubelet's (someone else wrote them),
  // and when each was last written again: at most every 10 s per pod (upstream's status
  // sync), whatever writes it back in between, retried from the relist.
  std::set<std::string> overwritten_;
  std::map<std::string, Clock::SteadyTime> restated_;
  boost::asio::steady_timer synced_timer_;
  std::vector<std::function<void(const api::Pod&)>> status_hooks_;
  ProbeManager probes_;
  mutable std::mutex known_mu_;
  std::set<std::string> known_;  // UIDs running or terminating, for other threads
};

}  // namespace knode::kubelet
