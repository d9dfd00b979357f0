// IPVS mode's virtual servers and VIPs on the VM's real kernel: what they program as
// ipvsadm shows it, real traffic through them, a leaving endpoint drained while its
// connection is open, incremental syncs at 1,000 services, and kube-ipvs0.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <sstream>

#include "ipvs/harness.h"
#include "ipvs/vips.h"
#include "support/ipvs_vm_fixture.h"
#include "support/vm_util.h"

namespace knode::ipvs_proxy {
namespace {

using vmtest::ipvsadm_table;
using vmtest::shell;
using namespace vmtest::ipvs_fixture;

class VirtualServersVm : public IpvsPackets {
 protected:
  static proxy::Endpoint be(const char* addr, uint16_t port, uint32_t weight = 1) {
    proxy::Endpoint b;
    b.ip = ip(addr);
    b.port = port;
    b.weight = weight;
    return b;
  }
  testing::HarnessConfig config() {
    testing::HarnessConfig c;
    c.desired.node_addresses = {ip("10.0.0.1")};
    c.graceful_termination_bound = std::chrono::seconds(3);
    return c;
  }
  std::string fetch(const char* addr, int port) {
    return vmtest::squeeze(shell("/sbin/ip netns exec client nc -w 5 " + std::string(addr) + " " +
                                 std::to_string(port) + " </dev/null 2>&1"));
  }
};

TEST_F(VirtualServersVm, ClusterIpAndNodePortAsIpvsadmShowsThem) {
  proxy::ServicePort sp;
  sp.name = "default/web:http";
  sp.cluster_ip = ip("10.96.0.100");
  sp.port = 80;
  sp.node_port = 30080;
  sp.cluster_endpoints = {be("10.0.1.2", 8080, 3), be("10.0.2.2", 8080, 1)};
  auto cfg = config();
  cfg.desired.scheduler = "wrr";
  testing::VirtualServerHarness backend(*ipvs_, cfg);
  SyncStats stats;
  Status st = backend.sync({{sp}}, {}, true, &stats);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(stats.changes, 6u);

  vmtest::IpvsadmTable want = {
      {"TCP 10.96.0.100:80 wrr", {"10.0.1.2:8080 Masq 3", "10.0.2.2:8080 Masq 1"}},
      {"TCP 10.0.0.1:30080 wrr", {"10.0.1.2:8080 Masq 3", "10.0.2.2:8080 Masq 1"}},
  };
  EXPECT_EQ(vmtest::ipvsadm_config(), want) << shell("ipvsadm -Ln");
  EXPECT_EQ(fetch("10.96.0.100", 80).substr(0, 2), "be");
  EXPECT_EQ(fetch("10.0.0.1", 30080).substr(0, 2), "be");

  // Nothing changed: nothing written.
  ASSERT_TRUE(backend.sync({{sp}}, {}, true, &stats).ok());
  EXPECT_EQ(stats.changes, 0u);
  ASSERT_TRUE(backend.cleanup().ok());
  EXPECT_TRUE(ipvsadm_table().empty()) << shell("ipvsadm -Ln");
}

TEST_F(VirtualServersVm, LeavingBackendIsDrainedWhileItsConnectionLasts) {
  proxy::ServicePort sp;
  sp.name = "default/slow";
  sp.cluster_ip = ip("10.96.0.100");
  sp.port = 81;
  sp.cluster_endpoints = {be("10.0.2.2", 8081)};
  testing::VirtualServerHarness backend(*ipvs_, config());
  ASSERT_TRUE(backend.sync({{sp}}, {}, true, nullptr).ok());

  // A connection to be2 that answers after 3 s.
  shell("rm -f /tmp/slow.out; (/sbin/ip netns exec client nc -w 10 10.96.0.100 81 </dev/null "
        ">/tmp/slow.out 2>&1 &)");
  usleep(500 * 1000);
  sp.cluster_endpoints = {be("10.0.1.2", 8081)};
  ASSERT_TRUE(backend.sync({{sp}}, {sp.name}, false, nullptr).ok());
  vmtest::IpvsadmTable draining = {
      {"TCP 10.96.0.100:81 rr", {"10.0.1.2:8081 Masq 1", "10.0.2.2:8081 Masq 0"}}};
  EXPECT_EQ(vmtest::ipvsadm_config(), draining) << shell("ipvsadm -Ln");
  EXPECT_EQ(backend.draining(), 1u);
  // The open connection is counted (inactive once the client half-closed).
  auto dests = ipvs_->list_destinations(VirtualServer{ip("10.96.0.100"), 81});
  ASSERT_TRUE(dests.ok());
  for (const auto& d : *dests) {
    if (d.address == ip("10.0.2.2")) {
      EXPECT_GE(d.active_connections + d.inactive_connections, 1u);
    }
  }

  // The established connection still gets its answer from be2.
  for (int i = 0; i < 60 && shell("cat /tmp/slow.out").empty(); ++i) usleep(100 * 1000);
  EXPECT_EQ(vmtest::squeeze(shell("cat /tmp/slow.out")), "be2");

  // Closed connections linger in TIME_WAIT (inactive); the bound (3 s here) ends it.
  sleep(3);
  ASSERT_TRUE(backend.sync({{sp}}, {}, false, nullptr).ok());
  vmtest::IpvsadmTable after = {{"TCP 10.96.0.100:81 rr", {"10.0.1.2:8081 Masq 1"}}};
  EXPECT_EQ(vmtest::ipvsadm_config(), after) << shell("ipvsadm -Ln");
  EXPECT_EQ(backend.draining(), 0u);
}

// 1,000 services x 10 endpoints: a full sync writes each object once, one endpoint change
// is one kernel change, and a full resync with nothing to do changes nothing. (Timing
// against ipvsadm -R is bench/run_ipvs_bench.sh's job: it needs a fresh kernel per run,
// because deleted real servers linger in IPVS's trash and slow later adds.)
TEST_F(IpvsVm, ThousandServicesSyncIncrementally) {
  constexpr int kServices = 1000, kEndpoints = 10;
  proxy::ProxyState state;
  for (int i = 0; i < kServices; ++i) {
    proxy::ServicePort sp;
    sp.name = "ns/svc-" + std::to_string(i);
    sp.cluster_ip = net::IPAddress::V4(0x0a600000u + uint32_t(i));
    sp.port = 80;
    for (int e = 0; e < kEndpoints; ++e) {
      proxy::Endpoint b;
      b.ip = net::IPAddress::V4(0x0af40000u + uint32_t(i * kEndpoints + e));
      b.port = 8080;
      sp.cluster_endpoints.push_back(b);
    }
    state.services.push_back(std::move(sp));
  }
  std::sort(state.services.begin(), state.services.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });

  testing::VirtualServerHarness backend(*ipvs_, testing::HarnessConfig{});
  SyncStats stats;
  Status st = backend.sync(state, {}, true, &stats);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(stats.changes, size_t(kServices * (1 + kEndpoints)));
  EXPECT_EQ(ipvs_->list_services()->size(), size_t(kServices));

  state.services[500].cluster_endpoints[3].weight = 2;
  st = backend.sync(state, {state.services[500].name}, false, &stats);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(stats.changes, 1u);

  st = backend.sync(state, {}, true, &stats);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(stats.changes, 0u);
  ASSERT_TRUE(ipvs_->flush().ok());
}

TEST_F(VirtualServersVm, VipsAreBoundToKubeIpvs0) {
  proxy::ServicePort a;
  a.name = "default/a";
  a.cluster_ip = ip("10.96.0.200");
  a.port = 80;
  a.cluster_endpoints = {be("10.0.1.2", 8080)};
  proxy::ServicePort b = a;
  b.name = "default/b";
  b.cluster_ip = ip("10.96.0.100");
  b.cluster_endpoints = {be("10.0.2.2", 8080)};
  b.external_ips = {ip("203.0.113.9")};
  shell("/sbin/ip addr add 10.96.0.99/32 dev kube-ipvs0");  // stale: must go
  auto cfg = config();
  cfg.sync_vips = [](const std::set<net::IPAddress>& v) { return sync_vip_interface(kDefaultVipInterface, v); };
  testing::VirtualServerHarness backend(*ipvs_, cfg);
  Status st = backend.sync({{a, b}}, {}, true, nullptr);
  ASSERT_TRUE(st.ok()) << st.message();
  auto addrs = [] {
    std::set<std::string> out;
    for (const auto& l : vmtest::lines(shell("/sbin/ip -4 -o addr show dev kube-ipvs0"))) {
      std::istringstream is(l);
      std::string w, prev;
      while (is >> w) {
        if (prev == "inet") out.insert(w);
        prev = w;
      }
    }
    return out;
  };
  EXPECT_EQ(addrs(), (std::set<std::string>{"10.96.0.100/32", "10.96.0.200/32", "203.0.113.9/32"}));
  EXPECT_EQ(fetch("10.96.0.200", 80), "be1");
  EXPECT_EQ(fetch("203.0.113.9", 80), "be2");

  ASSERT_TRUE(backend.sync({{b}}, {a.name}, false, nullptr).ok());
  EXPECT_EQ(addrs(), (std::set<std::string>{"10.96.0.100/32", "203.0.113.9/32"}));
  ASSERT_TRUE(backend.cleanup().ok());
  EXPECT_NE(shell("/sbin/ip link show kube-ipvs0 2>&1").find("does not exist"), std::string::npos);
  // Put the topology's interface back for whatever runs next.
  shell("/sbin/ip link add kube-ipvs0 type dummy && /sbin/ip link set kube-ipvs0 up && "
        "sh /knode/netns_topology.sh vip 10.96.0.100");
}

}  // namespace
}  // namespace knode::ipvs_proxy
