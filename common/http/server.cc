// HttpServer over Boost.Beast, plain or TLS. One Listener per bound address, one Session
// per connection; a Session is a template over its stream (beast::tcp_stream, or an
// ssl_stream over one), so both serve requests with the same code. Each connection runs on
// its own strand, so the server is also correct when several threads run the io_context.
// Sessions keep the shared ServerCore alive, so destroying the HttpServer while
// connections drain is safe.
//
// After a request, a Session is in one of four modes: reading the next request, answering
// one (a whole response), streaming one (chunks written as an Exchange hands them over,
// with a read pending that notices the client leaving), or tunnelling bytes between the
// client and another socket.
#include "knode/http/server.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cstdio>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <type_traits>
#include <unordered_map>

#include "knode/log.h"
#include "request_detail.h"
#include "knode/openssl_errors.h"

namespace knode::http {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr const char* kTextPlain = "text/plain; charset=utf-8";

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

beast::tcp_stream& tcp_of(PlainStream& s) { return s; }
beast::tcp_stream& tcp_of(TlsStream& s) { return s.next_layer(); }

std::string endpoint_str(const tcp::endpoint& ep) {
  return Endpoint{ep.address().to_string(), ep.port()}.str();
}

std::string with_details(const std::string& what) {
  std::string more = openssl_errors();
  return more.empty() || more == what ? what : what + " (" + more + ")";
}

// Every certificate in a PEM text.
std::vector<X509*> read_certificates(const std::string& pem) {
  std::vector<X509*> out;
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return out;
  while (X509* c = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) out.push_back(c);
  ERR_clear_error();  // the loop ends on a "no start line" error
  BIO_free(bio);
  return out;
}

// The verification's outcome is read after the handshake (SSL_get_verify_result), so a
// client with a bad certificate still gets an HTTP answer (401) rather than a broken
// handshake, as with Go's tls.RequestClientCert.
int accept_any_certificate(int /*preverify_ok*/, X509_STORE_CTX* /*ctx*/) { return 1; }

Result<std::unique_ptr<ssl::context>> make_tls_context(const TlsOptions& o) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  error_code ec;
  ctx->use_certificate_chain(asio::buffer(o.certificate_pem), ec);
  if (ec) return Status::Error("TLS serving certificate: " + with_details(ec.message()), EINVAL);
  ctx->use_private_key(asio::buffer(o.private_key_pem), ssl::context::pem, ec);
  if (ec) return Status::Error("TLS private key: " + with_details(ec.message()), EINVAL);
  SSL_CTX* native = ctx->native_handle();
  if (SSL_CTX_check_private_key(native) != 1) {
    ERR_clear_error();
    return Status::Error("TLS private key does not belong to the serving certificate", EINVAL);
  }
  if (!o.client_ca_pem.empty()) {
    auto cas = read_certificates(o.client_ca_pem);
    if (cas.empty()) return Status::Error("client CA: no certificate in the PEM data", EINVAL);
    for (X509* ca : cas) {
      X509_STORE_add_cert(SSL_CTX_get_cert_store(native), ca);
      SSL_CTX_add_client_CA(native, ca);  // the names the client picks its certificate by
      X509_free(ca);
    }
    SSL_CTX_set_verify(native, SSL_VERIFY_PEER, accept_any_certificate);
    SSL_CTX_set_purpose(native, X509_PURPOSE_SSL_CLIENT);
    static const unsigned char kSid[] = "knode";
    SSL_CTX_set_session_id_context(native, kSid, sizeof kSid - 1);
  }
  return ctx;
}

std::string name_entry(X509_NAME* name, int index) {
  X509_NAME_ENTRY* e = X509_NAME_get_entry(name, index);
  unsigned char* utf8 = nullptr;
  int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
  if (n < 0) return "";
  std::string out(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(n));
  OPENSSL_free(utf8);
  return out;
}

