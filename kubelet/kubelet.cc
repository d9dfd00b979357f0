#include "kubelet.h"

#include <boost/asio/post.hpp>

#include "knode/log.h"
#include "knode/manifest_source.h"
#include "labels.h"
#include "pod/admission.h"
#include "pod/static_pod.h"

namespace knode::kubelet {
namespace {

constexpr char kRuntimeComponent[] = "container runtime";

api::Time now_time(const Clock& clock) {
  return api::Time::FromUnixNanos(
      std::chrono::duration_cast<std::chrono::nanoseconds>(clock.system_now().time_since_epoch()).count());
}

std::string manifest_key(const api::Pod& p) {
  return (p.metadata.namespace_.empty() ? "default" : p.metadata.namespace_) + "/" + p.metadata.name;
}

// Whether the API's status gives one of the kubelet's conditions another status (True,
// False, Unknown): what the kubelet decides, which nobody else should have changed. The
// rest (times, messages, fields the API server fills in) may differ in an echo of its own
// write, and does not count.
bool conditions_overwritten(const api::PodStatus& mine, const api::PodStatus& api) {
  for (const auto& c : mine.conditions) {
    for (const auto& a : api.conditions) {
      if (a.type == c.type && a.status != c.status) return true;
    }
  }
  return false;
}

// A pod found in the runtime that no source wants: enough of it to terminate it.
std::shared_ptr<const api::Pod> orphan(const std::string& uid, const PodSnapshot& snap) {
  api::Pod p;
  p.metadata.uid = uid;
  p.metadata.name = snap.name;
  p.metadata.namespace_ = snap.ns;
  return std::make_shared<const api::Pod>(std::move(p));
}

}  // namespace

Kubelet::Kubelet(boost::asio::io_context& io, ObjectStore& store, runtime::ContainerRuntime& rt, PodEnvironment& env,
                 KubeletOptions options, health::HealthRegistry& health, const Clock& clock,
                 boost::asio::any_io_executor pool)
    : io_(io),
      store_(store),
      rt_(rt),
      env_(env),
      options_(std::move(options)),
      health_(health),
      clock_(clock),
      pool_(std::move(pool)),
      relist_timer_(io),
      synced_timer_(io),
      probes_(io, pool_, rt, clock, [this](const std::string& uid, ProbeView v) { set_probes(uid, std::move(v)); }) {
  probes_.set_events(options_.events);
}

Kubelet::~Kubelet() { stop(); }

void Kubelet::start() {
  // Synced once the pod sources are and every pod they gave has a status (or a while
  // passed: a runtime that does not answer must not hold the node back).
  auto inputs = store_.pending_sources();
  store_.expect_source(kSourceName);
  store_.on_sources_synced(inputs, [this] {
    inputs_synced_ = true;
    for (const auto& [uid, e] : pods_) {
      if (!has_status_.count(uid)) awaiting_status_.insert(uid);
    }
    synced_timer_.expires_after(options_.initial_status_timeout);
    synced_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || reported_synced_) return;
      KLOG(WARNING, "not every pod has a status yet; reporting the pods synced anyway")
          .kv("waiting", awaiting_status_.size());
      awaiting_status_.clear();
      maybe_report_synced();
    });
    maybe_report_synced();
  });
  store_.subscribe(api::Kind::kPod, [this](const Event& e) { on_pod(e); });
  // A ConfigMap or Secret changed: the pods' volumes and environment read them.
  for (auto kind : {api::Kind::kConfigMap, api::Kind::kSecret}) {
    store_.subscribe(kind, [this](const Event&) {
      for (const auto& [uid, e] : pods_) {
        if (!e.pod->spec.volumes.empty()) e.worker->sync();
      }
    });
  }
  // The runtime's health as each relist finds it (a relist that never returns goes stale
  // after relist_threshold, as the upstream PLEG). /healthz reports it at once, unlike the
  // upstream kubelet's, which checks only its own loop; it is external: the watchdog
  // does not restart knode for a runtime that is down.
  health_.set_external(kRuntimeComponent);
  health_.set_max_age(kRuntimeComponent, options_.relist_threshold);
  arm_relist();
}

void Kubelet::maybe_report_synced() {
  if (reported_synced_ || !inputs_synced_ || !awaiting_status_.empty()) return;
  reported_synced_ = true;
  synced_timer_.cancel();
  // After the statuses already posted into the store.
  boost::asio::post(io_, [this] { store_.on_synced(kSourceName); });
}

void Kubelet::stop() {
  stopped_ = true;
  relist_timer_.cancel();
  synced_timer_.cancel();
  probes_.stop();
  for (auto& [uid, e] : pods_) e.worker->stop();
}

