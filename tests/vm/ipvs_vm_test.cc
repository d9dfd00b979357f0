// The netlink IPVS client against a real ip_vs kernel. Runs inside the VM
// (tests/vm/CMakeLists.txt boots it with scripts/vm/run.sh); ipvsadm is the referee.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "ipvs/detect.h"
#include "ipvs/ipvs_backend.h"
#include "ipvs/vip_interface.h"
#include "knode/dataplane/ipvs.h"
#include "vm_util.h"

namespace knode::ipvs {
namespace {

using vmtest::ipvsadm_table;
using vmtest::shell;

net::IPAddress ip(const char* s) { return *net::IPAddress::Parse(s); }

VirtualServer svc(const char* addr, uint16_t port, dp::Protocol proto, const char* sched,
                  uint32_t flags = 0, uint32_t timeout = 0) {
  VirtualServer vs;
  vs.address = ip(addr);
  vs.port = port;
  vs.protocol = proto;
  vs.scheduler = sched;
  vs.flags = flags;
  vs.timeout = timeout;
  return vs;
}

RealServer dest(const char* addr, uint16_t port, uint32_t weight) {
  RealServer rs;
  rs.address = ip(addr);
  rs.port = port;
  rs.weight = weight;
  return rs;
}

class IpvsVm : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = open_netlink_ipvs();
    ASSERT_TRUE(opened.ok()) << opened.error();
    ipvs_ = std::move(*opened);
    ASSERT_TRUE(ipvs_->is_available()) << "this test runs in the VM, with ip_vs loaded";
    ASSERT_TRUE(ipvs_->flush().ok());
  }
  void TearDown() override {
    if (ipvs_) (void)ipvs_->flush();
  }
  void add(const VirtualServer& vs, std::vector<RealServer> dests) {
    Status st = ipvs_->add_service(vs);
    ASSERT_TRUE(st.ok()) << st.message();
    for (const auto& d : dests) {
      st = ipvs_->add_destination(vs, d);
      ASSERT_TRUE(st.ok()) << st.message();
    }
  }
  IpvsPtr ipvs_;
};

TEST(IpvsDetect, VmKernelHasIpvsAndSchedulers) {
  Detection d = detect({});
  EXPECT_TRUE(d.genl_family);
  EXPECT_TRUE(d.proc_ip_vs);
  EXPECT_TRUE(d.available()) << d.summary() << "; " << d.hint();
  EXPECT_TRUE(d.missing.empty());
}

TEST(IpvsDetect, VmKernelReportsAMissingScheduler) {
  DetectOptions o;
  o.schedulers = {"rr", "nosuch"};
  o.try_modprobe = false;
  Detection d = detect(o);
  EXPECT_FALSE(d.available());
  ASSERT_EQ(d.missing.size(), 1u);
  EXPECT_EQ(d.missing[0], "ip_vs_nosuch");
  EXPECT_NE(d.hint().find("modprobe -a ip_vs_nosuch"), std::string::npos) << d.hint();
}

