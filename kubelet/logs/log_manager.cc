#include "logs/log_manager.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <filesystem>
#include <vector>

#include "knode/log.h"
#include "labels.h"

namespace knode::kubelet {

namespace fs = std::filesystem;

namespace {

Status fs_error(const std::string& what, const std::error_code& ec) {
  return Status::Error(what + ": " + ec.message(), ec.value());
}

// mkdir -p with `mode` for the directories it creates.
Status make_directories(const std::string& path, mode_t mode) {
  std::string partial;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    partial = path.substr(0, pos);
    if (partial.empty()) continue;
    if (::mkdir(partial.c_str(), mode) != 0 && errno != EEXIST) {
      return Status::FromErrno("mkdir " + partial, errno);
    }
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Status::FromErrno("stat " + path, errno);
  if (!S_ISDIR(st.st_mode)) return Status::Error(path + " is not a directory", ENOTDIR);
  return Status::Ok();
}

// Every path in `dir`; empty when it cannot be read.
std::vector<std::string> list_directory(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    out.push_back(it->path().string());
  }
  return out;
}

Status join_errors(const std::vector<std::string>& errors) {
  if (errors.empty()) return Status::Ok();
  std::string joined;
  for (const auto& e : errors) joined += (joined.empty() ? "" : "; ") + e;
  return Status::Error(joined);
}

}  // namespace

Status validate(const LogRotationPolicy& p) {
  if (p.max_size <= 0) {
    return Status::Error(
        "invalid containerLogMaxSize " + std::to_string(p.max_size) + ", must be > 0", EINVAL);
  }
  if (p.max_files <= 1) {
    return Status::Error(
        "invalid containerLogMaxFiles " + std::to_string(p.max_files) + ", must be > 1", EINVAL);
  }
  return Status::Ok();
}

Status gzip_file(const std::string& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return Status::FromErrno("stat log " + file, errno);
  int in = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return Status::FromErrno("open log " + file, errno);
  const std::string tmp = file + ".tmp";
  const std::string gz = file + ".gz";
  int out = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, st.st_mode & 07777);
  if (out < 0) {
    int err = errno;
    ::close(in);
    return Status::FromErrno("create temporary log " + tmp, err);
  }
  gzFile w = gzdopen(out, "wb");
  if (w == nullptr) {
    ::close(out);
    ::close(in);
    ::unlink(tmp.c_str());
    return Status::Error("gzdopen " + tmp + ": out of memory", ENOMEM);
  }
  Status result;
  std::vector<char> buf(64 * 1024);
  for (;;) {
    ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      result = Status::FromErrno("read log " + file, errno);
      break;
    }
    if (n == 0) break;
    if (gzwrite(w, buf.data(), static_cast<unsigned>(n)) != n) {
      int errnum = 0;
      const char* msg = gzerror(w, &errnum);
      result = Status::Error("compress " + file + " to " + tmp + ": " + msg, EIO);
      break;
    }
  }
  ::close(in);
  if (int rc = gzclose(w); rc != Z_OK && result.ok()) {  // also closes `out`
    result =
        Status::Error("compress " + file + " to " + tmp + ": gzclose " + std::to_string(rc), EIO);
  }
  if (result.ok() && ::rename(tmp.c_str(), gz.c_str()) != 0) {
    result = Status::FromErrno("rename " + tmp + " to " + gz, errno);
  }
  if (!result.ok()) {
    ::unlink(tmp.c_str());
    return result;
  }
  if (::unlink(file.c_str()) != 0 && errno != ENOENT) {
    return Status::FromErrno("remove log " + file + " after compress", errno);
  }
  return Status::Ok();
}

LogManager::LogManager(runtime::ContainerRuntime& runtime, const Clock& clock,
                       LogManagerOptions options)
    : runtime_(runtime), clock_(clock), options_(std::move(options)) {
  while (options_.root.size() > 1 && options_.root.back() == '/') options_.root.pop_back();
}

