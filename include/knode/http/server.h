// A small HTTP/1.1 server for health and metrics endpoints, on the daemon's one
// io_context. Handlers are exact-path GET handlers; HEAD is answered from the GET handler
// without a body. Beast stays inside the .cc (pimpl) so including this header is cheap.
//
//   boost::asio::io_context io;
//   knode::http::HttpServer server(io);
//   server.handle("/healthz", [](const knode::http::Request&) {
//     return knode::http::Response{200, "text/plain; charset=utf-8", "ok"};
//   });
//   if (auto st = server.listen("127.0.0.1", 10248); !st) { ...st.message()... }
//   io.run();
//
// Handlers run on the io_context thread: they must be quick and must not block.
// All member functions are to be called from the io_context thread, or before it runs.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "knode/http/types.h"
#include "knode/status.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace knode::http {

namespace detail {
class ServerCore;
}  // namespace detail

struct ServerOptions {
  // Whole-request bound: a client has this long to send one complete request (headers and
  // body), and an idle keep-alive connection is closed after it. Also bounds each write.
  std::chrono::milliseconds read_timeout{10000};
  // Bounds on what a client may send; beyond them it gets 431 or 413 and is disconnected.
  std::size_t max_header_bytes = 8 * 1024;
  std::size_t max_body_bytes = 16 * 1024;
  // Connections beyond this are accepted and closed at once, so a flood of idle clients
  // cannot exhaust file descriptors.
  std::size_t max_connections = 128;
  // Value of the Server header.
  std::string server_name = "knode";
};

class HttpServer {
 public:
  explicit HttpServer(boost::asio::io_context& io, ServerOptions options = {});
  ~HttpServer();  // stops
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Registers a handler for one exact path (no query string), replacing any earlier one.
  void handle(std::string path, Handler handler);
  // The handler of every path without one of its own (instead of 404).
  void handle_any(Handler handler);

  // Binds address:port (IPv4 or IPv6 literal; port 0 picks a free port) and starts
  // accepting. May be called more than once to listen on several addresses.
  // Errors name the address: "listen on 127.0.0.1:10248: Address already in use".
  Status listen(const std::string& address, uint16_t port);
  // The same from a flag value: "ip:port", "[v6]:port", or a bare IP with default_port.
  Status listen_on(std::string_view host_port, uint16_t default_port);

  // Where the server listens, in the order listen() succeeded.
  std::vector<Endpoint> endpoints() const;
  // The port of the first listener (0 when none), for tests that listened on port 0.
  uint16_t port() const;

  // Closes the listeners and every open connection. Pending operations complete with
  // operation_aborted the next time the io_context runs. Idempotent.
  void stop();

 private:
  std::shared_ptr<detail::ServerCore> core_;
};

}  // namespace knode::http
