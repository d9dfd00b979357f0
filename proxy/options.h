// The proxy's configuration, interpreted once at start: every CIDR and address parsed,
// every value checked against what knode can program. A value knode cannot use (an IPv6
// CIDR, an unknown scheduler) is an error naming the flag, never silently dropped.
#pragma once

#include <chrono>
#include <string>

#include "host.h"
#include "iptables/proxier.h"
#include "ipvs/proxier.h"
#include "nftables/proxier.h"
#include "knode/config.h"
#include "knode/status.h"

namespace knode::proxy {

struct ProxyOptions {
  std::string mode;  // as requested: "iptables", "ipvs" or "nftables"
  // Of the requested mode (--iptables-* for iptables and nftables, --ipvs-* for ipvs).
  std::chrono::milliseconds sync_period{30000};
  std::chrono::milliseconds min_sync_period{1000};
  iptables_proxy::IptablesConfig iptables;
  ipvs_proxy::IpvsConfig ipvs;
  nftables_proxy::NftablesConfig nftables;
  std::string healthz_bind_address;  // "" disables
  std::string metrics_bind_address;  // "" disables
};

// The IPVS schedulers knode accepts, as the kernel names them.
bool known_ipvs_scheduler(const std::string& name);

// `host` resolves --nodeport-addresses=primary (the node's IPs).
Result<ProxyOptions> proxy_options(const config::ProxyConfig& config, Host& host = system_host());

}  // namespace knode::proxy
