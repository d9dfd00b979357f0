#include "docker/cri_log.h"

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>

namespace knode::docker {

namespace {

using namespace std::chrono;

bool digits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

Status bad_time(std::string_view text) {
  return Status::Error("docker: not an RFC 3339 time: \"" + std::string(text.substr(0, 64)) + "\"",
                       EINVAL);
}

}  // namespace

Result<runtime::UnixNanos> parse_time(std::string_view t) {
  // 2006-01-02T15:04:05[.999999999](Z|+07:00)
  int y, mo, d, h, mi, s;
  if (!digits(t, 0, 4, &y) || t.size() < 20 || t[4] != '-' || !digits(t, 5, 2, &mo) ||
      t[7] != '-' || !digits(t, 8, 2, &d) || (t[10] != 'T' && t[10] != 't') ||
      !digits(t, 11, 2, &h) || t[13] != ':' || !digits(t, 14, 2, &mi) || t[16] != ':' ||
      !digits(t, 17, 2, &s)) {
    return bad_time(t);
  }
  size_t pos = 19;
  int64_t frac = 0;
  if (pos < t.size() && t[pos] == '.') {
    ++pos;
    int n = 0;
    while (pos < t.size() && t[pos] >= '0' && t[pos] <= '9') {
      if (n < 9) {
        frac = frac * 10 + (t[pos] - '0');
        ++n;
      }
      ++pos;
    }
    if (n == 0) return bad_time(t);
    for (; n < 9; ++n) frac *= 10;
  }
  int64_t offset = 0;
  if (pos < t.size() && (t[pos] == 'Z' || t[pos] == 'z')) {
    ++pos;
  } else if (pos < t.size() && (t[pos] == '+' || t[pos] == '-')) {
    int oh, om;
    if (!digits(t, pos + 1, 2, &oh) || pos + 3 >= t.size() || t[pos + 3] != ':' ||
        !digits(t, pos + 4, 2, &om)) {
      return bad_time(t);
    }
    offset = (t[pos] == '+' ? 1 : -1) * (int64_t{oh} * 3600 + om * 60);
    pos += 6;
  } else {
    return bad_time(t);
  }
  if (pos != t.size()) return bad_time(t);
  if (y <= 1) return runtime::UnixNanos{0};  // Go's zero time: unset
  const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)},
                           day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || h > 23 || mi > 59 || s > 60) return bad_time(t);
  const int64_t secs =
      int64_t{sys_days(ymd).time_since_epoch().count()} * 86400 + h * 3600 + mi * 60 + s - offset;
  // Nanoseconds in int64 span the years 1677 to 2262: a time outside (year 2, year 9999)
  // is an error rather than a signed overflow. Before 1970 the fraction is borrowed from
  // the second, so that the earliest time that fits (INT64_MIN) is not refused.
  int64_t whole = secs, part = frac, nanos = 0;
  if (whole < 0 && part > 0) {
    ++whole;
    part -= 1'000'000'000;
  }
  if (__builtin_mul_overflow(whole, int64_t{1'000'000'000}, &nanos) ||
      __builtin_add_overflow(nanos, part, &nanos)) {
    return Status::Error("docker: time out of range: \"" + std::string(t.substr(0, 64)) + "\"",
                         ERANGE);
  }
  return nanos;
}

std::string format_time(runtime::UnixNanos t) {
  const sys_time<nanoseconds> tp{nanoseconds(t)};
  const auto day_start = floor<days>(tp);
  const year_month_day ymd(day_start);
  const hh_mm_ss<nanoseconds> hms(tp - day_start);
  char buf[64];
  int n =
      std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d", static_cast<int>(ymd.year()),
                    static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                    static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                    static_cast<int>(hms.seconds().count()));
  std::string out(buf, static_cast<size_t>(n));
  int64_t frac = hms.subseconds().count();
  if (frac != 0) {
    char f[16];
    std::snprintf(f, sizeof f, ".%09lld", static_cast<long long>(frac));
    std::string fs(f);
    while (fs.back() == '0') fs.pop_back();
    out += fs;
  }
  out += 'Z';
  return out;
}

std::string since_param(runtime::UnixNanos t) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%lld.%09lld", static_cast<long long>(t / 1'000'000'000),
                static_cast<long long>(t % 1'000'000'000));
  return buf;
}

Result<LogEntry> parse_log_message(StreamType stream, std::string_view payload) {
  const size_t sp = payload.find(' ');
  // A message without text (an empty partial) still carries "<time> ".
  const std::string_view stamp = payload.substr(0, sp);
  auto t = parse_time(stamp);
  if (!t.ok()) return t.status().Wrap("docker log message");
  LogEntry e;
  e.time = *t;
  e.is_stderr = stream == StreamType::kStderr;
  e.text = sp == std::string_view::npos ? std::string_view() : payload.substr(sp + 1);
  if (!e.text.empty() && e.text.back() == '\n') {
    e.text.remove_suffix(1);
  } else {
    e.partial = true;
  }
  return e;
}

std::string cri_log_line(const LogEntry& e) {
  std::string line = format_time(e.time);
  line += e.is_stderr ? " stderr " : " stdout ";
  line += e.partial ? "P " : "F ";
  line += e.text;
  line += '\n';
  return line;
}

std::optional<runtime::UnixNanos> last_cri_time(std::string_view text) {
  // The last line that ends with a newline; a line cut short has no trustworthy time.
  while (!text.empty()) {
    if (text.back() != '\n') {
      const size_t nl = text.rfind('\n');
      if (nl == std::string_view::npos) return std::nullopt;
      text = text.substr(0, nl + 1);
    }
    text.remove_suffix(1);
    const size_t start = text.rfind('\n');
    const std::string_view line = start == std::string_view::npos ? text : text.substr(start + 1);
    auto t = parse_time(line.substr(0, line.find(' ')));
    if (t.ok()) return *t;
    text = start == std::string_view::npos ? std::string_view() : text.substr(0, start + 1);
  }
  return std::nullopt;
}

// ---- the converter ----

Status CriLogConverter::emit(StreamType stream, std::string_view payload, const OnLine& on_line) {
  if (stream == StreamType::kSystemErr) {
    return Status::Error("docker logs: " + std::string(payload), EIO);
  }
  auto e = parse_log_message(stream, payload);
  if (!e.ok()) return e.status();
  if (e->time != 0 && e->time <= after_) return Status::Ok();  // written before
  if (e->time > last_) last_ = e->time;
  return on_line(*e, cri_log_line(*e));
}

Status CriLogConverter::feed(std::string_view data, const OnLine& on_line) {
  if (!tty_) {
    Status failed;
    Status s = demux_.feed(data, [&](StreamType st, std::string_view payload) {
      failed = emit(st, payload, on_line);
      return failed.ok();
    });
    return s.ok() ? failed : s;
  }
  pending_.append(data);
  size_t start = 0;
  for (size_t nl = pending_.find('\n'); nl != std::string::npos; nl = pending_.find('\n', start)) {
    Status s = emit(StreamType::kStdout, std::string_view(pending_).substr(start, nl + 1 - start),
                    on_line);
    start = nl + 1;
    if (!s.ok()) {
      pending_.erase(0, start);
      return s;
    }
  }
  pending_.erase(0, start);
  return Status::Ok();
}

Status CriLogConverter::finish(const OnLine& on_line) {
  if (!tty_ || pending_.empty()) return Status::Ok();
  std::string rest = std::move(pending_);
  pending_.clear();
  return emit(StreamType::kStdout, rest, on_line);
}

}  // namespace knode::docker
