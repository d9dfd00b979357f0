// --proxy-mode=iptables: kube-proxy's chain layout (service_rules.h), programmed in
// process through the whole-table reconciler, never forking iptables.
#pragma once

#include <vector>

#include "host.h"
#include "knode/net.h"
#include "knode/proxy/backend.h"

namespace knode::iptables_proxy {

struct IptablesConfig {
  std::vector<net::Cidr> cluster_cidrs;
  bool masquerade_all = false;
  int masquerade_bit = 14;
  std::vector<net::Cidr> node_port_addresses;
  bool localhost_node_ports = true;
};

ProxyBackendPtr make_iptables_proxier(const IptablesConfig& config, proxy::Host& host = proxy::system_host());

}  // namespace knode::iptables_proxy
