#include "knode/dataplane/sysctl.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace knode::sysctl {

std::string path_of(const std::string& name, const std::string& root) {
  std::string rel = name;
  // sysctl(8): with no '/', dots separate the levels (interface names keep their dots
  // only in the '/' form, e.g. net/ipv4/conf/eth0.100/forwarding).
  if (rel.find('/') == std::string::npos) {
    for (char& c : rel) {
      if (c == '.') c = '/';
    }
  }
  while (!rel.empty() && rel.front() == '/') rel.erase(0, 1);
  return root + "/" + rel;
}

Result<std::string> read(const std::string& name, const std::string& root) {
  const std::string path = path_of(name, root);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno("read sysctl " + path, errno);
  std::string out;
  char buf[512];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return Status::FromErrno("read sysctl " + path, err);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

Result<long> read_int(const std::string& name, const std::string& root) {
  auto v = read(name, root);
  if (!v) return v.status();
  char* end = nullptr;
  errno = 0;
  long x = std::strtol(v->c_str(), &end, 10);
  if (errno || end == v->c_str() || *end) {
    return Status::Error("sysctl " + path_of(name, root) + ": not an integer: \"" + *v + "\"", EINVAL);
  }
  return x;
}

Status write(const std::string& name, const std::string& value, const std::string& root) {
  const std::string path = path_of(name, root);
  const std::string what = "write sysctl " + path + "=" + value;
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(what, errno);
  const std::string line = value + "\n";
  ssize_t n;
  do {
    n = ::write(fd, line.data(), line.size());
  } while (n < 0 && errno == EINTR);
  int err = errno;
  if (::close(fd) != 0 && n >= 0) return Status::FromErrno(what, errno);
  if (n < 0) return Status::FromErrno(what, err);
  if (static_cast<size_t>(n) != line.size()) return Status::Error(what + ": short write", EIO);
  return Status::Ok();
}

Status ensure(const std::string& name, const std::string& value, bool* changed,
              const std::string& root) {
  if (changed) *changed = false;
  auto cur = read(name, root);
  if (cur && *cur == value) return Status::Ok();
  Status s = write(name, value, root);
  if (s && changed) *changed = true;
  return s;
}

}  // namespace knode::sysctl
