#include "knode/dataplane/nftables/reconciler.h"

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>

#include <cerrno>

#include "nftables/codec.h"

namespace knode::nftables {
namespace {

double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

uint64_t spec_digest(const SetSpec& s) {
  Bytes b;
  codec::canonical(b, s);
  return codec::digest(b);
}

uint64_t def_digest(const Chain& c) {
  Bytes b;
  codec::canonical(b, c);
  return codec::digest(b);
}

uint64_t value_digest(const Element& e) {
  Bytes b;
  codec::canonical_value(b, e);
  return codec::digest(b);
}

// All of a set's elements as one digest, in any order: the sum of each element's.
uint64_t contents_digest(std::span<const Element> elements) {
  uint64_t sum = 0x5EEDull + elements.size();  // (not 0, the record's "nothing known")
  Bytes b;
  for (const auto& e : elements) {
    b.clear();
    b += e.key;
    b.append(reinterpret_cast<const char*>(&e.flags), sizeof e.flags);
    codec::canonical_value(b, e);
    sum += codec::digest(b) * 0x9E3779B97F4A7C15ull;
  }
  return sum;
}

bool described_whole(const SetSpec& s) { return (s.flags & NFT_SET_INTERVAL) && !s.is_anonymous(); }

uint32_t next_generation(uint32_t g) { return g + 1 == 0 ? 1 : g + 1; }

}  // namespace

Reconciler::Reconciler(Nftables& nft, ReconcilerOptions options) : nft_(nft), options_(std::move(options)) {}

void Reconciler::invalidate() {
  generation_.reset();
  table_exists_ = false;
  chains_.clear();
  sets_.clear();
  stale_.clear();
  owned_.clear();
}

void Reconciler::rebuild_owned() {
  owned_.clear();
  for (const auto& [name, st] : chains_) {
    if (st.owner != kNoOwner) owned_[st.owner].chains.push_back(name);
  }
  for (const auto& [name, st] : sets_) {
    if (st.owner != kNoOwner) owned_[st.owner].sets.push_back(name);
    for (const auto& [key, e] : st.elements) {
      if (e.owner != kNoOwner) owned_[e.owner].elements.emplace_back(name, key);
    }
  }
}

void Reconciler::compact_owners() {
  // (Chains and sets alone are a lower bound of the objects: most syncs stop there,
  // without counting every element.)
  size_t objects = chains_.size() + sets_.size();
  if (owner_ids_.size() < 4096 || owner_ids_.size() < 2 * objects) return;
  for (const auto& [name, st] : sets_) objects += st.elements.size();
  if (owner_ids_.size() < 2 * objects) return;
  std::vector<const std::string*> names(owner_ids_.size(), nullptr);
  for (const auto& [name, id] : owner_ids_) names[id] = &name;
  std::unordered_map<uint32_t, uint32_t> remap;
  auto renumber = [&](uint32_t& owner) {
    if (owner == kNoOwner) return;
    auto [it, inserted] = remap.try_emplace(owner, static_cast<uint32_t>(remap.size()));
    owner = it->second;
  };
  for (auto& [name, st] : chains_) renumber(st.owner);
  for (auto& [name, st] : sets_) {
    renumber(st.owner);
    for (auto& [key, e] : st.elements) renumber(e.owner);
  }
  std::unordered_map<std::string, uint32_t> ids;
  for (const auto& [old_id, new_id] : remap) ids.emplace(*names[old_id], new_id);
  owner_ids_ = std::move(ids);
  rebuild_owned();
}

uint32_t Reconciler::owner_id(std::string_view owner) {
  auto [it, inserted] = owner_ids_.try_emplace(std::string(owner), static_cast<uint32_t>(owner_ids_.size()));
  return it->second;
}

bool Reconciler::record_is_current() {
  if (!generation_) return false;
  auto gen = nft_.generation();
  return gen.ok() && *gen == *generation_;
}

uint64_t Reconciler::chain_digest(const Chain& chain, const std::vector<Rule>& rules) {
  Bytes& b = scratch_;
  b.clear();
  codec::canonical(b, chain);
  for (const auto& r : rules) {
    codec::canonical(b, r);
    // A rule depends on the sets it names: when one is recreated, the rule is too.
    for (const auto& e : r.exprs) {
      const std::string* name = nullptr;
      if (const auto* l = std::get_if<Lookup>(&e); l && !l->anonymous) name = &l->set;
      if (const auto* d = std::get_if<Dynset>(&e)) name = &d->set;
      if (!name) continue;
      auto it = sets_.find(*name);
      uint64_t d = it == sets_.end() ? 0 : it->second.digest;
      b.append(reinterpret_cast<const char*>(&d), sizeof d);
    }
  }
  return codec::digest(b);
}

namespace {

// Rebuilds the record from a listing, chain by chain.
class RecordVisitor final : public TableVisitor {
 public:
  using ChainDone = std::function<void(const Chain&, const std::vector<Rule>&)>;
  using SetDone = std::function<void(const SetSpec&, std::vector<Element>&&)>;
  RecordVisitor(SetDone set_done, ChainDone chain_done)
      : set_done_(std::move(set_done)), chain_done_(std::move(chain_done)) {}
  void set(const SetSpec& s, std::vector<Element>&& e) override { set_done_(s, std::move(e)); }
  void chain(const Chain& c) override {
    finish();
    current_ = c;
    rules_.clear();
  }
  void rule(const std::string&, Rule&& r) override { rules_.push_back(std::move(r)); }
  void finish() {
    if (current_) chain_done_(*current_, rules_);
    current_.reset();
  }

