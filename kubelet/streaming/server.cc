#include "streaming/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <variant>

#include "knode/log.h"
#include "knode/ascii.h"
#include "streaming/spdy.h"

namespace knode::streaming {
namespace {

using Clock = std::chrono::steady_clock;
using spdy::ServerConnection;

constexpr std::string_view kStreamType = "streamType";
// Connections served at once (each has a thread).
constexpr size_t kMaxSessions = 128;
// remotecommand's protocols, the newest first (what the server prefers does not matter:
// the client's order decides, as upstream's negotiation does).
constexpr std::string_view kV4 = "v4.channel.k8s.io";
constexpr std::string_view kV3 = "v3.channel.k8s.io";
constexpr std::string_view kV2 = "v2.channel.k8s.io";
constexpr std::string_view kV1 = "channel.k8s.io";
constexpr std::string_view kPortForward = "portforward.k8s.io";

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return std::string(s);
}

struct Head {
  std::string method, path;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower case

  std::vector<std::string> values(std::string_view name) const {
    // Every value of every header of that name, comma lists split.
    std::vector<std::string> out;
    for (const auto& [k, v] : headers) {
      if (k != name) continue;
      size_t pos = 0;
      for (;;) {
        const size_t comma = v.find(',', pos);
        std::string part = trim(std::string_view(v).substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
        if (!part.empty()) out.push_back(std::move(part));
        if (comma == std::string::npos) break;
        pos = comma + 1;
      }
    }
    return out;
  }
  std::string value(std::string_view name) const {
    for (const auto& [k, v] : headers)
      if (k == name) return trim(v);
    return "";
  }
};

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

void respond(int fd, int code, std::string_view reason, const std::string& body,
             const std::string& extra_headers = "") {
  std::string r = "HTTP/1.1 " + std::to_string(code) + " " + std::string(reason) +
                  "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
                  std::to_string(body.size()) + "\r\n" + extra_headers + "Connection: close\r\n\r\n" + body;
  (void)send_all(fd, r);
}

void set_timeouts(int fd, std::chrono::milliseconds t) {
  timeval tv{static_cast<time_t>(t.count() / 1000), static_cast<suseconds_t>((t.count() % 1000) * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// The request's head, within 10 s in all; what was read past it stays in `rest`.
Result<Head> read_head(int fd, std::string& rest) {
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  std::string buf;
  size_t end;
  while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
    if (buf.size() > 64 * 1024) return Status::Error("request head over 64 KiB", EMSGSIZE);
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    pollfd p{fd, POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) == 0)
      return Status::Error("the request's head did not come within 10 s", ETIMEDOUT);
    char tmp[4096];
    ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::Error("the client closed before its request ended", ECONNRESET);
    buf.append(tmp, static_cast<size_t>(n));
  }
  rest = buf.substr(end + 4);
  buf.resize(end);
  Head h;
  size_t line_end = buf.find("\r\n");
  const std::string first = buf.substr(0, line_end);
  const size_t sp1 = first.find(' ');
  const size_t sp2 = first.find(' ', sp1 == std::string::npos ? 0 : sp1 + 1);
  if (sp1 == std::string::npos || sp2 == std::string::npos)
    return Status::Error("a malformed request line", EPROTO);
  h.method = first.substr(0, sp1);
  h.path = first.substr(sp1 + 1, sp2 - sp1 - 1);
  if (auto q = h.path.find('?'); q != std::string::npos) h.path.resize(q);
  while (line_end != std::string::npos) {
    const size_t next = buf.find("\r\n", line_end + 2);
    const std::string line = buf.substr(line_end + 2, next == std::string::npos ? std::string::npos : next - line_end - 2);
    line_end = next;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    h.headers.emplace_back(ascii_lower(trim(line.substr(0, colon))), trim(std::string_view(line).substr(colon + 1)));
  }
  return h;
}

std::string random_token() {
  unsigned char raw[12];
  size_t got = 0;
  while (got < sizeof raw) {
    ssize_t n = ::getrandom(raw + got, sizeof raw - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  for (unsigned char c : raw) {
    out += kAlphabet[c & 63];
    out += kAlphabet[(c >> 6) | ((c & 15) << 2)];
  }
  return out;
}

// ---- one session's client, as the backend sees it ----

// Input bytes held for a backend that does not take them yet; beyond this the reader
// waits (and stops reading the client), watching for the client to hang up meanwhile.
constexpr size_t kMaxQueuedInput = 4u << 20;

class PipeImpl final : public Pipe {
 public:
  PipeImpl(ServerConnection& conn, uint32_t out1, uint32_t out2) : conn_(conn), out1_(out1), out2_(out2) {}
  ~PipeImpl() override { detach(); }

  // Before the backend runs (exec and attach learn their streams after the pipe exists).
  void set_outputs(uint32_t out1, uint32_t out2) {
    out1_ = out1;
    out2_ = out2;
  }

  bool write(int stream, std::string_view data) override {
    const uint32_t id = stream == 2 ? out2_.load() : out1_.load();
    if (id == 0) return true;  // the client did not ask for that stream
    if (data.empty()) return true;
    return conn_.write(id, data);
  }

  // Input and sizes reach the backend on threads of the pipe's own, never on the
  // connection's reader: a backend blocked on its runtime does not stop the reader from
  // seeing the client leave.
  void on_input(std::function<void(std::string_view)> on_data, std::function<void()> on_end) override {
    std::lock_guard lock(mu_);
    if (detached_ || input_thread_.joinable()) return;
    on_data_ = std::move(on_data);
    on_end_ = std::move(on_end);
    input_thread_ = start_thread([this] { deliver_input(); });
  }

  void on_resize(std::function<void(TerminalSize)> on_size) override {
    std::lock_guard lock(mu_);
    if (detached_ || resize_thread_.joinable()) return;
    on_size_ = std::move(on_size);
    resize_thread_ = start_thread([this] { deliver_sizes(); });
  }

  void on_gone(std::function<void()> gone) override {
    {
      std::lock_guard lock(mu_);
      if (detached_) return;
      if (!gone_) {
        on_gone_ = std::move(gone);
        return;
      }
    }
    gone();
  }

  // Once the backend's call returned: its callbacks are dropped (after any that is
  // running ends), since what they refer to may be gone.
  void detach() {
    std::thread input, resize;
    {
      std::lock_guard lock(mu_);
      detached_ = true;
      queue_.clear();
      queued_ = 0;
      input.swap(input_thread_);
      resize.swap(resize_thread_);
      cv_.notify_all();
    }
    if (input.joinable()) input.join();
    if (resize.joinable()) resize.join();
    std::lock_guard call(call_mu_);
    std::lock_guard lock(mu_);
    on_data_ = nullptr;
    on_end_ = nullptr;
    on_gone_ = nullptr;
    on_size_ = nullptr;
  }

  // From the connection's reader. `peer_gone` says whether the client hung up (asked
  // while the queue is full).
  void input(std::string_view data, const std::function<bool()>& peer_gone) {
    if (data.empty()) return;
    std::unique_lock lock(mu_);
    while (queued_ >= kMaxQueuedInput && !detached_ && !gone_ && !ended_) {
      if (cv_.wait_for(lock, std::chrono::milliseconds(100)) == std::cv_status::timeout && peer_gone()) {
        // The client went: what it sent still sits in the socket, and none of it matters.
        lock.unlock();
        set_gone();
        return;
      }
    }
    if (detached_ || ended_ || gone_) return;
    queue_.emplace_back(data);
    queued_ += data.size();
    cv_.notify_all();
  }

  void input_end() {
    std::lock_guard lock(mu_);
    ended_ = true;
    cv_.notify_all();
  }

  // Terminal sizes as JSON objects one after another ({"Width":80,"Height":24}); only
  // the latest waits for the backend.
  void resize_bytes(std::string_view data) {
    resize_buf_.append(data);
    size_t close;
    while ((close = resize_buf_.find('}')) != std::string::npos) {
      const std::string one = resize_buf_.substr(0, close + 1);
      resize_buf_.erase(0, close + 1);
      auto j = nlohmann::json::parse(one, nullptr, false);
      if (!j.is_object()) continue;
      // Both sizes as unsigned numbers, else the message is ignored.
      auto w = j.find("Width"), h = j.find("Height");
      if (w == j.end() || h == j.end() || !w->is_number_unsigned() || !h->is_number_unsigned()) continue;
      std::lock_guard lock(mu_);
      size_ = TerminalSize{static_cast<uint16_t>(std::min<uint64_t>(w->get<uint64_t>(), 0xffff)),
                           static_cast<uint16_t>(std::min<uint64_t>(h->get<uint64_t>(), 0xffff))};
      cv_.notify_all();
    }
    if (resize_buf_.size() > 4096) resize_buf_.clear();
  }

  void set_gone() {
    std::lock_guard call(call_mu_);
    std::function<void()> f;
    {
      std::lock_guard lock(mu_);
      if (gone_) return;
      gone_ = true;
      f = std::move(on_gone_);
      cv_.notify_all();
    }
    if (f) f();
  }

 private:
  template <typename F>
  static std::thread start_thread(F f) {
    try {
      return std::thread(std::move(f));
    } catch (const std::system_error& e) {
      KLOG(WARNING, "streaming server: no thread for a session's input").kv("error", e.what());
      return {};
    }
  }

  void deliver_input() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return detached_ || !queue_.empty() || ended_; });
      if (detached_) return;
      if (!queue_.empty()) {
        std::string piece = std::move(queue_.front());
        queue_.pop_front();
        queued_ -= piece.size();
        cv_.notify_all();  // room for the reader
        auto f = on_data_;
        lock.unlock();
        f(piece);
        lock.lock();
        continue;
      }
      auto f = on_end_;
      lock.unlock();
      f();
      return;
    }
  }

