// Reading a container's log file in the CRI format, as the kubelet serves `kubectl logs`
// (upstream's k8s.io/cri-client/pkg/logs ReadLogs, which kuberuntime calls):
//
//   2016-10-06T00:17:09.669794202Z stdout F the log line
//   2016-10-06T00:17:10.113242941Z stderr P a partial line, continued by the next
//
// Options are PodLogOptions': tailLines (the last N lines of the file), limitBytes (of
// output), sinceSeconds/sinceTime (earlier lines skipped), timestamps (each line prefixed
// with its time in RFC 3339 with nanoseconds, as it was written), the stream (stdout,
// stderr or both), and follow: at the end of the file, wait for more (inotify on the
// directory, and at least every second) until the container stops running; a file
// recreated under the same name (rotation) is read on from once the old one is read to
// its end. Lines that do not parse are skipped. The docker json-file format is not read
// (knode's docker backend writes CRI logs too).
//
// Blocking: run it on a thread of its own.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "knode/status.h"

namespace knode::kubelet {

struct LogReadOptions {
  std::optional<int64_t> tail_lines;   // >= 0
  std::optional<int64_t> limit_bytes;  // >= 1
  int64_t since_unix_nanos = 0;        // 0: from the start
  bool timestamps = false;
  bool follow = false;
  bool stdout_ = true, stderr_ = true;
};

// What following needs from outside: whether the container still runs (CRI
// ContainerStatus; an error ends the read with it), and a descriptor that turns readable
// when the reader must stop (the client went away, the kubelet stops); -1 for none.
struct LogFollow {
  std::function<Result<bool>()> container_running;
  int stop_fd = -1;
  std::chrono::milliseconds force_check{1000};  // upstream's logForceCheckPeriod
};

// Output in pieces, in order; returning false stops the read (not an error).
using LogSink = std::function<bool(std::string_view)>;

// Reads the log at `path` (symlinks resolved) into `sink`. Errors name the file:
// "failed to open log file \"/var/log/pods/...\": No such file or directory".
Status read_container_log(const std::string& path, const LogReadOptions& options,
                          const LogSink& sink, const LogFollow* follow = nullptr);

// One CRI log line parsed: its time (nanoseconds since the epoch) and the time as written
// ("2016-10-06T00:17:09.669794202Z"), the stream, whether it is partial, and the content
// (with its newline unless partial). False when the line is not in the CRI format.
struct CriLogLine {
  int64_t unix_nanos = 0;
  std::string timestamp;  // RFC 3339 with 9 fraction digits, as upstream prints it
  bool stderr_ = false;
  bool partial = false;
  std::string_view content;
};
bool parse_cri_log_line(std::string_view line, CriLogLine* out);

}  // namespace knode::kubelet
