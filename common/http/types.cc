#include "knode/http/types.h"

#include <charconv>

#include "knode/net.h"

namespace knode::http {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

}  // namespace

std::optional<std::string_view> Request::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return std::string_view(v);
  }
  return std::nullopt;
}

std::vector<std::string> Request::query_values(std::string_view name) const {
  std::vector<std::string> out;
  for (auto& [k, v] : parse_query(query)) {
    if (k == name) out.push_back(std::move(v));
  }
  return out;
}

std::optional<std::string> Request::query_value(std::string_view name) const {
  for (auto& [k, v] : parse_query(query)) {
    if (k == name) return std::move(v);
  }
  return std::nullopt;
}

std::string url_decode(std::string_view s, bool plus_is_space) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%' && i + 2 < s.size()) {
      int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_is_space && c == '+' ? ' ' : c);
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> parse_query(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) continue;
    auto eq = part.find('=');
    std::string_view k = part.substr(0, eq);
    std::string_view v = eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1);
    out.emplace_back(url_decode(k, true), url_decode(v, true));
  }
  return out;
}

std::string Endpoint::str() const {
  if (address.find(':') != std::string::npos) {
    return "[" + address + "]:" + std::to_string(port);
  }
  return address + ":" + std::to_string(port);
}

Result<Endpoint> parse_bind_address(std::string_view text, uint16_t default_port) {
  const std::string quoted = "bind address \"" + std::string(text) + "\"";
  std::string_view host = text;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return Status::Error(quoted + ": missing ']'");
    host = text.substr(1, close - 1);
    auto rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return Status::Error(quoted + ": expected ':' after ']'");
      port_text = rest.substr(1);
      if (port_text.empty()) return Status::Error(quoted + ": empty port");
    }
  } else if (auto colon = text.find(':');
             colon != std::string_view::npos && text.find(':', colon + 1) == std::string_view::npos) {
    // Exactly one colon: IPv4 (or a name) with a port. More colons: a bare IPv6 address.
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (port_text.empty()) return Status::Error(quoted + ": empty port");
  }

  auto ip = net::IPAddress::Parse(host);
  if (!ip) return Status::Error(quoted + ": \"" + std::string(host) + "\" is not an IP address");

  Endpoint ep{ip->str(), default_port};
  if (!port_text.empty()) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || value > 65535) {
      return Status::Error(quoted + ": port \"" + std::string(port_text) +
                           "\" out of range 0-65535");
    }
    ep.port = static_cast<uint16_t>(value);
  }
  return ep;
}

}  // namespace knode::http
