#include "ipvs/virtual_servers.h"

#include <algorithm>
#include <cerrno>

#include "knode/log.h"

namespace knode::ipvs_proxy {

struct VirtualServers::Apply {
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

VirtualServers::VirtualServers(ipvs::Ipvs& ipvs, VirtualServersConfig config)
    : ipvs_(ipvs), config_(std::move(config)) {}

std::chrono::steady_clock::time_point VirtualServers::now() const {
  return config_.now ? config_.now() : std::chrono::steady_clock::now();
}

bool VirtualServers::excluded(const net::IPAddress& ip) const {
  return std::any_of(config_.exclude_cidrs.begin(), config_.exclude_cidrs.end(),
                     [&](const net::Cidr& c) { return c.contains(ip); });
}

// ---- planning ----

bool VirtualServers::contested_by_changed(const std::set<std::string>& changed) const {
  for (const auto& name : changed) {
    auto it = applied_.find(name);
    if (it == applied_.end()) continue;
    for (const auto& k : it->second) {
      if (contested_.count(k)) return true;
    }
  }
  return false;
}

// A changed service claiming a key an unchanged one holds.
bool VirtualServers::claims_held_key(const SyncPlan& plan) const {
  for (const auto& [k, d] : plan.desired) {
    auto owner = owner_of_.find(k);
    if (owner != owner_of_.end() && owner->second != d.owner && !plan.changed.count(owner->second)) return true;
  }
  return false;
}

SyncPlan VirtualServers::plan(const proxy::ProxyState& state, const std::set<std::string>& changed, bool full) {
  SyncPlan p;
  p.full = full || force_full_ || contested_by_changed(changed);
  p.changed = changed;
  if (!p.full) {
    // Only the changed services: a change costs O(change), not O(services).
    for (const auto* sp : proxy::find_ports(state, changed)) add_desired(*sp, config_.desired, &p.desired, &contested_);
    p.full = claims_held_key(p);
  }
  if (p.full) {
    contested_.clear();
    p.desired = build_desired(state, config_.desired, &contested_);
  }
  return p;
}

// ---- observing ----

Status VirtualServers::observe_one(const ServiceKey& key, std::map<ServiceKey, Observed>* out) {
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

// A partial sync looks at what the changed services had and want now, plus services
// with draining real servers (their connections may be gone).
std::set<ServiceKey> VirtualServers::scope_of(const SyncPlan& plan) const {
  std::set<ServiceKey> scope;
  for (const auto& [k, d] : plan.desired) scope.insert(k);
  for (const auto& name : plan.changed) {
    auto it = applied_.find(name);
    if (it != applied_.end()) scope.insert(it->second.begin(), it->second.end());
  }
  for (const auto& [dk, since] : draining_) scope.insert(std::get<0>(dk));
  return scope;
}

Status VirtualServers::observe(const SyncPlan& plan, const std::set<ServiceKey>& scope,
                               std::map<ServiceKey, Observed>* out) {
  if (!plan.full) {
    for (const auto& k : scope) {
      if (Status st = observe_one(k, out); !st.ok()) return st;
    }
    return Status::Ok();
  }
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

// ---- applying ----

// A real server that is no longer wanted: drain, then delete.
void VirtualServers::retire(const ServiceKey& key, const VirtualServer& vs, const RealServer& rs, Apply& apply) {
  const DestKey dk{key, rs.address, rs.port};
  const bool connections = rs.active_connections + rs.inactive_connections > 0;
  // UDP and SCTP have no close to wait for: kube-proxy deletes those at once.
  const bool graceful = vs.protocol == net::Protocol::kTCP;
  auto it = draining_.find(dk);
  const bool expired = it != draining_.end() && now() - it->second >= config_.graceful_termination_bound;
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

void VirtualServers::reconcile(const ServiceKey& key, const DesiredService* want, const Observed* have,
                               Apply& apply) {
  if (want == nullptr) {
    if (have != nullptr) {
      Status st = ipvs_.delete_service(have->vs);
      if (!st.ok() && st.error_number() == ESRCH) st = Status::Ok();
      apply.record(st);
      std::erase_if(draining_, [&](const auto& d) { return std::get<0>(d.first) == key; });
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

// A service outside this sync's changes that has draining real servers: delete those
// whose connections are gone (or whose bound passed); leave everything else.
void VirtualServers::recheck_draining(const ServiceKey& key, const Observed& have, Apply& apply) {
  for (const auto& d : have.dests) {
    if (draining_.count(DestKey{key, d.address, d.port})) retire(key, have.vs, d, apply);
  }
}

// ---- bookkeeping: which keys each service holds ----

void VirtualServers::forget(const std::string& owner) {
  auto it = applied_.find(owner);
  if (it == applied_.end()) return;
  for (const auto& k : it->second) {
    auto o = owner_of_.find(k);
    if (o != owner_of_.end() && o->second == owner) owner_of_.erase(o);
  }
  objects_ -= owner_objects_[owner];
  owner_objects_.erase(owner);
  applied_.erase(it);
}

void VirtualServers::remember(const SyncPlan& plan) {
  if (plan.full) {
    applied_.clear();
    owner_of_.clear();
    owner_objects_.clear();
    objects_ = 0;
  } else {
    for (const auto& name : plan.changed) forget(name);
  }
  for (const auto& [k, d] : plan.desired) {
    applied_[d.owner].insert(k);
    owner_of_.emplace(k, d.owner);
    owner_objects_[d.owner] += 1 + d.dests.size();
    objects_ += 1 + d.dests.size();
  }
}

Status VirtualServers::apply(const SyncPlan& plan, size_t* changes) {
  Apply apply;
  const auto& t = config_.timeouts;
  if (!synced_once_ && (t.tcp || t.tcp_fin || t.udp)) apply.record(ipvs_.set_timeouts(t));

  std::map<ServiceKey, Observed> observed;
  std::set<ServiceKey> scope = plan.full ? std::set<ServiceKey>{} : scope_of(plan);
  if (Status st = observe(plan, scope, &observed); !st.ok()) {
    force_full_ = true;
    return st.Wrap("sync ipvs: read the kernel's table");
  }
  if (plan.full) {
    for (const auto& [k, o] : observed) scope.insert(k);
    for (const auto& [k, d] : plan.desired) scope.insert(k);
  }

  for (const auto& k : scope) {
    if (excluded(std::get<0>(k))) continue;
    auto w = plan.desired.find(k);
    auto h = observed.find(k);
    if (w == plan.desired.end() && !plan.full) {
      // Out of the changed services' reach: a draining server of an unchanged service.
      auto owner = owner_of_.find(k);
      if (owner != owner_of_.end() && !plan.changed.count(owner->second)) {
        if (h != observed.end()) recheck_draining(k, h->second, apply);
        continue;
      }
    }
    reconcile(k, w == plan.desired.end() ? nullptr : &w->second, h == observed.end() ? nullptr : &h->second,
              apply);
  }
  remember(plan);

  synced_once_ = true;
  force_full_ = apply.failures > 0;
  if (changes != nullptr) *changes = apply.changes;
  if (apply.failures > 0) {
    return Status::Error("sync ipvs: " + std::to_string(apply.failures) +
                             " changes failed; first: " + apply.first_error.message(),
                         apply.first_error.error_number());
  }
  return Status::Ok();
}

Status VirtualServers::cleanup() {
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
  owner_of_.clear();
  owner_objects_.clear();
  objects_ = 0;
  force_full_ = true;
  return first.ok() ? first : first.Wrap("cleanup ipvs");
}

}  // namespace knode::ipvs_proxy
