#include "ipvs/desired.h"

namespace knode::ipvs_proxy {

using ipvs::ForwardMethod;

namespace {

VirtualServer virtual_server(const proxy::ServicePort& sp, const net::IPAddress& addr,
                             uint16_t port, const DesiredOptions& o) {
  VirtualServer vs;
  vs.address = addr;
  vs.port = port;
  vs.protocol = sp.protocol;
  vs.scheduler = o.scheduler;
  if (o.scheduler == "sh") vs.flags |= o.sh_flags;
  // As kube-proxy: Maglev hashing over source address and port (mh-port, scheduler flag 2).
  if (o.scheduler == "mh") vs.flags |= ipvs::kFlagShPort;
  if (sp.affinity_timeout_seconds > 0) {
    vs.flags |= ipvs::kFlagPersistent;
    vs.timeout = sp.affinity_timeout_seconds;
  }
  return vs;
}

std::vector<RealServer> real_servers(const std::vector<proxy::Endpoint>& endpoints,
                                     const net::IPAddress& vip) {
  std::vector<RealServer> out;
  for (const auto& b : endpoints) {
    if (b.ip.family() != vip.family()) continue;  // IPVS NAT does not cross families
    RealServer rs;
    rs.address = b.ip;
    rs.port = b.port;
    rs.weight = b.weight;
    rs.forward = ForwardMethod::kMasquerade;
    out.push_back(rs);
  }
  return out;
}

void put(std::map<ServiceKey, DesiredService>* out, const proxy::ServicePort& sp,
         const net::IPAddress& addr, uint16_t port, const std::vector<proxy::Endpoint>& endpoints,
         const DesiredOptions& o, std::set<ServiceKey>* contested) {
  if (!addr.valid() || port == 0) return;
  DesiredService d;
  d.vs = virtual_server(sp, addr, port, o);
  d.dests = real_servers(endpoints, addr);
  d.owner = sp.name;
  ServiceKey key = key_of(d.vs);
  auto [it, fresh] = out->emplace(key, std::move(d));  // first claimant wins
  if (!fresh && contested && it->second.owner != sp.name) contested->insert(key);
}

}  // namespace

void add_desired(const proxy::ServicePort& sp, const DesiredOptions& o,
                 std::map<ServiceKey, DesiredService>* out, std::set<ServiceKey>* contested) {
  put(out, sp, sp.cluster_ip, sp.port, sp.cluster_endpoints, o, contested);
  const auto& ext = sp.external_endpoints();
  if (sp.node_port != 0) {
    for (const auto& addr : o.node_addresses) put(out, sp, addr, sp.node_port, ext, o, contested);
  }
  for (const auto& ip : sp.external_ips) put(out, sp, ip, sp.port, ext, o, contested);
  for (const auto& ip : sp.load_balancer_ips) put(out, sp, ip, sp.port, ext, o, contested);
}

std::map<ServiceKey, DesiredService> build_desired(const proxy::ProxyState& state,
                                                   const DesiredOptions& o, std::set<ServiceKey>* contested) {
  std::map<ServiceKey, DesiredService> out;
  for (const auto& sp : state.services) add_desired(sp, o, &out, contested);
  return out;
}

}  // namespace knode::ipvs_proxy