std::string LogManager::under_root(const std::string& absolute) const {
  if (options_.root.empty() || options_.root == "/") return absolute;
  return options_.root + absolute;
}

std::string LogManager::pod_log_directory(const std::string& ns, const std::string& name,
                                          const std::string& uid) const {
  return under_root(kubelet::pod_log_directory(ns, name, uid));
}

std::string LogManager::pods_directory() const { return under_root(kPodLogsRoot); }

std::string LogManager::containers_directory() const { return under_root(kContainerLogsDir); }

Result<std::string> LogManager::ensure_container_log_directory(const std::string& ns,
                                                               const std::string& name,
                                                               const std::string& uid,
                                                               const std::string& container) const {
  const std::string dir = pod_log_directory(ns, name, uid) + "/" + container;
  if (Status s = make_directories(dir, 0755); !s.ok())
    return s.Wrap("create container log directory");
  return dir;
}

std::string LogManager::symlink_for(const runtime::Labels& labels,
                                    const std::string& container_name,
                                    const std::string& id) const {
  const std::string pod = label_or_empty(labels, kPodNameLabel);
  const std::string ns = label_or_empty(labels, kPodNamespaceLabel);
  std::string container = label_or_empty(labels, kContainerNameLabel);
  if (container.empty()) container = container_name;
  if (pod.empty() || ns.empty() || container.empty() || id.empty()) return "";
  return under_root(container_log_symlink(pod, ns, container, id));
}

Status LogManager::ensure_symlink(const std::string& link, const std::string& target) {
  std::error_code ec;
  auto st = fs::symlink_status(link, ec);
  if (fs::is_symlink(st)) {
    if (fs::read_symlink(link, ec) == fs::path(target) && !ec) return Status::Ok();
    if (!fs::remove(link, ec) && ec) return fs_error("remove stale symlink " + link, ec);
  } else if (fs::exists(st)) {
    return Status::Error("container log symlink " + link + " exists and is not a symlink", EEXIST);
  }
  if (Status s = make_directories(fs::path(link).parent_path().string(), 0755); !s.ok()) return s;
  fs::create_symlink(target, link, ec);
  if (ec) return fs_error("symlink " + link + " -> " + target, ec);
  return Status::Ok();
}

Status LogManager::link_container_log(const std::string& ns, const std::string& pod,
                                      const std::string& container, const std::string& container_id,
                                      const std::string& log_path) {
  std::lock_guard lock(mu_);
  std::error_code ec;
  if (log_path.empty() || !fs::exists(log_path, ec)) return Status::Ok();
  if (ns.empty() || pod.empty() || container.empty() || container_id.empty()) return Status::Ok();
  return ensure_symlink(under_root(container_log_symlink(pod, ns, container, container_id)), log_path);
}

Status LogManager::rotate_if_full(const std::string& id, const std::string& log) {
  struct stat st {};
  if (::stat(log.c_str(), &st) != 0) {
    if (errno != ENOENT) return Status::FromErrno("stat container log " + log, errno);
    // Lost (removed by hand, or a rotation whose reopen never happened): the runtime
    // creates it again when it reopens.
    if (Status s = runtime_.reopen_container_log(id); !s.ok()) {
      return s.Wrap("container log " + log + " doesn't exist, reopen container log failed");
    }
    if (::stat(log.c_str(), &st) != 0) {
      return Status::FromErrno("stat container log " + log + " after reopen", errno);
    }
  }
  if (st.st_size < options_.policy.max_size) return Status::Ok();
  return rotate(id, log, st.st_size);
}