 private:
  SetDone set_done_;
  ChainDone chain_done_;
  std::optional<Chain> current_;
  std::vector<Rule> rules_;
};

}  // namespace

Status Reconciler::read_kernel(uint32_t generation, ReconcileStats* stats) {
  auto t0 = std::chrono::steady_clock::now();
  invalidate();
  RecordVisitor v(
      [&](const SetSpec& s, std::vector<Element>&& elements) {
        SetState& st = sets_[s.name];
        st.digest = spec_digest(s);
        if (described_whole(s)) {
          st.contents = contents_digest(elements);
          return;
        }
        for (const auto& e : elements) st.elements[e.key] = ElementState{value_digest(e), 0};
      },
      [&](const Chain& c, const std::vector<Rule>& rules) {
        ChainState& st = chains_[c.name];
        st.def = def_digest(c);
        st.digest = chain_digest(c, rules);
        st.rules = static_cast<uint32_t>(rules.size());
        st.base = c.base.has_value();
      });
  auto found = nft_.list_table(options_.family, options_.table, v);
  if (!found.ok()) return found.status();
  v.finish();
  table_exists_ = *found;
  generation_ = generation;
  stats->read_kernel = true;
  stats->read_ms = ms_since(t0);
  return Status::Ok();
}

void Reconciler::start(bool full) {
  tx_ = nft_.begin(options_.family, options_.table, batch_generation_);
  full_ = full;
  ++epoch_;
  adds_.clear();
  deletes_.clear();
  ahead_ = false;
  ahead_tx_.reset();
  ahead_owner_ = kNoOwner;
  ahead_elements_ = 0;
  held_base_.clear();
  ahead_error_ = Status::Ok();
}

Transaction& Reconciler::out(uint32_t owner) {
  if (!ahead_) return *tx_;
  if (ahead_tx_ && owner != ahead_owner_ &&
      ahead_tx_->size() + ahead_elements_ / 16 >= options_.first_sync_batch_ops) {
    send_ahead();
  }
  if (!ahead_tx_) ahead_tx_ = nft_.begin(options_.family, options_.table, batch_generation_);
  ahead_owner_ = owner;
  return *ahead_tx_;
}

void Reconciler::send_ahead() {
  if (!ahead_tx_) return;
  // After a refusal nothing more is sent (commit() reports it): the rest is dropped.
  size_t elements = 0;
  if (ahead_error_.ok()) {
    ahead_tx_->phase(kFill);
    for (auto& [set, e] : adds_) {
      ahead_tx_->add_elements(set, e);
      elements += e.size();
    }
  }
  adds_.clear();
  ahead_elements_ = 0;
  if (ahead_error_.ok() && ahead_tx_->size() > 0) {
    stats_.operations += ahead_tx_->size();
    auto t0 = std::chrono::steady_clock::now();
    Status s = ahead_tx_->commit();
    stats_.commit_ms += ms_since(t0);
    ++stats_.batches;
    if (!s.ok()) {
      ahead_error_ = s;
    } else {
      stats_.elements_added += elements;
      if (batch_generation_) batch_generation_ = next_generation(*batch_generation_);  // the next batch expects it
    }
  }
  ahead_tx_.reset();
}

Status Reconciler::begin_full() {
  stats_ = ReconcileStats{};
  stats_.full = true;
  auto gen = nft_.generation();
  if (!gen.ok()) return gen.status();
  if (!generation_ || *generation_ != *gen) {
    if (Status s = read_kernel(*gen, &stats_); !s.ok()) {
      invalidate();
      return s.Wrap("read table " + std::string(family_name(options_.family)) + " " + options_.table);
    }
  }
  batch_generation_ = *gen;
  scope_.clear();
  start(true);
  ahead_ = !table_exists_ && options_.first_sync_batch_ops > 0;
  return Status::Ok();
}

bool Reconciler::begin_partial(const std::set<std::string>& owners) {
  if (!generation_) return false;
  stats_ = ReconcileStats{};
  batch_generation_ = generation_;
  scope_.clear();
  for (const auto& o : owners) scope_.insert(owner_id(o));
  start(false);
  return true;
}

void Reconciler::table(const Table& table) {
  if (table_exists_) return;
  Transaction& tx = out(kNoOwner);
  tx.phase(kCreate);
  tx.add_table(table);
  table_exists_ = true;
}

void Reconciler::set(const SetSpec& spec, bool manage_elements, std::string_view owner) {
  bool created = false;
  put_set(spec, manage_elements, owner, &created);
}

void Reconciler::set_with_elements(const SetSpec& spec, std::span<const Element> elements, std::string_view owner) {
  bool created = false;
  SetState& st = put_set(spec, /*manage_elements=*/false, owner, &created);
  const uint64_t c = contents_digest(elements);
  if (created || st.contents != c) {
    Transaction& tx = out(st.owner);
    if (!created) {
      tx.phase(kFlush);
      tx.flush_set(spec.name);
      ++stats_.sets_flushed;
    }
    tx.phase(kFill);
    tx.add_elements(spec.name, elements);
    stats_.elements_added += elements.size();
    if (ahead_) ahead_elements_ += elements.size();  // (they count toward the batch's size)
  }
  st.contents = c;
}

Reconciler::SetState& Reconciler::put_set(const SetSpec& spec, bool manage_elements, std::string_view owner,
                                          bool* created_out) {
  const uint32_t oid = owner_id(owner);
  if (!full_) scope_.insert(oid);
  const uint64_t d = spec_digest(spec);
  auto [it, inserted] = sets_.try_emplace(spec.name);
  SetState& st = it->second;
  bool& created = *created_out;
  created = inserted;
  Transaction& tx = out(oid);
  if (inserted) {
    tx.phase(kCreate);
    tx.add_set(spec);
    ++stats_.sets_added;
  } else if (st.digest != d) {
    created = true;
    st.contents = 0;
    // Replaced: the chains using it are flushed first (their digests include this one).
    tx.phase(kReplace);
    tx.delete_set(spec.name);
    tx.phase(kCreate);
    tx.add_set(spec);
    st.elements.clear();
    ++stats_.sets_added;
    ++stats_.sets_deleted;
  }
  if (inserted || st.owner != oid) owned_[oid].sets.push_back(spec.name);
  st.digest = d;
  st.manage = manage_elements;
  st.epoch = epoch_;
  st.owner = oid;
  return st;
}

void Reconciler::chain(const Chain& chain, const std::vector<Rule>& rules, std::string_view owner) {
  const uint32_t oid = owner_id(owner);
  if (!full_) scope_.insert(oid);
  ++stats_.chains;
  stats_.rules += rules.size();
  const uint64_t def = def_digest(chain);
  const uint64_t d = chain_digest(chain, rules);
  // A chain flushed but not yet deleted and now wanted again: back in its owner's index
  // (the partial sync that flushed it took it out).
  const bool was_stale = stale_.erase(chain.name) > 0;
  auto [it, inserted] = chains_.try_emplace(chain.name);
  ChainState& st = it->second;
  // A first sync creates the base chains empty and holds their rules back for its last
  // batch (the class comment); one whose policy is not accept would drop traffic while
  // empty, so it is held back whole.
  const bool held = ahead_ && chain.base.has_value();
  const bool held_whole = held && chain.base->policy != NF_ACCEPT;
  if (held) held_base_.push_back({chain, rules, held_whole});
  Transaction& tx = out(oid);
  auto fill = [&] {
    if (held) return;
    tx.phase(kFill);
    for (const auto& r : rules) tx.add_rule(chain.name, r);
  };
  if (inserted) {
    if (!held_whole) {
      tx.phase(kCreate);
      tx.add_chain(chain);
    }
    fill();
    ++stats_.chains_added;
  } else if (st.digest != d) {
    if (st.def != def && (chain.base || st.base)) {
      // A base chain's hook or priority cannot be changed in place.
      tx.phase(kReplace);
      tx.delete_chain(chain.name);
      tx.phase(kCreate);
      tx.add_chain(chain);
    } else {
      if (st.rules > 0) {
        tx.phase(kFlush);
        tx.flush_chain(chain.name);
      }
      if (st.def != def) {
        tx.phase(kCreate);
        tx.add_chain(chain);
      }
    }
    fill();
    ++stats_.chains_rewritten;
  }
  st.def = def;
  st.digest = d;
  st.rules = static_cast<uint32_t>(rules.size());
  st.base = chain.base.has_value();
  st.epoch = epoch_;
  if (inserted || was_stale || st.owner != oid) owned_[oid].chains.push_back(chain.name);
  st.owner = oid;
}

void Reconciler::element(std::string_view set, const Element& element, std::string_view owner) {
  const uint32_t oid = owner_id(owner);
  if (!full_) scope_.insert(oid);
  auto sit = sets_.find(std::string(set));
  if (sit == sets_.end()) return;  // not described: a caller's mistake the kernel would refuse too
  const uint64_t d = value_digest(element);
  auto [it, inserted] = sit->second.elements.try_emplace(element.key);
  Transaction& tx = out(oid);  // (a first sync: where the owner boundary is seen)
  if (inserted) {
    adds_[sit->first].push_back(element);
    if (ahead_) ++ahead_elements_;
  } else if (it->second.digest != d) {
    // A new value for the key: out with the old first, in the same batch.
    Element old;
    old.key = element.key;
    old.flags = element.flags;
    tx.phase(kFill);
    tx.delete_elements(sit->first, std::span<const Element>(&old, 1));
    adds_[sit->first].push_back(element);
    if (ahead_) ++ahead_elements_;
  }
  if (inserted || it->second.owner != oid) owned_[oid].elements.emplace_back(sit->first, element.key);
  it->second = ElementState{d, epoch_, oid};
}

void Reconciler::mark_stale(const std::string& name, ChainState& st) {
  if (stale_.count(name)) return;
  if (st.rules > 0) {
    tx_->phase(kRemove);
    tx_->flush_chain(name);
  }
  st.rules = 0;
  st.digest = 0;
  stale_[name] = options_.now();
  ++stats_.chains_flushed;
}

void Reconciler::remove_element(const std::string& set, const Bytes& key) {
  auto sit = sets_.find(set);
  if (sit == sets_.end()) return;
  auto it = sit->second.elements.find(key);
  if (it == sit->second.elements.end() || it->second.epoch == epoch_) return;
  Element e;
  e.key = key;
  deletes_[set].push_back(std::move(e));
  sit->second.elements.erase(it);
}

Status Reconciler::commit(ReconcileStats* stats) {
  const std::string where = std::string(family_name(options_.family)) + " " + options_.table;
  if (ahead_) {
    // A first sync: the rest of what goes ahead, then a last batch (expecting the
    // generation the batches ahead left) with the base chains. When nothing went ahead
    // yet (a small table), all of it is the one batch.
    if (stats_.batches == 0) {
      if (ahead_tx_) tx_ = std::move(ahead_tx_);
      ahead_elements_ = 0;
    } else {
      send_ahead();
    }
    if (!ahead_error_.ok()) {
      Status s = ahead_error_;
      tx_.reset();
      adds_.clear();
      deletes_.clear();
      held_base_.clear();
      ahead_ = false;
      if (stats) *stats = stats_;
      invalidate();
      return s.Wrap("sync nftables table " + where);
    }
    if (stats_.batches > 0) tx_ = nft_.begin(options_.family, options_.table, batch_generation_);
    for (const auto& h : held_base_) {
      if (h.create) {
        tx_->phase(kCreate);
        tx_->add_chain(h.chain);
      }
      tx_->phase(kFill);
      for (const auto& r : h.rules) tx_->add_rule(h.chain.name, r);
    }
    held_base_.clear();
    ahead_ = false;
  }
  // What was not described goes (in a partial sync: what the described owners held
  // before): base chains at once, other chains flushed now and deleted later, sets
  // deleted, elements deleted.
  auto gone = [&](uint32_t epoch, uint32_t owner) {
    return epoch != epoch_ && (full_ || scope_.count(owner) > 0);
  };
  std::vector<std::string> base_gone, sets_gone, stale_now;
  auto chain_gone = [&](const std::string& name, const ChainState& st) {
    if (st.base) {
      base_gone.push_back(name);
    } else {
      stale_now.push_back(name);
    }
  };
  if (full_) {
    for (auto& [name, st] : chains_) {
      if (gone(st.epoch, st.owner)) chain_gone(name, st);
    }
    for (auto& [name, st] : sets_) {
      if (gone(st.epoch, st.owner)) {
        sets_gone.push_back(name);
        continue;
      }
      if (!st.manage) continue;
      std::vector<Bytes> keys;
      for (const auto& [key, e] : st.elements) {
        if (gone(e.epoch, e.owner)) keys.push_back(key);
      }
      for (const auto& k : keys) remove_element(name, k);
    }
  } else {
    // Only the described owners' objects can go: look at those, through the index, and
    // keep in it what they still hold.
    for (uint32_t oid : scope_) {
      auto oit = owned_.find(oid);
      if (oit == owned_.end()) continue;
      Owned held = std::move(oit->second);
      Owned kept;
      std::set<std::string_view> seen;
      for (auto& name : held.chains) {
        auto it = chains_.find(name);
        if (it == chains_.end() || it->second.owner != oid || !seen.insert(it->first).second) continue;
        if (gone(it->second.epoch, oid)) {
          chain_gone(it->first, it->second);
        } else {
          kept.chains.push_back(std::move(name));
        }
      }
      seen.clear();
      for (auto& name : held.sets) {
        auto it = sets_.find(name);
        if (it == sets_.end() || it->second.owner != oid || !seen.insert(it->first).second) continue;
        if (gone(it->second.epoch, oid)) {
          sets_gone.push_back(it->first);
        } else {
          kept.sets.push_back(std::move(name));
        }
      }
      // (Copies: removing an element frees its key.)
      std::set<std::pair<std::string, Bytes>> seen_elements;
      for (auto& [set, key] : held.elements) {
        auto sit = sets_.find(set);
        if (sit == sets_.end() || !sit->second.manage) continue;
        auto it = sit->second.elements.find(key);
        if (it == sit->second.elements.end() || it->second.owner != oid) continue;
        if (!seen_elements.insert({set, key}).second) continue;
        if (gone(it->second.epoch, oid)) {
          remove_element(sit->first, key);
        } else {
          kept.elements.emplace_back(std::move(set), std::move(key));
        }
      }
      if (kept.chains.empty() && kept.sets.empty() && kept.elements.empty()) {
        owned_.erase(oid);
      } else {
        owned_[oid] = std::move(kept);
      }
    }
  }
  for (const auto& name : stale_now) mark_stale(name, chains_[name]);

  tx_->phase(kFill);
  for (auto& [set, elements] : adds_) {
    tx_->add_elements(set, elements);
    stats_.elements_added += elements.size();
  }
  tx_->phase(kRemove);
  for (auto& [set, elements] : deletes_) {
    tx_->delete_elements(set, elements);
    stats_.elements_deleted += elements.size();
  }
  for (const auto& name : base_gone) {
    tx_->delete_chain(name);
    chains_.erase(name);
    ++stats_.chains_deleted;
  }
  // Chains flushed at least the delay ago: nothing points at them any more.
  const auto now = options_.now();
  for (auto it = stale_.begin(); it != stale_.end();) {
    if (now - it->second < options_.stale_chain_delay) {
      ++it;
      continue;
    }
    tx_->delete_chain(it->first);
    chains_.erase(it->first);
    ++stats_.chains_deleted;
    it = stale_.erase(it);
  }
  for (const auto& name : sets_gone) {
    tx_->delete_set(name);
    sets_.erase(name);
    ++stats_.sets_deleted;
  }

  const size_t last_ops = tx_->size();
  const bool sent_ahead = stats_.batches > 0;  // (batches ahead advanced batch_generation_)
  stats_.operations += last_ops;
  Status s;
  if (last_ops > 0) {
    auto t0 = std::chrono::steady_clock::now();
    s = tx_->commit();
    stats_.commit_ms += ms_since(t0);
    ++stats_.batches;
  }
  tx_.reset();
  adds_.clear();
  deletes_.clear();
  if (stats) *stats = stats_;
  if (!s.ok()) {
    invalidate();
    return s.Wrap("sync nftables table " + where);
  }
  if (batch_generation_) {
    if (last_ops > 0) {
      generation_ = next_generation(*batch_generation_);
    } else if (sent_ahead) {
      generation_ = batch_generation_;
    }
  }
  if (full_) rebuild_owned();
  compact_owners();
  return Status::Ok();
}

Status Reconciler::remove_table() {
  auto tx = nft_.begin(options_.family, options_.table);
  tx->delete_table();
  Status s = tx->commit();
  invalidate();
  if (!s.ok() && s.error_number() != ENOENT) return s;
  return Status::Ok();
}

}  // namespace knode::nftables
