#include "sync_plan.h"

#include "labels.h"

namespace knode::kubelet {
namespace {

using runtime::ContainerState;

bool running(const ContainerRecord* r) { return r && r->status.state == ContainerState::kRunning; }
bool exited(const ContainerRecord* r) { return r && r->status.state == ContainerState::kExited; }

uint32_t next_attempt(const ContainerRecord* last) { return last ? last->container.metadata.attempt + 1 : 0; }

// As Go prints a time.Duration of whole seconds: "10s", "5m0s".
std::string go_duration(std::chrono::seconds d) {
  auto m = d.count() / 60, sec = d.count() % 60;
  return m > 0 ? std::to_string(m) + "m" + std::to_string(sec) + "s" : std::to_string(sec) + "s";
}

std::string annotation_of(const ContainerRecord& r, const char* key) {
  auto it = r.status.annotations.find(key);
  return it == r.status.annotations.end() ? "" : it->second;
}

// The quantity of `name` in `list`, or nullopt; compared by value ("1" is "1000m").
std::optional<int64_t> milli(const api::ResourceList& list, const std::string& name) {
  auto it = list.find(name);
  if (it == list.end()) return std::nullopt;
  return it->second.milli_value();
}

// The container's resize policy for `resource`: NotRequired unless it says RestartContainer.
bool restart_on_resize(const api::Container& c, const std::string& resource) {
  for (const auto& p : c.resize_policy) {
    if (p.resource_name == resource) return p.restart_policy == "RestartContainer";
  }
  return false;
}

class Planner {
 public:
  Planner(const api::Pod& pod, const PodRuntimeState& st, const SyncInputs& in) : pod_(pod), st_(st), in_(in) {}

  SyncPlan run() {
    if (in_.terminating) {
      plan_.kill_pod = true;
      return plan_;
    }
    if (in_.deadline_exceeded) {
      plan_.kill_pod = true;
      plan_.pod_finished = true;
      return plan_;
    }
    if (!st_.sandbox_ready()) return fresh_sandbox();
    bool init_done = init_containers();
    plan_.initialized = init_done;
    if (init_done && !plan_.pod_finished) app_containers();
    if (!plan_.pod_finished && nothing_will_run()) plan_.pod_finished = true;
    if (!plan_.pod_finished) ephemeral_containers();
    if (plan_.pod_finished) plan_.kill_pod = true;
    return plan_;
  }

 private:
  // No ready sandbox: start over in a new one, unless the pod has run and nothing of it
  // may run again.
  SyncPlan fresh_sandbox() {
    const bool ran_before = !st_.sandboxes.empty() && !st_.containers.empty();
    if (ran_before && pod_.spec.restart_policy == "Never") {
      plan_.pod_finished = true;
      plan_.kill_pod = true;
      return plan_;
    }
    if (ran_before && pod_.spec.restart_policy == "OnFailure" && all_succeeded_before()) {
      plan_.pod_finished = true;
      plan_.kill_pod = true;
      return plan_;
    }
    plan_.kill_pod = !st_.live().empty();
    plan_.create_sandbox = true;
    plan_.sandbox_attempt = st_.sandboxes.empty() ? 0 : st_.sandboxes.front().metadata.attempt + 1;
    if (!pod_.spec.init_containers.empty()) {
      plan_.start.push_back({&pod_.spec.init_containers.front(), true, 0});
    } else {
      for (const auto& c : pod_.spec.containers) plan_.start.push_back({&c, false, 0});
    }
    return plan_;
  }

  bool all_succeeded_before() const {
    for (const auto& c : pod_.spec.containers) {
      const ContainerRecord* last = nullptr;
      for (const auto& r : st_.containers) {
        if (r.container.metadata.name == c.name) {
          last = &r;
          break;
        }
      }
      if (!last || last->status.state != ContainerState::kExited || last->status.exit_code != 0) return false;
    }
    return true;
  }

  // Restarts `c` now, or records why it waits.
  void restart(const api::Container& c, const ContainerRecord* last, bool init) {
    if (last && exited(last) && in_.backoff) {
      auto delay = in_.backoff(c, last->status);
      if (delay) {
        plan_.waiting[c.name] = StartFailure{kCrashLoopBackOff, "back-off " + go_duration(*delay) +
                                                                    " restarting failed container=" + c.name +
                                                                    " pod=" + pod_.metadata.name + "_" +
                                                                    pod_.metadata.namespace_ + "(" +
                                                                    pod_.metadata.uid + ")"};
        return;
      }
    }
    plan_.start.push_back({&c, init, next_attempt(last)});
  }

