#include "knode/cni/ipam_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace knode::cni {

namespace {

constexpr const char* kLastReservedPrefix = "last_reserved_ip.";

Status io_error(const std::string& what, int err) {
  return error(kIoFailure, what + ": " + std::strerror(err));
}

Status mkdir_p(const std::string& path) {
  std::string cur;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    cur = path.substr(0, pos);
    if (cur.empty()) continue;
    if (::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) return io_error("create directory " + cur, errno);
  }
  return Status::Ok();
}

// Anyone who can write the store can hand a pod another pod's address or free a taken
// one: a world-writable data directory (or network directory, or lock file) is refused.
Status refuse_world_writable(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return io_error("stat " + path, errno);
  if ((st.st_mode & S_IWOTH) == 0) return Status::Ok();
  char mode[8];
  std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
  return error(kInvalidConfig, "IPAM data path " + path + " is world-writable (mode " + mode +
                                   "): refusing to use it; chmod o-w " + path);
}

bool read_file(const std::string& path, std::string* out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[512];
  out->clear();
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) out->append(buf, static_cast<size_t>(n));
  ::close(fd);
  return n == 0;
}

bool write_all(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    off += static_cast<size_t>(n);
  }
  return true;
}

// "<id>\r\n<ifname>" (older host-local wrote just "<id>").
Attachment parse_owner(const std::string& content) {
  Attachment a;
  auto sep = content.find("\r\n");
  if (sep == std::string::npos) sep = content.find('\n');
  if (sep == std::string::npos) {
    a.container_id = content;
  } else {
    a.container_id = content.substr(0, sep);
    a.ifname = content.substr(sep + (content[sep] == '\r' ? 2 : 1));
  }
  while (!a.container_id.empty() && std::isspace(static_cast<unsigned char>(a.container_id.back()))) a.container_id.pop_back();
  while (!a.ifname.empty() && std::isspace(static_cast<unsigned char>(a.ifname.back()))) a.ifname.pop_back();
  return a;
}

bool owned_by(const Attachment& have, const Attachment& want) {
  return have.container_id == want.container_id && (have.ifname.empty() || have.ifname == want.ifname);
}

}  // namespace

Result<IpamStore> IpamStore::Open(const std::string& data_dir, const std::string& network) {
  std::string dir = data_dir + "/" + network;
  if (auto d = mkdir_p(dir); !d.ok()) return d;
  for (const std::string& p : {data_dir, dir}) {
    if (auto w = refuse_world_writable(p); !w.ok()) return w;
  }
  std::string lock_path = dir + "/lock";
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return io_error("open " + lock_path, errno);
  if (auto w = refuse_world_writable(lock_path); !w.ok()) {
    ::close(fd);
    return w;
  }
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    int err = errno;
    ::close(fd);
    return io_error("lock " + lock_path, err);
  }
  return IpamStore(dir, fd);
}

IpamStore::IpamStore(IpamStore&& other) noexcept
    : dir_(std::move(other.dir_)), lock_fd_(std::exchange(other.lock_fd_, -1)) {}

IpamStore::~IpamStore() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // closing releases the flock
}

Result<bool> IpamStore::reserve(const net::IPAddress& ip, const Attachment& owner, size_t range_set) {
  std::string path = dir_ + "/" + ip.str();
  const std::string content = owner.container_id + "\r\n" + owner.ifname;
  // The reservation appears with its owner in it or not at all: an unnamed file
  // (O_TMPFILE) is written, then linked in under the address (EEXIST: taken), so a plugin
  // killed half-way leaves nothing. Where the filesystem has no O_TMPFILE, the file is
  // created, then written; what a kill in between leaves (a file without an owner) goes
  // with the DEL that follows the failed ADD (release_owner).
  int fd = ::open(dir_.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
  if (fd >= 0) {
    if (!write_all(fd, content)) {
      int err = errno;
      ::close(fd);
      return io_error("write " + path, err);
    }
    std::string self = "/proc/self/fd/" + std::to_string(fd);
    int r = ::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW);
    if (r != 0 && errno == ENOENT) r = ::linkat(fd, "", AT_FDCWD, path.c_str(), AT_EMPTY_PATH);  // no /proc
    int err = errno;
    ::close(fd);
    if (r != 0) {
      if (err == EEXIST) return false;
      return io_error("reserve " + path, err);
    }
  } else if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL) {
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
      if (errno == EEXIST) return false;
      return io_error("reserve " + path, errno);
    }
    bool wrote = write_all(fd, content);
    ::close(fd);
    if (!wrote) {
      int err = errno;
      ::unlink(path.c_str());
      return io_error("write " + path, err);
    }
  } else {
    return io_error("reserve " + path, errno);
  }
  std::string last = dir_ + "/" + kLastReservedPrefix + std::to_string(range_set);
  // Overwrite in place and cut to length: ext4 flushes a file truncated to zero on
  // close (auto_da_alloc), which cost milliseconds per ADD.
  fd = ::open(last.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd >= 0) {
    std::string text = ip.str();
    if (::pwrite(fd, text.data(), text.size(), 0) == static_cast<ssize_t>(text.size())) {
      [[maybe_unused]] int r = ::ftruncate(fd, static_cast<off_t>(text.size()));
    }
    ::close(fd);  // a lost hint only restarts round-robin at the range start
  }
  return true;
}

std::optional<net::IPAddress> IpamStore::last_reserved(size_t range_set) const {
  std::string content;
  if (!read_file(dir_ + "/" + kLastReservedPrefix + std::to_string(range_set), &content)) return std::nullopt;
  while (!content.empty() && std::isspace(static_cast<unsigned char>(content.back()))) content.pop_back();
  auto ip = net::IPAddress::Parse(content);
  if (!ip) return std::nullopt;
  return *ip;
}

bool IpamStore::is_reserved(const net::IPAddress& ip) const {
  return ::access((dir_ + "/" + ip.str()).c_str(), F_OK) == 0;
}

std::map<net::IPAddress, Attachment> IpamStore::allocations() const {
  std::map<net::IPAddress, Attachment> out;
  DIR* d = ::opendir(dir_.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    auto ip = net::IPAddress::Parse(e->d_name);
    if (!ip) continue;  // lock, last_reserved_ip.N, temp files
    std::string content;
    if (!read_file(dir_ + "/" + e->d_name, &content)) continue;
    out.emplace(*ip, parse_owner(content));
  }
  ::closedir(d);
  return out;
}

std::vector<net::IPAddress> IpamStore::find(const Attachment& owner) const {
  std::vector<net::IPAddress> out;
  for (const auto& [ip, have] : allocations()) {
    if (owned_by(have, owner)) out.push_back(ip);
  }
  return out;
}

Status IpamStore::release(const net::IPAddress& ip) {
  std::string path = dir_ + "/" + ip.str();
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return io_error("release " + path, errno);
  return Status::Ok();
}

Result<std::vector<net::IPAddress>> IpamStore::release_owner(const Attachment& owner) {
  std::vector<net::IPAddress> released;
  for (const auto& [ip, have] : allocations()) {
    // A reservation without an owner is one whose plugin was killed between creating
    // the file and writing the owner into it. Every reserve runs under the lock held
    // here, so nobody is still writing it, and no DEL would ever name it: it goes with
    // this one (the runtime's DEL after that failed ADD, as a rule).
    if (owned_by(have, owner) || have.container_id.empty()) released.push_back(ip);
  }
  for (const auto& ip : released) {
    if (auto d = release(ip); !d.ok()) return d;
  }
  return released;
}

}  // namespace knode::cni
