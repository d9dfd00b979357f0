#include "knode/sd_notify.h"

#include <systemd/sd-daemon.h>

#include <cstdlib>

namespace knode::systemd {

Status notify(std::string_view state) {
  const std::string s(state);
  int r = sd_notify(0, s.c_str());
  if (r < 0) return Status::FromErrno("sd_notify " + s, -r);
  return Status::Ok();
}

Status notify_ready() { return notify("READY=1"); }
Status notify_stopping() { return notify("STOPPING=1"); }
Status notify_watchdog() { return notify("WATCHDOG=1"); }

Status notify_status(std::string_view text) {
  std::string s = "STATUS=";
  for (char c : text) s += (c == '\n' ? ' ' : c);
  return notify(s);
}

bool notify_socket_set() {
  const char* e = std::getenv("NOTIFY_SOCKET");
  return e != nullptr && *e != '\0';
}

std::chrono::microseconds watchdog_interval() {
  uint64_t usec = 0;
  // > 0: enabled for this process (WATCHDOG_PID, if set, names us).
  if (sd_watchdog_enabled(0, &usec) <= 0) return std::chrono::microseconds(0);
  return std::chrono::microseconds(usec);
}

}  // namespace knode::systemd
