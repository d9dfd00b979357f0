// Container logs on the node, as upstream's kubelet keeps them (pkg/kubelet/logs and the
// log parts of pkg/kubelet/kuberuntime):
//
// - /var/log/pods/<ns>_<name>_<uid>/<container>/<restartCount>.log is where the runtime
//   writes a container's output; the kubelet creates the directories (0755) before it
//   asks for the sandbox and the container.
// - /var/log/containers/<pod>_<ns>_<container>-<id>.log is a symlink to that file, for
//   log collectors; made once the file exists, removed once it dangles and its container
//   is gone or exited.
// - Rotation: every 10 s each running container's live log is checked; at
//   containerLogMaxSize it is renamed to "<log>.<timestamp>" and the runtime reopens
//   the log, older rotated files are gzipped, and beyond containerLogMaxFiles the oldest
//   go (log_paths.h's plan, applied here).
//
// Only the kubelet's own containers (labels.h) are rotated and linked. Paths are under an
// injectable root ("/" on a node, a temporary directory in tests): a sandbox's
// log_directory must then be pod_log_directory() so that the runtime writes under it.
//
// Thread-safe: run_once() (the log loop) and clean() (container GC) may run at once.
#pragma once

#include <chrono>
#include <mutex>
#include <set>
#include <string>

#include "knode/clock.h"
#include "knode/runtime.h"
#include "knode/status.h"
#include "pod/log_paths.h"

namespace knode::kubelet {

inline constexpr auto kLogMonitorPeriod = std::chrono::seconds(10);  // containerLogMonitorInterval

struct LogManagerOptions {
  std::string root = "/";    // where /var/log/pods and /var/log/containers are
  LogRotationPolicy policy;  // containerLogMaxSize 10Mi, containerLogMaxFiles 5
};
// Upstream's checks: a positive max size, and more than one file (the live one and the
// one being rotated).
Status validate(const LogRotationPolicy& policy);

class LogManager {
 public:
  LogManager(runtime::ContainerRuntime& runtime, const Clock& clock,
             LogManagerOptions options = {});

  // The sandbox's log directory (PodSandboxConfig.log_directory) under the root.
  std::string pod_log_directory(const std::string& ns, const std::string& name,
                                const std::string& uid) const;
  // The directory pod logs live in: <root>/var/log/pods.
  std::string pods_directory() const;
  // <root>/var/log/containers.
  std::string containers_directory() const;

  // Creates the pod's log directory and the container's below it (0755, parents too) and
  // returns the container's: call before CreateContainer.
  Result<std::string> ensure_container_log_directory(const std::string& ns, const std::string& name,
                                                     const std::string& uid,
                                                     const std::string& container) const;

  // Links the container's /var/log/containers symlink to its log at `log_path` (the
  // sandbox's log directory joined with the container's log path, as upstream computes it
  // rather than asking the runtime), once the runtime has created the file: call after
  // StartContainer (run_once() catches up otherwise).
  Status link_container_log(const std::string& ns, const std::string& pod, const std::string& container,
                            const std::string& container_id, const std::string& log_path);

  // One round: reopen missing logs and rotate full ones of the running containers, make
  // their symlinks, remove dangling symlinks of containers that are gone or exited.
  // Continues past a failing container and reports every failure.
  Status run_once();

  // Removes a container's log files ("<log>*": the live log and the rotated ones) and its
  // symlink, before the container itself is removed (container GC).
  Status clean(const std::string& container_id);

 private:
  std::string under_root(const std::string& absolute) const;
  // The symlink path of a container from its labels; empty when they do not say.
  std::string symlink_for(const runtime::Labels& labels, const std::string& container_name,
                          const std::string& id) const;
  Status rotate_if_full(const std::string& id, const std::string& log);
  Status rotate(const std::string& id, const std::string& log, int64_t size);
  Status ensure_symlink(const std::string& link, const std::string& target);
  Status remove_dangling_symlinks(const std::set<std::string>& keep);

  runtime::ContainerRuntime& runtime_;
  const Clock& clock_;
  LogManagerOptions options_;
  std::mutex mu_;
};

// Compresses `file` to "<file>.gz" as upstream does: written as "<file>.tmp" with the
// file's mode, renamed to "<file>.gz", then `file` removed.
Status gzip_file(const std::string& file);

}  // namespace knode::kubelet
