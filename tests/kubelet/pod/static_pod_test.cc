#include "pod/static_pod.h"

#include <gtest/gtest.h>

#include "knode/api/codec.h"
#include "knode/api/object.h"
#include "kubelet/pod/decode.h"

using namespace knode;
using namespace knode::kubelet;
using knode::kubelet::testing::decode;

namespace {

const char* kManifest = R"(apiVersion: v1
kind: Pod
metadata:
  name: etcd
  labels: {component: etcd}
spec:
  containers:
  - name: etcd
    image: registry.k8s.io/etcd:3.5.15-0
)";

const char* kPath = "/etc/kubernetes/manifests/etcd.yaml";

api::Pod manifest_pod(const std::string& yaml = kManifest) { return decode<api::Pod>(yaml); }

}  // namespace

TEST(Fnv128a, MatchesGoHashFnv) {
  EXPECT_EQ(fnv128a_hex(""), "6c62272e07bb014262b821756295c58d");
  EXPECT_EQ(fnv128a_hex("a"), "d228cb696f1a8caf78912b704e4a8964");
  EXPECT_EQ(fnv128a_hex("abc"), "a68d622cec8b5822836dbc7977af7f3b");
}

TEST(StaticPodUid, HashesThePodThenTheNodeThenTheFile) {
  auto pod = manifest_pod();
  std::string uid = static_pod_uid(pod, "node-1", kPath);
  EXPECT_EQ(uid, fnv128a_hex(api::encode_json(api::Object(pod)) + "host:node-1" + "file:" + kPath));
  EXPECT_EQ(uid.size(), 32u);
}

TEST(StaticPodUid, SameContentSameUidAnyChangeANewOne) {
  std::string uid = static_pod_uid(manifest_pod(), "node-1", kPath);
  EXPECT_EQ(static_pod_uid(manifest_pod(), "node-1", kPath), uid);
  // Formatting is not content.
  std::string reformatted = R"({"apiVersion": "v1", "kind": "Pod",
    "metadata": {"labels": {"component": "etcd"}, "name": "etcd"},
    "spec": {"containers": [{"image": "registry.k8s.io/etcd:3.5.15-0", "name": "etcd"}]}})";
  EXPECT_EQ(static_pod_uid(manifest_pod(reformatted), "node-1", kPath), uid);
  std::string changed = kManifest;
  changed.replace(changed.find("3.5.15-0"), 8, "3.5.16-0");
  EXPECT_NE(static_pod_uid(manifest_pod(changed), "node-1", kPath), uid);
  EXPECT_NE(static_pod_uid(manifest_pod(), "node-2", kPath), uid);
  EXPECT_NE(static_pod_uid(manifest_pod(), "node-1", "/etc/kubernetes/manifests/other.yaml"), uid);
}

TEST(StaticPod, NamedAndAnnotatedForItsNode) {
  auto seen = api::Time::FromUnixNanos(1700000000123456789LL);
  auto pod = make_static_pod(manifest_pod(), "Node-1", kPath, seen);
  EXPECT_EQ(pod.metadata.name, "etcd-node-1");
  EXPECT_EQ(pod.metadata.namespace_, "default");
  EXPECT_EQ(pod.spec.node_name, "Node-1");
  EXPECT_EQ(pod.metadata.uid, static_pod_uid(manifest_pod(), "Node-1", kPath));
  EXPECT_EQ(pod.metadata.annotations.at("kubernetes.io/config.hash"), pod.metadata.uid);
  EXPECT_EQ(pod.metadata.annotations.at("kubernetes.io/config.source"), "file");
  EXPECT_EQ(pod.metadata.annotations.at("kubernetes.io/config.seen"),
            "2023-11-14T22:13:20.123456789Z");
  EXPECT_EQ(pod.status.phase, "Pending");
  ASSERT_EQ(pod.spec.tolerations.size(), 1u);
  EXPECT_EQ(pod.spec.tolerations[0].operator_, "Exists");
  EXPECT_EQ(pod.spec.tolerations[0].effect, "NoExecute");
  EXPECT_TRUE(is_static_pod(pod));
  EXPECT_FALSE(is_mirror_pod(pod));
}

TEST(StaticPod, KeepsAUidAndNamespaceTheManifestSets) {
  auto manifest = manifest_pod();
  manifest.metadata.uid = "fixed-uid";
  manifest.metadata.namespace_ = "kube-system";
  api::Toleration same;
  same.operator_ = "Exists";
  same.effect = "NoExecute";
  same.toleration_seconds = 30;
  manifest.spec.tolerations = {same};
  auto pod = make_static_pod(manifest, "node-1", kPath, api::Time::FromUnixNanos(0));
  EXPECT_EQ(pod.metadata.uid, "fixed-uid");
  EXPECT_EQ(pod.metadata.namespace_, "kube-system");
  // The same toleration is updated, not repeated.
  ASSERT_EQ(pod.spec.tolerations.size(), 1u);
  EXPECT_FALSE(pod.spec.tolerations[0].toleration_seconds);
}

TEST(MirrorPod, CarriesTheHashAndIsOwnedByTheNode) {
  auto pod = make_static_pod(manifest_pod(), "node-1", kPath, api::Time::FromUnixNanos(0));
  auto mirror = make_mirror_pod(pod, "node-1", "node-uid-7");
  EXPECT_EQ(mirror.metadata.name, "etcd-node-1");
  EXPECT_EQ(mirror.metadata.annotations.at("kubernetes.io/config.mirror"), pod.metadata.uid);
  ASSERT_EQ(mirror.metadata.owner_references.size(), 1u);
  const auto& owner = mirror.metadata.owner_references[0];
  EXPECT_EQ(owner.kind, "Node");
  EXPECT_EQ(owner.api_version, "v1");
  EXPECT_EQ(owner.name, "node-1");
  EXPECT_EQ(owner.uid, "node-uid-7");
  EXPECT_EQ(owner.controller, true);
  EXPECT_TRUE(is_mirror_pod(mirror));
}
