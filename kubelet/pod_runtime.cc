#include "pod_runtime.h"

#include <algorithm>
#include <cerrno>

#include "labels.h"

namespace knode::kubelet {
std::vector<const ContainerRecord*> PodRuntimeState::attempts(const std::string& name) const {
  std::vector<const ContainerRecord*> out;
  if (sandboxes.empty()) return out;
  for (const auto& c : containers) {
    if (c.container.metadata.name == name && c.container.pod_sandbox_id == sandboxes.front().id) out.push_back(&c);
  }
  return out;
}

const ContainerRecord* PodRuntimeState::latest(const std::string& name) const {
  auto all = attempts(name);
  return all.empty() ? nullptr : all.front();
}

std::vector<const ContainerRecord*> PodRuntimeState::live() const {
  std::vector<const ContainerRecord*> out;
  for (const auto& c : containers) {
    auto s = c.status.state;
    if (s == runtime::ContainerState::kRunning || s == runtime::ContainerState::kCreated) out.push_back(&c);
  }
  return out;
}

Result<PodRuntimeState> read_pod_state(runtime::ContainerRuntime& rt, const std::string& pod_uid,
                                       StatusCache* cache) {
  runtime::Labels selector = {{kPodUidLabel, pod_uid}};
  PodRuntimeState st;
  auto sandboxes = rt.list_pod_sandboxes({.label_selector = selector});
  if (!sandboxes.ok()) return sandboxes.status();
  st.sandboxes = std::move(*sandboxes);
  std::sort(st.sandboxes.begin(), st.sandboxes.end(), [](const auto& a, const auto& b) {
    return a.metadata.attempt != b.metadata.attempt ? a.metadata.attempt > b.metadata.attempt
                                                    : a.created_at > b.created_at;
  });
  if (cache) {
    std::erase_if(cache->sandboxes, [&](const auto& e) {
      return st.sandboxes.empty() || e.first != st.sandboxes.front().id;  // only the newest one is read
    });
  }
  if (!st.sandboxes.empty()) {
    const auto& newest = st.sandboxes.front();
    const runtime::PodSandboxStatus* cached = nullptr;
    if (cache) {
      auto hit = cache->sandboxes.find(newest.id);
      if (hit != cache->sandboxes.end() && hit->second.state == newest.state) cached = &hit->second;
    }
    if (cached) {
      st.sandbox = *cached;
    } else {
      auto status = rt.pod_sandbox_status(newest.id);
      if (status.ok()) {
        st.sandbox = std::move(*status);
        if (cache) cache->remember(*st.sandbox);
      } else if (status.status().error_number() != ENOENT) {
        return status.status();
      }
    }
  }
  auto containers = rt.list_containers({.label_selector = selector});
  if (!containers.ok()) return containers.status();
  if (cache) {
    std::erase_if(cache->containers, [&](const auto& e) {
      return std::none_of(containers->begin(), containers->end(), [&](const auto& c) { return c.id == e.first; });
    });
  }
  for (auto& c : *containers) {
    if (cache) {
      if (auto hit = cache->containers.find(c.id); hit != cache->containers.end() && hit->second.state == c.state) {
        runtime::ContainerStatus status = hit->second;
        st.containers.push_back({std::move(c), std::move(status)});
        continue;
      }
    }
    auto status = rt.container_status(c.id);
    if (!status.ok()) {
      if (status.status().error_number() == ENOENT) continue;  // removed meanwhile
      return status.status();
    }
    if (cache) cache->remember(*status);
    st.containers.push_back({std::move(c), std::move(*status)});
  }
  // Newest first: by attempt (a container's restart count), then by creation time.
  std::sort(st.containers.begin(), st.containers.end(), [](const auto& a, const auto& b) {
    if (a.container.metadata.attempt != b.container.metadata.attempt) {
      return a.container.metadata.attempt > b.container.metadata.attempt;
    }
    return a.container.created_at > b.container.created_at;
  });
  return st;
}

PodSnapshot snapshot_of(const PodRuntimeState& st) {
  PodSnapshot out;
  for (const auto& s : st.sandboxes) out.sandboxes[s.id] = s.state;
  for (const auto& c : st.containers) out.containers[c.container.id] = c.container.state;
  return out;
}

void StatusCache::remember(const runtime::PodSandboxStatus& status) {
  // A ready sandbox on the pod network without an address (a runtime that could not tell
  // yet: the Docker backend after a restart) is asked again next time.
  if (status.state == runtime::SandboxState::kReady && status.ip.empty() &&
      status.namespaces.network != runtime::NamespaceMode::kNode) {
    sandboxes.erase(status.id);
    return;
  }
  sandboxes[status.id] = status;
}

void StatusCache::remember(const runtime::ContainerStatus& status) {
  // A SIGKILL exit not (yet) called OOMKilled is asked again: a runtime learns of an OOM
  // kill from an event of its own, which can come after the exit (dockerd does so).
  if (status.state == runtime::ContainerState::kExited && status.exit_code == 137 && status.reason != "OOMKilled") {
    containers.erase(status.id);
    return;
  }
  containers[status.id] = status;
}

bool only_what_was_started(const PodRuntimeState& before, const PodRuntimeState& after) {
  const PodSnapshot b = snapshot_of(before);
  for (const auto& sb : after.sandboxes) {
    auto it = b.sandboxes.find(sb.id);
    if (it != b.sandboxes.end() ? it->second != sb.state : sb.state != runtime::SandboxState::kReady) return false;
  }
  for (const auto& c : after.containers) {
    const auto s = c.container.state;
    auto it = b.containers.find(c.container.id);
    if (it != b.containers.end() ? it->second != s
                                 : s != runtime::ContainerState::kRunning && s != runtime::ContainerState::kCreated) {
      return false;
    }
  }
  return true;
}

Result<Relist> relist(runtime::ContainerRuntime& rt) {
  auto sandboxes = rt.list_pod_sandboxes();
  if (!sandboxes.ok()) return sandboxes.status();
  auto containers = rt.list_containers();
  if (!containers.ok()) return containers.status();
  Relist out;
  for (const auto& s : *sandboxes) {
    if (!created_by_kubelet(s.labels)) continue;
    auto& p = out[label_or_empty(s.labels, kPodUidLabel)];
    p.name = s.metadata.name;
    p.ns = s.metadata.ns;
    p.sandboxes[s.id] = s.state;
  }
  for (const auto& c : *containers) {
    if (!created_by_kubelet(c.labels)) continue;
    out[label_or_empty(c.labels, kPodUidLabel)].containers[c.id] = c.state;
  }
  return out;
}

std::vector<std::string> changed_pods(const Relist& before, const Relist& after) {
  std::vector<std::string> out;
  for (const auto& [uid, snap] : after) {
    auto it = before.find(uid);
    if (it == before.end() || !(it->second == snap)) out.push_back(uid);
  }
  for (const auto& [uid, snap] : before) {
    if (!after.count(uid)) out.push_back(uid);
  }
  return out;
}

}  // namespace knode::kubelet
