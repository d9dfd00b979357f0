// Keeps one nf_tables table equal to a described state, changing only what differs, in
// one transaction per sync (but for a big first sync, below).
//
// A sync describes the desired objects as a stream (sets, chains with their rules,
// elements of the sets it manages), each tagged with an owner: a name grouping objects
// that come and go together. A full sync describes everything: what the table holds and
// was not described goes away. A partial sync describes only some owners: their objects
// are replaced wholesale, everything else is left untouched. The reconciler compares
// against its record of the table (a 64-bit digest per chain and per element), which it
// rebuilds by reading the kernel whenever the ruleset generation says someone else
// changed something, so a full sync also repairs hand edits.
//
// The first sync into a table that does not exist yet is the exception to one batch per
// sync, to bound its memory (at 10,000 services its one batch was ~25 MB): when it holds
// more than `first_sync_batch_ops` operations, everything but the base chains' rules goes
// ahead in batches of about that many (an element counting 1/16), each cut only where the
// owner changes, unreachable because the base chains are empty (one whose policy is not
// accept is held back whole); their rules, which make all of it reachable at once, come
// last, in a batch of their own. Traffic sees no rules, then all of them. A failure or a
// crash in between leaves only unreachable objects, which the next full sync reads back
// and completes (in one batch: the table exists by then). So in such a sync a rule or an
// element may name only objects of its own owner or of owners described before it.
//
// Chains that are no longer wanted are flushed at once and deleted by a sync at least
// `stale_chain_delay` later (kernels before 6.2 release a map element's reference to a
// chain asynchronously, so deleting in the same batch can fail).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <memory>

#include "knode/dataplane/nftables.h"

namespace knode::nftables {

struct ReconcileStats {
  bool full = false;
  bool read_kernel = false;  // the table was listed because the generation moved
  size_t chains = 0;         // chains described
  size_t rules = 0;          // rules in the described chains
  size_t chains_added = 0, chains_rewritten = 0, chains_flushed = 0, chains_deleted = 0;
  size_t elements_added = 0, elements_deleted = 0, sets_added = 0, sets_deleted = 0;
  size_t sets_flushed = 0;  // sets described whole, refilled
  size_t operations = 0;  // in the batch(es); 0: nothing was sent
  size_t batches = 0;     // batches sent: 1, or more for a first sync (above)
  double read_ms = 0, commit_ms = 0;
};

struct ReconcilerOptions {
  Family family = Family::kIPv4;
  std::string table;
  std::chrono::milliseconds stale_chain_delay{1000};
  // The first sync into a missing table: operations per batch ahead of the base chains
  // (0: one batch). About 2 MB of netlink messages with the proxy's tables.
  size_t first_sync_batch_ops = 8192;
  std::function<std::chrono::steady_clock::time_point()> now = [] { return std::chrono::steady_clock::now(); };
};

// Where a description of a table goes: a Reconciler (to the kernel) or a ContentSink
// (to values, for tests, printing and `nft -f` scripts).
class TableSink {
 public:
  virtual ~TableSink() = default;
  virtual void table(const Table& table) = 0;
  // `manage_elements`: elements come through element(); otherwise the datapath fills the
  // set (dynamic sets) and its elements are never touched.
  virtual void set(const SetSpec& spec, bool manage_elements, std::string_view owner) = 0;
  virtual void chain(const Chain& chain, const std::vector<Rule>& rules, std::string_view owner) = 0;
  virtual void element(std::string_view set, const Element& element, std::string_view owner) = 0;
  // A set described whole: its spec and every element at once. When any element differs
  // from what the table holds, the set is flushed and refilled in the same batch; element()
  // is not used with it. For named interval sets, which the kernel keeps as ordered start
  // and end elements and refuses to change in most orders of single additions and
  // deletions (a start right after a start is an overlap). A named interval set must be
  // described this way: a reconciler reading the table back records such sets whole.
  virtual void set_with_elements(const SetSpec& spec, std::span<const Element> elements, std::string_view owner) = 0;
};

// Collects a description as a TableContent, in the order the kernel would list it.
class ContentSink final : public TableSink {
 public:
  void table(const Table& table) override { content.table = table; }
  void set(const SetSpec& spec, bool, std::string_view) override { content.sets.push_back(SetContent{spec, {}}); }
  void chain(const Chain& chain, const std::vector<Rule>& rules, std::string_view) override {
    content.chains.push_back(ChainContent{chain, rules});
  }
  void set_with_elements(const SetSpec& spec, std::span<const Element> elements, std::string_view) override {
    content.sets.push_back(SetContent{spec, {elements.begin(), elements.end()}});
  }
  void element(std::string_view set, const Element& element, std::string_view) override {
    for (auto& s : content.sets) {
      if (s.spec.name == set) {
        s.elements.push_back(element);
        return;
      }
    }
  }
  TableContent content;
};

class Reconciler final : public TableSink {
 public:
  Reconciler(Nftables& nft, ReconcilerOptions options);

  // Starts a full sync: reads the table first unless the record is known to be current.
  Status begin_full();
  // Starts a partial sync of `owners`; false when there is no current record (a full sync
  // is needed first).
  bool begin_partial(const std::set<std::string>& owners);

