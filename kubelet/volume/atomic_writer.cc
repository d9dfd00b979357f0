#include "volume/atomic_writer.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <ctime>
#include <set>
#include <vector>

#include "knode/log.h"
#include "volume/fs_util.h"

namespace knode::kubelet::volume {
namespace {

constexpr size_t kMaxFileNameLength = 255;
constexpr size_t kMaxPathLength = 4096;

std::vector<std::string> split(const std::string& path) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    out.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return out;
}

std::string top_level(const std::string& path) { return path.substr(0, path.find('/')); }

// Every file and directory below `dir`, relative to it; symlinks are listed, not followed.
Status walk(const std::string& dir, const std::string& rel, std::set<std::string>* out) {
  std::string here = rel.empty() ? dir : dir + "/" + rel;
  DIR* d = ::opendir(here.c_str());
  if (d == nullptr) return Status::FromErrno("open " + here, errno);
  std::vector<std::pair<std::string, bool>> entries;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string path = rel.empty() ? name : rel + "/" + name;
    struct stat st {};
    bool is_dir = ::lstat((dir + "/" + path).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
    entries.emplace_back(path, is_dir);
  }
  ::closedir(d);
  for (const auto& [path, is_dir] : entries) {
    out->insert(path);
    if (is_dir) {
      if (Status s = walk(dir, path, out); !s.ok()) return s;
    }
  }
  return Status::Ok();
}

// Whether `path` is missing or holds something other than `content`.
Result<bool> differs(const std::string& path, const std::string& content) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return true;
    return Status::FromErrno("read " + path, errno);
  }
  std::string on_disk;
  char buf[65536];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) on_disk.append(buf, static_cast<size_t>(n));
  int err = errno;
  ::close(fd);
  if (n < 0) return Status::FromErrno("read " + path, err);
  return on_disk != content;
}

Status write_file(const std::string& path, const FileProjection& f) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno("create " + path, errno);
  size_t done = 0;
  while (done < f.data.size()) {
    ssize_t n = ::write(fd, f.data.data() + done, f.data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return Status::FromErrno("write " + path, err);
    }
    done += static_cast<size_t>(n);
  }
  // Set explicitly: the mode given to open(2) is masked by the umask.
  if (::fchmod(fd, static_cast<mode_t>(f.mode)) != 0) {
    int err = errno;
    ::close(fd);
    return Status::FromErrno("chmod " + path, err);
  }
  if (::close(fd) != 0) return Status::FromErrno("close " + path, errno);
  return Status::Ok();
}

Status make_parents(const std::string& base, const std::string& rel) {
  auto parts = split(rel);
  std::string path = base;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    path += "/" + parts[i];
    if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST)
      return Status::FromErrno("mkdir " + path, errno);
  }
  return Status::Ok();
}

Result<std::string> new_timestamp_dir(const std::string& dir) {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char stamp[64];
  std::strftime(stamp, sizeof stamp, "..%Y_%m_%d_%H_%M_%S.", &tm);
  std::string templ = dir + "/" + stamp + "XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr)
    return Status::FromErrno("create a data directory in " + dir, errno);
  // 0755 lets group and others reach the files, whatever the umask.
  if (::chmod(templ.c_str(), 0755) != 0) return Status::FromErrno("chmod " + templ, errno);
  return templ;
}

// Whether `name` is one of the writer's timestamped directories.
bool is_timestamp_dir(const std::string& name) {
  return name.size() > 3 && name.compare(0, 2, "..") == 0 && name[2] >= '0' && name[2] <= '9';
}

}  // namespace

AtomicWriter::AtomicWriter(std::string target_dir, std::string context)
    : dir_(std::move(target_dir)), context_(std::move(context)) {}

Status AtomicWriter::fail(const std::string& what, const Status& cause) const {
  return cause.Wrap(context_ + ": " + what);
}

Status AtomicWriter::validate_path(const std::string& path) {
  if (path.empty()) return Status::Error("invalid path: must not be empty: \"\"", EINVAL);
  if (path.front() == '/')
    return Status::Error("invalid path: must be relative path: " + path, EINVAL);
  if (path.size() > kMaxPathLength) {
    return Status::Error("invalid path: must be less than or equal to " +
                             std::to_string(kMaxPathLength) + " characters",
                         EINVAL);
  }
  auto items = split(path);
  for (const auto& item : items) {
    if (item == "..") return Status::Error("invalid path: must not contain '..': " + path, EINVAL);
    if (item.size() > kMaxFileNameLength) {
      return Status::Error("invalid path: filenames must be less than or equal to " +
                               std::to_string(kMaxFileNameLength) + " characters",
                           EINVAL);
    }
  }
  if (items[0].size() > 2 && items[0].compare(0, 2, "..") == 0) {
    return Status::Error("invalid path: must not start with '..': " + path, EINVAL);
  }
  return Status::Ok();
}

