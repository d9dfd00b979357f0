#include "knode/kube/client.h"
#include "knode/kube/protobuf.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <cerrno>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "knode/openssl_errors.h"

namespace knode::kube {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using SteadyTime = std::chrono::steady_clock::time_point;

// ---- RateLimiter ----

RateLimiter::RateLimiter(double qps, int burst)
    : qps_(qps), burst_(std::max(1, burst)), tokens_(std::max(1, burst)),
      last_(std::chrono::steady_clock::now()) {}

bool RateLimiter::acquire() {
  std::unique_lock lock(mu_);
  for (;;) {
    if (stopped_) return false;
    if (qps_ <= 0) return true;  // unlimited
    auto now = std::chrono::steady_clock::now();
    tokens_ = std::min(burst_, tokens_ + std::chrono::duration<double>(now - last_).count() * qps_);
    last_ = now;
    if (tokens_ >= 1) {
      tokens_ -= 1;
      return true;
    }
    auto wait = std::chrono::duration<double>((1 - tokens_) / qps_);
    cv_.wait_for(lock, std::chrono::duration_cast<std::chrono::nanoseconds>(wait));
  }
}

void RateLimiter::stop() {
  std::lock_guard lock(mu_);
  stopped_ = true;
  cv_.notify_all();
}

// ---- TLS settings ----

namespace {

Status io_error(const std::string& what, const error_code& ec) {
  if (ec == beast::error::timeout) return Status::Error(what + ": deadline exceeded", ETIMEDOUT);
  if (ec == asio::error::operation_aborted) return Status::Error(what + ": cancelled", ECANCELED);
  if (ec == bhttp::error::body_limit) return Status::Error(what + ": answer too large", EIO);
  if (ec == asio::error::connection_refused) return Status::Error(what + ": " + ec.message(), ECONNREFUSED);
  if (ec.category() == asio::error::get_ssl_category()) {
    std::string reason = ec.message();
    if (ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
      reason += " (the server's certificate is not signed by the kubeconfig's certificate authority, "
                "or does not name the server's address)";
    }
    return Status::Error(what + ": TLS: " + reason, EACCES);
  }
  return Status::Error(what + ": " + ec.message(), EIO);
}

bool is_ip(const std::string& host) {
  error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

}  // namespace

struct RestClient::Tls {
  ssl::context ctx{ssl::context::tls_client};
  bool plain = false;  // http://
};

// ---- one connection ----

class Connection {
 public:
  Connection(ssl::context& ctx, bool plain, std::shared_ptr<void> keep)
      : keep_(std::move(keep)), stream_(io_, ctx), plain_(plain) {}
  ~Connection() {
    error_code ec;
    stream_.lowest_layer().close(ec);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Binds the next operations to a deadline and a canceller.
  void begin(SteadyTime deadline, Cancel* cancel) {
    deadline_ = deadline;
    cancel_ = cancel;
    if (cancel_) cancel_->attach(&io_);
  }
  void end() {
    if (cancel_) cancel_->detach();
    cancel_ = nullptr;
  }

  Status open(const KubeConfig& c) {
    const std::string what = "connect to " + c.server;
    tcp::resolver resolver(io_);
    error_code ec;
    auto results = resolver.resolve(c.host(), c.port(), ec);
    if (ec) return Status::Error(what + ": resolve " + c.host() + ": " + ec.message(), EIO);
    ec = run([&](auto handler) { asio::async_connect(stream_.next_layer(), results, handler); });
    if (ec) return io_error(what, ec);
    stream_.next_layer().set_option(tcp::no_delay(true), ec);
    if (plain_) return Status::Ok();
    SSL* s = stream_.native_handle();
    const std::string name = c.tls_server_name.empty() ? c.host() : c.tls_server_name;
    if (!is_ip(name)) SSL_set_tlsext_host_name(s, name.c_str());
    if (!c.insecure_skip_tls_verify) {
      X509_VERIFY_PARAM* param = SSL_get0_param(s);
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      int rc = is_ip(name) ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str())
                           : X509_VERIFY_PARAM_set1_host(param, name.c_str(), 0);
      if (rc != 1) return Status::Error(what + ": cannot check the server's name " + name, EINVAL);
    }
    ec = run([&](auto handler) { stream_.async_handshake(ssl::stream_base::client, handler); });
    if (ec) return io_error(what + ": TLS handshake", ec);
    return Status::Ok();
  }

