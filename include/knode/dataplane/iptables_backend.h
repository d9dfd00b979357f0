// The iptables proxy mode: kube-proxy's chain layout, programmed in-process (libiptc /
// the table blob), never forking iptables.
#pragma once

#include <memory>
#include <vector>

#include "knode/net.h"
#include "knode/proxy_backend.h"

namespace knode {

struct IptablesBackendConfig {
  std::vector<net::Cidr> cluster_cidrs;
  bool masquerade_all = false;
  int masquerade_bit = 14;
  std::vector<net::Cidr> node_port_addresses;
  bool localhost_node_ports = true;
};

ProxyBackendPtr make_iptables_backend(const IptablesBackendConfig& config);

}  // namespace knode
