// testing::VirtualServerHarness against FakeIpvs: what it programs for a ProxyState, that a second sync
// changes nothing, that incremental syncs touch only changed services, and draining.
#include <gtest/gtest.h>

#include "fakes/fake_ipvs.h"
#include "ipvs/harness.h"
#include "ipvs/proxier.h"

namespace knode::ipvs_proxy {
namespace {

using namespace knode::ipvs;

using namespace std::chrono_literals;

net::IPAddress ip(const char* s) { return *net::IPAddress::Parse(s); }

proxy::Endpoint backend(const char* addr, uint16_t port, uint32_t weight = 1) {
  proxy::Endpoint b;
  b.ip = ip(addr);
  b.port = port;
  b.weight = weight;
  return b;
}

proxy::ServicePort service(const char* name, const char* cluster_ip, uint16_t port,
                        std::vector<proxy::Endpoint> backends) {
  proxy::ServicePort sp;
  sp.name = name;
  sp.cluster_ip = ip(cluster_ip);
  sp.port = port;
  sp.cluster_endpoints = std::move(backends);
  sp.has_any_endpoint = !sp.cluster_endpoints.empty();
  return sp;
}

VirtualServer key(const char* addr, uint16_t port, net::Protocol p = net::Protocol::kTCP) {
  VirtualServer vs;
  vs.address = ip(addr);
  vs.port = port;
  vs.protocol = p;
  return vs;
}

class VirtualServersTest : public ::testing::Test {
 protected:
  VirtualServersTest() {
    config_.desired.node_addresses = {ip("192.168.1.10"), ip("10.0.0.10")};
    config_.now = [this] { return now_; };
    config_.graceful_termination_bound = 60s;
  }
  testing::VirtualServerHarness& backend_() {
    if (!backend_ptr_) backend_ptr_ = std::make_unique<testing::VirtualServerHarness>(fake_, config_);
    return *backend_ptr_;
  }
  Status sync(const proxy::ProxyState& s, std::set<std::string> changed = {}, bool full = true) {
    return backend_().sync(s, changed, full, &stats_);
  }
  std::vector<RealServer> dests(const char* addr, uint16_t port,
                                net::Protocol p = net::Protocol::kTCP) {
    auto d = fake_.list_destinations(key(addr, port, p));
    return d.ok() ? *d : std::vector<RealServer>{};
  }

