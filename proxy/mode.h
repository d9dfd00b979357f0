// Choosing the proxy mode: ipvs when asked for and the kernel has it, else iptables with
// one clear warning naming what is missing and how to fix it.
#pragma once

#include <string>

#include "knode/config.h"
#include "knode/proxy_backend.h"

namespace knode::proxy {

struct ModeSelection {
  ProxyBackendPtr backend;
  std::string requested;  // as configured ("" -> "iptables")
  std::string effective;  // what runs
  std::string fallback_reason;  // non-empty when effective != requested
};

Result<ModeSelection> select_mode(const config::ProxyConfig& config);

// Removes what every mode ever created (iptables chains; IPVS services, ipsets and
// kube-ipvs0 where the kernel has them). Idempotent.
Status cleanup_all_modes(const config::ProxyConfig& config);

}  // namespace knode::proxy
