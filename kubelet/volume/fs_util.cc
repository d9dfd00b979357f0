#include "volume/fs_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <linux/stat.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <sstream>
#include <vector>

namespace knode::kubelet::volume {
namespace {

std::vector<std::string> split(const std::string& path) {
  std::vector<std::string> out;
  std::stringstream in(path);
  std::string part;
  while (std::getline(in, part, '/')) {
    if (!part.empty() && part != ".") out.push_back(part);
  }
  return out;
}

// Whether the directory `fd` is the root of a mount, or on another device than its parent.
Result<bool> crosses_mount(int fd, const struct stat& parent, const std::string& shown) {
  struct statx stx {};
  if (::statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &stx) != 0) {
    return Status::FromErrno("statx " + shown, errno);
  }
  if ((stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) != 0 &&
      (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0) {
    return true;
  }
  return ::makedev(stx.stx_dev_major, stx.stx_dev_minor) != parent.st_dev;
}

// Calls fn(fd, name, shown) for each entry of the directory `fd`.
template <typename Fn>
Status for_each_entry(int fd, const std::string& shown, Fn fn) {
  int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return Status::FromErrno("dup " + shown, errno);
  DIR* dir = ::fdopendir(copy);
  if (dir == nullptr) {
    int err = errno;
    ::close(copy);
    return Status::FromErrno("opendir " + shown, err);
  }
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* e = ::readdir(dir)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  int err = errno;
  ::closedir(dir);
  if (err != 0) return Status::FromErrno("readdir " + shown, err);
  for (const auto& name : names) {
    if (Status s = fn(fd, name, shown + "/" + name); !s.ok()) return s;
  }
  return Status::Ok();
}

Status remove_at(int dirfd, const std::string& name, const std::string& shown) {
  struct stat st {};
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return Status::FromErrno("stat " + shown, errno);
  }
  if (S_ISDIR(st.st_mode)) {
    UniqueFd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) return Status::FromErrno("open " + shown, errno);
    struct stat parent {};
    if (::fstat(dirfd, &parent) != 0) return Status::FromErrno("stat parent of " + shown, errno);
    auto mounted = crosses_mount(fd.get(), parent, shown);
    if (!mounted.ok()) return mounted.status();
    if (*mounted)
      return Status::Error("refusing to remove " + shown + ": it is a mount point", EBUSY);
    if (Status s = for_each_entry(fd.get(), shown, remove_at); !s.ok()) return s;
  }
  if (::unlinkat(dirfd, name.c_str(), S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) != 0 &&
      errno != ENOENT) {
    return Status::FromErrno("remove " + shown, errno);
  }
  return Status::Ok();
}

Status own_at(int dirfd, const std::string& name, const std::string& shown, gid_t gid,
              mode_t mask) {
  struct stat st {};
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return Status::FromErrno("stat " + shown, errno);
  }
  if (::fchownat(dirfd, name.c_str(), static_cast<uid_t>(-1), gid, AT_SYMLINK_NOFOLLOW) != 0) {
    return Status::FromErrno("chown " + shown, errno);
  }
  // A symlink's own mode means nothing, and chmod would change what it points to.
  if (S_ISLNK(st.st_mode)) return Status::Ok();
  if (!S_ISDIR(st.st_mode)) {
    if (::fchmodat(dirfd, name.c_str(), (st.st_mode & 07777) | mask, 0) != 0) {
      return Status::FromErrno("chmod " + shown, errno);
    }
    return Status::Ok();
  }
  UniqueFd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return Status::FromErrno("open " + shown, errno);
  if (::fchmod(fd.get(), (st.st_mode & 07777) | mask | S_ISGID | S_IXUSR | S_IXGRP) != 0) {
    return Status::FromErrno("chmod " + shown, errno);
  }
  struct stat parent {};
  if (::fstat(dirfd, &parent) != 0) return Status::FromErrno("stat parent of " + shown, errno);
  auto mounted = crosses_mount(fd.get(), parent, shown);
  if (!mounted.ok()) return mounted.status();
  if (*mounted) return Status::Ok();
  return for_each_entry(fd.get(), shown,
                        [gid, mask](int d, const std::string& n, const std::string& s) {
                          return own_at(d, n, s, gid, mask);
                        });
}

}  // namespace

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

Result<UniqueFd> open_beneath(int base_fd, const std::string& rel, int flags) {
  struct open_how how {};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  std::string path = rel.empty() ? "." : rel;
  long fd = ::syscall(SYS_openat2, base_fd, path.c_str(), &how, sizeof how);
  if (fd < 0) {
    int err = errno;
    if (err == EXDEV) return Status::Error("open " + rel + ": leads outside of its volume", EXDEV);
    if (err == ENOSYS) return Status::Error("open " + rel + ": openat2 needs Linux 5.6", ENOSYS);
    return Status::FromErrno("open " + rel, err);
  }
  return UniqueFd(static_cast<int>(fd));
}

