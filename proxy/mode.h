// Choosing the proxy mode: ipvs or nftables when asked for and the kernel has it, else
// iptables with one clear warning naming what is missing and how to fix it. The chosen
// mode removes the other modes' rules before its first sync, as kube-proxy does.
#pragma once

#include <string>

#include "knode/proxy/backend.h"
#include "options.h"

namespace knode::proxy {

struct ModeSelection {
  ProxyBackendPtr mode;
  std::string requested;        // as configured
  std::string effective;        // what runs
  std::string fallback_reason;  // non-empty when effective != requested
};

ModeSelection select_mode(const ProxyOptions& options);

// Removes what every mode ever created (iptables chains; IPVS services, ipsets and
// kube-ipvs0 where the kernel has them; table ip kube-proxy). Idempotent.
[[nodiscard]] Status cleanup_all_modes(const ProxyOptions& options);

}  // namespace knode::proxy
