#include "pod_network.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>

#include "hash.h"
#include "knode/dataplane/netns.h"
#include "knode/dataplane/sysctl.h"

namespace knode::cni {

namespace {

Status kernel_error(const Status& s) { return error(kInternal, s.message()); }

net::IPAddress any_address(int family) { return *net::IPAddress::Parse(family == 4 ? "0.0.0.0" : "::"); }

// Bridged pods need forwarding on the node; the reference plugin turns it on too. As
// there, a node that refuses (a read-only /proc/sys) still gets its pod attached.
void enable_forwarding(bool v4, bool v6) {
  if (v4) (void)sysctl::ensure("net.ipv4.ip_forward", "1");
  if (v6) (void)sysctl::ensure("net.ipv6.conf.all.forwarding", "1");
}

link::Route to_route(const ResultRoute& r, const std::vector<ResultIp>& ips, int ifindex) {
  link::Route route;
  route.dst = r.dst;
  route.ifindex = ifindex;
  if (r.gw) {
    route.gateway = *r.gw;
  } else {
    for (const auto& ip : ips) {
      if (ip.address.ip.family() == r.dst.address().family() && ip.gateway) route.gateway = *ip.gateway;
    }
  }
  return route;
}

// The address may have been another pod's a moment ago (host-local hands a freed one
// out again once its range wraps): tell the node and the other pods, whose entries for it
// still name the old pod's MAC, with a gratuitous ARP from the pod, as the reference bridge
// plugin does (link::announce_ipv4: the pod's kernel sends it, and twice more a second
// apart). The bridge drops what a port sends until the port forwards, which it does once
// the kernel's link watcher has seen the veth's carrier (asynchronously, usually within a
// millisecond): wait for that first, at most a second. Best effort, as in the reference
// plugin: the pod is attached either way. (IPv6 neighbours find out by their own
// reachability probes.)
void announce(const netns::NetnsHandle& pod_ns, const std::string& host_name, const link::LinkInfo& pod,
              const std::vector<ResultIp>& ips) {
  bool v4 = false;
  for (const auto& ip : ips) v4 = v4 || ip.address.ip.is_v4();
  if (!v4) return;
  (void)link::wait_port_forwarding(host_name, std::chrono::seconds(1));
  (void)netns::with_netns(pod_ns, [&]() -> Status {
    auto s = link::Socket::Open();
    if (!s.ok()) return s.status();
    for (const auto& ip : ips) {
      if (ip.address.ip.is_v4()) (void)link::announce_ipv4(*s, pod.index, ip.address.ip);
    }
    return Status::Ok();
  });
}

}  // namespace

std::string host_veth_name(const std::string& network, const Attachment& a) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "veth%08x",
                static_cast<unsigned>(fnv1a(network + "\n" + a.container_id + "\n" + a.ifname) & 0xffffffffu));
  return buf;
}

std::vector<ResultRoute> pod_routes(const NetConf& conf, const std::vector<ResultIp>& ips,
                                    const std::vector<ResultRoute>& ipam_routes) {
  std::vector<ResultRoute> out = ipam_routes;
  if (!conf.is_default_gateway) return out;
  for (const auto& ip : ips) {
    if (!ip.gateway) continue;
    int family = ip.address.ip.family();
    net::Cidr def(any_address(family), 0);
    bool have = false;
    for (auto& r : out) {
      if (r.dst == def) {
        have = true;
        if (!r.gw) r.gw = ip.gateway;
      }
    }
    if (!have) out.push_back(ResultRoute{def, ip.gateway});
  }
  return out;
}

Status check_ifname_free(const std::string& netns, const std::string& ifname) {
  auto h = netns::NetnsHandle::Open(netns);
  if (!h.ok()) return error(kInvalidEnvironment, "CNI_NETNS: " + h.status().message());
  Result<bool> exists = netns::with_netns(*h, [&]() -> Result<bool> {
    auto s = link::Socket::Open();
    if (!s.ok()) return s.status();
    return link::link_exists(*s, ifname);
  });
  if (!exists.ok()) return kernel_error(exists.status());
  if (*exists) return error(kInterfaceExists, "interface " + ifname + " already exists in " + netns);
  return Status::Ok();
}