  FakeIpvs fake_;
  testing::HarnessConfig config_;
  std::unique_ptr<testing::VirtualServerHarness> backend_ptr_;
  std::chrono::steady_clock::time_point now_{};
  SyncStats stats_;
};

TEST_F(VirtualServersTest, VirtualServersForClusterIpNodePortsExternalAndLoadBalancerIps) {
  auto sp = service("default/web:http", "10.96.0.10", 80,
                    {backend("10.244.1.2", 8080, 3), backend("10.244.2.3", 8080, 1)});
  sp.node_port = 30080;
  sp.external_ips = {ip("203.0.113.5")};
  sp.load_balancer_ips = {ip("198.51.100.7")};
  config_.desired.scheduler = "wrr";
  sp.affinity_timeout_seconds = 10800;
  ASSERT_TRUE(sync({{sp}}).ok());

  auto services = fake_.list_services();
  ASSERT_EQ(services->size(), 5u);  // cluster IP, 2 node addresses, external, LB
  for (const auto* addr : {"10.96.0.10", "203.0.113.5", "198.51.100.7"}) {
    auto vs = fake_.get_service(key(addr, 80));
    ASSERT_TRUE(vs.ok()) << addr;
    EXPECT_EQ(vs->scheduler, "wrr");
    EXPECT_TRUE(vs->flags & kFlagPersistent);
    EXPECT_EQ(vs->timeout, 10800u);
    auto d = dests(addr, 80);
    ASSERT_EQ(d.size(), 2u);
    EXPECT_EQ(d[0].weight, 3u);
    EXPECT_EQ(d[0].forward, ForwardMethod::kMasquerade);
  }
  EXPECT_TRUE(fake_.get_service(key("192.168.1.10", 30080)).ok());
  EXPECT_TRUE(fake_.get_service(key("10.0.0.10", 30080)).ok());
  EXPECT_EQ(stats_.rules_written, 15u);  // 5 services + 10 real servers
  EXPECT_EQ(stats_.changes, 15u);
}

TEST_F(VirtualServersTest, SecondSyncChangesNothing) {
  proxy::ProxyState s{{service("a", "10.96.0.1", 80, {backend("10.244.1.2", 80)})}};
  ASSERT_TRUE(sync(s).ok());
  int before = fake_.calls.mutations();
  ASSERT_TRUE(sync(s).ok());
  EXPECT_EQ(fake_.calls.mutations(), before);
  EXPECT_EQ(stats_.changes, 0u);
}

TEST_F(VirtualServersTest, WeightAndSchedulerChangesAreUpdatesInPlace) {
  auto sp = service("a", "10.96.0.1", 80, {backend("10.244.1.2", 80), backend("10.244.1.3", 80)});
  ASSERT_TRUE(sync({{sp}}).ok());
  sp.cluster_endpoints[1].weight = 5;
  // A restart with another --ipvs-scheduler finds the old virtual servers: they are
  // updated, not recreated.
  config_.desired.scheduler = "lc";
  backend_ptr_.reset();
  fake_.calls = {};
  ASSERT_TRUE(sync({{sp}}).ok());
  EXPECT_EQ(fake_.calls.update_destination, 1);
  EXPECT_EQ(fake_.calls.update_service, 1);
  EXPECT_EQ(fake_.calls.mutations(), 2);
  EXPECT_EQ(fake_.get_service(key("10.96.0.1", 80))->scheduler, "lc");
}

TEST_F(VirtualServersTest, IncrementalSyncLooksOnlyAtChangedServices) {
  proxy::ProxyState s;
  for (int i = 0; i < 50; ++i) {
    std::string name = "svc" + std::to_string(i);
    std::string vip = "10.96.0." + std::to_string(i + 1);
    s.services.push_back(service("", vip.c_str(), 80, {backend("10.244.1.2", 80)}));
    s.services.back().name = name;
  }
  ASSERT_TRUE(sync(s).ok());
  s.services[7].cluster_endpoints.push_back(backend("10.244.9.9", 80));
  fake_.calls = {};
  ASSERT_TRUE(sync(s, {"svc7"}, false).ok());
  EXPECT_EQ(fake_.calls.list_services, 0);
  EXPECT_EQ(fake_.calls.list_destinations, 1);
  EXPECT_EQ(fake_.calls.add_destination, 1);
  EXPECT_EQ(fake_.calls.mutations(), 1);
}

TEST_F(VirtualServersTest, RemovedServiceLosesItsVirtualServers) {
  auto a = service("a", "10.96.0.1", 80, {backend("10.244.1.2", 80)});
  a.node_port = 30001;
  auto b = service("b", "10.96.0.2", 80, {backend("10.244.1.3", 80)});
  ASSERT_TRUE(sync({{a, b}}).ok());
  ASSERT_EQ(fake_.service_count(), 4u);
  ASSERT_TRUE(sync({{b}}, {"a"}, false).ok());
  EXPECT_EQ(fake_.service_count(), 1u);
  EXPECT_TRUE(fake_.get_service(key("10.96.0.2", 80)).ok());
}

TEST_F(VirtualServersTest, LeavingTcpBackendDrainsThenGoes) {
  auto sp = service("a", "10.96.0.1", 80, {backend("10.244.1.2", 80), backend("10.244.1.3", 80)});
  ASSERT_TRUE(sync({{sp}}).ok());
  fake_.set_connections(key("10.96.0.1", 80), RealServer{ip("10.244.1.3"), 80}, 1, 0);
  sp.cluster_endpoints.pop_back();
  ASSERT_TRUE(sync({{sp}}, {"a"}, false).ok());
  auto d = dests("10.96.0.1", 80);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[1].weight, 0u) << "weight 0: no new connections, established ones go on";
  EXPECT_EQ(backend_().draining(), 1u);

