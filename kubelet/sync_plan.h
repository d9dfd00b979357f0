// What one sync of a pod does, decided from the spec and what the runtime holds, as the
// upstream kubelet's computePodActions decides it: whether the pod needs a (new) sandbox,
// which init container runs next, which containers start, which are killed and why, which
// wait in back-off, and whether the pod is finished. Pure: the pod worker executes it.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "knode/api/pod.h"
#include "pod/status.h"
#include "pod_runtime.h"

namespace knode::kubelet {

struct ContainerStart {
  const api::Container* spec = nullptr;
  bool init = false;
  uint32_t attempt = 0;  // the new container's restart count
  bool ephemeral = false;  // from spec.ephemeralContainers: started once, never restarted
};

struct ContainerKill {
  std::string id;  // runtime ID
  std::string name;
  std::string reason;  // for the log: "liveness probe failed", "spec changed", ...
};

// An in-place resize of a running container: its cgroup gets the spec's resources.
struct ContainerResize {
  std::string id;
  const api::Container* spec = nullptr;
};

struct SyncPlan {
  // Stop every container and the sandbox (the pod is going, or its sandbox must be
  // recreated, or nothing of it will run again).
  bool kill_pod = false;
  bool create_sandbox = false;
  uint32_t sandbox_attempt = 0;
  std::vector<ContainerKill> kill;
  std::vector<ContainerStart> start;  // in order: at most one init container, or sidecars and app containers
  std::vector<ContainerResize> resize;  // running containers whose resources changed in place
  std::map<std::string, StartFailure> waiting;  // containers held back (CrashLoopBackOff)
  bool initialized = false;  // every regular init container completed
  // The pod's containers will not run again (restartPolicy Never/OnFailure, all done).
  bool pod_finished = false;
};

struct SyncInputs {
  bool terminating = false;  // the pod is being removed
  // The pod outlived spec.activeDeadlineSeconds: kill it; nothing of it runs again.
  bool deadline_exceeded = false;
  // Containers (runtime IDs) whose liveness or startup probe failed: restart them.
  std::set<std::string> probe_failed;
  // Containers (runtime IDs) that count as started (startup probe passed or none).
  std::set<std::string> started;
  // The back-off container `c`, which exited as `last`, is in (upstream's message shows
  // the whole delay), or nullopt when it may restart now (which counts as a restart).
  std::function<std::optional<std::chrono::seconds>(const api::Container&, const runtime::ContainerStatus& last)>
      backoff;
  // The spec hash of a container, as carried in kContainerHashAnnotation, and without its
  // resources, as in kContainerHashWithoutResourcesAnnotation: a container that carries
  // the second is compared by it, so a change of resources alone is a resize, not a new
  // container (one created before knode knew resizes is compared by the first).
  std::function<std::string(const api::Container&)> hash, hash_without_resources;
  // The resources a running container's cgroup has (the last resize's or those it was
  // created with); nullopt when unknown, which leaves it alone.
  std::function<std::optional<api::ResourceRequirements>(const ContainerRecord&)> applied;
};

// The resources ("cpu", "memory") whose requests or limits differ between two sets.
std::vector<std::string> changed_resources(const api::ResourceRequirements& had, const api::ResourceRequirements& want);

SyncPlan plan_sync(const api::Pod& pod, const PodRuntimeState& state, const SyncInputs& in);

// A sidecar: an init container with restartPolicy Always.
bool is_sidecar(const api::Container& c);

}  // namespace knode::kubelet
