#include "prober/http_client.h"

#include <openssl/ssl.h>

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <limits>

#include "prober/io.h"
#include "prober/text.h"
#include "knode/ascii.h"

namespace knode::kubelet::prober {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

constexpr int kMaxRedirects = 10;  // Go's default CheckRedirect stops after 10
constexpr std::uint32_t kMaxHeaderBytes = 1 << 20;

int default_port(std::string_view scheme) {
  if (scheme == "http") return 80;
  if (scheme == "https") return 443;
  return 0;
}

bool is_ip_literal(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// RFC 7230 tchar: what a header name may hold.
bool is_token_char(unsigned char c) {
  return std::isalnum(c) != 0 || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

// What may stand unescaped in a request target: RFC 3986 pchar, "/" and "?", and "%" of an
// escape already made. Anything else (spaces, controls, non-ASCII) is percent-encoded,
// as Go's URL.RequestURI does.
std::string escape_target(std::string_view raw) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char c : raw) {
    if (std::isalnum(c) != 0 || std::strchr("-._~!$&'()*+,;=:@/?%", c) != nullptr) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

// The request target of a probe's path: fragment dropped, "/" in front when missing.
std::string path_target(std::string_view path) {
  path = path.substr(0, path.find('#'));
  std::string target(path);
  if (target.empty() || target.front() != '/') target.insert(target.begin(), '/');
  return escape_target(target);
}

// RFC 3986 5.2.4, for an absolute path.
std::string remove_dot_segments(std::string_view path) {
  std::vector<std::string_view> segments;
  for (size_t pos = path.empty() || path.front() != '/' ? 0 : 1; pos <= path.size();) {
    const size_t next = std::min(path.find('/', pos), path.size());
    segments.push_back(path.substr(pos, next - pos));
    pos = next + 1;
  }
  const std::string_view last = segments.empty() ? std::string_view() : segments.back();
  const bool trailing_slash = last.empty() || last == "." || last == "..";
  if (!segments.empty() && last.empty()) segments.pop_back();
  std::vector<std::string_view> out;
  for (const auto seg : segments) {
    if (seg == "..") {
      if (!out.empty()) out.pop_back();
    } else if (seg != ".") {
      out.push_back(seg);
    }
  }
  std::string result = "/";
  for (size_t i = 0; i < out.size(); ++i) {
    if (i != 0) result += '/';
    result += out[i];
  }
  if (trailing_slash && !out.empty()) result += '/';
  return result;
}

bool has_scheme(std::string_view ref) {
  if (ref.empty() || std::isalpha(static_cast<unsigned char>(ref.front())) == 0) return false;
  for (const char c : ref) {
    if (c == ':') return true;
    if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '+' && c != '-' && c != '.') {
      return false;
    }
  }
  return false;
}

bool is_redirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

// The bytes of a record header the peer sent, seen before OpenSSL judges them: a plain
// HTTP server answers a ClientHello with "HTTP/1.1 400 ...", which is how Go tells "server
// gave HTTP response to HTTPS client" from other handshake failures.
void peek_record_header(int write_p, int /*version*/, int content_type, const void* buf, size_t len,
                        SSL* /*ssl*/, void* arg) {
  if (write_p == 0 && content_type == SSL3_RT_HEADER && len >= 5 &&
      std::memcmp(buf, "HTTP/", 5) == 0) {
    *static_cast<bool*>(arg) = true;
  }
}

// What one request on one connection came to.
struct Exchange {
  Status error;
  bool https_to_http_server = false;
  int status = 0;
  std::string body;
  bool truncated = false;
  std::optional<std::string> location;
};

std::string read_error_text(const beast::tcp_stream& tcp, const boost::system::error_code& ec) {
  boost::system::error_code e1, e2;
  const auto local = tcp.socket().local_endpoint(e1);
  const auto remote = tcp.socket().remote_endpoint(e2);
  std::string where = "read tcp ";
  if (!e1 && !e2) {
    where += join_host_port(local.address().to_string(), local.port()) + "->" +
             join_host_port(remote.address().to_string(), remote.port()) + ": ";
  }
  return where + "read: " + io_error_text(ec);
}

template <typename Stream>
void talk(IoSession& session, Stream& stream, const HttpRequest& request, const Url& url,
          const std::string& host_header, Exchange& x) {
  const auto& tcp = beast::get_lowest_layer(stream);

  http::request<http::empty_body> req{http::verb::get, url.target, 11};
  req.set(http::field::host, host_header);
  bool user_agent_seen = false;
  for (const auto& [name, value] : request.headers) {
    if (name == "User-Agent") {
      if (!user_agent_seen && !value.empty()) req.insert(http::field::user_agent, value);
      user_agent_seen = true;
      continue;
    }
    req.insert(name, value);
  }
  // Go's transport with keep-alives disabled.
  if (req.find(http::field::connection) == req.end()) req.set(http::field::connection, "close");

  auto ec = session.run([&](auto h) { http::async_write(stream, req, std::move(h)); });
  if (ec == beast::error::timeout) {
    x.error = Status::Error(
        "context deadline exceeded (Client.Timeout exceeded while awaiting headers)", ETIMEDOUT);
    return;
  }
  if (ec == asio::error::operation_aborted) {
    x.error = Status::Error("context canceled", ECANCELED);
    return;
  }
  // A write error still lets an answer already sent be read, as Go does; reading reports it.

  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.header_limit(kMaxHeaderBytes);
  // No limit: at most kMaxBodyBytes are read anyway. (Not boost::none, which Beast 1.74
  // compares as a limit every length exceeds.)
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  ec = session.run([&](auto h) { http::async_read_header(stream, buffer, parser, std::move(h)); });
  if (ec) {
    if (ec == beast::error::timeout) {
      x.error = Status::Error(
          "context deadline exceeded (Client.Timeout exceeded while awaiting headers)", ETIMEDOUT);
    } else if (ec == asio::error::operation_aborted) {
      x.error = Status::Error("context canceled", ECANCELED);
    } else if (ec == http::error::end_of_stream || ec == asio::error::eof ||
               ec == asio::ssl::error::stream_truncated) {
      x.error = Status::Error("EOF", EPIPE);
    } else if (ec.category() == http::make_error_code(http::error::bad_version).category()) {
      x.error = Status::Error(
          "net/http: HTTP/1.x transport connection broken: malformed HTTP response", EPROTO);
    } else {
      x.error = Status::Error(read_error_text(tcp, ec), EIO);
    }
    return;
  }
  auto& res = parser.get();
  x.status = static_cast<int>(res.result_int());
  if (auto it = res.find(http::field::location); it != res.end()) {
    x.location = std::string(it->value());
  }

  // At most kMaxBodyBytes of the body; the rest is never read (the connection closes).
  x.body.resize(kMaxBodyBytes);
  std::size_t got = 0;
  while (!parser.is_done() && got < kMaxBodyBytes) {
    res.body().data = x.body.data() + got;
    res.body().size = kMaxBodyBytes - got;
    ec = session.run([&](auto h) { http::async_read(stream, buffer, parser, std::move(h)); });
    got = kMaxBodyBytes - res.body().size;
    if (ec == http::error::need_buffer) ec = {};
    if (ec == asio::ssl::error::stream_truncated) {
      // A TLS peer that closes without close_notify ends an until-close body, as Go takes it.
      parser.put_eof(ec);
    }
    if (ec) break;
  }
  x.body.resize(got);
  x.truncated = !parser.is_done();
  if (ec) {
    if (ec == beast::error::timeout) {
      x.error = Status::Error(
          "context deadline exceeded (Client.Timeout or context cancellation while reading body)",
          ETIMEDOUT);
    } else if (ec == asio::error::operation_aborted) {
      x.error = Status::Error("context canceled", ECANCELED);
    } else if (ec == http::error::partial_message || ec == asio::error::eof) {
      x.error = Status::Error("unexpected EOF", EPIPE);
    } else {
      x.error = Status::Error(read_error_text(tcp, ec), EIO);
    }
  }
}

std::optional<std::string> invalid_header(const HttpRequest& r) {
  for (const auto& [name, value] : r.headers) {
    if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) {
          return is_token_char(static_cast<unsigned char>(c));
        })) {
      return "net/http: invalid header field name " + go_quote(name);
    }
    for (const unsigned char c : value) {
      if ((c < 0x20 && c != '\t') || c == 0x7f) {
        return "net/http: invalid header field value for " + go_quote(name);
      }
    }
  }
  for (const unsigned char c : r.host) {
    if (c <= 0x20 || c == 0x7f || c == '/' || c == '\\') return "http: invalid Host header";
  }
  return std::nullopt;
}

}  // namespace

