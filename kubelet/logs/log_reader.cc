#include "logs/log_reader.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>

#include "knode/log.h"

namespace knode::kubelet {
namespace {

bool digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

int64_t number(std::string_view s) {
  int64_t v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

// RFC 3339 with an optional fraction of up to 9 digits: "2016-10-06T00:17:09.669794202Z"
// or "...+02:00". Go's RFC3339NanoLenient layout, which is what upstream parses with.
bool parse_time(std::string_view t, int64_t* unix_nanos, std::string* fixed) {
  if (t.size() < 20 || t[4] != '-' || t[7] != '-' || t[10] != 'T' || t[13] != ':' || t[16] != ':')
    return false;
  std::string_view y = t.substr(0, 4), mo = t.substr(5, 2), d = t.substr(8, 2), h = t.substr(11, 2),
                   mi = t.substr(14, 2), s = t.substr(17, 2);
  if (!digits(y) || !digits(mo) || !digits(d) || !digits(h) || !digits(mi) || !digits(s))
    return false;
  std::size_t pos = 19;
  std::string frac;
  if (t[pos] == '.') {
    std::size_t end = pos + 1;
    while (end < t.size() && t[end] >= '0' && t[end] <= '9') ++end;
    frac = std::string(t.substr(pos + 1, end - pos - 1));
    if (frac.empty() || frac.size() > 9) return false;
    pos = end;
  }
  int64_t offset_seconds = 0;
  std::string zone;
  std::string_view z = t.substr(pos);
  if (z == "Z") {
    zone = "Z";
  } else if (z.size() == 6 && (z[0] == '+' || z[0] == '-') && z[3] == ':' &&
             digits(z.substr(1, 2)) && digits(z.substr(4, 2))) {
    offset_seconds =
        (number(z.substr(1, 2)) * 3600 + number(z.substr(4, 2)) * 60) * (z[0] == '-' ? -1 : 1);
    zone = offset_seconds == 0 ? "Z" : std::string(z);
  } else {
    return false;
  }
  const int64_t month = number(mo), day = number(d);
  if (month < 1 || month > 12 || day < 1 || day > 31 || number(h) > 23 || number(mi) > 59 ||
      number(s) > 59) {
    return false;
  }
  const int64_t secs = days_from_civil(number(y), month, day) * 86400 + number(h) * 3600 +
                       number(mi) * 60 + number(s) - offset_seconds;
  frac.resize(9, '0');
  *unix_nanos = secs * 1000000000 + number(frac);
  // Go's RFC3339NanoFixed: always nine fraction digits, the same zone.
  *fixed = std::string(t.substr(0, 19)) + "." + frac + zone;
  return true;
}

// Buffered lines from a file descriptor; a last line without its newline stays pending
// until more arrives (following) or the caller takes it as it is.
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) {}

  // A complete line (with its '\n'), or false at the end of what the file holds now.
  Result<bool> next(std::string* line) {
    for (;;) {
      auto nl = buf_.find('\n', pos_);
      if (nl != std::string::npos) {
        line->assign(buf_, pos_, nl + 1 - pos_);
        pos_ = nl + 1;
        return true;
      }
      if (pos_ > 0) {
        buf_.erase(0, pos_);
        pos_ = 0;
      }
      char tmp[64 * 1024];
      ssize_t n = ::read(fd_, tmp, sizeof tmp);
      if (n < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno("read", errno);
      }
      if (n == 0) return false;
      buf_.append(tmp, static_cast<std::size_t>(n));
    }
  }
  // The incomplete last line, taken.
  std::string take_partial() {
    std::string out = buf_.substr(pos_);
    buf_.clear();
    pos_ = 0;
    return out;
  }

