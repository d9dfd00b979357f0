#include "ipvs/ipvs_backend.h"

#include <algorithm>
#include <cerrno>

#include "knode/log.h"

namespace knode::ipvs {

struct IpvsBackend::Apply {
  size_t changes = 0;
  size_t failures = 0;
  Status first_error;
  void record(const Status& st) {
    if (st.ok()) {
      ++changes;
      return;
    }
    if (failures++ == 0) first_error = st;
    KLOG(ERROR, "ipvs change failed").kv("error", st.message());
  }
};

IpvsBackend::IpvsBackend(Ipvs& ipvs, IpvsBackendConfig config)
    : ipvs_(ipvs), config_(std::move(config)) {}

std::chrono::steady_clock::time_point IpvsBackend::now() const {
  return config_.now ? config_.now() : std::chrono::steady_clock::now();
}

bool IpvsBackend::excluded(const net::IPAddress& ip) const {
  return std::any_of(config_.exclude_cidrs.begin(), config_.exclude_cidrs.end(),
                     [&](const net::Cidr& c) { return c.contains(ip); });
}

Status IpvsBackend::observe_all(std::map<ServiceKey, Observed>* out) {
  auto services = ipvs_.list_services();
  if (!services.ok()) return services.status();
  for (auto& vs : *services) {
    if (excluded(vs.address)) continue;
    auto dests = ipvs_.list_destinations(vs);
    if (!dests.ok()) return dests.status();
    (*out)[key_of(vs)] = Observed{vs, std::move(*dests)};
  }
  return Status::Ok();
}

Status IpvsBackend::observe_one(const ServiceKey& key, std::map<ServiceKey, Observed>* out) {
  VirtualServer probe;
  std::tie(probe.address, probe.port, probe.protocol) = key;
  if (excluded(probe.address)) return Status::Ok();
  auto vs = ipvs_.get_service(probe);
  if (!vs.ok()) {
    int e = vs.status().error_number();
    return e == ESRCH || e == ENOENT ? Status::Ok() : vs.status();
  }
  auto dests = ipvs_.list_destinations(*vs);
  if (!dests.ok()) return dests.status();
  (*out)[key] = Observed{*vs, std::move(*dests)};
  return Status::Ok();
}

// A real server that is no longer wanted: drain, then delete.
void IpvsBackend::retire(const ServiceKey& key, const VirtualServer& vs, const RealServer& rs,
                         Apply& apply) {
  const DestKey dk{key, rs.address, rs.port};
  const bool connections = rs.active_connections + rs.inactive_connections > 0;
  // UDP and SCTP have no close to wait for: kube-proxy deletes those at once.
  const bool graceful = vs.protocol == dp::Protocol::kTCP;
  auto it = draining_.find(dk);
  const bool expired = it != draining_.end() &&
                       now() - it->second >= config_.graceful_termination_bound;
  if (!graceful || !connections || expired) {
    Status st = ipvs_.delete_destination(vs, rs);
    if (!st.ok() && st.error_number() == ENOENT) st = Status::Ok();
    apply.record(st);
    draining_.erase(dk);
    return;
  }
  if (it == draining_.end()) draining_[dk] = now();
  if (rs.weight != 0) {
    RealServer zero = rs;
    zero.weight = 0;
    apply.record(ipvs_.update_destination(vs, zero));
  }
}

void IpvsBackend::reconcile(const ServiceKey& key, const DesiredService* want,
                            const Observed* have, Apply& apply) {
  if (want == nullptr) {
    if (have != nullptr) {
      Status st = ipvs_.delete_service(have->vs);
      if (!st.ok() && st.error_number() == ESRCH) st = Status::Ok();
      apply.record(st);
      for (auto it = draining_.begin(); it != draining_.end();) {
        it = std::get<0>(it->first) == key ? draining_.erase(it) : std::next(it);
      }
    }
    return;
  }
  if (have == nullptr) {
    Status st = ipvs_.add_service(want->vs);
    apply.record(st);
    if (!st.ok()) return;
    for (const auto& rs : want->dests) apply.record(ipvs_.add_destination(want->vs, rs));
    return;
  }
  if (!have->vs.same_config(want->vs)) apply.record(ipvs_.update_service(want->vs));
  for (const auto& rs : want->dests) {
    auto found = std::find_if(have->dests.begin(), have->dests.end(),
                              [&](const RealServer& d) { return d.same_key(rs); });
    if (found == have->dests.end()) {
      apply.record(ipvs_.add_destination(want->vs, rs));
    } else if (!found->same_config(rs)) {
      apply.record(ipvs_.update_destination(want->vs, rs));  // also revives a draining one
    }
    draining_.erase(DestKey{key, rs.address, rs.port});
  }
  for (const auto& d : have->dests) {
    bool wanted = std::any_of(want->dests.begin(), want->dests.end(),
                              [&](const RealServer& rs) { return rs.same_key(d); });
    if (!wanted) retire(key, want->vs, d, apply);
  }
}

Status IpvsBackend::sync(const dp::ProxyState& state, const std::set<std::string>& changed,
                         bool full, SyncStats* stats) {
  Apply apply;
  if (!synced_once_ && (config_.timeouts.tcp || config_.timeouts.tcp_fin || config_.timeouts.udp)) {
    apply.record(ipvs_.set_timeouts(config_.timeouts));
  }
  full = full || force_full_;
  // A key two service ports claim is decided among all claimants: when a changed one
  // held or claimed such a key, look at everything.
  if (!full) {
    for (const auto& name : changed) {
      auto it = applied_.find(name);
      if (it == applied_.end()) continue;
      for (const auto& k : it->second) full = full || contested_.count(k) > 0;
    }
  }

  // What the services in scope want: all of them, or (partial) only the changed ones, so
  // a change costs O(change) and not O(services). A key another, unchanged service
  // already holds stays with it (first claimant wins, as a full sync decides).
  std::map<ServiceKey, DesiredService> desired;
  if (full) {
    contested_.clear();
    desired = build_desired(state, config_.desired, &contested_);
  } else {
    for (const auto& sp : state.services) {
      if (changed.count(sp.name)) add_desired(sp, config_.desired, &desired, &contested_);
    }
    // A changed service claiming a key an unchanged one holds: decide among all claimants,
    // as a full sync would, so ownership does not depend on when the last full sync ran.
    for (const auto& [k, d] : desired) {
      auto owner = owner_of_.find(k);
      if (owner != owner_of_.end() && owner->second != d.owner && !changed.count(owner->second)) full = true;
    }
    if (full) {
      contested_.clear();
      desired = build_desired(state, config_.desired, &contested_);
    }
  }

  // Which keys to look at: everything, or what the changed services had and want now,
  // plus services with draining real servers (their connections may be gone).
  std::map<ServiceKey, Observed> observed;
  std::set<ServiceKey> scope;
  Status st;
  if (full) {
    st = observe_all(&observed);
    for (const auto& [k, o] : observed) scope.insert(k);
    for (const auto& [k, d] : desired) scope.insert(k);
  } else {
    for (const auto& [k, d] : desired) scope.insert(k);
    for (const auto& name : changed) {
      auto it = applied_.find(name);
      if (it != applied_.end()) scope.insert(it->second.begin(), it->second.end());
    }
    for (const auto& [dk, since] : draining_) scope.insert(std::get<0>(dk));
    for (const auto& k : scope) {
      if (st.ok()) st = observe_one(k, &observed);
    }
  }
  if (!st.ok()) {
    force_full_ = true;
    return st.Wrap("sync ipvs: read the kernel's table");
  }

  for (const auto& k : scope) {
    if (excluded(std::get<0>(k))) continue;
    auto w = desired.find(k);
    if (w == desired.end() && !full) {
      // Out of the changed services' reach: a draining server of an unchanged service.
      auto owner = owner_of_.find(k);
      if (owner != owner_of_.end() && !changed.count(owner->second)) {
        auto h = observed.find(k);
        if (h != observed.end()) recheck_draining(k, h->second, apply);
        continue;
      }
    }
    auto h = observed.find(k);
    reconcile(k, w == desired.end() ? nullptr : &w->second,
              h == observed.end() ? nullptr : &h->second, apply);
  }

  // Bookkeeping: which keys each service holds, and the VIPs they need.
  auto forget = [&](const std::string& name) {
    auto it = applied_.find(name);
    if (it == applied_.end()) return;
    for (const auto& k : it->second) {
      auto o = owner_of_.find(k);
      if (o != owner_of_.end() && o->second == name) owner_of_.erase(o);
    }
    objects_ -= owner_objects_[name];
    owner_objects_.erase(name);
    applied_.erase(it);
  };
  if (full) {
    applied_.clear();
    owner_of_.clear();
    owner_objects_.clear();
    objects_ = 0;
  } else {
    for (const auto& name : changed) forget(name);
  }
  for (const auto& [k, d] : desired) {
    applied_[d.owner].insert(k);
    owner_of_.emplace(k, d.owner);
    owner_objects_[d.owner] += 1 + d.dests.size();
    objects_ += 1 + d.dests.size();
  }

  if (config_.sync_vips) {
    bool vips_changed = full;
    auto update = [&](const std::string& name, const std::set<net::IPAddress>& now) {
      auto& had = service_vips_[name];
      for (const auto& ip : had) {
        if (!now.count(ip) && --vip_refs_[ip] == 0) vip_refs_.erase(ip), vips_changed = true;
      }
      for (const auto& ip : now) {
        if (!had.count(ip) && vip_refs_[ip]++ == 0) vips_changed = true;
      }
      if (now.empty()) service_vips_.erase(name); else had = now;
    };
    if (full) {
      service_vips_.clear();
      vip_refs_.clear();
    }
    std::set<std::string> seen;
    for (const auto& sp : state.services) {
      if (!full && !changed.count(sp.name)) continue;
      seen.insert(sp.name);
      std::set<net::IPAddress> mine(sp.external_ips.begin(), sp.external_ips.end());
      mine.insert(sp.load_balancer_ips.begin(), sp.load_balancer_ips.end());
      if (sp.cluster_ip.valid()) mine.insert(sp.cluster_ip);
      update(sp.name, mine);
    }
    if (!full) {
      for (const auto& name : changed) {
        if (!seen.count(name)) update(name, {});
      }
    }
    if (vips_changed) {
      std::set<net::IPAddress> vips;
      for (const auto& [ip, n] : vip_refs_) vips.insert(ip);
      auto t0 = std::chrono::steady_clock::now();
      apply.record(config_.sync_vips(vips));
      KLOGV(2, "VIPs synced").kv("vips", vips.size())
          .kv("ms", std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
  }

  synced_once_ = true;
  force_full_ = apply.failures > 0;
  if (stats != nullptr) {
    stats->rules_written = objects_;
    stats->changes = apply.changes;
  }
  if (apply.failures > 0) {
    return Status::Error("sync ipvs: " + std::to_string(apply.failures) +
                             " changes failed; first: " + apply.first_error.message(),
                         apply.first_error.error_number());
  }
  return Status::Ok();
}

// A service outside this sync's changes that has draining real servers: delete those
// whose connections are gone (or whose bound passed); leave everything else.
void IpvsBackend::recheck_draining(const ServiceKey& key, const Observed& have, Apply& apply) {
  for (const auto& d : have.dests) {
    if (draining_.count(DestKey{key, d.address, d.port})) retire(key, have.vs, d, apply);
  }
}

Status IpvsBackend::cleanup() {
  auto services = ipvs_.list_services();
  if (!services.ok()) {
    // No IPVS in this kernel: nothing of ours can be there.
    if (!ipvs_.is_available()) return Status::Ok();
    return services.status().Wrap("cleanup ipvs");
  }
  Status first;
  for (const auto& vs : *services) {
    if (excluded(vs.address)) continue;
    Status st = ipvs_.delete_service(vs);
    if (!st.ok() && st.error_number() != ESRCH && first.ok()) first = st;
  }
  draining_.clear();
  applied_.clear();
  force_full_ = true;
  if (config_.sync_vips) {
    Status st = config_.sync_vips({});
    if (!st.ok() && first.ok()) first = st;
  }
  return first.ok() ? first : first.Wrap("cleanup ipvs");
}

}  // namespace knode::ipvs