std::string Url::host_port() const { return join_host_port(host, port); }

std::string Url::str() const { return scheme + "://" + host_port() + target; }

std::optional<Url> parse_url(std::string_view text) {
  text = text.substr(0, text.find('#'));
  const size_t sep = text.find("://");
  if (sep == std::string_view::npos || !has_scheme(text)) return std::nullopt;
  Url u;
  u.scheme = ascii_lower(text.substr(0, sep));
  std::string_view rest = text.substr(sep + 3);
  const size_t auth_end = std::min(rest.find_first_of("/?"), rest.size());
  std::string_view authority = rest.substr(0, auth_end);
  if (const size_t at = authority.rfind('@'); at != std::string_view::npos) {
    authority = authority.substr(at + 1);
  }
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    u.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return std::nullopt;
      port = after.substr(1);
    }
  } else {
    const size_t colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      u.host = std::string(authority.substr(0, colon));
      port = authority.substr(colon + 1);
    } else {
      u.host = std::string(authority);
    }
  }
  // A bracket left in the host ("::5]:80" without its "[") has no reading that prints back
  // as itself: refused, as Go's url.Parse refuses it.
  if (u.host.empty() || u.host.find_first_of("[]") != std::string::npos) return std::nullopt;
  if (port.empty()) {
    u.port = default_port(u.scheme);
  } else {
    u.port = 0;
    for (const char c : port) {
      if (std::isdigit(static_cast<unsigned char>(c)) == 0 || u.port > 65535) return std::nullopt;
      u.port = u.port * 10 + (c - '0');
    }
    if (u.port > 65535) return std::nullopt;
  }
  std::string target(rest.substr(auth_end));
  if (target.empty() || target.front() == '?') target.insert(target.begin(), '/');
  u.target = escape_target(target);
  return u;
}