std::vector<api::Pod> Kubelet::pods() const {
  std::vector<api::Pod> out;
  for (const auto& [uid, e] : pods_) out.push_back(*e.pod);
  return out;
}

void Kubelet::set_probes(const std::string& pod_uid, ProbeView view) {
  auto it = pods_.find(pod_uid);
  if (it != pods_.end()) it->second.worker->set_probes(std::move(view));
}

// ---- pods from the sources ----

void Kubelet::on_pod(const Event& e) {
  const auto& pod = api::get<api::Pod>(*e.object);
  // A mirror carries its static pod's annotations too: it is told apart first.
  if (options_.api && is_mirror_pod(pod)) return on_mirror_pod(e);
  if (is_static_pod(pod)) return;  // our own publication of a pod's status
  if (options_.api == nullptr || pod.metadata.annotations.count(kManifestFileAnnotation)) return on_manifest_pod(e);
  on_api_pod(e);
}

// A pod the scheduler bound here: run it; once the API server marks it deleted, stop it
// within its grace period and delete it for good.
void Kubelet::on_api_pod(const Event& e) {
  const auto& pod = api::get<api::Pod>(*e.object);
  if (pod.spec.node_name != options_.node.node_name) return;
  const std::string& uid = pod.metadata.uid;
  const bool known = pods_.count(uid) > 0;
  if (e.type == EventType::kDeleted) {
    if (known) remove(uid);
    return;
  }
  auto current = std::make_shared<const api::Pod>(pod);
  if (pod.metadata.deletion_timestamp.is_set()) {
    if (known) {
      KLOG(INFO, "pod deleted through the API").kv("pod", pod.metadata.namespace_ + "/" + pod.metadata.name)
          .kv("gracePeriod", pod.metadata.deletion_grace_period_seconds.value_or(-1));
      remove(uid, current);
    } else if (!terminating_.count(uid)) {
      options_.api->terminated(pod);  // nothing of it runs here
    }
    return;
  }
  if (known) {
    // An update of a running pod: a new spec (an image, activeDeadlineSeconds,
    // tolerations, ephemeral containers) or new labels and annotations (downward API
    // volumes, subPathExpr) go to its worker, with the status the kubelet holds; the
    // echoes of the kubelet's own status writes change none of them and stop here.
    auto& entry = pods_.at(uid);
    const auto& had = *entry.pod;
    if (had.spec == pod.spec && had.metadata.generation == pod.metadata.generation &&
        had.metadata.labels == pod.metadata.labels && had.metadata.annotations == pod.metadata.annotations) {
      // Someone else changed the status: the node lifecycle controller sets Ready False on
      // the pods of a node whose Lease it has not seen renewed for its grace period (an
      // API server away that long). Only the kubelet sets it back, as upstream's status
      // manager does when the API's status differs from its own.
      if (has_status_.count(uid) && conditions_overwritten(had.status, pod.status)) {
        overwritten_.insert(uid);
        restate(uid);
      } else {
        overwritten_.erase(uid);  // (an echo of the kubelet's own write, or of the one written again)
      }
      return;
    }
    auto next = std::make_shared<api::Pod>(pod);
    next->status = entry.pod->status;
    entry.pod = next;
    entry.worker->update(next);
    return;
  }
  if (terminating_.count(uid)) return;
  // A pod that finished before (a restart of knode) is not run again.
  if (pod.status.phase == "Succeeded" || pod.status.phase == "Failed") return;
  admit(current);
}

// A mirror pod deleted (or outdated) while its static pod runs is made again.
void Kubelet::on_mirror_pod(const Event& e) {
  const auto& mirror = api::get<api::Pod>(*e.object);
  if (e.type != EventType::kDeleted && !mirror.metadata.deletion_timestamp.is_set()) return;
  for (const auto& [uid, entry] : pods_) {
    const auto& m = entry.pod->metadata;
    if (is_static_pod(*entry.pod) && m.name == mirror.metadata.name && m.namespace_ == mirror.metadata.namespace_) {
      KLOG(INFO, "mirror pod deleted; creating it again").kv("pod", m.namespace_ + "/" + m.name);
      options_.api->mirror(*entry.pod);
    }
  }
}

void Kubelet::on_manifest_pod(const Event& e) {
  const auto& pod = api::get<api::Pod>(*e.object);
  if (!pod.spec.node_name.empty() && pod.spec.node_name != options_.node.node_name) return;
  const std::string key = manifest_key(pod);
  auto had = from_manifest_.find(key);
  if (e.type == EventType::kDeleted) {
    if (had != from_manifest_.end()) {
      remove(had->second);
      from_manifest_.erase(had);
    }
    return;
  }
  auto path = pod.metadata.annotations.find(kManifestFileAnnotation);
  api::Pod decoded = pod;
  decoded.metadata.annotations.erase(kManifestFileAnnotation);
  auto made = std::make_shared<const api::Pod>(make_static_pod(
      decoded, options_.node.node_name, path == pod.metadata.annotations.end() ? "" : path->second, now_time(clock_)));
  if (had != from_manifest_.end()) {
    if (had->second == made->metadata.uid) return;  // the same pod
    // A changed manifest is a new pod: the old one goes, as upstream's file source does.
    remove(had->second);
  }
  from_manifest_[key] = made->metadata.uid;
  admit(made);
}

