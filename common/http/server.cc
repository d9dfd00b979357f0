// HttpServer over Boost.Beast. One Listener per bound address, one Session per
// connection; each connection runs on its own strand so the server is also correct when
// several threads run the io_context. Sessions keep the shared ServerCore alive, so destroying
// the HttpServer while connections drain is safe.
#include "knode/http/server.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "knode/log.h"

namespace knode::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

std::string endpoint_str(const tcp::endpoint& ep) {
  return Endpoint{ep.address().to_string(), ep.port()}.str();
}

}  // namespace

class Session;

namespace detail {

class ServerCore : public std::enable_shared_from_this<ServerCore> {
 public:
  ServerCore(asio::io_context& io, ServerOptions options) : io_(io), options_(std::move(options)) {}

  asio::io_context& io() { return io_; }
  const ServerOptions& options() const { return options_; }

  void set_handler(std::string path, Handler handler) {
    std::lock_guard lock(mu_);
    handlers_[std::move(path)] = std::make_shared<Handler>(std::move(handler));
  }
  std::shared_ptr<Handler> find_handler(const std::string& path) const {
    std::lock_guard lock(mu_);
    auto it = handlers_.find(path);
    return it == handlers_.end() ? fallback_ : it->second;
  }
  void set_fallback(Handler handler) {
    std::lock_guard lock(mu_);
    fallback_ = std::make_shared<Handler>(std::move(handler));
  }

  // Returns false when the connection limit is reached.
  bool add_session(Session* s, std::weak_ptr<Session> w) {
    std::lock_guard lock(mu_);
    if (stopped_ || sessions_.size() >= options_.max_connections) return false;
    sessions_.emplace(s, std::move(w));
    return true;
  }
  void remove_session(Session* s) {
    std::lock_guard lock(mu_);
    sessions_.erase(s);
  }

  Status listen(const std::string& address, uint16_t port);
  std::vector<Endpoint> endpoints() const {
    std::lock_guard lock(mu_);
    return endpoints_;
  }
  void stop();
  bool stopped() const {
    std::lock_guard lock(mu_);
    return stopped_;
  }

 private:
  class Listener;

  asio::io_context& io_;
  const ServerOptions options_;
  mutable std::mutex mu_;
  bool stopped_ = false;
  std::map<std::string, std::shared_ptr<Handler>> handlers_;
  std::shared_ptr<Handler> fallback_;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions_;
  std::vector<std::shared_ptr<Listener>> listeners_;
  std::vector<Endpoint> endpoints_;
};

}  // namespace detail

