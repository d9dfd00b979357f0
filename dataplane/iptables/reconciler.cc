#include "knode/dataplane/iptables/reconciler.h"

#include <algorithm>
#include <chrono>
#include <unordered_map>
#include <unordered_set>

#include "iptables/blob.h"
#include "iptables/entry.h"
#include "knode/dataplane/iptables/xtables_lock.h"
#include "knode/log.h"

namespace knode::iptables {

using detail::ChainImage;
using detail::TableImage;

bool DesiredTable::owns(const std::string& chain) const {
  if (owned_chains.count(chain)) return true;
  for (const auto& p : owned_prefixes) {
    if (!p.empty() && chain.compare(0, p.size(), p) == 0) return true;
  }
  return false;
}

struct Reconciler::Cache {
  std::map<std::string, TableImage> tables;
  std::vector<char> buffer;  // the last blob written, reused
};

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

bool is_builtin_name(const std::string& c) {
  return c == "PREROUTING" || c == "INPUT" || c == "FORWARD" || c == "OUTPUT" ||
         c == "POSTROUTING";
}

// Calls f(offset, entry) for each entry of a chain's normalized bytes.
template <typename F>
void for_each_entry(const std::string& bytes, F&& f) {
  for (size_t off = 0; off < bytes.size();) {
    const ipt_entry* e = detail::entry_at(bytes.data(), off);
    f(off, e);
    off += e->next_offset;
  }
}

// The chain a normalized entry jumps to, or "" (verdicts and module targets).
std::string_view jump_label(const ipt_entry* e) {
  const xt_entry_target* t = detail::target_of(e);
  if (t->u.target_size != detail::kStandardTargetSize) return {};
  std::string_view name(t->u.user.name, strnlen(t->u.user.name, sizeof t->u.user.name));
  if (detail::label_verdict(name) != 1) return {};
  return name;
}

Status check_desired(const DesiredTable& d) {
  if (d.table.empty()) return Status::Error("iptables reconcile: no table name", EINVAL);
  std::vector<const std::string*> names;
  for (const auto& [name, rules] : d.chains) names.push_back(&name);
  for (const auto& [name, chain] : d.encoded) {
    if (d.chains.count(name)) {
      return Status::Error("iptables reconcile " + d.table + ": chain " + name + " given twice", EINVAL);
    }
    names.push_back(&name);
  }
  for (const std::string* np : names) {
    const std::string& name = *np;
    if (name.empty() || name.size() > 28) {
      return Status::Error("iptables reconcile " + d.table + ": bad chain name \"" + name + "\"",
                           EINVAL);
    }
    if (is_builtin_name(name) || !d.owns(name)) {
      return Status::Error("iptables reconcile " + d.table + ": chain " + name +
                               " is not owned (owned: prefixes and owned_chains)",
                           EINVAL);
    }
  }
  for (const JumpRule& j : d.jumps) {
    if (!is_builtin_name(j.chain)) {
      return Status::Error("iptables reconcile " + d.table + ": jump rule in " + j.chain +
                               ", which is no built-in chain",
                           EINVAL);
    }
    Status s = j.rule.validate();
    if (!s) return s.Wrap("iptables reconcile " + d.table + " jump in " + j.chain);
  }
  return Status::Ok();
}

class Planner {
 public:
  Planner(const DesiredTable& d, DesiredTable* movable, TableImage& img, ReconcileStats& st,
          const std::set<std::string>* only)
      : d_(d), movable_(movable), img_(img), st_(st), only_(only) {
    by_name_.reserve(img_.chains.size());
    for (size_t i = 0; i < img_.chains.size(); ++i) by_name_[img_.chains[i].name] = i;
  }

  bool changed() const { return changed_; }

  // Creates or rewrites chain `name` with `rules` if it differs. Only chains compared
  // are validated, so a partial sync costs what it touches.
  Status sync_chain(const std::string& name, const std::vector<Rule>& rules) {
    for (const Rule& r : rules) {
      Status s = r.validate();
      if (!s) return s.Wrap("chain " + name);
    }
    // Encoded into a reused buffer: most chains are equal and need no copy.
    std::string& bytes = scratch_;
    bytes.clear();
    for (const Rule& r : rules) r.encode_to(bytes);
    put_chain(name, bytes, nullptr, static_cast<uint32_t>(rules.size()));
    return Status::Ok();
  }

  // The same for a chain given as bytes (moved into the image when the caller allows).
  void sync_encoded(const std::string& name) {
    if (movable_) {
      EncodedChain& c = movable_->encoded.at(name);
      put_chain(name, c.bytes, &c.bytes, c.rules);
    } else {
      const EncodedChain& c = d_.encoded.at(name);
      put_chain(name, c.bytes, nullptr, c.rules);
    }
  }