std::optional<Url> resolve_reference(const Url& base, std::string_view ref) {
  ref = ref.substr(0, ref.find('#'));
  if (has_scheme(ref)) return parse_url(ref);
  if (ref.substr(0, 2) == "//") return parse_url(base.scheme + ":" + std::string(ref));
  Url u = base;
  if (ref.empty()) return u;
  const std::string_view base_path = std::string_view(base.target).substr(0, base.target.find('?'));
  std::string_view ref_path = ref.substr(0, ref.find('?'));
  const std::string_view ref_query =
      ref.find('?') == std::string_view::npos ? std::string_view() : ref.substr(ref.find('?'));
  std::string path;
  if (ref_path.empty()) {
    path = std::string(base_path);
  } else if (ref_path.front() == '/') {
    path = remove_dot_segments(ref_path);
  } else {
    const size_t slash = base_path.rfind('/');
    const std::string merged =
        std::string(base_path.substr(0, slash == std::string_view::npos ? 0 : slash + 1)) +
        std::string(ref_path);
    path = remove_dot_segments(merged.front() == '/' ? merged : "/" + merged);
  }
  if (path.empty()) path = "/";
  u.target = escape_target(path + std::string(ref_query));
  return u;
}

std::string canonical_header_key(std::string_view name) {
  for (const char c : name) {
    if (c == ' ' || !is_token_char(static_cast<unsigned char>(c))) return std::string(name);
  }
  std::string out(name);
  bool upper = true;
  for (char& c : out) {
    c = static_cast<char>(upper ? std::toupper(static_cast<unsigned char>(c))
                                : std::tolower(static_cast<unsigned char>(c)));
    upper = c == '-';
  }
  return out;
}

HttpRequest http_get_request(const api::HTTPGetAction& action, const std::string& pod_ip, int port,
                             std::string_view user_agent) {
  HttpRequest r;
  r.url.scheme = action.scheme.empty() ? "http" : ascii_lower(action.scheme);
  r.url.host = action.host.empty() ? pod_ip : action.host;
  r.url.port = port;
  r.url.target = path_target(action.path);

  Headers headers;
  for (const auto& h : action.http_headers) {
    headers.emplace_back(canonical_header_key(h.name), h.value);
  }
  const auto first = [&](std::string_view key) -> const std::string* {
    for (const auto& [k, v] : headers) {
      if (k == key) return &v;
    }
    return nullptr;
  };
  if (first("User-Agent") == nullptr) headers.emplace_back("User-Agent", std::string(user_agent));
  if (const std::string* accept = first("Accept"); accept == nullptr) {
    headers.emplace_back("Accept", "*/*");
  } else if (accept->empty()) {
    std::erase_if(headers, [](const auto& h) { return h.first == "Accept"; });
  }
  const std::string* host = first("Host");
  r.host = host != nullptr && !host->empty() ? *host : r.url.host_port();
  std::erase_if(headers, [](const auto& h) { return h.first == "Host"; });
  r.headers = std::move(headers);
  return r;
}