Status make_dirs_beneath(int base_fd, const std::string& rel, mode_t perm) {
  std::string prefix;
  UniqueFd parent(::fcntl(base_fd, F_DUPFD_CLOEXEC, 0));
  if (!parent.valid()) return Status::FromErrno("dup", errno);
  for (const auto& part : split(rel)) {
    prefix += (prefix.empty() ? "" : "/") + part;
    auto existing = open_beneath(base_fd, prefix, O_PATH | O_DIRECTORY);
    if (existing.ok()) {
      parent = std::move(*existing);
      continue;
    }
    if (existing.status().error_number() != ENOENT) return existing.status();
    if (::mkdirat(parent.get(), part.c_str(), perm) != 0)
      return Status::FromErrno("mkdir " + prefix, errno);
    UniqueFd created(
        ::openat(parent.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!created.valid()) return Status::FromErrno("open " + prefix, errno);
    if (::fchmod(created.get(), perm) != 0) return Status::FromErrno("chmod " + prefix, errno);
    parent = std::move(created);
  }
  return Status::Ok();
}

Status remove_beneath(const std::string& base, const std::string& rel) {
  auto parts = split(rel);
  if (parts.empty()) return Status::Error("remove " + base + ": nothing below it named", EINVAL);
  UniqueFd dir(::open(base.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) {
    if (errno == ENOENT) return Status::Ok();
    return Status::FromErrno("open " + base, errno);
  }
  std::string shown = base;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    shown += "/" + parts[i];
    UniqueFd next(
        ::openat(dir.get(), parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next.valid()) {
      if (errno == ENOENT) return Status::Ok();
      // ELOOP/ENOTDIR: a symlink or file where a directory should be; nothing of ours is
      // below it, and it is not ours to follow.
      return Status::FromErrno("open " + shown, errno);
    }
    dir = std::move(next);
  }
  return remove_at(dir.get(), parts.back(), shown + "/" + parts.back());
}

Status set_volume_ownership(const std::string& dir, gid_t gid, bool read_only) {
  mode_t mask = read_only ? (S_IRUSR | S_IRGRP) : (S_IRUSR | S_IWUSR | S_IRGRP | S_IWGRP);
  auto slash = dir.find_last_of('/');
  std::string parent = slash == 0 ? "/" : dir.substr(0, slash);
  UniqueFd fd(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return Status::FromErrno("open " + parent, errno);
  // The volume's own directory may be a mount (tmpfs); only mounts below it are skipped.
  std::string name = dir.substr(slash + 1);
  struct stat st {};
  if (::fstatat(fd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return Status::FromErrno("stat " + dir, errno);
  }
  if (!S_ISDIR(st.st_mode)) return Status::Error(dir + " is not a directory", ENOTDIR);
  UniqueFd root(::openat(fd.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!root.valid()) return Status::FromErrno("open " + dir, errno);
  if (::fchown(root.get(), static_cast<uid_t>(-1), gid) != 0)
    return Status::FromErrno("chown " + dir, errno);
  if (::fchmod(root.get(), (st.st_mode & 07777) | mask | S_ISGID | S_IXUSR | S_IXGRP) != 0) {
    return Status::FromErrno("chmod " + dir, errno);
  }
  return for_each_entry(root.get(), dir,
                        [gid, mask](int d, const std::string& n, const std::string& s) {
                          return own_at(d, n, s, gid, mask);
                        });
}

Result<std::string> file_type(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Status::FromErrno("stat " + path, errno);
  switch (st.st_mode & S_IFMT) {
    case S_IFREG:
      return std::string("File");
    case S_IFDIR:
      return std::string("Directory");
    case S_IFSOCK:
      return std::string("Socket");
    case S_IFCHR:
      return std::string("CharDevice");
    case S_IFBLK:
      return std::string("BlockDevice");
    default:
      return Status::Error(
          "only recognise file, directory, socket, block device and character device: " + path);
  }
}

bool has_backsteps(const std::string& path) {
  std::stringstream in(path);
  std::string part;
  while (std::getline(in, part, '/')) {
    if (part == "..") return true;
  }
  return false;
}

std::string clean_path(const std::string& path) {
  if (path.empty()) return ".";
  bool rooted = path.front() == '/';
  std::vector<std::string> out;
  std::stringstream in(path);
  std::string part;
  while (std::getline(in, part, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (!out.empty() && out.back() != "..") {
        out.pop_back();
      } else if (!rooted) {
        out.push_back(part);
      }
      continue;
    }
    out.push_back(part);
  }
  std::string joined;
  for (const auto& p : out) joined += (joined.empty() ? "" : "/") + p;
  if (rooted) return "/" + joined;
  return joined.empty() ? "." : joined;
}

}  // namespace knode::kubelet::volume