  // Creates or rewrites chain `name` with `bytes` unless it holds them already; moves
  // them from `owner` (which holds `bytes`) when given.
  void put_chain(const std::string& name, std::string_view bytes, std::string* owner, uint32_t num_rules) {
    auto take = [&] { return owner ? std::move(*owner) : std::string(bytes); };
    auto it = by_name_.find(name);
    if (it == by_name_.end()) {
      ChainImage c;
      c.name = name;
      c.entries = take();
      c.num_rules = num_rules;
      created_.push_back(std::move(c));
      ++st_.chains_created;
      st_.rules_written += num_rules;
      changed_ = true;
      return;
    }
    ChainImage& c = img_.chains[it->second];
    if (c.entries == bytes) {
      if (owner) std::string().swap(*owner);  // the image has it: free the caller's copy now
      return;
    }
    c.entries = take();
    c.num_rules = num_rules;
    c.old_index.clear();
    ++st_.chains_rewritten;
    st_.rules_written += num_rules;
    changed_ = true;
  }

  void remove_chain(const std::string& name) {
    auto it = by_name_.find(name);
    if (it != by_name_.end()) doomed_.insert(it->first);  // views the image's own name
  }

  // Each desired jump exactly once in its built-in chain; other rules there that jump to
  // an owned chain go (`keep_owned` = false in cleanup: all of them go).
  Status sync_jumps(const std::vector<JumpRule>& jumps) {
    std::map<std::string, std::vector<const JumpRule*>> per_chain;
    for (const JumpRule& j : jumps) per_chain[j.chain];
    for (const JumpRule& j : jumps) per_chain[j.chain].push_back(&j);
    // Built-in chains without desired jumps may still hold stale ones.
    for (const ChainImage& c : img_.chains) {
      if (c.hook >= 0) per_chain[c.name];
    }
    for (auto& [chain, list] : per_chain) {
      auto it = by_name_.find(chain);
      if (it == by_name_.end() || img_.chains[it->second].hook < 0) {
        if (list.empty()) continue;
        return Status::Error("iptables reconcile " + d_.table + ": table has no built-in chain " +
                                 chain,
                             ENOENT);
      }
      sync_builtin(img_.chains[it->second], list);
    }
    return Status::Ok();
  }

  // Applies deletions and creations to the image. Fails when an owned chain that stays
  // jumps to a chain being deleted.
  Status finish() {
    if (!doomed_.empty()) {
      std::set<std::string> kept_alive;
      for (const ChainImage& c : img_.chains) {
        if (doomed_.count(c.name)) continue;
        Status s = Status::Ok();
        for_each_entry(c.entries, [&](size_t, const ipt_entry* e) {
          std::string_view l = jump_label(e);
          if (l.empty() || !s || !doomed_.count(l)) return;
          if (d_.owns(c.name)) {
            s = Status::Error("iptables reconcile " + d_.table + ": chain " + c.name +
                                  " still jumps to " + std::string(l) + ", which is to be deleted",
                              EINVAL);
          } else {
            kept_alive.insert(std::string(l));
          }
        });
        if (!s) return s;
      }
      for (const std::string& name : kept_alive) {
        KLOG(WARNING, "iptables: owned chain still referenced by a foreign rule; flushing, not deleting")
            .kv("table", d_.table)
            .kv("chain", name);
        doomed_.erase(std::string_view(name));
        ChainImage& c = img_.chains[by_name_.at(name)];
        if (c.num_rules) {
          c.entries.clear();
          c.num_rules = 0;
          c.old_index.clear();
          changed_ = true;
        }
      }
      if (!doomed_.empty()) {
        st_.chains_deleted += doomed_.size();
        changed_ = true;
        std::vector<bool> drop(img_.chains.size(), false);
        for (std::string_view name : doomed_) drop[by_name_.at(name)] = true;
        doomed_.clear();  // its views die with the erased chains
        by_name_.clear();
        size_t out = 0;
        for (size_t i = 0; i < img_.chains.size(); ++i) {
          if (drop[i]) continue;
          if (out != i) img_.chains[out] = std::move(img_.chains[i]);
          ++out;
        }
        img_.chains.resize(out);
      }
    }
    if (!created_.empty()) {
      std::sort(created_.begin(), created_.end(),
                [](const ChainImage& a, const ChainImage& b) { return a.name < b.name; });
      size_t mid = img_.chains.size();
      for (auto& c : created_) img_.chains.push_back(std::move(c));
      created_.clear();
      // Keep user chains sorted as libiptc writes them: iptables-save (libiptc) inserts
      // unsorted chains one by one into a list, which is quadratic at 100k chains.
      auto user_begin = std::find_if(img_.chains.begin(), img_.chains.end(),
                                     [](const ChainImage& c) { return c.hook < 0; });
      auto by_name = [](const ChainImage& a, const ChainImage& b) { return a.name < b.name; };
      if (!std::is_sorted(user_begin, img_.chains.begin() + mid, by_name)) {
        std::sort(user_begin, img_.chains.begin() + mid, by_name);
      }
      std::inplace_merge(user_begin, img_.chains.begin() + mid, img_.chains.end(), by_name);
    }
    return Status::Ok();
  }

