// NFS volumes with the real Mounter (mount(8) and nfs-common's mount.nfs, the kernel's
// NFS client) against a real NFS server. This machine's kernel has no NFS, so the test runs
// in the VM tier (scripts/vm/run.sh, Debian's kernel), after vm_nfs_server.sh has started
// an NFSv4 server in the guest that exports KNODE_NFS_EXPORT_DIR to 127.0.0.1 as
// KNODE_NFS_EXPORT (the path a client mounts). Outside the VM (no such variables) it skips.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "volume/volume_manager.h"
#include "volume_test_support.h"

namespace knode::kubelet {
namespace {

using testing::decode;
using testing::exists;
using testing::FakeLookup;
using testing::read_file;
using testing::TempDir;

constexpr char kUid[] = "77777777-0000-0000-0000-000000000001";

api::Pod pod_with(const std::string& volumes_yaml) {
  return decode<api::Pod>(R"(
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, uid: )" + std::string(kUid) + R"(}
spec:
  containers: [{name: app, image: busybox}]
  volumes:
)" + volumes_yaml);
}

class NfsVmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* dir = std::getenv("KNODE_NFS_EXPORT_DIR");
    const char* exp = std::getenv("KNODE_NFS_EXPORT");
    if (!dir || !exp) GTEST_SKIP() << "not in the VM with an NFS server (KNODE_NFS_EXPORT_DIR, KNODE_NFS_EXPORT)";
    export_dir_ = dir;
    export_ = exp;
  }
  std::string root() const { return tmp_.path() + "/pods"; }
  std::string vol(const std::string& name) const {
    return root() + "/" + kUid + "/volumes/kubernetes.io~nfs/" + name;
  }

  std::string export_dir_, export_;
  TempDir tmp_;
  FakeLookup lookup_;
  volume::LinuxMounter mounter_;
};

TEST_F(NfsVmTest, AnNfsVolumeIsMountedWrittenThroughAndUnmountedWithItsFilesKept) {
  VolumeManager manager(root(), lookup_, mounter_);
  auto pod = pod_with("  - {name: share, nfs: {server: 127.0.0.1, path: " + export_ + "}}\n"
                      "  - {name: ro, nfs: {server: 127.0.0.1, path: " + export_ + ", readOnly: true}}\n");
  auto r = manager.setup(pod);
  ASSERT_TRUE(r.ok()) << r.error();
  auto mounted = mounter_.is_mountpoint(vol("share"));
  ASSERT_TRUE(mounted.ok() && *mounted) << "not a mount point: " << vol("share");
  EXPECT_NE(read_file("/proc/self/mountinfo").find(vol("share")), std::string::npos);

  // Written through the volume, seen in the export (the server's directory), and back.
  { std::ofstream(vol("share") + "/hello.txt") << "from the pod"; }
  EXPECT_EQ(read_file(export_dir_ + "/hello.txt"), "from the pod");
  { std::ofstream(export_dir_ + "/server.txt") << "from the server"; }
  EXPECT_EQ(read_file(vol("ro") + "/server.txt"), "from the server");
  // The read-only volume refuses writes.
  int fd = ::open((vol("ro") + "/nope.txt").c_str(), O_WRONLY | O_CREAT, 0644);
  EXPECT_LT(fd, 0);
  EXPECT_EQ(errno, EROFS);
  if (fd >= 0) ::close(fd);

  // Set up again (a resync, a restarted knode): nothing is mounted twice.
  auto again = manager.setup(pod);
  ASSERT_TRUE(again.ok()) << again.error();
  size_t n = 0;
  const std::string table = read_file("/proc/self/mountinfo");
  for (size_t at = 0; (at = table.find(vol("share") + " ", at)) != std::string::npos; ++at) ++n;
  EXPECT_EQ(n, 1u) << table;

  // A volume still in use (a file open in it) does not unmount: teardown fails and
  // removes nothing, on the node or on the server.
  int busy = ::open((vol("share") + "/hello.txt").c_str(), O_RDONLY);
  ASSERT_GE(busy, 0);
  auto refused = manager.teardown(kUid);
  EXPECT_FALSE(refused.ok());
  EXPECT_EQ(read_file(vol("share") + "/hello.txt"), "from the pod");
  EXPECT_EQ(read_file(export_dir_ + "/hello.txt"), "from the pod");
  ::close(busy);

  // Teardown unmounts, removes the pod's directories, and leaves the server's files alone.
  ASSERT_TRUE(manager.teardown(kUid).ok());
  EXPECT_FALSE(exists(root() + "/" + kUid));
  EXPECT_EQ(read_file(export_dir_ + "/hello.txt"), "from the pod");
  EXPECT_EQ(read_file(export_dir_ + "/server.txt"), "from the server");
}

TEST_F(NfsVmTest, AClaimsNfsVolumeMountsWithThePersistentVolumesOptions) {
  VolumeManager manager(root(), lookup_, mounter_);
  lookup_.claims["shop/media"] = ClaimedVolume{"pv-media", "nfs", export_, "", "127.0.0.1", false, {"vers=4.1"}};
  auto r = manager.setup(pod_with("  - {name: media, persistentVolumeClaim: {claimName: media}}\n"));
  ASSERT_TRUE(r.ok()) << r.error();
  // The kernel's view of the mount: an NFS 4.1 mount of the export.
  std::string line;
  std::istringstream table(read_file("/proc/self/mountinfo"));
  while (std::getline(table, line) && line.find(vol("media")) == std::string::npos) {
  }
  EXPECT_NE(line.find(" - nfs4 127.0.0.1:"), std::string::npos) << line;
  EXPECT_NE(line.find("vers=4.1"), std::string::npos) << line;
  { std::ofstream(vol("media") + "/claim.txt") << "through the claim"; }
  EXPECT_EQ(read_file(export_dir_ + "/claim.txt"), "through the claim");
  ASSERT_TRUE(manager.teardown(kUid).ok());
  EXPECT_EQ(read_file(export_dir_ + "/claim.txt"), "through the claim");
}

TEST_F(NfsVmTest, AnExportTheServerDoesNotHaveIsAClearErrorAndLeavesNothing) {
  VolumeManager manager(root(), lookup_, mounter_);
  auto r = manager.setup(pod_with("  - {name: gone, nfs: {server: 127.0.0.1, path: /no/such/export}}\n"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("spec.volumes[0].nfs: "), std::string::npos) << r.error();
  EXPECT_NE(r.error().find("mount -t nfs 127.0.0.1:/no/such/export"), std::string::npos) << r.error();
  EXPECT_FALSE(exists(vol("gone")));
}

}  // namespace
}  // namespace knode::kubelet
