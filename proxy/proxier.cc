#include "proxier.h"

#include <malloc.h>

#include <algorithm>
#include <iterator>

#include <boost/asio/post.hpp>

#include "knode/api/convert.h"
#include "knode/log.h"

namespace knode::proxy {
namespace {

// The service an EndpointSlice belongs to, from its kubernetes.io/service-name label.
std::optional<std::string> slice_service(const api::EndpointSlice& es) {
  auto it = es.metadata.labels.find(api::EndpointSlice::kServiceNameLabel);
  if (it == es.metadata.labels.end() || it->second.empty()) return std::nullopt;
  return es.metadata.namespace_ + "/" + it->second;
}

double seconds(Clock::SteadyTime::duration d) { return std::chrono::duration<double>(d).count(); }

// Wall time of the proxier's own stages, for the sync log (not the injected clock, which
// tests stop).
double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

Proxier::Proxier(boost::asio::io_context& io, ObjectStore& store, ProxyBackendPtr mode,
                 ProxierOptions options, metrics::Registry& m, ProxyHealth& health,
                 const Clock& clock)
    : io_(io),
      store_(store),
      mode_(std::move(mode)),
      options_(std::move(options)),
      health_(health),
      clock_(clock),
      scheduler_(options_.min_sync_period, options_.sync_period, clock.steady_now()),
      timer_(io),
      follow_up_(io),
      worker_(options_.sync_executor ? nullptr : std::make_unique<boost::asio::thread_pool>(1)),
      sync_executor_(options_.sync_executor ? *options_.sync_executor : worker_->get_executor()),
      sync_duration_(m.histogram("kubeproxy_sync_proxy_rules_duration_seconds",
                                 "SyncProxyRules latency in seconds",
                                 metrics::exponential_buckets(0.001, 2, 15))),
      full_sync_duration_(m.histogram("kubeproxy_sync_full_proxy_rules_duration_seconds",
                                      "SyncProxyRules latency in seconds for full resyncs",
                                      metrics::exponential_buckets(0.001, 2, 15))),
      partial_sync_duration_(m.histogram("kubeproxy_sync_partial_proxy_rules_duration_seconds",
                                         "SyncProxyRules latency in seconds for partial resyncs",
                                         metrics::exponential_buckets(0.001, 2, 15))),
      programming_duration_(m.histogram(
          "kubeproxy_network_programming_duration_seconds",
          "In-cluster network programming latency in seconds: from the change being observed "
          "to it being programmed",
          metrics::exponential_buckets(0.001, 2, 20))),
      last_sync_timestamp_(m.gauge("kubeproxy_sync_proxy_rules_last_timestamp_seconds",
                                   "The last time proxy rules were successfully synced")),
      last_queued_timestamp_(m.gauge("kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds",
                                     "The last time a sync of proxy rules was queued")),
      rules_total_(m.gauge_family("kubeproxy_sync_proxy_rules_iptables_total",
                                  "Total number of iptables rules owned by knode", {"table"})),
      sync_failures_(m.counter("kubeproxy_sync_proxy_rules_failures_total",
                               "Syncs that failed to program the kernel")),
      service_ports_(m.gauge("knode_proxy_service_ports", "Service ports in the proxy model")) {
  m.gauge_family("knode_proxy_mode", "The proxy mode in effect (1 for the active one)", {"mode"})
      .with({mode_->mode()})
      .set(1);
  if (mode_->mode() == "nftables") {
    nftables_sync_failures_ = &m.counter("kubeproxy_sync_proxy_rules_nftables_sync_failures_total",
                                         "Total number of nftables sync failures");
  }
}

Proxier::~Proxier() { stop(); }

void Proxier::start() {
  // The sync loop starts now, as kube-proxy reports it; from here on a change that is not
  // programmed within the health timeout turns /healthz to 503.
  health_.updated(ProxyHealth::kIPv4);
  store_.subscribe(api::Kind::kService, [this](const Event& e) { on_service(e); });
  store_.subscribe(api::Kind::kEndpointSlice, [this](const Event& e) { on_slice(e); });
  store_.subscribe(api::Kind::kEndpoints, [this](const Event& e) { on_endpoints(e); });
  store_.on_all_synced([this] {
    KLOG(INFO, "proxy: initial state received; programming").kv("mode", mode_->mode())
        .kv("servicePorts", service_port_count());
    scheduler_.ready();
    schedule();
  });
}

void Proxier::stop() {
  if (stopped_) return;
  stopped_ = true;
  timer_.cancel();
  follow_up_.cancel();
  if (worker_) worker_->join();
}

size_t Proxier::service_port_count() const {
  size_t n = 0;
  for (const auto& [k, v] : ports_) n += v.fresh ? v.ports.size() : v.n;
  return n;
}

std::pair<const proxy::ServicePort*, size_t> Proxier::current(const Ports& p) const {
  if (p.fresh) return {p.ports.data(), p.ports.size()};
  if (p.at >= 0) return {model_->services.data() + p.at, p.n};
  return {nullptr, 0};
}

void Proxier::on_service(const Event& e) {
  std::string key = api::namespaced_name(api::meta_of(*e.object));
  if (e.type == EventType::kDeleted) {
    services_.erase(key);
  } else {
    services_[key] = service_info(api::get<api::Service>(*e.object));
  }
  recompute(key);
}

// A deletion may carry only the slice's namespace and name (an informer that keeps no
// objects): where the slice was is slice_service_'s to say.
void Proxier::on_slice(const Event& e) {
  const auto& meta = api::meta_of(*e.object);
  const std::string slice_key = api::namespaced_name(meta);
  std::optional<std::string> svc;
  if (e.type != EventType::kDeleted) svc = slice_service(api::get<api::EndpointSlice>(*e.object));
  // A deleted or relabelled slice leaves the service it was with.
  if (auto was = slice_service_.find(slice_key); was != slice_service_.end() && was->second != svc) {
    std::string old_svc = std::move(was->second);
    slice_service_.erase(was);
    if (auto s = slices_.find(old_svc); s != slices_.end()) {
      s->second.erase(meta.name);
      if (s->second.empty()) slices_.erase(s);
    }
    recompute(old_svc);
  }
  if (!svc) return;
  slices_[*svc].insert_or_assign(meta.name, slice_info(api::get<api::EndpointSlice>(*e.object), options_.node));
  slice_service_[slice_key] = *svc;
  recompute(*svc);
}

void Proxier::on_endpoints(const Event& e) {
  std::string key = api::namespaced_name(api::meta_of(*e.object));
  if (e.type == EventType::kDeleted) {
    mirrored_.erase(key);
  } else {
    std::vector<SliceInfo> infos;
    for (const auto& es : api::endpoints_to_slices(api::get<api::Endpoints>(*e.object))) {
      infos.push_back(slice_info(es, options_.node));
    }
    mirrored_[key] = std::move(infos);
  }
  recompute(key);
}

void Proxier::recompute(const std::string& key) {
  std::vector<proxy::ServicePort> now;
  if (auto it = services_.find(key); it != services_.end()) {
    std::vector<const SliceInfo*> slices;
    // EndpointSlices win; legacy Endpoints are used only for services that have none
    // (in a cluster the mirroring controller makes slices from them anyway).
    if (auto s = slices_.find(key); s != slices_.end() && !s->second.empty()) {
      for (const auto& [n, es] : s->second) slices.push_back(&es);
    } else if (auto m = mirrored_.find(key); m != mirrored_.end()) {
      for (const auto& es : m->second) slices.push_back(&es);
    }
    now = build_service_ports(it->second, slices);
  }
  Ports& entry = ports_[key];
  const auto [before, before_n] = current(entry);
  if (std::equal(before, before + before_n, now.begin(), now.end())) {
    if (now.empty()) ports_.erase(key);
    return;
  }
  std::set<std::string> names;
  for (size_t i = 0; i < before_n; ++i) names.insert(before[i].name);
  for (const auto& sp : now) names.insert(sp.name);
  if (now.size() != (entry.at >= 0 ? entry.n : 0)) reshape_ = true;
  if (now.empty() && entry.at < 0) {
    ports_.erase(key);  // never in the model
  } else {
    entry.ports = std::move(now);
    entry.fresh = true;
    fresh_.insert(key);
  }
  pending_.insert(names.begin(), names.end());
  if (!first_pending_) first_pending_ = clock_.steady_now();
  health_.queued_update(ProxyHealth::kIPv4);
  last_queued_timestamp_.set(std::chrono::duration<double>(clock_.system_now().time_since_epoch()).count());
  scheduler_.changed();
  schedule_after_burst();
}

// Changes come in bursts delivered in one go (a manifest file, a page of a list, a watch
// batch): the decision to sync waits until the loop has delivered the whole burst, so a
// sync never sees half of a file (a Service without the EndpointSlice next to it would be
// a REJECT rule in the kernel until the next sync). A relist's pages come one by one, so a
// sync may see some of them: every state in between is newer objects and the deletions
// still to come, as a watch would have brought them.
void Proxier::schedule_after_burst() {
  if (burst_pending_ || stopped_) return;
  burst_pending_ = true;
  timer_.expires_after(std::chrono::nanoseconds(0));
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) schedule();  // (cancelled: by stop(), or by schedule(), which cleared the flag)
  });
}

