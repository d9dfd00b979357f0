// The HTTP GET that upstream's httpGet probes and lifecycle hooks make with Go's net/http
// (pkg/probe/http): HTTP/1.1, one connection per request (keep-alives off), HTTPS without
// verifying the certificate, redirects followed on the same host only and at most 10 of
// them, at most 10 KiB of the body read. Errors read like Go's url.Error, e.g.
//   Get "http://10.244.0.5:8080/healthz": dial tcp 10.244.0.5:8080: connect: connection refused
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "knode/api/pod.h"
#include "knode/status.h"

namespace boost::asio::ssl {
class context;
}

namespace knode::kubelet::prober {

// Upstream reads no more of a probe's or hook's answer than this.
inline constexpr std::size_t kMaxBodyBytes = 10 * 1024;

struct Url {
  std::string scheme;  // "http" or "https"
  std::string host;    // a name or an IP; an IPv6 address without brackets
  int port = 0;
  std::string target;             // path and query, starting with "/"
  std::string host_port() const;  // "10.0.0.1:8080", "[fd00::1]:8080"
  std::string str() const;        // "http://10.0.0.1:8080/healthz"
};
// An absolute http(s) URL (the port defaults by scheme); nullopt for anything else.
std::optional<Url> parse_url(std::string_view text);
// A Location header resolved against the URL it answered (RFC 3986 section 5.2).
std::optional<Url> resolve_reference(const Url& base, std::string_view ref);

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  Url url;
  // Sent as given, in order, after Host. A "User-Agent" is sent once (its first value),
  // and not at all when empty, as Go does.
  Headers headers;
  std::string host;  // the Host header
};

// The request upstream builds for an HTTPGetAction (NewRequestForHTTPGetAction): scheme
// (default http, any case), host (default `pod_ip`), `port` (already resolved), path; the
// action's headers with names canonicalized as Go does; User-Agent `user_agent` and
// Accept "*/*" unless the action sets them (an empty Accept removes it); the Host header
// from a "Host" entry, else host:port.
HttpRequest http_get_request(const api::HTTPGetAction& action, const std::string& pod_ip, int port,
                             std::string_view user_agent);

// Go's http.CanonicalHeaderKey: "x-request-id" -> "X-Request-Id"; a name with bytes that
// cannot be in a header name is returned unchanged.
std::string canonical_header_key(std::string_view name);

struct HttpResponse {
  // Not ok when no complete answer came: no status line, or the body broke off before
  // its end or the 10 KiB limit. The message is Go's.
  Status error;
  // The error is Go's "http: server gave HTTP response to HTTPS client".
  bool https_to_http_server = false;
  int status = 0;
  std::string body;  // at most kMaxBodyBytes
  bool truncated = false;
  // A redirect to another host is not followed: status and body are that redirect's.
  bool redirect_not_followed = false;
  Url url;  // the URL that gave this answer
};

class HttpClient {
 public:
  HttpClient();
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // GET, following redirects, all of it (redirects and body) by `deadline` (none when
  // nullopt). A stop request cancels it. Thread-safe.
  HttpResponse get(const HttpRequest& request,
                   std::optional<std::chrono::steady_clock::time_point> deadline,
                   std::stop_token stop = {}) const;

 private:
  std::unique_ptr<boost::asio::ssl::context> tls_;
};

}  // namespace knode::kubelet::prober