 private:
  void sync_builtin(ChainImage& c, const std::vector<const JumpRule*>& jumps) {
    std::vector<std::string> want(jumps.size());
    for (size_t i = 0; i < jumps.size(); ++i) want[i] = jumps[i]->rule.encode();
    std::vector<bool> found(jumps.size(), false);

    struct Piece {
      size_t off, len;
      int32_t old;
    };
    std::vector<Piece> keep;
    bool drop_any = false;
    const bool have_old = c.old_index.size() == c.num_rules + 1;
    size_t idx = 0;
    for_each_entry(c.entries, [&](size_t off, const ipt_entry* e) {
      std::string_view bytes(c.entries.data() + off, e->next_offset);
      int32_t old = have_old ? c.old_index[idx] : -1;
      ++idx;
      for (size_t i = 0; i < want.size(); ++i) {
        if (bytes == want[i]) {
          if (found[i]) {
            drop_any = true;  // duplicate
            ++st_.jumps_removed;
          } else {
            found[i] = true;
            keep.push_back({off, bytes.size(), old});
          }
          return;
        }
      }
      std::string_view l = jump_label(e);
      // Stale: jumps to an owned chain but is not desired. In partial mode only jumps
      // to the chains being synced count (a caller may sync one chain at a time).
      if (!l.empty() && d_.owns(std::string(l)) && (!only_ || only_->count(std::string(l)))) {
        drop_any = true;
        ++st_.jumps_removed;
        return;
      }
      keep.push_back({off, bytes.size(), old});
    });
    bool add_any = std::find(found.begin(), found.end(), false) != found.end();
    if (!drop_any && !add_any) return;

    std::string out;
    std::vector<int32_t> old_index;
    uint32_t n = 0;
    auto add_new = [&](size_t i) {
      out += want[i];
      old_index.push_back(-1);
      ++n;
      ++st_.jumps_added;
      ++st_.rules_written;
    };
    // Missing insert-first jumps go on top, in the order given.
    for (size_t i = 0; i < want.size(); ++i) {
      if (!found[i] && jumps[i]->position == JumpRule::kInsertFirst) add_new(i);
    }
    for (const Piece& p : keep) {
      out.append(c.entries, p.off, p.len);
      old_index.push_back(p.old);
      ++n;
    }
    for (size_t i = 0; i < want.size(); ++i) {
      if (!found[i] && jumps[i]->position == JumpRule::kAppend) add_new(i);
    }
    old_index.push_back(have_old ? c.old_index[c.num_rules] : -1);  // policy
    c.entries = std::move(out);
    c.num_rules = n;
    c.old_index = std::move(old_index);
    changed_ = true;
  }

  const DesiredTable& d_;
  DesiredTable* movable_;  // the same table, when its encoded chains may be moved from
  TableImage& img_;
  ReconcileStats& st_;
  const std::set<std::string>* only_;  // partial mode: the chains being synced
  std::unordered_map<std::string_view, size_t> by_name_;  // views of img_ chain names
  std::vector<ChainImage> created_;
  std::unordered_set<std::string_view> doomed_;
  std::string scratch_;
  bool changed_ = false;
};

size_t count_rules(const TableImage& img) {
  size_t n = 0;
  for (const auto& c : img.chains) n += c.num_rules;
  return n;
}

}  // namespace

Reconciler::Reconciler() : cache_(std::make_unique<Cache>()) {}
Reconciler::~Reconciler() = default;

void Reconciler::invalidate() { cache_->tables.clear(); }

