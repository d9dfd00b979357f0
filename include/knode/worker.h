// A thread of its own with a stop flag its body can wait on: the API server's informers,
// writers and reporters each run on one. stop() sets the flag, wakes every wait, runs the
// caller's interrupt (a Cancel of a blocking call) and joins.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace knode {

class Worker {
 public:
  Worker() = default;
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker() { stop(); }

  void start(std::function<void()> body) { thread_ = std::thread(std::move(body)); }

  void stop(const std::function<void()>& interrupt = {}) {
    {
      std::lock_guard lock(mu_);
      stopped_ = true;
    }
    cv_.notify_all();
    if (interrupt) interrupt();
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
  }

  // Sleeps up to d; false once stopped.
  template <typename Rep, typename Period>
  bool wait(std::chrono::duration<Rep, Period> d) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, d, [this] { return stopped_; });
    return !stopped_;
  }
  // With the lock held: waits until ready() or stop(); false once stopped.
  template <typename Pred>
  bool wait(std::unique_lock<std::mutex>& lock, Pred ready) {
    cv_.wait(lock, [&] { return stopped_ || ready(); });
    return !stopped_;
  }
  // With the lock held: waits up to d or until stop(); false once stopped.
  template <typename Rep, typename Period>
  bool wait(std::unique_lock<std::mutex>& lock, std::chrono::duration<Rep, Period> d) {
    cv_.wait_for(lock, d, [this] { return stopped_; });
    return !stopped_;
  }
  // Wakes the waits to look again (after the owner changed what ready() reads).
  void notify() { cv_.notify_all(); }
  // Guards the flag and whatever the owner shares with its thread (a queue).
  std::mutex& mutex() { return mu_; }
  bool stopped() {
    std::lock_guard lock(mu_);
    return stopped_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
  std::thread thread_;
};

}  // namespace knode
