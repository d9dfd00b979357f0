// WATCHDOG=1 at half the interval, as sd_watchdog_enabled(3) recommends, and only while
// the health predicate holds: a daemon that is alive but not doing its job should be
// restarted as if it had hung.
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "knode/log.h"
#include "knode/sd_notify.h"

namespace knode::systemd {

class Watchdog::Impl : public std::enable_shared_from_this<Watchdog::Impl> {
 public:
  Impl(boost::asio::io_context& io, Predicate healthy, std::chrono::microseconds interval,
       Notifier notifier)
      : io_(io),
        timer_(io),
        healthy_(std::move(healthy)),
        interval_(interval),
        notify_(std::move(notifier)) {}

  bool start() {
    if (interval_.count() <= 0) return false;
    if (running_.exchange(true)) return true;
    KLOGV(1, "systemd watchdog enabled").kv("interval_us", interval_.count());
    boost::asio::post(io_, [w = weak_from_this()] {
      if (auto self = w.lock()) self->tick();
    });
    return true;
  }

  void stop() {
    if (!running_.exchange(false)) return;
    boost::asio::post(io_, [self = shared_from_this()] { self->timer_.cancel(); });
  }

  std::chrono::microseconds interval() const { return interval_; }
  unsigned long pings() const { return pings_.load(); }
  unsigned long skipped() const { return skipped_.load(); }

 private:
  void tick() {
    if (!running_) return;
    if (healthy_()) {
      if (auto st = notify_("WATCHDOG=1"); !st) {
        KLOG(WARNING, "systemd watchdog ping failed").kv("error", st.message());
      }
      ++pings_;
      if (withheld_) KLOG(INFO, "healthy again, resuming systemd watchdog pings");
      withheld_ = false;
    } else {
      ++skipped_;
      if (!withheld_) KLOG(WARNING, "unhealthy, withholding systemd watchdog pings");
      withheld_ = true;
    }
    timer_.expires_after(interval_ / 2);
    timer_.async_wait([w = weak_from_this()](const boost::system::error_code& ec) {
      if (ec) return;
      if (auto self = w.lock()) self->tick();
    });
  }

  boost::asio::io_context& io_;
  boost::asio::steady_timer timer_;
  const Predicate healthy_;
  const std::chrono::microseconds interval_;
  const Notifier notify_;
  std::atomic<bool> running_{false};
  std::atomic<unsigned long> pings_{0};
  std::atomic<unsigned long> skipped_{0};
  bool withheld_ = false;  // io thread only
};

Watchdog::Watchdog(boost::asio::io_context& io, Predicate healthy)
    : Watchdog(io, std::move(healthy), watchdog_interval(),
               [](std::string_view s) { return notify(s); }) {}

Watchdog::Watchdog(boost::asio::io_context& io, Predicate healthy,
                   std::chrono::microseconds interval, Notifier notifier)
    : impl_(std::make_shared<Impl>(io, std::move(healthy), interval, std::move(notifier))) {}

Watchdog::~Watchdog() { stop(); }

bool Watchdog::start() { return impl_->start(); }
void Watchdog::stop() { impl_->stop(); }
std::chrono::microseconds Watchdog::interval() const { return impl_->interval(); }
unsigned long Watchdog::pings_sent() const { return impl_->pings(); }
unsigned long Watchdog::beats_skipped() const { return impl_->skipped(); }

}  // namespace knode::systemd
