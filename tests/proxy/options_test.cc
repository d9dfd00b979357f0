// The proxy's configuration turned into what the modes program: every value knode cannot
// use is an error naming the flag, never dropped.
#include "options.h"

#include <gtest/gtest.h>

namespace knode::proxy {
namespace {

net::IPAddress ip(const char* s) { return *net::IPAddress::Parse(s); }

class StubHost final : public Host {
 public:
  std::vector<net::IPAddress> local_ipv4_addresses(const std::string&) override { return {}; }
  std::set<net::IPAddress> default_route_ipv4_addresses() override { return default_route; }
  bool has_sysctl(const std::string&) override { return true; }
  Status ensure_sysctl(const std::string&, const std::string&) override { return Status::Ok(); }
  std::set<net::IPAddress> default_route;
};

TEST(ProxyOptions, FlagsBecomeTheModesConfiguration) {
  config::ProxyConfig c;
  c.mode = "ipvs";
  c.cluster_cidr = "10.244.0.0/16";
  c.node_port_addresses = {"192.168.0.0/16"};
  c.ipvs.scheduler = "wrr";
  c.ipvs.exclude_cidrs = {"fd00::/64", "10.99.0.0/16"};
  c.bind_address = "192.168.1.10";
  StubHost host;
  auto o = proxy_options(c, host);
  ASSERT_TRUE(o.ok()) << o.error();
  EXPECT_EQ(o->mode, "ipvs");
  EXPECT_EQ(o->ipvs.scheduler, "wrr");
  ASSERT_EQ(o->iptables.cluster_cidrs.size(), 1u);
  EXPECT_EQ(o->iptables.cluster_cidrs[0].str(), "10.244.0.0/16");
  EXPECT_EQ(o->ipvs.cluster_cidrs, o->iptables.cluster_cidrs);
  ASSERT_EQ(o->ipvs.node_port_addresses.size(), 1u);
  EXPECT_EQ(o->ipvs.node_port_addresses[0].str(), "192.168.0.0/16");
  EXPECT_EQ(o->ipvs.exclude_cidrs.size(), 2u);  // either family: they only keep knode off
  EXPECT_EQ(o->ipvs.node_ip, ip("192.168.1.10"));
  EXPECT_EQ(o->sync_period, std::chrono::seconds(30));
}

TEST(ProxyOptions, NftablesModeSharesTheIptablesSettings) {
  config::ProxyConfig c;
  c.mode = "nftables";
  c.cluster_cidr = "10.244.0.0/16";
  c.node_port_addresses = {"192.168.0.0/16"};
  c.iptables.masquerade_bit = 15;
  c.iptables.masquerade_all = true;
  c.iptables.sync_period = api::Duration::Seconds(45);
  c.bind_address = "192.168.1.10";
  StubHost host;
  auto o = proxy_options(c, host);
  ASSERT_TRUE(o.ok()) << o.error();
  EXPECT_EQ(o->mode, "nftables");
  EXPECT_EQ(o->sync_period, std::chrono::seconds(45));
  EXPECT_EQ(o->nftables.cluster_cidrs, o->iptables.cluster_cidrs);
  EXPECT_EQ(o->nftables.masquerade_bit, 15);
  EXPECT_TRUE(o->nftables.masquerade_all);
  ASSERT_EQ(o->nftables.node_port_addresses.size(), 1u);
  EXPECT_EQ(o->nftables.node_port_addresses[0].str(), "192.168.0.0/16");
  EXPECT_EQ(o->nftables.node_ip, ip("192.168.1.10"));
}

TEST(ProxyOptions, Ipv6IsAnErrorNamingTheFlag) {
  StubHost host;
  config::ProxyConfig cluster;
  cluster.cluster_cidr = "10.244.0.0/16,fd00:10:244::/56";
  auto o = proxy_options(cluster, host);
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(o.error(), "invalid value for --cluster-cidr: \"fd00:10:244::/56\" is IPv6, and knode's proxy programs "
                       "IPv4 only");
  config::ProxyConfig node_ports;
  node_ports.node_port_addresses = {"::/0"};
  o = proxy_options(node_ports, host);
  ASSERT_FALSE(o.ok());
  EXPECT_NE(o.error().find("--nodeport-addresses"), std::string::npos) << o.error();
  config::ProxyConfig bind;
  bind.bind_address = "fd00::1";
  o = proxy_options(bind, host);
  ASSERT_FALSE(o.ok());
  EXPECT_NE(o.error().find("--bind-address"), std::string::npos) << o.error();
  bind.bind_address = "::";  // unspecified: no node IP, as 0.0.0.0
  EXPECT_TRUE(proxy_options(bind, host).ok());
}

TEST(ProxyOptions, UnknownSchedulerIsAnError) {
  StubHost host;
  config::ProxyConfig c;
  c.ipvs.scheduler = "fastest";
  auto o = proxy_options(c, host);
  ASSERT_FALSE(o.ok());
  EXPECT_NE(o.error().find("--ipvs-scheduler: \"fastest\""), std::string::npos) << o.error();
  for (const char* s : {"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh"}) {
    c.ipvs.scheduler = s;
    EXPECT_TRUE(proxy_options(c, host).ok()) << s;
  }
}

TEST(ProxyOptions, PrimaryNodePortAddressesAreTheNodesIps) {
  StubHost host;
  host.default_route = {ip("172.16.0.5")};
  config::ProxyConfig c;
  c.node_port_addresses = {"primary"};
  auto o = proxy_options(c, host);
  ASSERT_TRUE(o.ok()) << o.error();
  ASSERT_EQ(o->iptables.node_port_addresses.size(), 1u);
  EXPECT_EQ(o->iptables.node_port_addresses[0].str(), "172.16.0.5/32");
  c.bind_address = "192.168.1.10";  // --bind-address wins over the default route
  o = proxy_options(c, host);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->ipvs.node_port_addresses[0].str(), "192.168.1.10/32");
  // Neither known: an error rather than NodePorts on every address.
  host.default_route.clear();
  c.bind_address = "0.0.0.0";
  o = proxy_options(c, host);
  ASSERT_FALSE(o.ok());
  EXPECT_NE(o.error().find("primary"), std::string::npos) << o.error();
}

}  // namespace
}  // namespace knode::proxy
