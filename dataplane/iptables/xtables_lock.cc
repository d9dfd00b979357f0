#include "knode/dataplane/iptables/xtables_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <thread>
#include <utility>

namespace knode::iptables::detail {

XtablesLock::XtablesLock(XtablesLock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}

XtablesLock& XtablesLock::operator=(XtablesLock&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

XtablesLock::~XtablesLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock
}

Result<XtablesLock> XtablesLock::acquire(int wait_ms, const std::string& path) {
  int fd = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno("iptables: open lock " + path, errno);
  XtablesLock lock(fd);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  for (;;) {
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return lock;
    if (errno != EWOULDBLOCK && errno != EINTR) {
      return Status::FromErrno("iptables: lock " + path, errno);
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status::Error("iptables: lock " + path + ": held by another program for " +
                               std::to_string(wait_ms) + " ms",
                           EWOULDBLOCK);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace knode::iptables::detail
