// Applies IPVS mode's companions (companion.h) to the kernel: the ip sets, changed entry
// by entry, and the iptables rules, rewritten only when they change (or on a full sync,
// which also repairs sets and rules changed by hand).
#pragma once

#include "ipvs/companion.h"
#include "knode/dataplane/iptables/reconciler.h"
#include "knode/dataplane/ipset.h"
#include "knode/proxy/backend.h"

namespace knode::ipvs_proxy {

struct CompanionStats {
  size_t entries_added = 0;
  size_t entries_deleted = 0;
  size_t nat_rules = 0;
  size_t filter_rules = 0;
  bool rules_written = false;
};

class CompanionSync {
 public:
  CompanionSync(ipset::Ipset& ipset, CompanionConfig config);

  // `full`: look at every service and read the sets and tables from the kernel instead of
  // trusting the last sync. Otherwise only the service ports named in `changed` are
  // looked at, and a change costs O(change).
  Status sync(const proxy::ProxyState& state, const std::set<std::string>& changed, bool full,
              CompanionStats* stats = nullptr);
  // Removes the rules, then the sets. Idempotent.
  Status cleanup();

  const CompanionConfig& config() const { return config_; }
  // New node addresses (looked at again on full syncs): contributions follow at the next
  // full sync, which recomputes every service.
  void set_config(CompanionConfig config) { config_ = std::move(config); }

 private:
  Status full_sync_sets(const proxy::ProxyState& state, CompanionStats* stats);
  Status partial_sync_sets(const proxy::ProxyState& state, const std::set<std::string>& changed,
                           CompanionStats* stats);
  Status sync_rules(bool full, CompanionStats* stats);

  ipset::Ipset& ipset_;
  CompanionConfig config_;
  bool sets_known_ = false;  // refs_ is what the kernel holds
  std::map<std::string, Contribution> contributions_;  // per service port name
  // Per set, each entry's number of contributing service ports; the kernel holds the keys.
  std::map<std::string, std::map<ipset::Entry, int>> refs_;
  std::map<LbNoNodeAccess, int> no_access_refs_;
  bool rules_known_ = false;
  std::map<std::string, std::vector<iptables::Rule>> nat_rules_, filter_rules_;  // last written
  iptables::Reconciler nat_, filter_;
};

// Destroys every set companion_sets() names (after the rules using them are gone).
Status destroy_companion_sets(ipset::Ipset& ipset);

}  // namespace knode::ipvs_proxy