// One connection: read a request with bounded size and time, answer, repeat while the
// client keeps the connection alive.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<detail::ServerCore> server)
      : stream_(std::move(socket)),
        server_(std::move(server)),
        buffer_(server_->options().max_header_bytes + server_->options().max_body_bytes) {
    error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = endpoint_str(ep);
  }
  ~Session() { server_->remove_session(this); }

  void start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->do_read(); });
  }

  // Safe from any thread: runs on the connection's strand.
  void close() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] {
      error_code ec;
      self->stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
      self->stream_.close();
    });
  }

 private:
  void do_read() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_->options().max_header_bytes));
    parser_->body_limit(server_->options().max_body_bytes);
    stream_.expires_after(server_->options().read_timeout);
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](error_code ec, std::size_t) {
                        self->on_read(ec);
                      });
  }

  void on_read(error_code ec) {
    if (ec == bhttp::error::end_of_stream) {
      error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      return;
    }
    if (ec == bhttp::error::header_limit) return send_error(431, "request header too large");
    if (ec == bhttp::error::body_limit) return send_error(413, "request body too large");
    if (ec == beast::error::timeout || ec == asio::error::operation_aborted) return;
    if (ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category()) {
      return send_error(400, "bad request: " + ec.message());
    }
    if (ec) {
      KLOGV(4, "http read failed").kv("remote", remote_).kv("error", ec.message());
      return;
    }
    serve(parser_->release());
  }

  void serve(bhttp::request<bhttp::string_body> req) {
    Request r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    auto q = r.target.find('?');
    r.path = r.target.substr(0, q);
    if (q != std::string::npos) r.query = r.target.substr(q + 1);
    r.remote_address = remote_;
    for (const auto& f : req) r.headers.emplace_back(f.name_string(), f.value());

    const bool head = req.method() == bhttp::verb::head;
    const bool keep_alive = req.keep_alive();
    Response resp;
    auto handler = server_->find_handler(r.path);
    if (!handler) {
      resp = Response{404, "text/plain; charset=utf-8", "404 page not found\n"};
    } else if (req.method() != bhttp::verb::get && !head) {
      resp = Response{405, "text/plain; charset=utf-8", "405 method not allowed\n"};
      resp.headers.emplace_back("Allow", "GET, HEAD");
    } else {
      try {
        resp = (*handler)(r);
      } catch (const std::exception& e) {
        KLOG(ERROR, "http handler threw").kv("path", r.path).kv("error", e.what());
        resp = Response{500, "text/plain; charset=utf-8", "internal server error\n"};
      }
    }
    KLOGV(5, "http request")
        .kv("remote", remote_).kv("method", r.method).kv("path", r.path).kv("status", resp.status);
    send(resp, req.version(), keep_alive, head);
  }

  void send_error(int status, const std::string& text) {
    KLOGV(2, "http request rejected").kv("remote", remote_).kv("status", status).kv("reason", text);
    send(Response{status, "text/plain; charset=utf-8", text + "\n"}, 11, false, false);
  }

  template <typename Body>
  void fill_headers(bhttp::response<Body>& m, const Response& resp, bool keep_alive) {
    m.set(bhttp::field::server, server_->options().server_name);
    m.set(bhttp::field::content_type, resp.content_type);
    for (const auto& [k, v] : resp.headers) m.set(k, v);
    m.keep_alive(keep_alive && !server_->stopped());
  }

  void send(const Response& resp, unsigned version, bool keep_alive, bool head) {
    const auto status = static_cast<bhttp::status>(resp.status);
    if (head) {
      // HEAD carries GET's headers, Content-Length included, and no body.
      auto m = std::make_shared<bhttp::response<bhttp::empty_body>>(status, version);
      fill_headers(*m, resp, keep_alive);
      m->content_length(resp.body.size());
      write(std::move(m));
    } else {
      auto m = std::make_shared<bhttp::response<bhttp::string_body>>(status, version);
      fill_headers(*m, resp, keep_alive);
      m->body() = resp.body;
      m->prepare_payload();
      write(std::move(m));
    }
  }

  template <typename Message>
  void write(std::shared_ptr<Message> m) {
    const bool close = m->need_eof();
    stream_.expires_after(server_->options().read_timeout);
    bhttp::async_write(stream_, *m,
                       [self = shared_from_this(), m, close](error_code ec, std::size_t) {
                         self->on_write(ec, close);
                       });
  }

  void on_write(error_code ec, bool close) {
    if (ec) return;
    if (close) return linger();
    do_read();
  }

  // After a closing response, read and discard what the client still sends (bounded in
  // bytes and time) before closing: closing a socket with unread data makes the kernel
  // send RST, which can destroy the response before the client has read it.
  void linger() {
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(std::min<std::chrono::milliseconds>(server_->options().read_timeout,
                                                              std::chrono::seconds(2)));
    drain_.resize(4096);
    drain();
  }
  void drain() {
    stream_.async_read_some(asio::buffer(drain_),
                            [self = shared_from_this()](error_code ec, std::size_t n) {
                              self->drained_ += n;
                              if (ec || self->drained_ > kMaxDrainBytes) {
                                self->stream_.close();
                                return;
                              }
                              self->drain();
                            });
  }

  static constexpr std::size_t kMaxDrainBytes = 1 << 20;

  beast::tcp_stream stream_;
  std::shared_ptr<detail::ServerCore> server_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::string remote_;
  std::vector<char> drain_;
  std::size_t drained_ = 0;
};