Result<PodLinks> setup_pod_network(const NetConf& conf, const Attachment& att, const std::string& netns,
                                    const std::vector<ResultIp>& ips, const std::vector<ResultRoute>& routes,
                                    std::vector<ResultRoute>* routes_out) {
  auto pod_ns = netns::NetnsHandle::Open(netns);
  if (!pod_ns.ok()) return error(kInvalidEnvironment, "CNI_NETNS: " + pod_ns.status().message());
  auto host = link::Socket::Open();
  if (!host.ok()) return kernel_error(host.status());

  PodLinks links;
  auto br = link::ensure_bridge(*host, link::BridgeOptions{conf.bridge, conf.mtu, conf.promisc_mode});
  if (!br.ok()) return kernel_error(br.status());
  if (conf.is_gateway) {
    bool v4 = false, v6 = false;
    for (const auto& ip : ips) {
      if (!ip.gateway) continue;
      Status s = link::add_address(*host, br->index, link::IpNet{*ip.gateway, ip.address.prefix});
      if (!s) return kernel_error(s);
      (ip.address.ip.is_v4() ? v4 : v6) = true;
    }
    enable_forwarding(v4, v6);
  }

  const std::string host_name = host_veth_name(conf.name, att);
  // Enslaved and up from the start: one RTM_NEWLINK instead of four round trips.
  link::VethOptions veth{host_name, att.ifname, conf.mtu, pod_ns->fd(), br->index, true};
  Status created = link::create_veth(*host, veth);
  if (!created && created.error_number() == EEXIST) {
    // Either the pod already has ifname, or a host end was left behind by a crashed ADD
    // of this same attachment (its name is ours alone): clear that and retry once.
    if (auto d = check_ifname_free(netns, att.ifname); !d.ok()) return d;
    if (Status s = link::delete_link(*host, host_name); !s) return kernel_error(s);
    created = link::create_veth(*host, veth);
  }
  if (!created) return kernel_error(created);

  auto fail = [&](const Status& s) -> Result<PodLinks> {
    // Best effort: the runtime sees the first error and calls DEL, which retries this.
    (void)link::delete_link(*host, host_name);
    return kernel_error(s);
  };
  auto host_info = link::get_link(*host, host_name);
  if (!host_info.ok()) return fail(host_info.status());
  links.host = *host_info;
  if (conf.hairpin_mode) {
    if (Status s = link::set_hairpin(*host, links.host.index, true); !s) return fail(s);
  }

  std::vector<ResultRoute> installed = pod_routes(conf, ips, routes);
  Result<link::LinkInfo> pod = netns::with_netns(*pod_ns, [&]() -> Result<link::LinkInfo> {
    auto s = link::Socket::Open();
    if (!s.ok()) return s.status();
    if (Status st = link::set_up(*s, "lo"); !st) return st;
    auto info = link::get_link(*s, att.ifname);
    if (!info.ok()) return info;
    for (const auto& ip : ips) {
      if (Status st = link::add_address(*s, info->index, ip.address); !st) return st;
    }
    // (The kernel refuses IFF_UP for a veth peer created in another netns.)
    if (Status st = link::set_up(*s, att.ifname); !st) return st;
    for (const auto& r : installed) {
      if (Status st = link::add_route(*s, to_route(r, ips, info->index)); !st) return st;
    }
    return info;
  });
  if (!pod.ok()) return fail(pod.status());
  announce(*pod_ns, host_name, *pod, ips);
  links.pod = *pod;
  links.bridge = *br;
  if (routes_out != nullptr) *routes_out = std::move(installed);
  return links;
}

Status teardown_pod_network(const NetConf& conf, const Attachment& att) {
  auto host = link::Socket::Open();
  if (!host.ok()) return kernel_error(host.status());
  // Deleting one end of a veth pair deletes the other, wherever it lives.
  if (Status s = link::delete_link(*host, host_veth_name(conf.name, att)); !s) return kernel_error(s);
  return Status::Ok();
}

Status check_pod_network(const NetConf& conf, const Attachment& att, const std::string& netns,
                       const CniResult& prev) {
  auto host = link::Socket::Open();
  if (!host.ok()) return kernel_error(host.status());
  const std::string host_name = host_veth_name(conf.name, att);
  auto host_link = link::get_link(*host, host_name);
  if (!host_link.ok()) return error(kInterfaceMissing, "host interface " + host_name + " is missing");
  auto br = link::get_link(*host, conf.bridge);
  if (!br.ok()) return error(kInterfaceMissing, "bridge " + conf.bridge + " is missing");
  if (host_link->master_index != br->index) {
    return error(kInterfaceMissing, "host interface " + host_name + " is not attached to " + conf.bridge);
  }

  auto pod_ns = netns::NetnsHandle::Open(netns);
  if (!pod_ns.ok()) return error(kInterfaceMissing, "netns " + netns + ": " + pod_ns.status().message());
  // Which interface index in prevResult is ours: the one named ifname in the sandbox.
  int our_index = -1;
  std::string want_mac;
  for (size_t i = 0; i < prev.interfaces.size(); ++i) {
    if (prev.interfaces[i].name == att.ifname && !prev.interfaces[i].sandbox.empty()) {
      our_index = static_cast<int>(i);
      want_mac = prev.interfaces[i].mac;
    }
  }
  auto guard = netns::NetnsGuard::Enter(*pod_ns);
  if (!guard.ok()) return kernel_error(guard.status());
  {
    auto s = link::Socket::Open();
    if (!s.ok()) return kernel_error(s.status());
    auto pod = link::get_link(*s, att.ifname);
    if (!pod.ok()) return error(kInterfaceMissing, "interface " + att.ifname + " is missing in " + netns);
    if (!want_mac.empty() && pod->mac != want_mac) {
      return error(kInterfaceMissing, "interface " + att.ifname + " has MAC " + pod->mac + ", expected " + want_mac);
    }
    if (!pod->up()) return error(kInterfaceMissing, "interface " + att.ifname + " is down");
    auto addrs = link::list_addresses(*s, att.ifname);
    if (!addrs.ok()) return kernel_error(addrs.status());
    for (const auto& ip : prev.ips) {
      if (ip.interface && *ip.interface != our_index) continue;
      bool found = false;
      for (const auto& a : *addrs) found = found || a == ip.address;
      if (!found) {
        return error(kAddressMissing, "address " + ip.address.str() + " is missing on " + att.ifname);
      }
    }
    auto routes = link::list_routes(*s);
    if (!routes.ok()) return kernel_error(routes.status());
    for (const auto& want : prev.routes) {
      bool found = false;
      for (const auto& have : *routes) {
        if (have.dst != want.dst) continue;
        if (want.gw && have.gateway != *want.gw) continue;
        found = true;
      }
      if (!found) {
        return error(kRouteMissing, "route " + want.dst.str() + (want.gw ? " via " + want.gw->str() : "") + " is missing in " + netns);
      }
    }
  }
  return Status::Ok();
}

}  // namespace knode::cni
