// The few functions of the runtime seam (include/knode/runtime.h) that every backend and
// the kubelet share.
#include "knode/runtime.h"

namespace knode::runtime {

const char* to_string(ContainerState s) {
  switch (s) {
    case ContainerState::kCreated: return "CONTAINER_CREATED";
    case ContainerState::kRunning: return "CONTAINER_RUNNING";
    case ContainerState::kExited: return "CONTAINER_EXITED";
    case ContainerState::kUnknown: return "CONTAINER_UNKNOWN";
  }
  return "CONTAINER_UNKNOWN";
}

const char* to_string(CgroupDriver d) {
  switch (d) {
    case CgroupDriver::kCgroupfs: return "cgroupfs";
    case CgroupDriver::kSystemd: return "systemd";
  }
  return "cgroupfs";
}

bool RuntimeStatus::condition(const std::string& type) const {
  bool found = false;
  for (const auto& c : conditions) {
    if (c.type != type) continue;
    if (!c.status) return false;
    found = true;
  }
  return found;
}

}  // namespace knode::runtime
