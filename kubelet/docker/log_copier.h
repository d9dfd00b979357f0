// The thread that keeps a Docker container's CRI log (cri_log.h) up to date: it follows
// dockerd's logs endpoint and appends each message to the file the kubelet named. When
// the answer ends it asks whether the container still runs: if so (dockerd restarted,
// the connection broke) it asks again from the last message written, else it is done.
// The kubelet's rotation renames the file and calls reopen(), which makes the copier write
// to a new file at the same path.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "docker/http_client.h"
#include "knode/runtime.h"
#include "knode/status.h"

namespace knode::docker {

// One answer of the logs endpoint from `since` on (0: from the start), its body to
// on_data; returns when the answer ends or cancel fires.
using LogSource =
    std::function<Status(runtime::UnixNanos since, const OnData& on_data, Cancel& cancel)>;
// Whether the container still runs; ENOENT once it is gone.
using RunningCheck = std::function<Result<bool>()>;

class LogCopier {
 public:
  struct Options {
    std::string container_id;
    std::string path;  // absolute; created if missing, appended to
    bool tty = false;
    runtime::UnixNanos after = 0;  // messages at or before it are in the file already
    std::chrono::milliseconds retry = std::chrono::seconds(1);
  };
  // Opens the file (the error names it), then copies on a thread of its own.
  static Result<std::unique_ptr<LogCopier>> start(Options options, LogSource source,
                                                  RunningCheck running);
  ~LogCopier();  // stop()
  LogCopier(const LogCopier&) = delete;
  LogCopier& operator=(const LogCopier&) = delete;

  // Writes to a new file at the path from now on (the old one was renamed away).
  Status reopen();
  // The answer ended and the container no longer runs: everything is written.
  bool done() const;
  // done(), waiting for it at most `max`.
  bool wait_done(std::chrono::milliseconds max);
  // Ends the copy at once (the container is being removed) and joins the thread.
  void stop();

  const std::string& path() const { return options_.path; }

 private:
  LogCopier(Options options, LogSource source, RunningCheck running, int fd);
  void run();
  Status write(const std::string& line);
  bool wait_retry();  // false when stopped meanwhile

  Options options_;
  LogSource source_;
  RunningCheck running_;
  Cancel cancel_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int fd_ = -1;            // guarded by mu_
  bool done_ = false;      // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  bool write_failed_ = false;
  std::thread thread_;
};

// Where a copier resumes after knode restarted: the time of the last line in the log at
// `path`, or in its newest rotated sibling ("<path>.<timestamp>") when the live file is
// empty or missing; 0 when neither has one.
runtime::UnixNanos resume_point(const std::string& path);

}  // namespace knode::docker
