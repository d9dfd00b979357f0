#include "cluster/trust_bundles.h"

#include <gtest/gtest.h>

#include "knode/api/base64.h"

namespace knode::kubelet {
namespace {

using nlohmann::json;

// A PEM block of `der` (any bytes: the kubelet copies certificates, it does not parse them).
std::string pem(const std::string& der, const std::string& type = "CERTIFICATE") {
  std::string b64 = api::base64_encode(der), out = "-----BEGIN " + type + "-----\n";
  for (size_t i = 0; i < b64.size(); i += 64) out += b64.substr(i, 64) + "\n";
  return out + "-----END " + type + "-----\n";
}

json bundle(const std::string& name, const std::string& signer, const std::string& trust, json labels = json::object()) {
  return {{"metadata", {{"name", name}, {"labels", labels}}}, {"spec", {{"signerName", signer}, {"trustBundle", trust}}}};
}

api::ClusterTrustBundleProjection by_signer(const std::string& signer, std::optional<api::LabelSelector> sel,
                                            bool optional = false) {
  api::ClusterTrustBundleProjection p;
  p.signer_name = signer;
  p.label_selector = std::move(sel);
  p.optional = optional;
  p.path = "ca.pem";
  return p;
}

TEST(TrustBundles, EveryCertificateOnceSortedAndReencodedIn64Columns) {
  const std::string a(100, 'a'), b = "bb", c = "c";
  auto out = normalize_trust_anchors({{"one", pem(b) + "\n" + pem(a)}, {"two", pem(a) + pem(c, "TRUSTED CERTIFICATE")}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(*out, pem(a) + pem(b) + pem(c));
  // 100 bytes are 136 base64 characters: lines of 64, 64 and 8
  EXPECT_NE(out->find("\n" + api::base64_encode(a).substr(0, 64) + "\n"), std::string::npos);
}

TEST(TrustBundles, BodiesWithBlanksCarriageReturnsAndHeadersStillDecode) {
  std::string b64 = api::base64_encode("xyz123");
  auto out = normalize_trust_anchors(
      {{"one", "junk before\r\n-----BEGIN CERTIFICATE-----\r\nComment: x\r\n" + b64.substr(0, 4) + " \r\n" +
                   b64.substr(4) + "\r\n-----END CERTIFICATE-----\r\ntrailing"}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(*out, pem("xyz123"));
}

TEST(TrustBundles, ABrokenBlockNamesTheBundle) {
  auto out = normalize_trust_anchors({{"bad", "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"}});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("ClusterTrustBundle bad"), std::string::npos) << out.status().message();
  out = normalize_trust_anchors({{"cut", "-----BEGIN CERTIFICATE-----\nAAAA\n"}});
  ASSERT_FALSE(out.ok());
}

TEST(TrustBundles, ASignersBundlesPickedByTheSelector) {
  json list = {{"items",
                {bundle("s1-alive", "x.io/one", pem("1"), {{"alive", "true"}}),
                 bundle("s1-dead", "x.io/one", pem("2"), {{"alive", "false"}}),
                 bundle("s1-plain", "x.io/one", pem("3")),
                 bundle("s2-alive", "x.io/two", pem("4"), {{"alive", "true"}})}}};
  api::LabelSelector alive;
  alive.match_labels = {{"alive", "true"}};
  auto out = trust_anchors_of_signer(list, by_signer("x.io/one", alive));
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(*out, pem("1"));
  // an empty selector: all of the signer's
  out = trust_anchors_of_signer(list, by_signer("x.io/one", api::LabelSelector{}));
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, pem("1") + pem("2") + pem("3"));
  // expressions
  api::LabelSelector exists;
  exists.match_expressions = {{"alive", "NotIn", {"true"}}, {"alive", "Exists", {}}};
  out = trust_anchors_of_signer(list, by_signer("x.io/one", exists));
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, pem("2"));
}

TEST(TrustBundles, NothingPickedIsEmptyWhenOptionalAndAnErrorOtherwise) {
  json list = {{"items", {bundle("s1", "x.io/one", pem("1"))}}};
  api::LabelSelector none;
  none.match_labels = {{"matches", "nothing"}};
  for (const auto& sel : {std::optional<api::LabelSelector>(none), std::optional<api::LabelSelector>()}) {
    auto out = trust_anchors_of_signer(list, by_signer("x.io/one", sel, /*optional=*/true));
    ASSERT_TRUE(out.ok());
    EXPECT_EQ(*out, "") << "a null selector picks nothing either";
    out = trust_anchors_of_signer(list, by_signer("x.io/one", sel, /*optional=*/false));
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.status().message(), "combination of signerName and labelSelector matched zero ClusterTrustBundles");
  }
  api::LabelSelector bad;
  bad.match_expressions = {{"k", "Near", {"v"}}};
  EXPECT_FALSE(trust_anchors_of_signer(list, by_signer("x.io/one", bad)).ok());
}

// The API server's list is outside input: items, metadata, spec and their fields of the
// wrong type are skipped or empty, never an exception (nlohmann's value() throws on them).
TEST(TrustBundles, MalformedItemsAreSkippedWithoutThrowing) {
  json list = {{"items",
                {"not an object",
                 {{"metadata", "x"}, {"spec", {{"signerName", "x.io/one"}, {"trustBundle", pem("1")}}}},
                 {{"metadata", {{"name", 5}, {"labels", "alive"}}}, {"spec", {{"signerName", "x.io/one"}}}},
                 {{"spec", {{"signerName", 7}, {"trustBundle", pem("2")}}}},
                 {{"spec", "x.io/one"}},
                 bundle("good", "x.io/one", pem("3"))}}};
  auto out = trust_anchors_of_signer(list, by_signer("x.io/one", api::LabelSelector{}));
  ASSERT_TRUE(out.ok()) << out.error();
  EXPECT_EQ(*out, pem("1") + pem("3")) << "a bundle without trustBundle adds nothing";
  for (const json& odd : {json{{"items", "x"}}, json{{"items", {1, 2}}}, json("items"), json()}) {
    auto none = trust_anchors_of_signer(odd, by_signer("x.io/one", api::LabelSelector{}, /*optional=*/true));
    ASSERT_TRUE(none.ok()) << odd.dump();
    EXPECT_EQ(*none, "");
  }
}

}  // namespace
}  // namespace knode::kubelet
