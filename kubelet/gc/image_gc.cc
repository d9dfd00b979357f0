#include "gc/image_gc.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <set>

#include "knode/log.h"

namespace knode::kubelet {

namespace {

// Images a container names: the ID or digest it runs, and the reference it asked for.
std::set<std::string> images_in_use(const std::vector<runtime::Container>& containers) {
  std::set<std::string> out;
  for (const auto& c : containers) {
    if (!c.image_ref.empty()) out.insert(c.image_ref);
    if (!c.image.image.empty()) out.insert(c.image.image);
  }
  return out;
}

bool is_used(const runtime::Image& image, const std::set<std::string>& in_use) {
  if (in_use.count(image.id) != 0) return true;
  for (const auto* names : {&image.repo_tags, &image.repo_digests}) {
    for (const auto& n : *names) {
      if (in_use.count(n) != 0) return true;
    }
  }
  return false;
}

// Least recently used first; never used before used; ties by first detection (unknown
// first), then by ID so that the order is the same every time.
bool evict_before(const std::string& a_id, const ImageGcManager::Record& a, const std::string& b_id,
                  const ImageGcManager::Record& b) {
  if (a.last_used != b.last_used) return a.last_used < b.last_used;  // nullopt is least
  if (a.first_detected != b.first_detected) return a.first_detected < b.first_detected;
  return a_id < b_id;
}

}  // namespace

Status validate(const ImageGcPolicy& p) {
  auto range = [](const char* name, int v) {
    if (v >= 0 && v <= 100) return Status::Ok();
    return Status::Error(
        "invalid " + std::string(name) + " " + std::to_string(v) + ", must be in range [0-100]",
        EINVAL);
  };
  if (Status s = range("HighThresholdPercent", p.high_threshold_percent); !s.ok()) return s;
  if (Status s = range("LowThresholdPercent", p.low_threshold_percent); !s.ok()) return s;
  if (p.low_threshold_percent > p.high_threshold_percent) {
    return Status::Error("LowThresholdPercent " + std::to_string(p.low_threshold_percent) +
                             " can not be higher than HighThresholdPercent " +
                             std::to_string(p.high_threshold_percent),
                         EINVAL);
  }
  return Status::Ok();
}

Result<FsCapacity> statfs_capacity(const std::string& path) {
  struct statvfs st {};
  if (::statvfs(path.c_str(), &st) != 0) return Status::FromErrno("statfs " + path, errno);
  FsCapacity out;
  out.capacity_bytes = static_cast<uint64_t>(st.f_blocks) * st.f_frsize;
  out.available_bytes = static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
  return out;
}

ImageGcManager::ImageGcManager(runtime::ContainerRuntime& runtime, const Clock& clock,
                               ImageGcPolicy policy, StatFsFn statfs)
    : runtime_(runtime),
      clock_(clock),
      policy_(policy),
      statfs_(std::move(statfs)),
      began_(clock.steady_now()) {}

Status ImageGcManager::detect_images() {
  std::lock_guard lock(mu_);
  auto now = clock_.steady_now();
  std::set<std::string> used;
  return detect_locked(initialized_ ? std::optional(now) : std::nullopt, now, used);
}

Status ImageGcManager::detect_locked(std::optional<Clock::SteadyTime> detect_time,
                                     Clock::SteadyTime now, std::set<std::string>& used_ids) {
  auto images = runtime_.list_images();
  if (!images.ok()) return images.status().Wrap("image GC: list images");
  auto containers = runtime_.list_containers();
  if (!containers.ok()) return containers.status().Wrap("image GC: list containers");
  const std::set<std::string> in_use = images_in_use(*containers);

  std::set<std::string> current;
  for (const auto& image : *images) {
    current.insert(image.id);
    auto [it, added] = records_.try_emplace(image.id);
    Record& r = it->second;
    if (added) r.first_detected = detect_time;
    if (is_used(image, in_use)) {
      r.last_used = now;
      used_ids.insert(image.id);
    }
    r.size = image.size;
    r.pinned = image.pinned;
  }
  std::erase_if(records_, [&](const auto& kv) { return current.count(kv.first) == 0; });
  initialized_ = true;
  return Status::Ok();
}

Result<std::vector<ImageGcManager::Candidate>> ImageGcManager::eviction_order(
    Clock::SteadyTime now) {
  std::set<std::string> used;
  if (Status s = detect_locked(initialized_ ? std::optional(now) : std::nullopt, now, used);
      !s.ok()) {
    return s;
  }
  std::vector<Candidate> out;
  for (const auto& [id, r] : records_) {
    if (used.count(id) != 0 || r.pinned) continue;
    out.push_back({id, r});
  }
  std::sort(out.begin(), out.end(), [](const Candidate& a, const Candidate& b) {
    return evict_before(a.id, a.record, b.id, b.record);
  });
  return out;
}

Status ImageGcManager::remove(const Candidate& c, ImageGcResult& result) {
  KLOG(INFO, "Removing image to free bytes").kv("imageID", c.id).kv("size", c.record.size);
  runtime::ImageSpec spec;
  spec.image = c.id;
  if (Status s = runtime_.remove_image(spec); !s.ok()) return s;
  records_.erase(c.id);
  result.removed.push_back(c.id);
  result.freed_bytes += c.record.size;
  return Status::Ok();
}

std::vector<ImageGcManager::Candidate> ImageGcManager::free_old_images(
    std::vector<Candidate> candidates, Clock::SteadyTime now, ImageGcResult& result) {
  if (policy_.max_age.count() == 0) return candidates;
  // Until the kubelet has run max_age itself, an image it never saw used may just have
  // been used before it started.
  if (now - began_ <= policy_.max_age) return candidates;
  std::vector<Candidate> left;
  std::vector<std::string> errors;
  for (auto& c : candidates) {
    // Upstream counts a never-used image from the zero time (so it always goes); knode
    // counts it from its first detection, so a just-pulled image is not taken before its
    // container starts.
    auto since = c.record.last_used ? c.record.last_used : c.record.first_detected;
    bool old = !since || now - *since > policy_.max_age;
    if (old) {
      Status s = remove(c, result);
      if (s.ok()) continue;
      errors.push_back(s.message());
    }
    left.push_back(std::move(c));
  }
  if (!errors.empty()) {
    std::string joined;
    for (const auto& e : errors) joined += (joined.empty() ? "" : "; ") + e;
    result.status = Status::Error("image GC: removing images older than max age: " + joined);
  }
  return left;
}

std::vector<ImageGcManager::Candidate> ImageGcManager::free_space(std::vector<Candidate> candidates,
                                                                  uint64_t to_free,
                                                                  Clock::SteadyTime now,
                                                                  ImageGcResult& result) {
  std::vector<Candidate> left;
  std::vector<std::string> errors;
  uint64_t freed = 0;
  size_t i = 0;
  for (; i < candidates.size() && freed < to_free; ++i) {
    Candidate& c = candidates[i];
    bool young = c.record.first_detected && now - *c.record.first_detected < policy_.min_age;
    if (young) {
      left.push_back(std::move(c));
      continue;
    }
    if (Status s = remove(c, result); !s.ok()) {
      errors.push_back(s.message());
      left.push_back(std::move(c));
      continue;
    }
    freed += c.record.size;
  }
  for (; i < candidates.size(); ++i) left.push_back(std::move(candidates[i]));
  if (!errors.empty()) {
    std::string joined;
    for (const auto& e : errors) joined += (joined.empty() ? "" : "; ") + e;
    result.status = Status::Error("wanted to free " + std::to_string(to_free) +
                                  " bytes, but freed " + std::to_string(freed) +
                                  " bytes space with errors in image deletion: " + joined);
  }
  return left;
}

Result<FsCapacity> ImageGcManager::image_fs_capacity() {
  auto fs = runtime_.image_fs_info();
  if (!fs.ok()) return fs.status().Wrap("image GC: image filesystem info");
  if (fs->empty()) return Status::Error("image GC: the runtime reports no image filesystem");
  const runtime::FilesystemUsage& f = fs->front();
  if (f.capacity_bytes > 0) {
    return FsCapacity{f.capacity_bytes,
                      f.capacity_bytes - std::min(f.used_bytes, f.capacity_bytes)};
  }
  if (f.mountpoint.empty()) return FsCapacity{};  // unknown: reported as invalid capacity
  auto st = statfs_(f.mountpoint);
  if (!st.ok()) return st.status().Wrap("image GC: get filesystem info");
  return *st;
}

ImageGcResult ImageGcManager::garbage_collect() {
  ImageGcResult result;
  if (policy_.high_threshold_percent >= 100) return result;  // upstream: image GC disabled
  std::lock_guard lock(mu_);
  const auto now = clock_.steady_now();
  auto order = eviction_order(now);
  if (!order.ok()) {
    result.status = order.status();
    return result;
  }
  std::vector<Candidate> candidates = free_old_images(std::move(*order), now, result);
  if (!result.status.ok()) return result;

  auto fs = image_fs_capacity();
  if (!fs.ok()) {
    result.status = fs.status();
    return result;
  }
  const int64_t capacity = static_cast<int64_t>(fs->capacity_bytes);
  const int64_t available = std::min(static_cast<int64_t>(fs->available_bytes), capacity);
  if (capacity == 0) {
    const std::string msg = "invalid capacity 0 on image filesystem";
    result.event = KubeletEvent{kEventWarning, kEventInvalidDiskCapacity, msg};
    result.status = Status::Error(msg);
    return result;
  }
  const int usage = 100 - static_cast<int>(available * 100 / capacity);
  if (usage < policy_.high_threshold_percent) return result;

  const int64_t to_free = capacity * (100 - policy_.low_threshold_percent) / 100 - available;
  KLOG(INFO,
       "Disk usage on image filesystem is over the high threshold, trying to free bytes "
       "down to the low threshold")
      .kv("usage", usage)
      .kv("highThreshold", policy_.high_threshold_percent)
      .kv("amountToFree", to_free)
      .kv("lowThreshold", policy_.low_threshold_percent);
  const uint64_t before = result.freed_bytes;
  free_space(std::move(candidates), static_cast<uint64_t>(std::max<int64_t>(to_free, 0)), now,
             result);
  if (!result.status.ok()) return result;
  const int64_t freed = static_cast<int64_t>(result.freed_bytes - before);
  if (freed < to_free) {
    const std::string msg =
        "Failed to garbage collect required amount of images. Attempted to free " +
        std::to_string(to_free) + " bytes, but only found " + std::to_string(freed) +
        " bytes eligible to free.";
    result.event = KubeletEvent{kEventWarning, kEventFreeDiskSpaceFailed, msg};
    result.status = Status::Error(msg);
  }
  return result;
}

ImageGcResult ImageGcManager::delete_unused_images() {
  ImageGcResult result;
  std::lock_guard lock(mu_);
  const auto now = clock_.steady_now();
  auto order = eviction_order(now);
  if (!order.ok()) {
    result.status = order.status();
    return result;
  }
  free_space(std::move(*order), UINT64_MAX, now, result);
  return result;
}

std::optional<ImageGcManager::Record> ImageGcManager::record(const std::string& image_id) const {
  std::lock_guard lock(mu_);
  auto it = records_.find(image_id);
  if (it == records_.end()) return std::nullopt;
  return it->second;
}

}  // namespace knode::kubelet
