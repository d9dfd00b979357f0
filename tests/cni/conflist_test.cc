#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "knode/cni/config.h"
#include "knode/cni/conflist.h"

namespace knode::cni {
namespace {

TEST(CniConflist, DescribesTheBridgeNetworkForThePodCidr) {
  ConflistOptions opts;
  opts.pod_cidr = "10.244.1.0/24";
  auto doc = make_conflist(opts);
  ASSERT_TRUE(doc.ok()) << doc.error();
  EXPECT_EQ((*doc)["name"], "knode");
  const auto& plugin = (*doc)["plugins"][0];
  EXPECT_EQ(plugin["type"], "knode-cni");
  EXPECT_EQ(plugin["bridge"], "cni0");
  EXPECT_EQ(plugin["ipam"]["ranges"][0][0]["subnet"], "10.244.1.0/24");
  EXPECT_EQ(plugin["capabilities"]["portMappings"], true);
  // What the runtime hands the plugin parses as a valid configuration.
  nlohmann::json net = plugin;
  net["name"] = (*doc)["name"];
  net["cniVersion"] = (*doc)["cniVersion"];
  auto conf = parse_netconf(net.dump());
  ASSERT_TRUE(conf.ok()) << conf.error();
  EXPECT_TRUE(conf->is_default_gateway);
  EXPECT_TRUE(conf->ip_masq);
}

TEST(CniConflist, RejectsABadCidr) {
  ConflistOptions opts;
  opts.pod_cidr = "10.244.1.0";
  EXPECT_FALSE(make_conflist(opts).ok());
}

TEST(CniConflist, WritesAtomicallyCreatingTheDirectory) {
  char tmpl[] = "/tmp/knode-cni-conflist-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  ConflistOptions opts;
  opts.pod_cidr = "10.244.7.0/24";
  opts.path = std::string(tmpl) + "/etc/cni/net.d/10-knode.conflist";
  ASSERT_TRUE(write_conflist(opts).ok());
  ASSERT_TRUE(write_conflist(opts).ok());  // unchanged content: a no-op
  std::ifstream f(opts.path);
  auto j = nlohmann::json::parse(f);
  EXPECT_EQ(j["plugins"][0]["ipam"]["ranges"][0][0]["subnet"], "10.244.7.0/24");
  std::filesystem::remove_all(tmpl);
}

}  // namespace
}  // namespace knode::cni