std::optional<PeerCertificate> peer_certificate_of(SSL* ssl) {
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (cert == nullptr) return std::nullopt;
  PeerCertificate p;
  const long result = SSL_get_verify_result(ssl);
  p.verified = result == X509_V_OK;
  if (!p.verified) p.verify_error = X509_verify_cert_error_string(result);
  X509_NAME* subject = X509_get_subject_name(cert);
  for (int i = -1; (i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) >= 0;) {
    p.common_name = name_entry(subject, i);  // the last CN, as Go's pkix.Name keeps it
  }
  for (int i = -1; (i = X509_NAME_get_index_by_NID(subject, NID_organizationName, i)) >= 0;) {
    p.organizations.push_back(name_entry(subject, i));
  }
  X509_free(cert);
  return p;
}

// What fires an Exchange's cancellation, once, from any thread.
class CancelSignal {
 public:
  void fire() {
    std::vector<std::function<void()>> fns;
    {
      std::lock_guard lock(mu_);
      if (fired_) return;
      fired_ = true;
      fns.swap(fns_);
    }
    for (auto& f : fns) f();
  }
  bool fired() const {
    std::lock_guard lock(mu_);
    return fired_;
  }
  void on_cancel(std::function<void()> fn) {
    {
      std::lock_guard lock(mu_);
      if (!fired_) {
        fns_.push_back(std::move(fn));
        return;
      }
    }
    fn();
  }

 private:
  mutable std::mutex mu_;
  bool fired_ = false;
  std::vector<std::function<void()>> fns_;
};

std::string reason_of(int status) {
  auto r = bhttp::obsolete_reason(static_cast<bhttp::status>(status));
  return std::string(r.empty() ? "Unknown" : r);
}

}  // namespace

class SessionBase {
 public:
  virtual ~SessionBase() = default;
  // Safe from any thread.
  virtual void close() = 0;
};

namespace detail {

class ServerCore : public std::enable_shared_from_this<ServerCore> {
 public:
  ServerCore(asio::io_context& io, ServerOptions options) : io_(io), options_(std::move(options)) {
    if (options_.tls) {
      auto ctx = make_tls_context(*options_.tls);
      if (ctx.ok()) {
        tls_ = std::move(*ctx);
      } else {
        tls_error_ = ctx.status();
      }
    }
  }

  asio::io_context& io() { return io_; }
  const ServerOptions& options() const { return options_; }
  ssl::context* tls() { return tls_.get(); }
  // Held while a connection's TLS state is made from the context, and while the
  // context's certificate is replaced.
  std::mutex& tls_mutex() { return tls_mu_; }

  Status set_certificate(const std::string& cert_pem, const std::string& key_pem) {
    if (!tls_) return Status::Error("not a TLS server", EINVAL);
    // Checked on a context of its own first: the live one changes only to a good pair.
    TlsOptions check{cert_pem, key_pem, ""};
    if (auto ok = make_tls_context(check); !ok.ok()) return ok.status();
    std::lock_guard lock(tls_mu_);
    error_code ec;
    // use_certificate_chain adds the intermediates to the context's extra chain, which
    // would otherwise grow with every renewal.
    SSL_CTX_clear_extra_chain_certs(tls_->native_handle());
    tls_->use_certificate_chain(asio::buffer(cert_pem), ec);
    if (!ec) tls_->use_private_key(asio::buffer(key_pem), ssl::context::pem, ec);
    if (ec) return Status::Error("TLS serving certificate: " + with_details(ec.message()), EINVAL);
    return Status::Ok();
  }

