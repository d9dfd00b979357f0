// dockerd's json-file logs in the CRI log format, so that knode reads a Docker
// container's log like a containerd one (kubectl logs, rotation, the /var/log/containers
// links). The copier asks dockerd's logs endpoint for the messages with their timestamps
// (follow=1, timestamps=1); each arrives as a frame of the multiplexed stream:
//
//   [1 0 0 0 size] "2026-12-01T22:43:14.236658499Z hello\n"   (stdout, a whole line)
//   [2 0 0 0 size] "2026-12-01T22:43:14.3Z part of a long li"  (stderr, no newline)
//
// and becomes one line of the file the kubelet named (ContainerConfig.log_path):
//
//   2026-12-01T22:43:14.236658499Z stdout F hello
//   2026-12-01T22:43:14.3Z stderr P part of a long li
//
// F ends a line of the container's output, P is a piece of a line that continues in the
// next entry: json-file cuts lines at 16 KiB, as containerd does. Times are RFC 3339 with
// nanoseconds, trailing zeros trimmed, as containerd writes them.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "docker/stream.h"
#include "knode/runtime.h"
#include "knode/status.h"

namespace knode::docker {

// RFC 3339 time (any fraction, "Z" or an offset) to nanoseconds since the epoch. Go's zero
// time ("0001-01-01T00:00:00Z"), which dockerd reports for "never", is 0.
Result<runtime::UnixNanos> parse_time(std::string_view text);
// Nanoseconds to RFC 3339 in UTC with the fraction trimmed (Go's RFC3339Nano).
std::string format_time(runtime::UnixNanos t);
// The logs endpoint's `since`: "<seconds>.<nanoseconds>".
std::string since_param(runtime::UnixNanos t);

struct LogEntry {
  runtime::UnixNanos time = 0;
  bool is_stderr = false;
  std::string_view text;  // without the line's newline
  bool partial = false;   // no newline: the line continues in the next entry
};

// One message of the logs endpoint with timestamps=1: "<time> <text>".
Result<LogEntry> parse_log_message(StreamType stream, std::string_view payload);
// Its CRI line, newline included.
std::string cri_log_line(const LogEntry& e);
// The time of the last complete line of CRI log text (the tail of a file), if any.
std::optional<runtime::UnixNanos> last_cri_time(std::string_view text);

// Turns the bytes of one logs answer into CRI lines. Messages at or before `after` are
// dropped: a copier that reconnects asks from `after` on (dockerd's `since` includes it)
// and must not write what it wrote before. `tty`: the container has a terminal, its logs
// come as raw text with one "<time> " per line instead of frames.
class CriLogConverter {
 public:
  using OnLine = std::function<Status(const LogEntry&, const std::string& line)>;
  CriLogConverter(bool tty, runtime::UnixNanos after) : tty_(tty), after_(after), last_(after) {}

  Status feed(std::string_view data, const OnLine& on_line);
  // The end of the answer: a TTY's unterminated last line is written as P.
  Status finish(const OnLine& on_line);
  // The time of the last message passed on (or `after`).
  runtime::UnixNanos last_time() const { return last_; }

 private:
  Status emit(StreamType stream, std::string_view payload, const OnLine& on_line);
  bool tty_;
  runtime::UnixNanos after_;
  runtime::UnixNanos last_;
  StreamDemuxer demux_;
  std::string pending_;  // TTY: text after the last newline
};

}  // namespace knode::docker