  void deliver_sizes() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return detached_ || size_.has_value(); });
      if (detached_) return;
      const TerminalSize size = *size_;
      size_.reset();
      auto f = on_size_;
      lock.unlock();
      f(size);
      lock.lock();
    }
  }

  ServerConnection& conn_;
  std::atomic<uint32_t> out1_, out2_;
  std::mutex call_mu_;  // a gone callback running (taken before mu_)
  std::mutex mu_;
  std::condition_variable cv_;
  std::function<void(std::string_view)> on_data_;
  std::function<void()> on_end_, on_gone_;
  std::function<void(TerminalSize)> on_size_;
  std::deque<std::string> queue_;
  size_t queued_ = 0;
  std::optional<TerminalSize> size_;
  bool ended_ = false, gone_ = false, detached_ = false;
  std::thread input_thread_, resize_thread_;
  std::string resize_buf_;  // the reader's
};

// Ends a session: what was written reaches the client, which then closes; a client that
// does not within a few seconds is cut off.
void finish_connection(ServerConnection& conn, std::thread& reader) {
  conn.shutdown_write();
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::thread watchdog([&] {
    std::unique_lock lock(mu);
    if (!cv.wait_for(lock, std::chrono::seconds(5), [&] { return done; })) conn.close();
  });
  if (reader.joinable()) reader.join();
  {
    std::lock_guard lock(mu);
    done = true;
  }
  cv.notify_all();
  watchdog.join();
}

