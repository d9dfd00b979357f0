// A small HTTP/1.1 server on the daemon's one io_context, plain or over TLS. Beast and
// OpenSSL stay inside the .cc (pimpl), so including this header is cheap.
//
// Two kinds of handlers:
// - handle(path, Handler): exact path, GET (HEAD is answered from it without a body),
//   answered at once on the loop. Health and metrics endpoints.
// - handle_prefix(prefix, AsyncHandler): every method on paths under a prefix, answered
//   later and from any thread through an Exchange: a whole response, a chunked stream
//   (kubectl logs -f), or a byte tunnel to another socket (an upgraded connection, as
//   kubectl exec needs). The kubelet API.
//
//   boost::asio::io_context io;
//   knode::http::HttpServer server(io);
//   server.handle("/healthz", [](const knode::http::Request&) {
//     return knode::http::Response{200, "text/plain; charset=utf-8", "ok"};
//   });
//   if (auto st = server.listen("127.0.0.1", 10248); !st) { ...st.message()... }
//   io.run();
//
// Handlers run on the io_context thread: they must be quick and must not block (an
// AsyncHandler posts its blocking work elsewhere and answers through the Exchange).
// All member functions are to be called from the io_context thread, or before it runs.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
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

struct TlsOptions {
  std::string certificate_pem;  // the serving certificate, then its chain
  std::string private_key_pem;
  // Not empty: clients are asked for a certificate, checked against these CAs for client
  // authentication (extended key usage clientAuth). A missing or unverifiable one does not
  // fail the handshake; Request::peer_certificate says what it was and the handler decides,
  // as Go's tls.RequestClientCert leaves it to the kubelet's authenticator.
  std::string client_ca_pem;
};

struct ServerOptions {
  // Whole-request bound: a client has this long to send one complete request (headers and
  // body), and an idle keep-alive connection is closed after it. Also bounds each write
  // and the TLS handshake.
  std::chrono::milliseconds read_timeout{10000};
  // Bounds on what a client may send; beyond them it gets 431 or 413 and is disconnected.
  std::size_t max_header_bytes = 8 * 1024;
  std::size_t max_body_bytes = 16 * 1024;
  // Connections beyond this are accepted and closed at once, so a flood of idle clients
  // cannot exhaust file descriptors.
  std::size_t max_connections = 128;
  // Value of the Server header.
  std::string server_name = "knode";
  // Serve HTTPS instead of HTTP (TLS 1.2 and later).
  std::optional<TlsOptions> tls;
};

// One request's answer, given once, from any thread. Exactly one of respond(),
// start_stream() (then write()s and end_stream()) or tunnel() is called; an Exchange
// dropped without an answer answers 500.
class Exchange {
 public:
  virtual ~Exchange() = default;

  // A whole response; the connection stays open for the next request when both sides
  // want keep-alive.
  virtual void respond(Response response) = 0;

  // A streamed response: the head at once (chunked over HTTP/1.1), then each write() as
  // it comes; the connection closes after end_stream().
  virtual void start_stream(int status, std::string content_type,
                            std::vector<std::pair<std::string, std::string>> headers = {}) = 0;
  // Sends one piece and waits until it is written: false when the client has gone (or a
  // write took longer than the read timeout). Blocks: never call it on the io_context's
  // thread.
  virtual bool write(std::string data) = 0;
  virtual void end_stream() = 0;

  // Hands the connection over to a byte tunnel with `fd`, an open stream socket the
  // server takes ownership of: `to_client` is written to the client first, then what the
  // client sent past its request goes to fd, and from then on bytes flow both ways until
  // either side closes (a half close is passed on). For upgraded connections.
  virtual void tunnel(int fd, std::string to_client) = 0;

  // Whether the client has gone, the tunnel ended, or the server stopped.
  virtual bool cancelled() const = 0;
  // Runs fn once when that happens (at once, on this thread, if it already has). It may
  // run on the io_context's thread: it must be quick.
  virtual void on_cancel(std::function<void()> fn) = 0;
};

using AsyncHandler = std::function<void(const Request&, std::shared_ptr<Exchange>)>;

class HttpServer {
 public:
  explicit HttpServer(boost::asio::io_context& io, ServerOptions options = {});
  ~HttpServer();  // stops
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Registers a handler for one exact path (no query string), replacing any earlier one.
  void handle(std::string path, Handler handler);
  // Registers a handler for every method on paths starting with `prefix` ("/" for all).
  // Exact paths win; among prefixes, the longest.
  void handle_prefix(std::string prefix, AsyncHandler handler);
  // The GET handler of every path that neither an exact nor a prefix handler takes
  // (instead of 404).
  void handle_any(Handler handler);

  // Binds address:port (IPv4 or IPv6 literal; port 0 picks a free port) and starts
  // accepting. May be called more than once to listen on several addresses.
  // Errors name the address: "listen on 127.0.0.1:10248: Address already in use"; with
  // TLS, a certificate or key that does not load fails here.
  Status listen(const std::string& address, uint16_t port);
  // The same from a flag value: "ip:port", "[v6]:port", or a bare IP with default_port.
  Status listen_on(std::string_view host_port, uint16_t default_port);

  // Where the server listens, in the order listen() succeeded.
  std::vector<Endpoint> endpoints() const;
  // The port of the first listener (0 when none), for tests that listened on port 0.
  uint16_t port() const;

  // A TLS server's new certificate and key (PEM; one text may hold both): connections
  // accepted from now on get it, open ones keep theirs. The pair is checked first; on an
  // error the server keeps the one it had. Call it on the thread that runs the server's
  // io_context (handshakes read the context's chain).
  Status set_certificate(const std::string& cert_pem, const std::string& key_pem);

  // Closes the listeners and every open connection (streams and tunnels included).
  // Pending operations complete with operation_aborted the next time the io_context
  // runs. Idempotent.
  void stop();

 private:
  std::shared_ptr<detail::ServerCore> core_;
};

}  // namespace knode::http
