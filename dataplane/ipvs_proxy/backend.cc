#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <map>
#include <set>
#include <tuple>

#include "knode/dataplane/ipvs_backend.h"
#include "knode/dataplane/link.h"
#include "knode/log.h"

namespace knode {
namespace {

using Key = std::tuple<net::IPAddress, uint16_t, dp::Protocol>;
using DestKey = std::pair<net::IPAddress, uint16_t>;

Key key_of(const ipvs::VirtualServer& vs) { return {vs.address, vs.port, vs.protocol}; }

struct Desired {
  ipvs::VirtualServer vs;
  std::vector<ipvs::RealServer> dests;
  std::string owner;  // service port name
};

std::vector<net::IPAddress> local_ipv4_addresses(const std::string& skip_iface) {
  std::vector<net::IPAddress> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* a = list; a; a = a->ifa_next) {
    if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET) continue;
    if (a->ifa_flags & IFF_LOOPBACK) continue;
    if (skip_iface == a->ifa_name) continue;
    auto* sin = reinterpret_cast<sockaddr_in*>(a->ifa_addr);
    out.push_back(net::IPAddress::V4(ntohl(sin->sin_addr.s_addr)));
  }
  freeifaddrs(list);
  return out;
}

class IpvsBackend : public ProxyBackend {
 public:
  IpvsBackend(ipvs::IpvsPtr ipvs, IpvsBackendConfig c) : ipvs_(std::move(ipvs)), c_(std::move(c)) {
    if (!c_.node_addresses) {
      std::string dummy = c_.dummy;
      c_.node_addresses = [dummy] { return local_ipv4_addresses(dummy); };
    }
  }

  std::string mode() const override { return "ipvs"; }

  Status sync(const dp::ProxyState& state, const std::set<std::string>& changed, bool full,
              SyncStats* stats) override {
    bool partial = !full && synced_once_;
    changes_ = 0;
    if (!synced_once_) {
      if (auto s = set_timeouts(); !s.ok()) return s;
    }
    auto desired = build(state);
    auto current = ipvs_->list_services();
    if (!current.ok()) return current.status().Wrap("list IPVS services");
    std::map<Key, ipvs::VirtualServer> have;
    for (auto& vs : *current) have[key_of(vs)] = vs;

    // Which virtual servers this sync looks at: all of them, or those of changed
    // service ports (before and after) plus those with draining real servers.
    std::set<Key> scope;
    if (partial) {
      for (const auto& [k, d] : desired) {
        if (changed.count(d.owner)) scope.insert(k);
      }
      for (const auto& [k, owner] : owners_) {
        if (changed.count(owner)) scope.insert(k);
      }
      for (const auto& [k, dests] : draining_) scope.insert(k);
    }
    auto in_scope = [&](const Key& k) { return !partial || scope.count(k) > 0; };

    for (const auto& [k, d] : desired) {
      if (!in_scope(k)) continue;
      auto it = have.find(k);
      if (it == have.end()) {
        if (auto s = ipvs_->add_service(d.vs); !s.ok()) return s;
        ++changes_;
        if (auto s = sync_dests(k, d.vs, d.dests, {}); !s.ok()) return s;
        continue;
      }
      if (!it->second.same_config(d.vs)) {
        if (auto s = ipvs_->update_service(d.vs); !s.ok()) return s;
        ++changes_;
      }
      auto dests = ipvs_->list_destinations(d.vs);
      if (!dests.ok()) return dests.status().Wrap("list IPVS destinations of " + d.vs.str());
      if (auto s = sync_dests(k, d.vs, d.dests, *dests); !s.ok()) return s;
    }
    // Virtual servers nobody wants any more (outside --ipvs-exclude-cidrs) go.
    for (const auto& [k, vs] : have) {
      if (desired.count(k) || !in_scope(k) || excluded(vs.address)) continue;
      if (auto s = ipvs_->delete_service(vs); !s.ok()) return s;
      draining_.erase(k);
      ++changes_;
    }
    owners_.clear();
    size_t objects = 0;
    for (const auto& [k, d] : desired) {
      owners_[k] = d.owner;
      objects += 1 + d.dests.size();
    }
    if (auto s = sync_dummy(state); !s.ok()) return s;
    synced_once_ = true;
    if (stats) {
      stats->rules_written = objects;
      stats->changes = changes_;
    }
    KLOGV(2, "ipvs synced").kv("partial", partial).kv("virtualServers", desired.size()).kv("changes", changes_)
        .kv("draining", draining_.size());
    return Status::Ok();
  }

