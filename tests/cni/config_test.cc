#include <gtest/gtest.h>

#include "knode/cni/config.h"

namespace knode::cni {
namespace {

std::string conf_with_ipam(const std::string& ipam, const std::string& version = "1.1.0") {
  return R"({"cniVersion":")" + version + R"(","name":"net1","type":"knode-cni","ipam":)" + ipam + "}";
}

TEST(CniConfig, ParsesBridgeFieldsAndRanges) {
  auto c = parse_netconf(R"({"cniVersion":"1.0.0","name":"net1","type":"knode-cni","bridge":"br9",
    "isDefaultGateway":true,"hairpinMode":true,"promiscMode":true,"ipMasq":true,"mtu":1400,
    "ipam":{"type":"host-local","dataDir":"/tmp/x","routes":[{"dst":"0.0.0.0/0"},{"dst":"10.0.0.0/8","gw":"10.22.0.254"}],
      "ranges":[[{"subnet":"10.22.0.0/24","rangeStart":"10.22.0.10","rangeEnd":"10.22.0.20","gateway":"10.22.0.254"}]]}})");
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->bridge, "br9");
  EXPECT_TRUE(c->is_gateway);  // implied by isDefaultGateway
  EXPECT_TRUE(c->hairpin_mode);
  EXPECT_TRUE(c->promisc_mode);
  EXPECT_TRUE(c->ip_masq);
  EXPECT_EQ(c->mtu, 1400u);
  EXPECT_EQ(c->ipam.data_dir, "/tmp/x");
  ASSERT_EQ(c->ipam.ranges.size(), 1u);
  const Range& r = c->ipam.ranges[0][0];
  EXPECT_EQ(r.first.str(), "10.22.0.10");
  EXPECT_EQ(r.last.str(), "10.22.0.20");
  EXPECT_EQ(r.gateway.str(), "10.22.0.254");
  ASSERT_EQ(c->ipam.routes.size(), 2u);
  EXPECT_EQ(c->ipam.routes[1].gw->str(), "10.22.0.254");
}

TEST(CniConfig, DefaultsFollowHostLocal) {
  auto c = parse_netconf(conf_with_ipam(R"({"type":"host-local","ranges":[[{"subnet":"10.1.2.0/24"}]]})"));
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->bridge, "cni0");
  EXPECT_EQ(c->ipam.data_dir, "/var/lib/cni/networks");
  const Range& r = c->ipam.ranges[0][0];
  EXPECT_EQ(r.first.str(), "10.1.2.1");
  EXPECT_EQ(r.last.str(), "10.1.2.254");  // never the broadcast address
  EXPECT_EQ(r.gateway.str(), "10.1.2.1");
}

TEST(CniConfig, AcceptsTheOlderSingleSubnetForm) {
  auto c = parse_netconf(conf_with_ipam(R"({"type":"host-local","subnet":"10.5.0.0/16","gateway":"10.5.0.1"})", "0.4.0"));
  ASSERT_TRUE(c.ok()) << c.error();
  ASSERT_EQ(c->ipam.ranges.size(), 1u);
  EXPECT_EQ(c->ipam.ranges[0][0].subnet.str(), "10.5.0.0/16");
}

TEST(CniConfig, MalformedJsonIsDecodeFailure) {
  auto c = parse_netconf(R"({"cniVersion":"1.1.0", "name": )");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().error_number(), kDecodeFailure);
}

