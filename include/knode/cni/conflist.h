// The network configuration list knode installs for its pods, written from the node's
// pod CIDR by the kubelet (or by `knode-cni --write-conflist`).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "knode/status.h"

namespace knode::cni {

struct ConflistOptions {
  std::string pod_cidr;              // e.g. 10.244.1.0/24 (Node.spec.podCIDR)
  std::string bridge = "cni0";
  std::string network_name = "knode";
  unsigned mtu = 0;                  // 0: leave the kernel's default
  bool ip_masq = true;
  bool hairpin_mode = true;
  std::string data_dir;              // empty: host-local's default
  std::string path = "/etc/cni/net.d/10-knode.conflist";
};

// The conflist document; fails when pod_cidr is not a CIDR.
Result<nlohmann::json> make_conflist(const ConflistOptions& opts);
// Writes it atomically (temp file + rename); unchanged content is left untouched.
Status write_conflist(const ConflistOptions& opts);

}  // namespace knode::cni