TEST_F(IpvsVm, ServicesAndDestinationsMatchIpvsadm) {
  add(svc("10.96.0.1", 443, dp::Protocol::kTCP, "rr"),
      {dest("10.244.1.2", 8443, 1), dest("10.244.2.3", 8443, 1)});
  add(svc("10.96.0.10", 53, dp::Protocol::kUDP, "wrr"),
      {dest("10.244.1.5", 53, 3), dest("10.244.2.6", 53, 1)});
  add(svc("10.96.0.20", 80, dp::Protocol::kTCP, "sh", kFlagShFallback | kFlagShPort), {});
  add(svc("10.96.0.30", 8080, dp::Protocol::kTCP, "rr", kFlagPersistent, 10800),
      {dest("10.244.3.4", 80, 2)});

  vmtest::IpvsadmTable want = {
      {"TCP 10.96.0.1:443 rr",
       {"10.244.1.2:8443 Masq 1 0 0", "10.244.2.3:8443 Masq 1 0 0"}},
      {"UDP 10.96.0.10:53 wrr", {"10.244.1.5:53 Masq 3 0 0", "10.244.2.6:53 Masq 1 0 0"}},
      {"TCP 10.96.0.20:80 sh (sh-fallback,sh-port)", {}},
      {"TCP 10.96.0.30:8080 rr persistent 10800", {"10.244.3.4:80 Masq 2 0 0"}},
  };
  EXPECT_EQ(ipvsadm_table(), want) << shell("ipvsadm -Ln");

  auto listed = ipvs_->list_services();
  ASSERT_TRUE(listed.ok()) << listed.error();
  ASSERT_EQ(listed->size(), 4u);
  std::map<std::string, VirtualServer> by_name;
  for (const auto& vs : *listed) by_name[vs.str()] = vs;
  EXPECT_TRUE(by_name["10.96.0.1:443/TCP"].same_config(svc("10.96.0.1", 443, dp::Protocol::kTCP, "rr")));
  EXPECT_TRUE(by_name["10.96.0.20:80/TCP"].same_config(
      svc("10.96.0.20", 80, dp::Protocol::kTCP, "sh", kFlagShFallback | kFlagShPort)));
  const auto& persistent = by_name["10.96.0.30:8080/TCP"];
  EXPECT_TRUE(persistent.flags & kFlagPersistent);
  EXPECT_TRUE(persistent.flags & kFlagHashed);
  EXPECT_EQ(persistent.timeout, 10800u);
  EXPECT_EQ(persistent.effective_netmask(), 32);

  auto dests = ipvs_->list_destinations(by_name["10.96.0.10:53/UDP"]);
  ASSERT_TRUE(dests.ok()) << dests.error();
  ASSERT_EQ(dests->size(), 2u);
  std::map<std::string, uint32_t> weights;
  for (const auto& d : *dests) {
    weights[d.str()] = d.weight;
    EXPECT_EQ(d.forward, ForwardMethod::kMasquerade);
  }
  EXPECT_EQ(weights, (std::map<std::string, uint32_t>{{"10.244.1.5:53", 3}, {"10.244.2.6:53", 1}}));
}

TEST_F(IpvsVm, GetServiceReturnsTheKernelsCopy) {
  add(svc("10.96.0.1", 443, dp::Protocol::kTCP, "wlc"), {});
  auto got = ipvs_->get_service(svc("10.96.0.1", 443, dp::Protocol::kTCP, ""));
  ASSERT_TRUE(got.ok()) << got.error();
  EXPECT_EQ(got->scheduler, "wlc");
  auto missing = ipvs_->get_service(svc("10.96.0.2", 443, dp::Protocol::kTCP, ""));
  EXPECT_FALSE(missing.ok());
}

TEST_F(IpvsVm, UpdateWeightAndService) {
  auto vs = svc("10.96.0.1", 80, dp::Protocol::kTCP, "rr");
  add(vs, {dest("10.244.1.2", 8080, 1), dest("10.244.1.3", 8080, 1)});

  Status st = ipvs_->update_destination(vs, dest("10.244.1.2", 8080, 5));
  ASSERT_TRUE(st.ok()) << st.message();
  auto set_persistent = svc("10.96.0.1", 80, dp::Protocol::kTCP, "wlc", kFlagPersistent, 60);
  st = ipvs_->update_service(set_persistent);
  ASSERT_TRUE(st.ok()) << st.message();

  vmtest::IpvsadmTable want = {
      {"TCP 10.96.0.1:80 wlc persistent 60",
       {"10.244.1.2:8080 Masq 5 0 0", "10.244.1.3:8080 Masq 1 0 0"}}};
  EXPECT_EQ(ipvsadm_table(), want) << shell("ipvsadm -Ln");

  // Weight 0 (graceful termination) is a valid weight: no new connections.
  st = ipvs_->update_destination(vs, dest("10.244.1.3", 8080, 0));
  ASSERT_TRUE(st.ok()) << st.message();
  auto dests = ipvs_->list_destinations(vs);
  ASSERT_TRUE(dests.ok());
  for (const auto& d : *dests) {
    EXPECT_EQ(d.weight, d.address == ip("10.244.1.3") ? 0u : 5u) << d;
  }
}

