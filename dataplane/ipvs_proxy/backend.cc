#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <unistd.h>

#include <chrono>
#include <set>

#include "companion_sync.h"
#include "ipvs/ipvs_backend.h"
#include "ipvs/vip_interface.h"
#include "knode/dataplane/ipvs_backend.h"
#include "knode/dataplane/link.h"
#include "knode/log.h"
#include "sysctl.h"

namespace knode {

std::vector<net::IPAddress> local_ipv4_addresses(const std::string& skip_iface) {
  std::vector<net::IPAddress> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* a = list; a; a = a->ifa_next) {
    if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET) continue;
    if ((a->ifa_flags & IFF_LOOPBACK) || skip_iface == a->ifa_name) continue;
    auto* sin = reinterpret_cast<sockaddr_in*>(a->ifa_addr);
    out.push_back(net::IPAddress::V4(ntohl(sin->sin_addr.s_addr)));
  }
  freeifaddrs(list);
  return out;
}

Status cleanup_ipvs_mode_sets(ipset::Ipset& sets) { return ipvs_proxy::destroy_companion_sets(sets); }

namespace {

// The node's own IPs: the configured one, else the IPv4 addresses of the interface that
// holds the default route (what the node's traffic leaves from); empty when unknown.
std::set<net::IPAddress> node_ips(const IpvsModeConfig& c) {
  if (c.node_ip.valid()) return {c.node_ip};
  std::set<net::IPAddress> out;
  auto sock = link::Socket::Open();
  if (!sock.ok()) return out;
  auto routes = link::list_routes(*sock, AF_INET);
  if (!routes.ok()) return out;
  for (const auto& r : *routes) {
    if (r.dst.prefix() != 0 || r.table != 254 || r.ifindex == 0) continue;
    auto l = link::get_link(*sock, r.ifindex);
    if (!l.ok()) continue;
    auto addrs = link::list_addresses(*sock, l->name, AF_INET);
    if (!addrs.ok()) continue;
    for (const auto& a : *addrs) out.insert(a.ip);
  }
  return out;
}

std::set<net::IPAddress> node_ips_logged(const IpvsModeConfig& c) {
  auto ips = node_ips(c);
  if (ips.empty()) {
    KLOG(WARNING, "IPVS mode: the node's IP is unknown (no --bind-address, no default route); the node itself is "
                  "kept out of load balancers that have loadBalancerSourceRanges");
  }
  return ips;
}

ipvs_proxy::CompanionConfig companion_config(const IpvsModeConfig& c, const std::vector<net::IPAddress>& locals,
                                             const std::vector<net::IPAddress>& node_ports) {
  ipvs_proxy::CompanionConfig out;
  out.cluster_cidrs = c.cluster_cidrs;
  out.masquerade_all = c.masquerade_all;
  out.masquerade_mark = 1u << c.masquerade_bit;
  out.node_port_addresses = node_ports;
  out.node_addresses.insert(locals.begin(), locals.end());
  out.node_ips = node_ips_logged(c);
  return out;
}

// Owns the netlink clients: the IPVS table (ipvs::IpvsBackend), then the ip sets and
// iptables rules around it (ipvs_proxy::CompanionSync), and the sysctls the mode needs.
class IpvsMode : public ProxyBackend {
 public:
  IpvsMode(ipvs::IpvsPtr client, ipset::IpsetPtr sets, const IpvsModeConfig& c)
      : client_(std::move(client)), sets_(std::move(sets)), config_(c) {
    ipvs::IpvsBackendConfig bc;
    const std::vector<net::IPAddress> locals = local_ipv4_addresses(c.dummy);
    for (const auto& ip : locals) {
      bool ok = c.node_port_addresses.empty();
      for (const auto& cidr : c.node_port_addresses) ok |= cidr.contains(ip);
      if (ok) bc.desired.node_addresses.push_back(ip);
    }
    if (sets_) {
      companion_ = std::make_unique<ipvs_proxy::CompanionSync>(*sets_, companion_config(c, locals, bc.desired.node_addresses));
    }
    bc.desired.sh_flags = ipvs::kFlagShFallback;
    bc.exclude_cidrs = c.exclude_cidrs;
    bc.timeouts = c.timeouts;
    bc.graceful_termination_bound = c.drain_bound;
    // The node's own addresses are local already: only the others go on kube-ipvs0.
    bc.sync_vips = [this, vips = ipvs::vip_interface_syncer(c.dummy)](const std::set<net::IPAddress>& want) {
      std::set<net::IPAddress> bind;
      for (const auto& ip : want) {
        if (!companion_ || !companion_->config().node_addresses.count(ip)) bind.insert(ip);
      }
      return vips(bind);
    };
    inner_ = std::make_unique<ipvs::IpvsBackend>(*client_, std::move(bc));
  }

