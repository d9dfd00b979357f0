#include "docker/log_copier.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "docker/cri_log.h"
#include "knode/log.h"

namespace knode::docker {

namespace {

constexpr mode_t kLogMode = 0640;  // as containerd creates container logs
constexpr size_t kTailBytes = 64 * 1024;

Result<int> open_log(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, kLogMode);
  if (fd < 0) return Status::FromErrno("open container log " + path, errno);
  return fd;
}

std::string read_tail(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  struct stat st {};
  std::string out;
  if (::fstat(fd, &st) == 0 && st.st_size > 0) {
    const off_t from = st.st_size > static_cast<off_t>(kTailBytes) ? st.st_size - kTailBytes : 0;
    out.resize(static_cast<size_t>(st.st_size - from));
    ssize_t n = ::pread(fd, out.data(), out.size(), from);
    out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  }
  ::close(fd);
  return out;
}

}  // namespace

runtime::UnixNanos resume_point(const std::string& path) {
  if (auto t = last_cri_time(read_tail(path))) return *t;
  // The live file is empty (just rotated) or missing: the newest rotated one, whose
  // suffix is a timestamp, so the greatest name is the newest. Compressed ones are older.
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  const std::string prefix = path.substr(slash == std::string::npos ? 0 : slash + 1) + ".";
  std::vector<std::string> rotated;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name.starts_with(prefix) && !name.ends_with(".gz") && !name.ends_with(".tmp")) {
        rotated.push_back(std::move(name));
      }
    }
    ::closedir(d);
  }
  std::sort(rotated.rbegin(), rotated.rend());
  for (const auto& name : rotated) {
    if (auto t = last_cri_time(read_tail(dir + "/" + name))) return *t;
  }
  return 0;
}

Result<std::unique_ptr<LogCopier>> LogCopier::start(Options options, LogSource source,
                                                    RunningCheck running) {
  auto fd = open_log(options.path);
  if (!fd.ok()) return fd.status();
  std::unique_ptr<LogCopier> c(
      new LogCopier(std::move(options), std::move(source), std::move(running), *fd));
  c->thread_ = std::thread([p = c.get()] { p->run(); });
  return c;
}

LogCopier::LogCopier(Options options, LogSource source, RunningCheck running, int fd)
    : options_(std::move(options)),
      source_(std::move(source)),
      running_(std::move(running)),
      fd_(fd) {}

LogCopier::~LogCopier() {
  stop();
  std::lock_guard lock(mu_);
  if (fd_ >= 0) ::close(fd_);
}

void LogCopier::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  cancel_.cancel();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

bool LogCopier::done() const {
  std::lock_guard lock(mu_);
  return done_;
}

bool LogCopier::wait_done(std::chrono::milliseconds max) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, max, [this] { return done_; });
}

Status LogCopier::reopen() {
  auto fd = open_log(options_.path);
  if (!fd.ok()) return fd.status();
  std::lock_guard lock(mu_);
  if (fd_ >= 0) ::close(fd_);
  fd_ = *fd;
  return Status::Ok();
}

Status LogCopier::write(const std::string& line) {
  std::lock_guard lock(mu_);
  size_t off = 0;
  while (off < line.size()) {
    ssize_t n = ::write(fd_, line.data() + off, line.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      // A full disk must not end the copy: later lines may fit again. Say it once.
      if (!write_failed_) {
        KLOG(WARNING, "cannot write container log")
            .kv("path", options_.path)
            .kv("container", options_.container_id.substr(0, 12))
            .kv("err", std::strerror(err));
      }
      write_failed_ = true;
      return Status::Ok();
    }
    off += static_cast<size_t>(n);
  }
  write_failed_ = false;
  return Status::Ok();
}

bool LogCopier::wait_retry() {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, options_.retry, [this] { return stopping_; });
  return !stopping_;
}

void LogCopier::run() {
  runtime::UnixNanos last = options_.after;
  bool drained_once_more = false;
  for (;;) {
    CriLogConverter conv(options_.tty, last);
    auto on_line = [this](const LogEntry&, const std::string& line) { return write(line); };
    Status converted;
    Status s = source_(
        last,
        [&](std::string_view data) {
          converted = conv.feed(data, on_line);
          return converted.ok();
        },
        cancel_);
    if (converted.ok()) converted = conv.finish(on_line);
    last = conv.last_time();
    if (cancel_.cancelled()) break;
    if (!converted.ok()) {
      KLOG(WARNING, "container log copy: unreadable answer from dockerd")
          .kv("container", options_.container_id.substr(0, 12))
          .kv("err", converted.message());
    }
    auto running = running_();
    if (!running.ok() && running.status().error_number() == ENOENT) break;
    if (running.ok() && !*running) {
      // Stopped: the answer held everything, unless it broke off; then ask once more.
      if (s.ok() && converted.ok()) break;
      if (drained_once_more) break;
      drained_once_more = true;
      continue;
    }
    if (!s.ok()) {
      KLOGV(2, "container log copy interrupted; resuming")
          .kv("container", options_.container_id.substr(0, 12))
          .kv("err", s.message());
    }
    if (!wait_retry()) break;
  }
  {
    std::lock_guard lock(mu_);
    done_ = true;
  }
  cv_.notify_all();
}

}  // namespace knode::docker