  // The desired objects of this sync. Sets before the chains that use them.
  void table(const Table& table) override;
  void set(const SetSpec& spec, bool manage_elements, std::string_view owner) override;
  void chain(const Chain& chain, const std::vector<Rule>& rules, std::string_view owner) override;
  void element(std::string_view set, const Element& element, std::string_view owner) override;
  void set_with_elements(const SetSpec& spec, std::span<const Element> elements, std::string_view owner) override;

  // Sends the differences as one batch (a big first sync: the last of its batches). On failure the record is dropped, so the next
  // sync must be full (and reads the kernel). ERESTART: someone changed the ruleset since
  // it was read; a full sync repairs that.
  Status commit(ReconcileStats* stats = nullptr);

  // Deletes the table (fine when it does not exist) and forgets the record.
  Status remove_table();
  // Forgets the record: the next full sync reads the kernel.
  void invalidate();
  bool has_record() const { return generation_.has_value(); }
  // True when the record matches the kernel: nobody committed anything since our last
  // sync (the ruleset generation has not moved), so describing unchanged owners again
  // would find nothing to do.
  bool record_is_current();
  // Chains flushed and waiting to be deleted.
  size_t stale_chains() const { return stale_.size(); }
  // Owner names it keeps an id for (bounded by about twice the objects it records).
  size_t owners() const { return owner_ids_.size(); }

 private:
  // Owners are interned: each record entry names its owner by number.
  static constexpr uint32_t kNoOwner = ~uint32_t{0};
  struct ChainState {
    uint64_t def = 0;     // the chain's own definition (base hook, comment)
    uint64_t digest = 0;  // definition and rules
    uint32_t rules = 0;
    bool base = false;
    uint32_t epoch = 0;  // the sync that last described it
    uint32_t owner = kNoOwner;
  };
  struct ElementState {
    uint64_t digest = 0;
    uint32_t epoch = 0;
    uint32_t owner = kNoOwner;
  };
  struct SetState {
    uint64_t digest = 0;
    uint64_t contents = 0;  // sets described whole: a digest of all their elements
    bool manage = true;
    uint32_t epoch = 0;
    uint32_t owner = kNoOwner;
    std::unordered_map<Bytes, ElementState> elements;
  };
  // Phases of a batch, sent in this order (each in the order of its operations).
  enum Phase : uint8_t { kFlush = 0, kReplace, kCreate, kFill, kRemove };

  Status read_kernel(uint32_t generation, ReconcileStats* stats);
  void start(bool full);
  uint64_t chain_digest(const Chain& chain, const std::vector<Rule>& rules);
  // set(): its record; *created: the set is created (or recreated) by this batch.
  SetState& put_set(const SetSpec& spec, bool manage_elements, std::string_view owner, bool* created);
  void mark_stale(const std::string& name, ChainState& st);
  void remove_element(const std::string& set, const Bytes& key);

  Nftables& nft_;
  ReconcilerOptions options_;
  std::optional<uint32_t> generation_;  // the kernel's generation the record matches
  bool table_exists_ = false;
  std::unordered_map<std::string, ChainState> chains_;
  std::map<std::string, SetState> sets_;
  std::unordered_map<std::string, uint32_t> owner_ids_;
  uint32_t owner_id(std::string_view owner);
  // What each owner holds, so that a partial sync looks only at the described owners'
  // objects (not the whole record). Entries may name objects since removed or given to
  // another owner: they are checked against the record when used.
  struct Owned {
    std::vector<std::string> chains, sets;
    std::vector<std::pair<std::string, Bytes>> elements;  // (set, key)
  };
  std::unordered_map<uint32_t, Owned> owned_;
  void rebuild_owned();
  // Owner names come and go (a hairpin owner per endpoint): drop the ids no object uses.
  void compact_owners();
  std::map<std::string, std::chrono::steady_clock::time_point> stale_;  // flushed, waiting to be deleted

  // The sync in progress.
  std::unique_ptr<Transaction> tx_;
  // A first sync into a missing table (above): the batch ahead, its owner, the base
  // chains whose rules wait for the last batch, and the first refusal of a batch ahead.
  bool ahead_ = false;
  std::unique_ptr<Transaction> ahead_tx_;
  uint32_t ahead_owner_ = kNoOwner;
  size_t ahead_elements_ = 0;  // element additions waiting for the batch ahead
  struct HeldBase {
    Chain chain;
    std::vector<Rule> rules;
    bool create = false;  // created in the last batch too (a policy other than accept)
  };
  std::vector<HeldBase> held_base_;
  Status ahead_error_;
  // Where an owner's operations go: tx_, or in a first sync the batch ahead (sent first
  // when it is full and the owner changes).
  Transaction& out(uint32_t owner);
  void send_ahead();
  bool full_ = false;
  uint32_t epoch_ = 0;
  std::optional<uint32_t> batch_generation_;
  std::set<uint32_t> scope_;  // partial: the owners described
  Bytes scratch_;             // canonical bytes, reused
  std::map<std::string, std::vector<Element>> adds_, deletes_;  // per set, sent at commit
  ReconcileStats stats_;
};

}  // namespace knode::nftables