  Status cleanup() override {
    auto current = ipvs_->list_services();
    if (current.ok()) {
      for (const auto& vs : *current) {
        if (excluded(vs.address)) continue;
        if (auto s = ipvs_->delete_service(vs); !s.ok()) return s;
      }
    }
    if (!c_.dummy.empty()) {
      auto sock = link::Socket::Open();
      if (!sock.ok()) return sock.status();
      if (auto s = link::delete_link(*sock, c_.dummy); !s.ok()) return s;
    }
    draining_.clear();
    owners_.clear();
    synced_once_ = false;
    return Status::Ok();
  }

 private:
  bool excluded(const net::IPAddress& ip) const {
    for (const auto& c : c_.exclude_cidrs) {
      if (c.contains(ip)) return true;
    }
    return false;
  }

  Status set_timeouts() {
    if (!c_.timeouts.tcp && !c_.timeouts.tcp_fin && !c_.timeouts.udp) return Status::Ok();
    return ipvs_->set_timeouts(c_.timeouts).Wrap("set IPVS timeouts");
  }

  std::map<Key, Desired> build(const dp::ProxyState& state) {
    std::map<Key, Desired> out;
    std::vector<net::IPAddress> node_ips;
    bool need_node_ips = false;
    for (const auto& sp : state.services) need_node_ips |= sp.node_port != 0;
    if (need_node_ips) {
      for (const auto& ip : c_.node_addresses()) {
        bool ok = c_.node_port_addresses.empty();
        for (const auto& cidr : c_.node_port_addresses) ok |= cidr.contains(ip);
        if (ok && ip.is_v4()) node_ips.push_back(ip);
      }
    }
    for (const auto& sp : state.services) {
      auto add = [&](const net::IPAddress& ip, uint16_t port, const std::vector<dp::Backend>& backends) {
        Desired d;
        d.owner = sp.name;
        d.vs.address = ip;
        d.vs.port = port;
        d.vs.protocol = sp.protocol;
        d.vs.scheduler = dp::to_string(sp.scheduler);
        if (sp.scheduler == dp::Scheduler::kSH) d.vs.flags |= ipvs::kFlagShFallback;
        if (sp.affinity_timeout_seconds > 0) {
          d.vs.flags |= ipvs::kFlagPersistent;
          d.vs.timeout = sp.affinity_timeout_seconds;
        }
        for (const auto& b : backends) {
          ipvs::RealServer rs;
          rs.address = b.ip;
          rs.port = b.port;
          rs.weight = b.weight;
          d.dests.push_back(rs);
        }
        out[key_of(d.vs)] = std::move(d);
      };
      // A service with no usable endpoints keeps its virtual server with no real
      // servers: IPVS then refuses connections at once rather than letting them hang.
      add(sp.cluster_ip, sp.port, sp.cluster_backends);
      for (const auto& ip : sp.external_ips) add(ip, sp.port, sp.external_backends());
      for (const auto& ip : sp.load_balancer_ips) add(ip, sp.port, sp.external_backends());
      if (sp.node_port) {
        for (const auto& ip : node_ips) add(ip, sp.node_port, sp.external_backends());
      }
    }
    return out;
  }

