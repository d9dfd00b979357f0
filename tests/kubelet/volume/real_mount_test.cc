// The volume manager with the real Mounter (mount(2), umount2(2), statx(2)), as root in a
// private mount namespace this test process creates, so nothing it mounts is seen outside
// and nothing outlives it. Without root it skips with the reason.
#include <linux/magic.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "volume/volume_manager.h"
#include "volume_test_support.h"

namespace knode::kubelet {
namespace {

using testing::decode;
using testing::exists;
using testing::FakeLookup;
using testing::read_file;
using testing::TempDir;

constexpr char kUid[] = "99999999-0000-0000-0000-000000000001";

// Mount points below `prefix`, from this process's mount table.
std::vector<std::string> mounts_below(const std::string& prefix) {
  std::vector<std::string> out;
  std::istringstream in(read_file("/proc/self/mountinfo"));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, point;
    fields >> id >> parent >> dev >> root >> point;
    if (point.rfind(prefix, 0) == 0) out.push_back(point);
  }
  return out;
}

class RealMountTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) {
      skip_ = "needs root to mount";
    } else if (::unshare(CLONE_NEWNS) != 0) {
      skip_ = std::string("unshare(CLONE_NEWNS): ") + std::strerror(errno);
    } else if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      skip_ = std::string("make / rprivate: ") + std::strerror(errno);
    }
  }
  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    manager_.emplace(tmp_.path() + "/pods", lookup_, mounter_);
  }
  void TearDown() override {
    if (skip_.empty()) {
      Status s = manager_->teardown(kUid);
      EXPECT_TRUE(s.ok()) << s.message();
      EXPECT_TRUE(mounts_below(tmp_.path()).empty()) << "a mount was left behind";
    }
  }

  api::Pod pod(const std::string& volumes, const std::string& mounts = "") {
    return decode<api::Pod>(R"(
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, uid: )" +
                            std::string(kUid) + R"(}
spec:
  containers:
  - name: app
    image: busybox
    volumeMounts:
)" + (mounts.empty() ? "    - {name: v, mountPath: /v}\n" : mounts) +
                            R"(
  volumes:
)" + volumes);
  }
  std::string vol(const std::string& plugin, const std::string& name) const {
    return tmp_.path() + "/pods/" + kUid + "/volumes/kubernetes.io~" + plugin + "/" + name;
  }

  static std::string skip_;
  TempDir tmp_;
  FakeLookup lookup_;
  volume::LinuxMounter mounter_;
  std::optional<VolumeManager> manager_;
};

std::string RealMountTest::skip_;

TEST_F(RealMountTest, MemoryEmptyDirIsATmpfsOfTheGivenSize) {
  auto r = manager_->setup(pod("  - {name: v, emptyDir: {medium: Memory, sizeLimit: 64Mi}}\n"));
  ASSERT_TRUE(r.ok()) << r.error();
  std::string dir = vol("empty-dir", "v");
  struct statfs fs {};
  ASSERT_EQ(::statfs(dir.c_str(), &fs), 0);
  EXPECT_EQ(fs.f_type, TMPFS_MAGIC);
  EXPECT_EQ(static_cast<int64_t>(fs.f_blocks) * fs.f_bsize, int64_t{64} << 20);
  auto mounted = mounter_.is_mountpoint(dir);
  ASSERT_TRUE(mounted.ok()) << mounted.error();
  EXPECT_TRUE(*mounted);

  ASSERT_TRUE(
      manager_->setup(pod("  - {name: v, emptyDir: {medium: Memory, sizeLimit: 64Mi}}\n")).ok());
  EXPECT_EQ(mounts_below(dir).size(), 1u) << "a second setup does not stack another tmpfs";

  Status s = manager_->teardown(kUid);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_TRUE(mounts_below(tmp_.path()).empty());
  EXPECT_FALSE(exists(dir));
}

TEST_F(RealMountTest, SecretLivesOnATmpfs) {
  lookup_.add_secret(
      "{apiVersion: v1, kind: Secret, metadata: {name: s, namespace: shop}, stringData: {k: "
      "hush}}");
  ASSERT_TRUE(manager_->setup(pod("  - {name: v, secret: {secretName: s}}\n")).ok());
  std::string dir = vol("secret", "v");
  struct statfs fs {};
  ASSERT_EQ(::statfs((dir + "/k").c_str(), &fs), 0);
  EXPECT_EQ(fs.f_type, TMPFS_MAGIC);
  EXPECT_EQ(read_file(dir + "/k"), "hush");
}

TEST_F(RealMountTest, SubPathIsABindOfTheCheckedDirectory) {
  auto p =
      pod("  - {name: v, emptyDir: {}}\n", "    - {name: v, mountPath: /x, subPath: sub/dir}\n");
  auto volumes = manager_->setup(p);
  ASSERT_TRUE(volumes.ok()) << volumes.error();
  auto r = manager_->mounts_for(p, p.spec.containers[0], *volumes, {});
  ASSERT_TRUE(r.ok()) << r.error();
  std::string target = (*r)[0].host_path;
  testing::write_file(vol("empty-dir", "v") + "/sub/dir/file", "through the bind");
  EXPECT_EQ(read_file(target + "/file"), "through the bind");
  EXPECT_EQ(mounts_below(target).size(), 1u);

  // The container swaps its directory for a symlink out of the volume: the bind still holds
  // the directory that was checked, and asking again is refused.
  std::string outside = tmp_.path() + "/outside";
  ASSERT_EQ(::mkdir(outside.c_str(), 0755), 0);
  ASSERT_EQ(::rename((vol("empty-dir", "v") + "/sub/dir").c_str(),
                     (vol("empty-dir", "v") + "/sub/old").c_str()),
            0);
  ASSERT_EQ(::symlink(outside.c_str(), (vol("empty-dir", "v") + "/sub/dir").c_str()), 0);
  EXPECT_EQ(read_file(target + "/file"), "through the bind");
  auto again = manager_->mounts_for(p, p.spec.containers[0], *volumes, {});
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().find("resolves outside of volume"), std::string::npos) << again.error();
}

}  // namespace
}  // namespace knode::kubelet
