#include "ipvs/proxier.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <tuple>

#include "ipvs/companion_sync.h"
#include "ipvs/vips.h"
#include "ipvs/virtual_servers.h"
#include "knode/dataplane/link.h"
#include "knode/log.h"

namespace knode::ipvs_proxy {

Status cleanup_ipvs_sets(ipset::Ipset& sets) { return destroy_companion_sets(sets); }

VirtualServerDrain LeftoverDrain::pass(ipvs::Ipvs& ipvs, std::chrono::steady_clock::time_point now) {
  VirtualServerDrain out;
  auto fail = [&](const Status& st) {
    if (out.error.ok()) out.error = st.Wrap("drain ipvs");
  };
  auto excluded = [&](const net::IPAddress& a) {
    return std::any_of(exclude_.begin(), exclude_.end(), [&](const net::Cidr& c) { return c.contains(a); });
  };
  auto services = ipvs.list_services();
  if (!services.ok()) {
    fail(services.status());
    for (const auto& vs : scope_) out.busy.insert(vs.address);
    return out;
  }
  if (!started_) {
    started_ = true;
    first_ = now;
    for (const auto& vs : *services) {
      if (!excluded(vs.address)) scope_.push_back(vs);
    }
  }
  const bool overdue = now - first_ >= bound_;
  // The kernel's services by key (IPVS mode leaves tens of thousands at 10,000 Services).
  std::map<std::tuple<net::IPAddress, uint16_t, net::Protocol>, const ipvs::VirtualServer*> present;
  for (const auto& v : *services) present.emplace(std::make_tuple(v.address, v.port, v.protocol), &v);
  std::vector<ipvs::VirtualServer> kept;
  for (const auto& mine : scope_) {
    auto it = present.find(std::make_tuple(mine.address, mine.port, mine.protocol));
    if (it == present.end()) continue;  // gone already
    const ipvs::VirtualServer& vs = *it->second;
    uint64_t connections = 0;
    auto dests = ipvs.list_destinations(vs);
    if (!dests.ok()) {
      fail(dests.status());
      kept.push_back(mine);
      out.busy.insert(vs.address);
      continue;
    }
    for (const auto& rs : *dests) connections += uint64_t{rs.active_connections} + rs.inactive_connections;
    if (connections == 0 || overdue || vs.protocol != net::Protocol::kTCP) {
      Status st = ipvs.delete_service(vs);
      if (st.ok() || st.error_number() == ESRCH) {
        ++out.deleted;
        continue;
      }
      fail(st);
    } else {
      for (auto rs : *dests) {
        if (rs.weight == 0) continue;
        rs.weight = 0;  // quiescent: its connections go on, no new one is scheduled
        if (Status st = ipvs.update_destination(vs, rs); !st.ok()) fail(st);
      }
    }
    kept.push_back(mine);
    out.busy.insert(vs.address);
  }
  scope_ = std::move(kept);
  return out;
}

Status drain_ipvs_leftovers(ipvs::Ipvs& ipvs, ipset::Ipset* sets, const IpvsConfig& config, LeftoverDrain& drain,
                            bool* done) {
  *done = false;
  auto sock = link::Socket::Open();
  if (!sock.ok()) return sock.status().Wrap("drain ipvs");
  Status sets_removed = sets != nullptr ? destroy_companion_sets(*sets) : Status::Ok();
  auto dummy = link::get_link(*sock, config.dummy);
  if (!dummy.ok()) {
    if (dummy.status().error_number() != ENODEV) return dummy.status().Wrap("drain ipvs");
    *done = sets_removed.ok();  // no kube-ipvs0: IPVS mode is not what left these services
    return sets_removed;
  }
  auto have = link::list_addresses(*sock, config.dummy);
  if (!have.ok()) return have.status().Wrap("drain ipvs");
  const VirtualServerDrain drained = drain.pass(ipvs, std::chrono::steady_clock::now());
  // Only the kept services' VIPs stay; with no service kept, kube-ipvs0 goes.
  std::set<net::IPAddress> keep;
  for (const auto& a : *have) {
    if (drained.busy.count(a.ip)) keep.insert(a.ip);
  }
  Status vips;
  if (!drained.busy.empty()) {
    for (const auto& a : *have) {
      if (keep.count(a.ip)) continue;
      if (Status st = link::del_address(*sock, config.dummy, a); !st.ok() && vips.ok()) vips = st;
    }
  } else {
    vips = sync_vip_interface(config.dummy, {});
  }
  if (drained.deleted > 0 || drained.busy.empty()) {
    KLOG(INFO, "removed what IPVS mode left; virtual servers still carrying connections stay until they end")
        .kv("virtualServersDeleted", drained.deleted)
        .kv("virtualServersKept", drain.remaining())
        .kv("vipsKept", keep.size());
  }
  *done = sets_removed.ok() && vips.ok() && drained.error.ok() && drained.busy.empty();
  if (!drained.error.ok()) return drained.error;
  return sets_removed.ok() ? vips : sets_removed;
}

namespace {

double ms_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

class IpvsProxier final : public ProxyBackend {
 public:
  IpvsProxier(ipvs::IpvsPtr client, ipset::IpsetPtr sets, const IpvsConfig& c, proxy::Host& host)
      : client_(std::move(client)), sets_(std::move(sets)), config_(c), host_(host),
        virtual_servers_(*client_, virtual_servers_config(c)) {
    if (sets_) companion_ = std::make_unique<CompanionSync>(*sets_, CompanionConfig{});
    refresh_node_addresses();
    if (node_ips().empty()) {
      KLOG(WARNING, "IPVS mode: the node's IP is unknown (no --bind-address, no default route); the node itself is "
                    "kept out of load balancers that have loadBalancerSourceRanges");
    }
  }

