// The IPVS proxy mode against FakeIpvs (which behaves like the kernel's table).
#include <gtest/gtest.h>

#include "fakes/fake_ipvs.h"
#include "knode/dataplane/ipvs_backend.h"

using namespace knode;

namespace {

net::IPAddress ip(const char* s) { return *net::IPAddress::Parse(s); }

dp::Backend rs_at(const char* addr, uint16_t port) {
  dp::Backend b;
  b.ip = ip(addr);
  b.port = port;
  return b;
}

dp::ServicePort service(const std::string& name, const char* vip, std::vector<dp::Backend> bs) {
  dp::ServicePort sp;
  sp.name = name;
  sp.cluster_ip = ip(vip);
  sp.port = 80;
  sp.cluster_backends = std::move(bs);
  sp.local_backends = sp.cluster_backends;
  sp.has_any_endpoint = !sp.cluster_backends.empty();
  return sp;
}

class IpvsBackendTest : public ::testing::Test {
 protected:
  IpvsBackendTest() {
    auto f = std::make_unique<ipvs::FakeIpvs>();
    fake = f.get();
    IpvsBackendConfig c;
    c.dummy = "";  // no kernel links in unit tests
    c.node_addresses = [] { return std::vector<net::IPAddress>{*net::IPAddress::Parse("192.168.50.1")}; };
    c.exclude_cidrs = {*net::Cidr::Parse("172.30.0.0/16")};
    backend = make_ipvs_backend(std::move(f), c);
  }
  Status sync(const dp::ProxyState& st, std::set<std::string> changed = {}, bool full = false) {
    return backend->sync(st, changed, full, &stats);
  }
  std::vector<ipvs::RealServer> dests(const char* vip, uint16_t port) {
    ipvs::VirtualServer vs;
    vs.address = ip(vip);
    vs.port = port;
    auto r = fake->list_destinations(vs);
    return r.ok() ? *r : std::vector<ipvs::RealServer>{};
  }
  ipvs::FakeIpvs* fake;
  ProxyBackendPtr backend;
  SyncStats stats;
};

}  // namespace

TEST_F(IpvsBackendTest, VirtualServersForClusterIPNodePortAndExternalIPs) {
  auto sp = service("default/kubia:http", "10.96.0.10", {rs_at("10.244.0.11", 8080), rs_at("10.244.0.12", 8080)});
  sp.node_port = 30080;
  sp.external_ips = {ip("192.168.60.5")};
  sp.affinity_timeout_seconds = 600;
  sp.scheduler = dp::Scheduler::kWRR;
  dp::ProxyState st;
  st.services = {sp};
  ASSERT_TRUE(sync(st, {}, true).ok());
  auto list = fake->list_services();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 3u);  // cluster IP, node address:nodePort, external IP
  for (const auto& vs : *list) {
    EXPECT_EQ(vs.scheduler, "wrr");
    EXPECT_TRUE(vs.flags & ipvs::kFlagPersistent);
    EXPECT_EQ(vs.timeout, 600u);
  }
  EXPECT_EQ(dests("10.96.0.10", 80).size(), 2u);
  EXPECT_EQ(dests("192.168.50.1", 30080).size(), 2u);
  EXPECT_EQ(dests("192.168.60.5", 80)[0].forward, ipvs::ForwardMethod::kMasquerade);
  EXPECT_EQ(stats.rules_written, 9u);
}

TEST_F(IpvsBackendTest, SecondSyncChangesNothing) {
  dp::ProxyState st;
  st.services = {service("default/a", "10.96.0.10", {rs_at("10.244.0.11", 8080)})};
  ASSERT_TRUE(sync(st, {}, true).ok());
  int before = fake->calls.mutations();
  ASSERT_TRUE(sync(st, {}, true).ok());
  EXPECT_EQ(fake->calls.mutations(), before);
  EXPECT_EQ(stats.changes, 0u);
}

TEST_F(IpvsBackendTest, PartialSyncTouchesOnlyTheChangedService) {
  dp::ProxyState st;
  st.services = {service("default/a", "10.96.0.10", {rs_at("10.244.0.11", 8080)}),
                 service("default/b", "10.96.0.11", {rs_at("10.244.0.21", 8080)})};
  ASSERT_TRUE(sync(st, {}, true).ok());
  int lists = fake->calls.list_destinations;
  st.services[1].cluster_backends.push_back(rs_at("10.244.0.22", 8080));
  ASSERT_TRUE(sync(st, {"default/b"}).ok());
  EXPECT_EQ(fake->calls.list_destinations - lists, 1);  // only b's virtual server was read
  EXPECT_EQ(dests("10.96.0.11", 80).size(), 2u);
  EXPECT_EQ(stats.changes, 1u);
}

TEST_F(IpvsBackendTest, LeavingRealServerDrainsAtWeightZeroThenGoes) {
  dp::ProxyState st;
  st.services = {service("default/a", "10.96.0.10", {rs_at("10.244.0.11", 8080), rs_at("10.244.0.12", 8080)})};
  ASSERT_TRUE(sync(st, {}, true).ok());
  ipvs::VirtualServer vs;
  vs.address = ip("10.96.0.10");
  vs.port = 80;
  ipvs::RealServer rs;
  rs.address = ip("10.244.0.12");
  rs.port = 8080;
  fake->set_connections(vs, rs, 1, 0);
  st.services[0].cluster_backends.pop_back();
  ASSERT_TRUE(sync(st, {"default/a"}).ok());
  auto d = dests("10.96.0.10", 80);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[1].weight, 0u);  // still there, taking no new connections
  // The next sync (even for another service) finishes the drain once connections closed.
  fake->set_connections(vs, rs, 0, 0);
  ASSERT_TRUE(sync(st, {"default/other"}).ok());
  EXPECT_EQ(dests("10.96.0.10", 80).size(), 1u);
}

TEST_F(IpvsBackendTest, UdpRealServersGoAtOnce) {
  auto sp = service("kube-system/dns:dns", "10.96.0.53", {rs_at("10.244.0.31", 53), rs_at("10.244.0.32", 53)});
  sp.protocol = dp::Protocol::kUDP;
  dp::ProxyState st;
  st.services = {sp};
  ASSERT_TRUE(sync(st, {}, true).ok());
  ipvs::VirtualServer vs;
  vs.address = ip("10.96.0.53");
  vs.port = 80;
  vs.protocol = dp::Protocol::kUDP;
  st.services[0].cluster_backends.pop_back();
  ASSERT_TRUE(sync(st, {"kube-system/dns:dns"}).ok());
  auto r = fake->list_destinations(vs);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 1u);
}

TEST_F(IpvsBackendTest, StaleServicesRemovedExcludedKept) {
  ipvs::VirtualServer stale, kept;
  stale.address = ip("10.96.9.9");
  stale.port = 80;
  kept.address = ip("172.30.0.1");
  kept.port = 443;
  ASSERT_TRUE(fake->add_service(stale).ok());
  ASSERT_TRUE(fake->add_service(kept).ok());
  dp::ProxyState st;
  st.services = {service("default/a", "10.96.0.10", {})};
  ASSERT_TRUE(sync(st, {}, true).ok());
  auto list = fake->list_services();
  ASSERT_EQ(list->size(), 2u);  // ours (no endpoints: no real servers) and the excluded one
  // Deleting the service removes its virtual server.
  ASSERT_TRUE(sync(dp::ProxyState{}, {"default/a"}).ok());
  EXPECT_EQ(fake->list_services()->size(), 1u);
}