  void set_handler(std::string path, Handler handler) {
    std::lock_guard lock(mu_);
    handlers_[std::move(path)] = std::make_shared<Handler>(std::move(handler));
  }
  std::shared_ptr<Handler> find_handler(const std::string& path) const {
    std::lock_guard lock(mu_);
    auto it = handlers_.find(path);
    return it == handlers_.end() ? nullptr : it->second;
  }
  std::shared_ptr<Handler> fallback() const {
    std::lock_guard lock(mu_);
    return fallback_;
  }
  void set_fallback(Handler handler) {
    std::lock_guard lock(mu_);
    fallback_ = std::make_shared<Handler>(std::move(handler));
  }
  void set_prefix_handler(std::string prefix, AsyncHandler handler) {
    std::lock_guard lock(mu_);
    prefixes_[std::move(prefix)] = std::make_shared<AsyncHandler>(std::move(handler));
  }
  std::shared_ptr<AsyncHandler> find_prefix_handler(const std::string& path) const {
    std::lock_guard lock(mu_);
    std::shared_ptr<AsyncHandler> best;
    std::size_t best_len = 0;
    for (const auto& [prefix, h] : prefixes_) {
      if (path.compare(0, prefix.size(), prefix) == 0 && (!best || prefix.size() > best_len)) {
        best = h;
        best_len = prefix.size();
      }
    }
    return best;
  }

  // Returns false when the connection limit is reached.
  bool add_session(SessionBase* s, std::weak_ptr<SessionBase> w) {
    std::lock_guard lock(mu_);
    if (stopped_ || sessions_.size() >= options_.max_connections) return false;
    sessions_.emplace(s, std::move(w));
    return true;
  }
  void remove_session(SessionBase* s) {
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
  std::unique_ptr<ssl::context> tls_;
  std::mutex tls_mu_;
  Status tls_error_ = Status::Ok();
  mutable std::mutex mu_;
  bool stopped_ = false;
  std::map<std::string, std::shared_ptr<Handler>> handlers_;
  std::shared_ptr<Handler> fallback_;
  std::map<std::string, std::shared_ptr<AsyncHandler>> prefixes_;
  std::unordered_map<SessionBase*, std::weak_ptr<SessionBase>> sessions_;
  std::vector<std::shared_ptr<Listener>> listeners_;
  std::vector<Endpoint> endpoints_;
};

}  // namespace detail

// One connection: read a request with bounded size and time, answer, repeat while the
// client keeps the connection alive.
template <typename Stream>
class Session final : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;
  using std::enable_shared_from_this<Session<Stream>>::shared_from_this;

 public:
  Session(tcp::socket socket, std::shared_ptr<detail::ServerCore> server)
      : stream_(make_stream(std::move(socket), *server)),
        server_(std::move(server)),
        buffer_(server_->options().max_header_bytes + server_->options().max_body_bytes),
        timer_(stream_.get_executor()) {
    error_code ec;
    auto ep = tcp_of(stream_).socket().remote_endpoint(ec);
    if (!ec) remote_ = endpoint_str(ep);
  }
  ~Session() override {
    server_->remove_session(this);
    if (cancel_) cancel_->fire();
  }

