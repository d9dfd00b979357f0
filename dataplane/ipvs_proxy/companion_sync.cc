#include "companion_sync.h"

#include <algorithm>
#include <cerrno>

#include "iptables/set_index.h"
#include "knode/log.h"

namespace knode::ipvs_proxy {

CompanionSync::CompanionSync(ipset::Ipset& ipset, CompanionConfig config)
    : ipset_(ipset), config_(std::move(config)) {}

Status CompanionSync::sync_sets(const SetContents& want, bool full, CompanionStats* stats) {
  if (!sets_created_ || full) {
    for (const auto& spec : companion_sets()) {
      if (Status s = ipset_.create_set(spec, /*exist_ok=*/true); !s.ok()) return s;
    }
    sets_created_ = true;
  }
  for (const auto& [name, entries] : want) {
    std::set<ipset::Entry> have;
    if (full || !applied_.count(name)) {
      auto listed = ipset_.list_set(name);
      if (!listed.ok()) return listed.status();
      have.insert(listed->entries.begin(), listed->entries.end());
    } else {
      have = applied_[name];
    }
    std::vector<ipset::Entry> add, del;
    std::set_difference(entries.begin(), entries.end(), have.begin(), have.end(), std::back_inserter(add));
    std::set_difference(have.begin(), have.end(), entries.begin(), entries.end(), std::back_inserter(del));
    if (!add.empty()) {
      if (Status s = ipset_.add_entries(name, add, /*exist_ok=*/true); !s.ok()) {
        applied_.erase(name);  // unknown now: read it back next time
        return s;
      }
    }
    if (!del.empty()) {
      if (Status s = ipset_.del_entries(name, del, /*missing_ok=*/true); !s.ok()) {
        applied_.erase(name);
        return s;
      }
    }
    if (stats) {
      stats->entries_added += add.size();
      stats->entries_deleted += del.size();
    }
    applied_[name] = entries;
  }
  return Status::Ok();
}

Status CompanionSync::sync(const dp::ProxyState& state, bool full, CompanionStats* stats) {
  SetContents want = desired_sets(state, config_);
  if (Status s = sync_sets(want, full, stats); !s.ok()) return s.Wrap("sync IPVS-mode ipsets");

  CompanionTables t = companion_tables(want, lb_no_node_access(state, config_), config_);
  if (stats) {
    for (const auto& [_, rules] : t.nat.chains) stats->nat_rules += rules.size();
    for (const auto& [_, rules] : t.filter.chains) stats->filter_rules += rules.size();
  }
  // The rules change only when a set turns empty or not, or LB source ranges change.
  if (!full && rules_known_ && t.nat.chains == nat_rules_ && t.filter.chains == filter_rules_) {
    return Status::Ok();
  }
  std::map<std::string, std::vector<iptables::Rule>> nat_copy = t.nat.chains, filter_copy = t.filter.chains;
  for (auto* table : {&t.nat, &t.filter}) {
    for (auto& [chain, rules] : table->chains) {
      if (Status s = iptables::resolve_set_indexes(rules); !s.ok()) {
        return s.Wrap("sync IPVS-mode iptables rules: chain " + chain);
      }
    }
  }
  iptables::ReconcileOptions opts;
  opts.trust_cache = !full;
  rules_known_ = false;
  if (Status s = nat_.reconcile(t.nat, opts); !s.ok()) {
    nat_.invalidate();
    return s.Wrap("sync IPVS-mode iptables nat table");
  }
  if (Status s = filter_.reconcile(t.filter, opts); !s.ok()) {
    filter_.invalidate();
    return s.Wrap("sync IPVS-mode iptables filter table");
  }
  nat_rules_ = std::move(nat_copy);
  filter_rules_ = std::move(filter_copy);
  rules_known_ = true;
  if (stats) stats->rules_written = true;
  return Status::Ok();
}

Status CompanionSync::cleanup() {
  CompanionTables t = companion_skeleton();
  Status nat = iptables::cleanup(t.nat);
  Status filter = iptables::cleanup(t.filter);
  nat_.invalidate();
  filter_.invalidate();
  rules_known_ = false;
  sets_created_ = false;
  applied_.clear();
  if (!nat.ok()) return nat.Wrap("clean up IPVS-mode nat rules");
  if (!filter.ok()) return filter.Wrap("clean up IPVS-mode filter rules");
  return destroy_companion_sets(ipset_);
}

Status destroy_companion_sets(ipset::Ipset& ipset) {
  auto names = ipset.list_set_names();
  if (!names.ok()) return names.status().Wrap("clean up IPVS-mode ipsets");
  Status first;
  for (const auto& spec : companion_sets()) {
    if (std::find(names->begin(), names->end(), spec.name) == names->end()) continue;
    if (Status s = ipset.destroy_set(spec.name); !s.ok() && first.ok()) first = s;
  }
  return first.Wrap("clean up IPVS-mode ipsets");
}

}  // namespace knode::ipvs_proxy
