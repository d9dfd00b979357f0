#include "ipvs/companion_sync.h"

#include <algorithm>
#include <cerrno>

#include "knode/dataplane/iptables/set_index.h"
#include "knode/log.h"

namespace knode::ipvs_proxy {

CompanionSync::CompanionSync(ipset::Ipset& ipset, CompanionConfig config)
    : ipset_(ipset), config_(std::move(config)) {}

Status CompanionSync::full_sync_sets(const proxy::ProxyState& state, CompanionStats* stats) {
  for (const auto& spec : companion_sets()) {
    if (Status s = ipset_.create_set(spec, /*exist_ok=*/true); !s.ok()) return s;
  }
  contributions_.clear();
  refs_.clear();
  no_access_refs_.clear();
  for (const auto& spec : companion_sets()) refs_[spec.name];
  for (const auto& sp : state.services) {
    Contribution c = contribution_of(sp, config_);
    for (const auto& [set, entries] : c.entries) {
      for (const auto& e : entries) ++refs_[set][e];
    }
    for (const auto& n : c.no_node_access) ++no_access_refs_[n];
    contributions_[sp.name] = std::move(c);
  }
  // Against what the kernel holds: repairs entries added or deleted by hand.
  for (const auto& [name, want] : refs_) {
    auto listed = ipset_.list_set(name);
    if (!listed.ok()) return listed.status();
    std::set<ipset::Entry> have(listed->entries.begin(), listed->entries.end());
    std::vector<ipset::Entry> add, del;
    for (const auto& [e, n] : want) {
      if (!have.count(e)) add.push_back(e);
    }
    for (const auto& e : have) {
      if (!want.count(e)) del.push_back(e);
    }
    if (!add.empty()) {
      if (Status s = ipset_.add_entries(name, add, /*exist_ok=*/true); !s.ok()) return s;
    }
    if (!del.empty()) {
      if (Status s = ipset_.del_entries(name, del, /*missing_ok=*/true); !s.ok()) return s;
    }
    if (stats) {
      stats->entries_added += add.size();
      stats->entries_deleted += del.size();
    }
  }
  return Status::Ok();
}

Status CompanionSync::partial_sync_sets(const proxy::ProxyState& state, const std::set<std::string>& changed,
                                        CompanionStats* stats) {
  std::map<std::string, Contribution> now;
  for (const auto* sp : proxy::find_ports(state, changed)) now[sp->name] = contribution_of(*sp, config_);
  // Entries whose count goes 0 -> 1 are added, 1 -> 0 deleted; others stay untouched.
  std::map<std::string, std::set<ipset::Entry>> add, del;
  for (const auto& name : changed) {
    static const Contribution kNone;
    auto old_it = contributions_.find(name);
    const Contribution& old = old_it == contributions_.end() ? kNone : old_it->second;
    auto new_it = now.find(name);
    const Contribution& cur = new_it == now.end() ? kNone : new_it->second;
    if (old == cur) continue;
    static const std::set<ipset::Entry> kEmpty;
    auto entries_of = [](const Contribution& c, const std::string& set) -> const std::set<ipset::Entry>& {
      auto it = c.entries.find(set);
      return it == c.entries.end() ? kEmpty : it->second;
    };
    std::set<std::string> sets;
    for (const auto& [set, _] : old.entries) sets.insert(set);
    for (const auto& [set, _] : cur.entries) sets.insert(set);
    for (const auto& set : sets) {
      const auto& was = entries_of(old, set);
      const auto& is = entries_of(cur, set);
      auto& counts = refs_[set];
      for (const auto& e : was) {
        if (is.count(e)) continue;
        auto it = counts.find(e);
        if (it != counts.end() && --it->second == 0) {
          counts.erase(it);
          del[set].insert(e);
        }
      }
      for (const auto& e : is) {
        if (was.count(e)) continue;
        if (counts[e]++ == 0) {
          // Deleted for one service port and added for another in this sync: stays.
          if (!del[set].erase(e)) add[set].insert(e);
        }
      }
    }
    for (const auto& n : old.no_node_access) {
      if (--no_access_refs_[n] == 0) no_access_refs_.erase(n);
    }
    for (const auto& n : cur.no_node_access) ++no_access_refs_[n];
    if (new_it == now.end()) {
      contributions_.erase(name);
    } else {
      contributions_[name] = std::move(new_it->second);
    }
  }
  for (const auto& [set, entries] : add) {
    if (entries.empty()) continue;
    if (Status s = ipset_.add_entries(set, {entries.begin(), entries.end()}, /*exist_ok=*/true); !s.ok()) return s;
    if (stats) stats->entries_added += entries.size();
  }
  for (const auto& [set, entries] : del) {
    if (entries.empty()) continue;
    if (Status s = ipset_.del_entries(set, {entries.begin(), entries.end()}, /*missing_ok=*/true); !s.ok()) return s;
    if (stats) stats->entries_deleted += entries.size();
  }
  return Status::Ok();
}

Status CompanionSync::sync(const proxy::ProxyState& state, const std::set<std::string>& changed, bool full,
                           CompanionStats* stats) {
  full = full || !sets_known_;  // after a failure, or before the sets were ever made
  sets_known_ = false;  // until this sync's changes are all in
  Status s = full ? full_sync_sets(state, stats) : partial_sync_sets(state, changed, stats);
  if (!s.ok()) return s.Wrap("sync IPVS-mode ipsets");
  sets_known_ = true;
  return sync_rules(full, stats);
}

Status CompanionSync::sync_rules(bool full, CompanionStats* stats) {
  std::set<std::string> nonempty;
  for (const auto& [set, counts] : refs_) {
    if (!counts.empty()) nonempty.insert(set);
  }
  std::set<LbNoNodeAccess> no_access;
  for (const auto& [n, count] : no_access_refs_) no_access.insert(n);
  CompanionTables t = companion_tables(nonempty, no_access, config_);
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
  sets_known_ = false;
  contributions_.clear();
  refs_.clear();
  no_access_refs_.clear();
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
