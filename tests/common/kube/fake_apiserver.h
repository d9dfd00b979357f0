// A fake kube-apiserver for the client's unit tests: plain HTTP on 127.0.0.1, one
// collection of objects, paginated lists, chunked watch streams fed from a shared event
// log, and knobs to drop watches, expire resourceVersions (410) and fail requests.
// Blocking sockets, a thread per connection; everything it saw is recorded.
#pragma once

#include <functional>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace knode::testing {

class FakeApiServer {
 public:
  using json = nlohmann::json;

  FakeApiServer() {
    lfd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(lfd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(lfd_, 64);
    socklen_t len = sizeof a;
    ::getsockname(lfd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    accept_ = std::thread([this] { accept_loop(); });
  }

  ~FakeApiServer() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      for (int fd : open_) ::shutdown(fd, SHUT_RDWR);
    }
    cv_.notify_all();
    ::shutdown(lfd_, SHUT_RDWR);
    ::close(lfd_);
    accept_.join();
    for (auto& t : conns_) t.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // The collection, keyed by "namespace/name"; each object must carry its
  // metadata.resourceVersion. `rv` is the list's resourceVersion.
  void set_objects(std::vector<json> objects, int rv) {
    std::lock_guard lock(mu_);
    objects_ = std::move(objects);
    list_rv_ = rv;
  }
  // Appends a watch event ({"type":..., "object":...}); watches from an older
  // resourceVersion get it.
  void push(json event, int rv) {
    {
      std::lock_guard lock(mu_);
      log_.emplace_back(rv, event.dump());
    }
    cv_.notify_all();
  }
  // Ends every open watch stream (the connection closes, as when the server restarts).
  void drop_watches() {
    std::lock_guard lock(mu_);
    ++drop_epoch_;
    cv_.notify_all();
  }
  // The next list request that carries a continue token is answered 410 (the token
  // expired), and the objects become `objects` at `rv` (what changed meanwhile).
  void expire_next_continue(std::vector<json> objects, int rv) {
    std::lock_guard lock(mu_);
    continue_expiry_ = std::make_pair(std::move(objects), rv);
  }
  // Watches asking for a resourceVersion below `rv` are answered with a 410 ERROR event.
  void expire_below(int rv) {
    std::lock_guard lock(mu_);
    expired_below_ = rv;
  }
  // Answers requests that accept application/vnd.kubernetes.protobuf in protobuf: `list`
  // encodes a whole list body ({"kind":"ServiceList",...} in, the "k8s\0" envelope out),
  // `event` one watch event ({"type":...,"object":...} in, a WatchEvent's bytes out; the
  // server frames it). The test brings the encoders (generated classes).
  void answer_protobuf(std::function<std::string(const json&)> list, std::function<std::string(const json&)> event) {
    std::lock_guard lock(mu_);
    protobuf_list_ = std::move(list);
    protobuf_event_ = std::move(event);
  }
  int protobuf_answers() const {
    std::lock_guard lock(mu_);
    return protobuf_answers_;
  }
  // The next n requests are answered 500 (only those whose target contains `needle`).
  void fail_next(int n, std::string needle = "") {
    std::lock_guard lock(mu_);
    fail_next_ = n;
    fail_needle_ = std::move(needle);
  }

  struct Request {
    std::string method, target, authorization, user_agent, content_type, accept, body;
  };
  std::vector<Request> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }
  int count(const std::string& needle) const {
    int n = 0;
    for (const auto& r : requests()) n += r.target.find(needle) != std::string::npos;
    return n;
  }
  void clear_requests() {
    std::lock_guard lock(mu_);
    requests_.clear();
  }
  // Blocks until a request whose target holds `needle` came (up to 5 s).
  bool wait_request(const std::string& needle) const {
    for (int i = 0; i < 500 && count(needle) == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return count(needle) > 0;
  }
  int open_watches() const { return watches_open_; }
  // Blocks until a watch is open (up to 5 s).
  bool wait_watching(int n = 1) const {
    for (int i = 0; i < 500 && watches_open_ < n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return watches_open_ >= n;
  }

 private:
  static std::string param(const std::string& target, const std::string& key) {
    auto q = target.find('?');
    if (q == std::string::npos) return "";
    std::string s = "&" + target.substr(q + 1);
    auto p = s.find("&" + key + "=");
    if (p == std::string::npos) return "";
    p += key.size() + 2;
    auto e = s.find('&', p);
    return s.substr(p, e == std::string::npos ? std::string::npos : e - p);
  }

  static bool write_all(int fd, const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }

  static bool write_chunk(int fd, const std::string& line, bool newline = true) {
    char head[32];
    snprintf(head, sizeof head, "%zx\r\n", line.size() + (newline ? 1 : 0));
    return write_all(fd, head + line + (newline ? "\n" : "") + "\r\n");
  }

  void accept_loop() {
    for (;;) {
      int fd = ::accept4(lfd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      std::lock_guard lock(mu_);
      if (stopping_) {
        ::close(fd);
        return;
      }
      open_.push_back(fd);
      conns_.emplace_back([this, fd] { serve(fd); });
    }
  }

  void serve(int fd) {
    std::string buf;
    char tmp[4096];
    for (;;) {
      size_t end;
      while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
        ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
        if (n <= 0) return close_conn(fd);
        buf.append(tmp, static_cast<size_t>(n));
      }
      std::string head = buf.substr(0, end);
      buf.erase(0, end + 4);
      Request r;
      auto sp1 = head.find(' '), sp2 = head.find(' ', sp1 + 1);
      r.method = head.substr(0, sp1);
      r.target = head.substr(sp1 + 1, sp2 - sp1 - 1);
      auto header = [&head](const std::string& name) {
        auto p = head.find("\r\n" + name + ": ");
        if (p == std::string::npos) return std::string();
        p += name.size() + 4;
        return head.substr(p, head.find("\r\n", p) - p);
      };
      r.authorization = header("Authorization");
      r.user_agent = header("User-Agent");
      r.accept = header("Accept");
      r.content_type = header("Content-Type");
      // The body (writes send one with a Content-Length): read whole, kept for the test.
      if (const std::string cl = header("Content-Length"); !cl.empty()) {
        const size_t want = std::stoul(cl);
        while (buf.size() < want) {
          ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
          if (n <= 0) return close_conn(fd);
          buf.append(tmp, static_cast<size_t>(n));
        }
        r.body = buf.substr(0, want);
        buf.erase(0, want);
      }
      bool fail = false;
      {
        std::lock_guard lock(mu_);
        requests_.push_back(r);
        if (fail_next_ > 0 && r.target.find(fail_needle_) != std::string::npos) {
          --fail_next_;
          fail = true;
        }
      }
      if (fail) {
        std::string body = R"({"kind":"Status","code":500,"message":"injected failure"})";
        if (!write_all(fd, "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: " +
                               std::to_string(body.size()) + "\r\n\r\n" + body)) {
          return close_conn(fd);
        }
        continue;
      }
      bool expired_continue = false;
      if (!param(r.target, "continue").empty()) {
        std::lock_guard lock(mu_);
        if (continue_expiry_) {
          objects_ = std::move(continue_expiry_->first);
          list_rv_ = continue_expiry_->second;
          continue_expiry_.reset();
          expired_continue = true;
        }
      }
      if (expired_continue) {
        std::string body = R"({"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Expired","code":410,"message":"the continue token is too old"})";
        if (!write_all(fd, "HTTP/1.1 410 Gone\r\nContent-Type: application/json\r\nContent-Length: " +
                               std::to_string(body.size()) + "\r\n\r\n" + body)) {
          return close_conn(fd);
        }
        continue;
      }
      const bool proto = r.accept.find("application/vnd.kubernetes.protobuf") != std::string::npos;
      if (param(r.target, "watch") == "true") {
        watch(fd, std::stoi(param(r.target, "resourceVersion").empty() ? "0" : param(r.target, "resourceVersion")),
              proto);
        return close_conn(fd);
      }
      if (!write_all(fd, list_answer(r.target, proto))) return close_conn(fd);
    }
  }

  std::string list_answer(const std::string& target, bool proto) {
    std::lock_guard lock(mu_);
    size_t limit = param(target, "limit").empty() ? objects_.size() : std::stoul(param(target, "limit"));
    size_t from = param(target, "continue").empty() ? 0 : std::stoul(param(target, "continue"));
    json items = json::array();
    for (size_t i = from; i < objects_.size() && i < from + limit; ++i) items.push_back(objects_[i]);
    json meta = {{"resourceVersion", std::to_string(list_rv_)}};
    if (from + limit < objects_.size()) meta["continue"] = std::to_string(from + limit);
    json list = json{{"kind", "ServiceList"}, {"apiVersion", "v1"}, {"metadata", meta}, {"items", items}};
    std::string type = "application/json";
    std::string body;
    if (proto && protobuf_list_) {
      type = "application/vnd.kubernetes.protobuf";
      body = protobuf_list_(list);
      ++protobuf_answers_;
    } else {
      body = list.dump();
    }
    return "HTTP/1.1 200 OK\r\nContent-Type: " + type + "\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\n\r\n" + body;
  }

  void watch(int fd, int from_rv, bool proto) {
    std::function<std::string(const json&)> encode;
    {
      std::lock_guard lock(mu_);
      if (proto && protobuf_event_) {
        encode = protobuf_event_;
        ++protobuf_answers_;
      }
    }
    // A line of JSON, or a length-prefixed protobuf frame.
    auto event_bytes = [&](const std::string& line) {
      if (!encode) return line;
      const std::string m = encode(json::parse(line));
      const auto n = static_cast<uint32_t>(m.size());
      std::string f;
      for (int shift : {24, 16, 8, 0}) f += static_cast<char>(n >> shift);
      return f + m;
    };
    const std::string type = encode ? "application/vnd.kubernetes.protobuf;stream=watch" : "application/json";
    if (!write_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: " + type + "\r\nTransfer-Encoding: chunked\r\n\r\n")) return;
    std::unique_lock lock(mu_);
    if (from_rv < expired_below_) {
      lock.unlock();
      write_chunk(fd, event_bytes(R"({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old resource version","reason":"Expired","code":410}})"), !encode);
      write_all(fd, "0\r\n\r\n");
      return;
    }
    ++watches_open_;
    const int epoch = drop_epoch_;
    size_t next = 0;
    for (;;) {
      while (next < log_.size()) {
        auto [rv, line] = log_[next++];
        if (rv <= from_rv) continue;
        lock.unlock();
        bool ok = write_chunk(fd, event_bytes(line), !encode);
        lock.lock();
        if (!ok) {
          --watches_open_;
          return;
        }
      }
      if (stopping_ || drop_epoch_ != epoch) break;
      cv_.wait(lock);
    }
    --watches_open_;
  }

  void close_conn(int fd) {
    std::lock_guard lock(mu_);
    std::erase(open_, fd);
    ::close(fd);
  }

  int lfd_ = -1;
  int port_ = 0;
  std::thread accept_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::thread> conns_;
  std::vector<int> open_;
  bool stopping_ = false;
  std::vector<json> objects_;
  int list_rv_ = 1;
  std::vector<std::pair<int, std::string>> log_;
  int drop_epoch_ = 0;
  int expired_below_ = 0;
  std::optional<std::pair<std::vector<json>, int>> continue_expiry_;
  int fail_next_ = 0;
  std::string fail_needle_;
  std::atomic<int> watches_open_{0};
  std::vector<Request> requests_;
  std::function<std::string(const json&)> protobuf_list_, protobuf_event_;
  int protobuf_answers_ = 0;
};

}  // namespace knode::testing