HttpClient::HttpClient()
    : tls_(std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client)) {
  // Upstream's probes and hooks skip verification: the kubelet cannot know the pod's CA.
  tls_->set_verify_mode(asio::ssl::verify_none);
  SSL_CTX_set_min_proto_version(tls_->native_handle(), TLS1_2_VERSION);
}

HttpClient::~HttpClient() = default;

HttpResponse HttpClient::get(const HttpRequest& request,
                             std::optional<std::chrono::steady_clock::time_point> deadline,
                             std::stop_token stop) const {
  HttpResponse out;
  out.url = request.url;
  const auto fail = [&](const Url& url, const std::string& why, int err) {
    out.error = Status::Error("Get " + go_quote(url.str()) + ": " + why, err);
    return out;
  };
  if (auto bad = invalid_header(request)) return fail(request.url, *bad, EINVAL);

  IoSession session(deadline, std::move(stop));
  const bool custom_host = request.host != request.url.host_port();
  std::string host_header = request.host;
  std::vector<Url> via;
  Url url = request.url;
  for (;;) {
    out = HttpResponse{};
    out.url = url;
    if (url.scheme != "http" && url.scheme != "https") {
      return fail(url, "unsupported protocol scheme " + go_quote(url.scheme), EINVAL);
    }
    Exchange x;
    {
      beast::tcp_stream tcp(session.io());
      Status dialed = dial(session, tcp, url.host, url.port);
      if (!dialed.ok()) {
        std::string why = dialed.message();
        if (dialed.error_number() == ETIMEDOUT)
          why += " (Client.Timeout exceeded while awaiting headers)";
        return fail(url, why, dialed.error_number());
      }
      if (url.scheme == "http") {
        talk(session, tcp, request, url, host_header, x);
      } else {
        beast::ssl_stream<beast::tcp_stream> tls(std::move(tcp), *tls_);
        SSL* ssl = tls.native_handle();
        // Go sends SNI for a name, never for an IP address.
        if (!is_ip_literal(url.host)) SSL_set_tlsext_host_name(ssl, url.host.c_str());
        bool http_answer = false;
        SSL_set_msg_callback(ssl, &peek_record_header);
        SSL_set_msg_callback_arg(ssl, &http_answer);
        session.arm(beast::get_lowest_layer(tls));
        auto ec = session.run(
            [&](auto h) { tls.async_handshake(asio::ssl::stream_base::client, std::move(h)); });
        SSL_set_msg_callback(ssl, nullptr);
        if (ec) {
          if (http_answer) {
            out.https_to_http_server = true;
            return fail(url, "http: server gave HTTP response to HTTPS client", EPROTO);
          }
          if (ec == beast::error::timeout) {
            return fail(
                url, "context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
                ETIMEDOUT);
          }
          if (ec == asio::error::operation_aborted) return fail(url, "context canceled", ECANCELED);
          if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
            return fail(url, "EOF", EPIPE);
          }
          return fail(url, "tls: " + ec.message(), EPROTO);
        }
        talk(session, tls, request, url, host_header, x);
      }
    }
    out.status = x.status;
    out.body = std::move(x.body);
    out.truncated = x.truncated;
    if (!x.error.ok()) {
      if (x.status != 0) {
        out.error = x.error;  // the body broke off: Go's body read error, not a url.Error
        return out;
      }
      return fail(url, x.error.message(), x.error.error_number());
    }
    if (!is_redirect(x.status) || !x.location) return out;

    const std::string& loc = *x.location;
    auto next = resolve_reference(url, loc);
    if (!next) {
      return fail(url, "failed to parse Location header " + go_quote(loc), EPROTO);
    }
    via.push_back(url);
    // Upstream's probes follow a redirect only on the host they started on; another host
    // ends the chain here, with this 3xx as the answer.
    if (next->host != via.front().host) {
      out.redirect_not_followed = true;
      return out;
    }
    if (static_cast<int>(via.size()) >= kMaxRedirects) {
      out.error = Status::Error("Get " + go_quote(loc) + ": stopped after 10 redirects", ELOOP);
      return out;
    }
    // Go keeps a Host override through a relative redirect only.
    host_header = custom_host && !has_scheme(loc) ? request.host : next->host_port();
    url = *next;
  }
}

}  // namespace knode::kubelet::prober