void Proxier::schedule() {
  burst_pending_ = false;
  if (stopped_) return;
  auto now = clock_.steady_now();
  auto d = scheduler_.decide(now);
  if (d.run) {
    start_sync(d.full, d.periodic);
    return;
  }
  if (d.wake_at == SyncScheduler::TimePoint::max()) return;
  // The wait is measured on the injected clock; the timer only sleeps that long.
  timer_.expires_after(d.wake_at - now);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) schedule();
  });
}

void Proxier::start_sync(bool full, bool periodic) {
  auto now = clock_.steady_now();
  scheduler_.started(now, full);
  const auto prepare_start = std::chrono::steady_clock::now();
  merge_changes();
  // The worker reads the model in place; the loop leaves it alone until the sync is over.
  std::shared_ptr<const proxy::ProxyState> state = model_;
  std::set<std::string> changed = std::move(pending_);
  pending_.clear();
  Clock::SteadyTime first_change = first_pending_.value_or(now);
  first_pending_.reset();
  service_ports_.set(static_cast<double>(state->services.size()));
  if (on_state_) on_state_(*state);
  const double prepare_ms = ms_since(prepare_start);
  boost::asio::post(sync_executor_, [this, state, changed = std::move(changed), full, periodic, now,
                                     first_change, prepare_ms]() mutable {
    SyncStats stats;
    SyncTiming timing{prepare_ms, 0};
    const auto mode_start = std::chrono::steady_clock::now();
    // A periodic resync of a mode that can see the kernel is as it left it syncs only
    // what changed (kube-proxy: a full sync hourly, not every sync period).
    if (periodic && mode_->kernel_as_left()) full = false;
    Status s = mode_->sync(*state, changed, full, &stats);
    timing.mode_ms = ms_since(mode_start);
    // A full sync frees as much as it allocated (the whole ruleset, described once), in
    // pieces too small for free() to hand back: give the pages back now, not at the peak
    // of the next one.
    if (full) ::malloc_trim(0);
    boost::asio::post(io_, [this, state = std::move(state), s, stats, timing, full, changed = std::move(changed), now,
                            first_change]() mutable {
      state.reset();
      finish_sync(std::move(s), std::move(stats), timing, full, std::move(changed), now, first_change);
    });
  });
}

