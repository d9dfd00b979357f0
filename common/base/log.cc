#include "knode/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace knode::log {
namespace {
std::atomic<int> g_verbosity{0};

bool needs_quoting(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v) {
    if (c == ' ' || c == '"' || c == '=' || c == '\n' || c == '\t' || c == '\\') return true;
  }
  return false;
}

void append_quoted(std::string& out, std::string_view v) {
  out += '"';
  for (char c : v) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default: out += c;
    }
  }
  out += '"';
}

const char* basename_of(const char* path) {
  const char* base = path;
  for (const char* p = path; *p; ++p) {
    if (*p == '/') base = p + 1;
  }
  return base;
}
}  // namespace

void set_verbosity(int v) { g_verbosity.store(v, std::memory_order_relaxed); }
int verbosity() { return g_verbosity.load(std::memory_order_relaxed); }
bool enabled(int v) { return v <= verbosity(); }

Line::Line(Severity severity, int v, const char* file, int line, std::string_view msg)
    : active_(severity != Severity::kInfo || enabled(v)) {
  if (!active_) return;
  // klog-like header: I1123 09:04:56.123456 file.cc:42] "message" key=value ...
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::system_clock::to_time_t(now);
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1000000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char head[64];
  char sev = severity == Severity::kInfo ? 'I' : severity == Severity::kWarning ? 'W' : 'E';
  std::snprintf(head, sizeof(head), "%c%02d%02d %02d:%02d:%02d.%06lld ", sev, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(micros));
  buf_.reserve(160);
  buf_ += head;
  buf_ += basename_of(file);
  buf_ += ':';
  buf_ += std::to_string(line);
  buf_ += "] ";
  append_quoted(buf_, msg);
}

void Line::append(std::string_view key, std::string_view value) {
  buf_ += ' ';
  buf_ += key;
  buf_ += '=';
  if (needs_quoting(value)) {
    append_quoted(buf_, value);
  } else {
    buf_ += value;
  }
}

Line::~Line() {
  if (!active_) return;
  buf_ += '\n';
  // One write per line so concurrent lines never interleave.
  ssize_t ignored = ::write(STDERR_FILENO, buf_.data(), buf_.size());
  (void)ignored;
}

}  // namespace knode::log
