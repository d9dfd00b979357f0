#include "options.h"

#include <algorithm>

namespace knode::proxy {
namespace {

constexpr const char* kSchedulers[] = {"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh"};

// An IPv4 CIDR from a flag value; IPv6 is an error, since knode programs IPv4 only.
Result<net::Cidr> ipv4_cidr(const std::string& flag, const std::string& value) {
  auto cidr = net::Cidr::Parse(value);
  if (!cidr) return Status::Error("invalid value for " + flag + ": \"" + value + "\" is not a CIDR", EINVAL);
  if (!cidr->address().is_v4()) {
    return Status::Error("invalid value for " + flag + ": \"" + value +
                             "\" is IPv6, and knode's proxy programs IPv4 only",
                         EINVAL);
  }
  return *cidr;
}

Status ipv4_cidrs(const std::string& flag, const std::vector<std::string>& values, std::vector<net::Cidr>* out) {
  for (const auto& v : values) {
    auto cidr = ipv4_cidr(flag, v);
    if (!cidr.ok()) return cidr.status();
    out->push_back(*cidr);
  }
  return Status::Ok();
}

// --nodeport-addresses: CIDRs, or "primary" for the node's own IPs.
Status node_port_addresses(const config::ProxyConfig& c, const net::IPAddress& node_ip, Host& host,
                           std::vector<net::Cidr>* out) {
  for (const auto& v : c.node_port_addresses) {
    if (v != "primary") {
      auto cidr = ipv4_cidr("--nodeport-addresses", v);
      if (!cidr.ok()) return cidr.status();
      out->push_back(*cidr);
      continue;
    }
    auto ips = node_ip.valid() ? std::set<net::IPAddress>{node_ip} : host.default_route_ipv4_addresses();
    if (ips.empty()) {
      return Status::Error("--nodeport-addresses=primary: the node's IP is unknown (no --bind-address and no "
                           "default route)",
                           EINVAL);
    }
    for (const auto& ip : ips) out->push_back(net::Cidr(ip, 32));
  }
  return Status::Ok();
}

uint32_t whole_seconds(const api::Duration& d) { return static_cast<uint32_t>(d.nanos() / 1000000000); }

}  // namespace

bool known_ipvs_scheduler(const std::string& name) {
  return std::find(std::begin(kSchedulers), std::end(kSchedulers), name) != std::end(kSchedulers);
}

Result<ProxyOptions> proxy_options(const config::ProxyConfig& c, Host& host) {
  ProxyOptions o;
  o.mode = c.mode.empty() ? "iptables" : c.mode;
  const bool ipvs = o.mode == "ipvs";
  o.sync_period = std::chrono::milliseconds((ipvs ? c.ipvs.sync_period : c.iptables.sync_period).millis());
  o.min_sync_period = std::chrono::milliseconds((ipvs ? c.ipvs.min_sync_period : c.iptables.min_sync_period).millis());
  o.healthz_bind_address = c.healthz_bind_address;
  o.metrics_bind_address = c.metrics_bind_address;

  net::IPAddress node_ip;
  if (auto ip = net::IPAddress::Parse(c.bind_address); !ip) {
    return Status::Error("invalid value for --bind-address: \"" + c.bind_address + "\" is not an IP", EINVAL);
  } else if (!ip->is_unspecified()) {
    if (!ip->is_v4()) {
      return Status::Error("invalid value for --bind-address: \"" + c.bind_address +
                               "\" is IPv6, and knode's proxy programs IPv4 only",
                           EINVAL);
    }
    node_ip = *ip;
  }
  std::vector<net::Cidr> cluster_cidrs, node_ports;
  if (Status s = ipv4_cidrs("--cluster-cidr", config::split_list(c.cluster_cidr), &cluster_cidrs); !s) return s;
  if (Status s = node_port_addresses(c, node_ip, host, &node_ports); !s) return s;

  auto& t = o.iptables;
  t.cluster_cidrs = cluster_cidrs;
  t.masquerade_all = c.iptables.masquerade_all;
  t.masquerade_bit = c.iptables.masquerade_bit;
  t.node_port_addresses = node_ports;
  t.localhost_node_ports = c.iptables.localhost_node_ports;

  auto& v = o.ipvs;
  v.scheduler = c.ipvs.scheduler.empty() ? "rr" : c.ipvs.scheduler;
  if (!known_ipvs_scheduler(v.scheduler)) {
    return Status::Error("invalid value for --ipvs-scheduler: \"" + v.scheduler +
                             "\" (want rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq or mh)",
                         EINVAL);
  }
  for (const auto& s : c.ipvs.exclude_cidrs) {
    auto cidr = net::Cidr::Parse(s);
    if (!cidr) return Status::Error("invalid value for --ipvs-exclude-cidrs: \"" + s + "\" is not a CIDR", EINVAL);
    v.exclude_cidrs.push_back(*cidr);  // either family: it only keeps knode's hands off
  }
  v.node_port_addresses = node_ports;
  v.timeouts = {whole_seconds(c.ipvs.tcp_timeout), whole_seconds(c.ipvs.tcp_fin_timeout),
                whole_seconds(c.ipvs.udp_timeout)};
  v.strict_arp = c.ipvs.strict_arp;
  v.cluster_cidrs = cluster_cidrs;
  v.masquerade_all = c.iptables.masquerade_all;
  v.masquerade_bit = c.iptables.masquerade_bit;
  v.node_ip = node_ip;

  // nftables mode takes the settings kube-proxy's nftables mode shares with iptables mode.
  auto& n = o.nftables;
  n.cluster_cidrs = cluster_cidrs;
  n.masquerade_all = c.iptables.masquerade_all;
  n.masquerade_bit = c.iptables.masquerade_bit;
  n.node_port_addresses = node_ports;
  n.node_ip = node_ip;
  return o;
}

}  // namespace knode::proxy
