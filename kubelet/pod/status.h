// The PodStatus a kubelet reports, computed as upstream's generateAPIPodStatus does from
// the pod, what the runtime and the probes observed, and the status reported last:
// container statuses (waiting, running, terminated, lastState), the phase (getPhase,
// init containers and sidecars included), the kubelet's conditions with their reasons and
// messages, IPs and the QoS class.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "knode/api/pod.h"

namespace knode::kubelet {

// Waiting reasons the kubelet itself writes.
inline constexpr char kContainerCreating[] = "ContainerCreating";
inline constexpr char kPodInitializing[] = "PodInitializing";
inline constexpr char kCrashLoopBackOff[] = "CrashLoopBackOff";
inline constexpr char kCreateContainerConfigError[] = "CreateContainerConfigError";
// Condition reasons.
inline constexpr char kContainersNotReady[] = "ContainersNotReady";
inline constexpr char kContainersNotInitialized[] = "ContainersNotInitialized";
inline constexpr char kPodCompleted[] = "PodCompleted";
inline constexpr char kPodFailedReason[] = "PodFailed";
// A pod active longer than its spec.activeDeadlineSeconds: phase Failed, this reason.
inline constexpr char kDeadlineExceeded[] = "DeadlineExceeded";
inline constexpr char kDeadlineExceededMessage[] = "Pod was active on the node longer than the specified deadline";

enum class ContainerRunState { kCreated, kRunning, kExited, kUnknown };

// One attempt of a container as the runtime reports it, with what its probes say.
struct ObservedContainer {
  std::string name;
  ContainerRunState state = ContainerRunState::kUnknown;
  std::string container_id;  // "<scheme>://<id>"
  std::string image, image_id;
  int32_t exit_code = 0;
  // The runtime's termination reason and message; an empty reason becomes "Completed" for
  // exit code 0 and "Error" otherwise, as containerd reports them ("OOMKilled" is kept).
  std::string reason, message;
  api::Time created_at, started_at, finished_at;
  int32_t restart_count = 0;
  bool started = false;  // startup probe passed, or none (see probed_state)
  bool ready = false;    // readiness probe passed, or none
  // What a running container's cgroup has (status.containerStatuses[].resources); nullopt
  // when unknown, and then the spec's.
  std::optional<api::ResourceRequirements> resources;
};

// Why the kubelet could not start a container on its last try: the waiting reason and
// message it shows until the next start (ErrImagePull, ImagePullBackOff, CrashLoopBackOff,
// CreateContainerConfigError, ...).
struct StartFailure {
  std::string reason, message;
};

struct PodObservation {
  // Every attempt the runtime still has of the pod's containers in its current sandbox,
  // init containers included, in any order; the newest attempt of a name is its state,
  // the one before it its lastState.
  std::vector<ObservedContainer> containers;
  std::map<std::string, StartFailure> start_failures;  // by container name
  bool sandbox_ready = false;                          // a sandbox with its network exists
  std::vector<std::string> pod_ips;                    // as the sandbox reports them
  std::vector<std::string> host_ips;
  // The pod worker decided the pod is finished (its containers will not run again).
  bool pod_is_terminal = false;
  // ... because it outlived spec.activeDeadlineSeconds (it then fails, whatever its
  // containers' exit codes).
  bool deadline_exceeded = false;
};

// `previous` is the status reported last (the pod's own status when none); `now` stamps
// conditions that change and the start time. The status and the kubelet's conditions
// carry the pod's metadata.generation as observedGeneration.
api::PodStatus generate_pod_status(const api::Pod& pod, const PodObservation& observed,
                                   const api::PodStatus& previous, const api::Time& now);

// The building blocks, exposed for the pod worker and for tests.

// Whether a container that exited with `exit_code` runs again: its own restartPolicy
// when it has one, else the pod's (Always; OnFailure on a non-zero code; Never).
bool container_should_restart(const api::Container& c, const std::string& pod_restart_policy,
                              int32_t exit_code);

// getPhase: `statuses` holds the init and regular container statuses; `has_initialized`
// says a regular container has been created in the current sandbox.
std::string pod_phase(const api::Pod& pod, const std::vector<api::ContainerStatus>& statuses,
                      bool pod_is_terminal, bool has_initialized);

// The statuses of `containers` (the pod's init or regular containers).
std::vector<api::ContainerStatus> container_statuses(
    const api::Pod& pod, const PodObservation& observed,
    const std::vector<api::ContainerStatus>& previous, bool init);

// The statuses of spec.ephemeralContainers, in their order.
std::vector<api::ContainerStatus> ephemeral_container_statuses(
    const api::Pod& pod, const PodObservation& observed, const std::vector<api::ContainerStatus>& previous);

api::PodCondition initialized_condition(const api::Pod& pod,
                                        const std::vector<api::ContainerStatus>& statuses,
                                        const std::string& phase);
api::PodCondition containers_ready_condition(const api::Pod& pod,
                                             const std::vector<api::ContainerStatus>& statuses,
                                             const std::string& phase);
api::PodCondition ready_condition(const api::Pod& pod,
                                  const std::vector<api::ContainerStatus>& statuses,
                                  const std::string& phase);

}  // namespace knode::kubelet
