// Garbage collection of dead containers, sandboxes and pod log directories, as
// upstream's containerGC (pkg/kubelet/kuberuntime/kuberuntime_gc.go):
//
// - Containers that are not running and older than MinAge are grouped per evict unit
//   (pod UID, container name), newest first. Those of pods whose content may go
//   (deleted) are all removed once every pod source has synced; then each unit keeps its
//   newest MaxPerPodContainer; then, if MaxContainers is set, the total is brought down
//   to it (evenly per unit first, then oldest first). A container in an unknown state is
//   stopped before it is removed. Its log files and /var/log/containers symlink go first
//   (LogManager::clean); if they cannot, the container stays for the next round.
// - Sandboxes that are not ready and hold no containers are removed, all of them once the
//   pod is gone, all but the newest while it exists (a newer sandbox replaced them).
// - Pod log directories under /var/log/pods of pods whose content may go are removed,
//   once every source has synced.
//
// Only sandboxes and containers the kubelet created are touched: those carrying
// kPodUidLabel (labels.h). Upstream's kubelet treats the runtime's whole namespace as its
// own; knode leaves containers made by crictl or anyone else alone.
//
// The kubelet runs garbage_collect() every minute (ContainerGCPeriod), from one thread at a
// time.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "knode/clock.h"
#include "knode/runtime.h"
#include "knode/status.h"
#include "logs/log_manager.h"

namespace knode::kubelet {

inline constexpr auto kContainerGcPeriod = std::chrono::minutes(1);

// upstream's kubecontainer.GCPolicy, with the kubelet's defaults.
struct ContainerGcPolicy {
  // --minimum-container-ttl-duration: a dead container younger than this stays.
  std::chrono::seconds min_age{0};
  // --maximum-dead-containers-per-container: dead containers kept per (pod, container
  // name); negative: no limit.
  int max_per_pod_container = 1;
  // --maximum-dead-containers: dead containers kept on the node; negative: no limit.
  int max_containers = -1;
};

// What the pod workers know of a pod, by UID (upstream's podStateProvider).
class PodStateProvider {
 public:
  virtual ~PodStateProvider() = default;
  // Whether everything of the pod may go: its containers, sandboxes and logs. True for a
  // pod that was deleted and has terminated, and for a UID the kubelet does not know.
  virtual bool should_pod_content_be_removed(const std::string& uid) const = 0;
  // Whether the pod's containers and sandboxes may go (it terminated), though the pod
  // itself still exists: the eviction manager's case.
  virtual bool should_pod_runtime_be_removed(const std::string& uid) const = 0;
};

class ContainerGc {
 public:
  ContainerGc(runtime::ContainerRuntime& runtime, const Clock& clock, const PodStateProvider& pods,
              LogManager& logs, ContainerGcPolicy policy = {});

  // One round. `all_sources_ready`: every pod source has synced, so a pod the kubelet
  // does not know is really gone. `evict_non_deleted_pods`: also remove what
  // terminated pods left (under disk pressure). Continues past failures and reports them.
  Status garbage_collect(bool all_sources_ready, bool evict_non_deleted_pods = false);

 private:
  struct Dead {
    std::string id, name;
    runtime::UnixNanos created_at = 0;
    bool unknown = false;
    int64_t grace_seconds = 0;
  };
  using Unit = std::vector<Dead>;  // newest first

  Status evict_containers(bool all_sources_ready, bool evict_non_deleted_pods);
  Status evict_sandboxes(bool evict_non_deleted_pods);
  Status evict_pod_log_directories(bool all_sources_ready);
  bool may_remove_pod(const std::string& uid, bool evict_non_deleted_pods) const;
  // Removes the oldest `n` of `unit` and returns the rest (as if all went, so that a
  // failure does not make the next step remove more).
  Unit remove_oldest(Unit unit, size_t n);
  void remove_container(const Dead& c);

  runtime::ContainerRuntime& runtime_;
  const Clock& clock_;
  const PodStateProvider& pods_;
  LogManager& logs_;
  ContainerGcPolicy policy_;
  std::vector<std::string> errors_;  // of the round in progress
};

}  // namespace knode::kubelet