void Kubelet::admit(std::shared_ptr<const api::Pod> pod) {
  const std::string uid = pod->metadata.uid;
  if (pods_.count(uid)) return;
  std::vector<const api::Pod*> active;
  for (const auto& [other, entry] : pods_) {
    const std::string& phase = entry.pod->status.phase;
    if (phase != "Succeeded" && phase != "Failed") active.push_back(entry.pod.get());
  }
  if (auto rejected = check_host_ports(*pod, active)) {
    // Never run: Failed with the reason, as upstream's rejectPod writes it.
    KLOG(WARNING, "pod rejected").kv("pod", pod->metadata.namespace_ + "/" + pod->metadata.name)
        .kv("reason", rejected->reason).kv("message", rejected->message);
    auto failed = std::make_shared<api::Pod>(*pod);
    failed->status.phase = "Failed";
    failed->status.reason = rejected->reason;
    failed->status.message = "Pod was rejected: " + rejected->message;
    if (options_.api) {
      options_.api->status(*failed);
    } else {
      publish(failed, pod);
    }
    return;
  }
  KLOG(INFO, "pod admitted").kv("pod", pod->metadata.namespace_ + "/" + pod->metadata.name).kv("uid", uid)
      .kv("containers", pod->spec.containers.size());
  PodWorkerDeps deps{rt_, env_, options_.node, clock_, io_, pool_, options_.events};
  auto worker = std::make_shared<PodWorker>(
      deps, pod, [this](const api::Pod& p, const api::PodStatus& s) { on_status(p, s); });
  pods_[uid] = Entry{pod, worker};
  {
    std::lock_guard lock(known_mu_);
    known_.insert(uid);
  }
  publish(pod, nullptr);
  if (options_.api && is_static_pod(*pod)) options_.api->mirror(*pod);
  worker->sync();
}

// The kubelet's status of a pod the API holds another one for goes again, at most every
// 10 s: a controller that keeps marking it (the node lifecycle controller, for every pod
// update while it thinks the node is down) is answered at that pace, not in a tight loop.
void Kubelet::restate(const std::string& uid) {
  auto it = pods_.find(uid);
  if (it == pods_.end() || !overwritten_.count(uid)) return;
  const auto now = clock_.steady_now();
  auto last = restated_.find(uid);
  if (last != restated_.end() && now - last->second < std::chrono::seconds(10)) return;  // the relist retries
  restated_[uid] = now;
  overwritten_.erase(uid);
  const auto& pod = *it->second.pod;
  KLOG(INFO, "pod status changed in the API; writing it again").kv("pod", pod.metadata.namespace_ + "/" +
                                                                        pod.metadata.name);
  options_.api->restate(pod);
}

void Kubelet::remove(const std::string& uid, std::shared_ptr<const api::Pod> deleted) {
  auto it = pods_.find(uid);
  if (it == pods_.end()) return;
  auto entry = it->second;
  pods_.erase(it);
  has_status_.erase(uid);
  overwritten_.erase(uid);
  restated_.erase(uid);
  if (awaiting_status_.erase(uid)) maybe_report_synced();
  probes_.remove(uid);
  terminating_[uid] = entry.worker;
  KLOG(INFO, "pod terminating").kv("pod", entry.pod->metadata.namespace_ + "/" + entry.pod->metadata.name);
  entry.worker->terminate([this, uid, worker = entry.worker, pod = deleted ? deleted : entry.pod] {
    terminating_.erase(uid);
    if (options_.api) {
      if (is_static_pod(*pod)) {
        options_.api->unmirror(*pod);
      } else if (pod->metadata.deletion_timestamp.is_set()) {
        // A terminal phase first, as upstream's kubelet writes it before the final delete:
        // finalizers (a Job's) wait for it.
        if (auto final = worker->final_status()) {
          api::Pod last = *pod;
          last.status = *final;
          options_.api->status(last);
        }
        options_.api->terminated(*pod);
      }
    }
    {
      std::lock_guard lock(known_mu_);
      known_.erase(uid);
    }
    if (options_.api) return;  // the store's pods are the API server's: it says when they go
    auto obj = std::make_shared<const api::Object>(*pod);
    boost::asio::post(io_, [this, obj, uid] {
      // A changed manifest's new pod has the same name and may be published already:
      // only this pod's own entry goes.
      auto current = store_.get(api::key_of(*obj));
      if (current && api::meta_of(*current).uid == uid) store_.on_event(Event{EventType::kDeleted, current, nullptr});
    });
  }, deleted);
}