class detail::ServerCore::Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(std::shared_ptr<ServerCore> server, tcp::acceptor acceptor)
      : server_(std::move(server)),
        acceptor_(std::move(acceptor)),
        retry_(acceptor_.get_executor()) {}

  void start() { do_accept(); }

  void close() {
    asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
      error_code ec;
      self->acceptor_.close(ec);
      self->retry_.cancel();
    });
  }

 private:
  void do_accept() {
    acceptor_.async_accept(asio::make_strand(server_->io()),
                           [self = shared_from_this()](error_code ec, tcp::socket socket) {
                             self->on_accept(ec, std::move(socket));
                           });
  }

  void on_accept(error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      // EMFILE and friends: back off instead of spinning on the failing accept.
      KLOG(WARNING, "http accept failed").kv("error", ec.message());
      retry_.expires_after(std::chrono::milliseconds(100));
      retry_.async_wait([self = shared_from_this()](error_code wec) {
        if (!wec) self->do_accept();
      });
      return;
    }
    auto session = std::make_shared<Session>(std::move(socket), server_);
    if (server_->add_session(session.get(), session)) {
      session->start();
    } else {
      KLOGV(2, "http connection refused: limit reached")
          .kv("limit", server_->options().max_connections);
      // Session's destructor closes the socket; it was never registered, removal is a no-op.
    }
    do_accept();
  }

  std::shared_ptr<ServerCore> server_;
  tcp::acceptor acceptor_;
  asio::steady_timer retry_;
};

Status detail::ServerCore::listen(const std::string& address, uint16_t port) {
  const std::string where = Endpoint{address, port}.str();
  error_code ec;
  auto ip = asio::ip::make_address(address, ec);
  if (ec) return Status::Error("listen on " + where + ": not an IP address");
  tcp::endpoint ep(ip, port);
  tcp::acceptor acceptor(asio::make_strand(io_));
  if (acceptor.open(ep.protocol(), ec); ec) {
    return Status::FromErrno("listen on " + where + ": socket", ec.value());
  }
  acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (acceptor.bind(ep, ec); ec) return Status::FromErrno("listen on " + where, ec.value());
  if (acceptor.listen(asio::socket_base::max_listen_connections, ec); ec) {
    return Status::FromErrno("listen on " + where, ec.value());
  }
  auto bound = acceptor.local_endpoint(ec);
  if (ec) return Status::FromErrno("listen on " + where + ": local address", ec.value());

  auto listener = std::make_shared<Listener>(shared_from_this(), std::move(acceptor));
  {
    std::lock_guard lock(mu_);
    if (stopped_) return Status::Error("listen on " + where + ": server stopped");
    listeners_.push_back(listener);
    endpoints_.push_back(Endpoint{bound.address().to_string(), bound.port()});
  }
  listener->start();
  KLOGV(1, "http server listening").kv("address", endpoint_str(bound));
  return Status::Ok();
}

void detail::ServerCore::stop() {
  std::vector<std::shared_ptr<Listener>> listeners;
  std::vector<std::shared_ptr<Session>> sessions;
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    listeners.swap(listeners_);
    for (auto& [ptr, weak] : sessions_) {
      if (auto s = weak.lock()) sessions.push_back(std::move(s));
    }
  }
  for (auto& l : listeners) l->close();
  for (auto& s : sessions) s->close();
}

HttpServer::HttpServer(asio::io_context& io, ServerOptions options)
    : core_(std::make_shared<detail::ServerCore>(io, std::move(options))) {}

HttpServer::~HttpServer() { stop(); }

void HttpServer::handle(std::string path, Handler handler) {
  core_->set_handler(std::move(path), std::move(handler));
}

void HttpServer::handle_any(Handler handler) { core_->set_fallback(std::move(handler)); }

Status HttpServer::listen(const std::string& address, uint16_t port) {
  return core_->listen(address, port);
}

Status HttpServer::listen_on(std::string_view host_port, uint16_t default_port) {
  auto ep = parse_bind_address(host_port, default_port);
  if (!ep) return ep.status();
  return core_->listen(ep->address, ep->port);
}

std::vector<Endpoint> HttpServer::endpoints() const { return core_->endpoints(); }

uint16_t HttpServer::port() const {
  auto eps = core_->endpoints();
  return eps.empty() ? 0 : eps.front().port;
}

void HttpServer::stop() { core_->stop(); }

}  // namespace knode::http
