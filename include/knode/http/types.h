// Plain values exchanged between the HTTP server and its handlers.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "knode/status.h"

namespace knode::http {

struct Request {
  std::string method;  // "GET" or "HEAD"; handlers never see other methods
  std::string target;  // as sent: path plus optional "?query"
  std::string path;
  std::string query;   // without the '?'
  std::vector<std::pair<std::string, std::string>> headers;
  std::string remote_address;  // "127.0.0.1:54321"

  // First header with this name, compared case-insensitively.
  std::optional<std::string_view> header(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

using Handler = std::function<Response(const Request&)>;

struct Endpoint {
  std::string address;  // "127.0.0.1", "::1"
  uint16_t port = 0;
  // "127.0.0.1:10248" or "[::1]:10248".
  std::string str() const;
};

// Splits "127.0.0.1:10249", "[::1]:10249", "0.0.0.0" or "::" (bare addresses take
// default_port). The address must be an IP literal.
Result<Endpoint> parse_bind_address(std::string_view text, uint16_t default_port);

}  // namespace knode::http