void Proxier::merge_changes() {
  if (model_ && !reshape_) {
    // Every changed service has as many ports as the model holds for it: in place.
    for (const auto& key : fresh_) {
      auto it = ports_.find(key);
      if (it == ports_.end() || !it->second.fresh) continue;
      Ports& v = it->second;
      std::move(v.ports.begin(), v.ports.end(), model_->services.begin() + v.at);
      v.ports = {};
      v.fresh = false;
    }
    fresh_.clear();
    return;
  }
  // Services or ports came or went: the model again, in order, from what it held and the
  // changed services' own vectors (moved, not copied).
  auto next = std::make_shared<proxy::ProxyState>();
  next->services.reserve(service_port_count());
  for (auto it = ports_.begin(); it != ports_.end();) {
    Ports& v = it->second;
    const auto at = static_cast<int64_t>(next->services.size());
    size_t n = 0;
    if (v.fresh) {
      n = v.ports.size();
      std::move(v.ports.begin(), v.ports.end(), std::back_inserter(next->services));
    } else if (v.at >= 0) {
      n = v.n;
      auto from = model_->services.begin() + v.at;
      std::move(from, from + static_cast<std::ptrdiff_t>(n), std::back_inserter(next->services));
    }
    v.ports = {};
    v.fresh = false;
    v.at = at;
    v.n = n;
    if (n == 0) {
      it = ports_.erase(it);
    } else {
      ++it;
    }
  }
  model_ = std::move(next);
  fresh_.clear();
  reshape_ = false;
}