 private:
  int fd_;
  std::string buf_;
  std::size_t pos_ = 0;
};

// Where the file's last n lines start: upstream's findTailLineStartIndex (a line is what
// ends with '\n'; n < 0 is the whole file).
Result<off_t> tail_start(int fd, int64_t n) {
  if (n < 0) return off_t{0};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Status::FromErrno("stat", errno);
  constexpr off_t kBlock = 1024;
  off_t right = st.st_size, left = 0;
  int64_t count = 0;
  std::string block;
  while (right > 0 && count <= n) {
    left = std::max<off_t>(0, right - kBlock);
    block.resize(static_cast<std::size_t>(right - left));
    if (::pread(fd, block.data(), block.size(), left) != static_cast<ssize_t>(block.size())) {
      return Status::FromErrno("read", errno == 0 ? EIO : errno);
    }
    for (char c : block) count += c == '\n';
    right = left;
  }
  // Past the extra lines of the first block read.
  std::size_t i = 0;
  for (; count > n; --count) {
    i = block.find('\n', i) + 1;
  }
  return left + static_cast<off_t>(i);
}

// The output side: since, timestamps, the stream, limitBytes; pieces batched for the sink.
class LogWriter {
 public:
  LogWriter(const LogReadOptions& o, const LogSink& sink)
      : o_(o),
        sink_(sink),
        remain_(o.limit_bytes ? *o.limit_bytes : std::numeric_limits<int64_t>::max()) {}

  enum class Outcome { kOk, kLimit, kStopped };

  Outcome write(const CriLogLine& m, bool prefix) {
    if (m.unix_nanos < o_.since_unix_nanos) return Outcome::kOk;
    if (m.stderr_ ? !o_.stderr_ : !o_.stdout_) return Outcome::kOk;
    std::string line;
    if (o_.timestamps && prefix) line = m.timestamp + " ";
    line += m.content;
    if (static_cast<int64_t>(line.size()) > remain_) line.resize(static_cast<std::size_t>(remain_));
    remain_ -= static_cast<int64_t>(line.size());
    pending_ += line;
    if (pending_.size() >= kBatch && !flush()) return Outcome::kStopped;
    return remain_ <= 0 ? Outcome::kLimit : Outcome::kOk;
  }
  bool flush() {
    if (pending_.empty()) return true;
    bool ok = sink_(pending_);
    pending_.clear();
    return ok;
  }

 private:
  static constexpr std::size_t kBatch = 32 * 1024;
  const LogReadOptions& o_;
  const LogSink& sink_;
  int64_t remain_;
  std::string pending_;
};

struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  void reset(int f = -1) {
    if (fd >= 0) ::close(fd);
    fd = f;
  }
};

enum class Wait { kChanged, kStop };

// Waits for an event in the log's directory, the force-check period, or the stop fd.
Result<Wait> wait_for_change(int inotify_fd, const LogFollow& f) {
  pollfd fds[2] = {{inotify_fd, POLLIN, 0}, {f.stop_fd, POLLIN, 0}};
  int n = ::poll(fds, f.stop_fd >= 0 ? 2 : 1, static_cast<int>(f.force_check.count()));
  if (n < 0 && errno != EINTR) return Status::FromErrno("wait for the log to change", errno);
  if (n > 0 && f.stop_fd >= 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR)))
    return Wait::kStop;
  if (n > 0 && (fds[0].revents & POLLIN)) {
    alignas(inotify_event) char buf[8192];
    while (::read(inotify_fd, buf, sizeof buf) > 0) {
    }  // the events only wake us; what changed is read from the files
  }
  return Wait::kChanged;
}

}  // namespace

bool parse_cri_log_line(std::string_view line, CriLogLine* out) {
  auto sp = line.find(' ');
  if (sp == std::string_view::npos) return false;
  if (!parse_time(line.substr(0, sp), &out->unix_nanos, &out->timestamp)) return false;
  line.remove_prefix(sp + 1);
  sp = line.find(' ');
  if (sp == std::string_view::npos) return false;
  std::string_view stream = line.substr(0, sp);
  if (stream == "stdout") {
    out->stderr_ = false;
  } else if (stream == "stderr") {
    out->stderr_ = true;
  } else {
    return false;
  }
  line.remove_prefix(sp + 1);
  sp = line.find(' ');
  if (sp == std::string_view::npos) return false;
  std::string_view tags = line.substr(0, sp);
  out->partial = tags.substr(0, tags.find(':')) == "P";
  out->content = line.substr(sp + 1);
  if (out->partial && !out->content.empty() && out->content.back() == '\n')
    out->content.remove_suffix(1);
  return true;
}

