// Makes one iptables table of the current netns match a desired set of owned chains.
//
//   DesiredTable nat{.table = "nat", .owned_prefixes = {"LB-"}};
//   nat.chains["LB-VIPS"] = {...};
//   nat.jumps.push_back({"PREROUTING", rule_jumping_to_LB_VIPS, JumpRule::kInsertFirst});
//   Status s = reconcile(nat, {}, &stats);
//
// What it does, in one atomic table replace (or none when nothing differs):
//  - owned chains in `chains` that are missing are created; those whose rules differ
//    are rewritten as a whole; equal ones are left alone (their counters survive);
//  - owned chains the kernel has but `chains` does not are flushed and deleted; a
//    jump rule pointing at them from a chain we do not own keeps them alive (flushed)
//    and is reported in the log;
//  - every jump rule exists exactly once in its built-in chain (first, or last);
//    stale owned jump rules (in a built-in chain, target an owned chain, not desired)
//    are removed (in partial mode: only those targeting the chains being synced);
//  - chains and rules it does not own (Docker's, firewalld's) are kept byte for byte,
//    including their counters.
// A chain is owned when its name is in `owned_chains` or starts with one of
// `owned_prefixes`. Desired chains must be owned.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "knode/dataplane/iptables/rule.h"
#include "knode/status.h"

namespace knode::iptables {

struct JumpRule {
  enum Position : uint8_t { kInsertFirst, kAppend };
  std::string chain;  // a built-in chain: PREROUTING, OUTPUT, POSTROUTING, FORWARD, INPUT
  Rule rule;          // usually Jump{"<an owned chain>"} with a comment
  Position position = kInsertFirst;
};

// A chain given as bytes: the Rule::encode_to of each of its rules, concatenated, every
// rule validated. Large tables are cheaper to build this way than as Rule values (a Rule
// takes ~2x the memory of its bytes).
struct EncodedChain {
  std::string bytes;
  uint32_t rules = 0;
  void append(const Rule& r) {
    r.encode_to(bytes);
    ++rules;
  }
};

// Chains produced on demand, for tables too large to hold encoded beside the table image.
// `each` calls `emit` for every such chain (name, encoded rules as EncodedChain holds them,
// rule count), in any order, and must emit the same chains with the same bytes each time
// it is called: a full reconcile calls it twice, first to compare each chain with the
// table and learn the sizes of those that differ, then to write those straight into the
// new table. Returning an error stops the reconcile; nothing is written.
using ChainEmitter = std::function<void(std::string_view name, std::string_view bytes, uint32_t rules)>;
using StreamedChains = std::function<Status(const ChainEmitter& emit)>;

struct DesiredTable {
  std::string table;  // "nat", "filter", "mangle", "raw"
  std::vector<std::string> owned_prefixes;  // e.g. {"LB-"}
  std::set<std::string> owned_chains;       // exact names, in addition to the prefixes
  std::map<std::string, std::vector<Rule>> chains;
  std::map<std::string, EncodedChain> encoded;  // more chains, as bytes (not also in `chains`)
  // More chains, produced on demand (full reconciles only; none also in `chains` or
  // `encoded`). The one table image stays the only copy: at 10,000 services the encoded
  // chains held at once were ~80 MB beside the ~110 MB image.
  StreamedChains streamed;
  std::vector<JumpRule> jumps;

