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

// Every sandbox and container the kubelet created for the pod, with statuses.
Result<PodRuntimeState> read_pod_state(runtime::ContainerRuntime& rt, const std::string& pod_uid);

// One pod in a relist: its sandboxes' and containers' states.
struct PodSnapshot {
  std::string name, ns;  // from the sandbox's labels
  std::map<std::string, runtime::SandboxState> sandboxes;
  std::map<std::string, runtime::ContainerState> containers;
  bool operator==(const PodSnapshot&) const = default;
};
using Relist = std::map<std::string, PodSnapshot>;  // by pod UID

// Two list calls: every sandbox and container the kubelet created.
Result<Relist> relist(runtime::ContainerRuntime& rt);

// The pods whose snapshot differs between two relists (added, changed or gone).
std::vector<std::string> changed_pods(const Relist& before, const Relist& after);

}  // namespace knode::kubelet
