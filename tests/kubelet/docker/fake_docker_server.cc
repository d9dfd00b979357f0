#include "fake_docker_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

namespace knode::docker::testing {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using local = asio::local::stream_protocol;

namespace {

std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(std::strtol(s.substr(i + 1, 2).c_str(), nullptr, 16));
      i += 2;
    } else if (s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

std::map<std::string, std::string> parse_query(const std::string& q) {
  std::map<std::string, std::string> out;
  size_t start = 0;
  while (start < q.size()) {
    size_t amp = q.find('&', start);
    std::string kv = q.substr(start, amp == std::string::npos ? std::string::npos : amp - start);
    size_t eq = kv.find('=');
    out[unescape(kv.substr(0, eq))] = eq == std::string::npos ? "" : unescape(kv.substr(eq + 1));
    if (amp == std::string::npos) break;
    start = amp + 1;
  }
  return out;
}

const char* reason_of(int status) {
  switch (status) {
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 409:
      return "Conflict";
    case 500:
      return "Internal Server Error";
    default:
      return "Status";
  }
}

bool send_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

class Writer : public StreamWriter {
 public:
  Writer(int fd, int stop_fd, bool chunked) : fd_(fd), stop_fd_(stop_fd), chunked_(chunked) {}
  bool write(const std::string& bytes) override {
    if (bytes.empty()) return true;
    if (!chunked_) return send_all(fd_, bytes);
    char head[32];
    std::snprintf(head, sizeof head, "%zx\r\n", bytes.size());
    return send_all(fd_, head + bytes + "\r\n");
  }
  bool wait_closed(std::chrono::milliseconds for_) override {
    pollfd fds[2] = {{fd_, POLLIN | POLLRDHUP, 0}, {stop_fd_, POLLIN, 0}};
    const int n = ::poll(fds, 2, static_cast<int>(for_.count()));
    if (n <= 0) return false;
    if (fds[1].revents != 0) return true;
    char c;
    return ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT) <= 0;
  }
  void finish() {
    if (chunked_) send_all(fd_, "0\r\n\r\n");
  }

 private:
  int fd_, stop_fd_;
  bool chunked_;
};

}  // namespace

FakeReply FakeReply::error(int status, const std::string& message) {
  return json(status, nlohmann::json{{"message", message}}.dump() + "\n");
}

std::string frame(int stream, const std::string& payload) {
  std::string h(8, '\0');
  h[0] = static_cast<char>(stream);
  const uint32_t n = static_cast<uint32_t>(payload.size());
  h[4] = static_cast<char>((n >> 24) & 0xff);
  h[5] = static_cast<char>((n >> 16) & 0xff);
  h[6] = static_cast<char>((n >> 8) & 0xff);
  h[7] = static_cast<char>(n & 0xff);
  return h + payload;
}

FakeDockerServer::FakeDockerServer(Handler handler) : handler_(std::move(handler)) {
  char tmpl[] = "/tmp/knode-fake-docker-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return;
  dir_ = tmpl;
  path_ = dir_ + "/docker.sock";
  if (::pipe2(stop_fd_, O_CLOEXEC) != 0) return;
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 64) != 0) {
    ::close(fd);
    return;
  }
  listen_fd_ = fd;
  acceptor_ = std::thread([this] { accept_loop(); });
}

FakeDockerServer::~FakeDockerServer() {
  stop();
  if (!dir_.empty()) {
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }
  for (int f : stop_fd_) {
    if (f >= 0) ::close(f);
  }
}

void FakeDockerServer::stop() {
  if (stopping_.exchange(true)) return;
  if (stop_fd_[1] >= 0) (void)!::write(stop_fd_[1], "x", 1);
  if (acceptor_.joinable()) acceptor_.join();
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    threads.swap(threads_);
  }
  for (auto& t : threads) t.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
}

void FakeDockerServer::accept_loop() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_[0], POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno == EINTR) continue;
    if (fds[1].revents != 0) return;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::lock_guard lock(mu_);
    threads_.emplace_back([this, fd] { serve(fd); });
  }
}

void FakeDockerServer::serve(int fd) {
  asio::io_context io;
  local::socket sock(io);
  sock.assign(local(), fd);
  boost::beast::flat_buffer buf;
  bhttp::request<bhttp::string_body> req;
  boost::system::error_code ec;
  bhttp::read(sock, buf, req, ec);
  if (ec) return;
  FakeRequest r;
  r.method = std::string(req.method_string());
  r.target = std::string(req.target());
  const size_t q = r.target.find('?');
  r.path = r.target.substr(0, q);
  if (q != std::string::npos) r.query = parse_query(r.target.substr(q + 1));
  r.body = req.body();
  for (const auto& f : req) {
    std::string name(f.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.headers[name] = std::string(f.value());
  }
  {
    std::lock_guard lock(mu_);
    requests_.push_back(r);
  }
  FakeReply reply = handler_(r);
  const std::string status_line =
      "HTTP/1.1 " + std::to_string(reply.status) + " " + reason_of(reply.status) + "\r\n";
  std::string head = status_line + "Api-Version: 1.41\r\nServer: Docker/fake\r\n";
  if (!reply.content_type.empty()) head += "Content-Type: " + reply.content_type + "\r\n";
  switch (reply.mode) {
    case FakeReply::Mode::kWhole: {
      head +=
          "Content-Length: " + std::to_string(reply.body.size()) + "\r\nConnection: close\r\n\r\n";
      send_all(fd, head + reply.body);
      break;
    }
    case FakeReply::Mode::kChunked:
    case FakeReply::Mode::kHijack: {
      const bool chunked = reply.mode == FakeReply::Mode::kChunked;
      head += chunked ? "Transfer-Encoding: chunked\r\n\r\n"
                      : "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n";
      if (!send_all(fd, head)) break;
      Writer w(fd, stop_fd_[0], chunked);
      bool ok = true;
      for (const auto& p : reply.pieces) {
        if (!(ok = w.write(p))) break;
      }
      if (ok && reply.stream) reply.stream(w);
      w.finish();
      break;
    }
    case FakeReply::Mode::kHang: {
      Writer w(fd, stop_fd_[0], false);
      while (!w.wait_closed(std::chrono::seconds(60))) {
      }
      break;
    }
  }
  ::shutdown(fd, SHUT_WR);
}

std::vector<FakeRequest> FakeDockerServer::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

std::vector<FakeRequest> FakeDockerServer::requests(const std::string& method,
                                                    const std::string& path) const {
  std::vector<FakeRequest> out;
  const bool prefix = !path.empty() && path.back() == '*';
  const std::string p = prefix ? path.substr(0, path.size() - 1) : path;
  for (const auto& r : requests()) {
    if (r.method != method) continue;
    if (prefix ? r.path.starts_with(p) : r.path == p) out.push_back(r);
  }
  return out;
}

}  // namespace knode::docker::testing
