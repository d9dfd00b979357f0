// Internal to dataplane/iptables: a whole x_tables table as chains of entry bytes, read
// with IPT_SO_GET_INFO/IPT_SO_GET_ENTRIES and written with IPT_SO_SET_REPLACE (+
// IPT_SO_SET_ADD_COUNTERS to carry counters over), without libiptc.
//
// Why not libiptc: at load-balancer scale (10,000 virtual services: 110k chains, 430k rules)
// libiptc spends seconds in user space (iptables-legacy-restore: 6.6 s on an empty
// table, 12-15 s over a full one; see shared/BASELINES.md and bench/), mostly in its
// chain-list handling and in rebuilding every rule object on each commit. Here a chain
// is one contiguous byte string, jumps are kept by chain name, and the blob is
// laid out in two linear passes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "knode/status.h"

namespace knode::iptables::detail {

struct ChainImage {
  std::string name;
  int hook = -1;        // NF_INET_* of a built-in chain, -1 for a user chain
  int policy = 0;       // built-in chains: kernel verdict of the policy entry
  std::string entries;  // normalized rules (see entry.h), concatenated
  uint32_t num_rules = 0;
  // Index in the table this image was read from (or last written as) of each rule,
  // then of the chain's footer (policy or RETURN entry); -1 for new. Counters of
  // entries with an old index survive a write. Empty: all new.
  std::vector<int32_t> old_index;
};

struct TableImage {
  std::string name;
  uint32_t valid_hooks = 0;
  std::vector<ChainImage> chains;  // built-ins in hook order, then user chains by name
  uint32_t num_entries = 0;        // of the kernel table this image came from / went to
  uint32_t size = 0;
};

// Entry count and blob size of the kernel's table.
Status table_info(const std::string& table, uint32_t* num_entries, uint32_t* size);

Result<TableImage> read_table(const std::string& table);

// Replaces the kernel's table with `image` (whose chains may be in any order: user
// chains are laid out in the order given). `old_num_entries` must be the entry count
// of the table being replaced (the kernel answers EAGAIN when it is not). On success
// sets image.num_entries/size and renumbers old_index to the new layout.
// `kernel_ms`, when given, receives the time spent in the kernel's replace. `scratch`,
// when given, holds the blob and is kept for the next write: at 200 MB, faulting in fresh
// pages costs more than the copy itself.
Status write_table(TableImage& image, uint32_t old_num_entries, double* kernel_ms = nullptr,
                   std::vector<char>* scratch = nullptr);

}  // namespace knode::iptables::detail