  std::string mode() const override { return "ipvs"; }

  Status sync(const proxy::ProxyState& state, const std::set<std::string>& changed, bool full,
              SyncStats* stats) override {
    if (!companion_) return Status::Error("IPVS mode needs the kernel's ip_set (ipset) support", ENOTSUP);
    if (!prepared_) {
      if (Status s = prepare_host(); !s.ok()) return s;
      prepared_ = true;
    }
    if (full) refresh_node_addresses();
    SyncPlan plan = virtual_servers_.plan(state, changed, full);
    CompanionStats cs;
    size_t changes = 0;
    double sets_ms = 0, ipvs_ms = 0;
    auto sync_sets = [&] {
      auto t = std::chrono::steady_clock::now();
      Status st = sync_sets_and_rules(state, plan, &cs);
      sets_ms = ms_between(t, std::chrono::steady_clock::now());
      return st;
    };
    auto sync_servers = [&] {
      auto t = std::chrono::steady_clock::now();
      Status st = virtual_servers_.apply(plan, &changes);
      ipvs_ms = ms_between(t, std::chrono::steady_clock::now());
      return st;
    };
    // Set entries and rules come before the real servers that need them (a new endpoint's
    // hairpin entry before its first connection), except in the first sync, which takes
    // over from whatever ran before: its nat rules replace another mode's (iptables mode's
    // DNAT rules go at once), so there its virtual servers come first. A virtual server
    // that mode left draining at weight 0, its VIP still bound, would otherwise refuse the
    // new connections in between (the VM's mode switch test saw one refused).
    Status sets, servers;
    if (synced_once_) {
      sets = sync_sets();
      servers = sync_servers();
    } else {
      servers = sync_servers();
      sets = sync_sets();
    }
    synced_once_ = true;
    auto t2 = std::chrono::steady_clock::now();
    Status vips = sync_vips(state, plan);
    if (stats) {
      stats->rules_written = virtual_servers_.objects();
      stats->changes = changes + cs.entries_added + cs.entries_deleted + (cs.rules_written ? 1 : 0);
      stats->rules_by_table["nat"] = cs.nat_rules;
      stats->rules_by_table["filter"] = cs.filter_rules;
    }
    KLOGV(2, "IPVS mode synced")
        .kv("full", plan.full)
        .kv("ipsetAdded", cs.entries_added)
        .kv("ipsetDeleted", cs.entries_deleted)
        .kv("iptablesWritten", cs.rules_written)
        .kv("setsMs", sets_ms)
        .kv("ipvsMs", ipvs_ms)
        .kv("vipsMs", ms_between(t2, std::chrono::steady_clock::now()));
    return first_failure({servers, sets, vips});
  }

  // The rules (which reference the sets), the sets, the virtual servers, kube-ipvs0.
  Status cleanup() override {
    Status rules = companion_ ? companion_->cleanup() : Status::Ok();
    Status servers = virtual_servers_.cleanup();
    vip_refs_.clear();
    Status vips = sync_vip_interface(config_.dummy, {});
    return first_failure({rules, servers, vips});
  }

 private:
  static VirtualServersConfig virtual_servers_config(const IpvsConfig& c) {
    VirtualServersConfig out;
    out.desired.scheduler = c.scheduler;
    out.desired.sh_flags = ipvs::kFlagShFallback;
    out.exclude_cidrs = c.exclude_cidrs;
    out.timeouts = c.timeouts;
    out.graceful_termination_bound = c.drain_bound;
    return out;
  }

