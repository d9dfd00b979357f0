#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <set>

#include "ipvs/ipvs_backend.h"
#include "ipvs/vip_interface.h"
#include "knode/dataplane/ipvs_backend.h"
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

namespace {

// Owns the netlink client the backend borrows, and applies --ipvs-strict-arp.
class IpvsMode : public ProxyBackend {
 public:
  IpvsMode(ipvs::IpvsPtr client, const IpvsModeConfig& c)
      : client_(std::move(client)), strict_arp_(c.strict_arp) {
    ipvs::IpvsBackendConfig bc;
    for (const auto& ip : local_ipv4_addresses(c.dummy)) {
      bool ok = c.node_port_addresses.empty();
      for (const auto& cidr : c.node_port_addresses) ok |= cidr.contains(ip);
      if (ok) bc.desired.node_addresses.push_back(ip);
    }
    bc.desired.sh_flags = ipvs::kFlagShFallback;
    bc.exclude_cidrs = c.exclude_cidrs;
    bc.timeouts = c.timeouts;
    bc.graceful_termination_bound = c.drain_bound;
    bc.sync_vips = ipvs::vip_interface_syncer(c.dummy);
    inner_ = std::make_unique<ipvs::IpvsBackend>(*client_, std::move(bc));
  }

  std::string mode() const override { return inner_->mode(); }
  Status sync(const dp::ProxyState& state, const std::set<std::string>& changed, bool full,
              SyncStats* stats) override {
    if (strict_arp_ && !arp_set_) {
      for (const auto& [name, value] : {std::pair{"net.ipv4.conf.all.arp_ignore", "1"},
                                        std::pair{"net.ipv4.conf.all.arp_announce", "2"}}) {
        if (auto s = sysctl::ensure(name, value); !s.ok()) return s.Wrap("--ipvs-strict-arp");
      }
      arp_set_ = true;
    }
    return inner_->sync(state, changed, full, stats);
  }
  // Deletes the virtual servers and, through sync_vips({}), kube-ipvs0.
  Status cleanup() override { return inner_->cleanup(); }

 private:
  ipvs::IpvsPtr client_;
  bool strict_arp_;
  bool arp_set_ = false;
  std::unique_ptr<ipvs::IpvsBackend> inner_;
};

}  // namespace

ProxyBackendPtr make_ipvs_backend(ipvs::IpvsPtr client, const IpvsModeConfig& config) {
  return std::make_unique<IpvsMode>(std::move(client), config);
}

}  // namespace knode