TEST_F(IpvsVm, DeleteDestinationAndService) {
  auto a = svc("10.96.0.1", 80, dp::Protocol::kTCP, "rr");
  auto b = svc("10.96.0.2", 80, dp::Protocol::kTCP, "rr");
  add(a, {dest("10.244.1.2", 8080, 1), dest("10.244.1.3", 8080, 1)});
  add(b, {dest("10.244.1.4", 8080, 1)});

  ASSERT_TRUE(ipvs_->delete_destination(a, dest("10.244.1.2", 8080, 0)).ok());
  ASSERT_TRUE(ipvs_->delete_service(b).ok());
  vmtest::IpvsadmTable want = {{"TCP 10.96.0.1:80 rr", {"10.244.1.3:8080 Masq 1 0 0"}}};
  EXPECT_EQ(ipvsadm_table(), want) << shell("ipvsadm -Ln");
}

TEST_F(IpvsVm, ErrorsNameTheOperationTheObjectAndTheKernelsAnswer) {
  auto vs = svc("10.96.0.1", 443, dp::Protocol::kTCP, "rr");
  add(vs, {dest("10.244.1.2", 8443, 1)});

  Status st = ipvs_->add_service(vs);
  EXPECT_EQ(st.error_number(), EEXIST);
  EXPECT_EQ(st.message(), "add IPVS service 10.96.0.1:443/TCP: File exists");

  st = ipvs_->add_destination(vs, dest("10.244.1.2", 8443, 1));
  EXPECT_EQ(st.error_number(), EEXIST);
  EXPECT_EQ(st.message(),
            "add IPVS destination 10.244.1.2:8443 to 10.96.0.1:443/TCP: File exists");

  st = ipvs_->delete_service(svc("10.96.0.99", 443, dp::Protocol::kTCP, "rr"));
  EXPECT_EQ(st.error_number(), ESRCH) << st.message();

  st = ipvs_->delete_destination(vs, dest("10.244.9.9", 1, 1));
  EXPECT_EQ(st.error_number(), ENOENT) << st.message();

  st = ipvs_->add_service(svc("10.96.0.2", 443, dp::Protocol::kTCP, "nosuch"));
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("add IPVS service 10.96.0.2:443/TCP: "), std::string::npos);
}

TEST_F(IpvsVm, Timeouts) {
  ASSERT_TRUE(ipvs_->set_timeouts({900, 120, 300}).ok());
  auto t = ipvs_->get_timeouts();
  ASSERT_TRUE(t.ok()) << t.error();
  EXPECT_EQ(*t, (Timeouts{900, 120, 300}));
  EXPECT_EQ(vmtest::squeeze(shell("ipvsadm -L --timeout")),
            "Timeout (tcp tcpfin udp): 900 120 300");

  // Zero leaves a timeout unchanged.
  ASSERT_TRUE(ipvs_->set_timeouts({0, 60, 0}).ok());
  t = ipvs_->get_timeouts();
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t, (Timeouts{900, 60, 300}));
}

TEST_F(IpvsVm, Ipv6Service) {
  auto vs = svc("fd00:96::1", 80, dp::Protocol::kTCP, "rr");
  add(vs, {dest("fd00:244::2", 8080, 2)});
  auto listed = ipvs_->list_services();
  ASSERT_TRUE(listed.ok()) << listed.error();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].str(), "[fd00:96::1]:80/TCP");
  EXPECT_EQ((*listed)[0].effective_netmask(), 128);
  auto dests = ipvs_->list_destinations(vs);
  ASSERT_TRUE(dests.ok()) << dests.error();
  ASSERT_EQ(dests->size(), 1u);
  EXPECT_EQ((*dests)[0].str(), "[fd00:244::2]:8080");
  vmtest::IpvsadmTable want = {{"TCP [fd00:96::1]:80 rr", {"[fd00:244::2]:8080 Masq 2 0 0"}}};
  EXPECT_EQ(ipvsadm_table(), want) << shell("ipvsadm -Ln");
}

TEST_F(IpvsVm, FlushRemovesEverything) {
  add(svc("10.96.0.1", 80, dp::Protocol::kTCP, "rr"), {dest("10.244.1.2", 80, 1)});
  add(svc("10.96.0.1", 80, dp::Protocol::kUDP, "rr"), {});
  ASSERT_TRUE(ipvs_->flush().ok());
  auto listed = ipvs_->list_services();
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(listed->empty());
  EXPECT_TRUE(ipvsadm_table().empty()) << shell("ipvsadm -Ln");
}

