// The IPVS proxy mode over the neutral model: one IPVS virtual server per cluster IP,
// node address x node port, external IP and load-balancer IP of each service port, real
// servers in NAT (masquerade) mode, and every VIP on the kube-ipvs0 dummy interface.
// Changes are applied as a diff against the kernel's table; a real server that leaves is
// set to weight 0 and deleted once its connections drained (graceful termination).
#pragma once

#include <chrono>
#include <functional>
#include <vector>

#include "knode/dataplane/ipvs.h"
#include "knode/net.h"
#include "knode/proxy_backend.h"

namespace knode {

struct IpvsBackendConfig {
  std::vector<net::Cidr> exclude_cidrs;        // virtual servers knode never deletes
  std::vector<net::Cidr> node_port_addresses;  // empty: every node address
  ipvs::Timeouts timeouts;                     // zero fields leave the kernel's
  // How long a leaving TCP real server may drain before it is deleted anyway.
  std::chrono::seconds drain_bound{900};
  // The node's addresses for NodePorts; default: every non-loopback IPv4 address except
  // the dummy's. Injected in tests.
  std::function<std::vector<net::IPAddress>()> node_addresses;
  // The dummy interface that holds the VIPs; empty disables it (unit tests).
  std::string dummy = "kube-ipvs0";
};

ProxyBackendPtr make_ipvs_backend(ipvs::IpvsPtr ipvs, IpvsBackendConfig config);

}  // namespace knode