  Status send(bhttp::request<bhttp::string_body>& req) {
    error_code ec = run([&](auto handler) {
      if (plain_) {
        bhttp::async_write(stream_.next_layer(), req, handler);
      } else {
        bhttp::async_write(stream_, req, handler);
      }
    });
    if (ec) return io_error("send", ec);
    return Status::Ok();
  }

  template <typename Body>
  Status read_header(bhttp::response_parser<Body>& p) {
    error_code ec = run([&](auto handler) {
      if (plain_) {
        bhttp::async_read_header(stream_.next_layer(), buf_, p, handler);
      } else {
        bhttp::async_read_header(stream_, buf_, p, handler);
      }
    });
    if (ec) return io_error("read the answer", ec);
    return Status::Ok();
  }

  Status read_rest(bhttp::response_parser<bhttp::string_body>& p) {
    if (p.is_done()) return Status::Ok();
    error_code ec = run([&](auto handler) {
      if (plain_) {
        bhttp::async_read(stream_.next_layer(), buf_, p, handler);
      } else {
        bhttp::async_read(stream_, buf_, p, handler);
      }
    });
    if (ec) return io_error("read the answer", ec);
    return Status::Ok();
  }

  // The body piece by piece; the head is read. `idle` restarts with every piece.
  Status read_pieces(bhttp::response_parser<bhttp::buffer_body>& p, std::chrono::milliseconds idle,
                     const std::function<bool(std::string_view)>& on_data) {
    p.body_limit(boost::none);
    std::vector<char> chunk(64 * 1024);
    while (!p.is_done()) {
      p.get().body().data = chunk.data();
      p.get().body().size = chunk.size();
      deadline_ = std::chrono::steady_clock::now() + idle;
      error_code ec = run([&](auto handler) {
        if (plain_) {
          bhttp::async_read_some(stream_.next_layer(), buf_, p, handler);
        } else {
          bhttp::async_read_some(stream_, buf_, p, handler);
        }
      });
      if (ec == bhttp::error::need_buffer) ec = {};
      if (ec) return io_error("read the stream", ec);
      const size_t n = chunk.size() - p.get().body().size;
      if (n > 0 && !on_data(std::string_view(chunk.data(), n))) return Status::Error("stopped", ECANCELED);
    }
    return Status::Ok();
  }

 private:
  // One asynchronous operation on the private io_context, bounded by the deadline and
  // the canceller.
  template <typename Start>
  error_code run(Start&& start) {
    return run_blocking(io_, deadline_, cancel_, std::forward<Start>(start), [this] {
      error_code ignored;
      stream_.lowest_layer().close(ignored);
    });
  }