  // Still connected: stays, and an unrelated sync does not forget it.
  now_ += 10s;
  ASSERT_TRUE(sync({{sp}}, {}, false).ok());
  EXPECT_EQ(dests("10.96.0.1", 80).size(), 2u);

  // Connections gone: deleted on the next sync, even one for other services.
  fake_.set_connections(key("10.96.0.1", 80), RealServer{ip("10.244.1.3"), 80}, 0, 0);
  ASSERT_TRUE(sync({{sp}}, {}, false).ok());
  EXPECT_EQ(dests("10.96.0.1", 80).size(), 1u);
  EXPECT_EQ(backend_().draining(), 0u);
}

TEST_F(VirtualServersTest, DrainingEndsAtTheBound) {
  auto sp = service("a", "10.96.0.1", 80, {backend("10.244.1.2", 80), backend("10.244.1.3", 80)});
  ASSERT_TRUE(sync({{sp}}).ok());
  fake_.set_connections(key("10.96.0.1", 80), RealServer{ip("10.244.1.3"), 80}, 3, 7);
  sp.cluster_endpoints.pop_back();
  ASSERT_TRUE(sync({{sp}}, {"a"}, false).ok());
  now_ += 59s;
  ASSERT_TRUE(sync({{sp}}, {}, false).ok());
  EXPECT_EQ(dests("10.96.0.1", 80).size(), 2u);
  now_ += 2s;
  ASSERT_TRUE(sync({{sp}}, {}, false).ok());
  EXPECT_EQ(dests("10.96.0.1", 80).size(), 1u);
}

TEST_F(VirtualServersTest, ReturningBackendIsRevived) {
  auto sp = service("a", "10.96.0.1", 80, {backend("10.244.1.2", 80), backend("10.244.1.3", 80)});
  ASSERT_TRUE(sync({{sp}}).ok());
  fake_.set_connections(key("10.96.0.1", 80), RealServer{ip("10.244.1.3"), 80}, 1, 0);
  auto without = sp;
  without.cluster_endpoints.pop_back();
  ASSERT_TRUE(sync({{without}}, {"a"}, false).ok());
  ASSERT_TRUE(sync({{sp}}, {"a"}, false).ok());
  EXPECT_EQ(dests("10.96.0.1", 80)[1].weight, 1u);
  EXPECT_EQ(backend_().draining(), 0u);
}

TEST_F(VirtualServersTest, LeavingUdpBackendGoesAtOnce) {
  auto sp = service("dns", "10.96.0.10", 53, {backend("10.244.1.2", 53), backend("10.244.1.3", 53)});
  sp.protocol = net::Protocol::kUDP;
  ASSERT_TRUE(sync({{sp}}).ok());
  fake_.set_connections(key("10.96.0.10", 53, net::Protocol::kUDP),
                        RealServer{ip("10.244.1.3"), 53}, 0, 4);
  sp.cluster_endpoints.pop_back();
  ASSERT_TRUE(sync({{sp}}, {"dns"}, false).ok());
  EXPECT_EQ(dests("10.96.0.10", 53, net::Protocol::kUDP).size(), 1u);
}

TEST_F(VirtualServersTest, ExcludedCidrsAreNotOurs) {
  config_.exclude_cidrs = {*net::Cidr::Parse("172.30.0.0/16")};
  ASSERT_TRUE(fake_.add_service(key("172.30.0.1", 80)).ok());
  ASSERT_TRUE(fake_.add_service(key("10.96.9.9", 80)).ok());  // stale, ours
  ASSERT_TRUE(sync({{service("a", "10.96.0.1", 80, {})}}).ok());
  EXPECT_TRUE(fake_.get_service(key("172.30.0.1", 80)).ok());
  EXPECT_FALSE(fake_.get_service(key("10.96.9.9", 80)).ok());
  ASSERT_TRUE(backend_().cleanup().ok());
  EXPECT_EQ(fake_.service_count(), 1u);
}

TEST_F(VirtualServersTest, FailuresAreReportedAndTheNextSyncIsFull) {
  fake_.fail_next_add_service = EPERM;
  proxy::ProxyState s{{service("a", "10.96.0.1", 80, {backend("10.244.1.2", 80)}),
                    service("b", "10.96.0.2", 80, {})}};
  Status st = sync(s);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("add IPVS service"), std::string::npos) << st.message();
  EXPECT_EQ(fake_.service_count(), 1u);
  fake_.calls = {};
  ASSERT_TRUE(sync(s, {}, false).ok());
  EXPECT_EQ(fake_.calls.list_services, 1);  // forced full
  EXPECT_EQ(fake_.service_count(), 2u);
}