void Proxier::finish_sync(Status status, SyncStats stats, SyncTiming timing, bool full, std::set<std::string> changed,
                          Clock::SteadyTime started, Clock::SteadyTime first_change) {
  auto now = clock_.steady_now();
  scheduler_.finished(now, status.ok());
  double took = seconds(now - started);
  if (!status.ok()) {
    ++syncs_failed_;
    sync_failures_.inc();
    if (nftables_sync_failures_) nftables_sync_failures_->inc();
    // Keep the changes pending so the retry (a full sync) covers them.
    pending_.insert(changed.begin(), changed.end());
    // (the oldest change still waiting counts, for the programming latency)
    if (!first_pending_ || first_change < *first_pending_) first_pending_ = first_change;
    health_.queued_update(ProxyHealth::kIPv4);
    KLOG(ERROR, "proxy sync failed; will retry").kv("mode", mode_->mode()).kv("err", status.message());
  } else {
    ++syncs_ok_;
    sync_duration_.observe(took);
    (full ? full_sync_duration_ : partial_sync_duration_).observe(took);
    if (!changed.empty()) programming_duration_.observe(seconds(now - first_change));
    last_sync_timestamp_.set(std::chrono::duration<double>(clock_.system_now().time_since_epoch()).count());
    for (const auto& [table, n] : stats.rules_by_table) rules_total_.with({table}).set(static_cast<double>(n));
    if (pending_.empty()) health_.updated(ProxyHealth::kIPv4);
    if (syncs_ok_ == 1 && first_sync_) first_sync_();
    if (stats.resync_after.count() > 0) {
      follow_up_.expires_after(stats.resync_after);
      follow_up_.async_wait([this](const boost::system::error_code& ec) {
        if (ec || stopped_) return;
        scheduler_.housekeeping();
        schedule();
      });
    }
    KLOGV(full ? 1 : 2, "proxy synced")
        .kv("mode", mode_->mode())
        .kv("full", full)
        .kv("changedServicePorts", changed.size())
        .kv("rules", stats.rules_written)
        .kv("changes", stats.changes)
        .kv("tookMs", took * 1000)
        .kv("queuedMs", seconds(started - first_change) * 1000)
        .kv("prepareMs", timing.prepare_ms)
        .kv("modeMs", timing.mode_ms);
  }
  schedule();
}

}  // namespace knode::proxy