// A thousand services with two destinations each: correctness of large dumps, and a
// rough timing (TCG: compare ratios, not absolute numbers).
TEST_F(IpvsVm, ThousandServicesRoundTrip) {
  constexpr int kServices = 1000;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kServices; ++i) {
    VirtualServer vs;
    vs.address = net::IPAddress::V4(0x0a600000u + uint32_t(i));  // 10.96.x.y
    vs.port = 80;
    vs.scheduler = "rr";
    ASSERT_TRUE(ipvs_->add_service(vs).ok());
    for (int d = 0; d < 2; ++d) {
      RealServer rs;
      rs.address = net::IPAddress::V4(0x0af40000u + uint32_t(i * 2 + d));
      rs.port = 8080;
      ASSERT_TRUE(ipvs_->add_destination(vs, rs).ok());
    }
  }
  double add_s = vmtest::seconds_since(t0);
  t0 = std::chrono::steady_clock::now();
  auto listed = ipvs_->list_services();
  double list_s = vmtest::seconds_since(t0);
  ASSERT_TRUE(listed.ok()) << listed.error();
  EXPECT_EQ(listed->size(), size_t(kServices));
  t0 = std::chrono::steady_clock::now();
  size_t dests = 0;
  for (const auto& vs : *listed) dests += ipvs_->list_destinations(vs)->size();
  double list_dests_s = vmtest::seconds_since(t0);
  EXPECT_EQ(dests, size_t(kServices * 2));
  t0 = std::chrono::steady_clock::now();
  std::string text = shell("ipvsadm -Ln");
  double ipvsadm_s = vmtest::seconds_since(t0);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 3 + kServices * 3);
  std::printf("KNODE-MEASURE ipvs add %d services + %d dests: %.3f s; list services %.3f s; "
              "list dests %.3f s; ipvsadm -Ln %.3f s\n",
              kServices, kServices * 2, add_s, list_s, list_dests_s, ipvsadm_s);
}

// Real packets: two backends answering their names, a wrr 3:1 service, a client
// namespace making connections through the node.
// Brings the topology of netns_topology.sh up once per test binary.
void topology_up() {
  static int status = -1;
  static std::string out;
  if (status == -1) {
    out = shell("sh /knode/netns_topology.sh up 2 2>&1 && "
                "sh /knode/netns_topology.sh vip 10.96.0.100 2>&1", &status);
  }
  ASSERT_EQ(status, 0) << out;
}

class IpvsPackets : public IpvsVm {
 protected:
  static void SetUpTestSuite() { topology_up(); }
  // Counts "be1"/"be2" answers over n connections from the client netns.
  std::map<std::string, int> connect(int n, const char* src_port_opt = "") {
    std::string cmd = "/sbin/ip netns exec client sh -c 'for i in $(seq " + std::to_string(n) +
                      "); do nc -w 2 " + src_port_opt + " 10.96.0.100 80 </dev/null; done' 2>&1";
    std::map<std::string, int> counts;
    for (const auto& l : vmtest::lines(shell(cmd))) counts[vmtest::squeeze(l)]++;
    return counts;
  }
  VirtualServer vs_ = svc("10.96.0.100", 80, dp::Protocol::kTCP, "wrr");
};