TEST_F(VirtualServersTest, TimeoutsAndVipsAreApplied) {
  config_.timeouts = {900, 120, 300};
  std::set<net::IPAddress> vips;
  config_.sync_vips = [&](const std::set<net::IPAddress>& v) {
    vips = v;
    return Status::Ok();
  };
  auto sp = service("a", "10.96.0.1", 80, {});
  sp.external_ips = {ip("203.0.113.5")};
  sp.node_port = 30000;
  ASSERT_TRUE(sync({{sp}}).ok());
  EXPECT_EQ(*fake_.get_timeouts(), (Timeouts{900, 120, 300}));
  EXPECT_EQ(vips, (std::set<net::IPAddress>{ip("10.96.0.1"), ip("203.0.113.5")}));
}


TEST_F(VirtualServersTest, PartialSyncsKeepSharedVipsAndCallTheSyncerOnlyOnChange) {
  int calls = 0;
  std::set<net::IPAddress> vips;
  config_.sync_vips = [&](const std::set<net::IPAddress>& v) {
    ++calls;
    vips = v;
    return Status::Ok();
  };
  // Two ports of one service share the cluster IP.
  auto http = service("default/web:http", "10.96.0.10", 80, {backend("10.244.1.5", 8080)});
  auto metrics = service("default/web:metrics", "10.96.0.10", 9090, {backend("10.244.1.5", 9090)});
  ASSERT_TRUE(sync({{http, metrics}}).ok());
  EXPECT_EQ(calls, 1);
  // An endpoint change moves no VIP: the syncer is not called.
  http.cluster_endpoints.push_back(backend("10.244.1.6", 8080));
  ASSERT_TRUE(sync({{http, metrics}}, {"default/web:http"}, false).ok());
  EXPECT_EQ(calls, 1);
  // One port goes: the shared VIP stays, so the syncer is not even called.
  ASSERT_TRUE(sync({{metrics}}, {"default/web:http"}, false).ok());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(vips, (std::set<net::IPAddress>{ip("10.96.0.10")}));
  EXPECT_FALSE(fake_.get_service(key("10.96.0.10", 80)).ok());
  // The service's IP changes: the old VIP goes, the new one comes.
  metrics.cluster_ip = ip("10.96.0.11");
  ASSERT_TRUE(sync({{metrics}}, {"default/web:metrics"}, false).ok());
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(vips, (std::set<net::IPAddress>{ip("10.96.0.11")}));
  EXPECT_TRUE(fake_.get_service(key("10.96.0.11", 9090)).ok());
  EXPECT_FALSE(fake_.get_service(key("10.96.0.10", 9090)).ok());
  // Both gone.
  ASSERT_TRUE(sync({}, {"default/web:metrics"}, false).ok());
  EXPECT_TRUE(vips.empty());
}