Status read_container_log(const std::string& path_in, const LogReadOptions& o, const LogSink& sink,
                          const LogFollow* follow) {
  std::error_code ec;
  const std::string path = std::filesystem::canonical(path_in, ec).string();
  if (ec)
    return Status::Error(
        "failed to try resolving symlinks in path \"" + path_in + "\": " + ec.message(),
        ec.value());
  Fd file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (file.fd < 0) return Status::FromErrno("failed to open log file \"" + path + "\"", errno);
  const int64_t tail = o.tail_lines.value_or(-1);
  auto start = tail_start(file.fd, tail);
  if (!start.ok())
    return start.status().Wrap("failed to tail " + std::to_string(tail) + " lines of log file \"" +
                               path + "\"");
  if (::lseek(file.fd, *start, SEEK_SET) < 0)
    return Status::FromErrno("seek in log file \"" + path + "\"", errno);

  const bool following = o.follow && follow != nullptr;
  const bool limited = o.tail_lines && !o.follow;
  int64_t limited_left = tail;
  auto reader = std::make_unique<LineReader>(file.fd);
  LogWriter writer(o, sink);
  Fd watch;
  const std::string dir = std::filesystem::path(path).parent_path().string();
  bool found = true, stop = false, new_line = true;
  std::string line;
  CriLogLine msg;
  for (;;) {
    if (stop || (limited && limited_left == 0)) break;
    auto got = reader->next(&line);
    if (!got.ok()) return got.status().Wrap("failed to read log file \"" + path + "\"");
    if (!*got) {
      if (following) {
        if (!found) break;
        if (!writer.flush()) return Status::Ok();
        if (watch.fd < 0) {
          watch.reset(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
          if (watch.fd < 0) return Status::FromErrno("failed to create an inotify watch", errno);
          const uint32_t mask =
              IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ATTRIB;
          if (::inotify_add_watch(watch.fd, dir.c_str(), mask) < 0) {
            return Status::FromErrno("failed to watch directory \"" + dir + "\"", errno);
          }
          continue;  // whatever came before the watch existed
        }
        // Rotated: the path names another file now. The old one is read to its end;
        // go on with the new one. (Checked here, not only on inotify's word: a rotation
        // before the watch existed would otherwise go unseen.)
        if (struct stat now{}, open_now{};
            ::stat(path.c_str(), &now) == 0 && ::fstat(file.fd, &open_now) == 0 &&
            (now.st_ino != open_now.st_ino || now.st_dev != open_now.st_dev)) {
          int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
          if (fd >= 0) {
            file.reset(fd);
            reader = std::make_unique<LineReader>(file.fd);
            continue;
          }
          if (errno != ENOENT)
            return Status::FromErrno("failed to open log file \"" + path + "\"", errno);
        }
        auto running = follow->container_running();
        if (!running.ok()) return running.status();
        if (!*running) {
          found = false;  // one more pass for what it wrote last
          continue;
        }
        auto w = wait_for_change(watch.fd, *follow);
        if (!w.ok()) return w.status();
        if (*w == Wait::kStop) return Status::Ok();
        continue;
      }
      stop = true;
      line = reader->take_partial();
      if (line.empty()) continue;
    }
    if (!parse_cri_log_line(line, &msg)) {
      KLOGV(2, "skipping a log line that is not in the CRI format")
          .kv("path", path)
          .kv("line", line);
      continue;
    }
    auto out = writer.write(msg, new_line);
    if (out == LogWriter::Outcome::kStopped) return Status::Ok();
    if (out == LogWriter::Outcome::kLimit) break;
    if (limited) --limited_left;
    new_line = msg.content.empty() || msg.content.back() == '\n';
  }
  writer.flush();
  return Status::Ok();
}

}  // namespace knode::kubelet
