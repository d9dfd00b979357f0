// Blocking network I/O with a deadline and a stop token, for the probes' TCP dial and HTTP
// client. Each attempt has a private io_context that the calling thread drives, so a probe
// never touches the daemon's event loop and ends by its deadline whatever the peer does.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <utility>

#include "knode/status.h"

namespace knode::kubelet::prober {

using SteadyTime = std::chrono::steady_clock::time_point;

class IoSession {
 public:
  // deadline: none when nullopt. A stop request ends the operation under way at once.
  explicit IoSession(std::optional<SteadyTime> deadline, std::stop_token stop = {});
  IoSession(const IoSession&) = delete;
  IoSession& operator=(const IoSession&) = delete;

  boost::asio::io_context& io() { return io_; }
  const std::optional<SteadyTime>& deadline() const { return deadline_; }
  const std::stop_token& stop_token() const { return stop_; }
  bool cancelled() const { return cancelled_.load(); }

  // Applies the deadline to the stream's operations from now on.
  void arm(boost::beast::tcp_stream& stream) const;

  // Starts an asynchronous operation, start(handler), and drives the io_context until the
  // handler has run; returns its error code. Once a stop is requested it returns
  // operation_aborted and leaves the operation pending: the session is over, and the
  // caller unwinds (destroying the stream, then the session, never runs that handler).
  template <typename Start>
  boost::system::error_code run(Start&& start) {
    if (cancelled_.load()) return boost::asio::error::operation_aborted;
    boost::system::error_code result;
    bool done = false;
    std::forward<Start>(start)([&result, &done](boost::system::error_code ec, auto&&...) {
      result = ec;
      done = true;
    });
    io_.restart();
    while (!done && !cancelled_.load() && io_.run_one() != 0) {
    }
    if (!done) return boost::asio::error::operation_aborted;
    return result;
  }

 private:
  boost::asio::io_context io_{1};
  std::optional<SteadyTime> deadline_;
  std::stop_token stop_;
  std::atomic<bool> cancelled_{false};
  // Last: destroyed first, so the callback never sees a dead io_context.
  std::optional<std::stop_callback<std::function<void()>>> on_stop_;
};

// Resolves `host` (an IP literal as is; a name through getaddrinfo on a helper thread, so
// the deadline holds even when DNS does not answer) and connects `stream` to the first
// address that accepts, with SO_LINGER 1 s as upstream's probe dialer sets it (no socket
// lingers in TIME_WAIT for a minute per probe). Errors read like Go's net.Dial:
//   dial tcp 10.244.0.5:8080: connect: connection refused   (ECONNREFUSED)
//   dial tcp 10.244.0.5:8080: i/o timeout                   (ETIMEDOUT: the deadline)
//   dial tcp: lookup web.invalid: no such host              (ENOENT)
//   ... operation was canceled                              (ECANCELED: a stop request)
Status dial(IoSession& session, boost::beast::tcp_stream& stream, const std::string& host,
            int port);

// Go's wording for an I/O error code: "connection reset by peer", "i/o timeout", "EOF".
std::string io_error_text(const boost::system::error_code& ec);

}  // namespace knode::kubelet::prober
