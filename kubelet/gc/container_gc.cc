#include "gc/container_gc.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "knode/log.h"
#include "labels.h"

namespace knode::kubelet {

namespace fs = std::filesystem;

namespace {

// Upstream's minimumGracePeriodInSeconds, and the pod default when a container does not
// say (terminationGracePeriodSeconds).
constexpr int64_t kMinimumGraceSeconds = 2;
constexpr int64_t kDefaultGraceSeconds = 30;

int64_t grace_period(const runtime::Labels& annotations) {
  int64_t grace = kDefaultGraceSeconds;
  auto it = annotations.find(kPodTerminationGracePeriodAnnotation);
  if (it != annotations.end()) {
    try {
      grace = std::stoll(it->second);
    } catch (const std::exception&) {
      // unreadable: the default
    }
  }
  return std::max(grace, kMinimumGraceSeconds);
}

template <typename T>
void newest_first(std::vector<T>& v) {
  std::sort(v.begin(), v.end(), [](const T& a, const T& b) {
    if (a.created_at != b.created_at) return a.created_at > b.created_at;
    return a.id > b.id;
  });
}

runtime::UnixNanos to_nanos(Clock::SystemTime t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

ContainerGc::ContainerGc(runtime::ContainerRuntime& runtime, const Clock& clock,
                         const PodStateProvider& pods, LogManager& logs, ContainerGcPolicy policy)
    : runtime_(runtime), clock_(clock), pods_(pods), logs_(logs), policy_(policy) {}

Status ContainerGc::garbage_collect(bool all_sources_ready, bool evict_non_deleted_pods) {
  errors_.clear();
  if (Status s = evict_containers(all_sources_ready, evict_non_deleted_pods); !s.ok()) {
    errors_.push_back(s.message());
  }
  if (Status s = evict_sandboxes(evict_non_deleted_pods); !s.ok()) errors_.push_back(s.message());
  if (Status s = evict_pod_log_directories(all_sources_ready); !s.ok()) {
    errors_.push_back(s.message());
  }
  if (errors_.empty()) return Status::Ok();
  std::string joined;
  for (const auto& e : errors_) joined += (joined.empty() ? "" : "; ") + e;
  errors_.clear();
  return Status::Error("container GC: " + joined);
}

bool ContainerGc::may_remove_pod(const std::string& uid, bool evict_non_deleted_pods) const {
  return pods_.should_pod_content_be_removed(uid) ||
         (evict_non_deleted_pods && pods_.should_pod_runtime_be_removed(uid));
}

void ContainerGc::remove_container(const Dead& c) {
  if (c.unknown) {
    // It may still be running: stop it first, as upstream kills it.
    if (Status s = runtime_.stop_container(c.id, c.grace_seconds); !s.ok()) {
      errors_.push_back("stop container " + c.id + " in unknown state: " + s.message());
      return;
    }
  }
  if (Status s = logs_.clean(c.id); !s.ok()) {
    errors_.push_back(s.message());
    return;
  }
  if (Status s = runtime_.remove_container(c.id); !s.ok()) {
    errors_.push_back(s.message());
    return;
  }
  KLOGV(4, "Removed dead container").kv("containerID", c.id).kv("name", c.name);
}

ContainerGc::Unit ContainerGc::remove_oldest(Unit unit, size_t n) {
  n = std::min(n, unit.size());
  const size_t keep = unit.size() - n;
  for (size_t i = unit.size(); i-- > keep;) remove_container(unit[i]);
  unit.resize(keep);
  return unit;
}

Status ContainerGc::evict_containers(bool all_sources_ready, bool evict_non_deleted_pods) {
  auto containers = runtime_.list_containers();
  if (!containers.ok()) return containers.status().Wrap("list containers");
  const runtime::UnixNanos newest_gc_time =
      to_nanos(clock_.system_now()) -
      std::chrono::duration_cast<std::chrono::nanoseconds>(policy_.min_age).count();

  std::map<std::pair<std::string, std::string>, Unit> units;  // (pod UID, container name)
  for (const auto& c : *containers) {
    if (!created_by_kubelet(c.labels)) continue;
    if (c.state == runtime::ContainerState::kRunning) continue;
    if (c.created_at > newest_gc_time) continue;
    Dead d;
    d.id = c.id;
    d.name = c.metadata.name;
    d.created_at = c.created_at;
    d.unknown = c.state == runtime::ContainerState::kUnknown;
    d.grace_seconds = grace_period(c.annotations);
    units[{label_or_empty(c.labels, kPodUidLabel), c.metadata.name}].push_back(std::move(d));
  }
  for (auto& [key, unit] : units) newest_first(unit);

  if (all_sources_ready) {
    for (auto it = units.begin(); it != units.end();) {
      if (may_remove_pod(it->first.first, evict_non_deleted_pods)) {
        const size_t all = it->second.size();
        remove_oldest(std::move(it->second), all);
        it = units.erase(it);
      } else {
        ++it;
      }
    }
  }

  auto enforce_per_unit = [&](size_t max) {
    for (auto& [key, unit] : units) {
      if (unit.size() <= max) continue;
      const size_t excess = unit.size() - max;
      unit = remove_oldest(std::move(unit), excess);
    }
  };
  if (policy_.max_per_pod_container >= 0) {
    enforce_per_unit(static_cast<size_t>(policy_.max_per_pod_container));
  }

  auto total = [&] {
    size_t n = 0;
    for (const auto& [key, unit] : units) n += unit.size();
    return n;
  };
  if (policy_.max_containers >= 0 && total() > static_cast<size_t>(policy_.max_containers)) {
    const size_t max = static_cast<size_t>(policy_.max_containers);
    // An equal share per unit first (at least one each), then the oldest of what is left.
    enforce_per_unit(std::max<size_t>(max / units.size(), 1));
    if (total() > max) {
      Unit flat;
      for (auto& [key, unit] : units) flat.insert(flat.end(), unit.begin(), unit.end());
      newest_first(flat);
      const size_t excess = flat.size() - max;
      remove_oldest(std::move(flat), excess);
    }
  }
  return Status::Ok();
}

Status ContainerGc::evict_sandboxes(bool evict_non_deleted_pods) {
  auto containers = runtime_.list_containers();
  if (!containers.ok()) return containers.status().Wrap("list containers");
  auto sandboxes = runtime_.list_pod_sandboxes();
  if (!sandboxes.ok()) return sandboxes.status().Wrap("list pod sandboxes");

  // Any container, the kubelet's or not, keeps its sandbox.
  std::set<std::string> with_containers;
  for (const auto& c : *containers) with_containers.insert(c.pod_sandbox_id);

  struct Info {
    std::string id;
    runtime::UnixNanos created_at = 0;
    bool active = false;
  };
  std::map<std::string, std::vector<Info>> by_pod;
  for (const auto& sb : *sandboxes) {
    if (!created_by_kubelet(sb.labels)) continue;
    bool active = sb.state == runtime::SandboxState::kReady || with_containers.count(sb.id) != 0;
    by_pod[sb.metadata.uid].push_back({sb.id, sb.created_at, active});
  }

  for (auto& [uid, list] : by_pod) {
    newest_first(list);
    // The newest stays while the pod exists, even when it is dead: it carries the pod's
    // last network status until the worker makes a new one.
    const size_t keep = may_remove_pod(uid, evict_non_deleted_pods) ? 0 : 1;
    for (size_t i = list.size(); i-- > keep;) {
      if (list[i].active) continue;
      // The kubelet should have stopped it already; stop it anyway before removing, as
      // upstream does, in case it did not.
      if (Status s = runtime_.stop_pod_sandbox(list[i].id); !s.ok()) {
        errors_.push_back("stop sandbox " + list[i].id + " before removing: " + s.message());
        continue;
      }
      if (Status s = runtime_.remove_pod_sandbox(list[i].id); !s.ok()) {
        errors_.push_back(s.message());
        continue;
      }
      KLOGV(4, "Removed sandbox").kv("sandboxID", list[i].id).kv("podUID", uid);
    }
  }
  return Status::Ok();
}

Status ContainerGc::evict_pod_log_directories(bool all_sources_ready) {
  if (!all_sources_ready) return Status::Ok();
  const std::string root = logs_.pods_directory();
  std::error_code ec;
  std::vector<fs::path> dirs;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    dirs.push_back(it->path());
  }
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return Status::Error("read pod logs directory " + root + ": " + ec.message(), ec.value());
  }
  for (const auto& dir : dirs) {
    // "<ns>_<name>_<uid>": the UID is what follows the last '_'.
    const std::string name = dir.filename().string();
    const std::string uid = name.substr(name.rfind('_') + 1);
    if (!pods_.should_pod_content_be_removed(uid)) continue;
    fs::remove_all(dir, ec);
    if (ec) {
      errors_.push_back("remove pod logs directory " + dir.string() + ": " + ec.message());
    } else {
      KLOGV(4, "Removed pod logs").kv("podUID", uid);
    }
  }
  return Status::Ok();
}

}  // namespace knode::kubelet