// Reads the kernel's table, or reuses the copy we left there when the kernel still
// holds a table of the same shape.
static Result<TableImage*> load(std::map<std::string, TableImage>& cache,
                                const std::string& table, bool trust_cache) {
  auto it = cache.find(table);
  if (it != cache.end() && !trust_cache) {
    cache.erase(it);
    it = cache.end();
  }
  if (it != cache.end()) {
    uint32_t n = 0, size = 0;
    Status s = detail::table_info(table, &n, &size);
    if (!s) return s;
    if (n == it->second.num_entries && size == it->second.size) return &it->second;
    cache.erase(it);
  }
  auto img = detail::read_table(table);
  if (!img) return img.status();
  auto [pos, _] = cache.insert_or_assign(table, std::move(*img));
  return &pos->second;
}

Status Reconciler::reconcile(const DesiredTable& desired, const ReconcileOptions& options,
                             ReconcileStats* stats_out) {
  return reconcile_impl(desired, nullptr, options, stats_out);
}

Status Reconciler::reconcile(DesiredTable&& desired, const ReconcileOptions& options,
                             ReconcileStats* stats_out) {
  return reconcile_impl(desired, &desired, options, stats_out);
}

Status Reconciler::reconcile_impl(const DesiredTable& desired, DesiredTable* movable,
                                  const ReconcileOptions& options, ReconcileStats* stats_out) {
  ReconcileStats st;
  Status s = check_desired(desired);
  if (!s) return s;

  auto t0 = Clock::now();
  auto lock = detail::XtablesLock::acquire(options.lock_wait_ms);
  if (!lock) return lock.status().Wrap("iptables reconcile " + desired.table);
  auto loaded = load(cache_->tables, desired.table, options.trust_cache);
  if (!loaded) return loaded.status().Wrap("iptables reconcile");
  st.read_ms = ms_since(t0);

  // Work on a copy only in dry-run mode; otherwise the cached image is edited in
  // place and dropped if the write fails.
  TableImage scratch;
  TableImage* img = *loaded;
  if (options.dry_run) {
    scratch = *img;
    img = &scratch;
  }
  auto fail = [&](const Status& e) {
    cache_->tables.erase(desired.table);
    if (stats_out) *stats_out = st;
    return e;
  };

  auto t1 = Clock::now();
  Planner plan(desired, options.dry_run ? nullptr : movable, *img, st,
               options.only_chains ? &*options.only_chains : nullptr);
  if (options.only_chains) {
    for (const std::string& name : *options.only_chains) {
      auto it = desired.chains.find(name);
      if (it != desired.chains.end()) {
        s = plan.sync_chain(name, it->second);
        if (!s) break;
      } else if (desired.encoded.count(name)) {
        plan.sync_encoded(name);
      } else if (desired.owns(name) && !is_builtin_name(name)) {
        plan.remove_chain(name);
      }
    }
  } else {
    for (const auto& [name, rules] : desired.chains) {
      s = plan.sync_chain(name, rules);
      if (!s) break;
    }
    if (s) {
      for (const auto& [name, chain] : desired.encoded) plan.sync_encoded(name);
    }
    for (const ChainImage& c : img->chains) {
      if (c.hook < 0 && desired.owns(c.name) && !desired.wants(c.name)) {
        plan.remove_chain(c.name);
      }
    }
  }
  if (s) s = plan.sync_jumps(desired.jumps);
  if (s) s = plan.finish();
  if (!s) return fail(s.Wrap("iptables reconcile " + desired.table));
  st.diff_ms = ms_since(t1);

  if (plan.changed() && !options.dry_run) {
    auto t2 = Clock::now();
    s = detail::write_table(*img, img->num_entries, &st.kernel_ms, &cache_->buffer);
    // A big table's blob is as large as the table image kept above: give it back rather
    // than hold it between syncs (the next write allocates it again in a few ms).
    if (cache_->buffer.capacity() > (size_t{8} << 20)) std::vector<char>().swap(cache_->buffer);
    st.write_ms = ms_since(t2);
    if (!s) return fail(s);
    st.committed = true;
  }
  st.table_rules = count_rules(*img);
  if (stats_out) *stats_out = st;
  return Status::Ok();
}

Status Reconciler::cleanup(const DesiredTable& desired, ReconcileStats* stats_out) {
  DesiredTable empty;
  empty.table = desired.table;
  empty.owned_prefixes = desired.owned_prefixes;
  empty.owned_chains = desired.owned_chains;
  ReconcileStats st;
  Status s = reconcile(empty, {}, &st);
  if (stats_out) *stats_out = st;
  return s;
}

Status reconcile(const DesiredTable& desired, const ReconcileOptions& options,
                 ReconcileStats* stats) {
  Reconciler r;
  return r.reconcile(desired, options, stats);
}

Status cleanup(const DesiredTable& desired, ReconcileStats* stats) {
  Reconciler r;
  return r.cleanup(desired, stats);
}

}  // namespace knode::iptables