  Status sync_dests(const Key& k, const ipvs::VirtualServer& vs, const std::vector<ipvs::RealServer>& want,
                    const std::vector<ipvs::RealServer>& have) {
    std::map<DestKey, const ipvs::RealServer*> have_by;
    for (const auto& rs : have) have_by[{rs.address, rs.port}] = &rs;
    std::set<DestKey> wanted;
    for (const auto& rs : want) {
      DestKey dk{rs.address, rs.port};
      wanted.insert(dk);
      auto it = have_by.find(dk);
      if (it == have_by.end()) {
        if (auto s = ipvs_->add_destination(vs, rs); !s.ok()) return s;
        ++changes_;
      } else if (!it->second->same_config(rs)) {
        // Also brings back a real server that was draining.
        if (auto s = ipvs_->update_destination(vs, rs); !s.ok()) return s;
        ++changes_;
      }
      if (auto d = draining_.find(k); d != draining_.end()) d->second.erase(dk);
    }
    auto now = std::chrono::steady_clock::now();
    for (const auto& rs : have) {
      DestKey dk{rs.address, rs.port};
      if (wanted.count(dk)) continue;
      auto& draining = draining_[k];
      auto since = draining.find(dk);
      bool drained = rs.active_connections + rs.inactive_connections == 0;
      bool udp = vs.protocol == dp::Protocol::kUDP;  // nothing to drain: datagrams
      bool overdue = since != draining.end() && now - since->second > c_.drain_bound;
      if (drained || udp || overdue) {
        if (auto s = ipvs_->delete_destination(vs, rs); !s.ok()) return s;
        draining.erase(dk);
        ++changes_;
      } else if (since == draining.end()) {
        // Graceful termination: no new connections, established ones keep working.
        ipvs::RealServer zero = rs;
        zero.weight = 0;
        if (auto s = ipvs_->update_destination(vs, zero); !s.ok()) return s;
        draining[dk] = now;
        ++changes_;
      }
    }
    if (auto d = draining_.find(k); d != draining_.end() && d->second.empty()) draining_.erase(d);
    return Status::Ok();
  }

  Status sync_dummy(const dp::ProxyState& state) {
    if (c_.dummy.empty()) return Status::Ok();
    auto sock = link::Socket::Open();
    if (!sock.ok()) return sock.status().Wrap("open rtnetlink socket");
    if (auto l = link::ensure_dummy(*sock, c_.dummy); !l.ok()) return l.status().Wrap("ensure " + c_.dummy);
    std::set<link::IpNet> want;
    for (const auto& sp : state.services) {
      want.insert(link::IpNet{sp.cluster_ip, 32});
      for (const auto& ip : sp.external_ips) want.insert(link::IpNet{ip, 32});
      for (const auto& ip : sp.load_balancer_ips) want.insert(link::IpNet{ip, 32});
    }
    auto have = link::list_addresses(*sock, c_.dummy, AF_INET);
    if (!have.ok()) return have.status().Wrap("list addresses of " + c_.dummy);
    std::set<link::IpNet> has(have->begin(), have->end());
    for (const auto& a : want) {
      if (has.count(a)) continue;
      if (auto s = link::add_address(*sock, c_.dummy, a); !s.ok()) return s;
      ++changes_;
    }
    for (const auto& a : has) {
      if (want.count(a)) continue;
      if (auto s = link::del_address(*sock, c_.dummy, a); !s.ok()) return s;
      ++changes_;
    }
    return Status::Ok();
  }

  ipvs::IpvsPtr ipvs_;
  IpvsBackendConfig c_;
  bool synced_once_ = false;
  size_t changes_ = 0;
  std::map<Key, std::string> owners_;
  std::map<Key, std::map<DestKey, std::chrono::steady_clock::time_point>> draining_;
};

}  // namespace

ProxyBackendPtr make_ipvs_backend(ipvs::IpvsPtr ipvs, IpvsBackendConfig config) {
  return std::make_unique<IpvsBackend>(std::move(ipvs), std::move(config));
}

}  // namespace knode
