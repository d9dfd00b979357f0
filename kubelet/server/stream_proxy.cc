#include "server/stream_proxy.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

#include "knode/log.h"
#include "knode/ascii.h"

namespace knode::kubelet {
namespace {

bool has_token(std::string_view header, std::string_view token) {
  const std::string h = ascii_lower(header);
  std::size_t pos = 0;
  while (pos <= h.size()) {
    auto comma = h.find(',', pos);
    std::string_view part = std::string_view(h).substr(
        pos, comma == std::string::npos ? std::string::npos : comma - pos);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    if (part == token) return true;
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return false;
}

struct Url {
  std::string host, port, path;  // host without brackets
};

Result<Url> parse_url(const std::string& url) {
  constexpr std::string_view kHttp = "http://";
  if (url.rfind("https://", 0) == 0) {
    return Status::Error(
        "the runtime's streaming server " + url + " uses TLS, which knode does not proxy to",
        ENOTSUP);
  }
  if (url.rfind(kHttp, 0) != 0)
    return Status::Error("streaming URL \"" + url + "\": not http", EINVAL);
  std::string rest = url.substr(kHttp.size());
  auto slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  Url u;
  u.path = slash == std::string::npos ? "/" : rest.substr(slash);
  if (!hostport.empty() && hostport[0] == '[') {
    auto close = hostport.find(']');
    if (close == std::string::npos)
      return Status::Error("streaming URL \"" + url + "\": bad host", EINVAL);
    u.host = hostport.substr(1, close - 1);
    u.port = close + 1 < hostport.size() && hostport[close + 1] == ':' ? hostport.substr(close + 2)
                                                                       : "80";
  } else {
    auto colon = hostport.rfind(':');
    u.host = hostport.substr(0, colon);
    u.port = colon == std::string::npos ? "80" : hostport.substr(colon + 1);
  }
  if (u.host.empty()) return Status::Error("streaming URL \"" + url + "\": no host", EINVAL);
  return u;
}

Result<int> dial(const Url& u, std::chrono::milliseconds timeout) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(u.host.c_str(), u.port.c_str(), &hints, &res); rc != 0) {
    return Status::Error("resolve " + u.host + ": " + ::gai_strerror(rc), EIO);
  }
  int err = ECONNREFUSED;
  int fd = -1;
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) {
      err = errno;
      continue;
    }
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
    if (errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
      int so = 0;
      socklen_t len = sizeof so;
      if (n == 1 && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &len) == 0 && so == 0) break;
      err = n == 0 ? ETIMEDOUT : (so != 0 ? so : errno);
    } else {
      err = errno;
    }
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(res);
  if (fd < 0) return Status::FromErrno("connect to " + u.host + ":" + u.port, err);
  // Blocking from here, with deadlines on each send and receive.
  int flags = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &flags, sizeof flags);
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  timeval tv{static_cast<time_t>(timeout.count() / 1000),
             static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return fd;
}

Status send_all(int fd, const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      return Status::FromErrno("send the request to the runtime's streaming server",
                               n < 0 ? errno : EIO);
    off += static_cast<std::size_t>(n);
  }
  return Status::Ok();
}

// Reads until `done(buf)` or the peer closes; false on a timeout or an error.
template <typename Done>
Status receive(int fd, std::string& buf, std::size_t max, Done done) {
  while (!done(buf)) {
    if (buf.size() > max)
      return Status::Error("the runtime's streaming server answered too much", EIO);
    char tmp[16 * 1024];
    ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0)
      return Status::Error("the runtime's streaming server closed the connection", ECONNRESET);
    if (n < 0) {
      return Status::FromErrno("read the runtime's streaming server's answer",
                               errno == EAGAIN ? ETIMEDOUT : errno);
    }
    buf.append(tmp, static_cast<std::size_t>(n));
  }
  return Status::Ok();
}

std::string header_of(std::string_view head, std::string_view name) {
  const std::string want = ascii_lower(name) + ":";
  std::size_t pos = head.find("\r\n");
  while (pos != std::string_view::npos && pos + 2 < head.size()) {
    std::size_t next = head.find("\r\n", pos + 2);
    std::string_view line = head.substr(
        pos + 2, next == std::string_view::npos ? std::string_view::npos : next - pos - 2);
    if (ascii_lower(line.substr(0, want.size())) == want) {
      std::string_view v = line.substr(want.size());
      while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
      return std::string(v);
    }
    pos = next;
  }
  return "";
}

}  // namespace

bool is_upgrade_request(const http::Request& r) {
  bool connection_upgrade = false;
  for (const auto& [k, v] : r.headers) {
    if (ascii_lower(k) == "connection" && has_token(v, "upgrade")) connection_upgrade = true;
  }
  return connection_upgrade && r.header("Upgrade").has_value();
}

Status proxy_upgrade(const http::Request& request, const std::string& url, http::Exchange& exchange,
                     std::chrono::milliseconds timeout) {
  auto u = parse_url(url);
  if (!u.ok()) return u.status();
  auto fd = dial(*u, timeout);
  if (!fd.ok()) return fd.status();
  std::string head = request.method + " " + u->path + " HTTP/1.1\r\n";
  head += "Host: " + (u->host.find(':') != std::string::npos ? "[" + u->host + "]" : u->host) +
          ":" + u->port + "\r\n";
  for (const auto& [k, v] : request.headers) {
    const std::string name = ascii_lower(k);
    if (name == "host" || name == "authorization") continue;
    head += k + ": " + v + "\r\n";
  }
  head += "\r\n";
  head += request.body;
  if (Status s = send_all(*fd, head); !s.ok()) {
    ::close(*fd);
    return s;
  }
  std::string got;
  Status s = receive(*fd, got, 64 * 1024,
                     [](const std::string& b) { return b.find("\r\n\r\n") != std::string::npos; });
  if (!s.ok()) {
    ::close(*fd);
    return s;
  }
  const std::size_t head_end = got.find("\r\n\r\n") + 4;
  const int status =
      got.size() > 12 && got.compare(0, 5, "HTTP/") == 0 ? std::atoi(got.c_str() + 9) : 0;
  KLOGV(3, "kubelet API: the runtime's streaming server answered")
      .kv("url", url)
      .kv("status", status);
  if (status == 101) {
    // Timeouts were for the handshake; the session may idle as long as it likes.
    timeval none{0, 0};
    ::setsockopt(*fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
    ::setsockopt(*fd, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof none);
    exchange.tunnel(*fd, std::move(got));
    return Status::Ok();
  }
  // Not upgraded: the answer is relayed as it is (upstream's responder does the same).
  const std::string length = header_of(std::string_view(got).substr(0, head_end), "Content-Length");
  const std::size_t want =
      length.empty() ? 0 : static_cast<std::size_t>(std::strtoull(length.c_str(), nullptr, 10));
  if (want > 0) {
    (void)receive(*fd, got, head_end + want + 1,
                  [&](const std::string& b) { return b.size() >= head_end + want; });
  }
  ::close(*fd);
  http::Response r;
  r.status = status == 0 ? 502 : status;
  std::string ct = header_of(std::string_view(got).substr(0, head_end), "Content-Type");
  if (!ct.empty()) r.content_type = ct;
  r.body = got.substr(head_end, want);
  exchange.respond(std::move(r));
  return Status::Ok();
}

}  // namespace knode::kubelet