  std::string mode() const override { return inner_->mode(); }

  Status sync(const dp::ProxyState& state, const std::set<std::string>& changed, bool full,
              SyncStats* stats) override {
    if (!companion_) return Status::Error("IPVS mode needs the kernel's ip_set (ipset) support", ENOTSUP);
    if (!prepared_) {
      if (Status s = prepare_host(); !s.ok()) return s;
      prepared_ = true;
    }
    if (full) {
      std::set<net::IPAddress> node;
      for (const auto& ip : local_ipv4_addresses(config_.dummy)) node.insert(ip);
      companion_->set_node_addresses(std::move(node), node_ips(config_));
    }
    // Sets and rules first: a new service's masquerade and hairpin entries are in place
    // before its virtual server takes traffic. A failure there (a set full, an entry the
    // kernel refuses) must not stop the virtual servers from following the endpoints.
    ipvs_proxy::CompanionStats cs;
    auto t0 = std::chrono::steady_clock::now();
    Status companion = companion_->sync(state, changed, full, &cs);
    auto t1 = std::chrono::steady_clock::now();
    Status s = inner_->sync(state, changed, full, stats);
    auto ms = [](auto a, auto b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
    if (!companion.ok()) {
      if (s.ok()) {
        s = companion;
      } else {
        KLOG(ERROR, "IPVS-mode ipsets or iptables rules failed to sync").kv("error", companion.message());
      }
    }
    if (stats) {
      stats->changes += cs.entries_added + cs.entries_deleted + (cs.rules_written ? 1 : 0);
      stats->rules_by_table["nat"] = cs.nat_rules;
      stats->rules_by_table["filter"] = cs.filter_rules;
    }
    KLOGV(2, "IPVS-mode companions synced")
        .kv("full", full)
        .kv("ipsetAdded", cs.entries_added)
        .kv("ipsetDeleted", cs.entries_deleted)
        .kv("iptablesWritten", cs.rules_written)
        .kv("companionMs", ms(t0, t1))
        .kv("ipvsMs", ms(t1, std::chrono::steady_clock::now()));
    return s;
  }

  // The rules (which reference the sets), the sets, then the virtual servers and, through
  // sync_vips({}), kube-ipvs0.
  Status cleanup() override {
    Status c = companion_ ? companion_->cleanup() : Status::Ok();
    Status v = inner_->cleanup();
    return c.ok() ? v : c;
  }

 private:
  Status prepare_host() {
    // What IPVS mode needs, as kube-proxy sets it: conntrack entries for IPVS connections
    // (so the MASQUERADE rules see them), forwarding, and expiry of connections to
    // removed real servers.
    for (const auto& [name, value] : {std::pair{"net.ipv4.vs.conntrack", "1"},
                                      std::pair{"net.ipv4.ip_forward", "1"}}) {
      if (Status s = sysctl::ensure(name, value); !s.ok()) return s.Wrap("IPVS mode");
    }
    for (const auto& [name, value] : {std::pair{"net.ipv4.vs.expire_nodest_conn", "1"},
                                      std::pair{"net.ipv4.vs.expire_quiescent_template", "1"}}) {
      if (!sysctl::ensure(name, value).ok()) KLOG(WARNING, "could not set sysctl").kv("name", name).kv("value", value);
    }
    if (::access(sysctl::path_of("net.bridge.bridge-nf-call-iptables").c_str(), F_OK) != 0) {
      KLOG(WARNING, "br_netfilter is not loaded: traffic between pods on one bridge bypasses iptables, so "
                    "hairpin traffic (a pod reaching itself through a service) is not masqueraded; run "
                    "`modprobe br_netfilter`");
    } else if (!sysctl::ensure("net.bridge.bridge-nf-call-iptables", "1").ok()) {
      KLOG(WARNING, "could not set net.bridge.bridge-nf-call-iptables=1");
    }
    if (config_.strict_arp) {
      for (const auto& [name, value] : {std::pair{"net.ipv4.conf.all.arp_ignore", "1"},
                                        std::pair{"net.ipv4.conf.all.arp_announce", "2"}}) {
        if (Status s = sysctl::ensure(name, value); !s.ok()) return s.Wrap("--ipvs-strict-arp");
      }
    }
    return Status::Ok();
  }

  ipvs::IpvsPtr client_;
  ipset::IpsetPtr sets_;
  IpvsModeConfig config_;
  bool prepared_ = false;
  std::unique_ptr<ipvs_proxy::CompanionSync> companion_;
  std::unique_ptr<ipvs::IpvsBackend> inner_;
};

}  // namespace

ProxyBackendPtr make_ipvs_backend(ipvs::IpvsPtr client, ipset::IpsetPtr sets, const IpvsModeConfig& config) {
  return std::make_unique<IpvsMode>(std::move(client), std::move(sets), config);
}

}  // namespace knode