TEST_F(IpvsPackets, WeightedRoundRobinThreeToOne) {
  add(vs_, {dest("10.0.1.2", 8080, 3), dest("10.0.2.2", 8080, 1)});
  constexpr int kConnections = 200;
  auto t0 = std::chrono::steady_clock::now();
  auto counts = connect(kConnections);
  double took = vmtest::seconds_since(t0);
  std::printf("KNODE-MEASURE wrr 3:1 over %d connections: be1=%d be2=%d in %.2f s\n",
              kConnections, counts["be1"], counts["be2"], took);
  EXPECT_EQ(counts["be1"] + counts["be2"], kConnections) << testing::PrintToString(counts);
  // wrr is deterministic: 3:1 exactly, give or take the start of the cycle.
  EXPECT_NEAR(counts["be1"], kConnections * 3 / 4, 4);
  EXPECT_NEAR(counts["be2"], kConnections / 4, 4);

  // The kernel counted them too. Its estimator folds per-CPU counters into what
  // netlink reports every 2 s, so wait for one round.
  auto listed = ipvs_->get_service(vs_);
  for (int i = 0; i < 50 && listed.ok() && listed->stats.connections < kConnections; ++i) {
    usleep(100 * 1000);
    listed = ipvs_->get_service(vs_);
  }
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->stats.connections, uint64_t(kConnections));
  auto dests = ipvs_->list_destinations(vs_);
  ASSERT_TRUE(dests.ok());
  uint64_t total = 0;
  for (const auto& d : *dests) total += d.stats.connections;
  EXPECT_EQ(total, uint64_t(kConnections));
}

TEST_F(IpvsPackets, RoundRobinSpreadsEvenly) {
  vs_.scheduler = "rr";
  add(vs_, {dest("10.0.1.2", 8080, 1), dest("10.0.2.2", 8080, 1)});
  auto counts = connect(40);
  EXPECT_EQ(counts["be1"], 20) << testing::PrintToString(counts);
  EXPECT_EQ(counts["be2"], 20) << testing::PrintToString(counts);
}

TEST_F(IpvsPackets, SourceHashKeepsOneClientOnOneBackend) {
  vs_.scheduler = "sh";
  add(vs_, {dest("10.0.1.2", 8080, 1), dest("10.0.2.2", 8080, 1)});
  auto counts = connect(20);
  EXPECT_EQ(counts.size(), 1u) << testing::PrintToString(counts);
  EXPECT_EQ(counts.begin()->second, 20);
}

TEST_F(IpvsPackets, WeightZeroStopsNewConnections) {
  add(vs_, {dest("10.0.1.2", 8080, 1), dest("10.0.2.2", 8080, 1)});
  ASSERT_TRUE(ipvs_->update_destination(vs_, dest("10.0.2.2", 8080, 0)).ok());
  auto counts = connect(10);
  EXPECT_EQ(counts["be1"], 10) << testing::PrintToString(counts);
  EXPECT_EQ(counts.count("be2"), 0u);
}

// The ProxyBackend on the real kernel: what it programs, real traffic through it, and
// a leaving backend drained while its connection is open.
class IpvsBackendVm : public IpvsPackets {
 protected:
  static dp::Backend be(const char* addr, uint16_t port, uint32_t weight = 1) {
    dp::Backend b;
    b.ip = ip(addr);
    b.port = port;
    b.weight = weight;
    return b;
  }
  IpvsBackendConfig config() {
    IpvsBackendConfig c;
    c.desired.node_addresses = {ip("10.0.0.1")};
    c.graceful_termination_bound = std::chrono::seconds(3);
    return c;
  }
  std::string fetch(const char* addr, int port) {
    return vmtest::squeeze(shell("/sbin/ip netns exec client nc -w 5 " + std::string(addr) + " " +
                                 std::to_string(port) + " </dev/null 2>&1"));
  }
};

