// What the runtime holds of the pods knode runs: one pod's sandboxes and containers in
// detail (what a sync decides from), and the cheap listing of everything that the
// relist (PLEG) compares from one second to the next.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "knode/runtime.h"

namespace knode::kubelet {

// A container as listed (which sandbox it is in) with its status.
struct ContainerRecord {
  runtime::Container container;
  runtime::ContainerStatus status;
};

struct PodRuntimeState {
  std::vector<runtime::PodSandbox> sandboxes;       // knode's sandboxes of the pod, newest first
  std::optional<runtime::PodSandboxStatus> sandbox;  // the newest one's status
  std::vector<ContainerRecord> containers;           // every container of the pod, newest first

  bool sandbox_ready() const { return sandbox && sandbox->state == runtime::SandboxState::kReady; }
  // Attempts of container `name` in the newest sandbox, newest first.
  std::vector<const ContainerRecord*> attempts(const std::string& name) const;
  const ContainerRecord* latest(const std::string& name) const;
  // Containers (of any sandbox) that are running or created.
  std::vector<const ContainerRecord*> live() const;
};

// The statuses a pod's worker has read, each kept while its sandbox or container stays in
// the state it was read in: what a status says does not change without the state changing
// (a sandbox's IP and namespaces, a container's start, image and log path; an exit's code
// and reason are final, but for a SIGKILL exit that may yet be called OOMKilled, and a ready
// sandbox still without an IP: those are asked again), and the lists show the state. So a
// pod whose runtime objects did
// not move costs two list calls, not a status call per object (upstream's PLEG likewise
// inspects only what changed).
struct StatusCache {
  std::map<std::string, runtime::PodSandboxStatus> sandboxes;  // by ID
  std::map<std::string, runtime::ContainerStatus> containers;  // by ID
  // Keeps a sandbox's status, unless it is ready on the pod network without an address.
  void remember(const runtime::PodSandboxStatus& status);
  // Keeps a container's status, unless it exited by SIGKILL without the OOMKilled reason
  // (which may still come).
  void remember(const runtime::ContainerStatus& status);
};

// Every sandbox and container the kubelet created for the pod, with statuses. With a
// cache, a status is asked only for what is new or changed state; entries of objects gone
// from the lists are dropped.
Result<PodRuntimeState> read_pod_state(runtime::ContainerRuntime& rt, const std::string& pod_uid,
                                       StatusCache* cache = nullptr);

// One pod in a relist: its sandboxes' and containers' states.
struct PodSnapshot {
  std::string name, ns;  // from the sandbox's labels
  std::map<std::string, runtime::SandboxState> sandboxes;
  std::map<std::string, runtime::ContainerState> containers;
  bool operator==(const PodSnapshot&) const = default;
};
using Relist = std::map<std::string, PodSnapshot>;  // by pod UID

// The states a read of one pod found, as a relist would list them (name and namespace
// left empty): what the pod's worker last acted on.
PodSnapshot snapshot_of(const PodRuntimeState& st);
// The same sandboxes and containers in the same states (names aside).
inline bool same_objects(const PodSnapshot& a, const PodSnapshot& b) {
  return a.sandboxes == b.sandboxes && a.containers == b.containers;
}

// Whether `after` differs from `before` only by what a sync starts: sandboxes and
// containers of `before` in the same states, new sandboxes ready, new containers created
// or running.
bool only_what_was_started(const PodRuntimeState& before, const PodRuntimeState& after);

// Two list calls: every sandbox and container the kubelet created.
Result<Relist> relist(runtime::ContainerRuntime& rt);

// The pods whose snapshot differs between two relists (added, changed or gone).
std::vector<std::string> changed_pods(const Relist& before, const Relist& after);

}  // namespace knode::kubelet
