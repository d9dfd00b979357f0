// VolumeManager::mounts_for: a container's volumeMounts as runtime mounts, subPath and
// subPathExpr included.
#include <sys/stat.h>
#include <unistd.h>

#include "volume/volume_manager.h"
#include "volume_test_support.h"

namespace knode::kubelet {
namespace {

using testing::decode;
using testing::exists;
using testing::FakeLookup;
using testing::FakeMounter;
using testing::mode_of;
using testing::TempDir;

constexpr char kUid[] = "11111111-2222-3333-4444-555555555555";

api::Pod pod_with_mounts(const std::string& mounts_yaml, const std::string& container_extra = "",
                         const std::string& extra_volumes = "") {
  return decode<api::Pod>(R"(
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, uid: )" +
                          std::string(kUid) + R"(}
spec:
  containers:
  - name: app
    image: busybox
)" + container_extra + R"(
    volumeMounts:
)" + mounts_yaml + R"(
  volumes:
  - {name: scratch, emptyDir: {}}
  - {name: config, configMap: {name: app}}
)" + extra_volumes);
}

class MountsTest : public ::testing::Test {
 protected:
  MountsTest() : manager_(tmp_.path() + "/pods", lookup_, mounter_) {
    lookup_.add_config_map(
        "{apiVersion: v1, kind: ConfigMap, metadata: {name: app, namespace: shop}, data: "
        "{app.conf: x=1}}");
  }

  // Sets the pod's volumes up, then asks for the first container's mounts.
  Result<std::vector<runtime::Mount>> mounts(const api::Pod& pod, const EnvMap& env = {}) {
    auto volumes = manager_.setup(pod);
    if (!volumes.ok()) return volumes.status();
    volumes_ = *volumes;
    return manager_.mounts_for(pod, pod.spec.containers[0], volumes_, env);
  }
  std::string scratch() const { return volumes_.by_name.at("scratch").host_path; }
  std::string subpath_target(const std::string& volume, size_t index) const {
    return tmp_.path() + "/pods/" + kUid + "/volume-subpaths/" + volume + "/app/" +
           std::to_string(index);
  }

  TempDir tmp_;
  FakeLookup lookup_;
  FakeMounter mounter_;
  VolumeManager manager_;
  PodVolumes volumes_;
};

TEST_F(MountsTest, MountsCarryPathsReadOnlyAndPropagation) {
  auto r = mounts(pod_with_mounts(R"(    - {name: scratch, mountPath: /data}
    - {name: scratch, mountPath: /ro, readOnly: true, mountPropagation: HostToContainer}
    - {name: config, mountPath: /etc/app}
)"));
  ASSERT_TRUE(r.ok()) << r.error();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].container_path, "/data");
  EXPECT_EQ((*r)[0].host_path, scratch());
  EXPECT_FALSE((*r)[0].readonly);
  EXPECT_EQ((*r)[0].propagation, runtime::MountPropagation::kPrivate);
  EXPECT_TRUE((*r)[1].readonly);
  EXPECT_EQ((*r)[1].propagation, runtime::MountPropagation::kHostToContainer);
  EXPECT_EQ((*r)[2].host_path, volumes_.by_name.at("config").host_path);
  EXPECT_TRUE((*r)[2].readonly) << "configMap volumes are always read-only";
}

// An image volume has no directory on the host: its mounts name the image (the pod worker
// swaps in what the pull returned) and a subPath inside it, always read-only; a subPath
// leaving the image is refused as any other.
TEST_F(MountsTest, ImageVolumeMountsNameTheImageAndItsSubPathReadOnly) {
  auto pod = pod_with_mounts(R"(    - {name: kitten, mountPath: /volume}
    - {name: kitten, mountPath: /etc/os, subPath: etc, readOnly: false}
    - {name: kitten, mountPath: /data, subPathExpr: $(DIR)}
)", "", "  - {name: kitten, image: {reference: registry.example/kitten:1.8, pullPolicy: Always}}\n");
  auto r = mounts(pod, {{"DIR", "html"}});
  ASSERT_TRUE(r.ok()) << r.error();
  ASSERT_EQ(r->size(), 3u);
  for (const auto& m : *r) {
    EXPECT_EQ(m.image.image, "registry.example/kitten:1.8");
    EXPECT_TRUE(m.host_path.empty());
    EXPECT_TRUE(m.readonly);
  }
  EXPECT_EQ((*r)[0].image_sub_path, "");
  EXPECT_EQ((*r)[1].image_sub_path, "etc");
  EXPECT_EQ((*r)[2].image_sub_path, "html");
  EXPECT_EQ(volumes_.by_name.at("kitten").plugin, "kubernetes.io/image");
  EXPECT_EQ(volumes_.by_name.at("kitten").image_pull_policy, "Always");
  EXPECT_FALSE(exists(tmp_.path() + "/pods/" + kUid + "/volumes/kubernetes.io~image"));
  EXPECT_FALSE(exists(tmp_.path() + "/pods/" + kUid + "/volume-subpaths/kitten"));

  pod.spec.containers[0].volume_mounts = {api::VolumeMount{.name = "kitten", .mount_path = "/x", .sub_path = "../etc"}};
  r = mounts(pod);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("must not contain '..'"), std::string::npos) << r.error();
}