  // Logs every failure but the first, which the sync returns.
  static Status first_failure(std::initializer_list<Status> all) {
    Status first;
    for (const auto& s : all) {
      if (s.ok()) continue;
      if (first.ok()) {
        first = s;
      } else {
        KLOG(ERROR, "IPVS mode: a further part of the sync failed").kv("error", s.message());
      }
    }
    return first;
  }

  // What IPVS mode needs, as kube-proxy sets it: conntrack entries for IPVS connections
  // (so the MASQUERADE rules see them), forwarding, and expiry of connections to removed
  // real servers.
  Status prepare_host() {
    std::vector<proxy::SysctlNeed> needs = {
        {"net.ipv4.vs.conntrack", "1", true, ""},
        {"net.ipv4.ip_forward", "1", true, ""},
        {"net.ipv4.vs.expire_nodest_conn", "1", false, "connections to removed real servers linger"},
        {"net.ipv4.vs.expire_quiescent_template", "1", false, "affinity to removed real servers lingers"},
    };
    if (config_.strict_arp) {
      needs.push_back({"net.ipv4.conf.all.arp_ignore", "1", true, ""});
      needs.push_back({"net.ipv4.conf.all.arp_announce", "2", true, ""});
    }
    if (Status s = proxy::ensure_sysctls(host_, needs, "ipvs"); !s.ok()) return s;
    proxy::ensure_bridge_netfilter(host_);
    return Status::Ok();
  }

  // The node's own IPs: --bind-address, else the default route's interface's.
  std::set<net::IPAddress> node_ips() {
    if (config_.node_ip.valid()) return {config_.node_ip};
    return host_.default_route_ipv4_addresses();
  }

  // NodePorts listen on the node's addresses (not kube-ipvs0's), filtered by
  // --nodeport-addresses; looked at again on every full sync.
  void refresh_node_addresses() {
    const auto locals = host_.local_ipv4_addresses(config_.dummy);
    std::vector<net::IPAddress> node_ports;
    for (const auto& ip : locals) {
      bool ok = config_.node_port_addresses.empty();
      for (const auto& cidr : config_.node_port_addresses) ok |= cidr.contains(ip);
      if (ok) node_ports.push_back(ip);
    }
    virtual_servers_.set_node_addresses(node_ports);
    node_addresses_ = std::set<net::IPAddress>(locals.begin(), locals.end());
    if (!companion_) return;
    CompanionConfig cc;
    cc.cluster_cidrs = config_.cluster_cidrs;
    cc.masquerade_all = config_.masquerade_all;
    cc.masquerade_mark = 1u << config_.masquerade_bit;
    cc.node_port_addresses = node_ports;
    cc.node_addresses = node_addresses_;
    cc.node_ips = node_ips();
    companion_->set_config(std::move(cc));
  }

  // Sets and rules go first: a new service's masquerade and hairpin entries are in place
  // before its virtual server takes traffic. Their failure (a set full, an entry the
  // kernel refuses) does not stop the virtual servers from following the endpoints.
  Status sync_sets_and_rules(const proxy::ProxyState& state, const SyncPlan& plan, CompanionStats* cs) {
    return companion_->sync(state, plan.changed, plan.full, cs);
  }

  // kube-ipvs0 holds the VIPs that are not the node's own addresses; rewritten only when
  // the set of VIPs changes.
  Status sync_vips(const proxy::ProxyState& state, const SyncPlan& plan) {
    if (!vip_refs_.update(state, plan.changed, plan.full)) return Status::Ok();
    std::set<net::IPAddress> bind;
    for (const auto& ip : vip_refs_.vips()) {
      if (!node_addresses_.count(ip)) bind.insert(ip);
    }
    auto t0 = std::chrono::steady_clock::now();
    Status s = sync_vip_interface(config_.dummy, bind);
    KLOGV(2, "VIPs synced").kv("vips", bind.size()).kv("ms", ms_between(t0, std::chrono::steady_clock::now()));
    return s;
  }

  ipvs::IpvsPtr client_;
  ipset::IpsetPtr sets_;
  IpvsConfig config_;
  proxy::Host& host_;
  bool prepared_ = false;
  bool synced_once_ = false;  // a sync has run (whatever its outcome)
  VirtualServers virtual_servers_;
  std::unique_ptr<CompanionSync> companion_;
  VipRefs vip_refs_;
  std::set<net::IPAddress> node_addresses_;
};

}  // namespace

ProxyBackendPtr make_ipvs_proxier(ipvs::IpvsPtr client, ipset::IpsetPtr sets, const IpvsConfig& config,
                                  proxy::Host& host) {
  return std::make_unique<IpvsProxier>(std::move(client), std::move(sets), config, host);
}

}  // namespace knode::ipvs_proxy
