#include "prober/text.h"

#include <cctype>
#include <cstdio>
#include <cstring>

namespace knode::kubelet::prober {

std::string go_quote(std::string_view s) {
  std::string out = "\"";
  for (const unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[5];
          std::snprintf(buf, sizeof(buf), "\\x%02x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);  // UTF-8 passes through, as Go prints printable runes
        }
    }
  }
  out += '"';
  return out;
}

std::string go_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i != 0) out += ' ';
    out += items[i];
  }
  out += ']';
  return out;
}

std::string go_duration(std::chrono::seconds d) {
  long long s = d.count();
  if (s == 0) return "0s";
  std::string out;
  if (s < 0) {
    out = "-";
    s = -s;
  }
  const long long h = s / 3600, m = (s % 3600) / 60, sec = s % 60;
  if (h > 0)
    return out + std::to_string(h) + "h" + std::to_string(m) + "m" + std::to_string(sec) + "s";
  if (m > 0) return out + std::to_string(m) + "m" + std::to_string(sec) + "s";
  return out + std::to_string(sec) + "s";
}

std::string errno_text(int err) {
  std::string text = std::strerror(err);
  if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  return text;
}

std::string join_host_port(std::string_view host, int port) {
  std::string out;
  if (host.find(':') != std::string_view::npos) {
    out = "[" + std::string(host) + "]";
  } else {
    out = std::string(host);
  }
  return out + ":" + std::to_string(port);
}

std::string format_pod(std::string_view name, std::string_view ns, std::string_view uid) {
  return std::string(name) + "_" + std::string(ns) + "(" + std::string(uid) + ")";
}

}  // namespace knode::kubelet::prober
