#include "mode.h"

#include "ipvs/detect.h"
#include "knode/dataplane/iptables_backend.h"
#include "knode/dataplane/ipvs_backend.h"
#include "knode/log.h"

namespace knode::proxy {
namespace {

IptablesBackendConfig iptables_config(const config::ProxyConfig& c) {
  IptablesBackendConfig out;
  for (const auto& one : config::split_list(c.cluster_cidr)) {
    if (auto cidr = net::Cidr::Parse(one); cidr && cidr->address().is_v4()) out.cluster_cidrs.push_back(*cidr);
  }
  out.masquerade_all = c.iptables.masquerade_all;
  out.masquerade_bit = c.iptables.masquerade_bit;
  for (const auto& s : c.node_port_addresses) {
    if (auto cidr = net::Cidr::Parse(s); cidr && cidr->address().is_v4()) out.node_port_addresses.push_back(*cidr);
  }
  out.localhost_node_ports = c.iptables.localhost_node_ports;
  return out;
}

IpvsModeConfig ipvs_config(const config::ProxyConfig& c) {
  IpvsModeConfig out;
  for (const auto& s : c.ipvs.exclude_cidrs) {
    if (auto cidr = net::Cidr::Parse(s)) out.exclude_cidrs.push_back(*cidr);
  }
  for (const auto& s : c.node_port_addresses) {
    if (auto cidr = net::Cidr::Parse(s); cidr && cidr->address().is_v4()) out.node_port_addresses.push_back(*cidr);
  }
  out.timeouts.tcp = static_cast<uint32_t>(c.ipvs.tcp_timeout.nanos() / 1000000000);
  out.timeouts.tcp_fin = static_cast<uint32_t>(c.ipvs.tcp_fin_timeout.nanos() / 1000000000);
  out.timeouts.udp = static_cast<uint32_t>(c.ipvs.udp_timeout.nanos() / 1000000000);
  out.strict_arp = c.ipvs.strict_arp;
  for (const auto& one : config::split_list(c.cluster_cidr)) {
    if (auto cidr = net::Cidr::Parse(one); cidr && cidr->address().is_v4()) out.cluster_cidrs.push_back(*cidr);
  }
  out.masquerade_all = c.iptables.masquerade_all;
  out.masquerade_bit = c.iptables.masquerade_bit;
  if (auto ip = net::IPAddress::Parse(c.bind_address); ip && ip->is_v4() && *ip != net::IPAddress::V4(0)) {
    out.node_ip = *ip;
  }
  return out;
}

}  // namespace

Result<ModeSelection> select_mode(const config::ProxyConfig& c) {
  ModeSelection sel;
  sel.requested = c.mode.empty() ? "iptables" : c.mode;
  if (sel.requested == "ipvs") {
    ipvs::DetectOptions opts;
    opts.schedulers = {"rr", "wrr", "sh"};
    if (!c.ipvs.scheduler.empty() &&
        std::find(opts.schedulers.begin(), opts.schedulers.end(), c.ipvs.scheduler) == opts.schedulers.end()) {
      opts.schedulers.push_back(c.ipvs.scheduler);
    }
    auto d = ipvs::detect(opts);
    if (d.available()) {
      auto client = ipvs::open_netlink_ipvs();
      auto sets = ipset::open_netlink_ipset();
      if (!client.ok()) {
        sel.fallback_reason = "cannot open the IPVS netlink family: " + client.error();
      } else if (!sets.ok() || !(*sets)->is_available()) {
        sel.fallback_reason = "the kernel has no ip_set support (IPVS mode keeps its address lists in ipsets); "
                              "load it with `modprobe ip_set`";
      } else {
        sel.effective = "ipvs";
        sel.backend = make_ipvs_backend(std::move(*client), std::move(*sets), ipvs_config(c));
        return sel;
      }
    } else {
      sel.fallback_reason = d.summary() + "; " + d.hint();
    }
    KLOG(WARNING, "IPVS proxy mode is not available; falling back to iptables mode")
        .kv("reason", sel.fallback_reason);
  }
  sel.effective = "iptables";
  sel.backend = make_iptables_backend(iptables_config(c));
  return sel;
}

Status cleanup_all_modes(const config::ProxyConfig& c) {
  // Every KUBE-* chain of either mode, then IPVS mode's ip sets (no rule uses them now).
  Status s = make_iptables_backend(iptables_config(c))->cleanup();
  ipset::IpsetPtr sets;
  if (auto opened = ipset::open_netlink_ipset(); opened.ok() && (*opened)->is_available()) {
    sets = std::move(*opened);
    if (Status v = cleanup_ipvs_mode_sets(*sets); s.ok()) s = v;
  }
  // IPVS state exists only where the kernel has IPVS.
  ipvs::DetectOptions opts;
  opts.try_modprobe = false;
  if (ipvs::detect(opts).genl_family) {
    auto client = ipvs::open_netlink_ipvs();
    if (client.ok()) {
      Status v = make_ipvs_backend(std::move(*client), std::move(sets), ipvs_config(c))->cleanup();
      if (s.ok()) s = v;
    }
  }
  return s;
}

}  // namespace knode::proxy