std::string status_json(const Result<int>& result) {
  nlohmann::json s = {{"metadata", nlohmann::json::object()}};
  if (result.ok() && *result == 0) {
    s["status"] = "Success";
  } else if (result.ok()) {
    s["status"] = "Failure";
    s["reason"] = "NonZeroExitCode";
    s["message"] = "command terminated with non-zero exit code: exit status " + std::to_string(*result);
    s["details"] = {{"causes", nlohmann::json::array({{{"reason", "ExitCode"}, {"message", std::to_string(*result)}}})}};
  } else {
    s["status"] = "Failure";
    s["reason"] = "InternalError";
    s["code"] = 500;
    s["message"] = "Internal error occurred: error executing command in container: " + result.status().message();
  }
  return s.dump();
}

std::string status_text(const Result<int>& result) {
  if (result.ok() && *result == 0) return "";
  if (result.ok()) return "command terminated with non-zero exit code: exit status " + std::to_string(*result);
  return "error executing command in container: " + result.status().message();
}

}  // namespace

// ---- the server ----

class Server::Impl {
 public:
  struct PortForwardTarget {
    std::string sandbox_id;
  };
  using Request = std::variant<runtime::ExecRequest, runtime::AttachRequest, PortForwardTarget>;

  Impl(Backend& backend, ServerOptions options) : backend_(backend), options_(std::move(options)) {}