  std::shared_ptr<void> keep_;  // the TLS settings the stream was made with
  asio::io_context io_{1};
  ssl::stream<tcp::socket> stream_;
  beast::flat_buffer buf_;
  bool plain_;
  SteadyTime deadline_{};
  Cancel* cancel_ = nullptr;
};

// ---- RestClient ----

RestClient::RestClient(KubeConfig config, ClientOptions options)
    : config_(std::move(config)), options_(std::move(options)), limiter_(options_.qps, options_.burst) {}

RestClient::~RestClient() = default;

Result<std::shared_ptr<RestClient::Tls>> RestClient::make_tls(const KubeConfig& config) {
  auto tls = std::make_shared<Tls>();
  const std::string what = "kubeconfig " + config.source;
  tls->plain = config.server.starts_with("http://");
  auto& ctx = tls->ctx;
  error_code ec;
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                  ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  if (config.insecure_skip_tls_verify) {
    ctx.set_verify_mode(ssl::verify_none);
  } else {
    ctx.set_verify_mode(ssl::verify_peer);
    if (!config.ca_pem.empty()) {
      ctx.add_certificate_authority(asio::buffer(config.ca_pem), ec);
      if (ec) return Status::Error(what + ": certificate authority: " + ec.message() + " " + openssl_errors());
    } else {
      ctx.set_default_verify_paths(ec);
    }
  }
  if (!config.client_cert_pem.empty()) {
    ctx.use_certificate_chain(asio::buffer(config.client_cert_pem), ec);
    if (ec) return Status::Error(what + ": client certificate: " + ec.message() + " " + openssl_errors());
    ctx.use_private_key(asio::buffer(config.client_key_pem), ssl::context::pem, ec);
    if (ec) return Status::Error(what + ": client key: " + ec.message() + " " + openssl_errors());
    if (SSL_CTX_check_private_key(ctx.native_handle()) != 1) {
      return Status::Error(what + ": the client key does not belong to the client certificate");
    }
  }
  return tls;
}

Result<std::unique_ptr<RestClient>> RestClient::create(const KubeConfig& config, ClientOptions options) {
  auto tls = make_tls(config);
  if (!tls.ok()) return tls.status();
  std::unique_ptr<RestClient> c(new RestClient(config, std::move(options)));
  c->tls_ = std::move(*tls);
  return c;
}

std::shared_ptr<RestClient::Tls> RestClient::tls() const {
  std::lock_guard lock(tls_mu_);
  return tls_;
}

Status RestClient::reload_client_certificate(const std::string& cert_pem, const std::string& key_pem) {
  KubeConfig next = config_;
  next.client_cert_pem = cert_pem;
  next.client_key_pem = key_pem;
  auto tls = make_tls(next);
  if (!tls.ok()) return tls.status();
  {
    std::lock_guard lock(tls_mu_);
    tls_ = std::move(*tls);
  }
  std::lock_guard lock(idle_mu_);
  idle_.clear();  // kept-alive connections authenticated with the old certificate
  return Status::Ok();
}

void RestClient::stop() { limiter_.stop(); }

std::string RestClient::bearer() const {
  if (!config_.token_file.empty()) {
    std::ifstream in(config_.token_file);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string t = ss.str();
    while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.pop_back();
    if (!t.empty()) return t;
  }
  return config_.token;
}

Result<std::unique_ptr<Connection>> RestClient::connect(Cancel* cancel, SteadyTime deadline) {
  auto tls = this->tls();
  auto c = std::make_unique<Connection>(tls->ctx, tls->plain, tls);
  c->begin(std::min(deadline, std::chrono::steady_clock::now() + options_.connect_timeout), cancel);
  Status s = c->open(config_);
  c->end();
  if (!s.ok()) return s;
  return c;
}

std::unique_ptr<Connection> RestClient::take_idle() {
  std::lock_guard lock(idle_mu_);
  if (idle_.empty()) return nullptr;
  auto c = std::move(idle_.back());
  idle_.pop_back();
  return c;
}

void RestClient::give_back(std::unique_ptr<Connection> c) {
  std::lock_guard lock(idle_mu_);
  if (idle_.size() < options_.max_idle_connections) idle_.push_back(std::move(c));
}

namespace {

bhttp::request<bhttp::string_body> make_request(std::string_view method, const std::string& target,
                                                const KubeConfig& c, const std::string& ua,
                                                const std::string& token, const std::string& body,
                                                std::string_view content_type, std::string_view accept) {
  bhttp::request<bhttp::string_body> req;
  req.method_string(std::string(method));
  req.target(target);
  req.version(11);
  req.set(bhttp::field::host, c.host() + ":" + c.port());
  req.set(bhttp::field::user_agent, ua);
  req.set(bhttp::field::accept, std::string(accept));
  if (!token.empty()) req.set(bhttp::field::authorization, "Bearer " + token);
  if (!body.empty()) {
    req.set(bhttp::field::content_type, std::string(content_type));
    req.body() = body;
  }
  req.keep_alive(true);
  req.prepare_payload();
  return req;
}

template <typename Fields>
Response head_of(const bhttp::response_header<Fields>& h) {
  Response r;
  r.status = static_cast<int>(h.result_int());
  if (auto ct = h.find(bhttp::field::content_type); ct != h.end()) r.content_type = std::string(ct->value());
  return r;
}

}  // namespace

Result<Response> RestClient::request(std::string_view method, const std::string& target,
                                     const std::string& body, std::string_view content_type,
                                     Cancel* cancel, std::string_view accept) {
  const std::string what = std::string(method) + " " + target;
  if (!limiter_.acquire()) return Status::Error(what + ": client stopped", ECANCELED);
  const SteadyTime deadline = std::chrono::steady_clock::now() + options_.timeout;
  auto req = make_request(method, target, config_, options_.user_agent, bearer(), body, content_type, accept);
  // A reused keep-alive connection may have been closed by the server meanwhile: a
  // failure before any answer on one is retried once on a fresh connection.
  for (int attempt = 0;; ++attempt) {
    std::unique_ptr<Connection> conn = attempt == 0 ? take_idle() : nullptr;
    const bool reused = conn != nullptr;
    if (!conn) {
      auto c = connect(cancel, deadline);
      if (!c.ok()) return c.status().Wrap(what);
      conn = std::move(*c);
    }
    conn->begin(deadline, cancel);
    Status s = conn->send(req);
    bhttp::response_parser<bhttp::string_body> p;
    p.body_limit(options_.max_body_bytes);
    if (s.ok()) s = conn->read_header(p);
    if (!s.ok()) {
      conn->end();
      if (reused && s.error_number() == EIO) continue;
      return s.Wrap(what);
    }
    s = conn->read_rest(p);
    conn->end();
    if (!s.ok()) return s.Wrap(what);
    Response r = head_of(p.get());
    const bool keep = p.get().keep_alive();
    r.body = std::move(p.get().body());
    if (keep) give_back(std::move(conn));
    return r;
  }
}

Result<Response> RestClient::stream_lines(const std::string& target,
                                          const std::function<bool(std::string_view)>& on_line,
                                          std::chrono::milliseconds idle, Cancel* cancel) {
  return stream(
      target, "application/json", [&](std::string_view frame, bool) { return on_line(frame); }, idle, cancel);
}

Result<Response> RestClient::stream(const std::string& target, std::string_view accept,
                                    const std::function<bool(std::string_view, bool)>& on_frame,
                                    std::chrono::milliseconds idle, Cancel* cancel) {
  const std::string what = "GET " + target;
  if (!limiter_.acquire()) return Status::Error(what + ": client stopped", ECANCELED);
  // Always a fresh connection: a watch holds it for minutes.
  auto c = connect(cancel, std::chrono::steady_clock::now() + options_.connect_timeout);
  if (!c.ok()) return c.status().Wrap(what);
  auto& conn = **c;
  conn.begin(std::chrono::steady_clock::now() + options_.timeout, cancel);
  auto req = make_request("GET", target, config_, options_.user_agent, bearer(), "", "", accept);
  Status s = conn.send(req);
  bhttp::response_parser<bhttp::buffer_body> p;
  if (s.ok()) s = conn.read_header(p);
  if (!s.ok()) {
    conn.end();
    return s.Wrap(what);
  }
  Response head = head_of(p.get());
  if (!head.ok()) {
    bhttp::response_parser<bhttp::string_body> rest(std::move(p));
    rest.body_limit(1u << 20);
    s = conn.read_rest(rest);
    conn.end();
    if (!s.ok()) return s.Wrap(what);
    head.body = std::move(rest.get().body());
    return head;
  }
  if (protobuf::is_protobuf(head.content_type)) {
    FrameSplitter frames;
    FrameSplitter::Fed fed = FrameSplitter::Fed::kMore;
    auto deliver = [&](std::string_view f) { return on_frame(f, true); };
    s = conn.read_pieces(p, idle, [&](std::string_view data) {
      fed = frames.feed(data, deliver);
      return fed == FrameSplitter::Fed::kMore;
    });
    conn.end();
    if (fed == FrameSplitter::Fed::kStopped) return head;
    if (fed == FrameSplitter::Fed::kTooLong) return Status::Error(what + ": a frame of the stream is over 16 MiB", EMSGSIZE);
    if (!s.ok()) return s.Wrap(what);
    if (frames.pending() != 0) return Status::Error(what + ": the stream ended inside a frame", EIO);
    return head;
  }
  LineSplitter lines;
  LineSplitter::Fed fed = LineSplitter::Fed::kMore;
  auto deliver = [&](std::string_view l) { return on_frame(l, false); };
  s = conn.read_pieces(p, idle, [&](std::string_view data) {
    fed = lines.feed(data, deliver);
    return fed == LineSplitter::Fed::kMore;
  });
  conn.end();
  if (fed == LineSplitter::Fed::kStopped) return head;
  if (fed == LineSplitter::Fed::kTooLong) return Status::Error(what + ": a line of the stream is over 16 MiB", EMSGSIZE);
  if (!s.ok()) return s.Wrap(what);
  lines.finish(deliver);
  return head;
}

FrameSplitter::Fed FrameSplitter::feed(std::string_view data, const std::function<bool(std::string_view)>& on_frame) {
  pending_.append(data);
  size_t start = 0;
  while (pending_.size() - start >= 4) {
    const auto* b = reinterpret_cast<const unsigned char*>(pending_.data() + start);
    const size_t n = (size_t{b[0]} << 24) | (size_t{b[1]} << 16) | (size_t{b[2]} << 8) | size_t{b[3]};
    if (n > max_frame_) {
      pending_.clear();
      return Fed::kTooLong;
    }
    if (pending_.size() - start - 4 < n) break;
    if (!on_frame(std::string_view(pending_).substr(start + 4, n))) {
      pending_.clear();
      return Fed::kStopped;
    }
    start += 4 + n;
  }
  pending_.erase(0, start);
  return Fed::kMore;
}

LineSplitter::Fed LineSplitter::feed(std::string_view data, const std::function<bool(std::string_view)>& on_line) {
  pending_.append(data);
  size_t start = 0;
  for (size_t nl; (nl = pending_.find('\n', start)) != std::string::npos; start = nl + 1) {
    if (nl > start && !on_line(std::string_view(pending_).substr(start, nl - start))) {
      pending_.clear();
      return Fed::kStopped;
    }
  }
  pending_.erase(0, start);
  if (pending_.size() > max_line_) {
    pending_.clear();
    return Fed::kTooLong;
  }
  return Fed::kMore;
}

void LineSplitter::finish(const std::function<bool(std::string_view)>& on_line) {
  if (!pending_.empty()) on_line(pending_);
  pending_.clear();
}

// ---- helpers ----

std::string query_escape(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string status_message(const Response& r) {
  nlohmann::json j;
  if (protobuf::is_protobuf(r.content_type)) {
    // A meta.v1.Status in the envelope; its bytes are no text to show otherwise.
    if (auto env = protobuf::unwrap(r.body); env.ok() && env->kind == "Status") {
      if (auto st = protobuf::status_json(env->raw); st.ok()) j = std::move(*st);
    }
    if (!j.is_object() || !j.contains("message") || !j["message"].is_string()) return "HTTP " + std::to_string(r.status);
  } else {
    j = nlohmann::json::parse(r.body, nullptr, false);
  }
  if (j.is_object() && j.contains("message") && j["message"].is_string()) {
    return j["message"].get<std::string>();
  }
  std::string b = r.body.substr(0, 200);
  while (!b.empty() && std::isspace(static_cast<unsigned char>(b.back()))) b.pop_back();
  return b.empty() ? "HTTP " + std::to_string(r.status) : b;
}

}  // namespace knode::kube
