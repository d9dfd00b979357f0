// Internal to dataplane/iptables: a whole x_tables table kept in the kernel's own format,
// read with IPT_SO_GET_INFO/IPT_SO_GET_ENTRIES, edited in place and written with
// IPT_SO_SET_REPLACE (+ IPT_SO_SET_ADD_COUNTERS to carry counters over), without libiptc.
//
// Why not libiptc: at load-balancer scale (10,000 virtual services: 110k chains, 320k
// rules) libiptc spends seconds in user space (iptables-legacy-restore: 6.6 s on an empty
// table, 12-15 s over a full one; see shared/BASELINES.md and bench/), mostly in its
// chain-list handling and in rebuilding every rule object on each commit.
//
// Why one blob: the kernel takes a table only as one contiguous buffer, ~100 MB at that
// scale. The image *is* that buffer (plus an index of its chains), so a sync holds one copy
// of the table, not a copy to compare against and another to hand the kernel. An edit
// moves the unchanged runs of chains in place (memmove), renumbers the jumps in them, and
// writes the new chains into the gaps.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <deque>
#include <unordered_map>
#include <vector>

#include "knode/status.h"

struct ipt_getinfo;  // <linux/netfilter_ipv4/ip_tables.h>, which wants <netinet/in.h> first

namespace knode::iptables::detail {

struct ImageEdits;
struct EntryMap;

// One chain of a TableImage: where it sits in the blob.
struct ChainRef {
  std::string name;
  int hook = -1;             // NF_INET_* of a built-in chain, -1 for a user chain
  uint32_t head = 0;         // user chain: its ERROR (name) entry; built-in: == body
  uint32_t body = 0;         // its first rule: what jumps to it point at
  uint32_t footer = 0;       // its policy (built-in) or RETURN entry
  uint32_t first_index = 0;  // entry number of the first rule
  uint32_t num_rules = 0;
};

class TableImage {
 public:
  TableImage() = default;
  TableImage(TableImage&&) = default;
  TableImage& operator=(TableImage&&) = default;

  const std::string& name() const { return name_; }
  uint32_t valid_hooks() const { return valid_hooks_; }
  uint32_t num_entries() const { return num_entries_; }  // of the table in the blob
  uint32_t size() const { return size_; }
  const std::vector<ChainRef>& chains() const { return chains_; }
  size_t num_rules() const;

  // Index of the chain called `name`, or -1.
  int find(std::string_view name) const;
  // Index of the chain whose first rule is at `offset`, or -1.
  int chain_at_body(uint32_t offset) const;
  // The verdict of a built-in chain's policy entry.
  int policy(size_t chain) const;
  // The chain's rules in the normalized form of entry.h (counters zeroed, names cleaned,
  // a standard target naming its destination), comparable with Rule::encode().
  void normalized_body(size_t chain, std::string* out) const;
  // The user chains the rules of `chain` jump or go to, each once, in table order.
  std::vector<std::string> jump_targets(size_t chain) const;
  // The entries, in the kernel's format (jumps as offsets).
  const char* entries() const { return buf_.get() + kEntriesAt; }

 private:
  friend Result<TableImage> read_table(const std::string& table);

// What read_table does with the kernel's answer, without the socket: `info` as
// IPT_SO_GET_INFO gives it (the table's name, hooks, entry count; `info.size` must equal
// `size`) and the `size` bytes of entries of IPT_SO_GET_ENTRIES, copied into a new image.
// Every entry is checked (in the buffer, 8-byte aligned, matches and target inside it)
// before any of its fields is used, so any bytes give an image or an error.
Result<TableImage> decode_table(const ipt_getinfo& info, const void* entries, size_t size);
  friend Result<TableImage> decode_table(const ipt_getinfo& info, const void* entries, size_t size);
  friend Status apply_edits(TableImage& img, ImageEdits&& edits, EntryMap* moved,
                            std::vector<bool>* unfilled);
  friend Status fill_chain(TableImage& img, size_t chain, std::string_view bytes);
  friend Status write_table(TableImage& img, uint32_t old_num_entries,
                            const EntryMap& moved, double* kernel_ms);
  struct Free {
    void operator()(char* p) const { std::free(p); }
  };
  static const size_t kEntriesAt;  // offsetof(ipt_replace, entries)
  char* mutable_entries() { return buf_.get() + kEntriesAt; }
  Status reserve(size_t entries_bytes);
  // Checks and indexes the `info.size` bytes of entries already in the buffer.
  Status decode(const ipt_getinfo& info);
  void index_names();

