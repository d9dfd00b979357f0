// Image garbage collection against the fake runtime and an injected statfs: thresholds,
// least recently used order, the in-use, pinned and minimum-age protections, events.
#include "gc/image_gc.h"

#include <gtest/gtest.h>

#include <cerrno>

#include "fakes/fake_clock.h"
#include "fakes/fake_runtime.h"

using namespace knode::kubelet;
using knode::Result;
using knode::Status;
using knode::testing::FakeClock;
using knode::testing::FakeRuntime;
namespace rt = knode::runtime;
using namespace std::chrono_literals;

namespace {

constexpr const char* kA = "registry.local/a:1";
constexpr const char* kB = "registry.local/b:1";
constexpr const char* kC = "registry.local/c:1";
constexpr const char* kPause = "registry.local/pause:3.10";
constexpr const char* kMount = "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs";

class ImageGcTest : public ::testing::Test {
 protected:
  ImageGcTest() : rt_(clock_) {
    for (const char* ref : {kA, kB, kC}) rt_.add_image(ref, /*present=*/true, 60);
    rt_.add_image(kPause, /*present=*/true, 60);
    rt_.set_image_pinned(kPause, true);
    // CRI's ImageFsInfo carries no capacity: statfs of the mountpoint answers.
    rt_.set_image_fs({{kMount, 500, 0}});
  }

  StatFsFn statfs() {
    return [this](const std::string& path) -> Result<FsCapacity> {
      statfs_paths_.push_back(path);
      if (!statfs_error_.ok()) return statfs_error_;
      return fs_;
    };
  }
  ImageGcManager manager(ImageGcPolicy policy = {}) {
    return ImageGcManager(rt_, clock_, policy, statfs());
  }
  // 90% used: 100 bytes must go to get back to 80%.
  void usage_90_percent() { fs_ = {1000, 100}; }

  // A container of the kubelet's (any state counts as using its image).
  std::string run_container(const std::string& image, bool running = true) {
    rt::PodSandboxConfig sb;
    sb.metadata = {"pod-" + std::to_string(++pods_), "uid-" + std::to_string(pods_), "default", 0};
    auto sandbox = rt_.run_pod_sandbox(sb);
    EXPECT_TRUE(sandbox.ok()) << sandbox.error();
    rt::ContainerConfig c;
    c.metadata = {"app", 0};
    c.image.image = image;
    auto id = rt_.create_container(*sandbox, c, sb);
    EXPECT_TRUE(id.ok()) << id.error();
    if (running) {
      EXPECT_TRUE(rt_.start_container(*id).ok());
    }
    return *id;
  }
  void remove_container(const std::string& id) {
    EXPECT_TRUE(rt_.stop_container(id, 0).ok());
    EXPECT_TRUE(rt_.remove_container(id).ok());
  }
  std::string id(const char* ref) { return rt_.image_id(ref); }

  FakeClock clock_;
  FakeRuntime rt_;
  FsCapacity fs_{1000, 500};
  Status statfs_error_;
  std::vector<std::string> statfs_paths_;
  int pods_ = 0;
};

}  // namespace

TEST_F(ImageGcTest, BelowTheHighThresholdNothingIsRemoved) {
  fs_ = {1000, 160};  // 84% used
  ImageGcManager gc = manager();
  ImageGcResult r = gc.garbage_collect();
  EXPECT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_TRUE(r.removed.empty());
  EXPECT_FALSE(r.event);
  EXPECT_EQ(rt_.count("RemoveImage"), 0);
  EXPECT_EQ(statfs_paths_, (std::vector<std::string>{kMount}));
}

TEST_F(ImageGcTest, AtTheHighThresholdLeastRecentlyUsedGoFirstUntilTheLowThreshold) {
  fs_ = {1000, 150};  // 85% used: 50 bytes to free
  ImageGcManager gc = manager();
  ASSERT_TRUE(gc.detect_images().ok());
  // c is used at +1m, then b at +2m; a is never used.
  clock_.advance(1min);
  std::string used_c = run_container(kC);
  ASSERT_TRUE(gc.detect_images().ok());
  remove_container(used_c);
  clock_.advance(1min);
  std::string used_b = run_container(kB);
  ASSERT_TRUE(gc.detect_images().ok());
  remove_container(used_b);
  clock_.advance(1min);

  ImageGcResult r = gc.garbage_collect();
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(r.removed, (std::vector<std::string>{id(kA)}));
  EXPECT_EQ(r.freed_bytes, 60u);

  usage_90_percent();                       // 100 bytes: the next two in order
  rt_.add_image(kA, /*present=*/true, 60);  // pulled again
  ASSERT_TRUE(gc.detect_images().ok());
  clock_.advance(5min);
  r = gc.garbage_collect();
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  // a is back and unused since; c was used before b.
  EXPECT_EQ(r.removed, (std::vector<std::string>{id(kA), id(kC)}));
  EXPECT_TRUE(rt_.image_present(kB));
}

