// Where container logs live, as the upstream kubelet lays them out, and its log rotation
// (pkg/kubelet/logs) as a plan over a directory listing: the caller does the I/O.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace knode::kubelet {

inline constexpr char kPodLogsRoot[] = "/var/log/pods";
inline constexpr char kContainerLogsDir[] = "/var/log/containers";

// "/var/log/pods/<ns>_<name>_<uid>": a sandbox's log directory.
std::string pod_log_directory(const std::string& ns, const std::string& name,
                              const std::string& uid);
// "<container>/<restartCount>.log": ContainerConfig.log_path, relative to the above.
std::string container_log_path(const std::string& container, int32_t restart_count);
// The absolute path of that file.
std::string container_log_file(const std::string& ns, const std::string& name,
                               const std::string& uid, const std::string& container,
                               int32_t restart_count);
// "/var/log/containers/<pod>_<ns>_<container>-<containerID>.log", the symlink log
// collectors read; the file name is cut to ext4's 255 bytes before ".log".
std::string container_log_symlink(const std::string& pod, const std::string& ns,
                                  const std::string& container, const std::string& container_id);

// containerLogMaxSize ("10Mi") and containerLogMaxFiles (5).
struct LogRotationPolicy {
  int64_t max_size = 10 * 1024 * 1024;
  int max_files = 5;
};

// What one rotation of a container's log does, in this order: remove, compress (each
// file F becomes F.gz: written as F.tmp, renamed, F removed), rename the live log to
// `rotated_to`, then ask the runtime to reopen the log.
struct LogRotationPlan {
  bool rotate = false;  // the live log is below max_size: nothing happens
  std::vector<std::string> remove;
  std::vector<std::string> compress;
  std::string rotated_to;  // "<log>.<YYYYMMDD-hhmmss>", local time as upstream formats it
};

// `log` is the live log's path, `size` its size, `siblings` every path in its directory
// (the live log itself may be among them), `now` the wall time of the rotation.
LogRotationPlan plan_log_rotation(const std::string& log, int64_t size,
                                  const std::vector<std::string>& siblings,
                                  const LogRotationPolicy& policy,
                                  std::chrono::system_clock::time_point now);

}  // namespace knode::kubelet
