#include "volume/volume_manager.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "volume_test_support.h"

namespace knode::kubelet {
namespace {

using testing::decode;
using testing::entries;
using testing::exists;
using testing::FakeLookup;
using testing::FakeMounter;
using testing::is_symlink;
using testing::link_target;
using testing::mode_of;
using testing::read_file;
using testing::TempDir;

constexpr char kUid[] = "0f1e2d3c-aaaa-bbbb-cccc-000000000001";

// Modes are written in decimal (256 is 0400): knode's decoder reads YAML 1.2, where 0400 is
// the decimal 400, while kubectl's YAML 1.1 reads it as octal.
api::Pod pod_with(const std::string& volumes_yaml, const std::string& extra_spec = "") {
  return decode<api::Pod>(R"(
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: shop
  uid: )" + std::string(kUid) +
                          R"(
  labels: {app: web, tier: front}
  annotations: {note: "say \"hi\""}
spec:
)" + extra_spec + R"(
  containers:
  - name: app
    image: busybox
    resources:
      limits: {memory: 256Mi, cpu: 500m}
  volumes:
)" + volumes_yaml);
}

class VolumeManagerTest : public ::testing::Test {
 protected:
  VolumeManagerTest() : manager_(root(), lookup_, mounter_) {}

  std::string root() const { return tmp_.path() + "/pods"; }
  std::string vol(const std::string& plugin, const std::string& name) const {
    return root() + "/" + kUid + "/volumes/kubernetes.io~" + plugin + "/" + name;
  }