bool Kubelet::should_pod_content_be_removed(const std::string& uid) const {
  std::lock_guard lock(known_mu_);
  return !known_.count(uid);
}

bool Kubelet::should_pod_runtime_be_removed(const std::string& uid) const { return should_pod_content_be_removed(uid); }

// ---- status ----

void Kubelet::on_status(const api::Pod& pod, const api::PodStatus& status) {
  auto it = pods_.find(pod.metadata.uid);
  if (it != pods_.end() && !(it->second.pod->status == status)) {
    auto next = std::make_shared<api::Pod>(*it->second.pod);
    next->status = status;
    auto old = it->second.pod;
    it->second.pod = next;
    publish(next, old);
    if (options_.api) options_.api->status(*next);
    probes_.update(*next);
    for (const auto& fn : status_hooks_) fn(*next);
  }
  // After the status is on its way into the store: "synced" must not overtake it.
  has_status_.insert(pod.metadata.uid);
  if (awaiting_status_.erase(pod.metadata.uid)) maybe_report_synced();
}

// Into the store, as an API server would reflect the pod (outside the store's own
// delivery of the event that caused it).
void Kubelet::publish(const std::shared_ptr<const api::Pod>& pod, const std::shared_ptr<const api::Pod>& old) {
  if (options_.api) return;  // a cluster: the API server reflects the statuses the kubelet writes
  auto obj = std::make_shared<const api::Object>(*pod);
  api::ObjectPtr prev = old ? std::make_shared<const api::Object>(*old) : nullptr;
  boost::asio::post(io_, [this, obj, prev] {
    store_.on_event(Event{prev ? EventType::kModified : EventType::kAdded, obj, prev});
  });
}

// ---- relist (PLEG) ----

void Kubelet::arm_relist() {
  if (stopped_) return;
  relist_timer_.expires_after(options_.relist_period);
  relist_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    if (relist_in_flight_) return arm_relist();
    relist_in_flight_ = true;
    boost::asio::post(pool_, [this] {
      auto r = relist(rt_);
      boost::asio::post(io_, [this, r = std::move(r)]() mutable { relisted(std::move(r)); });
    });
  });
}

void Kubelet::relisted(Result<Relist> r) {
  relist_in_flight_ = false;
  if (stopped_) return;
  for (const auto& uid : std::vector<std::string>(overwritten_.begin(), overwritten_.end())) restate(uid);
  if (!r.ok()) {
    health_.set_unhealthy(kRuntimeComponent, "the container runtime is down: " + r.error());
    KLOG(WARNING, "relist failed").kv("err", r.error());
    return arm_relist();
  }
  health_.set_healthy(kRuntimeComponent);
  last_relist_ok_ = clock_.steady_now();
  const auto now = clock_.steady_now();
  if (!last_relist_ || now - last_resync_ >= options_.resync_period) {
    // The runtime came (back), or the periodic resync: every pod looks again.
    last_resync_ = now;
    for (const auto& [uid, e] : pods_) e.worker->sync();
  } else {
    for (const auto& uid : changed_pods(*last_relist_, *r)) {
      auto it = pods_.find(uid);
      if (it == pods_.end()) continue;
      auto listed = r->find(uid);
      it->second.worker->sync_unless_seen(listed != r->end() ? listed->second : PodSnapshot{});
    }
  }
  if (inputs_synced_) adopt_orphans(*r);
  last_relist_ = std::move(*r);
  arm_relist();
}

// Sandboxes of pods no source wants any more (a manifest removed while knode was down):
// terminate them.
void Kubelet::adopt_orphans(const Relist& r) {
  for (const auto& [uid, snap] : r) {
    if (pods_.count(uid) || terminating_.count(uid)) continue;
    KLOG(INFO, "removing a pod no source wants").kv("pod", snap.ns + "/" + snap.name).kv("uid", uid);
    PodWorkerDeps deps{rt_, env_, options_.node, clock_, io_, pool_, options_.events};
    auto worker = std::make_shared<PodWorker>(deps, orphan(uid, snap), [](const api::Pod&, const api::PodStatus&) {});
    terminating_[uid] = worker;
    {
      std::lock_guard lock(known_mu_);
      known_.insert(uid);
    }
    worker->terminate([this, uid] {
      terminating_.erase(uid);
      std::lock_guard lock(known_mu_);
      known_.erase(uid);
    });
  }
}

}  // namespace knode::kubelet