Status LogManager::rotate(const std::string& id, const std::string& log, int64_t size) {
  const auto siblings = list_directory(fs::path(log).parent_path());
  const LogRotationPlan plan =
      plan_log_rotation(log, size, siblings, options_.policy, clock_.system_now());
  if (!plan.rotate) return Status::Ok();
  std::error_code ec;
  for (const auto& f : plan.remove) {
    if (!fs::remove(f, ec) && ec) return fs_error("remove old log " + f, ec);
  }
  for (const auto& f : plan.compress) {
    if (Status s = gzip_file(f); !s.ok()) return s.Wrap("rotate " + log);
  }
  fs::rename(log, plan.rotated_to, ec);
  if (ec) return fs_error("rotate log " + log + " to " + plan.rotated_to, ec);
  if (Status s = runtime_.reopen_container_log(id); !s.ok()) {
    // Put the log back so that the next round tries again; the runtime still writes to
    // the renamed file until it reopens.
    fs::rename(plan.rotated_to, log, ec);
    if (ec) {
      KLOG(ERROR, "Failed to rename rotated log back")
          .kv("rotatedLog", plan.rotated_to)
          .kv("log", log)
          .kv("err", ec.message());
    }
    return s.Wrap("reopen container log " + id);
  }
  KLOGV(2, "Rotated container log").kv("containerID", id).kv("log", log).kv("size", size);
  return Status::Ok();
}

Status LogManager::remove_dangling_symlinks(const std::set<std::string>& keep) {
  std::vector<std::string> errors;
  for (const auto& path : list_directory(containers_directory())) {
    if (path.size() < 4 || path.compare(path.size() - 4, 4, ".log") != 0) continue;
    std::error_code ec;
    if (!fs::is_symlink(fs::symlink_status(path, ec))) continue;
    if (fs::exists(path, ec)) continue;  // the target is there
    // A container that is not exited may be between the rename and the reopen of a
    // rotation: its link dangles for a moment only.
    if (keep.count(path) != 0) continue;
    if (!fs::remove(path, ec) && ec) {
      errors.push_back("remove dangling symlink " + path + ": " + ec.message());
    } else {
      KLOGV(4, "Removed dangling container log symlink").kv("path", path);
    }
  }
  return join_errors(errors);
}

Status LogManager::run_once() {
  std::lock_guard lock(mu_);
  auto containers = runtime_.list_containers();
  if (!containers.ok()) return containers.status().Wrap("container logs: list containers");
  std::vector<std::string> errors;
  std::set<std::string> keep;
  for (const auto& c : *containers) {
    if (!created_by_kubelet(c.labels)) continue;
    const std::string link = symlink_for(c.labels, c.metadata.name, c.id);
    if (c.state != runtime::ContainerState::kExited && !link.empty()) keep.insert(link);
    // Only running containers write: an exited one keeps its last log as it is.
    if (c.state != runtime::ContainerState::kRunning) continue;
    auto st = runtime_.container_status(c.id);
    if (!st.ok()) {
      errors.push_back(st.error());
      continue;
    }
    const std::string& log = st->log_path;
    if (log.empty()) continue;
    if (Status s = rotate_if_full(c.id, log); !s.ok()) errors.push_back(s.message());
    std::error_code ec;
    if (!link.empty() && fs::exists(log, ec)) {
      if (Status s = ensure_symlink(link, log); !s.ok()) errors.push_back(s.message());
    }
  }
  if (Status s = remove_dangling_symlinks(keep); !s.ok()) errors.push_back(s.message());
  return join_errors(errors);
}

Status LogManager::clean(const std::string& container_id) {
  std::lock_guard lock(mu_);
  auto st = runtime_.container_status(container_id);
  if (!st.ok()) return st.status().Wrap("clean container logs");
  std::vector<std::string> errors;
  std::error_code ec;
  const std::string& log = st->log_path;
  if (!log.empty()) {
    for (const auto& f : list_directory(fs::path(log).parent_path())) {
      if (f.compare(0, log.size(), log) != 0) continue;  // "<log>*", as upstream globs
      if (!fs::remove(f, ec) && ec) {
        errors.push_back("remove container " + container_id + " log " + f + ": " + ec.message());
      }
    }
  }
  const std::string link = symlink_for(st->labels, st->metadata.name, container_id);
  if (!link.empty() && !fs::remove(link, ec) && ec) {
    errors.push_back("remove container " + container_id + " log symlink " + link + ": " +
                     ec.message());
  }
  return join_errors(errors);
}

}  // namespace knode::kubelet
