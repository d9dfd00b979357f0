// An HTTPS client for the kube-apiserver: blocking calls made from the caller's own
// thread (an informer's, a status writer's), each on a private io_context with a
// deadline, so nothing here ever runs on the daemon's event loop.
//
// What client-go does and a node agent needs: mutual TLS or a bearer token (a tokenFile
// reread for each call, so a rotated token is used at once), the server's certificate checked against the CA and the host
// (or tls-server-name), keep-alive connections reused across calls, client-side
// throttling (a token bucket: --kube-api-qps, --kube-api-burst), User-Agent
// "knode/<version>", and a streaming GET for watches that hands over each
// newline-framed event as it arrives. Errors carry the HTTP status when there was one.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "knode/blocking_io.h"
#include "knode/kube/kubeconfig.h"
#include "knode/status.h"

namespace knode::kube {

// A token bucket: `burst` requests at once, then `qps` a second. acquire() blocks.
class RateLimiter {
 public:
  RateLimiter(double qps, int burst);
  // Waits for a token; false when stop() was called meanwhile.
  bool acquire();
  void stop();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  const double qps_;
  const double burst_;
  double tokens_;
  std::chrono::steady_clock::time_point last_;
  bool stopped_ = false;
};

struct Response {
  int status = 0;  // HTTP status
  std::string content_type;
  std::string body;
  bool ok() const { return status >= 200 && status < 300; }
};

// Ends a call in progress from another thread (an informer being stopped). Sticky.
using Cancel = knode::Cancel;

struct ClientOptions {
  double qps = 50;     // kubeAPIQPS
  int burst = 100;     // kubeAPIBurst
  std::string user_agent = "knode/0.1.0";
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};  // a whole non-streaming call
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(10)};
  size_t max_body_bytes = 512u << 20;
  size_t max_idle_connections = 4;
};

class Connection;

// The framing of a watch response: a byte stream cut into '\n'-terminated lines (empty
// lines skipped). A line longer than max_line (no object is near 16 MiB: etcd's limit is
// 1.5 MiB) ends the stream instead of growing without bound.
class LineSplitter {
 public:
  enum class Fed { kMore, kStopped, kTooLong };
  explicit LineSplitter(size_t max_line = 16u << 20) : max_line_(max_line) {}
  // Calls on_line with every line `data` completes; kStopped once on_line returns false.
  Fed feed(std::string_view data, const std::function<bool(std::string_view)>& on_line);
  // The stream ended: the unterminated tail, if any, is the last line.
  void finish(const std::function<bool(std::string_view)>& on_line);

 private:
  std::string pending_;
  size_t max_line_;
};

// The framing of a protobuf watch response (";stream=watch"): each frame is a 4-byte
// big-endian length, then that many bytes. A frame over max_frame ends the stream.
class FrameSplitter {
 public:
  enum class Fed { kMore, kStopped, kTooLong };
  explicit FrameSplitter(size_t max_frame = 16u << 20) : max_frame_(max_frame) {}
  Fed feed(std::string_view data, const std::function<bool(std::string_view)>& on_frame);
  // Bytes of a frame not yet complete (the stream ended inside one if non-zero).
  size_t pending() const { return pending_.size(); }

 private:
  std::string pending_;
  size_t max_frame_;
};

class RestClient {
 public:
  // Checks the credentials (PEM parses, key matches certificate); connects lazily.
  static Result<std::unique_ptr<RestClient>> create(const KubeConfig& config, ClientOptions options = {});
  ~RestClient();

  // One call. A non-2xx answer is a Response, not an error; errors are transport
  // failures (refused, TLS, deadline, cancelled) with errno ECONNREFUSED, ETIMEDOUT,
  // ECANCELED, EACCES (the TLS handshake refused) or EIO.
  Result<Response> request(std::string_view method, const std::string& target,
                           const std::string& body = "",
                           std::string_view content_type = "application/json",
                           Cancel* cancel = nullptr, std::string_view accept = "application/json");
  Result<Response> get(const std::string& target, Cancel* cancel = nullptr,
                       std::string_view accept = "application/json") {
    return request("GET", target, "", "application/json", cancel, accept);
  }

  // A streaming GET (a watch): on a 2xx, each newline-terminated line of the body goes to
  // on_line as it arrives, until the server ends it, on_line returns false, `idle`
  // passes without a byte, or cancel fires (ECANCELED). A non-2xx answer is returned
  // whole without calling on_line.
  Result<Response> stream_lines(const std::string& target,
                                const std::function<bool(std::string_view)>& on_line,
                                std::chrono::milliseconds idle, Cancel* cancel = nullptr);
  // The same with `accept`, the body cut by the content type the server answered with:
  // protobuf (application/vnd.kubernetes.protobuf;stream=watch) into length-prefixed
  // frames, anything else into lines. on_frame learns which.
  Result<Response> stream(const std::string& target, std::string_view accept,
                          const std::function<bool(std::string_view frame, bool protobuf)>& on_frame,
                          std::chrono::milliseconds idle, Cancel* cancel = nullptr);

  const KubeConfig& config() const { return config_; }
  // A new client certificate (rotation): calls from now on present it; connections open
  // now (watches) keep the old one until they end.
  Status reload_client_certificate(const std::string& cert_pem, const std::string& key_pem);
  RateLimiter& limiter() { return limiter_; }
  void stop();  // wakes throttled callers; later calls fail with ECANCELED

 private:
  RestClient(KubeConfig config, ClientOptions options);
  Result<std::unique_ptr<Connection>> connect(Cancel* cancel, std::chrono::steady_clock::time_point deadline);
  std::unique_ptr<Connection> take_idle();
  void give_back(std::unique_ptr<Connection> c);
  std::string bearer() const;

  struct Tls;
  static Result<std::shared_ptr<Tls>> make_tls(const KubeConfig& config);
  std::shared_ptr<Tls> tls() const;
  KubeConfig config_;
  ClientOptions options_;
  mutable std::mutex tls_mu_;
  std::shared_ptr<Tls> tls_;
  RateLimiter limiter_;
  std::mutex idle_mu_;
  std::vector<std::unique_ptr<Connection>> idle_;
};

// Percent-encodes a query value (RFC 3986 unreserved characters stay).
std::string query_escape(std::string_view s);

// The message of an API Status body ("pods \"x\" not found"; JSON or protobuf), or the
// body itself.
std::string status_message(const Response& r);

}  // namespace knode::kube
