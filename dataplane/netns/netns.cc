#include "knode/dataplane/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cstdlib>

#include "knode/log.h"

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif
#ifndef PROC_SUPER_MAGIC
#define PROC_SUPER_MAGIC 0x9fa0
#endif

namespace knode::netns {

Result<NetnsHandle> NetnsHandle::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno("open netns " + path, errno);
  struct statfs st {};
  if (::fstatfs(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return Status::FromErrno("statfs netns " + path, err);
  }
  // Older kernels show namespace files on procfs, newer ones on nsfs.
  if (st.f_type != static_cast<decltype(st.f_type)>(NSFS_MAGIC) &&
      st.f_type != static_cast<decltype(st.f_type)>(PROC_SUPER_MAGIC)) {
    ::close(fd);
    return Status::Error("open netns " + path + ": not a network namespace", EINVAL);
  }
  return NetnsHandle(fd);
}

Result<NetnsHandle> NetnsHandle::Current() {
  std::string path = "/proc/self/task/" + std::to_string(::gettid()) + "/ns/net";
  return Open(path);
}

NetnsHandle& NetnsHandle::operator=(NetnsHandle&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

NetnsHandle::~NetnsHandle() {
  if (fd_ >= 0) ::close(fd_);
}

Result<NetnsGuard> NetnsGuard::Enter(const std::string& path) {
  auto target = NetnsHandle::Open(path);
  if (!target.ok()) return target.status();
  return Enter(*target);
}

Result<NetnsGuard> NetnsGuard::Enter(const NetnsHandle& target) {
  auto previous = NetnsHandle::Current();
  if (!previous.ok()) return previous.status();
  if (::setns(target.fd(), CLONE_NEWNET) != 0) return Status::FromErrno("setns", errno);
  return NetnsGuard(std::move(*previous));
}

NetnsGuard::NetnsGuard(NetnsGuard&& other) noexcept
    : previous_(std::move(other.previous_)), active_(std::exchange(other.active_, false)) {}

NetnsGuard::~NetnsGuard() {
  if (!active_) return;
  if (::setns(previous_.fd(), CLONE_NEWNET) != 0) {
    // Staying in the wrong namespace would make every later kernel call lie.
    KLOG(ERROR, "cannot restore network namespace").kv("errno", errno);
    std::abort();
  }
}

}  // namespace knode::netns