  void start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      if constexpr (kTls) {
        self->handshake();
      } else {
        self->do_read();
      }
    });
  }

  void close() override {
    if (auto c = current_cancel()) c->fire();  // a worker blocked in write() returns now
    asio::post(stream_.get_executor(), [self = shared_from_this()] { self->teardown(); });
  }

  // ---- what an Exchange asks for, on the strand ----

  auto executor() { return stream_.get_executor(); }
  std::shared_ptr<CancelSignal> current_cancel() {
    std::lock_guard lock(cancel_mu_);
    return cancel_;
  }

  void answer(const Response& resp) {
    if (closed_) return;
    send(resp, version_, keep_alive_, head_);
  }

  void begin_stream(int status, const std::string& content_type,
                    const std::vector<std::pair<std::string, std::string>>& headers) {
    chunked_ = version_ >= 11;
    std::string head = "HTTP/" + std::to_string(version_ / 10) + "." +
                       std::to_string(version_ % 10) + " " + std::to_string(status) + " " +
                       reason_of(status) + "\r\n";
    head += "Server: " + server_->options().server_name + "\r\n";
    head += "Content-Type: " + content_type + "\r\n";
    for (const auto& [k, v] : headers) head += k + ": " + v + "\r\n";
    if (chunked_) head += "Transfer-Encoding: chunked\r\n";
    head += "Connection: close\r\n\r\n";
    streaming_ = true;
    tcp_of(stream_).expires_never();  // writes have their own timer; the watch read none
    out_.push_back({std::make_shared<const std::string>(std::move(head)), nullptr, false});
    pump_writes();
    watch_client();
  }

  void queue_piece(std::string data, std::shared_ptr<std::promise<bool>> done, bool last) {
    if (!streaming_ || cancel_->fired()) {
      if (done) done->set_value(false);
      return;
    }
    std::string framed;
    if (last) {
      if (chunked_) framed = "0\r\n\r\n";
    } else if (data.empty()) {
      if (done) done->set_value(true);  // an empty chunk would end the body
      return;
    } else if (chunked_) {
      char size[20];
      std::snprintf(size, sizeof size, "%zx\r\n", data.size());
      framed = size + data + "\r\n";
    } else {
      framed = std::move(data);
    }
    out_.push_back({std::make_shared<const std::string>(std::move(framed)), std::move(done), last});
    pump_writes();
  }

  void start_tunnel(int fd, const std::string& to_client) {
    tcp_of(stream_).expires_never();
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    error_code ec;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
      ::close(fd);
      return teardown();
    }
    backend_.emplace(stream_.get_executor());
    backend_->assign(ss.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), fd, ec);
    if (ec) {
      ::close(fd);
      return teardown();
    }
    tunnelling_ = true;
    // What the client sent past its request goes to the other side first.
    auto leftover = std::make_shared<std::string>(beast::buffers_to_string(buffer_.data()));
    buffer_.consume(buffer_.size());
    auto first = std::make_shared<std::string>(to_client);
    asio::async_write(stream_, asio::buffer(*first),
                      [self = shared_from_this(), first](error_code wec, std::size_t) {
                        if (wec) return self->teardown();
                        self->pump_to_client();
                      });
    asio::async_write(*backend_, asio::buffer(*leftover),
                      [self = shared_from_this(), leftover](error_code wec, std::size_t) {
                        if (wec) return self->teardown();
                        self->pump_to_backend();
                      });
  }

 private:
  static Stream make_stream(tcp::socket socket, detail::ServerCore& core) {
    if constexpr (kTls) {
      std::lock_guard lock(core.tls_mutex());
      return Stream(std::move(socket), *core.tls());
    } else {
      return Stream(std::move(socket));
    }
  }

  void handshake() {
    tcp_of(stream_).expires_after(server_->options().read_timeout);
    stream_.async_handshake(ssl::stream_base::server, [self = shared_from_this()](error_code ec) {
      if (ec) {
        KLOGV(2, "TLS handshake failed").kv("remote", self->remote_).kv("error", ec.message());
        error_code ignored;
        tcp_of(self->stream_).socket().close(ignored);
        return;
      }
      self->peer_ = peer_certificate_of(self->stream_.native_handle());
      self->do_read();
    });
  }

  void do_read() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_->options().max_header_bytes));
    parser_->body_limit(server_->options().max_body_bytes);
    tcp_of(stream_).expires_after(server_->options().read_timeout);
    bhttp::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(error_code ec) {
    if (ec == bhttp::error::end_of_stream) {
      error_code ignored;
      tcp_of(stream_).socket().shutdown(tcp::socket::shutdown_send, ignored);
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
    const bhttp::verb method = req.method();
    head_ = method == bhttp::verb::head;
    keep_alive_ = req.keep_alive();
    version_ = req.version();
    const Request r = detail::make_request(std::move(req), remote_, kTls, peer_);
    auto handler = server_->find_handler(r.path);
    if (!handler) {
      if (auto async = server_->find_prefix_handler(r.path)) return serve_async(r, *async);
      handler = server_->fallback();
    }
    const Response resp = detail::answer_plain(handler.get(), r, method);
    KLOGV(5, "http request")
        .kv("remote", remote_)
        .kv("method", r.method)
        .kv("path", r.path)
        .kv("status", resp.status);
    send(resp, version_, keep_alive_, head_);
  }

  void serve_async(const Request& r, const AsyncHandler& handler);

  void send_error(int status, const std::string& text) {
    KLOGV(2, "http request rejected").kv("remote", remote_).kv("status", status).kv("reason", text);
    send(Response{status, kTextPlain, text + "\n"}, 11, false, false);
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
    tcp_of(stream_).expires_after(server_->options().read_timeout);
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
    tcp_of(stream_).socket().shutdown(tcp::socket::shutdown_send, ignored);
    tcp_of(stream_).expires_after(std::min<std::chrono::milliseconds>(
        server_->options().read_timeout, std::chrono::seconds(2)));
    drain_.resize(4096);
    drain();
  }
  void drain() {
    tcp_of(stream_).async_read_some(asio::buffer(drain_),
                                    [self = shared_from_this()](error_code ec, std::size_t n) {
                                      self->drained_ += n;
                                      if (ec || self->drained_ > kMaxDrainBytes) {
                                        tcp_of(self->stream_).close();
                                        return;
                                      }
                                      self->drain();
                                    });
  }

  // ---- streaming ----

  struct Piece {
    std::shared_ptr<const std::string> bytes;  // alive until its write completes
    std::shared_ptr<std::promise<bool>> done;
    bool last = false;
  };

  void pump_writes() {
    if (writing_ || out_.empty() || closed_) return;
    writing_ = true;
    timer_.expires_after(server_->options().read_timeout);
    timer_.async_wait([self = shared_from_this()](error_code ec) {
      if (!ec) {
        KLOGV(2, "http stream write timed out").kv("remote", self->remote_);
        self->teardown();
      }
    });
    auto bytes = out_.front().bytes;
    auto self = shared_from_this();
    asio::async_write(stream_, asio::buffer(*bytes),
                      [self, bytes](error_code ec, std::size_t) { self->on_piece_written(ec); });
  }
  void on_piece_written(error_code ec) {
    timer_.cancel();
    writing_ = false;
    if (ec || out_.empty()) return teardown();  // teardown tells the waiting writers
    Piece p = std::move(out_.front());
    out_.pop_front();
    if (p.done) p.done->set_value(true);
    if (p.last) return teardown();  // the body is complete: Connection: close
    pump_writes();
  }

  // A read while the response streams: the client sends nothing more, so its end (or an
  // error) means it has gone.
  void watch_client() {
    stream_.async_read_some(asio::buffer(watch_buf_),
                            [self = shared_from_this()](error_code ec, std::size_t) {
                              if (ec) return self->teardown();
                              self->watch_client();
                            });
  }

  // ---- tunnel ----

  void pump_to_backend() {
    auto self = shared_from_this();
    stream_.async_read_some(asio::buffer(up_),
                            [self](error_code ec, std::size_t n) { self->on_client_bytes(ec, n); });
  }
  void on_client_bytes(error_code ec, std::size_t n) {
    if (ec) {
      // The client is done sending: pass the half close on, keep the other way open.
      error_code ignored;
      if (backend_) backend_->shutdown(tcp::socket::shutdown_send, ignored);
      return;
    }
    auto self = shared_from_this();
    asio::async_write(*backend_, asio::buffer(up_.data(), n), [self](error_code wec, std::size_t) {
      if (wec) return self->teardown();
      self->pump_to_backend();
    });
  }

  void pump_to_client() {
    auto self = shared_from_this();
    backend_->async_read_some(asio::buffer(down_), [self](error_code ec, std::size_t n) {
      self->on_backend_bytes(ec, n);
    });
  }
  void on_backend_bytes(error_code ec, std::size_t n) {
    if (ec) return teardown();  // the other side is done: so is the session
    auto self = shared_from_this();
    asio::async_write(stream_, asio::buffer(down_.data(), n), [self](error_code wec, std::size_t) {
      if (wec) return self->teardown();
      self->pump_to_client();
    });
  }

  // Ends the connection at once: sockets closed, pending writers told, the Exchange
  // cancelled. Idempotent.
  void teardown() {
    if (closed_) return;
    closed_ = true;
    error_code ignored;
    timer_.cancel();
    tcp_of(stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    tcp_of(stream_).close();
    if (backend_) backend_->close(ignored);
    for (auto& p : out_) {
      if (p.done) p.done->set_value(false);
    }
    out_.clear();
    if (auto c = current_cancel()) c->fire();
  }

  static constexpr std::size_t kMaxDrainBytes = 1 << 20;

  Stream stream_;
  std::shared_ptr<detail::ServerCore> server_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::string remote_;
  std::optional<PeerCertificate> peer_;
  std::vector<char> drain_;
  std::size_t drained_ = 0;
  // The request being answered.
  unsigned version_ = 11;
  bool keep_alive_ = false, head_ = false;
  std::mutex cancel_mu_;
  std::shared_ptr<CancelSignal> cancel_;  // of the current async request
  // Streaming and tunnelling.
  asio::steady_timer timer_;
  bool streaming_ = false, chunked_ = false, writing_ = false, tunnelling_ = false, closed_ = false;
  std::deque<Piece> out_;
  std::array<char, 512> watch_buf_{};
  std::optional<tcp::socket> backend_;
  std::array<char, 16 * 1024> up_{}, down_{};
};

namespace {

// The Exchange of one async request: every call moves to the session's strand.
template <typename Stream>
class ExchangeImpl final : public Exchange {
 public:
  ExchangeImpl(std::shared_ptr<Session<Stream>> s, std::shared_ptr<CancelSignal> cancel)
      : s_(std::move(s)), cancel_(std::move(cancel)) {}
  ~ExchangeImpl() override {
    if (!answered_.exchange(true)) {
      KLOG(ERROR, "http handler dropped a request without an answer");
      asio::post(s_->executor(), [s = s_] {
        s->answer(Response{500, kTextPlain, "internal server error\n"});
      });
    }
  }

  void respond(Response response) override {
    if (answered_.exchange(true)) return misuse("respond");
    asio::post(s_->executor(), [s = s_, r = std::move(response)] { s->answer(r); });
  }
  void start_stream(int status, std::string content_type,
                    std::vector<std::pair<std::string, std::string>> headers) override {
    if (answered_.exchange(true)) return misuse("start_stream");
    asio::post(s_->executor(), [s = s_, status, ct = std::move(content_type),
                                h = std::move(headers)] { s->begin_stream(status, ct, h); });
  }
  bool write(std::string data) override {
    auto done = std::make_shared<std::promise<bool>>();
    auto written = done->get_future();
    asio::post(s_->executor(), [s = s_, d = std::move(data), done]() mutable {
      s->queue_piece(std::move(d), done, false);
    });
    // The loop may never run the write (the daemon stopping): cancellation ends the wait.
    while (written.wait_for(std::chrono::milliseconds(200)) != std::future_status::ready) {
      if (cancel_->fired()) return false;
    }
    return written.get();
  }
  void end_stream() override {
    asio::post(s_->executor(), [s = s_] { s->queue_piece("", nullptr, true); });
  }
  void tunnel(int fd, std::string to_client) override {
    if (answered_.exchange(true)) {
      ::close(fd);
      return misuse("tunnel");
    }
    asio::post(s_->executor(), [s = s_, fd, t = std::move(to_client)] { s->start_tunnel(fd, t); });
  }
  bool cancelled() const override { return cancel_->fired(); }
  void on_cancel(std::function<void()> fn) override { cancel_->on_cancel(std::move(fn)); }

 private:
  static void misuse(const char* what) {
    KLOG(ERROR, "http handler answered twice").kv("call", what);
  }

  std::shared_ptr<Session<Stream>> s_;
  std::shared_ptr<CancelSignal> cancel_;
  std::atomic<bool> answered_{false};
};

}  // namespace

template <typename Stream>
void Session<Stream>::serve_async(const Request& r, const AsyncHandler& handler) {
  auto cancel = std::make_shared<CancelSignal>();
  {
    std::lock_guard lock(cancel_mu_);
    cancel_ = cancel;
  }
  KLOGV(5, "http request").kv("remote", remote_).kv("method", r.method).kv("path", r.path);
  auto ex = std::make_shared<ExchangeImpl<Stream>>(shared_from_this(), cancel);
  try {
    handler(r, ex);
  } catch (const std::exception& e) {
    KLOG(ERROR, "http handler threw").kv("path", r.path).kv("error", e.what());
    ex->respond(Response{500, kTextPlain, "internal server error\n"});
  }
}

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
    if (server_->tls() != nullptr) {
      admit(std::make_shared<Session<TlsStream>>(std::move(socket), server_));
    } else {
      admit(std::make_shared<Session<PlainStream>>(std::move(socket), server_));
    }
    do_accept();
  }

  template <typename S>
  void admit(std::shared_ptr<S> session) {
    if (server_->add_session(session.get(), session)) {
      session->start();
    } else {
      KLOGV(2, "http connection refused: limit reached")
          .kv("limit", server_->options().max_connections);
      // Session's destructor closes the socket; it was never registered, removal is a no-op.
    }
  }

  std::shared_ptr<ServerCore> server_;
  tcp::acceptor acceptor_;
  asio::steady_timer retry_;
};