TEST_F(ImageGcTest, ImagesInUseAndPinnedImagesAreNeverRemoved) {
  usage_90_percent();
  run_container(kA);                     // running
  run_container(kB, /*running=*/false);  // created, not running: still uses b
  ImageGcManager gc = manager();
  ImageGcResult r = gc.garbage_collect();
  // Only c may go, and it is not enough.
  EXPECT_EQ(r.removed, (std::vector<std::string>{id(kC)}));
  EXPECT_TRUE(rt_.image_present(kA));
  EXPECT_TRUE(rt_.image_present(kB));
  EXPECT_TRUE(rt_.image_present(kPause));
  const std::string msg =
      "Failed to garbage collect required amount of images. Attempted to free 100 bytes, but "
      "only found 60 bytes eligible to free.";
  ASSERT_TRUE(r.event);
  EXPECT_EQ(*r.event, (KubeletEvent{kEventWarning, kEventFreeDiskSpaceFailed, msg}));
  EXPECT_FALSE(r.status.ok());
  EXPECT_EQ(r.status.message(), msg);
}

TEST_F(ImageGcTest, ImagesYoungerThanTheMinimumAgeStay) {
  usage_90_percent();
  ImageGcManager gc = manager();
  ASSERT_TRUE(gc.detect_images().ok());  // a, b, c, pause: there before the kubelet
  constexpr const char* kNew = "registry.local/new:1";
  rt_.add_image(kNew, /*present=*/true, 500);  // pulled after the kubelet started
  ASSERT_TRUE(gc.detect_images().ok());
  ASSERT_TRUE(gc.record(id(kNew)));
  EXPECT_EQ(gc.record(id(kNew))->first_detected, clock_.steady_now());
  EXPECT_FALSE(gc.record(id(kA))->first_detected);  // unknown: before the kubelet

  clock_.advance(2min - 1s);
  ImageGcResult r = gc.garbage_collect();
  EXPECT_EQ(r.removed, (std::vector<std::string>{id(kA), id(kB)}));
  EXPECT_TRUE(rt_.image_present(kNew));

  rt_.add_image(kA, /*present=*/true, 60);
  rt_.add_image(kB, /*present=*/true, 60);
  clock_.advance(1s);
  r = gc.garbage_collect();
  // a and b came back after the kubelet started: they are young now. new is 2 min old.
  EXPECT_EQ(r.removed, (std::vector<std::string>{id(kC), id(kNew)}));
}

TEST_F(ImageGcTest, TracksFirstDetectedAndLastUsed) {
  ImageGcManager gc = manager();
  ASSERT_TRUE(gc.detect_images().ok());
  auto rec = gc.record(id(kA));
  ASSERT_TRUE(rec);
  EXPECT_FALSE(rec->first_detected);
  EXPECT_FALSE(rec->last_used);
  EXPECT_EQ(rec->size, 60u);
  EXPECT_TRUE(gc.record(id(kPause))->pinned);

  clock_.advance(30s);
  std::string c = run_container(kA);
  ASSERT_TRUE(gc.detect_images().ok());
  EXPECT_EQ(gc.record(id(kA))->last_used, clock_.steady_now());
  const auto used_at = clock_.steady_now();
  remove_container(c);
  clock_.advance(30s);
  ASSERT_TRUE(gc.detect_images().ok());
  EXPECT_EQ(gc.record(id(kA))->last_used, used_at);  // last seen in use then

  // An image that left the node leaves the records.
  ASSERT_TRUE(rt_.remove_image({kC, {}}).ok());
  ASSERT_TRUE(gc.detect_images().ok());
  EXPECT_FALSE(gc.record(id(kC)));
}

TEST_F(ImageGcTest, ARuntimeReportedCapacityIsUsedAsIs) {
  rt_.set_image_fs({{kMount, 900, 1000}});  // 90% used, by the runtime's count
  ImageGcManager gc = manager();
  ImageGcResult r = gc.garbage_collect();
  EXPECT_TRUE(statfs_paths_.empty());
  EXPECT_EQ(r.removed.size(), 2u);  // 100 bytes: two 60-byte images
  EXPECT_TRUE(r.status.ok()) << r.status.message();
}

