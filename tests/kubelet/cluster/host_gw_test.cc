#include "cluster/host_gw.h"

#include <gtest/gtest.h>

namespace knode::kubelet {
namespace {

api::Node node(const std::string& name, const std::string& cidr, const std::string& ip) {
  api::Node n;
  n.metadata.name = name;
  n.spec.pod_cidr = cidr;
  if (!ip.empty()) n.status.addresses.push_back({"InternalIP", ip});
  n.status.addresses.push_back({"Hostname", name});
  return n;
}

link::Route route(const std::string& dst, const std::string& via) {
  link::Route r;
  r.dst = *net::Cidr::Parse(dst);
  if (!via.empty()) r.gateway = *net::IPAddress::Parse(via);
  return r;
}

const net::Cidr kCluster = *net::Cidr::Parse("10.244.0.0/16");

TEST(HostGwTest, EveryOtherNodeWithACidrAndAnInternalIp) {
  auto want = desired_node_routes("n1",
                                  {node("n1", "10.244.0.0/24", "192.168.77.11"), node("n3", "10.244.2.0/24", "192.168.77.13"),
                                   node("n2", "10.244.1.0/24", "192.168.77.12"), node("n4", "", "192.168.77.14"),
                                   node("n5", "10.244.5.0/24", ""), node("n6", "10.99.0.0/24", "192.168.77.16")},
                                  kCluster);
  ASSERT_EQ(want.size(), 2u);  // not itself, not without CIDR or IP, not outside the cluster CIDR
  EXPECT_EQ(want[0].node, "n2");
  EXPECT_EQ(want[0].via.str(), "192.168.77.12");
  EXPECT_EQ(want[1].node, "n3");
}

TEST(HostGwTest, DiffTouchesOnlyGatewayRoutesInsideTheClusterCidr) {
  std::vector<link::Route> current = {
      route("0.0.0.0/0", "192.168.77.1"),        // default: not ours
      route("192.168.77.0/24", ""),              // link route: not ours
      route("10.244.0.0/24", ""),                // our own bridge's: not ours
      route("10.244.1.0/24", "192.168.77.12"),   // wanted, present
      route("10.244.9.0/24", "192.168.77.19"),   // a node that left: removed
      route("10.50.0.0/16", "192.168.77.30"),    // outside the cluster CIDR: not ours
  };
  std::vector<NodeRoute> want = {{"n2", *net::Cidr::Parse("10.244.1.0/24"), *net::IPAddress::Parse("192.168.77.12")},
                                 {"n3", *net::Cidr::Parse("10.244.2.0/24"), *net::IPAddress::Parse("192.168.77.13")}};
  auto d = diff_node_routes(current, want, kCluster, net::Cidr::Parse("10.244.0.0/24"));
  ASSERT_EQ(d.add.size(), 1u);
  EXPECT_EQ(d.add[0], route("10.244.2.0/24", "192.168.77.13"));
  ASSERT_EQ(d.remove.size(), 1u);
  EXPECT_EQ(d.remove[0], route("10.244.9.0/24", "192.168.77.19"));
}

TEST(HostGwTest, ANodeThatMovedGetsItsRouteReplaced) {
  std::vector<link::Route> current = {route("10.244.1.0/24", "192.168.77.12")};
  std::vector<NodeRoute> want = {{"n2", *net::Cidr::Parse("10.244.1.0/24"), *net::IPAddress::Parse("192.168.77.22")}};
  auto d = diff_node_routes(current, want, kCluster, std::nullopt);
  ASSERT_EQ(d.add.size(), 1u);
  ASSERT_EQ(d.remove.size(), 1u);
  EXPECT_EQ(d.remove[0].gateway.str(), "192.168.77.12");
  EXPECT_EQ(d.add[0].gateway.str(), "192.168.77.22");
}

}  // namespace
}  // namespace knode::kubelet