  TempDir tmp_;
  FakeLookup lookup_;
  FakeMounter mounter_;
  VolumeManager manager_;
};

// ---- emptyDir ----

TEST_F(VolumeManagerTest, EmptyDirIsADirectoryInUpstreamsLayout) {
  auto r = manager_.setup(pod_with("  - {name: scratch, emptyDir: {}}\n"));
  ASSERT_TRUE(r.ok()) << r.error();
  std::string dir = vol("empty-dir", "scratch");
  EXPECT_EQ(mode_of(dir), 0777);
  EXPECT_EQ(mode_of(root() + "/" + kUid), 0750);
  EXPECT_TRUE(mounter_.calls.empty()) << "a disk emptyDir mounts nothing";
  EXPECT_EQ(r->pod_uid, kUid);
  ASSERT_EQ(r->by_name.count("scratch"), 1u);
  const PodVolume& pv = r->by_name.at("scratch");
  EXPECT_EQ(pv.plugin, "kubernetes.io/empty-dir");
  EXPECT_EQ(pv.host_path, dir);
  EXPECT_FALSE(pv.read_only);
  EXPECT_FALSE(pv.memory_backed);
}

TEST_F(VolumeManagerTest, MemoryEmptyDirIsATmpfsOfItsSizeLimit) {
  auto r =
      manager_.setup(pod_with("  - {name: cache, emptyDir: {medium: Memory, sizeLimit: 64Mi}}\n"));
  ASSERT_TRUE(r.ok()) << r.error();
  std::string dir = vol("empty-dir", "cache");
  ASSERT_EQ(mounter_.tmpfs.count(dir), 1u);
  EXPECT_EQ(mounter_.tmpfs.at(dir), 64 << 20);
  EXPECT_TRUE(r->by_name.at("cache").memory_backed);
}

TEST_F(VolumeManagerTest, MemoryEmptyDirSizeIsBoundedByPodLimitAndAllocatable) {
  // sizeLimit above the pod's limit: the pod's 256Mi.
  ASSERT_TRUE(
      manager_.setup(pod_with("  - {name: a, emptyDir: {medium: Memory, sizeLimit: 1Gi}}\n")).ok());
  EXPECT_EQ(mounter_.tmpfs.at(vol("empty-dir", "a")), 256 << 20);
  ASSERT_TRUE(manager_.teardown(kUid).ok());

  // No sizeLimit, allocatable below the pod's limit: allocatable.
  lookup_.allocatable["memory"] = *api::Quantity::Parse("128Mi");
  ASSERT_TRUE(manager_.setup(pod_with("  - {name: b, emptyDir: {medium: Memory}}\n")).ok());
  EXPECT_EQ(mounter_.tmpfs.at(vol("empty-dir", "b")), 128 << 20);
}

TEST_F(VolumeManagerTest, MemoryEmptyDirWithoutAnyBoundTakesTheKernelDefault) {
  auto pod = pod_with("  - {name: a, emptyDir: {medium: Memory}}\n");
  pod.spec.containers[0].resources.limits.clear();
  ASSERT_TRUE(manager_.setup(pod).ok());
  EXPECT_EQ(mounter_.tmpfs.at(vol("empty-dir", "a")), 0);
}

TEST_F(VolumeManagerTest, UnknownMediumIsAnErrorNamingPodVolumeAndField) {
  auto r = manager_.setup(pod_with("  - {name: a, emptyDir: {medium: Tape}}\n"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(),
            "pod shop/web volume \"a\": spec.volumes[0].emptyDir.medium: unknown storage medium "
            "\"Tape\"");
  r = manager_.setup(pod_with("  - {name: a, emptyDir: {medium: HugePages-2Mi}}\n"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("medium \"HugePages-2Mi\" is not supported"), std::string::npos)
      << r.error();
}

TEST_F(VolumeManagerTest, FailedTmpfsMountIsAnError) {
  mounter_.fail_tmpfs = "mount tmpfs: Operation not permitted";
  auto r = manager_.setup(pod_with("  - {name: a, emptyDir: {medium: Memory}}\n"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), "pod shop/web volume \"a\": mount tmpfs: Operation not permitted");
}

TEST_F(VolumeManagerTest, SetupIsIdempotentAcrossARestart) {
  lookup_.add_config_map(
      "{apiVersion: v1, kind: ConfigMap, metadata: {name: app, namespace: shop}, data: {k: v}}");
  lookup_.add_secret(
      "{apiVersion: v1, kind: Secret, metadata: {name: creds, namespace: shop}, stringData: {p: "
      "w}}");
  auto pod = pod_with(R"(  - {name: cache, emptyDir: {medium: Memory}}
  - {name: config, configMap: {name: app}}
  - {name: creds, secret: {secretName: creds}}
)");
  auto first = manager_.setup(pod);
  ASSERT_TRUE(first.ok()) << first.error();
  std::string cfg_data = link_target(vol("configmap", "config") + "/..data");
  testing::write_file(vol("empty-dir", "cache") + "/state", "kept");

  auto again = manager_.setup(pod);
  ASSERT_TRUE(again.ok()) << again.error();
  VolumeManager restarted(root(), lookup_, mounter_);  // a new knode, same disk and mounts
  auto third = restarted.setup(pod);
  ASSERT_TRUE(third.ok()) << third.error();

  EXPECT_EQ(*first, *again);
  EXPECT_EQ(*first, *third);
  EXPECT_EQ(mounter_.count("tmpfs "), 2u)
      << "one tmpfs for the emptyDir, one for the secret, never again";
  EXPECT_EQ(link_target(vol("configmap", "config") + "/..data"), cfg_data)
      << "unchanged data is not rewritten";
  EXPECT_EQ(read_file(vol("empty-dir", "cache") + "/state"), "kept");
}

// ---- hostPath ----

TEST_F(VolumeManagerTest, HostPathStaysWhereItIs) {
  std::string host = tmp_.path() + "/host/logs";
  auto r = manager_.setup(
      pod_with("  - {name: logs, hostPath: {path: " + host + ", type: DirectoryOrCreate}}\n"));
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(mode_of(host), 0755);
  const PodVolume& pv = r->by_name.at("logs");
  EXPECT_EQ(pv.host_path, host);
  EXPECT_EQ(pv.plugin, "kubernetes.io/host-path");
  EXPECT_FALSE(exists(root() + "/" + kUid + "/volumes/kubernetes.io~host-path"));
}

TEST_F(VolumeManagerTest, HostPathTypeMismatchNamesPodVolumeAndField) {
  std::string host = tmp_.path() + "/nothing-here";
  auto r = manager_.setup(pod_with(R"(  - {name: ok, emptyDir: {}}
  - {name: sock, hostPath: {path: )" +
                                   host + ", type: Socket}}\n"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(),
            "pod shop/web volume \"sock\": spec.volumes[1].hostPath: hostPath type check failed: " +
                host + " is not a socket file");
}

// ---- configMap ----

TEST_F(VolumeManagerTest, ConfigMapHasEveryKeyAtDefaultMode) {
  lookup_.add_config_map(R"(
apiVersion: v1
kind: ConfigMap
metadata: {name: app, namespace: shop}
data: {app.properties: "color=blue\n", mode: prod}
binaryData: {logo.bin: AAEC}
)");
  auto r = manager_.setup(pod_with("  - {name: config, configMap: {name: app}}\n"));
  ASSERT_TRUE(r.ok()) << r.error();
  std::string dir = vol("configmap", "config");
  EXPECT_EQ(read_file(dir + "/app.properties"), "color=blue\n");
  EXPECT_EQ(read_file(dir + "/mode"), "prod");
  EXPECT_EQ(read_file(dir + "/logo.bin"), std::string("\0\1\2", 3));
  EXPECT_EQ(mode_of(dir + "/mode"), 0644);
  EXPECT_EQ(link_target(dir + "/mode"), "..data/mode");
  EXPECT_TRUE(r->by_name.at("config").read_only);
  EXPECT_FALSE(r->by_name.at("config").memory_backed) << "configMaps live on disk, as upstream";
  EXPECT_TRUE(mounter_.calls.empty());
}

TEST_F(VolumeManagerTest, ConfigMapItemsPickKeysPathsAndModes) {
  lookup_.add_config_map(
      "{apiVersion: v1, kind: ConfigMap, metadata: {name: app, namespace: shop}, data: {a: A, b: "
      "B, c: C}}");
  auto r = manager_.setup(pod_with(R"(  - name: config
    configMap:
      name: app
      defaultMode: 288
      items:
      - {key: a, path: conf/a.txt}
      - {key: b, path: b.txt, mode: 384}
)"));
  ASSERT_TRUE(r.ok()) << r.error();
  std::string dir = vol("configmap", "config");
  EXPECT_EQ(read_file(dir + "/conf/a.txt"), "A");
  EXPECT_EQ(read_file(dir + "/b.txt"), "B");
  EXPECT_EQ(mode_of(dir + "/conf/a.txt"), 0440);
  EXPECT_EQ(mode_of(dir + "/b.txt"), 0600);
  EXPECT_FALSE(exists(dir + "/c"));
  std::string data = link_target(dir + "/..data");
  EXPECT_EQ(entries(dir), (std::set<std::string>{"..data", data, "conf", "b.txt"}));
}

TEST_F(VolumeManagerTest, MissingConfigMapIsAnErrorUnlessOptional) {
  auto r = manager_.setup(pod_with("  - {name: config, configMap: {name: absent}}\n"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(),
            "pod shop/web volume \"config\": spec.volumes[0].configMap.name: configmap \"absent\" "
            "not found");
  EXPECT_FALSE(exists(vol("configmap", "config")))
      << "nothing is created for a volume that cannot be filled";

  auto opt =
      manager_.setup(pod_with("  - {name: config, configMap: {name: absent, optional: true}}\n"));
  ASSERT_TRUE(opt.ok()) << opt.error();
  std::string dir = vol("configmap", "config");
  EXPECT_EQ(entries(dir), (std::set<std::string>{"..data", link_target(dir + "/..data")}));
}

TEST_F(VolumeManagerTest, MissingKeyIsAnErrorUnlessOptional) {
  lookup_.add_config_map(
      "{apiVersion: v1, kind: ConfigMap, metadata: {name: app, namespace: shop}, data: {a: A}}");
  auto r = manager_.setup(pod_with(
      R"(  - {name: config, configMap: {name: app, items: [{key: a, path: a}, {key: z, path: z}]}}
)"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(),
            "pod shop/web volume \"config\": spec.volumes[0].configMap.items[1].key: "
            "configmap references non-existent config key: z");

  auto opt =
      manager_.setup(pod_with("  - {name: config, configMap: {name: app, optional: true, items: "
                              "[{key: a, path: a}, {key: z, path: z}]}}\n"));
  ASSERT_TRUE(opt.ok()) << opt.error();
  EXPECT_EQ(read_file(vol("configmap", "config") + "/a"), "A");
  EXPECT_FALSE(exists(vol("configmap", "config") + "/z"));
}

TEST_F(VolumeManagerTest, BadItemPathsAndModesAreRejected) {
  lookup_.add_config_map(
      "{apiVersion: v1, kind: ConfigMap, metadata: {name: app, namespace: shop}, data: {a: A}}");
  auto r = manager_.setup(pod_with(
      "  - {name: config, configMap: {name: app, items: [{key: a, path: ../../etc/x}]}}\n"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(),
            "pod shop/web volume \"config\": spec.volumes[0].configMap.items[0].path: "
            "invalid path: must not contain '..': ../../etc/x");
  r = manager_.setup(pod_with("  - {name: config, configMap: {name: app, defaultMode: 1023}}\n"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(),
            "pod shop/web volume \"config\": spec.volumes[0].configMap.defaultMode: "
            "must be a number between 0 and 0777 (octal), both inclusive");
}

TEST_F(VolumeManagerTest, KeysThatCannotBeFileNamesAreRejected) {
  api::ConfigMap cm;
  cm.metadata.name = "app";
  cm.metadata.namespace_ = "shop";
  cm.data["..hidden"] = "x";
  lookup_.config_maps["shop/app"] = cm;
  auto r = manager_.setup(pod_with("  - {name: config, configMap: {name: app}}\n"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(),
            "pod shop/web volume \"config\": spec.volumes[0].configMap: key \"..hidden\": "
            "invalid path: must not start with '..': ..hidden");
}

// ---- secret ----

TEST_F(VolumeManagerTest, SecretIsDecodedOntoATmpfs) {
  lookup_.allocatable["memory"] = *api::Quantity::Parse("8Gi");
  lookup_.add_secret(R"(
apiVersion: v1
kind: Secret
metadata: {name: tls, namespace: shop}
data: {tls.crt: Y2VydA==, tls.key: a2V5}
)");
  auto r = manager_.setup(pod_with(R"(  - name: certs
    secret:
      secretName: tls
      defaultMode: 256
      items: [{key: tls.key, path: private/key.pem}, {key: tls.crt, path: cert.pem, mode: 292}]
)"));
  ASSERT_TRUE(r.ok()) << r.error();
  std::string dir = vol("secret", "certs");
  ASSERT_EQ(mounter_.tmpfs.count(dir), 1u) << "secrets never touch the disk";
  EXPECT_EQ(mounter_.tmpfs.at(dir), 256 << 20) << "sized to the pod's memory limit";
  EXPECT_EQ(read_file(dir + "/private/key.pem"), "key");
  EXPECT_EQ(read_file(dir + "/cert.pem"), "cert");
  EXPECT_EQ(mode_of(dir + "/private/key.pem"), 0400);
  EXPECT_EQ(mode_of(dir + "/cert.pem"), 0444);
  EXPECT_TRUE(r->by_name.at("certs").read_only);
  EXPECT_TRUE(r->by_name.at("certs").memory_backed);
}

TEST_F(VolumeManagerTest, MissingSecretNamesIt) {
  auto r = manager_.setup(pod_with("  - {name: certs, secret: {secretName: tls}}\n"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(
      r.error(),
      "pod shop/web volume \"certs\": spec.volumes[0].secret.secretName: secret \"tls\" not found");
  EXPECT_TRUE(mounter_.tmpfs.empty()) << "the tmpfs is not mounted for a secret that is not there";
  EXPECT_FALSE(exists(vol("secret", "certs")));

  lookup_.add_secret(
      "{apiVersion: v1, kind: Secret, metadata: {name: tls, namespace: shop}, data: {a: YQ==}}");
  r = manager_.setup(
      pod_with("  - {name: certs, secret: {secretName: tls, items: [{key: b, path: b}]}}\n"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(),
            "pod shop/web volume \"certs\": spec.volumes[0].secret.items[0].key: "
            "references non-existent secret key: b");
}

// ---- downwardAPI ----

TEST_F(VolumeManagerTest, DownwardAPIWritesMetadataAndResources) {
  auto r = manager_.setup(pod_with(R"(  - name: info
    downwardAPI:
      items:
      - {path: name, fieldRef: {fieldPath: metadata.name}}
      - {path: ns, fieldRef: {fieldPath: metadata.namespace}}
      - {path: uid, fieldRef: {fieldPath: metadata.uid}}
      - {path: labels, fieldRef: {fieldPath: metadata.labels}}
      - {path: annotations, fieldRef: {fieldPath: metadata.annotations}, mode: 384}
      - {path: tier, fieldRef: {fieldPath: "metadata.labels['tier']"}}
      - {path: mem, resourceFieldRef: {containerName: app, resource: limits.memory, divisor: 1Mi}}
      - {path: cpu, resourceFieldRef: {containerName: app, resource: limits.cpu, divisor: 1m}}
)"));
  ASSERT_TRUE(r.ok()) << r.error();
  std::string dir = vol("downward-api", "info");
  EXPECT_EQ(read_file(dir + "/name"), "web");
  EXPECT_EQ(read_file(dir + "/ns"), "shop");
  EXPECT_EQ(read_file(dir + "/uid"), kUid);
  EXPECT_EQ(read_file(dir + "/labels"), "app=\"web\"\ntier=\"front\"");
  EXPECT_EQ(read_file(dir + "/annotations"), "note=\"say \\\"hi\\\"\"");
  EXPECT_EQ(read_file(dir + "/tier"), "front");
  EXPECT_EQ(read_file(dir + "/mem"), "256");
  EXPECT_EQ(read_file(dir + "/cpu"), "500");
  EXPECT_EQ(mode_of(dir + "/name"), 0644);
  EXPECT_EQ(mode_of(dir + "/annotations"), 0600);
  EXPECT_EQ(mounter_.tmpfs.count(dir), 1u) << "downwardAPI volumes are memory-backed upstream";
}

TEST_F(VolumeManagerTest, DownwardAPIRejectsFieldsAVolumeCannotHave) {
  auto r =
      manager_.setup(pod_with("  - {name: info, downwardAPI: {items: [{path: node, fieldRef: "
                              "{fieldPath: spec.nodeName}}]}}\n"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(
      r.error(),
      "pod shop/web volume \"info\": spec.volumes[0].downwardAPI.items[0].fieldRef.fieldPath: "
      "unsupported fieldPath: spec.nodeName");
  r =
      manager_.setup(pod_with("  - {name: info, downwardAPI: {items: [{path: m, resourceFieldRef: "
                              "{containerName: nope, resource: limits.memory}}]}}\n"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(),
            "pod shop/web volume \"info\": spec.volumes[0].downwardAPI.items[0].resourceFieldRef: "
            "container nope not found");
}

// ---- projected ----

TEST_F(VolumeManagerTest, ProjectedMergesItsSources) {
  lookup_.add_config_map(
      "{apiVersion: v1, kind: ConfigMap, metadata: {name: app, namespace: shop}, data: {a: A}}");
  lookup_.add_secret(
      "{apiVersion: v1, kind: Secret, metadata: {name: creds, namespace: shop}, stringData: {p: "
      "pw}}");
  auto r = manager_.setup(pod_with(R"(  - name: all
    projected:
      defaultMode: 288
      sources:
      - configMap: {name: app}
      - secret: {name: creds, items: [{key: p, path: secret/password, mode: 256}]}
      - downwardAPI: {items: [{path: podname, fieldRef: {fieldPath: metadata.name}}]}
      - configMap: {name: absent, optional: true}
)"));
  ASSERT_TRUE(r.ok()) << r.error();
  std::string dir = vol("projected", "all");
  EXPECT_EQ(read_file(dir + "/a"), "A");
  EXPECT_EQ(read_file(dir + "/secret/password"), "pw");
  EXPECT_EQ(read_file(dir + "/podname"), "web");
  EXPECT_EQ(mode_of(dir + "/a"), 0440);
  EXPECT_EQ(mode_of(dir + "/secret/password"), 0400);
  EXPECT_EQ(mounter_.tmpfs.count(dir), 1u);
  EXPECT_TRUE(r->by_name.at("all").read_only);
}

// clusterTrustBundle sources are files of what the lookup (the API server) answers; one it
// cannot answer stops the volume, naming the source.
TEST_F(VolumeManagerTest, ProjectedClusterTrustBundlesAreFilesOfTheirAnchors) {
  lookup_.trust_bundles.emplace("ca-one", std::string("PEM-ONE"));
  lookup_.trust_bundles.emplace("x.io/signer", std::string(""));
  auto r = manager_.setup(pod_with(R"(  - name: ctb
    projected:
      sources:
      - clusterTrustBundle: {name: ca-one, path: anchors.pem}
      - clusterTrustBundle: {signerName: x.io/signer, labelSelector: {matchLabels: {a: b}}, optional: true, path: sub/signer.pem}
)"));
  ASSERT_TRUE(r.ok()) << r.error();
  std::string dir = vol("projected", "ctb");
  EXPECT_EQ(read_file(dir + "/anchors.pem"), "PEM-ONE");
  EXPECT_EQ(read_file(dir + "/sub/signer.pem"), "");
  EXPECT_EQ(mode_of(dir + "/anchors.pem"), 0644);

  lookup_.trust_bundles.emplace("missing", Status::Error("ClusterTrustBundle missing not found", ENOENT));
  auto bad = manager_.setup(pod_with(R"(  - name: ctb2
    projected:
      sources:
      - clusterTrustBundle: {name: missing, path: a.pem}
)"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error(),
            "pod shop/web volume \"ctb2\": spec.volumes[0].projected.sources[0].clusterTrustBundle: "
            "ClusterTrustBundle missing not found");
}

// podCertificate sources: the credential bundle is the key then the chain, key and chain
// files each alone; 0600 once an owner is named (fsGroup), the default mode otherwise; a
// credential not issued yet stops the volume (the worker retries).
TEST_F(VolumeManagerTest, ProjectedPodCertificatesAreKeyAndChainFiles) {
  lookup_.pod_credentials.emplace("x.io/signer", PodCredential{"KEY\n", "CHAIN\n"});
  const std::string vol_yaml = R"(  - name: tls
    projected:
      sources:
      - configMap: {name: absent, optional: true}
      - podCertificate: {signerName: x.io/signer, keyType: ED25519, credentialBundlePath: bundle.pem, keyPath: k.pem, certificateChainPath: c.pem}
)";
  auto r = manager_.setup(pod_with(vol_yaml));
  ASSERT_TRUE(r.ok()) << r.error();
  std::string dir = vol("projected", "tls");
  EXPECT_EQ(read_file(dir + "/bundle.pem"), "KEY\nCHAIN\n");
  EXPECT_EQ(read_file(dir + "/k.pem"), "KEY\n");
  EXPECT_EQ(read_file(dir + "/c.pem"), "CHAIN\n");
  EXPECT_EQ(mode_of(dir + "/k.pem"), 0644);
  EXPECT_EQ(lookup_.credential_calls.back(), "tls/1");
  std::string owned_yaml = vol_yaml;
  owned_yaml.replace(owned_yaml.find("name: tls"), 9, "name: tls-owned");
  auto owned = manager_.setup(pod_with(owned_yaml, "  securityContext: {fsGroup: 2000}\n"));
  ASSERT_TRUE(owned.ok()) << owned.error();
  // 0600, and then fsGroup ownership adds group read, as upstream's SetVolumeOwnership
  EXPECT_EQ(mode_of(vol("projected", "tls-owned") + "/k.pem"), 0640);

  lookup_.pod_credentials.emplace("x.io/slow", Status::Error("waiting for PodCertificateRequest shop/req-1", EAGAIN));
  auto waiting = manager_.setup(pod_with(R"(  - name: tls2
    projected:
      sources:
      - podCertificate: {signerName: x.io/slow, keyType: ED25519, keyPath: k.pem}
)"));
  ASSERT_FALSE(waiting.ok());
  EXPECT_EQ(waiting.status().error_number(), EAGAIN);
  EXPECT_NE(waiting.error().find("spec.volumes[0].projected.sources[0].podCertificate: waiting"), std::string::npos)
      << waiting.error();
}

TEST_F(VolumeManagerTest, ProjectedServiceAccountTokenIsNotSupportedStandalone) {
  auto r = manager_.setup(pod_with(R"(  - name: token
    projected:
      sources:
      - serviceAccountToken: {path: token, expirationSeconds: 3600}
)"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(
      r.error(),
      "pod shop/web volume \"token\": spec.volumes[0].projected.sources[0].serviceAccountToken: "
      "not supported in standalone mode: there is no API server to issue the token");
  EXPECT_EQ(r.status().error_number(), ENOTSUP);
}

TEST_F(VolumeManagerTest, ProjectedRejectsConflictingPaths) {
  lookup_.add_config_map(
      "{apiVersion: v1, kind: ConfigMap, metadata: {name: app, namespace: shop}, data: {a: A}}");
  auto r = manager_.setup(pod_with(R"(  - name: all
    projected:
      sources:
      - configMap: {name: app, items: [{key: a, path: x}]}
      - downwardAPI: {items: [{path: x, fieldRef: {fieldPath: metadata.name}}]}
)"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(),
            "pod shop/web volume \"all\": "
            "spec.volumes[0].projected.sources[1].downwardAPI.items[0].path: "
            "conflicting duplicate paths");
}

// ---- other volume types ----

TEST_F(VolumeManagerTest, PersistentVolumeClaimStandaloneIsAClearError) {
  auto r = manager_.setup(pod_with("  - {name: data, persistentVolumeClaim: {claimName: db}}\n"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(
      r.error(),
      "pod shop/web volume \"data\": spec.volumes[0].persistentVolumeClaim: not supported in standalone mode: "
      "there are no PersistentVolumes to bind claims to");
}

TEST_F(VolumeManagerTest, ClaimBoundToAHostPathVolumeMountsItsDirectoryReadOnlyWhenAsked) {
  TempDir data;
  lookup_.claims["shop/db"] = ClaimedVolume{"pv-db", "hostPath", data.path(), "Directory"};
  auto r = manager_.setup(pod_with("  - {name: data, persistentVolumeClaim: {claimName: db, readOnly: true}}\n"));
  ASSERT_TRUE(r.ok()) << r.error();
  const auto& pv = r->by_name.at("data");
  EXPECT_EQ(pv.host_path, data.path());
  EXPECT_TRUE(pv.read_only);
  // A PersistentVolume whose directory is missing (type Directory): the claim's error.
  lookup_.claims["shop/gone"] = ClaimedVolume{"pv-gone", "hostPath", data.path() + "/nope", "Directory"};
  auto bad = manager_.setup(pod_with("  - {name: data, persistentVolumeClaim: {claimName: gone}}\n"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().find("PersistentVolume pv-gone"), std::string::npos) << bad.error();
}

// ---- nfs ----

TEST_F(VolumeManagerTest, NfsVolumeIsMountedOnceUnderThePodAndUnmountedAtTeardown) {
  auto pod = pod_with("  - {name: share, nfs: {server: 10.0.0.5, path: /exports/web}}\n"
                      "  - {name: logs, nfs: {server: 'fd00::5', path: /exports/logs, readOnly: true}}\n");
  auto r = manager_.setup(pod);
  ASSERT_TRUE(r.ok()) << r.error();
  const std::string share = vol("nfs", "share"), logs = vol("nfs", "logs");
  EXPECT_EQ(r->by_name.at("share").host_path, share);
  EXPECT_FALSE(r->by_name.at("share").read_only);
  EXPECT_TRUE(r->by_name.at("logs").read_only);
  EXPECT_EQ(mounter_.nfs.at(share), "10.0.0.5:/exports/web ");
  EXPECT_EQ(mounter_.nfs.at(logs), "[fd00::5]:/exports/logs ro");
  // Again (a resync, a restarted knode): the mounts are there, nothing is mounted twice.
  auto again = manager_.setup(pod);
  ASSERT_TRUE(again.ok()) << again.error();
  EXPECT_EQ(mounter_.count("nfs "), 2u);
  // The container binds the mounted directory.
  pod.spec.containers[0].volume_mounts = {api::VolumeMount{.name = "share", .mount_path = "/srv"}};
  auto mounts = manager_.mounts_for(pod, pod.spec.containers[0], *r, {});
  ASSERT_TRUE(mounts.ok()) << mounts.error();
  ASSERT_EQ(mounts->size(), 1u);
  EXPECT_EQ((*mounts)[0].host_path, share);
  ASSERT_TRUE(manager_.teardown(kUid).ok());
  EXPECT_TRUE(mounter_.nfs.empty());
  EXPECT_EQ(mounter_.count("unmount "), 2u);
  EXPECT_FALSE(exists(root() + "/" + kUid));
}

TEST_F(VolumeManagerTest, ClaimBoundToAnNfsVolumeMountsItWithThePvsOptions) {
  // Empty and repeated options dropped, an "rw" among them overridden by "ro" last.
  lookup_.claims["shop/media"] = ClaimedVolume{
      "pv-media", "nfs", "/exports/media", "", "nfs.example", false, {"vers=4.1", "", "hard", "vers=4.1", "ro"}};
  auto r = manager_.setup(pod_with("  - {name: media, persistentVolumeClaim: {claimName: media, readOnly: true}}\n"));
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->by_name.at("media").host_path, vol("nfs", "media"));
  EXPECT_TRUE(r->by_name.at("media").read_only);
  EXPECT_EQ(mounter_.nfs.at(vol("nfs", "media")), "nfs.example:/exports/media vers=4.1,hard,ro");
  lookup_.claims["shop/rw"] = ClaimedVolume{"pv-rw", "nfs", "/exports/rw", "", "nfs.example", false, {"rw"}};
  auto rw = manager_.setup(pod_with("  - {name: rw, persistentVolumeClaim: {claimName: rw, readOnly: true}}\n"));
  ASSERT_TRUE(rw.ok()) << rw.error();
  EXPECT_EQ(mounter_.nfs.at(vol("nfs", "rw")), "nfs.example:/exports/rw rw,ro");
}

TEST_F(VolumeManagerTest, AMountThatReturnsWithoutMountingIsRefused) {
  // "bg": mount(8) exits 0 and mounts later; the pod must not write to the node's disk.
  struct Background : testing::FakeMounter {
    Status mount_nfs(const std::string& source, const std::string& target, const std::vector<std::string>&) override {
      calls.push_back("nfs " + target + " " + source);
      return Status::Ok();
    }
  } bg;
  VolumeManager manager(root(), lookup_, bg);
  auto r = manager.setup(pod_with("  - {name: share, nfs: {server: 10.0.0.5, path: /exports/web}}\n"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("is not a mount (\"bg\" in the mount options?)"), std::string::npos) << r.error();
  EXPECT_FALSE(exists(vol("nfs", "share")));
}

TEST_F(VolumeManagerTest, AServerThatLooksLikeAnOptionIsRefused) {
  auto r = manager_.setup(pod_with("  - {name: share, nfs: {server: '-oremount', path: /x}}\n"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("nfs.server: \"-oremount\" is not a server"), std::string::npos) << r.error();
  EXPECT_EQ(mounter_.count("nfs "), 0u);
}

TEST_F(VolumeManagerTest, AFailedNfsMountIsAnErrorAndLeavesNoDirectory) {
  struct FailingNfs : testing::FakeMounter {
    Status mount_nfs(const std::string& source, const std::string&, const std::vector<std::string>&) override {
      return Status::Error("mount -t nfs " + source + ": exit status 32: access denied by server", EIO);
    }
  } failing;
  VolumeManager manager(root(), lookup_, failing);
  auto r = manager.setup(pod_with("  - {name: share, nfs: {server: 10.0.0.5, path: /exports/web}}\n"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), "pod shop/web volume \"share\": spec.volumes[0].nfs: mount -t nfs 10.0.0.5:/exports/web: "
                       "exit status 32: access denied by server");
  EXPECT_FALSE(exists(vol("nfs", "share")));
}

TEST_F(VolumeManagerTest, VolumeWithoutASourceIsAClearError) {
  auto pod = pod_with("  - {name: a, emptyDir: {}}\n");
  pod.spec.volumes[0].empty_dir.reset();
  auto r = manager_.setup(pod);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(
      r.error(),
      "pod shop/web volume \"a\": spec.volumes[0]: no volume source knode supports (emptyDir, "
      "hostPath, configMap, secret, downwardAPI, projected, persistentVolumeClaim, image, nfs)");
}

TEST_F(VolumeManagerTest, PodWithoutAUsableUidIsRejected) {
  auto pod = pod_with("  - {name: a, emptyDir: {}}\n");
  pod.metadata.uid = "../../etc";
  auto r = manager_.setup(pod);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), "pod shop/web: metadata.uid: \"../../etc\" cannot name the pod's directory");
  EXPECT_FALSE(manager_.teardown("..").ok());
}

// ---- refresh ----

TEST_F(VolumeManagerTest, RefreshRewritesOnlyVolumesWhoseDataChanged) {
  lookup_.add_config_map(
      "{apiVersion: v1, kind: ConfigMap, metadata: {name: one, namespace: shop}, data: {k: v1}}");
  lookup_.add_config_map(
      "{apiVersion: v1, kind: ConfigMap, metadata: {name: two, namespace: shop}, data: {k: same}}");
  lookup_.add_secret(
      "{apiVersion: v1, kind: Secret, metadata: {name: s, namespace: shop}, stringData: {k: "
      "same}}");
  auto pod = pod_with(R"(  - {name: one, configMap: {name: one}}
  - {name: two, configMap: {name: two}}
  - {name: s, secret: {secretName: s}}
  - name: info
    downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]}
)");
  ASSERT_TRUE(manager_.setup(pod).ok());
  std::string one = vol("configmap", "one"), two = vol("configmap", "two"), s = vol("secret", "s"),
              info = vol("downward-api", "info");
  std::string one_data = link_target(one + "/..data"), two_data = link_target(two + "/..data"),
              s_data = link_target(s + "/..data"), info_data = link_target(info + "/..data");

  lookup_.add_config_map(
      "{apiVersion: v1, kind: ConfigMap, metadata: {name: one, namespace: shop}, data: {k: v2}}");
  Status st = manager_.refresh(pod);
  ASSERT_TRUE(st.ok()) << st.message();

  EXPECT_NE(link_target(one + "/..data"), one_data);
  EXPECT_FALSE(exists(one + "/" + one_data)) << "the old data directory is gone";
  EXPECT_EQ(read_file(one + "/k"), "v2");
  EXPECT_EQ(link_target(two + "/..data"), two_data);
  EXPECT_EQ(link_target(s + "/..data"), s_data);
  EXPECT_EQ(link_target(info + "/..data"), info_data);

  // New labels change the downwardAPI volume, and only it.
  pod.metadata.labels["tier"] = "back";
  one_data = link_target(one + "/..data");
  ASSERT_TRUE(manager_.refresh(pod).ok());
  EXPECT_NE(link_target(info + "/..data"), info_data);
  EXPECT_EQ(read_file(info + "/labels"), "app=\"web\"\ntier=\"back\"");
  EXPECT_EQ(link_target(one + "/..data"), one_data);
}

TEST_F(VolumeManagerTest, RefreshKeepsOldContentWhenASourceVanishes) {
  lookup_.add_config_map(
      "{apiVersion: v1, kind: ConfigMap, metadata: {name: one, namespace: shop}, data: {k: v1}}");
  lookup_.add_config_map(
      "{apiVersion: v1, kind: ConfigMap, metadata: {name: two, namespace: shop}, data: {k: v1}}");
  auto pod = pod_with(R"(  - {name: one, configMap: {name: one}}
  - {name: two, configMap: {name: two}}
)");
  ASSERT_TRUE(manager_.setup(pod).ok());
  lookup_.config_maps.erase("shop/one");
  lookup_.add_config_map(
      "{apiVersion: v1, kind: ConfigMap, metadata: {name: two, namespace: shop}, data: {k: v2}}");
  Status st = manager_.refresh(pod);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(
      st.message(),
      "pod shop/web volume \"one\": spec.volumes[0].configMap.name: configmap \"one\" not found");
  EXPECT_EQ(read_file(vol("configmap", "one") + "/k"), "v1");
  EXPECT_EQ(read_file(vol("configmap", "two") + "/k"), "v2")
      << "the other volumes are still refreshed";
}

// ---- fsGroup ----

TEST_F(VolumeManagerTest, FsGroupOwnsVolumesAsUpstream) {
  gid_t gid = ::getgid() == 0 ? 4321 : ::getgid();  // root may give any group; others their own
  lookup_.add_config_map(
      "{apiVersion: v1, kind: ConfigMap, metadata: {name: app, namespace: shop}, data: {k: v}}");
  auto pod = pod_with(R"(  - {name: scratch, emptyDir: {}}
  - {name: config, configMap: {name: app, defaultMode: 256}}
)",
                      "  securityContext: {fsGroup: " + std::to_string(gid) + "}\n");
  auto r = manager_.setup(pod);
  ASSERT_TRUE(r.ok()) << r.error();
  struct stat st {};
  ASSERT_EQ(::stat(vol("empty-dir", "scratch").c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, gid);
  EXPECT_EQ(st.st_mode & 07777, 02777u) << "setgid, so new files get the group";
  ASSERT_EQ(::stat((vol("configmap", "config") + "/k").c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, gid);
  EXPECT_EQ(st.st_mode & 07777, 0440u) << "read-only volume: g+r only";
}

// ---- teardown ----

TEST_F(VolumeManagerTest, TeardownLeavesNothing) {
  lookup_.add_config_map(
      "{apiVersion: v1, kind: ConfigMap, metadata: {name: app, namespace: shop}, data: {k: v}}");
  lookup_.add_secret(
      "{apiVersion: v1, kind: Secret, metadata: {name: s, namespace: shop}, stringData: {k: v}}");
  auto pod = pod_with(R"(  - {name: scratch, emptyDir: {}}
  - {name: cache, emptyDir: {medium: Memory}}
  - {name: config, configMap: {name: app}}
  - {name: creds, secret: {secretName: s}}
)");
  ASSERT_TRUE(manager_.setup(pod).ok());
  ASSERT_EQ(::mkdir((vol("empty-dir", "scratch") + "/sub").c_str(), 0755), 0);
  testing::write_file(vol("empty-dir", "scratch") + "/sub/file", "x");

  Status s = manager_.teardown(kUid);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_TRUE(mounter_.tmpfs.empty()) << "every tmpfs is unmounted";
  EXPECT_EQ(mounter_.count("unmount "), 2u);
  EXPECT_FALSE(exists(root() + "/" + kUid));
  EXPECT_TRUE(manager_.teardown(kUid).ok()) << "idempotent";
}

TEST_F(VolumeManagerTest, TeardownKeepsWhatOthersPutInThePodDirectory) {
  ASSERT_TRUE(manager_.setup(pod_with("  - {name: scratch, emptyDir: {}}\n")).ok());
  testing::write_file(root() + "/" + kUid + "/etc-hosts", "127.0.0.1 localhost\n");
  ASSERT_TRUE(manager_.teardown(kUid).ok());
  EXPECT_EQ(entries(root() + "/" + kUid), (std::set<std::string>{"etc-hosts"}));
}

TEST_F(VolumeManagerTest, TeardownNeverFollowsSymlinksOut) {
  std::string outside = tmp_.path() + "/precious";
  ASSERT_EQ(::mkdir(outside.c_str(), 0755), 0);
  testing::write_file(outside + "/data", "keep me");
  ASSERT_TRUE(manager_.setup(pod_with("  - {name: scratch, emptyDir: {}}\n")).ok());
  // What a container could plant in its emptyDir.
  std::string dir = vol("empty-dir", "scratch");
  ASSERT_EQ(::symlink(outside.c_str(), (dir + "/escape").c_str()), 0);
  ASSERT_EQ(::symlink("../../../../../precious", (dir + "/relative").c_str()), 0);
  ASSERT_EQ(::symlink((outside + "/data").c_str(), (dir + "/file").c_str()), 0);
  // And a plugin folder replaced by a symlink.
  ASSERT_EQ(::symlink(outside.c_str(),
                      (root() + "/" + kUid + "/volumes/kubernetes.io~configmap").c_str()),
            0);

  Status s = manager_.teardown(kUid);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(read_file(outside + "/data"), "keep me");
  EXPECT_EQ(entries(outside), (std::set<std::string>{"data"}));
  EXPECT_FALSE(exists(root() + "/" + kUid));
}

TEST_F(VolumeManagerTest, TeardownOfAnUnknownPodIsANoOp) {
  EXPECT_TRUE(manager_.teardown("no-such-pod").ok());
  EXPECT_TRUE(mounter_.calls.empty());
}

}  // namespace
}  // namespace knode::kubelet