TEST_F(IpvsBackendVm, ClusterIpAndNodePortAsIpvsadmShowsThem) {
  dp::ServicePort sp;
  sp.name = "default/web:http";
  sp.cluster_ip = ip("10.96.0.100");
  sp.port = 80;
  sp.node_port = 30080;
  sp.scheduler = dp::Scheduler::kWRR;
  sp.cluster_backends = {be("10.0.1.2", 8080, 3), be("10.0.2.2", 8080, 1)};
  IpvsBackend backend(*ipvs_, config());
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

TEST_F(IpvsBackendVm, LeavingBackendIsDrainedWhileItsConnectionLasts) {
  dp::ServicePort sp;
  sp.name = "default/slow";
  sp.cluster_ip = ip("10.96.0.100");
  sp.port = 81;
  sp.cluster_backends = {be("10.0.2.2", 8081)};
  IpvsBackend backend(*ipvs_, config());
  ASSERT_TRUE(backend.sync({{sp}}, {}, true, nullptr).ok());

  // A connection to be2 that answers after 3 s.
  shell("rm -f /tmp/slow.out; (/sbin/ip netns exec client nc -w 10 10.96.0.100 81 </dev/null "
        ">/tmp/slow.out 2>&1 &)");
  usleep(500 * 1000);
  sp.cluster_backends = {be("10.0.1.2", 8081)};
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
  dp::ProxyState state;
  for (int i = 0; i < kServices; ++i) {
    dp::ServicePort sp;
    sp.name = "ns/svc-" + std::to_string(i);
    sp.cluster_ip = net::IPAddress::V4(0x0a600000u + uint32_t(i));
    sp.port = 80;
    for (int e = 0; e < kEndpoints; ++e) {
      dp::Backend b;
      b.ip = net::IPAddress::V4(0x0af40000u + uint32_t(i * kEndpoints + e));
      b.port = 8080;
      sp.cluster_backends.push_back(b);
    }
    state.services.push_back(std::move(sp));
  }
  std::sort(state.services.begin(), state.services.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });

  IpvsBackend backend(*ipvs_, IpvsBackendConfig{});
  SyncStats stats;
  Status st = backend.sync(state, {}, true, &stats);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(stats.changes, size_t(kServices * (1 + kEndpoints)));
  EXPECT_EQ(ipvs_->list_services()->size(), size_t(kServices));

  state.services[500].cluster_backends[3].weight = 2;
  st = backend.sync(state, {state.services[500].name}, false, &stats);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(stats.changes, 1u);

  st = backend.sync(state, {}, true, &stats);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(stats.changes, 0u);
  ASSERT_TRUE(ipvs_->flush().ok());
}

TEST_F(IpvsBackendVm, VipsAreBoundToKubeIpvs0) {
  dp::ServicePort a;
  a.name = "default/a";
  a.cluster_ip = ip("10.96.0.200");
  a.port = 80;
  a.cluster_backends = {be("10.0.1.2", 8080)};
  dp::ServicePort b = a;
  b.name = "default/b";
  b.cluster_ip = ip("10.96.0.100");
  b.cluster_backends = {be("10.0.2.2", 8080)};
  b.external_ips = {ip("203.0.113.9")};
  shell("/sbin/ip addr add 10.96.0.99/32 dev kube-ipvs0");  // stale: must go
  auto cfg = config();
  cfg.sync_vips = vip_interface_syncer();
  IpvsBackend backend(*ipvs_, cfg);
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
}  // namespace knode::ipvs

// The `-m ipvs` match (KUBE-IPVS-OUT-FILTER) needs xt_ipvs, which only a kernel with IPVS
// has: knode's bytes and iptables-legacy's must be the same, and print the same.
#include "iptables/rule.h"
#include "iptables/table.h"

namespace knode::iptables {
namespace {

TEST(IptablesIpvsMatchVm, SameBytesAndLineAsIptables) {
  using vmtest::shell;
  const std::string args = "-s 192.0.2.10/32 -m ipvs --vproto 6 --vaddr 192.0.2.10 --vport 80 -j DROP";
  shell("iptables-legacy -t filter -N KNODE-T; iptables-legacy -t filter -F KNODE-T");
  int rc = 0;
  shell("iptables-legacy -t filter -A KNODE-T " + args, &rc);
  ASSERT_EQ(rc, 0);
  auto rule = parse_rule(args);
  ASSERT_TRUE(rule.ok()) << rule.error();
  ASSERT_TRUE(rule->validate().ok());
  std::string want;
  for (const auto& l : vmtest::lines(shell("iptables-legacy-save -t filter"))) {
    if (l.rfind("-A KNODE-T ", 0) == 0) want = l;
  }
  EXPECT_EQ(rule->save_string("KNODE-T"), want);
  auto t = Table::open("filter");
  ASSERT_TRUE(t.ok()) << t.error();
  auto rules = t->rules("KNODE-T");
  ASSERT_TRUE(rules.ok()) << rules.error();
  ASSERT_EQ(rules->size(), 1u);
  EXPECT_EQ((*rules)[0], rule->encode());
  shell("iptables-legacy -t filter -F KNODE-T; iptables-legacy -t filter -X KNODE-T");
}

}  // namespace
}  // namespace knode::iptables