TEST_F(ImageGcTest, NoCapacityIsAnInvalidDiskCapacityEvent) {
  fs_ = {0, 0};
  ImageGcManager gc = manager();
  ImageGcResult r = gc.garbage_collect();
  ASSERT_TRUE(r.event);
  EXPECT_EQ(*r.event, (KubeletEvent{kEventWarning, kEventInvalidDiskCapacity,
                                    "invalid capacity 0 on image filesystem"}));
  EXPECT_FALSE(r.status.ok());
  EXPECT_EQ(rt_.count("RemoveImage"), 0);
}

TEST_F(ImageGcTest, StatfsAndRuntimeFailuresAreReported) {
  statfs_error_ = Status::Error("statfs /x: No such file or directory", ENOENT);
  ImageGcManager gc = manager();
  ImageGcResult r = gc.garbage_collect();
  EXPECT_FALSE(r.status.ok());
  EXPECT_NE(r.status.message().find("statfs /x"), std::string::npos) << r.status.message();

  rt_.fail_next("ListImages", Status::Error("CRI ListImages: Unavailable", ECONNREFUSED));
  r = gc.garbage_collect();
  EXPECT_NE(r.status.message().find("CRI ListImages"), std::string::npos) << r.status.message();
}

TEST_F(ImageGcTest, AFailedRemovalIsReportedAndTheImageKept) {
  usage_90_percent();
  rt_.fail_next("RemoveImage", Status::Error("CRI RemoveImage: Unknown: image is in use", EIO));
  ImageGcManager gc = manager();
  ImageGcResult r = gc.garbage_collect();
  EXPECT_FALSE(r.status.ok());
  EXPECT_EQ(r.status.message().rfind("wanted to free 100 bytes, but freed 120 bytes space with "
                                     "errors in image deletion: CRI RemoveImage",
                                     0),
            0u)
      << r.status.message();
  EXPECT_TRUE(rt_.image_present(kA));
  EXPECT_TRUE(gc.record(id(kA)));
  EXPECT_FALSE(r.event);
}

TEST_F(ImageGcTest, HighThreshold100DisablesImageGc) {
  fs_ = {1000, 0};
  ImageGcPolicy policy;
  policy.high_threshold_percent = 100;
  ImageGcManager gc = manager(policy);
  ImageGcResult r = gc.garbage_collect();
  EXPECT_TRUE(r.status.ok());
  EXPECT_TRUE(rt_.calls().empty());
}

TEST_F(ImageGcTest, MaxAgeRemovesLongUnusedImagesWhateverTheUsage) {
  ImageGcPolicy policy;
  policy.max_age = 10min;
  ImageGcManager gc = manager(policy);  // 50% used
  std::string c = run_container(kA);
  ASSERT_TRUE(gc.detect_images().ok());
  remove_container(c);
  clock_.advance(10min);
  // The kubelet has not run longer than max age yet.
  EXPECT_TRUE(gc.garbage_collect().removed.empty());
  clock_.advance(1s);
  ImageGcResult r = gc.garbage_collect();
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  // b and c were never used and are from before the kubelet; a was used 10m1s ago.
  EXPECT_EQ(r.removed, (std::vector<std::string>{id(kB), id(kC), id(kA)}));
  EXPECT_TRUE(rt_.image_present(kPause));
}

TEST_F(ImageGcTest, DeleteUnusedImagesTakesAllItMay) {
  run_container(kA);
  ImageGcManager gc = manager();
  ImageGcResult r = gc.delete_unused_images();
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(r.removed, (std::vector<std::string>{id(kB), id(kC)}));
  EXPECT_EQ(r.freed_bytes, 120u);
}

TEST(ImageGcPolicy, DefaultsAndValidation) {
  ImageGcPolicy p;
  EXPECT_EQ(p.high_threshold_percent, 85);
  EXPECT_EQ(p.low_threshold_percent, 80);
  EXPECT_EQ(p.min_age, 2min);
  EXPECT_TRUE(validate(p).ok());
  p.high_threshold_percent = 101;
  EXPECT_EQ(validate(p).message(), "invalid HighThresholdPercent 101, must be in range [0-100]");
  p.high_threshold_percent = 70;
  EXPECT_EQ(validate(p).message(),
            "LowThresholdPercent 80 can not be higher than HighThresholdPercent 70");
}

TEST(ImageGcStatfs, ReadsARealFilesystem) {
  auto fs = statfs_capacity("/");
  ASSERT_TRUE(fs.ok()) << fs.error();
  EXPECT_GT(fs->capacity_bytes, 0u);
  EXPECT_LE(fs->available_bytes, fs->capacity_bytes);
  EXPECT_FALSE(statfs_capacity("/no/such/dir").ok());
}