Result<bool> AtomicWriter::write(const Payload& payload, const SetPermissions& set_permissions) {
  Payload clean;
  for (const auto& [path, file] : payload) {
    if (Status s = validate_path(path); !s.ok()) return fail("invalid payload", s);
    std::string c = clean_path(path);
    if (c == ".")
      return fail("invalid payload",
                  Status::Error("invalid path: names the volume itself: " + path, EINVAL));
    clean[c] = file;
  }

  const std::string data_link = dir_ + "/" + kDataDirName;
  std::string old_ts;
  {
    char buf[PATH_MAX];
    ssize_t n = ::readlink(data_link.c_str(), buf, sizeof buf - 1);
    if (n >= 0) {
      old_ts.assign(buf, static_cast<size_t>(n));
    } else if (errno != ENOENT) {
      return fail("read the data directory link",
                  Status::FromErrno("readlink " + data_link, errno));
    }
  }

  // What the current version holds that the new one does not (ancestors of new paths stay).
  std::set<std::string> to_remove;
  bool should_write = true;
  if (!old_ts.empty()) {
    if (Status s = walk(dir_ + "/" + old_ts, "", &to_remove);
        !s.ok() && s.error_number() != ENOENT) {
      return fail("list the current files", s);
    }
    for (const auto& [path, file] : clean) {
      for (std::string p = path;; p = p.substr(0, p.rfind('/'))) {
        to_remove.erase(p);
        if (p.find('/') == std::string::npos) break;
      }
    }
    should_write = false;
    for (const auto& [path, file] : clean) {
      auto d = differs(dir_ + "/" + old_ts + "/" + path, file.data);
      if (!d.ok()) return fail("compare with the current files", d.status());
      if (*d) {
        should_write = true;
        break;
      }
    }
    should_write = should_write || !to_remove.empty();
  }

  std::string previous = should_write ? old_ts : "";
  if (should_write) {
    auto ts_dir = new_timestamp_dir(dir_);
    if (!ts_dir.ok()) return fail("write", ts_dir.status());
    std::string ts_name = ts_dir->substr(ts_dir->rfind('/') + 1);
    auto abandon = [&](const std::string& what, const Status& cause) {
      Status cleanup = remove_beneath(dir_, ts_name);
      if (!cleanup.ok())
        KLOG(WARNING, "leaving a data directory behind").kv("err", cleanup.message());
      return fail(what, cause);
    };
    for (const auto& [path, file] : clean) {
      if (Status s = make_parents(*ts_dir, path); !s.ok()) return abandon("write", s);
      if (Status s = write_file(*ts_dir + "/" + path, file); !s.ok()) return abandon("write", s);
    }
    if (set_permissions) {
      if (Status s = set_permissions(*ts_dir); !s.ok()) return abandon("apply ownership", s);
    }
    const std::string tmp_link = dir_ + "/" + kNewDataDirName;
    // A link left by an update that died half-way would make symlink(2) fail forever.
    if (::unlink(tmp_link.c_str()) != 0 && errno != ENOENT) {
      return abandon("publish", Status::FromErrno("remove " + tmp_link, errno));
    }
    if (::symlink(ts_name.c_str(), tmp_link.c_str()) != 0) {
      return abandon("publish", Status::FromErrno("symlink " + tmp_link, errno));
    }
    if (::rename(tmp_link.c_str(), data_link.c_str()) != 0) {
      int err = errno;
      ::unlink(tmp_link.c_str());
      return abandon("publish", Status::FromErrno("rename " + tmp_link + " to " + data_link, err));
    }
  }

  // Visible entries: one symlink per top-level name. Also after no write, since a restart
  // may find the data directory complete and a link missing (upstream issue 121472).
  for (const auto& [path, file] : clean) {
    std::string name = top_level(path);
    std::string link = dir_ + "/" + name;
    struct stat st {};
    if (::lstat(link.c_str(), &st) == 0) continue;
    if (errno != ENOENT)
      return fail("create visible entries", Status::FromErrno("stat " + link, errno));
    std::string target = std::string(kDataDirName) + "/" + name;
    if (::symlink(target.c_str(), link.c_str()) != 0 && errno != EEXIST) {
      return fail("create visible entries", Status::FromErrno("symlink " + link, errno));
    }
  }
  for (const auto& path : to_remove) {
    if (path.find('/') != std::string::npos) continue;  // inside a removed top-level entry
    std::string link = dir_ + "/" + path;
    if (::unlink(link.c_str()) != 0 && errno != ENOENT) {
      return fail("remove old visible entries", Status::FromErrno("remove " + link, errno));
    }
  }
  if (!previous.empty()) {
    if (Status s = remove_beneath(dir_, previous); !s.ok())
      return fail("remove the previous data", s);
  }
  if (should_write) {
    // Directories of updates that died before their rename; nothing points at them.
    std::string current;
    char buf[PATH_MAX];
    ssize_t n = ::readlink(data_link.c_str(), buf, sizeof buf - 1);
    if (n >= 0) current.assign(buf, static_cast<size_t>(n));
    std::vector<std::string> stale;
    if (DIR* d = ::opendir(dir_.c_str())) {
      while (struct dirent* e = ::readdir(d)) {
        std::string name = e->d_name;
        if (is_timestamp_dir(name) && name != current) stale.push_back(name);
      }
      ::closedir(d);
    }
    for (const auto& name : stale) {
      if (Status s = remove_beneath(dir_, name); !s.ok()) {
        KLOG(WARNING, "cannot remove a stale data directory")
            .kv("context", context_)
            .kv("err", s.message());
      }
    }
  }
  return should_write;
}

}  // namespace knode::kubelet::volume
