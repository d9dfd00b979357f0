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

using detail::ChainRef;
using detail::ImageEdits;
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

// Whether `name` may be a chain of `d`: an owned user chain with a valid name.
Status check_chain_name(const DesiredTable& d, const std::string& name) {
  if (name.empty() || name.size() > 28) {
    return Status::Error("iptables reconcile " + d.table + ": bad chain name \"" + name + "\"", EINVAL);
  }
  if (is_builtin_name(name) || !d.owns(name)) {
    return Status::Error("iptables reconcile " + d.table + ": chain " + name +
                             " is not owned (owned: prefixes and owned_chains)",
                         EINVAL);
  }
  return Status::Ok();
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
    if (Status s = check_chain_name(d, *np); !s) return s;
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

// Decides what changes, against the image as it is, and collects the edits; the image
// itself changes only in apply_edits.
class Planner {
 public:
  Planner(const DesiredTable& d, DesiredTable* movable, const TableImage& img, ReconcileStats& st,
          const std::set<std::string>* only)
      : d_(d), movable_(movable), img_(img), st_(st), only_(only), rules_(img.num_rules()) {}

  bool changed() const { return changed_; }
  size_t planned_rules() const { return rules_; }
  ImageEdits take_edits() { return std::move(edits_); }

  // Creates or rewrites chain `name` with `rules` if it differs. Only chains compared
  // are validated, so a partial sync costs what it touches.
  Status sync_chain(const std::string& name, const std::vector<Rule>& rules) {
    for (const Rule& r : rules) {
      Status s = r.validate();
      if (!s) return s.Wrap("chain " + name);
    }
    std::string bytes;
    for (const Rule& r : rules) r.encode_to(bytes);
    put_chain(name, bytes, &bytes, static_cast<uint32_t>(rules.size()));
    return Status::Ok();
  }

  // The same for a chain given as bytes (moved from when the caller allows).
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
  // `deferred` (a streamed chain): the edit keeps only the size; fill_chain writes the
  // bytes once the layout is done.
  void put_chain(std::string_view name, std::string_view bytes, std::string* owner, uint32_t num_rules,
                 bool deferred = false) {
    auto take = [&] { return deferred ? std::string() : owner ? std::move(*owner) : std::string(bytes); };
    const auto size = static_cast<uint32_t>(bytes.size());
    const int idx = img_.find(name);
    if (idx < 0) {
      edits_.create.push_back({std::string(name), deferred ? nullptr : std::make_unique<std::string>(take()),
                               num_rules, deferred, size});
      deferred_ += deferred;
      ++st_.chains_created;
      st_.rules_written += num_rules;
      rules_ += num_rules;
      changed_ = true;
      return;
    }
    img_.normalized_body(idx, &compare_);
    if (compare_ == bytes) {
      if (owner) std::string().swap(*owner);  // the image has it: free the caller's copy now
      return;
    }
    rules_ += num_rules;
    rules_ -= img_.chains()[idx].num_rules;
    edits_.replace.push_back({static_cast<uint32_t>(idx), take(), num_rules, {}, deferred, size});
    deferred_ += deferred;
    ++st_.chains_rewritten;
    st_.rules_written += num_rules;
    changed_ = true;
  }

  // The same for a streamed chain (its bytes are not kept). False when `name` was
  // streamed before.
  bool put_streamed(std::string_view name, std::string_view bytes, uint32_t num_rules) {
    if (const int idx = img_.find(name); idx >= 0) {
      if (streamed_.empty()) streamed_.assign(img_.chains().size(), false);
      if (streamed_[idx]) return false;
      streamed_[idx] = true;
    }
    // (A new chain streamed twice is two creates of one name: apply_edits refuses them.)
    put_chain(name, bytes, nullptr, num_rules, true);
    return true;
  }
  size_t deferred() const { return deferred_; }
  // Whether image chain `idx` was streamed (so it is wanted).
  bool streamed(size_t idx) const { return idx < streamed_.size() && streamed_[idx]; }

  void remove_chain(const std::string& name) {
    if (int idx = img_.find(name); idx >= 0) doomed_.insert(static_cast<uint32_t>(idx));
  }

  // Each desired jump exactly once in its built-in chain; other rules there that jump to
  // an owned chain go (`keep_owned` = false in cleanup: all of them go).
  Status sync_jumps(const std::vector<JumpRule>& jumps) {
    std::map<std::string, std::vector<const JumpRule*>> per_chain;
    for (const JumpRule& j : jumps) per_chain[j.chain];
    for (const JumpRule& j : jumps) per_chain[j.chain].push_back(&j);
    // Built-in chains without desired jumps may still hold stale ones.
    for (const ChainRef& c : img_.chains()) {
      if (c.hook >= 0) per_chain[c.name];
    }
    for (auto& [chain, list] : per_chain) {
      const int idx = img_.find(chain);
      if (idx < 0 || img_.chains()[idx].hook < 0) {
        if (list.empty()) continue;
        return Status::Error("iptables reconcile " + d_.table + ": table has no built-in chain " + chain, ENOENT);
      }
      sync_builtin(static_cast<uint32_t>(idx), list);
    }
    return Status::Ok();
  }

  // Checks the deletions: an owned chain that stays must not jump to a chain being
  // deleted (an error); a foreign one keeps it alive, flushed.
  Status finish() {
    if (doomed_.empty()) return Status::Ok();
    std::vector<bool> doomed(img_.chains().size(), false);
    for (uint32_t i : doomed_) doomed[i] = true;
    std::map<size_t, const std::string*> replaced;
    for (const ImageEdits::Replace& r : edits_.replace) replaced[r.chain] = &r.bytes;
    std::set<uint32_t> kept_alive;
    auto check = [&](const std::string& from, int target) -> Status {
      if (target < 0 || !doomed[target]) return Status::Ok();
      if (d_.owns(from)) {
        return Status::Error("iptables reconcile " + d_.table + ": chain " + from + " still jumps to " +
                                 img_.chains()[target].name + ", which is to be deleted",
                             EINVAL);
      }
      kept_alive.insert(static_cast<uint32_t>(target));
      return Status::Ok();
    };
    // The doomed chains' bodies: a jump is looked up only when it lands on one.
    std::vector<uint32_t> doomed_bodies;
    for (uint32_t i : doomed_) doomed_bodies.push_back(img_.chains()[i].body);
    std::sort(doomed_bodies.begin(), doomed_bodies.end());
    const char* base = img_.entries();
    for (size_t i = 0; i < img_.chains().size(); ++i) {
      if (doomed[i]) continue;
      const ChainRef& c = img_.chains()[i];
      if (auto it = replaced.find(i); it != replaced.end()) {
        Status s = Status::Ok();
        for_each_entry(*it->second, [&](size_t, const ipt_entry* e) {
          std::string_view l = jump_label(e);
          if (s && !l.empty()) s = check(c.name, img_.find(l));
        });
        if (!s) return s;
        continue;
      }
      for (uint32_t off = c.body; off < c.footer;) {
        const ipt_entry* e = detail::entry_at(base, off);
        if (e->next_offset < sizeof(ipt_entry)) break;  // not reached: reads check every entry
        const xt_entry_target* t = detail::target_of(e);
        if (detail::is_standard(t) && detail::verdict_of(t) >= 0) {
          const auto v = static_cast<uint32_t>(detail::verdict_of(t));
          if (v != off + e->next_offset && std::binary_search(doomed_bodies.begin(), doomed_bodies.end(), v)) {
            if (Status s = check(c.name, img_.chain_at_body(v)); !s) return s;
          }
        }
        off += e->next_offset;
      }
    }
    for (uint32_t i : kept_alive) {
      const ChainRef& c = img_.chains()[i];
      KLOG(WARNING, "iptables: owned chain still referenced by a foreign rule; flushing, not deleting")
          .kv("table", d_.table)
          .kv("chain", c.name);
      doomed_.erase(i);
      if (c.num_rules) {
        edits_.replace.push_back({i, std::string(), 0, {}});
        rules_ -= c.num_rules;
        changed_ = true;
      }
    }
    for (uint32_t i : doomed_) {
      edits_.remove.push_back(i);
      rules_ -= img_.chains()[i].num_rules;
    }
    if (!doomed_.empty()) {
      st_.chains_deleted += doomed_.size();
      changed_ = true;
    }
    doomed_.clear();
    return Status::Ok();
  }

 private:
  void sync_builtin(uint32_t idx, const std::vector<const JumpRule*>& jumps) {
    const ChainRef& c = img_.chains()[idx];
    std::string entries;
    img_.normalized_body(idx, &entries);
    std::vector<std::string> want(jumps.size());
    for (size_t i = 0; i < jumps.size(); ++i) want[i] = jumps[i]->rule.encode();
    std::vector<bool> found(jumps.size(), false);

    struct Piece {
      size_t off, len;
      int32_t old;
    };
    std::vector<Piece> keep;
    bool drop_any = false;
    int32_t idx_old = static_cast<int32_t>(c.first_index);
    for_each_entry(entries, [&](size_t off, const ipt_entry* e) {
      std::string_view bytes(entries.data() + off, e->next_offset);
      const int32_t old = idx_old++;
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
      out.append(entries, p.off, p.len);
      old_index.push_back(p.old);
      ++n;
    }
    for (size_t i = 0; i < want.size(); ++i) {
      if (!found[i] && jumps[i]->position == JumpRule::kAppend) add_new(i);
    }
    old_index.push_back(static_cast<int32_t>(c.first_index + c.num_rules));  // policy
    rules_ += n;
    rules_ -= c.num_rules;
    edits_.replace.push_back({idx, std::move(out), n, std::move(old_index)});
    changed_ = true;
  }

  const DesiredTable& d_;
  DesiredTable* movable_;  // the same table, when its encoded chains may be moved from
  const TableImage& img_;
  ReconcileStats& st_;
  const std::set<std::string>* only_;  // partial mode: the chains being synced
  size_t rules_;                       // in the table once the edits are applied
  ImageEdits edits_;
  size_t deferred_ = 0;                       // streamed chains edited by size, to fill
  std::vector<bool> streamed_;                // per image chain: streamed (empty: none)
  std::set<uint32_t> doomed_;
  std::string compare_;
  bool changed_ = false;
};

}  // namespace

Reconciler::Reconciler() : cache_(std::make_unique<Cache>()) {}
Reconciler::~Reconciler() = default;

void Reconciler::invalidate() { cache_->tables.clear(); }

bool Reconciler::kernel_matches(const std::string& table) const {
  auto it = cache_->tables.find(table);
  if (it == cache_->tables.end()) return false;
  uint32_t n = 0, size = 0;
  if (!detail::table_info(table, &n, &size)) return false;
  return n == it->second.num_entries() && size == it->second.size();
}

std::vector<std::string> Reconciler::jump_targets(const std::string& table, std::string_view chain) const {
  auto it = cache_->tables.find(table);
  if (it == cache_->tables.end()) return {};
  const int c = it->second.find(chain);
  return c < 0 ? std::vector<std::string>{} : it->second.jump_targets(static_cast<size_t>(c));
}

// Reads the kernel's table, or reuses the copy we left there when the kernel still
// holds a table of the same shape.
static Result<TableImage*> load(std::map<std::string, TableImage>& cache,
                                const std::string& table, bool trust_cache, bool* read) {
  auto it = cache.find(table);
  if (it != cache.end() && !trust_cache) {
    cache.erase(it);
    it = cache.end();
  }
  if (it != cache.end()) {
    uint32_t n = 0, size = 0;
    Status s = detail::table_info(table, &n, &size);
    if (!s) return s;
    if (n == it->second.num_entries() && size == it->second.size()) return &it->second;
    cache.erase(it);
  }
  *read = true;
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
  auto loaded = load(cache_->tables, desired.table, options.trust_cache, &st.read_kernel);
  if (!loaded) return loaded.status().Wrap("iptables reconcile");
  st.read_ms = ms_since(t0);

  // The cached image is edited in place (never in dry-run mode) and dropped if the edit
  // or the write fails.
  TableImage* img = *loaded;
  auto fail = [&](const Status& e) {
    cache_->tables.erase(desired.table);
    if (stats_out) *stats_out = st;
    return e;
  };

  auto t1 = Clock::now();
  Planner plan(desired, options.dry_run ? nullptr : movable, *img, st,
               options.only_chains ? &*options.only_chains : nullptr);
  if (options.only_chains && desired.streamed) {
    return Status::Error("iptables reconcile " + desired.table + ": streamed chains need a full reconcile", EINVAL);
  }
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
    if (s && desired.streamed) {
      Status bad = Status::Ok();
      s = desired.streamed([&](std::string_view name, std::string_view bytes, uint32_t rules) {
        if (!bad) return;
        const std::string n(name);
        bad = check_chain_name(desired, n);
        if (!bad) return;
        if (desired.wants(n) || !plan.put_streamed(name, bytes, rules)) {
          bad = Status::Error("iptables reconcile " + desired.table + ": chain " + n + " given twice", EINVAL);
        }
      });
      if (s) s = bad;
    }
    for (size_t i = 0; i < img->chains().size(); ++i) {
      const ChainRef& c = img->chains()[i];
      if (c.hook < 0 && desired.owns(c.name) && !desired.wants(c.name) && !plan.streamed(i)) {
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
    const uint32_t kernel_entries = img->num_entries();
    detail::EntryMap moved;
    size_t deferred = plan.deferred();
    std::vector<bool> unfilled;
    s = detail::apply_edits(*img, plan.take_edits(), &moved, &unfilled);
    if (!s) return fail(s.Wrap("iptables reconcile " + desired.table));
    if (deferred > 0) {
      // Second pass: the streamed chains that differ, written into their places.
      Status filled = Status::Ok();
      s = desired.streamed([&](std::string_view name, std::string_view bytes, uint32_t) {
        if (!filled) return;
        const int idx = img->find(name);
        if (idx < 0 || !unfilled[idx]) return;
        filled = detail::fill_chain(*img, static_cast<size_t>(idx), bytes);
        unfilled[idx] = false;
        --deferred;
      });
      if (s) s = filled;
      if (s && deferred > 0) {
        auto it = std::find(unfilled.begin(), unfilled.end(), true);
        const std::string name = it == unfilled.end() ? "?" : img->chains()[it - unfilled.begin()].name;
        s = Status::Error("iptables: streamed chain " + name + " was not produced again", EINVAL);
      }
      if (!s) return fail(s.Wrap("iptables reconcile " + desired.table));
    }
    s = detail::write_table(*img, kernel_entries, moved, &st.kernel_ms);
    st.write_ms = ms_since(t2);
    if (!s) return fail(s);
    st.committed = true;
  }
  st.table_rules = plan.planned_rules();
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
