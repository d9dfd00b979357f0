#include "ipvs/kube_sets.h"

namespace knode::ipvs_proxy {

using ipset::SetSpec;
using ipset::SetType;

std::string family_set_name(const std::string& name, int family) {
  if (family != 6 || name.rfind("KUBE-", 0) != 0) return name;
  // As kube-proxy: the longer prefix may overflow ipset's 31 characters; truncate.
  std::string v6 = "KUBE-6-" + name.substr(5);
  if (v6.size() > ipset::kMaxNameLength) v6.resize(ipset::kMaxNameLength);
  return v6;
}

std::vector<SetSpec> kube_proxy_sets(int family) {
  struct Def {
    const char* name;
    SetType type;
    const char* comment;
  };
  static const Def kDefs[] = {
      {kLoopBack, SetType::kHashIpPortIp,
       "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose"},
      {kClusterIp, SetType::kHashIpPort, "Kubernetes service cluster ip + port for masquerade purpose"},
      {kExternalIp, SetType::kHashIpPort, "Kubernetes service external ip + port for masquerade and filter purpose"},
      {kExternalIpLocal, SetType::kHashIpPort, "Kubernetes service external ip + port with externalTrafficPolicy=local"},
      {kLoadBalancer, SetType::kHashIpPort, "Kubernetes service lb portal"},
      {kLoadBalancerLocal, SetType::kHashIpPort, "Kubernetes service load balancer ip + port with externalTrafficPolicy=local"},
      {kLoadBalancerFw, SetType::kHashIpPort, "Kubernetes service load balancer ip + port for load balancer with sourceRange"},
      {kLoadBalancerSourceIp, SetType::kHashIpPortIp, "Kubernetes service load balancer ip + port + source IP for packet filter purpose"},
      {kLoadBalancerSourceCidr, SetType::kHashIpPortNet, "Kubernetes service load balancer ip + port + source cidr for packet filter purpose"},
      {kNodePortTcp, SetType::kBitmapPort, "Kubernetes nodeport TCP port for masquerade purpose"},
      {kNodePortLocalTcp, SetType::kBitmapPort, "Kubernetes nodeport TCP port with externalTrafficPolicy=local"},
      {kNodePortUdp, SetType::kBitmapPort, "Kubernetes nodeport UDP port for masquerade purpose"},
      {kNodePortLocalUdp, SetType::kBitmapPort, "Kubernetes nodeport UDP port with externalTrafficPolicy=local"},
      {kNodePortSctp, SetType::kHashIpPort, "Kubernetes nodeport SCTP port for masquerade purpose with type 'hash ip:port'"},
      {kNodePortLocalSctp, SetType::kHashIpPort, "Kubernetes nodeport SCTP port with externalTrafficPolicy=local with type 'hash ip:port'"},
      {kHealthCheckNodePort, SetType::kBitmapPort, "Kubernetes health check node port"},
      {kIpvsIps, SetType::kHashIp, "Addresses on the ipvs interface"},
  };
  std::vector<SetSpec> out;
  for (const auto& d : kDefs) {
    SetSpec s;
    s.name = family_set_name(d.name, family);
    s.type = d.type;
    s.family = family;
    s.comment = d.comment;
    out.push_back(s);
  }
  return out;
}

}  // namespace knode::ipvs_proxy
