// Leveled, structured logging: one line per event, key=value fields, to stderr.
//   KLOG(INFO, "sync done").kv("services", n).kv("took", ms);
// Levels follow klog: errors and warnings always print; info lines carry a verbosity
// (KLOGV(2, ...)) and print when -v is at least that.
#pragma once

#include <sstream>
#include <string>
#include <string_view>

namespace knode::log {

enum class Severity { kInfo, kWarning, kError };

void set_verbosity(int v);
int verbosity();
bool enabled(int v);

class Line {
 public:
  Line(Severity severity, int verbosity, const char* file, int line, std::string_view msg);
  ~Line();
  Line(const Line&) = delete;
  Line& operator=(const Line&) = delete;

  template <typename T>
  Line& kv(std::string_view key, const T& value) {
    if (active_) {
      std::ostringstream os;
      os << value;
      append(key, os.str());
    }
    return *this;
  }
  Line& kv(std::string_view key, const std::string& value) {
    if (active_) append(key, value);
    return *this;
  }
  Line& kv(std::string_view key, const char* value) {
    if (active_) append(key, value);
    return *this;
  }

 private:
  void append(std::string_view key, std::string_view value);
  bool active_;
  std::string buf_;
};

}  // namespace knode::log

#define KLOG_INFO ::knode::log::Severity::kInfo
#define KLOG_WARNING ::knode::log::Severity::kWarning
#define KLOG_ERROR ::knode::log::Severity::kError
#define KLOG(sev, msg) ::knode::log::Line(KLOG_##sev, 0, __FILE__, __LINE__, (msg))
#define KLOGV(v, msg) ::knode::log::Line(KLOG_INFO, (v), __FILE__, __LINE__, (msg))
