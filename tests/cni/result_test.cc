#include <gtest/gtest.h>

#include "knode/cni/result.h"
#include "knode/cni/version.h"

namespace knode::cni {
namespace {

CniResult sample(const std::string& version) {
  CniResult r;
  r.cni_version = version;
  r.interfaces = {{"cni0", "aa:bb:cc:dd:ee:01", 1500u, ""}, {"eth0", "aa:bb:cc:dd:ee:02", 1500u, "/var/run/netns/x"}};
  r.ips = {{*link::IpNet::Parse("10.22.0.5/24"), net::IPAddress::Parse("10.22.0.1"), 1}};
  r.routes = {{*net::Cidr::Parse("0.0.0.0/0"), net::IPAddress::Parse("10.22.0.1")}};
  return r;
}

TEST(CniResult, Version040TagsIpsWithTheirFamily) {
  auto j = to_json(sample("0.4.0"));
  EXPECT_EQ(j["cniVersion"], "0.4.0");
  EXPECT_EQ(j["ips"][0]["version"], "4");
  EXPECT_EQ(j["ips"][0]["address"], "10.22.0.5/24");
  EXPECT_FALSE(j["interfaces"][0].contains("mtu"));
}

TEST(CniResult, Version1HasNoIpVersionAnd11HasMtu) {
  auto j100 = to_json(sample("1.0.0"));
  EXPECT_FALSE(j100["ips"][0].contains("version"));
  auto j = to_json(sample("1.1.0"));
  EXPECT_EQ(j["interfaces"][1]["sandbox"], "/var/run/netns/x");
  EXPECT_FALSE(j["interfaces"][0].contains("sandbox"));
  EXPECT_EQ(j["interfaces"][0]["mtu"], 1500);
  EXPECT_EQ(j["ips"][0]["interface"], 1);
  EXPECT_EQ(j["ips"][0]["gateway"], "10.22.0.1");
  EXPECT_EQ(j["routes"][0]["dst"], "0.0.0.0/0");
  EXPECT_TRUE(j["dns"].is_object());
}

TEST(CniResult, RoundTripsThroughParse) {
  auto r = parse_result(to_json(sample("1.1.0")));
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->interfaces.size(), 2u);
  EXPECT_EQ(r->ips[0].address.str(), "10.22.0.5/24");
  EXPECT_EQ(*r->ips[0].interface, 1);
  EXPECT_EQ(r->routes[0].gw->str(), "10.22.0.1");
  auto bad = parse_result(nlohmann::json{{"ips", {{{"address", "nope"}}}}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().error_number(), kInvalidConfig);
}

TEST(CniResult, ErrorAndVersionDocuments) {
  auto e = error_json(error(kInvalidConfig, "bad subnet"), "1.0.0");
  EXPECT_EQ(e["cniVersion"], "1.0.0");
  EXPECT_EQ(e["code"], 7);
  EXPECT_EQ(e["msg"], "bad subnet");
  EXPECT_FALSE(e.contains("details"));
  auto v = version_json("");
  EXPECT_EQ(v["cniVersion"], "1.1.0");
  EXPECT_EQ(v["supportedVersions"], nlohmann::json({"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}));
}

TEST(CniVersion, ComparesNumerically) {
  EXPECT_LT(compare_versions("0.4.0", "1.0.0"), 0);
  EXPECT_EQ(compare_versions("1.1.0", "1.1.0"), 0);
  EXPECT_GT(compare_versions("1.10.0", "1.9.0"), 0);
  EXPECT_TRUE(is_supported_version("0.4.0"));
  EXPECT_FALSE(is_supported_version("0.2.0"));
}

}  // namespace
}  // namespace knode::cni
