#include "probe_manager.h"

#include <boost/asio/post.hpp>

#include "knode/log.h"

namespace knode::kubelet {
namespace {

const api::Probe* probe_of(const api::Container& c, ProbeType t) {
  const auto& p = t == ProbeType::kLiveness ? c.liveness_probe
                  : t == ProbeType::kReadiness ? c.readiness_probe
                                               : c.startup_probe;
  return p ? &*p : nullptr;
}

// The raw runtime ID of "containerd://<id>".
std::string raw_id(const std::string& container_id) {
  auto p = container_id.find("://");
  return p == std::string::npos ? container_id : container_id.substr(p + 3);
}

}  // namespace

ProbeManager::ProbeManager(boost::asio::io_context& io, boost::asio::any_io_executor pool,
                           runtime::ContainerRuntime& rt, const Clock& clock, ViewFn on_view)
    : io_(io), pool_(std::move(pool)), rt_(rt), clock_(clock), on_view_(std::move(on_view)),
      prober_(std::make_shared<prober::Prober>()) {}

ProbeManager::~ProbeManager() { stop(); }

void ProbeManager::stop() {
  stopped_ = true;
  for (auto& [k, e] : entries_) e.timer->cancel();
}

void ProbeManager::update(const api::Pod& pod) {
  const std::string& uid = pod.metadata.uid;
  ProbePod pp;
  pp.terminal = pod.status.phase == "Succeeded" || pod.status.phase == "Failed";
  pp.deleting = pod.metadata.deletion_timestamp.unix_nanos() != 0;
  pp.restart_policy = pod.spec.restart_policy.empty() ? "Always" : pod.spec.restart_policy;
  auto status_of = [&](const std::string& name) -> const api::ContainerStatus* {
    for (const auto* list : {&pod.status.container_statuses, &pod.status.init_container_statuses}) {
      for (const auto& s : *list) {
        if (s.name == name) return &s;
      }
    }
    return nullptr;
  };
  for (const auto* list : {&pod.spec.containers, &pod.spec.init_containers}) {
    for (const auto& c : *list) {
      for (ProbeType t : {ProbeType::kStartup, ProbeType::kLiveness, ProbeType::kReadiness}) {
        const api::Probe* probe = probe_of(c, t);
        if (!probe) continue;
        Key key{uid, c.name, t};
        auto it = entries_.find(key);
        if (it == entries_.end()) {
          auto settings = probe_settings(t, *probe);
          if (!settings.ok()) {
            KLOG(WARNING, "probe ignored").kv("pod", pod.metadata.name).kv("container", c.name).kv("err", settings.error());
            continue;
          }
          Entry e;
          e.worker = std::make_unique<ProbeWorker>(t, *settings, clock_.steady_now());
          e.probe = *probe;
          e.timer = std::make_unique<boost::asio::steady_timer>(io_);
          it = entries_.emplace(key, std::move(e)).first;
          arm(key);
        }
        Entry& e = it->second;
        e.pod = pp;
        ProbeTarget target;
        if (const auto* s = status_of(c.name)) {
          target.container_id = raw_id(s->container_id);
          target.running = s->state.running.has_value();
          target.terminated = s->state.terminated.has_value();
          target.started = s->started.value_or(false);
          if (s->state.running) {
            target.started_at = Backoff::to_steady(
                clock_, Clock::SystemTime(std::chrono::nanoseconds(s->state.running->started_at.unix_nanos())));
          }
        }
        // A new container gets its first readiness check at once, as upstream triggers it.
        if (t == ProbeType::kReadiness && target.running && target.container_id != e.target.container_id) {
          e.worker->trigger();
          arm(key);
        }
        e.target = target;
        e.where.pod_name = pod.metadata.name;
        e.where.pod_namespace = pod.metadata.namespace_;
        e.where.pod_uid = uid;
        e.where.pod_ip = pod.status.pod_ip;
        e.where.container_name = c.name;
        e.where.container_id = target.container_id;
        e.where.ports = c.ports;
        e.where.env = c.env;
        e.where.runtime = &rt_;
      }
    }
  }
}

void ProbeManager::remove(const std::string& uid) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->first.uid == uid) {
      it->second.timer->cancel();
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
  views_.erase(uid);
}

void ProbeManager::arm(const Key& key) {
  auto it = entries_.find(key);
  if (it == entries_.end() || stopped_ || it->second.running) return;
  Entry& e = it->second;
  auto now = clock_.steady_now();
  auto wait = e.worker->due(now) ? Clock::SteadyTime::duration::zero() : e.worker->next_tick() - now;
  e.timer->expires_after(wait);
  e.timer->async_wait([this, key](const boost::system::error_code& ec) {
    if (!ec) tick(key);
  });
}

void ProbeManager::tick(const Key& key) {
  auto it = entries_.find(key);
  if (it == entries_.end() || stopped_) return;
  Entry& e = it->second;
  auto step = e.worker->tick(clock_.steady_now(), e.pod, e.target);
  if (step == ProbeWorker::Step::kIdle) return arm(key);
  if (step == ProbeWorker::Step::kStop) return;
  e.running = true;
  boost::asio::post(pool_, [this, key, probe = e.probe, where = e.where, prober = prober_] {
    auto outcome = prober->run(probe, where);
    boost::asio::post(io_, [this, key, outcome = std::move(outcome)] {
      auto it = entries_.find(key);
      if (it == entries_.end()) return;
      Entry& e = it->second;
      e.running = false;
      if (outcome.result == ProbeResult::kUnknown) {
        KLOGV(2, "probe could not run").kv("pod", e.where.pod_name).kv("container", key.container)
            .kv("probe", to_string(key.type)).kv("err", outcome.error.message());
      } else {
        auto event = prober::probe_event(key.type, outcome);
        if (!event.reason.empty()) {
          KLOGV(1, "probe").kv("pod", e.where.pod_namespace + "/" + e.where.pod_name).kv("container", key.container)
              .kv("reason", event.reason).kv("message", event.message);
          if (events_) {
            events_->record(EventTarget{e.where.pod_namespace, e.where.pod_name, e.where.pod_uid,
                                        "spec.containers{" + key.container + "}"},
                            KubeletEvent{kEventWarning, event.reason, event.message});
          }
        }
        e.worker->record(outcome.result);
      }
      publish(key.uid);
      arm(key);
    });
  });
}

// What the probes of one pod conclude, handed on when it changed.
void ProbeManager::publish(const std::string& uid) {
  ProbeView view;
  for (const auto& [k, e] : entries_) {
    if (k.uid != uid || e.worker->container_id().empty()) continue;
    const std::string& id = e.worker->container_id();
    switch (k.type) {
      case ProbeType::kLiveness:
      case ProbeType::kStartup:
        if (e.worker->wants_restart()) view.failed.insert(id);
        if (k.type == ProbeType::kStartup && e.worker->result() == ProbeResult::kSuccess) view.started.insert(id);
        break;
      case ProbeType::kReadiness:
        if (e.worker->result() == ProbeResult::kSuccess) view.ready.insert(id);
        break;
    }
  }
  auto& last = views_[uid];
  if (last.failed == view.failed && last.started == view.started && last.ready == view.ready) return;
  last = view;
  on_view_(uid, std::move(view));
}

}  // namespace knode::kubelet
