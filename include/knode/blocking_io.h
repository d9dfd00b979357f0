// Blocking calls built from Asio's asynchronous ones, for code that runs on a thread of
// its own (the API server client, the Docker Engine client): each operation runs on a
// private io_context until it completes, a deadline passes or a Cancel fires from
// another thread.
#pragma once

#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core/error.hpp>
#include <chrono>
#include <mutex>
#include <optional>
#include <utility>

namespace knode {

// Ends a blocking call in progress from another thread (a watch being stopped, a log
// copier whose container went away). Once cancelled it stays so.
class Cancel {
 public:
  void cancel() {
    std::lock_guard lock(mu_);
    cancelled_ = true;
    if (io_ != nullptr) io_->stop();
  }
  bool cancelled() const {
    std::lock_guard lock(mu_);
    return cancelled_;
  }
  // The io_context a call is running on now (nullptr when none).
  void attach(boost::asio::io_context* io) {
    std::lock_guard lock(mu_);
    io_ = io;
  }
  void detach() { attach(nullptr); }

 private:
  mutable std::mutex mu_;
  bool cancelled_ = false;
  boost::asio::io_context* io_ = nullptr;
};

// Starts one asynchronous operation, start(handler), and drives `io` until it completes
// (its error), the deadline passes (beast::error::timeout) or `cancel` fires
// (operation_aborted). On a timeout or a cancel, abort() closes what the operation uses
// and its handler is run, so nothing refers to the caller's frame afterwards.
template <typename Start, typename Abort>
boost::system::error_code run_blocking(boost::asio::io_context& io,
                                       std::optional<std::chrono::steady_clock::time_point> deadline,
                                       Cancel* cancel, Start&& start, Abort&& abort) {
  using boost::system::error_code;
  bool done = false;
  error_code result;
  std::forward<Start>(start)([&done, &result](error_code ec, auto&&...) {
    result = ec;
    done = true;
  });
  error_code why;
  while (!done) {
    // restart() before the check: a cancel() after it stops run_one() below.
    io.restart();
    if (cancel != nullptr && cancel->cancelled()) {
      why = boost::asio::error::operation_aborted;
      break;
    }
    const size_t ran = deadline ? io.run_one_until(*deadline) : io.run_one();
    if (done) break;
    if (ran == 0) {
      if (deadline && std::chrono::steady_clock::now() >= *deadline) {
        why = boost::beast::error::timeout;
        break;
      }
      if (cancel != nullptr && cancel->cancelled()) {
        why = boost::asio::error::operation_aborted;
        break;
      }
    }
  }
  if (done) return result;
  std::forward<Abort>(abort)();
  while (!done) {
    io.restart();
    if (io.run_one() == 0 && !done) break;  // nothing left to run: the handler ran
  }
  return why;
}

}  // namespace knode
