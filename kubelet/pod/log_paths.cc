#include "pod/log_paths.h"

#include <algorithm>
#include <ctime>

namespace knode::kubelet {
namespace {

constexpr size_t kMaxFileName = 255;  // ext4
constexpr char kCompressSuffix[] = ".gz";
constexpr char kTmpSuffix[] = ".tmp";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A leftover of an interrupted rotation: a temporary file, or a plain file whose
// compressed copy was finished.
bool unused(const std::string& f, const std::vector<std::string>& rotated) {
  if (ends_with(f, kTmpSuffix)) return true;
  if (ends_with(f, kCompressSuffix)) return false;
  return std::find(rotated.begin(), rotated.end(), f + kCompressSuffix) != rotated.end();
}

std::string timestamp(std::chrono::system_clock::time_point now) {
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%d-%H%M%S", &tm);
  return buf;
}

}  // namespace

std::string pod_log_directory(const std::string& ns, const std::string& name,
                              const std::string& uid) {
  return std::string(kPodLogsRoot) + "/" + ns + "_" + name + "_" + uid;
}

std::string container_log_path(const std::string& container, int32_t restart_count) {
  return container + "/" + std::to_string(restart_count) + ".log";
}

std::string container_log_file(const std::string& ns, const std::string& name,
                               const std::string& uid, const std::string& container,
                               int32_t restart_count) {
  return pod_log_directory(ns, name, uid) + "/" + container_log_path(container, restart_count);
}

std::string container_log_symlink(const std::string& pod, const std::string& ns,
                                  const std::string& container, const std::string& container_id) {
  static const std::string kSuffix = ".log";
  std::string file = pod + "_" + ns + "_" + container + "-" + container_id;
  if (file.size() > kMaxFileName - kSuffix.size()) file.resize(kMaxFileName - kSuffix.size());
  return std::string(kContainerLogsDir) + "/" + file + kSuffix;
}

LogRotationPlan plan_log_rotation(const std::string& log, int64_t size,
                                  const std::vector<std::string>& siblings,
                                  const LogRotationPolicy& policy,
                                  std::chrono::system_clock::time_point now) {
  LogRotationPlan plan;
  if (size < policy.max_size) return plan;
  plan.rotate = true;
  std::vector<std::string> rotated;  // "<log>.*", as upstream globs them
  for (const auto& f : siblings) {
    if (f.size() > log.size() + 1 && f.compare(0, log.size() + 1, log + ".") == 0 &&
        f.find('/', log.size()) == std::string::npos) {
      rotated.push_back(f);
    }
  }
  std::vector<std::string> in_use;
  for (const auto& f : rotated) (unused(f, rotated) ? plan.remove : in_use).push_back(f);
  // Two slots go to the file being rotated and the new live log; the oldest rotated files
  // beyond that go, oldest first so that a reader of a newer one is not cut off.
  std::sort(in_use.begin(), in_use.end());
  size_t keep = static_cast<size_t>(std::max(policy.max_files - 2, 0));
  size_t drop = in_use.size() > keep ? in_use.size() - keep : 0;
  plan.remove.insert(plan.remove.end(), in_use.begin(), in_use.begin() + drop);
  for (auto it = in_use.begin() + drop; it != in_use.end(); ++it) {
    if (!ends_with(*it, kCompressSuffix)) plan.compress.push_back(*it);
  }
  plan.rotated_to = log + "." + timestamp(now);
  return plan;
}

}  // namespace knode::kubelet
