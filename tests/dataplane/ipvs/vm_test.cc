// The netlink IPVS client against a real ip_vs kernel. Runs inside the VM
// (tests/vm/CMakeLists.txt boots it with scripts/vm/run.sh); ipvsadm is the referee.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "knode/dataplane/ipvs_detect.h"
#include "knode/dataplane/ipvs.h"
#include "support/ipvs_vm_fixture.h"
#include "support/vm_util.h"

namespace knode::ipvs {
namespace {

using vmtest::ipvsadm_table;
using vmtest::shell;
using namespace vmtest::ipvs_fixture;

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
  add(svc("10.96.0.1", 443, net::Protocol::kTCP, "rr"),
      {dest("10.244.1.2", 8443, 1), dest("10.244.2.3", 8443, 1)});
  add(svc("10.96.0.10", 53, net::Protocol::kUDP, "wrr"),
      {dest("10.244.1.5", 53, 3), dest("10.244.2.6", 53, 1)});
  add(svc("10.96.0.20", 80, net::Protocol::kTCP, "sh", kFlagShFallback | kFlagShPort), {});
  add(svc("10.96.0.30", 8080, net::Protocol::kTCP, "rr", kFlagPersistent, 10800),
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
  EXPECT_TRUE(by_name["10.96.0.1:443/TCP"].same_config(svc("10.96.0.1", 443, net::Protocol::kTCP, "rr")));
  EXPECT_TRUE(by_name["10.96.0.20:80/TCP"].same_config(
      svc("10.96.0.20", 80, net::Protocol::kTCP, "sh", kFlagShFallback | kFlagShPort)));
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
  add(svc("10.96.0.1", 443, net::Protocol::kTCP, "wlc"), {});
  auto got = ipvs_->get_service(svc("10.96.0.1", 443, net::Protocol::kTCP, ""));
  ASSERT_TRUE(got.ok()) << got.error();
  EXPECT_EQ(got->scheduler, "wlc");
  auto missing = ipvs_->get_service(svc("10.96.0.2", 443, net::Protocol::kTCP, ""));
  EXPECT_FALSE(missing.ok());
}

TEST_F(IpvsVm, UpdateWeightAndService) {
  auto vs = svc("10.96.0.1", 80, net::Protocol::kTCP, "rr");
  add(vs, {dest("10.244.1.2", 8080, 1), dest("10.244.1.3", 8080, 1)});

  Status st = ipvs_->update_destination(vs, dest("10.244.1.2", 8080, 5));
  ASSERT_TRUE(st.ok()) << st.message();
  auto set_persistent = svc("10.96.0.1", 80, net::Protocol::kTCP, "wlc", kFlagPersistent, 60);
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
  auto a = svc("10.96.0.1", 80, net::Protocol::kTCP, "rr");
  auto b = svc("10.96.0.2", 80, net::Protocol::kTCP, "rr");
  add(a, {dest("10.244.1.2", 8080, 1), dest("10.244.1.3", 8080, 1)});
  add(b, {dest("10.244.1.4", 8080, 1)});

  ASSERT_TRUE(ipvs_->delete_destination(a, dest("10.244.1.2", 8080, 0)).ok());
  ASSERT_TRUE(ipvs_->delete_service(b).ok());
  vmtest::IpvsadmTable want = {{"TCP 10.96.0.1:80 rr", {"10.244.1.3:8080 Masq 1 0 0"}}};
  EXPECT_EQ(ipvsadm_table(), want) << shell("ipvsadm -Ln");
}

TEST_F(IpvsVm, ErrorsNameTheOperationTheObjectAndTheKernelsAnswer) {
  auto vs = svc("10.96.0.1", 443, net::Protocol::kTCP, "rr");
  add(vs, {dest("10.244.1.2", 8443, 1)});

  Status st = ipvs_->add_service(vs);
  EXPECT_EQ(st.error_number(), EEXIST);
  EXPECT_EQ(st.message(), "add IPVS service 10.96.0.1:443/TCP: File exists");

  st = ipvs_->add_destination(vs, dest("10.244.1.2", 8443, 1));
  EXPECT_EQ(st.error_number(), EEXIST);
  EXPECT_EQ(st.message(),
            "add IPVS destination 10.244.1.2:8443 to 10.96.0.1:443/TCP: File exists");

  st = ipvs_->delete_service(svc("10.96.0.99", 443, net::Protocol::kTCP, "rr"));
  EXPECT_EQ(st.error_number(), ESRCH) << st.message();

  st = ipvs_->delete_destination(vs, dest("10.244.9.9", 1, 1));
  EXPECT_EQ(st.error_number(), ENOENT) << st.message();

  st = ipvs_->add_service(svc("10.96.0.2", 443, net::Protocol::kTCP, "nosuch"));
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
  auto vs = svc("fd00:96::1", 80, net::Protocol::kTCP, "rr");
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
  add(svc("10.96.0.1", 80, net::Protocol::kTCP, "rr"), {dest("10.244.1.2", 80, 1)});
  add(svc("10.96.0.1", 80, net::Protocol::kUDP, "rr"), {});
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

}  // namespace
}  // namespace knode::ipvs

// The `-m ipvs` match (KUBE-IPVS-OUT-FILTER) needs xt_ipvs, which only a kernel with IPVS
// has: knode's bytes and iptables-legacy's must be the same, and print the same.
#include "knode/dataplane/iptables/rule.h"
#include "knode/dataplane/iptables/table.h"

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