  std::string name_;
  uint32_t valid_hooks_ = 0;
  uint32_t num_entries_ = 0;
  uint32_t size_ = 0;
  std::unique_ptr<char, Free> buf_;  // [ipt_replace header][entries]
  size_t capacity_ = 0;              // bytes of entries buf_ can hold
  std::vector<ChainRef> chains_;     // in blob order
  // Chain indexes by name: open addressing over a power-of-two table (kNoChain = empty),
  // rebuilt after every edit without allocating a node per chain.
  static constexpr uint32_t kNoChain = UINT32_MAX;
  std::vector<uint32_t> by_name_;
};

// Changes to a TableImage, applied in one pass.
struct ImageEdits {
  struct Replace {
    uint32_t chain;  // index in the image
    std::string bytes;
    uint32_t num_rules = 0;
    // Per new rule, then for the footer: the entry number it had (its counters carry
    // over), or -1. Empty: all new.
    std::vector<int32_t> old_index;
    // Deferred: `bytes` is empty and the body, this many bytes, is written later with
    // fill_chain (a streamed chain, produced again once the layout is done).
    bool deferred = false;
    uint32_t size = 0;
  };
  struct Create {
    std::string name;
    std::unique_ptr<std::string> bytes;  // none when deferred (a first sync has 100,000s)
    uint32_t num_rules = 0;
    bool deferred = false;  // as for Replace
    uint32_t size = 0;
  };
  std::vector<Replace> replace;  // at most one per chain
  std::deque<Create> create;     // names not in the image (a deque: no doubling, no copy as it grows)
  std::vector<uint32_t> remove;  // chain indexes
};

// Entry count and blob size of the kernel's table.
Status table_info(const std::string& table, uint32_t* num_entries, uint32_t* size);

Result<TableImage> read_table(const std::string& table);

// What read_table does with the kernel's answer, without the socket: `info` as
// IPT_SO_GET_INFO gives it (the table's name, hooks, entry count; `info.size` must equal
// `size`) and the `size` bytes of entries of IPT_SO_GET_ENTRIES, copied into a new image.
// Every entry is checked (in the buffer, 8-byte aligned, matches and target inside it)
// before any of its fields is used, so any bytes give an image or an error.
Result<TableImage> decode_table(const ipt_getinfo& info, const void* entries, size_t size);

// Which entries of an edited table were which before it (their counters carry over), as
// runs of consecutive entries ascending in the new table: kept chains move as a few
// runs, so this is kilobytes where an entry-by-entry map of 540,000 entries was 2 MB.
struct EntryMap {
  struct Run {
    uint32_t to, from, count;  // entries to .. to+count-1 were from .. from+count-1
  };
  std::vector<Run> runs;
  uint32_t entries = 0;  // in the new table
  // Appends a run (`to` past the last one's end), merged into the last when it continues it.
  void add(uint32_t to, uint32_t from, uint32_t count);
  // The old number of new entry `to`, or -1 (a new entry).
  int64_t from_of(uint32_t to) const;
};

// Applies `edits` to `img` in place: user chains created go where their name sorts among
// the user chains (libiptc lists unsorted chains in quadratic time). `moved` gets which
// new entries were which old ones. Fails (leaving `img`
// unusable: drop it) when a new rule jumps to a chain that will not exist, or when two
// created chains have one name. `unfilled`, when given, gets per chain of the new image
// whether its body was deferred (left for fill_chain).
Status apply_edits(TableImage& img, ImageEdits&& edits, EntryMap* moved, std::vector<bool>* unfilled = nullptr);

// Writes the body of chain `chain` (left empty by a deferred edit) from `bytes` (the
// normalized rules, as Rule::encode_to makes them), resolving its jumps. `bytes` must be
// exactly the size the edit announced.
Status fill_chain(TableImage& img, size_t chain, std::string_view bytes);

// Replaces the kernel's table with `img`. `old_num_entries` must be the entry count of the
// table being replaced (the kernel answers EAGAIN when it is not). Counters of entries
// with an old number survive. `kernel_ms`, when given, receives the time spent in the
// kernel.
Status write_table(TableImage& img, uint32_t old_num_entries, const EntryMap& moved, double* kernel_ms = nullptr);

}  // namespace knode::iptables::detail
