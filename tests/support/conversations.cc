// A client that holds N long-lived TCP connections to HOST:PORT (an echo service) and talks
// through them the whole time, and opens a new connection every NEW_MS, counting what fails.
// The fault tests run it through a Service while they disturb the proxy.
//
//   conversations HOST PORT N SECONDS STOP_FILE [PAUSE_MS=200] [NEW_MS=500]
//
// Each round sends one line through every live connection in turn and waits up to 5 s for
// the same line back; a reset, a timeout or another line marks that connection failed (it
// is not used again). Runs until STOP_FILE exists or SECONDS pass, then prints one line:
//   connections=N failed=F exchanges=E new=M new_failed=K
// with a line per failure before it ("t=<s> conn 7: timeout"). Connections end with a
// reset. Exits 2 if the first N connections cannot be made, else 0: the caller
// judges the counts.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
const Clock::time_point kStart = Clock::now();

double since_start() { return std::chrono::duration<double>(Clock::now() - kStart).count(); }

int64_t ms_left(Clock::time_point deadline) {
  return std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
}

// A connected socket, or -1 with the reason in *why.
int dial(const sockaddr_in& addr, int timeout_ms, std::string* why) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *why = std::string("socket: ") + std::strerror(errno);
    return -1;
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS) {
    *why = std::string("connect: ") + std::strerror(errno);
    close(fd);
    return -1;
  }
  pollfd p{fd, POLLOUT, 0};
  if (poll(&p, 1, timeout_ms) != 1) {
    *why = "connect: timeout";
    close(fd);
    return -1;
  }
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) {
    *why = std::string("connect: ") + std::strerror(err);
    close(fd);
    return -1;
  }
  return fd;
}

// Sends line (ending in '\n') and reads until the same line comes back; "" when it did,
// else what went wrong.
std::string exchange(int fd, const std::string& line, int timeout_ms) {
  if (send(fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size())) {
    return std::string("send: ") + std::strerror(errno);
  }
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  std::string got;
  while (got.size() < line.size()) {
    pollfd p{fd, POLLIN, 0};
    const int n = poll(&p, 1, static_cast<int>(ms_left(deadline)));
    if (n == 0) return "timeout (" + std::to_string(got.size()) + " of " + std::to_string(line.size()) + " bytes)";
    char buf[256];
    const ssize_t r = recv(fd, buf, std::min(sizeof buf, line.size() - got.size()), 0);
    if (r == 0) return "closed by the peer";
    if (r < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return std::string("recv: ") + std::strerror(errno);
    }
    got.append(buf, static_cast<size_t>(r));
  }
  if (got != line) return "another reply: " + got.substr(0, got.size() - 1);
  return "";
}

// Every connection ends with a reset, so that none lingers in FIN_WAIT/TIME_WAIT in the
// kernel's tables (IPVS keeps those 2 minutes) after the caller's last measurement.
void close_with_reset(int fd) {
  const linger reset{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  close(fd);
}

bool exists(const char* path) {
  struct stat st {};
  return stat(path, &st) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 6) {
    std::fprintf(stderr, "usage: %s HOST PORT N SECONDS STOP_FILE [PAUSE_MS] [NEW_MS]\n", argv[0]);
    return 64;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[2])));
  if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) {
    std::fprintf(stderr, "not an IPv4 address: %s\n", argv[1]);
    return 64;
  }
  const int n = std::atoi(argv[3]);
  const auto end = kStart + std::chrono::seconds(std::atoi(argv[4]));
  const char* stop_file = argv[5];
  const int pause_ms = argc > 6 ? std::atoi(argv[6]) : 200;
  const int new_ms = argc > 7 ? std::atoi(argv[7]) : 500;

  std::vector<int> conns;
  for (int i = 0; i < n; ++i) {
    std::string why;
    const int fd = dial(addr, 5000, &why);
    if (fd < 0) {
      std::printf("setup: connection %d of %d: %s\n", i, n, why.c_str());
      return 2;
    }
    conns.push_back(fd);
  }
  std::printf("t=%.1f %d connections open\n", since_start(), n);
  std::fflush(stdout);

  long exchanges = 0;
  int failed = 0;
  long fresh = 0;
  long fresh_failed = 0;
  long seq = 0;
  auto next_new = Clock::now();
  while (Clock::now() < end && !exists(stop_file)) {
    for (int i = 0; i < n; ++i) {
      if (conns[i] < 0) continue;
      const std::string line = "conn " + std::to_string(i) + " seq " + std::to_string(seq++) + "\n";
      const std::string err = exchange(conns[i], line, 5000);
      if (err.empty()) {
        ++exchanges;
        continue;
      }
      std::printf("t=%.1f conn %d: %s\n", since_start(), i, err.c_str());
      std::fflush(stdout);
      close_with_reset(conns[i]);
      conns[i] = -1;
      ++failed;
    }
    if (new_ms > 0 && Clock::now() >= next_new) {
      next_new = Clock::now() + std::chrono::milliseconds(new_ms);
      ++fresh;
      std::string why;
      const int fd = dial(addr, 3000, &why);
      if (fd >= 0) why = exchange(fd, "new " + std::to_string(fresh) + "\n", 3000);
      if (fd >= 0) close_with_reset(fd);
      if (!why.empty()) {
        ++fresh_failed;
        std::printf("t=%.1f new connection %ld: %s\n", since_start(), fresh, why.c_str());
        std::fflush(stdout);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
  }
  for (int fd : conns) {
    if (fd >= 0) close_with_reset(fd);
  }
  std::printf("connections=%d failed=%d exchanges=%ld new=%ld new_failed=%ld\n", n, failed, exchanges, fresh,
              fresh_failed);
  return 0;
}
