// The lock iptables(8) itself takes around every read-modify-write of a table (flock on
// /run/xtables.lock), so knode's programs, iptables, Docker and firewalld do not
// overwrite each other's commits. Table::open, the Reconciler and edit_table take it.
#pragma once

#include <string>

#include "knode/status.h"

namespace knode::iptables::detail {

class XtablesLock {
 public:
  XtablesLock() = default;
  XtablesLock(XtablesLock&& o) noexcept;
  XtablesLock& operator=(XtablesLock&& o) noexcept;
  XtablesLock(const XtablesLock&) = delete;
  XtablesLock& operator=(const XtablesLock&) = delete;
  ~XtablesLock();

  // Waits up to `wait_ms` for the lock (iptables -w 5 waits 5 s).
  static Result<XtablesLock> acquire(int wait_ms = 5000,
                                     const std::string& path = "/run/xtables.lock");

 private:
  explicit XtablesLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace knode::iptables::detail
