// sd_notify and the watchdog against a real unix datagram socket the test creates, as
// systemd would. Each test sets the environment it needs (ctest runs tests in separate
// processes; run directly, tests still do not depend on one another's environment).
#include "knode/sd_notify.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>

namespace knode::systemd {
namespace {

using namespace std::chrono_literals;

// A bound AF_UNIX datagram socket; NOTIFY_SOCKET points at it while it lives.
class NotifySocket {
 public:
  explicit NotifySocket(bool abstract = false) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    timeval tv{2, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    socklen_t len;
    if (abstract) {
      name_ = "@knode-notify-test-" + std::to_string(getpid());
      std::memcpy(a.sun_path + 1, name_.data() + 1, name_.size() - 1);  // leading NUL
      len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name_.size());
    } else {
      char tmpl[] = "/tmp/knode-notify-XXXXXX";
      dir_ = ::mkdtemp(tmpl);
      name_ = dir_ + "/notify.sock";
      std::strncpy(a.sun_path, name_.c_str(), sizeof(a.sun_path) - 1);
      len = sizeof(a);
    }
    bound_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&a), len) == 0;
    ::setenv("NOTIFY_SOCKET", name_.c_str(), 1);
  }
  ~NotifySocket() {
    ::unsetenv("NOTIFY_SOCKET");
    ::close(fd_);
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  bool bound() const { return bound_; }
  // The next datagram, or nullopt after the 2 s timeout.
  std::optional<std::string> receive() {
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<std::size_t>(n));
  }

 private:
  int fd_ = -1;
  bool bound_ = false;
  std::string dir_;
  std::string name_;
};

void clear_env() {
  ::unsetenv("NOTIFY_SOCKET");
  ::unsetenv("WATCHDOG_USEC");
  ::unsetenv("WATCHDOG_PID");
}

TEST(SdNotify, WithoutNotifySocketEverythingIsANoOp) {
  clear_env();
  EXPECT_FALSE(notify_socket_set());
  EXPECT_TRUE(notify_ready().ok());
  EXPECT_TRUE(notify_watchdog().ok());
  EXPECT_TRUE(notify_status("syncing").ok());
  EXPECT_TRUE(notify_stopping().ok());
}

TEST(SdNotify, ReadyArrivesOnTheNotifySocket) {
  clear_env();
  NotifySocket sock;
  ASSERT_TRUE(sock.bound());
  EXPECT_TRUE(notify_socket_set());
  auto st = notify_ready();
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(sock.receive(), "READY=1");
}

TEST(SdNotify, StatusWatchdogAndStoppingArriveInOrder) {
  clear_env();
  NotifySocket sock;
  ASSERT_TRUE(sock.bound());
  ASSERT_TRUE(notify_status("synced 3 services\nand more").ok());
  ASSERT_TRUE(notify_watchdog().ok());
  ASSERT_TRUE(notify_stopping().ok());
  EXPECT_EQ(sock.receive(), "STATUS=synced 3 services and more");
  EXPECT_EQ(sock.receive(), "WATCHDOG=1");
  EXPECT_EQ(sock.receive(), "STOPPING=1");
}

TEST(SdNotify, AbstractNamespaceSocket) {
  clear_env();
  NotifySocket sock(/*abstract=*/true);
  ASSERT_TRUE(sock.bound());
  ASSERT_TRUE(notify_ready().ok());
  EXPECT_EQ(sock.receive(), "READY=1");
}

TEST(SdNotify, MissingSocketIsAnErrorNamingTheMessage) {
  clear_env();
  ::setenv("NOTIFY_SOCKET", "/nonexistent/knode/notify.sock", 1);
  auto st = notify_ready();
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.message().rfind("sd_notify READY=1: ", 0), 0u) << st.message();
  clear_env();
}

TEST(SdNotify, WatchdogIntervalComesFromTheEnvironment) {
  clear_env();
  EXPECT_EQ(watchdog_interval(), 0us);
  ::setenv("WATCHDOG_USEC", "400000", 1);
  ::setenv("WATCHDOG_PID", std::to_string(getpid()).c_str(), 1);
  EXPECT_EQ(watchdog_interval(), 400ms);
  ::setenv("WATCHDOG_PID", std::to_string(getpid() + 1).c_str(), 1);  // meant for another
  EXPECT_EQ(watchdog_interval(), 0us);
  clear_env();
}

TEST(Watchdog, OffWhenSystemdDidNotAskForIt) {
  clear_env();
  boost::asio::io_context io;
  Watchdog w(io, [] { return true; });
  EXPECT_FALSE(w.start());
  EXPECT_EQ(io.run_for(10ms), 0u);  // nothing scheduled
}

// Runs the loop until done() or a generous deadline, so a loaded machine cannot fail it.
template <typename Pred>
bool run_until(boost::asio::io_context& io, Pred done) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  io.restart();
  while (!done() && std::chrono::steady_clock::now() < deadline) io.run_one_for(10ms);
  return done();
}

TEST(Watchdog, PingsAtHalfTheIntervalWhileHealthy) {
  boost::asio::io_context io;
  std::vector<std::string> sent;
  Watchdog w(io, [] { return true; }, 40ms, [&sent](std::string_view s) {
    sent.emplace_back(s);
    return Status::Ok();
  });
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(w.start());
  ASSERT_TRUE(run_until(io, [&] { return sent.size() >= 3; }));
  // The first ping goes out at once, then one every 20 ms.
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 40ms);
  for (const auto& s : sent) EXPECT_EQ(s, "WATCHDOG=1");
  EXPECT_EQ(w.pings_sent(), sent.size());
}

TEST(Watchdog, WithholdsPingsWhileUnhealthy) {
  boost::asio::io_context io;
  std::atomic<bool> healthy{false};
  int sent = 0;
  Watchdog w(io, [&] { return healthy.load(); }, 20ms, [&sent](std::string_view) {
    ++sent;
    return Status::Ok();
  });
  ASSERT_TRUE(w.start());
  ASSERT_TRUE(run_until(io, [&] { return w.beats_skipped() >= 3; }));
  EXPECT_EQ(sent, 0);
  healthy = true;
  ASSERT_TRUE(run_until(io, [&] { return sent >= 1; }));
}

TEST(Watchdog, StopLetsTheLoopFinish) {
  boost::asio::io_context io;
  Watchdog w(io, [] { return true; }, 20ms, [](std::string_view) { return Status::Ok(); });
  ASSERT_TRUE(w.start());
  io.run_for(15ms);
  w.stop();
  const auto before = w.pings_sent();
  io.restart();
  io.run();  // returns: no timer left
  EXPECT_EQ(w.pings_sent(), before);
}

TEST(Watchdog, SendsWatchdogToTheNotifySocket) {
  clear_env();
  NotifySocket sock;
  ASSERT_TRUE(sock.bound());
  ::setenv("WATCHDOG_USEC", "100000", 1);
  ::setenv("WATCHDOG_PID", std::to_string(getpid()).c_str(), 1);
  boost::asio::io_context io;
  Watchdog w(io, [] { return true; });
  EXPECT_EQ(w.interval(), 100ms);
  ASSERT_TRUE(w.start());
  io.run_for(10ms);  // the first ping goes out at once
  EXPECT_EQ(sock.receive(), "WATCHDOG=1");
  w.stop();
  clear_env();
}

}  // namespace
}  // namespace knode::systemd