  // A running container that must go: its liveness or startup probe failed, or its spec
  // changed. True when it was killed.
  bool maybe_kill(const api::Container& c, const ContainerRecord& r) {
    std::string why;
    const std::string bare = annotation_of(r, kContainerHashWithoutResourcesAnnotation);
    const bool spec_changed = !bare.empty() && in_.hash_without_resources
                                  ? bare != in_.hash_without_resources(c)
                                  : in_.hash && annotation_of(r, kContainerHashAnnotation) != in_.hash(c);
    if (in_.probe_failed.count(r.container.id)) {
      why = "its liveness or startup probe failed";
    } else if (spec_changed) {
      why = "its spec changed";
    } else if (auto resized = resize_of(c, r); resized.empty()) {
      return false;
    } else if (resized == "restart") {
      why = "its resize policy restarts it for the new resources";
    } else {
      plan_.resize.push_back({r.container.id, &c});
      return false;
    }
    plan_.kill.push_back({r.container.id, c.name, why});
    return true;
  }

  // "" when the running container has the spec's resources (or they are unknown),
  // "restart" when a changed resource's policy is RestartContainer, "update" otherwise.
  std::string resize_of(const api::Container& c, const ContainerRecord& r) {
    if (!in_.applied) return "";
    auto had = in_.applied(r);
    if (!had) return "";
    auto changed = changed_resources(*had, c.resources);
    if (changed.empty()) return "";
    for (const auto& res : changed) {
      if (restart_on_resize(c, res)) return "restart";
    }
    return "update";
  }

  // Init containers in order; sidecars start and stay. True when every regular one has
  // completed and every sidecar runs.
  bool init_containers() {
    for (const auto& c : pod_.spec.init_containers) {
      const ContainerRecord* last = st_.latest(c.name);
      if (is_sidecar(c)) {
        if (!running(last)) {
          restart(c, last, true);
          return false;
        }
        if (maybe_kill(c, *last)) {
          restart(c, last, true);
          return false;
        }
        if (!in_.started.count(last->container.id)) return false;  // its startup probe gates the next
        continue;
      }
      if (!last) {
        plan_.start.push_back({&c, true, 0});
        return false;
      }
      if (running(last) || last->status.state == ContainerState::kCreated) return false;
      if (last->status.exit_code == 0) continue;
      if (pod_.spec.restart_policy == "Never") {
        plan_.pod_finished = true;  // a failed init container fails the pod
        return false;
      }
      restart(c, last, true);
      return false;
    }
    return true;
  }

  void app_containers() {
    for (const auto& c : pod_.spec.containers) {
      const ContainerRecord* last = st_.latest(c.name);
      if (!last) {
        plan_.start.push_back({&c, false, 0});
        continue;
      }
      if (running(last)) {
        // A killed container exits non-zero: it comes back unless restartPolicy is Never.
        if (maybe_kill(c, *last) && container_should_restart(c, pod_.spec.restart_policy, 1)) {
          plan_.start.push_back({&c, false, next_attempt(last)});
        }
        continue;
      }
      if (last->status.state == ContainerState::kCreated) {
        plan_.start.push_back({&c, false, next_attempt(last)});
        continue;
      }
      if (container_should_restart(c, pod_.spec.restart_policy, last->status.exit_code)) restart(c, last, false);
    }
  }

  // As upstream: each ephemeral container runs once in the pod's sandbox, whenever it is
  // added (init containers need not be done); one that exited stays exited.
  void ephemeral_containers() {
    for (const auto& c : pod_.spec.ephemeral_containers) {
      if (!st_.latest(c.name)) plan_.start.push_back({&c, false, 0, true});
    }
  }

  // Every app container exited for good: the sandbox can go.
  bool nothing_will_run() const {
    if (!plan_.start.empty() || !plan_.waiting.empty() || !plan_.kill.empty() || !plan_.initialized) return false;
    for (const auto& c : pod_.spec.containers) {
      const ContainerRecord* last = st_.latest(c.name);
      if (!last || !exited(last)) return false;
    }
    return true;
  }

  const api::Pod& pod_;
  const PodRuntimeState& st_;
  const SyncInputs& in_;
  SyncPlan plan_;
};

}  // namespace

bool is_sidecar(const api::Container& c) { return c.restart_policy && *c.restart_policy == "Always"; }

std::vector<std::string> changed_resources(const api::ResourceRequirements& had, const api::ResourceRequirements& want) {
  std::vector<std::string> out;
  for (const char* res : {"cpu", "memory"}) {
    if (milli(had.requests, res) != milli(want.requests, res) || milli(had.limits, res) != milli(want.limits, res)) {
      out.push_back(res);
    }
  }
  return out;
}

SyncPlan plan_sync(const api::Pod& pod, const PodRuntimeState& state, const SyncInputs& in) {
  return Planner(pod, state, in).run();
}

}  // namespace knode::kubelet