Status detail::ServerCore::listen(const std::string& address, uint16_t port) {
  const std::string where = Endpoint{address, port}.str();
  if (!tls_error_.ok()) return tls_error_.Wrap("listen on " + where);
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
  KLOGV(1, "http server listening").kv("address", endpoint_str(bound)).kv("tls", tls_ != nullptr);
  return Status::Ok();
}

void detail::ServerCore::stop() {
  std::vector<std::shared_ptr<Listener>> listeners;
  std::vector<std::shared_ptr<SessionBase>> sessions;
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

void HttpServer::handle_prefix(std::string prefix, AsyncHandler handler) {
  core_->set_prefix_handler(std::move(prefix), std::move(handler));
}

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

Status HttpServer::set_certificate(const std::string& cert_pem, const std::string& key_pem) {
  return core_->set_certificate(cert_pem, key_pem);
}

namespace detail {

Request make_request(bhttp::request<bhttp::string_body>&& req, std::string remote_address, bool tls,
                     std::optional<PeerCertificate> peer) {
  Request r;
  r.method = std::string(req.method_string());
  r.target = std::string(req.target());
  auto q = r.target.find('?');
  r.path = r.target.substr(0, q);
  if (q != std::string::npos) r.query = r.target.substr(q + 1);
  r.remote_address = std::move(remote_address);
  for (const auto& f : req) r.headers.emplace_back(f.name_string(), f.value());
  r.body = std::move(req.body());
  r.tls = tls;
  r.peer_certificate = std::move(peer);
  return r;
}

Response answer_plain(const Handler* handler, const Request& r, bhttp::verb method) {
  if (handler == nullptr) return Response{404, kTextPlain, "404 page not found\n"};
  if (method != bhttp::verb::get && method != bhttp::verb::head) {
    Response resp{405, kTextPlain, "405 method not allowed\n"};
    resp.headers.emplace_back("Allow", "GET, HEAD");
    return resp;
  }
  try {
    return (*handler)(r);
  } catch (const std::exception& e) {
    KLOG(ERROR, "http handler threw").kv("path", r.path).kv("error", e.what());
    return Response{500, kTextPlain, "internal server error\n"};
  }
}

}  // namespace detail

}  // namespace knode::http
