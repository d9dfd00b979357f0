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

// The certificate a TLS client presented (servers with a client CA ask for one).
struct PeerCertificate {
  // It chains to the server's client CA and may be used for client authentication.
  bool verified = false;
  std::string verify_error;  // OpenSSL's reason when not verified
  std::string common_name;
  std::vector<std::string> organizations;  // the subject's O= values, in order
};

struct Request {
  // Exact-path handlers (HttpServer::handle) only see "GET" and "HEAD"; prefix handlers
  // (handle_prefix) see every method.
  std::string method;
  std::string target;  // as sent: path plus optional "?query"
  std::string path;
  std::string query;  // without the '?'
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string remote_address;  // "127.0.0.1:54321"
  bool tls = false;
  // Over TLS with a client CA: what the client presented, verified or not; nullopt when
  // it presented nothing.
  std::optional<PeerCertificate> peer_certificate;

  // First header with this name, compared case-insensitively.
  std::optional<std::string_view> header(std::string_view name) const;
  // The query's values for `name` in order, percent-decoded ('+' is a space).
  std::vector<std::string> query_values(std::string_view name) const;
  // The first of them.
  std::optional<std::string> query_value(std::string_view name) const;
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

// "a=1&b=x%20y&b=z" -> {{"a","1"},{"b","x y"},{"b","z"}}: names and values
// percent-decoded, '+' as a space (application/x-www-form-urlencoded, as Go's url.ParseQuery).
std::vector<std::pair<std::string, std::string>> parse_query(std::string_view query);

// Percent-decodes; '+' becomes a space when plus_is_space. Bad escapes stay as they are.
std::string url_decode(std::string_view s, bool plus_is_space = false);

}  // namespace knode::http