TEST_F(MountsTest, BidirectionalNeedsAPrivilegedContainer) {
  auto r = mounts(
      pod_with_mounts("    - {name: scratch, mountPath: /d, mountPropagation: Bidirectional}\n"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(),
            "pod shop/web container \"app\" volumeMounts[0].mountPropagation: Bidirectional mount "
            "propagation is available only to privileged containers");
  r = mounts(
      pod_with_mounts("    - {name: scratch, mountPath: /d, mountPropagation: Bidirectional}\n",
                      "    securityContext: {privileged: true}\n"));
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ((*r)[0].propagation, runtime::MountPropagation::kBidirectional);
  r = mounts(pod_with_mounts("    - {name: scratch, mountPath: /d, mountPropagation: Sideways}\n"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(
      r.error(),
      "pod shop/web container \"app\" volumeMounts[0].mountPropagation: invalid MountPropagation "
      "mode: \"Sideways\"");
}

TEST_F(MountsTest, UnknownVolumeIsNamed) {
  auto pod = pod_with_mounts("    - {name: scratch, mountPath: /d}\n");
  ASSERT_TRUE(manager_.setup(pod).ok());
  pod.spec.containers[0].volume_mounts[0].name = "ghost";
  auto volumes = manager_.setup(pod);
  ASSERT_TRUE(volumes.ok());
  auto r = manager_.mounts_for(pod, pod.spec.containers[0], *volumes, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(
      r.error(),
      "pod shop/web container \"app\" volumeMounts[0]: cannot find volume \"ghost\" to mount into "
      "container \"app\"");
}

TEST_F(MountsTest, SubPathIsCreatedAndBindMounted) {
  auto r =
      mounts(pod_with_mounts("    - {name: scratch, mountPath: /cache, subPath: cache/app}\n"));
  ASSERT_TRUE(r.ok()) << r.error();
  std::string target = subpath_target("scratch", 0);
  EXPECT_EQ((*r)[0].host_path, target);
  EXPECT_EQ(mode_of(scratch() + "/cache/app"), 0777) << "created with the volume's mode";
  EXPECT_EQ(mode_of(scratch() + "/cache"), 0777);
  ASSERT_EQ(mounter_.binds.count(target), 1u);
  EXPECT_EQ(mounter_.binds.at(target), scratch() + "/cache/app");
  struct stat st {};
  ASSERT_EQ(::lstat(target.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode)) << "a directory is mounted on a directory";
}

TEST_F(MountsTest, SubPathOfAHostPathVolumeNeedsNoPodDirectoryYet) {
  std::string host = tmp_.path() + "/host";
  ASSERT_EQ(::mkdir(host.c_str(), 0750), 0);
  auto pod = decode<api::Pod>(R"(
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, uid: )" +
                              std::string(kUid) + R"(}
spec:
  containers:
  - name: app
    image: busybox
    volumeMounts: [{name: h, mountPath: /logs, subPath: logs}]
  volumes: [{name: h, hostPath: {path: )" +
                              host + R"(}}]
)");
  auto volumes = manager_.setup(pod);
  ASSERT_TRUE(volumes.ok()) << volumes.error();
  ASSERT_FALSE(exists(tmp_.path() + "/pods/" + kUid));
  auto r = manager_.mounts_for(pod, pod.spec.containers[0], *volumes, {});
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(mounter_.binds.at(subpath_target("h", 0)), host + "/logs");
  EXPECT_EQ(mode_of(host + "/logs"), 0750) << "created with the volume's mode";
}

TEST_F(MountsTest, SubPathOfAnExistingFileMountsThatFile) {
  auto pod = pod_with_mounts("    - {name: scratch, mountPath: /etc/motd, subPath: motd}\n");
  ASSERT_TRUE(manager_.setup(pod).ok());
  testing::write_file(
      tmp_.path() + "/pods/" + kUid + "/volumes/kubernetes.io~empty-dir/scratch/motd", "hello");
  auto r = mounts(pod);
  ASSERT_TRUE(r.ok()) << r.error();
  std::string target = subpath_target("scratch", 0);
  EXPECT_EQ(mounter_.binds.at(target), scratch() + "/motd");
  struct stat st {};
  ASSERT_EQ(::lstat(target.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode)) << "a file is mounted on an empty file";
}

TEST_F(MountsTest, SubPathOfAConfigMapKeyResolvesItsLinksInsideTheVolume) {
  auto r = mounts(
      pod_with_mounts("    - {name: config, mountPath: /etc/app.conf, subPath: app.conf}\n"));
  ASSERT_TRUE(r.ok()) << r.error();
  std::string config = volumes_.by_name.at("config").host_path;
  std::string data = testing::link_target(config + "/..data");
  EXPECT_EQ(mounter_.binds.at(subpath_target("config", 0)), config + "/" + data + "/app.conf");
  EXPECT_TRUE((*r)[0].readonly);
}

TEST_F(MountsTest, SubPathExprExpandsTheContainerEnvironment) {
  auto pod = pod_with_mounts(
      "    - {name: scratch, mountPath: /logs, subPathExpr: \"logs/$(POD_NAME)\"}\n");
  auto r = mounts(pod, {{"POD_NAME", "web-0"}});
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(mounter_.binds.at(subpath_target("scratch", 0)), scratch() + "/logs/web-0");

  r = mounts(pod, {{"OTHER", "x"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(
      r.error(),
      "pod shop/web container \"app\" volumeMounts[0].subPathExpr: missing value for POD_NAME");
}

TEST_F(MountsTest, SubPathMayNotEscapeLexically) {
  auto r = mounts(pod_with_mounts("    - {name: scratch, mountPath: /x, subPath: a/../../etc}\n"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(),
            "pod shop/web container \"app\" volumeMounts[0].subPath: unable to provision SubPath "
            "`a/../../etc`: must not contain '..'");
  r = mounts(pod_with_mounts("    - {name: scratch, mountPath: /x, subPath: /etc}\n"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(
      r.error(),
      "pod shop/web container \"app\" volumeMounts[0].subPath: error SubPath `/etc` must not be "
      "an absolute path");
  r = mounts(pod_with_mounts("    - {name: scratch, mountPath: /x, subPathExpr: \"$(D)/x\"}\n"),
             {{"D", ".."}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(
      r.error(),
      "pod shop/web container \"app\" volumeMounts[0].subPathExpr: unable to provision SubPath "
      "`../x`: must not contain '..'");
  EXPECT_TRUE(mounter_.binds.empty());
}

TEST_F(MountsTest, SubPathMayNotEscapeThroughSymlinks) {
  std::string outside = tmp_.path() + "/host-secret";
  ASSERT_EQ(::mkdir(outside.c_str(), 0700), 0);
  auto pod = pod_with_mounts("    - {name: scratch, mountPath: /x, subPath: link}\n");
  ASSERT_TRUE(manager_.setup(pod).ok());
  std::string dir = tmp_.path() + "/pods/" + kUid + "/volumes/kubernetes.io~empty-dir/scratch";
  // What a container could plant: absolute, relative and chained links out of its volume.
  for (const auto& [name, target] :
       std::vector<std::pair<std::string, std::string>>{{"link", outside},
                                                        {"up", "../../../../.."},
                                                        {"hop", "up"},
                                                        {"dangling", "/nonexistent/dir"}}) {
    ASSERT_EQ(::symlink(target.c_str(), (dir + "/" + name).c_str()), 0);
  }
  for (std::string sub : {"link", "up/host-secret", "hop", "dangling", "dangling/new"}) {
    auto p = pod_with_mounts("    - {name: scratch, mountPath: /x, subPath: \"" + sub + "\"}\n");
    auto r = mounts(p);
    ASSERT_FALSE(r.ok()) << sub;
    EXPECT_NE(r.error().find("failed to "), std::string::npos) << r.error();
    EXPECT_NE(r.error().find("for volumeMount \"scratch\" of container \"app\""), std::string::npos)
        << r.error();
  }
  EXPECT_TRUE(mounter_.binds.empty());
  EXPECT_FALSE(exists("/nonexistent/dir"));
  EXPECT_FALSE(exists(outside + "/new"));
}

TEST_F(MountsTest, SubPathThroughALinkInsideTheVolumeIsFine) {
  auto pod = pod_with_mounts("    - {name: scratch, mountPath: /x, subPath: alias/inner}\n");
  ASSERT_TRUE(manager_.setup(pod).ok());
  std::string dir = tmp_.path() + "/pods/" + kUid + "/volumes/kubernetes.io~empty-dir/scratch";
  ASSERT_EQ(::mkdir((dir + "/real").c_str(), 0755), 0);
  ASSERT_EQ(::symlink("real", (dir + "/alias").c_str()), 0);
  auto r = mounts(pod);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(mounter_.binds.at(subpath_target("scratch", 0)), dir + "/real/inner");
}

TEST_F(MountsTest, SubPathSurvivesRepeatedCallsAndTeardownUnmountsIt) {
  auto pod = pod_with_mounts(
      "    - {name: scratch, mountPath: /a, subPath: a}\n    - {name: config, mountPath: /b, "
      "subPath: app.conf}\n");
  ASSERT_TRUE(mounts(pod).ok());
  auto again = mounts(pod);  // the container restarts
  ASSERT_TRUE(again.ok()) << again.error();
  EXPECT_EQ(mounter_.binds.size(), 2u);
  EXPECT_EQ(mounter_.binds.at(subpath_target("scratch", 0)), scratch() + "/a");

  Status s = manager_.teardown(kUid);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_TRUE(mounter_.binds.empty());
  EXPECT_FALSE(exists(tmp_.path() + "/pods/" + kUid));
}

}  // namespace
}  // namespace knode::kubelet
