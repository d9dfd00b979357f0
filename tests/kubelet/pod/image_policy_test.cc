#include "pod/image_policy.h"

#include <gtest/gtest.h>

#include "kubelet/pod/decode.h"

using namespace knode;
using namespace knode::kubelet;
using knode::kubelet::testing::decode;

namespace {

const std::string kDigest = "sha256:" + std::string(64, 'a');

api::Secret pull_secret(const std::string& name, const std::string& type, const std::string& key,
                        const std::string& json) {
  return decode<api::Secret>("apiVersion: v1\nkind: Secret\nmetadata: {name: " + name +
                             ", namespace: shop}\ntype: " + type + "\nstringData:\n  " + key +
                             ": '" + json + "'\n");
}

api::Secret config_json(const std::string& name, const std::string& auths) {
  return pull_secret(name, "kubernetes.io/dockerconfigjson", ".dockerconfigjson",
                     "{\"auths\": " + auths + "}");
}

std::vector<std::string> users(const Result<std::vector<runtime::AuthConfig>>& r) {
  EXPECT_TRUE(r.ok()) << r.error();
  std::vector<std::string> out;
  if (r.ok()) {
    for (const auto& a : *r) out.push_back(a.username + ":" + a.password);
  }
  return out;
}

}  // namespace

TEST(ImageReference, NormalizesLikeDocker) {
  auto r = parse_image_reference("busybox");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->name(), "docker.io/library/busybox");
  EXPECT_EQ(r->tag, "");
  r = parse_image_reference("index.docker.io/team/app:2");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->name(), "docker.io/team/app");
  EXPECT_EQ(r->tag, "2");
  r = parse_image_reference("localhost:5000/team/app:v1.2-rc");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->domain, "localhost:5000");
  EXPECT_EQ(r->path, "team/app");
  EXPECT_EQ(r->tag, "v1.2-rc");
  r = parse_image_reference("registry.k8s.io/pause:3.10@" + kDigest);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->name(), "registry.k8s.io/pause");
  EXPECT_EQ(r->tag, "3.10");
  EXPECT_EQ(r->digest, kDigest);
  r = parse_image_reference("localhost/app");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->domain, "localhost");
}

TEST(ImageReference, RejectsWhatDockerRejects) {
  for (const char* bad :
       {"Busybox", "busybox:", "busybox@sha256:abc", "a//b", "-lead", "app:t@g"}) {
    EXPECT_FALSE(parse_image_reference(bad).ok()) << bad;
  }
  auto r = parse_image_reference(std::string(64, 'b'));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("cannot specify 64-byte hexadecimal strings"), std::string::npos);
}

TEST(PullPolicy, DefaultsByTag) {
  EXPECT_EQ(default_pull_policy("busybox"), "Always");
  EXPECT_EQ(default_pull_policy("busybox:latest"), "Always");
  EXPECT_EQ(default_pull_policy("localhost:5000/app"), "Always");
  EXPECT_EQ(default_pull_policy("busybox:1.36"), "IfNotPresent");
  EXPECT_EQ(default_pull_policy("busybox@" + kDigest), "IfNotPresent");
  // Upstream reads the tag alone: a digest does not override an explicit :latest.
  EXPECT_EQ(default_pull_policy("busybox:latest@" + kDigest), "Always");
}

TEST(PullPolicy, DefaultTagIsAppendedWithoutRewritingTheName) {
  EXPECT_EQ(*with_default_tag("busybox"), "busybox:latest");
  EXPECT_EQ(*with_default_tag("localhost:5000/app"), "localhost:5000/app:latest");
  EXPECT_EQ(*with_default_tag("busybox:1.36"), "busybox:1.36");
  EXPECT_EQ(*with_default_tag("busybox@" + kDigest), "busybox@" + kDigest);
}

TEST(PullDecision, ByPolicyPresenceAndBackoff) {
  auto d = decide_pull("app:1", "IfNotPresent", true, false);
  EXPECT_EQ(d.action, PullAction::kUsePresent);
  d = decide_pull("app:1", "IfNotPresent", false, false);
  EXPECT_EQ(d.action, PullAction::kPull);
  d = decide_pull("app:1", "Always", true, false);
  EXPECT_EQ(d.action, PullAction::kPull);
  d = decide_pull("app:1", "Never", true, true);
  EXPECT_EQ(d.action, PullAction::kUsePresent);
  d = decide_pull("app:1", "Never", false, false);
  EXPECT_EQ(d.action, PullAction::kWait);
  EXPECT_EQ(d.reason, "ErrImageNeverPull");
  EXPECT_EQ(d.message, "Container image \"app:1\" is not present with pull policy of Never");
  d = decide_pull("app:1", "Always", false, true);
  EXPECT_EQ(d.action, PullAction::kWait);
  EXPECT_EQ(d.reason, "ImagePullBackOff");
  EXPECT_EQ(d.message, "Back-off pulling image \"app:1\"");
  // A present image is used even while pulls of it are backing off.
  EXPECT_EQ(decide_pull("app:1", "IfNotPresent", true, true).action, PullAction::kUsePresent);
  d = decide_pull("Bad:1", "IfNotPresent", false, false);
  EXPECT_EQ(d.reason, "InvalidImageName");
  EXPECT_EQ(
      d.message.rfind("Failed to apply default image tag \"Bad:1\": couldn't parse image name", 0),
      0u)
      << d.message;
}