  ~Impl() { stop(); }

  Status listen() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) return Status::FromErrno("streaming server: socket", errno);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    if (::inet_pton(AF_INET, options_.address.c_str(), &a.sin_addr) != 1)
      return Status::Error("streaming server: bad address " + options_.address, EINVAL);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
      return Status::FromErrno("streaming server: bind " + options_.address, errno);
    if (::listen(listen_fd_, 64) != 0) return Status::FromErrno("streaming server: listen", errno);
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
    if (stop_fd_ < 0) return Status::FromErrno("streaming server: eventfd", errno);
    acceptor_ = std::thread([this] { accept_loop(); });
    KLOG(INFO, "streaming server listening").kv("address", options_.address).kv("port", port_);
    return Status::Ok();
  }

  void stop() {
    if (stop_fd_ >= 0) {
      uint64_t one = 1;
      (void)!::write(stop_fd_, &one, sizeof one);
    }
    if (acceptor_.joinable()) acceptor_.join();
    std::list<Session> sessions;
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      for (auto& s : sessions_) ::shutdown(s.fd, SHUT_RDWR);
      sessions.swap(sessions_);
    }
    for (auto& s : sessions)
      if (s.thread.joinable()) s.thread.join();
    if (listen_fd_ >= 0) ::close(listen_fd_);
    if (stop_fd_ >= 0) ::close(stop_fd_);
    listen_fd_ = stop_fd_ = -1;
  }

  std::string add(const char* kind, Request request) {
    const std::string token = random_token();
    std::lock_guard lock(mu_);
    const auto now = Clock::now();
    std::erase_if(tokens_, [&](const auto& kv) { return kv.second.expires < now; });
    tokens_[token] = Pending{std::move(request), now + options_.token_ttl};
    return "http://" + options_.address + ":" + std::to_string(port_) + "/" + kind + "/" + token;
  }

  uint16_t port() const { return port_; }

  size_t active() const {
    std::lock_guard lock(mu_);
    size_t n = 0;
    for (const auto& s : sessions_) n += s.done->load() ? 0 : 1;
    return n;
  }

 private:
  struct Pending {
    Request request;
    Clock::time_point expires;
  };
  struct Session {
    std::thread thread;
    int fd;
    std::shared_ptr<std::atomic<bool>> done;
  };

  void accept_loop() {
    for (;;) {
      pollfd p[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
      if (::poll(p, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (p[1].revents != 0) return;
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        // Out of descriptors (or memory): the pending connection stays, so poll would
        // answer at once again; a pause instead of a spin.
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      std::lock_guard lock(mu_);
      // Finished sessions are joined here, so threads do not pile up.
      for (auto it = sessions_.begin(); it != sessions_.end();) {
        if (it->done->load()) {
          it->thread.join();
          it = sessions_.erase(it);
        } else {
          ++it;
        }
      }
      if (stopping_ || sessions_.size() >= kMaxSessions) {
        if (!stopping_) KLOG(WARNING, "streaming server: too many sessions").kv("max", kMaxSessions);
        ::close(fd);
        continue;
      }
      auto done = std::make_shared<std::atomic<bool>>(false);
      sessions_.push_back(Session{{}, fd, done});
      try {
        sessions_.back().thread = std::thread([this, fd, done] {
          serve(fd);
          {
            // Off the list before it is closed, so that stop() never shuts a number
            // reused since.
            std::lock_guard lock(mu_);
            for (auto& s : sessions_)
              if (s.done == done) s.fd = -1;
            ::close(fd);
          }
          done->store(true);
        });
      } catch (const std::system_error& e) {
        KLOG(WARNING, "streaming server: no thread for a session").kv("error", e.what());
        sessions_.pop_back();
        ::close(fd);
      }
    }
  }

  std::optional<Request> take(const std::string& token) {
    std::lock_guard lock(mu_);
    auto it = tokens_.find(token);
    if (it == tokens_.end()) return std::nullopt;
    auto pending = std::move(it->second);
    tokens_.erase(it);
    if (pending.expires < Clock::now()) return std::nullopt;
    return std::move(pending.request);
  }

  // One connection, from its request to its end; the caller closes the fd.
  void serve(int fd) {
    set_timeouts(fd, std::chrono::seconds(10));
    std::string rest;
    auto head = read_head(fd, rest);
    if (!head.ok()) {
      KLOGV(2, "streaming server: a bad request").kv("error", head.status().message());
      return;
    }
    // The request's body (none is expected) is not part of the stream.
    const std::string length = head->value("content-length");
    size_t body = length.empty() ? 0 : static_cast<size_t>(std::strtoull(length.c_str(), nullptr, 10));
    while (rest.size() < body && body <= 1 << 20) {
      char tmp[4096];
      ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
      if (n <= 0) break;
      rest.append(tmp, static_cast<size_t>(n));
    }
    rest.erase(0, std::min(body, rest.size()));

    const std::string& path = head->path;
    const size_t slash = path.find('/', 1);
    const std::string kind = slash == std::string::npos ? "" : path.substr(1, slash - 1);
    const std::string token = slash == std::string::npos ? "" : path.substr(slash + 1);
    if (kind != "exec" && kind != "attach" && kind != "portforward") {
      respond(fd, 404, "Not Found", "404 page not found\n");
      return;
    }
    auto request = take(token);
    const bool right_kind =
        request && ((kind == "exec" && std::holds_alternative<runtime::ExecRequest>(*request)) ||
                    (kind == "attach" && std::holds_alternative<runtime::AttachRequest>(*request)) ||
                    (kind == "portforward" && std::holds_alternative<PortForwardTarget>(*request)));
    if (!right_kind) {
      respond(fd, 404, "Not Found", "token not found or expired\n");
      return;
    }
    bool connection_upgrade = false;
    for (const auto& v : head->values("connection")) connection_upgrade |= ascii_lower(v) == "upgrade";
    const std::string upgrade = ascii_lower(head->value("upgrade"));
    if (!connection_upgrade || upgrade.empty()) {
      respond(fd, 400, "Bad Request", "Upgrade request required\n");
      return;
    }
    if (upgrade != "spdy/3.1") {
      respond(fd, 400, "Bad Request",
              "unable to upgrade: knode's streaming server speaks SPDY/3.1, not " + head->value("upgrade") + "\n");
      return;
    }
    // The client's first protocol that the server speaks; none offered: the oldest.
    const bool port_forward = kind == "portforward";
    const std::vector<std::string_view> supported =
        port_forward ? std::vector<std::string_view>{kPortForward} : std::vector<std::string_view>{kV4, kV3, kV2, kV1};
    const auto offered = head->values("x-stream-protocol-version");
    std::string protocol;
    for (const auto& o : offered) {
      if (std::find(supported.begin(), supported.end(), o) != supported.end()) {
        protocol = o;
        break;
      }
    }
    if (!offered.empty() && protocol.empty()) {
      std::string accepted, client;
      for (auto s : supported) accepted += (accepted.empty() ? "" : ", ") + std::string(s);
      for (const auto& o : offered) client += (client.empty() ? "" : " ") + o;
      respond(fd, 403, "Forbidden",
              "unable to upgrade: unable to negotiate protocol: client supports [" + client +
                  "], server accepts [" + accepted + "]\n",
              "X-Accepted-Stream-Protocol-Versions: " + accepted + "\r\n");
      return;
    }
    std::string answer = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n";
    if (!protocol.empty()) answer += "X-Stream-Protocol-Version: " + protocol + "\r\n";
    answer += "\r\n";
    if (!send_all(fd, answer)) {
      return;
    }
    set_timeouts(fd, std::chrono::milliseconds(0));
    auto conn = std::make_unique<ServerConnection>(fd, std::move(rest));
    if (port_forward) {
      serve_port_forward(*conn, std::get<PortForwardTarget>(*request).sandbox_id);
    } else {
      const int version = protocol == kV4 ? 4 : protocol == kV3 ? 3 : protocol == kV2 ? 2 : 1;
      serve_stdio(*conn, *request, version);
    }
  }

  // exec and attach: remotecommand.
  void serve_stdio(ServerConnection& conn, const Request& request, int version) {
    bool want_in = false, want_out = false, want_err = false, tty = false;
    if (const auto* e = std::get_if<runtime::ExecRequest>(&request)) {
      want_in = e->stdin_, want_out = e->stdout_, want_err = e->stderr_ && !e->tty, tty = e->tty;
    } else if (const auto* a = std::get_if<runtime::AttachRequest>(&request)) {
      want_in = a->stdin_, want_out = a->stdout_, want_err = a->stderr_ && !a->tty, tty = a->tty;
    }
    const bool want_resize = tty && version >= 3;
    std::mutex mu;
    std::condition_variable cv;
    std::map<std::string, uint32_t> ids;  // stream type -> id, guarded by mu
    bool gone = false;                    // guarded by mu
    // Input that comes before the backend listens waits in the pipe.
    PipeImpl pipe(conn, 0, 0);
    if (!want_in) pipe.input_end();
    std::thread reader;
    auto read = [&] {
      const Status s = conn.serve({
          [&](uint32_t id, const spdy::Headers& h) {
            const std::string type = spdy::header_value(h, kStreamType);
            std::lock_guard lock(mu);
            if (type == "error" || type == "stdin" || type == "stdout" || type == "stderr" || type == "resize") {
              ids.emplace(type, id);
            } else {
              KLOGV(2, "streaming server: a stream of an unknown type").kv("type", type);
            }
            cv.notify_all();
          },
          [&](uint32_t id, std::string_view data, bool fin) {
            uint32_t in = 0, rs = 0;
            {
              std::lock_guard lock(mu);
              if (auto it = ids.find("stdin"); it != ids.end()) in = it->second;
              if (auto it = ids.find("resize"); it != ids.end()) rs = it->second;
            }
            if (id == in && in != 0) {
              pipe.input(data, [&] { return conn.peer_closed(); });
              if (fin) pipe.input_end();
            } else if (id == rs && rs != 0) {
              pipe.resize_bytes(data);
            }
          },
          [&](uint32_t id) {
            uint32_t in = 0;
            {
              std::lock_guard lock(mu);
              if (auto it = ids.find("stdin"); it != ids.end()) in = it->second;
            }
            if (id == in && in != 0) pipe.input_end();
          },
      });
      if (!s.ok()) KLOGV(2, "streaming server: the connection ended").kv("error", s.message());
      {
        std::lock_guard lock(mu);
        gone = true;
        cv.notify_all();
      }
      pipe.set_gone();
    };
    try {
      reader = std::thread(read);
    } catch (const std::system_error& e) {
      KLOG(WARNING, "streaming server: no thread for a session's reader").kv("error", e.what());
      return;
    }
    uint32_t error_id = 0, out_id = 0, err_id = 0;
    {
      std::unique_lock lock(mu);
      auto have = [&](const char* t) { return ids.contains(t); };
      const bool complete = cv.wait_for(lock, options_.stream_creation_timeout, [&] {
        return gone || (have("error") && (!want_in || have("stdin")) && (!want_out || have("stdout")) &&
                        (!want_err || have("stderr")) && (!want_resize || have("resize")));
      });
      if (!complete || gone) {
        KLOG(WARNING, "streaming server: the client did not create the streams it asked for")
            .kv("streams", ids.size());
        lock.unlock();
        conn.close();
        reader.join();
        return;
      }
      error_id = ids["error"];
      out_id = want_out ? ids["stdout"] : 0;
      err_id = want_err ? ids["stderr"] : 0;
      pipe.set_outputs(out_id, err_id);
    }
    Result<int> result = std::visit(
        [&](const auto& r) -> Result<int> {
          using T = std::decay_t<decltype(r)>;
          if constexpr (std::is_same_v<T, runtime::ExecRequest>) {
            return backend_.exec(r, pipe);
          } else if constexpr (std::is_same_v<T, runtime::AttachRequest>) {
            Status s = backend_.attach(r, pipe);
            if (!s.ok()) return s;
            return 0;
          } else {
            return Status::Error("not a remotecommand session", EINVAL);
          }
        },
        request);
    pipe.detach();
    if (!result.ok()) KLOGV(2, "streaming server: the session failed").kv("error", result.status().message());
    const std::string status = version >= 4 ? status_json(result) : status_text(result);
    if (!status.empty()) conn.write(error_id, status);
    for (uint32_t id : {out_id, err_id, error_id})
      if (id != 0) conn.finish(id);
    finish_connection(conn, reader);
  }

  // port-forward: a pair of streams (data, error) per request ID, each forwarded on a
  // thread of its own once both are there.
  void serve_port_forward(ServerConnection& conn, const std::string& sandbox_id) {
    constexpr size_t kMaxPairs = 256;
    struct Pair {
      uint32_t data = 0, error = 0;
      int32_t port = 0;
      std::unique_ptr<PipeImpl> pipe;  // from the data stream on: its input waits there
      std::thread thread;
      std::shared_ptr<std::atomic<bool>> done = std::make_shared<std::atomic<bool>>(false);
    };
    std::map<std::string, Pair> pairs;
    std::map<uint32_t, std::string> request_of;  // stream -> its pair, until the pair is reaped
    auto peer_gone = [&] { return conn.peer_closed(); };
    auto reap = [&] {
      for (auto it = pairs.begin(); it != pairs.end();) {
        if (it->second.thread.joinable() && it->second.done->load()) {
          it->second.thread.join();
          request_of.erase(it->second.data);
          request_of.erase(it->second.error);
          it = pairs.erase(it);
        } else {
          ++it;
        }
      }
    };
    auto start = [&](Pair& p) {
      PipeImpl* pipe = p.pipe.get();
      const uint32_t data = p.data, error = p.error;
      const int32_t port = p.port;
      auto done = p.done;
      try {
        p.thread = std::thread([this, &conn, pipe, data, error, port, done, sandbox_id] {
          Status s = port < 1 || port > 65535 ? Status::Error("invalid port " + std::to_string(port), EINVAL)
                                              : backend_.port_forward(sandbox_id, port, *pipe);
          pipe->detach();
          if (!s.ok()) {
            conn.write(error, "error forwarding port " + std::to_string(port) + " to pod " + sandbox_id +
                                  ", uid : " + s.message());
          }
          conn.finish(data);
          conn.finish(error);
          done->store(true);
        });
      } catch (const std::system_error& e) {
        conn.write(error, "error forwarding port " + std::to_string(port) + ": " + e.what());
        conn.reset(data, spdy::kCancel);
        conn.reset(error, spdy::kCancel);
      }
    };
    const Status s = conn.serve({
        [&](uint32_t id, const spdy::Headers& h) {
          reap();
          const std::string type = spdy::header_value(h, kStreamType);
          if (type != "error" && type != "data") {
            KLOGV(2, "streaming server: a port-forward stream of an unknown type").kv("type", type);
            conn.reset(id, spdy::kProtocolError);
            return;
          }
          std::string rid = spdy::header_value(h, "requestID");
          if (rid.empty()) rid = std::to_string(type == "data" ? id - 2 : id);
          if (!pairs.contains(rid) && pairs.size() >= kMaxPairs) {
            KLOG(WARNING, "streaming server: too many port-forward streams on one connection").kv("max", kMaxPairs);
            conn.reset(id, spdy::kCancel);
            return;
          }
          Pair& p = pairs[rid];
          if ((type == "error" ? p.error : p.data) != 0) {  // the same request twice
            conn.reset(id, spdy::kProtocolError);
            return;
          }
          if (type == "error") {
            p.error = id;
          } else {
            p.data = id;
            p.port = static_cast<int32_t>(std::strtol(spdy::header_value(h, "port").c_str(), nullptr, 10));
            p.pipe = std::make_unique<PipeImpl>(conn, id, 0);
          }
          request_of[id] = rid;
          if (p.data != 0 && p.error != 0) start(p);
        },
        [&](uint32_t id, std::string_view data, bool fin) {
          auto r = request_of.find(id);
          if (r == request_of.end()) return;
          auto it = pairs.find(r->second);
          if (it == pairs.end() || it->second.data != id) return;  // the error stream's: nothing
          it->second.pipe->input(data, peer_gone);
          if (fin) it->second.pipe->input_end();
        },
        [&](uint32_t id) {
          auto r = request_of.find(id);
          if (r == request_of.end()) return;
          auto it = pairs.find(r->second);
          if (it != pairs.end() && it->second.pipe) it->second.pipe->set_gone();
        },
    });
    if (!s.ok()) KLOGV(2, "streaming server: the port-forward connection ended").kv("error", s.message());
    for (auto& [rid, p] : pairs)
      if (p.pipe) p.pipe->set_gone();
    for (auto& [rid, p] : pairs)
      if (p.thread.joinable()) p.thread.join();
    conn.shutdown_write();
  }

  Backend& backend_;
  const ServerOptions options_;
  int listen_fd_ = -1, stop_fd_ = -1;
  uint16_t port_ = 0;
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::map<std::string, Pending> tokens_;  // guarded by mu_
  std::list<Session> sessions_;            // guarded by mu_
  bool stopping_ = false;                  // guarded by mu_
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() = default;

Result<std::unique_ptr<Server>> Server::start(Backend& backend, ServerOptions options) {
  auto impl = std::make_unique<Impl>(backend, std::move(options));
  if (Status s = impl->listen(); !s.ok()) return s;
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Result<std::string> Server::exec_url(const runtime::ExecRequest& request) {
  if (request.cmd.empty()) return Status::Error("exec: no command", EINVAL);
  if (!request.stdin_ && !request.stdout_ && !request.stderr_)
    return Status::Error("exec: one of stdin, stdout and stderr must be set", EINVAL);
  return impl_->add("exec", request);
}

Result<std::string> Server::attach_url(const runtime::AttachRequest& request) {
  if (!request.stdin_ && !request.stdout_ && !request.stderr_)
    return Status::Error("attach: one of stdin, stdout and stderr must be set", EINVAL);
  return impl_->add("attach", request);
}

Result<std::string> Server::port_forward_url(const std::string& sandbox_id) {
  return impl_->add("portforward", Impl::PortForwardTarget{sandbox_id});
}

uint16_t Server::port() const { return impl_->port(); }
size_t Server::active_sessions() const { return impl_->active(); }

}  // namespace knode::streaming
