// The ip sets kube-proxy's IPVS mode keeps, with kube-proxy's names, types and
// comments, so iptables rules and operators' `ipset list` habits carry over.
#pragma once

#include <string>
#include <vector>

#include "knode/dataplane/ipset.h"

namespace knode::ipvs_proxy {

inline constexpr const char* kLoopBack = "KUBE-LOOP-BACK";
inline constexpr const char* kClusterIp = "KUBE-CLUSTER-IP";
inline constexpr const char* kExternalIp = "KUBE-EXTERNAL-IP";
inline constexpr const char* kExternalIpLocal = "KUBE-EXTERNAL-IP-LOCAL";
inline constexpr const char* kLoadBalancer = "KUBE-LOAD-BALANCER";
inline constexpr const char* kLoadBalancerLocal = "KUBE-LOAD-BALANCER-LOCAL";
inline constexpr const char* kLoadBalancerFw = "KUBE-LOAD-BALANCER-FW";
inline constexpr const char* kLoadBalancerSourceIp = "KUBE-LOAD-BALANCER-SOURCE-IP";
inline constexpr const char* kLoadBalancerSourceCidr = "KUBE-LOAD-BALANCER-SOURCE-CIDR";
inline constexpr const char* kNodePortTcp = "KUBE-NODE-PORT-TCP";
inline constexpr const char* kNodePortLocalTcp = "KUBE-NODE-PORT-LOCAL-TCP";
inline constexpr const char* kNodePortUdp = "KUBE-NODE-PORT-UDP";
inline constexpr const char* kNodePortLocalUdp = "KUBE-NODE-PORT-LOCAL-UDP";
inline constexpr const char* kNodePortSctp = "KUBE-NODE-PORT-SCTP-HASH";
inline constexpr const char* kNodePortLocalSctp = "KUBE-NODE-PORT-LOCAL-SCTP-HASH";
inline constexpr const char* kHealthCheckNodePort = "KUBE-HEALTH-CHECK-NODE-PORT";
inline constexpr const char* kIpvsIps = "KUBE-IPVS-IPS";

// Every set above for one IP family (4 or 6); v6 names get kube-proxy's "KUBE-6-" form.
// `comment` carries kube-proxy's description of each.
std::vector<ipset::SetSpec> kube_proxy_sets(int family = 4);

// kube-proxy's IPv6 spelling of a set name: KUBE-CLUSTER-IP -> KUBE-6-CLUSTER-IP,
// truncated to 31 characters (KUBE-6-LOAD-BALANCER-SOURCE-CID) as kube-proxy does.
std::string family_set_name(const std::string& name, int family);

}  // namespace knode::ipvs_proxy
