// --proxy-mode=nftables: kube-proxy's nftables layout (service_rules.h) kept in table
// `ip kube-proxy` by the dataplane's reconciler: one netlink transaction per sync, and a
// change to some services touches only their chains and map elements.
#pragma once

#include <chrono>
#include <functional>
#include <vector>

#include "host.h"
#include "knode/dataplane/nftables.h"
#include "knode/dataplane/nftables/reconciler.h"
#include "knode/net.h"
#include "knode/proxy/backend.h"

namespace knode::nftables_proxy {

struct NftablesConfig {
  std::vector<net::Cidr> cluster_cidrs;
  bool masquerade_all = false;
  int masquerade_bit = 14;
  std::vector<net::Cidr> node_port_addresses;  // empty: every local address but loopback
  net::IPAddress node_ip;                      // --bind-address; else the default route's
  // Endpoints picked by one rule each instead of slots in the shard maps
  // (RulesConfig::EndpointPick::kCascade): for benchmarks comparing layouts.
  bool endpoint_rules = false;
  // The shard maps the slots are kept in (RulesConfig::endpoint_shards).
  uint32_t endpoint_shards = 1024;
  // The first sync into a missing table: operations per batch sent ahead of the base
  // chains (ReconcilerOptions; 0: one batch).
  size_t first_sync_batch_ops = nftables::ReconcilerOptions{}.first_sync_batch_ops;
  // Chains no longer used are flushed at once and deleted this much later.
  std::chrono::milliseconds stale_chain_delay{1000};
  std::function<std::chrono::steady_clock::time_point()> now = [] { return std::chrono::steady_clock::now(); };
};

ProxyBackendPtr make_nftables_proxier(nftables::NftablesPtr client, const NftablesConfig& config,
                                      proxy::Host& host = proxy::system_host());

// Deletes table ip kube-proxy; fine when there is none.
[[nodiscard]] Status cleanup_nftables(nftables::Nftables& client);

}  // namespace knode::nftables_proxy
