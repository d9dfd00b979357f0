// An in-process HTTP server on a unix socket that answers like dockerd, for testing the
// Docker client without a daemon: a handler per request (the test's, or FakeDocker's
// model in fake_docker.h) answers whole, chunked piece by piece, hijacked (101 and raw
// bytes, as dockerd's exec), through a function that streams at its own pace, or never
// (the client's deadline must end the call). Every request is recorded.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace knode::docker::testing {

struct FakeRequest {
  std::string method, target, path, body;      // path: target without the query
  std::map<std::string, std::string> query;    // decoded
  std::map<std::string, std::string> headers;  // names lowercased
};

// What a streaming reply writes through; each call returns false once the client is gone
// or the server stops.
class StreamWriter {
 public:
  virtual ~StreamWriter() = default;
  virtual bool write(const std::string& bytes) = 0;
  // Waits until the client closes its end or the server stops (true), or `for_` passes
  // (false).
  virtual bool wait_closed(std::chrono::milliseconds for_) = 0;
};

struct FakeReply {
  enum class Mode { kWhole, kChunked, kHijack, kHang };
  Mode mode = Mode::kWhole;
  int status = 200;
  std::string content_type = "application/json";
  std::string body;                 // kWhole
  std::vector<std::string> pieces;  // kChunked, kHijack: sent in order
  // kChunked, kHijack: when set, called after `pieces` to send more until it returns.
  std::function<void(StreamWriter&)> stream;

  static FakeReply json(int status, const std::string& body) {
    return {Mode::kWhole, status, "application/json", body, {}, {}};
  }
  static FakeReply error(int status, const std::string& message);  // {"message": ...}
  static FakeReply none(int status) { return {Mode::kWhole, status, "", "", {}, {}}; }
};

class FakeDockerServer {
 public:
  using Handler = std::function<FakeReply(const FakeRequest&)>;
  // Listens on a socket in a fresh temporary directory.
  explicit FakeDockerServer(Handler handler);
  ~FakeDockerServer();
  FakeDockerServer(const FakeDockerServer&) = delete;
  FakeDockerServer& operator=(const FakeDockerServer&) = delete;

  bool started() const { return listen_fd_ >= 0; }
  std::string endpoint() const { return "unix://" + path_; }
  const std::string& socket_path() const { return path_; }
  const std::string& dir() const { return dir_; }

  std::vector<FakeRequest> requests() const;
  // Requests whose method and path match (path: exact, or a prefix ending in '*').
  std::vector<FakeRequest> requests(const std::string& method, const std::string& path) const;
  void stop();

 private:
  void accept_loop();
  void serve(int fd);

  Handler handler_;
  std::string dir_, path_;
  int listen_fd_ = -1;
  int stop_fd_[2] = {-1, -1};
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  std::vector<FakeRequest> requests_;
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

// The 8-byte-headed frame of dockerd's multiplexed stream.
std::string frame(int stream, const std::string& payload);

}  // namespace knode::docker::testing