TEST(PullDecision, FailedPullReasons) {
  auto d = pull_failed("app:1", "rpc error: code = NotFound desc = manifest unknown");
  EXPECT_EQ(d.reason, "ErrImagePull");
  EXPECT_EQ(d.message, "rpc error: code = NotFound desc = manifest unknown");
  d = pull_failed("app:1", "RegistryUnavailable: dial tcp 10.0.0.1:443: i/o timeout");
  EXPECT_EQ(d.reason, "RegistryUnavailable");
  EXPECT_EQ(d.message,
            "image pull failed for app:1 because the registry is unavailable: dial tcp "
            "10.0.0.1:443: i/o timeout");
  d = pull_failed("app:1", "SignatureValidationFailed");
  EXPECT_EQ(d.message, "image pull failed for app:1 because the signature validation failed");
}

TEST(PullCredentials, DockerHubUnderEitherName) {
  auto hub = config_json("hub", R"({"https://index.docker.io/v1/": {"auth": "YWxpY2U6czNjcmV0"}})");
  std::vector<const api::Secret*> secrets = {&hub};
  EXPECT_EQ(users(credentials_for("busybox:1.36", secrets)),
            (std::vector<std::string>{"alice:s3cret"}));
  EXPECT_EQ(users(credentials_for("docker.io/team/app", secrets)),
            (std::vector<std::string>{"alice:s3cret"}));
  EXPECT_TRUE(users(credentials_for("quay.io/team/app", secrets)).empty());
  auto short_name = config_json("dio", R"({"docker.io": {"username": "bob", "password": "pwd"}})");
  EXPECT_EQ(users(credentials_for("index.docker.io/library/busybox", {&short_name})),
            (std::vector<std::string>{"bob:pwd"}));
}

TEST(PullCredentials, HostAndPortMustMatch) {
  auto cfg = pull_secret("old", "kubernetes.io/dockercfg", ".dockercfg",
                         R"({"registry.local:5000": {"auth": "Ym9iOnB3ZA"}})");
  std::vector<const api::Secret*> secrets = {&cfg};
  // An unpadded auth field decodes too.
  EXPECT_EQ(users(credentials_for("registry.local:5000/team/app:v1", secrets)),
            (std::vector<std::string>{"bob:pwd"}));
  EXPECT_TRUE(users(credentials_for("registry.local/team/app:v1", secrets)).empty());
  EXPECT_TRUE(users(credentials_for("registry.local:5001/team/app:v1", secrets)).empty());
}

TEST(PullCredentials, MoreSpecificPathsFirstAcrossSecrets) {
  auto broad = config_json("broad", R"({"quay.io": {"username": "any", "password": "1"}})");
  auto narrow = config_json("narrow", R"({"quay.io/team": {"username": "team", "password": "2"}})");
  std::vector<const api::Secret*> secrets = {&broad, &narrow};
  EXPECT_EQ(users(credentials_for("quay.io/team/app", secrets)),
            (std::vector<std::string>{"team:2", "any:1"}));
  EXPECT_EQ(users(credentials_for("quay.io/other/app", secrets)),
            (std::vector<std::string>{"any:1"}));
}

TEST(PullCredentials, WildcardLabelsMatchOneLabelEach) {
  auto wild = config_json("wild", R"({"*.example.com": {"auth": "Y2Fyb2w6cHc="}})");
  std::vector<const api::Secret*> secrets = {&wild};
  EXPECT_EQ(users(credentials_for("eu.example.com/app", secrets)),
            (std::vector<std::string>{"carol:pw"}));
  EXPECT_TRUE(users(credentials_for("example.com/app", secrets)).empty());
  EXPECT_TRUE(users(credentials_for("a.b.example.com/app", secrets)).empty());
}

TEST(PullCredentials, OtherSecretTypesAreIgnoredAndBadJsonFails) {
  auto opaque = pull_secret("plain", "Opaque", ".dockerconfigjson",
                            R"({"auths": {"docker.io": {"username": "x", "password": "y"}}})");
  EXPECT_TRUE(users(credentials_for("busybox", {&opaque})).empty());
  auto broken =
      pull_secret("broken", "kubernetes.io/dockerconfigjson", ".dockerconfigjson", "{not json");
  auto r = credentials_for("busybox", {&broken});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().rfind("secret shop/broken: ", 0), 0u) << r.error();
}
