// RAII over one libiptc handle (iptc_init ... iptc_commit / iptc_free) for one table of
// the current network namespace. Nothing reaches the kernel before commit(); commit
// replaces the whole table atomically (the kernel refuses it with EAGAIN when someone
// else changed the table since open()).
//
// This is the simple, general path, fine for small tables (a few chains per interface,
// a few hundred rules). libiptc keeps chains in a list and its commit re-walks them, so
// at load-balancer scale (100k chains) it takes seconds; the Reconciler therefore builds
// the table blob itself (see blob.h) and uses this class nowhere on its hot path.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "knode/dataplane/iptables/rule.h"
#include "knode/dataplane/iptables/xtables_lock.h"
#include "knode/status.h"

struct xtc_handle;

namespace knode::iptables {

class Table {
 public:
  // Snapshots table `name` ("nat", "filter", "mangle", "raw") of the current netns.
  // With lock_wait_ms >= 0 it first takes /run/xtables.lock (as iptables -w does),
  // held until commit() or destruction. The default takes no lock: callers that hold
  // the lock themselves (flock on their own fd) would otherwise wait on themselves.
  static Result<Table> open(const std::string& name, int lock_wait_ms = -1);

  Table(Table&&) noexcept;
  Table& operator=(Table&&) noexcept;
  ~Table();

  const std::string& name() const { return name_; }

  std::vector<std::string> chains() const;  // built-in ones first, as the kernel orders them
  bool has_chain(const std::string& chain) const;
  bool is_builtin(const std::string& chain) const;

  // The chain's rules as ipt_entry bytes, counters zeroed and jumps to user chains
  // given as a standard target named after the chain (the form Rule::encode() makes),
  // so they compare byte for byte with encoded rules.
  Result<std::vector<std::string>> rules(const std::string& chain) const;

  Status create_chain(const std::string& chain);
  Status flush_chain(const std::string& chain);
  Status delete_chain(const std::string& chain);  // must be empty and unreferenced

  // `entry` is what Rule::encode() returns. Positions count from 0.
  Status append(const std::string& chain, const std::string& entry);
  Status insert(const std::string& chain, const std::string& entry, unsigned position);
  Status replace(const std::string& chain, const std::string& entry, unsigned position);
  Status erase(const std::string& chain, unsigned position);
  Status append(const std::string& chain, const Rule& rule);

  // Sends the table to the kernel; the handle is spent afterwards (open a new one).
  Status commit();

 private:
  Table(std::string name, xtc_handle* h, detail::XtablesLock lock);
  std::string name_;
  xtc_handle* handle_ = nullptr;
  detail::XtablesLock lock_;
};

}  // namespace knode::iptables