TEST_F(VirtualServersTest, AKeyTwoServicesClaimSurvivesTheHolderLettingGo) {
  // a and b both list external IP 203.0.113.5:80; a (first by name) holds it.
  auto a = service("default/a:http", "10.96.0.1", 80, {backend("10.244.1.1", 80)});
  auto b = service("default/b:http", "10.96.0.2", 80, {backend("10.244.2.2", 80)});
  a.external_ips = b.external_ips = {ip("203.0.113.5")};
  ASSERT_TRUE(sync({{a, b}}).ok());
  ASSERT_EQ(dests("203.0.113.5", 80).size(), 1u);
  EXPECT_EQ(dests("203.0.113.5", 80)[0].address, ip("10.244.1.1"));
  // a drops the external IP in a partial sync that names only a: b gets it at once.
  a.external_ips.clear();
  ASSERT_TRUE(sync({{a, b}}, {"default/a:http"}, false).ok());
  ASSERT_EQ(dests("203.0.113.5", 80).size(), 1u);
  EXPECT_EQ(dests("203.0.113.5", 80)[0].address, ip("10.244.2.2"));
}


TEST_F(VirtualServersTest, MaglevHashesSourcePortsLikeKubeProxy) {
  auto sp = service("default/mh:http", "10.96.0.30", 80, {backend("10.244.1.1", 80)});
  config_.desired.scheduler = "mh";
  ASSERT_TRUE(sync({{sp}}).ok());
  auto vs = fake_.get_service(key("10.96.0.30", 80));
  ASSERT_TRUE(vs.ok());
  EXPECT_EQ(vs->scheduler, "mh");
  EXPECT_EQ(vs->flags & kUserFlags, kFlagShPort);  // IP_VS_SVC_F_SCHED_MH_PORT
}


