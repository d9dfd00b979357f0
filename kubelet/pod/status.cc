#include "pod/status.h"

#include <algorithm>

#include "pod/env.h"
#include "pod/resources.h"
#include "pod/static_pod.h"

namespace knode::kubelet {
namespace {

constexpr char kStatusUnknown[] = "ContainerStatusUnknown";
constexpr int32_t kKilledExitCode = 137;

bool is_sidecar(const api::Container& c) { return c.restart_policy.value_or("") == "Always"; }

const api::ContainerStatus* find_status(const std::vector<api::ContainerStatus>& v,
                                        const std::string& name) {
  auto it = std::find_if(v.begin(), v.end(), [&](const auto& s) { return s.name == name; });
  return it == v.end() ? nullptr : &*it;
}

// The attempts of one container, newest first.
std::vector<const ObservedContainer*> attempts_of(const PodObservation& o,
                                                  const std::string& name) {
  std::vector<const ObservedContainer*> out;
  for (const auto& c : o.containers) {
    if (c.name == name) out.push_back(&c);
  }
  std::stable_sort(out.begin(), out.end(), [](const auto* a, const auto* b) {
    return a->created_at.unix_nanos() > b->created_at.unix_nanos();
  });
  return out;
}

const ObservedContainer* latest(const PodObservation& o, const std::string& name) {
  auto attempts = attempts_of(o, name);
  return attempts.empty() ? nullptr : attempts.front();
}

std::string termination_reason(const ObservedContainer& c) {
  if (!c.reason.empty()) return c.reason;
  return c.exit_code == 0 ? "Completed" : "Error";
}

api::ContainerStatus convert(const ObservedContainer& cs, const api::ContainerStatus* old) {
  api::ContainerStatus s;
  s.name = cs.name;
  s.restart_count = cs.restart_count;
  s.image = cs.image;
  s.image_id = cs.image_id;
  s.container_id = cs.container_id;
  switch (cs.state) {
    case ContainerRunState::kRunning:
      s.state.running = api::ContainerStateRunning{cs.started_at};
      break;
    case ContainerRunState::kExited: {
      api::ContainerStateTerminated t;
      t.exit_code = cs.exit_code;
      t.reason = termination_reason(cs);
      t.message = cs.message;
      t.started_at = cs.started_at;
      t.finished_at = cs.finished_at;
      t.container_id = cs.container_id;
      s.state.terminated = t;
      break;
    }
    case ContainerRunState::kUnknown:
      // It ran and the runtime lost it: that is a termination, not a container that
      // never started, or a run-once pod could run twice.
      if (old != nullptr && old->state.running) {
        api::ContainerStateTerminated t;
        t.reason = kStatusUnknown;
        t.message = "The container could not be located when the pod was terminated";
        t.exit_code = kKilledExitCode;
        s.state.terminated = t;
        s.restart_count = old->restart_count + 1;
        break;
      }
      s.state.waiting = api::ContainerStateWaiting{};
      break;
    case ContainerRunState::kCreated:
      s.state.waiting = api::ContainerStateWaiting{};
      break;
  }
  return s;
}

bool is_default_waiting(const api::ContainerStatus& s, bool has_init) {
  return s.state.waiting &&
         s.state.waiting->reason == (has_init ? kPodInitializing : kContainerCreating);
}

// A container that was running and is gone from the runtime stopped somehow; saying so
// keeps the pod from falling back to Pending.
void infer_vanished(const api::Pod& pod, const api::ContainerStatus& old, bool has_init,
                    api::ContainerStatus& s) {
  if (old.state.terminated || !old.state.running) return;
  if (!is_default_waiting(s, has_init) || s.last_state.terminated) return;
  api::ContainerStateTerminated t;
  t.reason = kStatusUnknown;
  t.message =
      "The container could not be located when the pod was deleted.  The container used to be "
      "Running";
  t.exit_code = kKilledExitCode;
  s.last_state.terminated = t;
  if (!pod.metadata.deletion_timestamp.is_set()) ++s.restart_count;
}

// ShouldContainerBeRestarted.
bool should_be_restarted(const api::Pod& pod, const api::Container& c,
                         const ObservedContainer* last) {
  if (pod.metadata.deletion_timestamp.is_set()) return false;
  if (last == nullptr) return true;
  switch (last->state) {
    case ContainerRunState::kRunning:
      return false;
    case ContainerRunState::kUnknown:
    case ContainerRunState::kCreated:
      return true;
    case ContainerRunState::kExited:
      break;
  }
  return container_should_restart(c, pod.spec.restart_policy, last->exit_code);
}

bool any_regular_created(const api::Pod& pod, const PodObservation& o) {
  return std::any_of(pod.spec.containers.begin(), pod.spec.containers.end(), [&](const auto& c) {
    const auto* l = latest(o, c.name);
    return l != nullptr && l->state != ContainerRunState::kUnknown;
  });
}

// The reason the last start failed replaces the state of a container about to be
// started again; an init container that completed is never started again.
void apply_start_failure(const api::Pod& pod, const PodObservation& o, const api::Container& c,
                         bool init, api::ContainerStatus& s) {
  const ObservedContainer* last = latest(o, c.name);
  if (init && last && last->state == ContainerRunState::kExited && last->exit_code == 0) return;
  if (init && !last && !is_sidecar(c) && s.state.waiting && any_regular_created(pod, o)) {
    // The runtime lost the init container, but regular ones exist: it completed.
    api::ContainerStateTerminated t;
    t.reason = "Completed";
    t.message =
        "Unable to get init container status from container runtime and pod has been "
        "initialized, treat it as exited normally";
    s.state = api::ContainerState{};
    s.state.terminated = t;
    return;
  }
  if (!should_be_restarted(pod, c, last)) return;
  auto f = o.start_failures.find(c.name);
  if (f == o.start_failures.end()) return;
  if (s.state.terminated) s.last_state = s.state;
  s.state = api::ContainerState{};
  s.state.waiting = api::ContainerStateWaiting{f->second.reason, f->second.message};
}

// What the prober manager adds: started and ready.
void apply_probes(const PodObservation& o, const api::Container& c, bool init,
                  api::ContainerStatus& s) {
  const ObservedContainer* last = latest(o, c.name);
  bool running = s.state.running.has_value();
  bool started = running && last != nullptr && last->started;
  s.started = started;
  if (init && !is_sidecar(c)) {
    s.ready = s.state.terminated && s.state.terminated->exit_code == 0;
    return;
  }
  s.ready = started && last->ready;
}

std::string bracket_list(const std::vector<std::string>& names) {
  std::string out = "[";
  for (size_t i = 0; i < names.size(); ++i) out += (i ? " " : "") + names[i];
  return out + "]";
}

std::string join_messages(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

api::PodCondition condition(const char* type, bool ok, std::string reason = "",
                            std::string message = "") {
  api::PodCondition c;
  c.type = type;
  c.status = ok ? "True" : "False";
  c.reason = std::move(reason);
  c.message = std::move(message);
  return c;
}

bool is_terminal(const std::string& phase) { return phase == "Succeeded" || phase == "Failed"; }

}  // namespace

bool container_should_restart(const api::Container& c, const std::string& pod_restart_policy,
                              int32_t exit_code) {
  const std::string& policy = c.restart_policy ? *c.restart_policy : pod_restart_policy;
  if (policy == "Always") return true;
  if (policy == "OnFailure") return exit_code != 0;
  return false;
}

namespace {

std::vector<api::ContainerStatus> statuses_of(const api::Pod& pod, const std::vector<api::Container>& specs,
                                              const PodObservation& observed,
                                              const std::vector<api::ContainerStatus>& previous, bool init,
                                              bool ephemeral = false) {
  bool has_init = !pod.spec.init_containers.empty();
  std::vector<api::ContainerStatus> out;
  for (const auto& c : specs) {
    const api::ContainerStatus* old = find_status(previous, c.name);
    api::ContainerStatus s;
    s.name = c.name;
    s.image = c.image;
    s.state.waiting =
        api::ContainerStateWaiting{has_init ? kPodInitializing : kContainerCreating, ""};
    if (old && old->state.terminated) {
      s = *old;  // a termination stays reported until the runtime says otherwise
    } else if (old) {
      s.restart_count = old->restart_count;
      s.last_state = old->last_state;
    }
    auto attempts = attempts_of(observed, c.name);
    if (attempts.empty() && old) infer_vanished(pod, *old, has_init, s);
    if (!attempts.empty()) s = convert(*attempts[0], old);
    if (attempts.size() > 1) s.last_state = convert(*attempts[1], old).state;
    apply_start_failure(pod, observed, c, init, s);
    apply_probes(observed, c, init, s);
    if (!ephemeral) {
      // In-place resize: what the node allocated (the spec's requests) and what the
      // running container's cgroup has (its last resize; the spec's until one).
      s.allocated_resources = c.resources.requests;
      const bool running = !attempts.empty() && attempts[0]->state == ContainerRunState::kRunning;
      s.resources = running && attempts[0]->resources ? *attempts[0]->resources : c.resources;
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace

std::vector<api::ContainerStatus> container_statuses(
    const api::Pod& pod, const PodObservation& observed,
    const std::vector<api::ContainerStatus>& previous, bool init) {
  auto out = statuses_of(pod, init ? pod.spec.init_containers : pod.spec.containers, observed, previous, init);
  // Regular containers are reported by name, init containers in the order they run.
  if (!init) {
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  }
  return out;
}

std::vector<api::ContainerStatus> ephemeral_container_statuses(
    const api::Pod& pod, const PodObservation& observed, const std::vector<api::ContainerStatus>& previous) {
  return statuses_of(pod, pod.spec.ephemeral_containers, observed, previous, false, /*ephemeral=*/true);
}

namespace {

struct PhaseCounts {
  int pending_init = 0, pending_sidecars = 0, failed_init_final = 0;
  int unknown = 0, running = 0, waiting = 0, stopped = 0, stopped_final = 0, succeeded = 0;
};

// The termination that decides whether a container runs again: its current one, or the
// last one while it waits to restart.
const api::ContainerStateTerminated* last_termination(const api::ContainerStatus& s) {
  if (s.state.terminated) return &*s.state.terminated;
  if (s.state.waiting && s.last_state.terminated) return &*s.last_state.terminated;
  return nullptr;
}

void count_init(const api::Pod& pod, const std::vector<api::ContainerStatus>& statuses,
                PhaseCounts& n) {
  for (const auto& c : pod.spec.init_containers) {
    const auto* s = find_status(statuses, c.name);
    if (is_sidecar(c)) {
      // A sidecar holds the pod in Pending until it has started; once it has stopped it
      // no longer counts.
      if (!s) {
        ++n.unknown;
      } else if (s->state.running) {
        if (!s->started.value_or(false)) ++n.pending_sidecars;
        ++n.running;
      } else if (!s->state.terminated && !(s->state.waiting && s->last_state.terminated)) {
        ++n.pending_sidecars;
        s->state.waiting ? ++n.waiting : ++n.unknown;
      }
      continue;
    }
    if (!s || s->state.running) {
      ++n.pending_init;
    } else if (const auto* t = last_termination(*s)) {
      bool final = !container_should_restart(c, pod.spec.restart_policy, t->exit_code);
      if (t->exit_code != 0 && final) ++n.failed_init_final;
    } else {
      ++n.pending_init;
    }
  }
}

void count_regular(const api::Pod& pod, const std::vector<api::ContainerStatus>& statuses,
                   PhaseCounts& n) {
  for (const auto& c : pod.spec.containers) {
    const auto* s = find_status(statuses, c.name);
    if (!s) {
      ++n.unknown;
    } else if (s->state.running) {
      ++n.running;
    } else if (const auto* t = last_termination(*s)) {
      ++n.stopped;
      if (!container_should_restart(c, pod.spec.restart_policy, t->exit_code)) ++n.stopped_final;
      if (s->state.terminated && t->exit_code == 0) ++n.succeeded;
    } else if (s->state.waiting) {
      ++n.waiting;
    } else {
      ++n.unknown;
    }
  }
}

}  // namespace

std::string pod_phase(const api::Pod& pod, const std::vector<api::ContainerStatus>& statuses,
                      bool pod_is_terminal, bool has_initialized) {
  PhaseCounts n;
  count_init(pod, statuses, n);
  count_regular(pod, statuses, n);
  if (n.failed_init_final > 0) return "Failed";
  // Restarting sidecars do not send an initialized pod back to Pending.
  if (n.pending_init > 0 || (n.pending_sidecars > 0 && !has_initialized) || n.waiting > 0) {
    return "Pending";
  }
  if (n.running > 0 && n.unknown == 0) return "Running";
  if (n.running > 0 || n.stopped == 0 || n.unknown > 0) return "Pending";
  // Everything has stopped.
  // Upstream leaves static pods out of this (kubernetes#116484).
  if (pod_is_terminal && !is_static_pod(pod)) {
    return n.stopped == n.succeeded ? "Succeeded" : "Failed";
  }
  if (n.stopped != n.stopped_final) return "Running";  // some will restart
  return n.stopped == n.succeeded ? "Succeeded" : "Failed";
}

api::PodCondition initialized_condition(const api::Pod& pod,
                                        const std::vector<api::ContainerStatus>& statuses,
                                        const std::string& phase) {
  std::vector<std::string> unknown, incomplete;
  for (const auto& c : pod.spec.init_containers) {
    const auto* s = find_status(statuses, c.name);
    if (!s) {
      unknown.push_back(c.name);
    } else if (is_sidecar(c) ? !s->started.value_or(false) : !s->ready) {
      incomplete.push_back(c.name);
    }
  }
  if (phase == "Succeeded" && unknown.empty()) return condition("Initialized", true, kPodCompleted);
  // A regular container that ran means the pod was initialized, whatever its sidecars do now.
  bool regular_ran =
      std::any_of(pod.spec.containers.begin(), pod.spec.containers.end(), [&](const auto& c) {
        const auto* s = find_status(statuses, c.name);
        return s && (s->state.running || s->state.terminated);
      });
  if (regular_ran) return condition("Initialized", true);
  std::vector<std::string> parts;
  if (!unknown.empty()) parts.push_back("containers with unknown status: " + bracket_list(unknown));
  if (!incomplete.empty())
    parts.push_back("containers with incomplete status: " + bracket_list(incomplete));
  if (parts.empty()) return condition("Initialized", true);
  return condition("Initialized", false, kContainersNotInitialized, join_messages(parts));
}

api::PodCondition containers_ready_condition(const api::Pod& pod,
                                             const std::vector<api::ContainerStatus>& statuses,
                                             const std::string& phase) {
  std::vector<std::string> unknown, unready;
  auto check = [&](const api::Container& c) {
    const auto* s = find_status(statuses, c.name);
    if (!s) {
      unknown.push_back(c.name);
    } else if (!s->ready) {
      unready.push_back(c.name);
    }
  };
  for (const auto& c : pod.spec.init_containers) {
    if (is_sidecar(c)) check(c);
  }
  for (const auto& c : pod.spec.containers) check(c);
  if ((phase == "Succeeded" && unknown.empty()) || phase == "Failed") {
    return condition("ContainersReady", false,
                     phase == "Failed" ? kPodFailedReason : kPodCompleted);
  }
  std::vector<std::string> parts;
  if (!unknown.empty()) parts.push_back("containers with unknown status: " + bracket_list(unknown));
  if (!unready.empty()) parts.push_back("containers with unready status: " + bracket_list(unready));
  if (parts.empty()) return condition("ContainersReady", true);
  return condition("ContainersReady", false, kContainersNotReady, join_messages(parts));
}

api::PodCondition ready_condition(const api::Pod& pod,
                                  const std::vector<api::ContainerStatus>& statuses,
                                  const std::string& phase) {
  api::PodCondition c = containers_ready_condition(pod, statuses, phase);
  c.type = "Ready";
  return c;
}

namespace {

bool kubelet_owned(const std::string& type) {
  static const char* kOwned[] = {"PodScheduled",
                                 "Ready",
                                 "Initialized",
                                 "ContainersReady",
                                 "PodReadyToStartContainers",
                                 "PodResizeInProgress",
                                 "PodResizePending"};
  return std::any_of(std::begin(kOwned), std::end(kOwned),
                     [&](const char* t) { return type == t; });
}

const api::PodCondition* find_condition(const std::vector<api::PodCondition>& v,
                                        const std::string& type) {
  auto it = std::find_if(v.begin(), v.end(), [&](const auto& c) { return c.type == type; });
  return it == v.end() ? nullptr : &*it;
}

// A condition keeps its lastTransitionTime while its status does not change.
void stamp(api::PodCondition& c, const api::PodStatus& previous, const api::Time& now) {
  const auto* old = find_condition(previous.conditions, c.type);
  c.last_transition_time = old && old->status == c.status ? old->last_transition_time : now;
}

std::vector<api::PodCondition> conditions(const api::Pod& pod, const PodObservation& o,
                                          const api::PodStatus& previous,
                                          const std::vector<api::ContainerStatus>& all,
                                          const std::string& phase, const api::Time& now) {
  std::vector<api::PodCondition> out;
  for (const auto& c : pod.status.conditions) {
    if (!kubelet_owned(c.type)) out.push_back(c);
  }
  // A disruption (eviction, node shutdown) was recorded once; it is carried, not recomputed.
  if (const auto* d = find_condition(previous.conditions, "DisruptionTarget")) {
    auto it = std::find_if(out.begin(), out.end(),
                           [](const auto& c) { return c.type == "DisruptionTarget"; });
    if (it == out.end()) {
      out.push_back(*d);
    } else {
      *it = *d;
    }
  }
  std::vector<api::PodCondition> owned = {
      condition("PodReadyToStartContainers", o.sandbox_ready),
      initialized_condition(pod, all, phase), ready_condition(pod, all, phase),
      containers_ready_condition(pod, all, phase), condition("PodScheduled", true)};
  for (auto& c : owned) {
    stamp(c, previous, now);
    c.observed_generation = pod.metadata.generation;
    out.push_back(std::move(c));
  }
  return out;
}

void merge_phase(const api::Pod& pod, const api::PodStatus& previous, api::PodStatus& s) {
  // A terminal phase, once reported by the kubelet or the API, is never left.
  if (!is_terminal(s.phase)) {
    if (is_terminal(previous.phase)) {
      s.phase = previous.phase;
    } else if (is_terminal(pod.status.phase)) {
      s.phase = pod.status.phase;
    }
  }
  if (s.phase == previous.phase) {
    s.reason = previous.reason.empty() ? pod.status.reason : previous.reason;
    s.message = previous.message.empty() ? pod.status.message : previous.message;
  }
  if (is_terminal(pod.status.phase)) s.phase = pod.status.phase;
}

void set_ips(const api::Pod& pod, const PodObservation& o, api::PodStatus& s) {
  for (const auto& ip : sort_pod_ips(o.pod_ips, o.host_ips)) s.pod_ips.push_back({ip});
  if (!s.pod_ips.empty()) s.pod_ip = s.pod_ips.front().ip;
  if (o.host_ips.empty()) return;
  s.host_ip = o.host_ips[0];
  s.host_ips = {{o.host_ips[0]}};
  if (o.host_ips.size() == 2) s.host_ips.push_back({o.host_ips[1]});
  // Host-network pods have the node's addresses.
  if (pod.spec.host_network && s.pod_ip.empty()) {
    s.pod_ip = o.host_ips[0];
    s.pod_ips = {{s.pod_ip}};
    if (o.host_ips.size() == 2) s.pod_ips.push_back({o.host_ips[1]});
  }
}

bool has_initialized(const api::Pod& pod, const PodObservation& o) {
  return std::any_of(pod.spec.containers.begin(), pod.spec.containers.end(),
                     [&](const auto& c) { return latest(o, c.name) != nullptr; });
}

}  // namespace

api::PodStatus generate_pod_status(const api::Pod& pod, const PodObservation& observed,
                                   const api::PodStatus& previous, const api::Time& now) {
  api::PodStatus s;
  s.qos_class = to_string(qos_class(pod));
  s.container_statuses = container_statuses(pod, observed, previous.container_statuses, false);
  s.init_container_statuses =
      container_statuses(pod, observed, previous.init_container_statuses, true);
  // Not part of the phase nor of readiness, as upstream.
  s.ephemeral_container_statuses =
      ephemeral_container_statuses(pod, observed, previous.ephemeral_container_statuses);
  std::vector<api::ContainerStatus> all = s.init_container_statuses;
  all.insert(all.end(), s.container_statuses.begin(), s.container_statuses.end());
  s.phase = pod_phase(pod, all, observed.pod_is_terminal, has_initialized(pod, observed));
  merge_phase(pod, previous, s);
  if (observed.deadline_exceeded) {
    // As upstream's activeDeadlineHandler: Failed, whatever the killed containers exit with
    // (the pod worker only says so of a pod that had not finished before).
    s.phase = "Failed";
    s.reason = kDeadlineExceeded;
    s.message = kDeadlineExceededMessage;
  }
  s.observed_generation = pod.metadata.generation;
  s.conditions = conditions(pod, observed, previous, all, s.phase, now);
  set_ips(pod, observed, s);
  s.start_time = previous.start_time.is_set() ? previous.start_time : now;
  return s;
}

}  // namespace knode::kubelet
