#include "pod_worker.h"

#include <boost/asio/post.hpp>
#include <cerrno>
#include <thread>

#include "knode/log.h"
#include "labels.h"
#include "pod/etc_hosts.h"
#include "pod/resources.h"
#include "runtime_config.h"

namespace knode::kubelet {
namespace {

// Upstream's minimum grace when it stops a container.
constexpr int64_t kMinGraceSeconds = 2;

api::Time from_nanos(runtime::UnixNanos ns) { return ns > 0 ? api::Time::FromUnixNanos(ns) : api::Time{}; }

ContainerRunState run_state(runtime::ContainerState s) {
  switch (s) {
    case runtime::ContainerState::kCreated: return ContainerRunState::kCreated;
    case runtime::ContainerState::kRunning: return ContainerRunState::kRunning;
    case runtime::ContainerState::kExited: return ContainerRunState::kExited;
    case runtime::ContainerState::kUnknown: break;
  }
  return ContainerRunState::kUnknown;
}

const api::Container* find_spec(const api::Pod& pod, const std::string& name) {
  for (const auto* list : {&pod.spec.init_containers, &pod.spec.containers, &pod.spec.ephemeral_containers}) {
    for (const auto& c : *list) {
      if (c.name == name) return &c;
    }
  }
  return nullptr;
}

std::string pod_ref(const api::Pod& pod) { return pod.metadata.namespace_ + "/" + pod.metadata.name; }

}  // namespace

PodWorker::PodWorker(PodWorkerDeps deps, std::shared_ptr<const api::Pod> pod, StatusFn on_status)
    : d_(deps),
      strand_(boost::asio::make_strand(d_.pool)),
      uid_(pod->metadata.uid),
      on_status_(std::move(on_status)),
      pod_(std::move(pod)),
      restarts_(Backoff::container_restarts(d_.clock)),
      retry_(d_.loop),
      deadline_(d_.loop) {}

void PodWorker::update(std::shared_ptr<const api::Pod> pod) {
  pending_updates_.fetch_add(1);
  boost::asio::post(strand_, [self = shared_from_this(), pod = std::move(pod)] {
    self->pod_ = pod;
    // A burst of updates (a client editing the pod in a loop) syncs once, at its newest.
    if (self->pending_updates_.fetch_sub(1) > 1) return;
    self->sync_now();
  });
}

void PodWorker::sync() {
  boost::asio::post(strand_, [self = shared_from_this()] { self->sync_now(); });
}

void PodWorker::sync_unless_seen(PodSnapshot listed) {
  boost::asio::post(strand_, [self = shared_from_this(), listed = std::move(listed)] {
    if (self->seen_ && same_objects(*self->seen_, listed)) return;
    self->sync_now();
  });
}

Result<PodRuntimeState> PodWorker::read_state(const PodRuntimeState* before) {
  auto st = read_pod_state(d_.runtime, uid_, &statuses_);
  if (st.ok() && (before == nullptr || only_what_was_started(*before, *st))) {
    seen_ = snapshot_of(*st);
  } else {
    seen_.reset();
  }
  return st;
}

void PodWorker::set_probes(ProbeView view) {
  boost::asio::post(strand_, [self = shared_from_this(), view = std::move(view)]() mutable {
    const bool restart = view.failed != self->probes_.failed;
    const bool changed = restart || view.ready != self->probes_.ready || view.started != self->probes_.started;
    self->probes_ = std::move(view);
    if (changed) self->sync_now();
  });
}

void PodWorker::terminate(std::function<void()> done, std::shared_ptr<const api::Pod> final_pod) {
  boost::asio::post(strand_, [self = shared_from_this(), done = std::move(done), final_pod]() mutable {
    if (final_pod) self->pod_ = final_pod;
    self->terminating_ = true;
    // A deadline far ahead must not keep the worker alive after its pod.
    boost::asio::post(self->d_.loop, [self] { self->deadline_.cancel(); });
    Status s = self->terminate_now();
    if (!s.ok()) {
      KLOG(ERROR, "pod termination incomplete; retrying").kv("pod", pod_ref(*self->pod_)).kv("err", s.message());
      boost::asio::post(self->d_.loop, [self, done = std::move(done)]() mutable {
        self->retry_.expires_after(std::chrono::seconds(2));
        self->retry_.async_wait([self, done = std::move(done)](const boost::system::error_code& ec) mutable {
          if (!ec) self->terminate(std::move(done));
        });
      });
      return;
    }
    boost::asio::post(self->d_.loop, std::move(done));
  });
}

void PodWorker::stop() {
  stopped_ = true;
  retry_.cancel();
  deadline_.cancel();
}

void PodWorker::schedule_retry(std::chrono::milliseconds after) {
  boost::asio::post(d_.loop, [self = shared_from_this(), after] {
    if (self->stopped_) return;
    self->retry_.expires_after(after);
    self->retry_.async_wait([self](const boost::system::error_code& ec) {
      if (!ec) self->sync();
    });
  });
}

std::optional<std::string> PodWorker::running_container_id(const std::string& name) const {
  for (const auto* list : {&last_status_.container_statuses, &last_status_.init_container_statuses}) {
    for (const auto& cs : *list) {
      if (cs.name != name || !cs.state.running || cs.container_id.empty()) continue;
      auto sep = cs.container_id.find("://");
      return sep == std::string::npos ? cs.container_id : cs.container_id.substr(sep + 3);
    }
  }
  return std::nullopt;
}

bool PodWorker::past_active_deadline() {
  if (finished_ || !pod_->spec.active_deadline_seconds) return false;
  const api::Time& start = last_status_.start_time.is_set() ? last_status_.start_time : pod_->status.start_time;
  if (!start.is_set()) return false;
  const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(d_.clock.system_now().time_since_epoch());
  const auto allowed = std::chrono::seconds(*pod_->spec.active_deadline_seconds);
  const auto active = now - std::chrono::nanoseconds(start.unix_nanos());
  if (active >= allowed) return true;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(allowed - active) + std::chrono::milliseconds(1);
  boost::asio::post(d_.loop, [self = shared_from_this(), left] {
    if (self->stopped_) return;
    self->deadline_.expires_after(left);  // a changed deadline replaces the one set before
    self->deadline_.async_wait([self](const boost::system::error_code& ec) {
      if (!ec) self->sync();
    });
  });
  return false;
}

std::optional<std::chrono::seconds> PodWorker::backoff_for(const api::Container& c,
                                                           const runtime::ContainerStatus& last) {
  const std::string key = container_backoff_key(*pod_, c.name, container_hash(c));
  auto since = Backoff::to_steady(d_.clock, Clock::SystemTime(std::chrono::nanoseconds(last.finished_at)));
  if (restarts_.is_in_backoff(key, since)) {
    return std::chrono::duration_cast<std::chrono::seconds>(restarts_.get(key));
  }
  restarts_.next(key, since);  // this restart counts
  return std::nullopt;
}

void PodWorker::sync_now() {
  if (!pod_ || terminating_) return;
  auto st = read_state();
  if (!st.ok()) {
    KLOG(WARNING, "cannot read the pod from the runtime; retrying").kv("pod", pod_ref(*pod_)).kv("err", st.error());
    schedule_retry(std::chrono::seconds(2));
    return;
  }
  // A new spec (metadata.generation moved) is acknowledged before anything slow (an image
  // pull) happens: status.observedGeneration says the kubelet has seen it.
  if (!last_status_.phase.empty() && last_status_.observed_generation != pod_->metadata.generation) report(*st);
  if (!deadline_exceeded_ && past_active_deadline()) {
    deadline_exceeded_ = true;
    KLOG(INFO, "pod outlived its activeDeadlineSeconds; killing it").kv("pod", pod_ref(*pod_))
        .kv("activeDeadlineSeconds", *pod_->spec.active_deadline_seconds);
    event("", kEventNormal, kDeadlineExceeded, kDeadlineExceededMessage);
  }
  SyncInputs in;
  in.deadline_exceeded = deadline_exceeded_;
  in.probe_failed = probes_.failed;
  for (const auto& r : st->containers) {
    const api::Container* spec = find_spec(*pod_, r.container.metadata.name);
    bool has_startup = spec && spec->startup_probe;
    if (r.status.state == runtime::ContainerState::kRunning &&
        (!has_startup || probes_.started.count(r.container.id))) {
      in.started.insert(r.container.id);
    }
  }
  in.backoff = [this](const api::Container& c, const runtime::ContainerStatus& last) { return backoff_for(c, last); };
  in.hash = [](const api::Container& c) { return container_hash(c); };
  in.hash_without_resources = [](const api::Container& c) { return container_hash_without_resources(c); };
  in.applied = [this](const ContainerRecord& r) { return applied_resources(r); };
  SyncPlan plan = plan_sync(*pod_, *st, in);
  if (plan.pod_finished) finished_ = true;
  auto after = execute(plan, *st);
  for (const auto& [name, why] : plan.waiting) {
    start_failures_[name] = why;
    if (why.reason == kCrashLoopBackOff) {
      event(name, kEventWarning, "BackOff", "Back-off restarting failed container " + name + " in pod " +
                                                pod_->metadata.name + "_" + pod_->metadata.namespace_ + "(" +
                                                pod_->metadata.uid + ")");
    }
  }
  if (!after.ok()) {
    KLOG(WARNING, "pod sync failed; retrying").kv("pod", pod_ref(*pod_)).kv("err", after.error());
    report(*st);
    schedule_retry(std::chrono::seconds(2));
    return;
  }
  report(*after);
  // A container in back-off (a crash, an image pull) or that could not start: come back
  // soon; its back-off decides when it really starts again.
  if (!plan.waiting.empty()) {
    schedule_retry(std::chrono::seconds(1));
  } else if (!start_failures_.empty()) {
    schedule_retry(std::chrono::seconds(2));
  }
}

Result<PodRuntimeState> PodWorker::execute(const SyncPlan& plan, const PodRuntimeState& st) {
  const api::Pod& pod = *pod_;
  const int64_t grace = termination_grace_seconds(pod);
  if (plan.kill_pod) kill_pod(st);
  if (plan.pod_finished && !plan.create_sandbox) return read_state(&st);

  auto lookup = d_.env.lookup();
  // Volumes before any container: set up, or brought up to date (configMap and secret
  // changes reach running pods this way).
  if (Status s = d_.env.setup_volumes(pod, *lookup); !s.ok()) {
    // The containers wait for their volumes (a ConfigMap not there yet, a mount failing):
    // ContainerCreating with why, or PodInitializing while init containers are to run.
    if (pod.spec.init_containers.empty()) {
      for (const auto& c : pod.spec.containers) start_failures_[c.name] = {kContainerCreating, s.message()};
    }
    return s.Wrap("set up the volumes of " + pod_ref(pod));
  }
  // Volumes are ready: what they made the containers wait for is over.
  std::erase_if(start_failures_, [](const auto& f) { return f.second.reason == kContainerCreating; });
  std::string sandbox_id;
  std::string pod_ip;
  uint32_t attempt = 0;
  if (plan.create_sandbox) {
    attempt = plan.sandbox_attempt;
    auto config = sandbox_config(pod, attempt, d_.node);
    if (!config.ok()) return config.status();
    auto id = d_.runtime.run_pod_sandbox(*config);
    if (!id.ok()) return id.status().Wrap("create the sandbox of " + pod_ref(pod));
    sandbox_id = *id;
    if (auto status = d_.runtime.pod_sandbox_status(sandbox_id); status.ok()) {
      pod_ip = status->ip;
      statuses_.remember(*status);  // the read below needs it too
    }
    KLOG(INFO, "pod sandbox created").kv("pod", pod_ref(pod)).kv("sandbox", sandbox_id.substr(0, 12))
        .kv("ip", pod_ip).kv("attempt", attempt);
  } else {
    if (st.sandboxes.empty()) return st;
    sandbox_id = st.sandboxes.front().id;
    attempt = st.sandboxes.front().metadata.attempt;
    if (st.sandbox) pod_ip = st.sandbox->ip;
  }
  for (const auto& k : plan.kill) {
    KLOG(INFO, "killing container").kv("pod", pod_ref(pod)).kv("container", k.name).kv("reason", k.reason);
    event(k.name, kEventNormal, "Killing", "Stopping container " + k.name);
    kill_container(k.id, find_spec(pod, k.name), pod_ip, grace);
  }
  for (const auto& r : plan.resize) {
    // In place: the cgroup's new limits (upstream's UpdateContainerResources).
    Status s = d_.runtime.update_container_resources(r.id, linux_resources(pod, *r.spec, d_.node.memory_capacity));
    if (!s.ok()) return s.Wrap("resize container " + r.spec->name + " of " + pod_ref(pod));
    resized_[r.id] = r.spec->resources;
    KLOG(INFO, "container resized").kv("pod", pod_ref(pod)).kv("container", r.spec->name)
        .kv("resources", encode_resources(r.spec->resources));
  }
  auto sandbox = sandbox_config(pod, attempt, d_.node);
  if (!sandbox.ok()) return sandbox.status();
  for (const auto& s : plan.start) {
    if (Status e = start_container(s, sandbox_id, *sandbox, pod_ip, *lookup); !e.ok()) {
      KLOG(WARNING, "container did not start").kv("pod", pod_ref(pod)).kv("container", s.spec->name)
          .kv("err", e.message());
      if (s.init) break;  // the next init container waits for this one
    }
  }
  return read_state(&st);
}

std::optional<api::ResourceRequirements> PodWorker::applied_resources(const ContainerRecord& r) const {
  if (auto it = resized_.find(r.container.id); it != resized_.end()) return it->second;
  auto a = r.status.annotations.find(kContainerResourcesAnnotation);
  if (a == r.status.annotations.end()) return std::nullopt;
  return decode_resources(a->second);
}

void PodWorker::event(const std::string& container, const std::string& type, const std::string& reason,
                      const std::string& message) {
  if (d_.events == nullptr || !pod_) return;
  const auto& p = *pod_;
  EventTarget t{p.metadata.namespace_, p.metadata.name, p.metadata.uid, ""};
  if (!container.empty()) {
    bool init = false;
    for (const auto& c : p.spec.init_containers) init |= c.name == container;
    t.field_path = std::string(init ? "spec.initContainers{" : "spec.containers{") + container + "}";
  }
  d_.events->record(t, KubeletEvent{type, reason, message});
}

Status PodWorker::start_container(const ContainerStart& s, const std::string& sandbox_id,
                                  const runtime::PodSandboxConfig& sandbox, const std::string& pod_ip,
                                  const EnvLookup& lookup) {
  const api::Pod& pod = *pod_;
  const api::Container& c = *s.spec;
  auto fail = [&](const std::string& reason, const Status& why) {
    start_failures_[c.name] = {reason, why.message()};
    event(c.name, kEventWarning, "Failed", "Error: " + why.message());
    return why;
  };
  auto image = d_.env.ensure_image(pod, c, lookup, sandbox);
  for (const auto& e : image.events) event(c.name, e.type, e.reason, e.message);
  if (image.waiting) {
    start_failures_[c.name] = *image.waiting;
    return Status::Error(image.waiting->reason + ": " + image.waiting->message, EAGAIN);
  }
  std::vector<std::string> ips;
  if (!pod_ip.empty()) ips.push_back(pod_ip);
  auto env = make_environment(pod, c, ips, lookup);
  if (!env.ok()) return fail(kCreateContainerConfigError, env.status());
  auto mounts = d_.env.mounts(pod, c, env->vars);
  if (!mounts.ok()) return fail(kCreateContainerConfigError, mounts.status());
  // Image volumes: each image pulled as its volume's pullPolicy says (with the pod's
  // credentials and back-off, as a container image), the mount then naming what the pull
  // returned. mounts[i] is volumeMounts[i].
  for (size_t i = 0; i < c.volume_mounts.size() && i < mounts->size(); ++i) {
    runtime::Mount& m = (*mounts)[i];
    if (m.image.image.empty()) continue;
    api::Container as_image;
    as_image.name = c.name;
    as_image.image = m.image.image;
    for (const auto& v : pod.spec.volumes) {
      if (v.name == c.volume_mounts[i].name && v.image) as_image.image_pull_policy = v.image->pull_policy;
    }
    auto pulled = d_.env.ensure_image(pod, as_image, lookup, sandbox);
    for (const auto& e : pulled.events) event(c.name, e.type, e.reason, e.message);
    if (pulled.waiting) {
      start_failures_[c.name] = *pulled.waiting;
      return Status::Error("image volume \"" + c.volume_mounts[i].name + "\": " + pulled.waiting->reason + ": " +
                               pulled.waiting->message,
                           EAGAIN);
    }
    m.image.image = pulled.ref;
  }
  if (auto log = d_.env.termination_log(pod, c, s.attempt); !log.ok()) {
    return fail(kCreateContainerConfigError, log.status());
  } else if (*log) {
    mounts->push_back(**log);
  }
  if (!mounts_own_etc_hosts(c)) {
    auto hosts = d_.env.etc_hosts(pod, ips);
    if (!hosts.ok()) return fail(kCreateContainerConfigError, hosts.status());
    if (*hosts) mounts->push_back(**hosts);
  }
  auto config = container_config(pod, c, s.attempt, image.ref, env->vars, *mounts, d_.node);
  if (s.ephemeral && !c.target_container_name.empty()) {
    // kubectl debug --target: the process namespace of that container, when it runs
    if (auto target = running_container_id(c.target_container_name)) {
      config.security.namespaces.pid = runtime::NamespaceMode::kTarget;
      config.security.namespaces.target_id = *target;
    }
  }
  if (Status st = d_.env.prepare_logs(pod, c); !st.ok()) return fail("CreateContainerError", st);
  auto id = d_.runtime.create_container(sandbox_id, config, sandbox);
  if (!id.ok()) return fail("CreateContainerError", id.status());
  event(c.name, kEventNormal, "Created", "Created container: " + c.name);
  if (Status st = d_.runtime.start_container(*id); !st.ok()) return fail("RunContainerError", st);
  event(c.name, kEventNormal, "Started", "Started container " + c.name);
  d_.env.container_started(pod, c, *id,
                           sandbox.log_directory.empty() || config.log_path.empty()
                               ? std::string()
                               : sandbox.log_directory + "/" + config.log_path);
  start_failures_.erase(c.name);
  KLOG(INFO, "container started").kv("pod", pod_ref(pod)).kv("container", c.name).kv("id", id->substr(0, 12))
      .kv("restartCount", s.attempt);
  if (c.lifecycle && c.lifecycle->post_start) {
    Status hook = d_.env.run_hook(*c.lifecycle->post_start, pod, c, *id, pod_ip,
                                  std::chrono::seconds(termination_grace_seconds(pod)));
    if (!hook.ok()) {
      // As upstream: a failed postStart hook kills the container (FailedPostStartHook).
      KLOG(WARNING, "postStart hook failed; killing the container").kv("pod", pod_ref(pod)).kv("container", c.name)
          .kv("err", hook.message());
      kill_container(*id, nullptr, pod_ip, kMinGraceSeconds);
      return hook.Wrap("postStart hook");
    }
  }
  return Status::Ok();
}

void PodWorker::kill_container(const std::string& id, const api::Container* spec, const std::string& pod_ip,
                               int64_t grace_seconds) {
  auto t0 = d_.clock.steady_now();
  if (spec && spec->lifecycle && spec->lifecycle->pre_stop) {
    Status hook = d_.env.run_hook(*spec->lifecycle->pre_stop, *pod_, *spec, id, pod_ip,
                                  std::chrono::seconds(grace_seconds));
    if (!hook.ok()) {
      KLOG(WARNING, "preStop hook failed").kv("pod", pod_ref(*pod_)).kv("container", spec->name)
          .kv("err", hook.message());
    }
  }
  auto spent = std::chrono::duration_cast<std::chrono::seconds>(d_.clock.steady_now() - t0).count();
  int64_t left = std::max(grace_seconds - spent, kMinGraceSeconds);
  Status s = d_.runtime.stop_container(id, left);
  if (!s.ok() && s.error_number() != ENOENT) {
    KLOG(WARNING, "cannot stop container").kv("pod", pod_ref(*pod_)).kv("id", id.substr(0, 12)).kv("err", s.message());
  }
}

// Every live container at once (each gets the whole grace period, as upstream), app
// containers before sidecars, then the sandboxes.
void PodWorker::kill_pod(const PodRuntimeState& st) {
  const int64_t grace = termination_grace_seconds(*pod_);
  const std::string ip = st.sandbox ? st.sandbox->ip : "";
  for (bool sidecars : {false, true}) {
    std::vector<std::thread> stops;
    for (const auto* r : st.live()) {
      const api::Container* spec = find_spec(*pod_, r->container.metadata.name);
      if ((spec && is_sidecar(*spec)) != sidecars) continue;
      if (spec) event(spec->name, kEventNormal, "Killing", "Stopping container " + spec->name);
      stops.emplace_back([this, id = r->container.id, spec, ip, grace] { kill_container(id, spec, ip, grace); });
    }
    for (auto& t : stops) t.join();
  }
  for (const auto& sb : st.sandboxes) {
    if (sb.state != runtime::SandboxState::kReady) continue;
    if (Status s = d_.runtime.stop_pod_sandbox(sb.id); !s.ok() && s.error_number() != ENOENT) {
      KLOG(WARNING, "cannot stop the pod's sandbox").kv("pod", pod_ref(*pod_)).kv("err", s.message());
    }
  }
}

Status PodWorker::terminate_now() {
  auto st = read_state();  // a terminating worker does not sync: what it saw no longer matters
  if (!st.ok()) return st.status();
  kill_pod(*st);
  // The pod's last status, terminal: what its containers exited with (a deleted pod ends
  // Failed, or Succeeded when every container succeeded), for the API before the final
  // delete (a Job's finalizer waits for a terminal phase).
  if (auto stopped = read_state(); stopped.ok()) {
    finished_ = true;
    final_status_ = status_of(*stopped);
  }
  for (const auto& r : st->containers) {
    if (Status s = d_.runtime.remove_container(r.container.id); !s.ok() && s.error_number() != ENOENT) return s;
  }
  for (const auto& sb : st->sandboxes) {
    if (Status s = d_.runtime.remove_pod_sandbox(sb.id); !s.ok() && s.error_number() != ENOENT) return s;
  }
  if (Status s = d_.env.teardown_volumes(uid_); !s.ok()) return s;
  KLOG(INFO, "pod removed").kv("pod", pod_ref(*pod_)).kv("containers", st->containers.size());
  return Status::Ok();
}

void PodWorker::report(const PodRuntimeState& st) {
  api::PodStatus status = status_of(st);
  last_status_ = status;
  boost::asio::post(d_.loop, [self = shared_from_this(), pod = pod_, status = std::move(status)] {
    self->on_status_(*pod, status);
  });
}

api::PodStatus PodWorker::status_of(const PodRuntimeState& st) const {
  const api::Pod& pod = *pod_;
  bool resizing = false;
  PodObservation obs;
  std::string scheme = d_.runtime.id_scheme();
  for (const auto& r : st.containers) {
    if (st.sandboxes.empty() || r.container.pod_sandbox_id != st.sandboxes.front().id) continue;
    const api::Container* spec = find_spec(pod, r.container.metadata.name);
    ObservedContainer o;
    o.name = r.container.metadata.name;
    o.state = run_state(r.status.state);
    o.container_id = scheme + "://" + r.container.id;
    o.image = spec ? spec->image : r.status.image.image;
    o.image_id = r.status.image_ref;
    o.exit_code = r.status.exit_code;
    o.reason = r.status.reason;
    o.message = r.status.message;
    if (o.state == ContainerRunState::kExited && o.message.empty() && spec) {
      o.message = d_.env.termination_message(*spec, r.status);
    }
    o.created_at = from_nanos(r.status.created_at);
    o.started_at = from_nanos(r.status.started_at);
    o.finished_at = from_nanos(r.status.finished_at);
    o.restart_count = static_cast<int32_t>(r.container.metadata.attempt);
    if (o.state == ContainerRunState::kRunning) {
      o.resources = applied_resources(r);
      if (o.resources && spec && !changed_resources(*o.resources, spec->resources).empty()) resizing = true;
    }
    const bool running = o.state == ContainerRunState::kRunning;
    o.started = running && (!spec || !spec->startup_probe || probes_.started.count(r.container.id));
    o.ready = running && o.started && (!spec || !spec->readiness_probe || probes_.ready.count(r.container.id));
    obs.containers.push_back(std::move(o));
  }
  obs.start_failures = start_failures_;
  obs.sandbox_ready = st.sandbox_ready();
  if (st.sandbox && obs.sandbox_ready) {
    if (!st.sandbox->ip.empty()) obs.pod_ips.push_back(st.sandbox->ip);
    for (const auto& ip : st.sandbox->additional_ips) obs.pod_ips.push_back(ip);
  }
  obs.host_ips = d_.node.host_ips;
  obs.pod_is_terminal = finished_;
  obs.deadline_exceeded = deadline_exceeded_;
  auto now = api::Time::FromUnixNanos(
      std::chrono::duration_cast<std::chrono::nanoseconds>(d_.clock.system_now().time_since_epoch()).count());
  api::PodStatus status = generate_pod_status(pod, obs, last_status_.phase.empty() ? pod.status : last_status_, now);
  if (resizing) {
    // A resize not applied yet: said so until it is, as upstream's PodResizeInProgress.
    api::PodCondition c;
    c.type = "PodResizeInProgress";
    c.status = "True";
    c.last_transition_time = now;
    c.observed_generation = pod.metadata.generation;
    status.conditions.push_back(c);
  }
  return status;
}

}  // namespace knode::kubelet