TEST_F(VirtualServersTest, ANewClaimantOfAHeldKeyIsDecidedAsAFullSyncWould) {
  auto a = service("default/a:http", "10.96.0.1", 80, {backend("10.244.1.1", 80)});
  auto b = service("default/b:http", "10.96.0.2", 80, {backend("10.244.2.2", 80)});
  a.external_ips = b.external_ips = {ip("203.0.113.5")};
  ASSERT_TRUE(sync({{b}}).ok());
  ASSERT_EQ(dests("203.0.113.5", 80).size(), 1u);
  EXPECT_EQ(dests("203.0.113.5", 80)[0].address, ip("10.244.2.2"));
  // a (first by name) appears in a partial sync: it gets the key now, as the next full
  // sync would give it anyway.
  ASSERT_TRUE(sync({{a, b}}, {"default/a:http"}, false).ok());
  auto now = dests("203.0.113.5", 80);
  bool a_in = false;
  for (const auto& d : now) a_in |= d.address == ip("10.244.1.1") && d.weight > 0;
  EXPECT_TRUE(a_in);
  // And a full sync agrees: nothing left to change for that key.
  ASSERT_TRUE(sync({{a, b}}).ok());
  EXPECT_EQ(stats_.changes, 0u);
}

}  // namespace
// What IPVS mode left after a switch to another mode: idle virtual servers go at once; a
// busy TCP one stays, its real servers quiescent (weight 0: its connections go on, no new
// one is scheduled), until its connections end or the bound passes; UDP ones go at once;
// services in --ipvs-exclude-cidrs, and any added after the first pass, are never touched.
TEST_F(VirtualServersTest, LeftoversOfAnotherModeDrainWithoutCuttingConnections) {
  auto busy = service("busy", "10.96.0.1", 80, {backend("10.244.1.2", 80, 3), backend("10.244.1.3", 80)});
  auto idle = service("idle", "10.96.0.2", 80, {backend("10.244.1.4", 80)});
  auto dns = service("dns", "10.96.0.3", 53, {backend("10.244.1.5", 53)});
  dns.protocol = net::Protocol::kUDP;
  ASSERT_TRUE(sync({{busy, idle, dns}}).ok());
  VirtualServer theirs = key("172.16.0.1", 443);
  ASSERT_TRUE(fake_.add_service(theirs).ok());
  RealServer first;
  first.address = ip("10.244.1.2");
  first.port = 80;
  fake_.set_connections(key("10.96.0.1", 80), first, 2, 1);
  RealServer resolver;
  resolver.address = ip("10.244.1.5");
  resolver.port = 53;
  fake_.set_connections(key("10.96.0.3", 53, net::Protocol::kUDP), resolver, 0, 4);

  LeftoverDrain drain({*net::Cidr::Parse("172.16.0.0/12")}, std::chrono::seconds(900));
  auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  auto drained = drain.pass(fake_, t0);
  ASSERT_TRUE(drained.error.ok()) << drained.error.message();
  EXPECT_EQ(drained.deleted, 2u);  // idle, and the UDP one despite its entries
  EXPECT_EQ(drained.busy, std::set<net::IPAddress>{ip("10.96.0.1")});
  EXPECT_FALSE(fake_.get_service(key("10.96.0.2", 80)).ok());
  EXPECT_FALSE(fake_.get_service(key("10.96.0.3", 53, net::Protocol::kUDP)).ok());
  ASSERT_TRUE(fake_.get_service(key("10.96.0.1", 80)).ok());
  auto d = dests("10.96.0.1", 80);
  ASSERT_EQ(d.size(), 2u);  // both kept: the idle one costs nothing until the service goes
  for (const auto& rs : d) EXPECT_EQ(rs.weight, 0u) << rs.str();
  EXPECT_TRUE(fake_.get_service(theirs).ok());
  EXPECT_EQ(drain.remaining(), 1u);

  // Someone adds a service of their own meanwhile; again while busy: nothing changes.
  VirtualServer later = key("10.96.0.9", 80);
  ASSERT_TRUE(fake_.add_service(later).ok());
  fake_.calls = {};
  drained = drain.pass(fake_, t0 + std::chrono::seconds(10));
  ASSERT_TRUE(drained.error.ok());
  EXPECT_EQ(drained.deleted, 0u);
  EXPECT_EQ(fake_.calls.mutations(), 0);

  // The last connection ended: the service goes; theirs and the later one stay.
  fake_.set_connections(key("10.96.0.1", 80), first, 0, 0);
  drained = drain.pass(fake_, t0 + std::chrono::seconds(20));
  ASSERT_TRUE(drained.error.ok());
  EXPECT_EQ(drained.deleted, 1u);
  EXPECT_TRUE(drained.busy.empty());
  EXPECT_EQ(drain.remaining(), 0u);
  EXPECT_EQ(fake_.service_count(), 2u);
  EXPECT_TRUE(fake_.get_service(theirs).ok());
  EXPECT_TRUE(fake_.get_service(later).ok());
}

TEST_F(VirtualServersTest, LeftoversStillBusyAfterTheBoundAreDeleted) {
  auto busy = service("busy", "10.96.0.1", 80, {backend("10.244.1.2", 80)});
  ASSERT_TRUE(sync({{busy}}).ok());
  RealServer rs;
  rs.address = ip("10.244.1.2");
  rs.port = 80;
  fake_.set_connections(key("10.96.0.1", 80), rs, 1, 0);
  LeftoverDrain drain({}, std::chrono::seconds(900));
  auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  EXPECT_EQ(drain.pass(fake_, t0).deleted, 0u);
  EXPECT_EQ(drain.pass(fake_, t0 + std::chrono::seconds(899)).deleted, 0u);
  auto last = drain.pass(fake_, t0 + std::chrono::seconds(900));
  EXPECT_EQ(last.deleted, 1u);
  EXPECT_TRUE(last.busy.empty());
  EXPECT_EQ(fake_.service_count(), 0u);
}

}  // namespace knode::ipvs_proxy
