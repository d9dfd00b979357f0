// Image garbage collection, as upstream's realImageGCManager (pkg/kubelet/images/
// image_gc_manager.go): when the image filesystem is at or above the high threshold,
// remove images no container uses, least recently used first, until usage is back at the
// low threshold.
//
// - Usage is the image filesystem's (the runtime's ImageFsInfo, first filesystem): its
//   capacity and free space come from statfs of its mountpoint, as upstream's stats
//   provider asks cadvisor; a runtime that reports a capacity itself is taken at its
//   word, with used_bytes as the used part.
// - An image is in use while any container on the runtime (any state, anyone's) runs it;
//   its last-used time is then "now". An image is first detected when a detection first
//   lists it; images present when the kubelet starts were "detected at an unknown time in
//   the past" (old enough). Both are kept in memory, as upstream's are: a restart forgets
//   them.
// - Never removed: images in use, pinned images (the sandbox image), images younger than
//   imageMinimumGCAge (just pulled, about to be used).
//
// Thread-safe. The kubelet runs detect_images() and garbage_collect() every 5 minutes
// (upstream's image detection loop and ImageGCPeriod).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "events.h"
#include "knode/clock.h"
#include "knode/runtime.h"
#include "knode/status.h"

namespace knode::kubelet {

inline constexpr auto kImageGcPeriod = std::chrono::minutes(5);

inline constexpr char kEventFreeDiskSpaceFailed[] = "FreeDiskSpaceFailed";
inline constexpr char kEventInvalidDiskCapacity[] = "InvalidDiskCapacity";

// KubeletConfiguration's image GC fields, with upstream's defaults.
struct ImageGcPolicy {
  int high_threshold_percent = 85;  // imageGCHighThresholdPercent; 100 disables image GC
  int low_threshold_percent = 80;   // imageGCLowThresholdPercent
  std::chrono::seconds min_age = std::chrono::minutes(2);  // imageMinimumGCAge
  // imageMaximumGCAge: images unused this long are removed whatever the usage; 0 (the
  // default) disables it. Counted only once the kubelet has run this long itself.
  std::chrono::seconds max_age{0};
};
// Upstream's checks: both thresholds in [0, 100], low not above high.
Status validate(const ImageGcPolicy& policy);

// What statfs says of a filesystem.
struct FsCapacity {
  uint64_t capacity_bytes = 0;
  uint64_t available_bytes = 0;  // to unprivileged users (f_bavail), as cadvisor reports
};
using StatFsFn = std::function<Result<FsCapacity>(const std::string& path)>;
// statvfs(2) of `path`.
Result<FsCapacity> statfs_capacity(const std::string& path);

struct ImageGcResult {
  Status status;  // what failed, if anything
  uint64_t freed_bytes = 0;
  std::vector<std::string> removed;  // image IDs, in the order they were removed
  // A node event to record: FreeDiskSpaceFailed when not enough could be freed,
  // InvalidDiskCapacity when the filesystem reports no capacity.
  std::optional<KubeletEvent> event;
};

class ImageGcManager {
 public:
  ImageGcManager(runtime::ContainerRuntime& runtime, const Clock& clock, ImageGcPolicy policy = {},
                 StatFsFn statfs = statfs_capacity);

  // Lists images and containers and updates the records. The first successful detection
  // records every image as detected at an unknown time in the past.
  Status detect_images();

  // Applies the policy (max age first, then the thresholds).
  ImageGcResult garbage_collect();

  // Removes every image the policy lets go, whatever the usage (upstream's
  // DeleteUnusedImages, for the eviction manager).
  ImageGcResult delete_unused_images();

  // What the records say of an image ID, for tests and debugging.
  struct Record {
    std::optional<Clock::SteadyTime> first_detected;  // nullopt: before the kubelet started
    std::optional<Clock::SteadyTime> last_used;       // nullopt: never seen in use
    uint64_t size = 0;
    bool pinned = false;
  };
  std::optional<Record> record(const std::string& image_id) const;

 private:
  struct Candidate {
    std::string id;
    Record record;
  };
  // Detects at `now` and returns the images neither in use nor pinned, least recently
  // used first (ties: first detected first). Called with mu_ held.
  Result<std::vector<Candidate>> eviction_order(Clock::SteadyTime now);
  // Records what the runtime has; `used_ids` gets the IDs of the images in use.
  Status detect_locked(std::optional<Clock::SteadyTime> detect_time, Clock::SteadyTime now,
                       std::set<std::string>& used_ids);
  // Removes candidates (oldest first) until `to_free` bytes are freed; returns those left.
  std::vector<Candidate> free_space(std::vector<Candidate> candidates, uint64_t to_free,
                                    Clock::SteadyTime now, ImageGcResult& result);
  std::vector<Candidate> free_old_images(std::vector<Candidate> candidates, Clock::SteadyTime now,
                                         ImageGcResult& result);
  Status remove(const Candidate& c, ImageGcResult& result);
  Result<FsCapacity> image_fs_capacity();

  runtime::ContainerRuntime& runtime_;
  const Clock& clock_;
  ImageGcPolicy policy_;
  StatFsFn statfs_;
  const Clock::SteadyTime began_;

  mutable std::mutex mu_;
  bool initialized_ = false;
  std::map<std::string, Record> records_;  // by image ID
};

}  // namespace knode::kubelet