  bool owns(const std::string& chain) const;
  bool wants(const std::string& chain) const { return chains.count(chain) || encoded.count(chain); }
};

struct ReconcileOptions {
  // Partial mode: compare and write only these chains (create, rewrite, or delete when
  // absent from DesiredTable::chains); every other chain stays as the kernel has it.
  // Jump rules are always ensured (added when missing, duplicates removed); a built-in
  // rule jumping to an owned chain that is not a desired jump is removed only when that
  // chain is in this set. For a change of one virtual service pass its chains plus any
  // chain whose rules mention them.
  std::optional<std::set<std::string>> only_chains;
  // Compute and report, but write nothing.
  bool dry_run = false;
  // Reuse this Reconciler's copy of the table instead of reading the kernel's (saves
  // ~0.6 s at 10,000 services) when the kernel's table still has the size and entry
  // count this Reconciler left. x_tables has no generation number, so a foreign change
  // of the same shape (e.g. Docker replacing a DNAT rule by one of equal size) is then
  // not seen and gets overwritten. Only for callers that accept that between periodic
  // syncs that read the kernel (leave it false for those).
  bool trust_cache = false;
  // How long to wait for /run/xtables.lock (held by iptables, Docker, firewalld).
  int lock_wait_ms = 5000;
};

struct ReconcileStats {
  size_t chains_created = 0;
  size_t chains_rewritten = 0;  // existed, rules differed
  size_t chains_deleted = 0;
  size_t rules_written = 0;     // rules in created or rewritten chains
  size_t jumps_added = 0;
  size_t jumps_removed = 0;
  size_t table_rules = 0;       // entries in the table after the sync
  bool committed = false;       // false when nothing differed (or dry_run)
  bool read_kernel = false;     // the kernel's table was read (with trust_cache: the copy was stale)
  double read_ms = 0;           // reading (or validating the cached copy of) the kernel table
  double diff_ms = 0;           // encoding and comparing
  double write_ms = 0;          // building the blob and the kernel's replace
  double kernel_ms = 0;         // of write_ms: the kernel's IPT_SO_SET_REPLACE (+ counters)
};

// Every reconcile holds /run/xtables.lock (as iptables does) from read to commit.
// Keeps the last table it read or wrote, so a sync with trust_cache skips re-reading the
// kernel when the kernel's table still has the shape it left (same size and entry
// count; the kernel's replace also fails with EAGAIN when the entry count moved).
// One Reconciler per process and table family; not thread-safe.
class Reconciler {
 public:
  Reconciler();
  ~Reconciler();
  Reconciler(const Reconciler&) = delete;
  Reconciler& operator=(const Reconciler&) = delete;

  Status reconcile(const DesiredTable& desired, const ReconcileOptions& options = {},
                   ReconcileStats* stats = nullptr);
  // The same, moving `desired.encoded` chains into this Reconciler's copy of the table
  // instead of copying them (`desired.encoded` is left unspecified).
  Status reconcile(DesiredTable&& desired, const ReconcileOptions& options = {},
                   ReconcileStats* stats = nullptr);

  // Removes every owned chain of `desired.table` (its `chains` are ignored) and every
  // rule in a built-in chain that jumps to an owned chain. Idempotent.
  Status cleanup(const DesiredTable& desired, ReconcileStats* stats = nullptr);

  // Drops the cached copy: the next reconcile reads the kernel.
  void invalidate();

  // True when this Reconciler holds a copy of `table` and the kernel's table still has
  // its shape (entry count and size: what trust_cache checks). Cheap: nothing is copied.
  bool kernel_matches(const std::string& table) const;

  // The user chains `chain` jumps or goes to in this Reconciler's copy of `table` (what
  // it last read or wrote, not the kernel now); empty when it holds no copy or no such
  // chain. What a caller that derives the rest of its chains' names needs to find the
  // others, instead of keeping them.
  std::vector<std::string> jump_targets(const std::string& table, std::string_view chain) const;

 private:
  struct Cache;
  Status reconcile_impl(const DesiredTable& desired, DesiredTable* movable, const ReconcileOptions& options,
                        ReconcileStats* stats);
  std::unique_ptr<Cache> cache_;
};

// One-shot forms with a fresh Reconciler (always read the kernel).
Status reconcile(const DesiredTable& desired, const ReconcileOptions& options = {},
                 ReconcileStats* stats = nullptr);
Status cleanup(const DesiredTable& desired, ReconcileStats* stats = nullptr);

}  // namespace knode::iptables
