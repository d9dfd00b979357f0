// systemd service notification (Type=notify) over libsystemd's sd_notify, and a watchdog
// that pings systemd only while the daemon is healthy, so a wedged agent gets restarted.
// Everything is a clean no-op when NOTIFY_SOCKET is unset (not run by systemd, tests).
//
//   knode::systemd::notify_status("syncing");
//   ...initial sync done...
//   knode::systemd::notify_ready();
//   knode::systemd::Watchdog watchdog(io, [&] { return health.healthy(); });
//   watchdog.start();
//   ...on SIGTERM...
//   knode::systemd::notify_stopping();
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "knode/status.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace knode::systemd {

// Sends one state string ("READY=1", "STATUS=...", several joined by '\n').
// Ok, and nothing sent, when NOTIFY_SOCKET is unset.
Status notify(std::string_view state);
Status notify_ready();
Status notify_stopping();
Status notify_watchdog();
Status notify_status(std::string_view text);  // newlines are replaced: one line only

// True when the service manager asked for notifications (NOTIFY_SOCKET is set).
bool notify_socket_set();

// The watchdog interval systemd asked for (WatchdogSec=, via WATCHDOG_USEC and
// WATCHDOG_PID), or zero when the watchdog is off for this process.
std::chrono::microseconds watchdog_interval();

class Watchdog {
 public:
  using Predicate = std::function<bool()>;
  using Notifier = std::function<Status(std::string_view)>;

  // Reads the interval from the environment; pings through notify().
  Watchdog(boost::asio::io_context& io, Predicate healthy);
  // For tests and callers with their own transport: a fixed interval and notifier.
  Watchdog(boost::asio::io_context& io, Predicate healthy, std::chrono::microseconds interval,
           Notifier notifier);
  ~Watchdog();  // stops
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Sends WATCHDOG=1 every interval/2 on the io_context, skipping a beat whenever the
  // predicate is false (systemd then restarts the service once the interval runs out).
  // Returns false, scheduling nothing, when the interval is zero (watchdog off).
  bool start();
  void stop();

  std::chrono::microseconds interval() const;
  // Pings sent and beats skipped because the predicate said unhealthy.
  unsigned long pings_sent() const;
  unsigned long beats_skipped() const;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace knode::systemd
