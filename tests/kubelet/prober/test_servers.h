// Servers the prober tests start on 127.0.0.1 (an ephemeral port each), and nothing else:
// an HTTP(S) server answering per path, a TCP listener, and a gRPC server with the
// standard health service.
#pragma once

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace knode::kubelet::prober::testing {

// One request as the server read it.
struct SeenRequest {
  std::string target;                                        // path and query
  std::vector<std::pair<std::string, std::string>> headers;  // as received, in order
  std::string sni;                                           // TLS server name; "" for none
  // The value of the only header of that name (case-insensitive); "" when absent.
  std::string header(const std::string& name) const;
  int count(const std::string& name) const;  // how many headers of that name
};

struct Reply {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // Sends nothing, holding the connection open until the server stops.
  bool hang = false;
  // Sends the status line, the headers (Content-Length of the whole body) and this many
  // bytes of the body, then holds the connection open until the server stops.
  std::optional<std::size_t> hang_after_bytes;
};

// An HTTP/1.1 server on 127.0.0.1, plain or TLS (a self-signed certificate made at start).
// Each route answers one path (the query ignored); others get 404. A request that is not
// HTTP (a TLS ClientHello on the plain server) gets "400 Bad Request", as real servers do.
class TestHttpServer {
 public:
  enum class Mode { kHttp, kHttps };
  using Route = std::function<Reply(const SeenRequest&)>;

  explicit TestHttpServer(Mode mode = Mode::kHttp);
  ~TestHttpServer();
  TestHttpServer(const TestHttpServer&) = delete;
  TestHttpServer& operator=(const TestHttpServer&) = delete;

  void route(const std::string& path, Route route);
  void route(const std::string& path, int status, std::string body = "");

  uint16_t port() const { return port_; }
  std::vector<SeenRequest> requests() const;
  std::vector<SeenRequest> requests(const std::string& path) const;  // by path, query ignored

 private:
  struct Impl;
  void serve(int fd);
  void accept_loop();

  Mode mode_;
  std::unique_ptr<Impl> impl_;
  uint16_t port_ = 0;
  int listen_fd_ = -1;
  mutable std::mutex mu_;
  std::condition_variable stopped_cv_;
  bool stopped_ = false;
  std::map<std::string, Route> routes_;
  std::vector<SeenRequest> seen_;
  std::vector<int> conn_fds_;
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

// A listening TCP socket on 127.0.0.1 that never accepts: the kernel completes handshakes
// into its backlog. With `fill_backlog`, the backlog holds one connection the listener
// made itself, so any further connect gets no answer at all (its SYN is dropped) and can
// only time out.
class TestTcpListener {
 public:
  explicit TestTcpListener(bool fill_backlog = false);
  ~TestTcpListener();
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1, filler_ = -1;
  uint16_t port_ = 0;
};

// A port on 127.0.0.1 that refuses connections: bound, never listening, held for the
// test's life so no one else takes it.
class RefusingPort {
 public:
  RefusingPort();
  ~RefusingPort();
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// A gRPC server on 127.0.0.1 with gRPC's own grpc.health.v1 service (or none), so the
// prober's health.proto is checked against an implementation it did not come from.
class TestHealthServer {
 public:
  explicit TestHealthServer(bool with_health_service = true);
  ~TestHealthServer();
  uint16_t port() const { return static_cast<uint16_t>(port_); }
  // "" is the server as a whole.
  void set_serving(const std::string& service, bool serving);

 private:
  int port_ = 0;
  // Answers every method the server lacks with UNIMPLEMENTED; gRPC will not start a
  // server with nothing to serve.
  grpc::CallbackGenericService unimplemented_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace knode::kubelet::prober::testing