TEST(CniConfig, InvalidSubnetIsInvalidConfig) {
  for (const char* subnet : {"10.22.0.0/33", "banana", "10.22.0.0", "10.22.0.0/31"}) {
    auto c = parse_netconf(conf_with_ipam(std::string(R"({"ranges":[[{"subnet":")") + subnet + R"("}]]})"));
    ASSERT_FALSE(c.ok()) << subnet;
    EXPECT_EQ(c.status().error_number(), kInvalidConfig) << subnet;
    EXPECT_NE(c.error().find("subnet"), std::string::npos) << c.error();
  }
}

TEST(CniConfig, RangeOutsideSubnetOrOverBroadcastIsInvalid) {
  auto outside = parse_netconf(conf_with_ipam(R"({"ranges":[[{"subnet":"10.0.0.0/24","rangeStart":"10.0.1.5"}]]})"));
  ASSERT_FALSE(outside.ok());
  EXPECT_EQ(outside.status().error_number(), kInvalidConfig);
  auto bcast = parse_netconf(conf_with_ipam(R"({"ranges":[[{"subnet":"10.0.0.0/24","rangeEnd":"10.0.0.255"}]]})"));
  ASSERT_FALSE(bcast.ok());
  auto reversed = parse_netconf(
      conf_with_ipam(R"({"ranges":[[{"subnet":"10.0.0.0/24","rangeStart":"10.0.0.9","rangeEnd":"10.0.0.5"}]]})"));
  ASSERT_FALSE(reversed.ok());
}

TEST(CniConfig, UnsupportedVersionIsIncompatible) {
  auto c = parse_netconf(conf_with_ipam(R"({"ranges":[[{"subnet":"10.0.0.0/24"}]]})", "2.0.0"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().error_number(), kIncompatibleVersion);
}

TEST(CniConfig, MissingNameOrIpamIsInvalid) {
  auto c = parse_netconf(R"({"cniVersion":"1.1.0","type":"knode-cni","ipam":{"ranges":[[{"subnet":"10.0.0.0/24"}]]}})");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().error_number(), kInvalidConfig);
  auto no_ipam = parse_netconf(R"({"cniVersion":"1.1.0","name":"n","type":"knode-cni"})");
  ASSERT_FALSE(no_ipam.ok());
  EXPECT_EQ(no_ipam.status().error_number(), kInvalidConfig);
  auto other_ipam = parse_netconf(conf_with_ipam(R"({"type":"dhcp"})"));
  ASSERT_FALSE(other_ipam.ok());
  EXPECT_EQ(other_ipam.status().error_number(), kInvalidConfig);
}

TEST(CniConfig, WrongFieldTypeIsInvalid) {
  auto c = parse_netconf(R"({"cniVersion":"1.1.0","name":"n","type":"knode-cni","ipMasq":"yes",
    "ipam":{"ranges":[[{"subnet":"10.0.0.0/24"}]]}})");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().error_number(), kInvalidConfig);
  EXPECT_NE(c.error().find("ipMasq"), std::string::npos);
}

TEST(CniConfig, ReadsPortMappingsAndValidAttachments) {
  auto c = parse_netconf(R"({"cniVersion":"1.1.0","name":"n","type":"knode-cni",
    "ipam":{"ranges":[[{"subnet":"10.0.0.0/24"}]]},
    "runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"TCP"},
                                     {"hostPort":53,"containerPort":5353,"protocol":"udp","hostIP":"192.168.1.1"}]},
    "cni.dev/valid-attachments":[{"containerID":"a","ifname":"eth0"}]})");
  ASSERT_TRUE(c.ok()) << c.error();
  ASSERT_EQ(c->port_mappings.size(), 2u);
  EXPECT_EQ(c->port_mappings[0].protocol, "tcp");
  EXPECT_EQ(c->port_mappings[1].host_ip->str(), "192.168.1.1");
  ASSERT_TRUE(c->valid_attachments);
  EXPECT_EQ((*c->valid_attachments)[0], (Attachment{"a", "eth0"}));
  auto bad_port = parse_netconf(R"({"cniVersion":"1.1.0","name":"n","type":"knode-cni",
    "ipam":{"ranges":[[{"subnet":"10.0.0.0/24"}]]},"runtimeConfig":{"portMappings":[{"hostPort":0,"containerPort":80}]}})");
  ASSERT_FALSE(bad_port.ok());
  EXPECT_EQ(bad_port.status().error_number(), kInvalidConfig);
}

// containerd (go-cni) writes its port mappings with Go's field names, no JSON tags; Go
// plugins read them because encoding/json ignores case. An exact name still wins.
TEST(CniConfig, PortMappingsAsContainerdSendsThem) {
  auto c = parse_netconf(R"({"cniVersion":"1.1.0","name":"n","type":"knode-cni",
    "ipam":{"ranges":[[{"subnet":"10.0.0.0/24"}]]},
    "runtimeConfig":{"portMappings":[{"HostPort":21017,"ContainerPort":8080,"Protocol":"tcp","HostIP":""},
                                     {"hostPort":53,"HOSTPORT":1,"containerPort":53,"Protocol":"udp"}]}})");
  ASSERT_TRUE(c.ok()) << c.error();
  ASSERT_EQ(c->port_mappings.size(), 2u);
  EXPECT_EQ(c->port_mappings[0].host_port, 21017);
  EXPECT_EQ(c->port_mappings[0].container_port, 8080);
  EXPECT_EQ(c->port_mappings[0].protocol, "tcp");
  EXPECT_FALSE(c->port_mappings[0].host_ip.has_value());
  EXPECT_EQ(c->port_mappings[1].host_port, 53);
  EXPECT_EQ(c->port_mappings[1].protocol, "udp");
}

}  // namespace
}  // namespace knode::cni
