#include "docker/http_client.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

namespace knode::docker {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using local = asio::local::stream_protocol;
using boost::system::error_code;

Result<std::string> socket_path(const std::string& endpoint) {
  static constexpr std::string_view kUnix = "unix://";
  std::string path;
  if (endpoint.starts_with(kUnix)) {
    path = endpoint.substr(kUnix.size());
  } else if (endpoint.find("://") == std::string::npos) {
    path = endpoint;
  } else {
    return Status::Error(
        "docker endpoint " + endpoint + ": only unix sockets are supported (unix:///path or /path)",
        EINVAL);
  }
  if (path.empty() || path.front() != '/') {
    return Status::Error("docker endpoint \"" + endpoint + "\": not an absolute socket path",
                         EINVAL);
  }
  return path;
}

// ---- one connection ----

namespace {

constexpr size_t kReadChunk = 32 * 1024;

Status io_error(const std::string& what, const error_code& ec) {
  if (ec == beast::error::timeout) return Status::Error(what + ": deadline exceeded", ETIMEDOUT);
  if (ec == asio::error::operation_aborted) return Status::Error(what + ": cancelled", ECANCELED);
  if (ec == bhttp::error::body_limit) return Status::Error(what + ": answer too large", EIO);
  return Status::Error(what + ": " + ec.message(), EIO);
}

bool is_success(int status) { return status >= 200 && status < 300; }

}  // namespace

class Connection {
 public:
  Connection(const std::string& path, Deadline deadline, Cancel* cancel)
      : path_(path), deadline_(deadline), cancel_(cancel) {
    if (cancel_ != nullptr) cancel_->attach(&io_);
  }
  ~Connection() {
    error_code ec;
    sock_.close(ec);
    if (cancel_ != nullptr) cancel_->detach();
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  Status connect() {
    error_code ec =
        run([&](auto handler) { sock_.async_connect(local::endpoint(path_), handler); });
    if (!ec) return Status::Ok();
    const std::string what = "docker: connect to " + path_;
    // No socket file, or nobody behind it: the daemon is down.
    if (ec == asio::error::connection_refused || ec == asio::error::not_found ||
        ec.value() == ENOENT) {
      return Status::Error(what + ": " + ec.message() + " (is dockerd running?)", ECONNREFUSED);
    }
    if (ec.value() == EACCES) return Status::Error(what + ": " + ec.message(), EACCES);
    return io_error(what, ec);
  }

  Status send(const HttpRequest& r, bool upgrade) {
    bhttp::request<bhttp::string_body> req;
    req.method_string(r.method);
    req.target(r.target);
    req.version(11);
    req.set(bhttp::field::host, "docker");
    req.set(bhttp::field::user_agent, "knode");
    if (upgrade) {
      req.set(bhttp::field::connection, "Upgrade");
      req.set(bhttp::field::upgrade, "tcp");
    } else {
      req.set(bhttp::field::connection, "close");
    }
    for (const auto& [k, v] : r.headers) req.set(k, v);
    if (!r.body.empty()) req.set(bhttp::field::content_type, "application/json");
    req.body() = r.body;
    req.prepare_payload();
    error_code ec = run([&](auto handler) { bhttp::async_write(sock_, req, handler); });
    if (ec) return io_error("docker " + r.method + " " + r.target + ": send", ec);
    return Status::Ok();
  }

  template <typename Body>
  Status read_header(bhttp::response_parser<Body>& p, const HttpRequest& r) {
    error_code ec = run([&](auto handler) { bhttp::async_read_header(sock_, buf_, p, handler); });
    if (ec) return io_error("docker " + r.method + " " + r.target + ": read the answer", ec);
    return Status::Ok();
  }

  // The rest of a message whose head `p` holds, as one string.
  Result<HttpResponse> read_whole(bhttp::response_parser<bhttp::string_body>& p,
                                  const HttpRequest& r, size_t limit) {
    p.body_limit(limit);
    if (!p.is_header_done()) {
      if (Status s = read_header(p, r); !s.ok()) return s;
    }
    // A 1xx or 204/304 answer has no body; the parser already knows.
    if (!p.is_done()) {
      error_code ec = run([&](auto handler) { bhttp::async_read(sock_, buf_, p, handler); });
      if (ec) return io_error("docker " + r.method + " " + r.target + ": read the answer", ec);
    }
    return head_of(p.get(), std::move(p.get().body()));
  }

  // Body pieces through on_data; the parser's head is already read.
  Status read_pieces(bhttp::response_parser<bhttp::buffer_body>& p, const HttpRequest& r,
                     const OnData& on_data) {
    p.body_limit(boost::none);
    char chunk[kReadChunk];
    while (!p.is_done()) {
      p.get().body().data = chunk;
      p.get().body().size = sizeof chunk;
      // read_some: whatever arrived is handed on at once (a log line must not wait for
      // the buffer to fill).
      error_code ec = run([&](auto handler) { bhttp::async_read_some(sock_, buf_, p, handler); });
      if (ec == bhttp::error::need_buffer) ec = {};
      if (ec) return io_error("docker " + r.method + " " + r.target + ": read the answer", ec);
      const size_t n = sizeof chunk - p.get().body().size;
      if (n > 0 && !on_data(std::string_view(chunk, n))) return Status::Ok();
    }
    return Status::Ok();
  }

  // What the connection carries after the head: first what the parser read ahead.
  Status read_raw(const HttpRequest& r, const OnData& on_data) {
    if (buf_.size() > 0) {
      auto data = buf_.data();
      std::string_view first(static_cast<const char*>(data.data()), data.size());
      if (!on_data(first)) return Status::Ok();
      buf_.consume(buf_.size());
    }
    char chunk[kReadChunk];
    for (;;) {
      size_t n = 0;
      error_code ec = run([&](auto handler) {
        sock_.async_read_some(asio::buffer(chunk), [&n, handler](error_code e, size_t got) mutable {
          n = got;
          handler(e, got);
        });
      });
      if (n > 0 && !on_data(std::string_view(chunk, n))) return Status::Ok();
      if (ec == asio::error::eof || ec == asio::error::connection_reset) return Status::Ok();
      if (ec) return io_error("docker " + r.method + " " + r.target + ": read the stream", ec);
    }
  }

  template <typename Fields>
  static HttpResponse head_of(const bhttp::response_header<Fields>& h, std::string body) {
    HttpResponse out;
    out.status = static_cast<int>(h.result_int());
    out.reason = std::string(h.reason());
    auto ct = h.find(bhttp::field::content_type);
    if (ct != h.end()) out.content_type = std::string(ct->value());
    out.body = std::move(body);
    return out;
  }

  beast::flat_buffer& buffer() { return buf_; }

  // The connection's socket as a blocking descriptor of the caller's (a duplicate: this
  // object still closes its own), with the bytes the parser read ahead.
  Result<std::pair<int, std::string>> take_raw() {
    int fd = ::fcntl(sock_.native_handle(), F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return Status::FromErrno("docker: dup the hijacked connection", errno);
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    auto data = buf_.data();
    std::string ahead(static_cast<const char*>(data.data()), data.size());
    buf_.consume(buf_.size());
    return std::make_pair(fd, std::move(ahead));
  }

 private:
  // One asynchronous operation on the private io_context, bounded by the deadline and
  // the canceller; on either the socket is closed.
  template <typename Start>
  error_code run(Start&& start) {
    return run_blocking(io_, deadline_, cancel_, std::forward<Start>(start), [this] {
      error_code ignored;
      sock_.close(ignored);
    });
  }

  asio::io_context io_{1};
  local::socket sock_{io_};
  beast::flat_buffer buf_;
  std::string path_;
  Deadline deadline_;
  Cancel* cancel_;
};

// ---- the client ----

Result<HttpResponse> UnixHttpClient::request(const HttpRequest& req, Deadline deadline) const {
  Connection c(path_, deadline, nullptr);
  if (Status s = c.connect(); !s.ok()) return s;
  if (Status s = c.send(req, false); !s.ok()) return s;
  bhttp::response_parser<bhttp::string_body> p;
  return c.read_whole(p, req, max_body_);
}

namespace {

// After a head that is not what the caller wanted: the rest of the answer, read whole (an
// error's JSON), with the head.
template <typename Body>
Result<HttpResponse> rest_as_error(Connection& c, bhttp::response_parser<Body>& head,
                                   const HttpRequest& req) {
  bhttp::response_parser<bhttp::string_body> p(std::move(head));
  return c.read_whole(p, req, 1u << 20);
}

}  // namespace

Result<HttpResponse> UnixHttpClient::stream(const HttpRequest& req, Deadline deadline,
                                            const OnData& on_data, Cancel* cancel) const {
  Connection c(path_, deadline, cancel);
  if (Status s = c.connect(); !s.ok()) return s;
  if (Status s = c.send(req, false); !s.ok()) return s;
  bhttp::response_parser<bhttp::buffer_body> p;
  if (Status s = c.read_header(p, req); !s.ok()) return s;
  if (!is_success(static_cast<int>(p.get().result_int()))) return rest_as_error(c, p, req);
  HttpResponse head = Connection::head_of(p.get(), "");
  if (Status s = c.read_pieces(p, req, on_data); !s.ok()) return s;
  return head;
}

Result<HttpResponse> UnixHttpClient::hijack(const HttpRequest& req, Deadline deadline,
                                            const OnData& on_data, Cancel* cancel) const {
  Connection c(path_, deadline, cancel);
  if (Status s = c.connect(); !s.ok()) return s;
  if (Status s = c.send(req, true); !s.ok()) return s;
  // Only the head is parsed: after a 101, or a 200 without a length, the connection
  // carries raw bytes (what the parser read ahead stays in the buffer for read_raw).
  bhttp::response_parser<bhttp::empty_body> p;
  if (Status s = c.read_header(p, req); !s.ok()) return s;
  const int status = static_cast<int>(p.get().result_int());
  if (status != 101 && status != 200) return rest_as_error(c, p, req);
  HttpResponse head = Connection::head_of(p.get(), "");
  if (Status s = c.read_raw(req, on_data); !s.ok()) return s;
  return head;
}

Result<Hijacked> UnixHttpClient::hijack_connection(const HttpRequest& req, Deadline deadline) const {
  Connection c(path_, deadline, nullptr);
  if (Status s = c.connect(); !s.ok()) return s;
  if (Status s = c.send(req, true); !s.ok()) return s;
  bhttp::response_parser<bhttp::empty_body> p;
  if (Status s = c.read_header(p, req); !s.ok()) return s;
  const int status = static_cast<int>(p.get().result_int());
  Hijacked out;
  if (status != 101 && status != 200) {
    auto r = rest_as_error(c, p, req);
    if (!r.ok()) return r.status();
    out.head = std::move(*r);
    return out;
  }
  out.head = Connection::head_of(p.get(), "");
  auto raw = c.take_raw();
  if (!raw.ok()) return raw.status();
  out.fd = raw->first;
  out.ahead = std::move(raw->second);
  return out;
}

// ---- escaping ----

namespace {

bool unreserved(unsigned char c) {
  return std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_' || c == '~';
}

std::string escape(std::string_view s, std::string_view keep) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (unreserved(c) || keep.find(static_cast<char>(c)) != std::string_view::npos) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace

std::string query_escape(std::string_view s) { return escape(s, ""); }
std::string path_escape(std::string_view s) { return escape(s, "/:@"); }

}  // namespace knode::docker
