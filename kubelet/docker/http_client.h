// HTTP/1.1 over dockerd's unix socket, with a deadline on every call: a whole answer
// (request), an answer's body as it arrives, chunked or not (stream: the logs endpoint),
// and a hijacked connection after the answer's head (hijack: exec's output, which
// dockerd sends as raw bytes on the connection after "101 UPGRADED").
//
// One connection per call, on a private io_context the calling thread drives, so calls
// from several threads never share state and a call ends by its deadline whatever
// dockerd does. Errors carry runtime.h's codes: ECONNREFUSED when nothing listens on the
// socket (or it does not exist), ETIMEDOUT at the deadline, ECANCELED when a Cancel
// fired, EIO for a broken connection or an answer that is not HTTP.
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "knode/blocking_io.h"
#include "knode/status.h"

namespace boost::asio {
class io_context;
}

namespace knode::docker {

using SteadyTime = std::chrono::steady_clock::time_point;
using Deadline = std::optional<SteadyTime>;  // nullopt: none

// "unix:///var/run/docker.sock" and "/var/run/docker.sock" name the same socket; other
// schemes (tcp://, npipe://, ssh://) and relative paths are EINVAL.
Result<std::string> socket_path(const std::string& endpoint);

struct HttpRequest {
  std::string method = "GET";
  std::string target;  // "/v1.41/containers/json?all=1"
  std::string body;    // sent as application/json when not empty
  std::vector<std::pair<std::string, std::string>> headers;
};

struct HttpResponse {
  int status = 0;
  std::string reason;        // "Not Found"
  std::string content_type;  // "application/json"
  std::string body;          // request(): the whole body; stream()/hijack(): empty
};

// A hijacked connection handed to the caller: after a 101 (or 200) `fd` is a blocking
// socket both ways (the caller closes it) and `ahead` what came after the head; for any
// other answer fd is -1 and head holds the whole answer.
struct Hijacked {
  HttpResponse head;
  int fd = -1;
  std::string ahead;
};

// Ends a stream() or hijack() in progress from another thread (a log copier whose
// container went away). Once cancelled it stays so.
using Cancel = knode::Cancel;

// Receives body bytes; returning false ends the call (successfully) at once.
using OnData = std::function<bool(std::string_view)>;

class UnixHttpClient {
 public:
  explicit UnixHttpClient(std::string socket_path, size_t max_body_bytes = 64u << 20)
      : path_(std::move(socket_path)), max_body_(max_body_bytes) {}

  const std::string& path() const { return path_; }

  // The whole answer; a body beyond max_body_bytes is EIO.
  Result<HttpResponse> request(const HttpRequest& req, Deadline deadline) const;

  // The answer's head, then its body piece by piece through on_data (chunked encoding
  // removed) until it ends, on_data says stop, the deadline passes or cancel fires. An
  // answer that is not 2xx is read whole instead and returned with its body, without
  // calling on_data.
  Result<HttpResponse> stream(const HttpRequest& req, Deadline deadline, const OnData& on_data,
                              Cancel* cancel = nullptr) const;

  // Sends req with "Connection: Upgrade" and "Upgrade: tcp"; after a 101 (or a 200: older
  // daemons hijack without upgrading) every byte the connection carries goes to on_data
  // until dockerd closes it. Other answers are returned whole, as stream() does.
  Result<HttpResponse> hijack(const HttpRequest& req, Deadline deadline, const OnData& on_data,
                              Cancel* cancel = nullptr) const;

  // As hijack(), but the connection is the caller's once upgraded (interactive exec and
  // attach: stdin written while output is read). The deadline bounds the request only.
  Result<Hijacked> hijack_connection(const HttpRequest& req, Deadline deadline) const;

 private:
  std::string path_;
  size_t max_body_;
};

// Percent-encodes a query value (RFC 3986 unreserved characters stay).
std::string query_escape(std::string_view s);
// Percent-encodes a path segment that may hold '/' and ':' (image references).
std::string path_escape(std::string_view s);

}  // namespace knode::docker
