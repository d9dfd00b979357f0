// Network namespaces by path: an owned handle and a guard that enters one and always
// goes back. Namespaces are per thread: a guard changes only the calling thread, so
// code that holds one must not hop threads (a netlink socket opened inside stays bound
// to that namespace after the guard is gone).
#pragma once

#include <string>
#include <utility>

#include "knode/status.h"

namespace knode::netns {

// An open file descriptor of a network namespace (/var/run/netns/x, /proc/<pid>/ns/net).
class NetnsHandle {
 public:
  // Fails with ENOENT when the path is gone, EINVAL when it is not a network namespace.
  static Result<NetnsHandle> Open(const std::string& path);
  // The calling thread's current network namespace.
  static Result<NetnsHandle> Current();

  NetnsHandle(NetnsHandle&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  NetnsHandle& operator=(NetnsHandle&& other) noexcept;
  NetnsHandle(const NetnsHandle&) = delete;
  NetnsHandle& operator=(const NetnsHandle&) = delete;
  ~NetnsHandle();

  int fd() const { return fd_; }

 private:
  explicit NetnsHandle(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// Enters a namespace for its lifetime and restores the previous one when destroyed.
class NetnsGuard {
 public:
  static Result<NetnsGuard> Enter(const std::string& path);
  static Result<NetnsGuard> Enter(const NetnsHandle& target);

  NetnsGuard(NetnsGuard&& other) noexcept;
  NetnsGuard& operator=(NetnsGuard&&) = delete;
  NetnsGuard(const NetnsGuard&) = delete;
  NetnsGuard& operator=(const NetnsGuard&) = delete;
  ~NetnsGuard();

 private:
  explicit NetnsGuard(NetnsHandle previous) : previous_(std::move(previous)) {}
  NetnsHandle previous_;
  bool active_ = true;
};

// Runs fn inside the namespace at path and comes back, whatever fn returns. fn returns
// Status or Result<T>; a failure to enter is returned as that type.
template <typename F>
auto with_netns(const std::string& path, F&& fn) -> decltype(fn()) {
  auto guard = NetnsGuard::Enter(path);
  if (!guard.ok()) return guard.status();
  return fn();
}

template <typename F>
auto with_netns(const NetnsHandle& target, F&& fn) -> decltype(fn()) {
  auto guard = NetnsGuard::Enter(target);
  if (!guard.ok()) return guard.status();
  return fn();
}

}  // namespace knode::netns
