// Shared by the VM tests of the IPVS client and of IPVS mode: building virtual and real
// servers, a fixture with an empty IPVS table, and the packet topology of
// netns_topology.sh (a client netns, two backends answering their names).
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "knode/dataplane/ipvs.h"
#include "support/vm_util.h"

namespace knode::vmtest::ipvs_fixture {

using ipvs::IpvsPtr;
using ipvs::RealServer;
using ipvs::VirtualServer;

inline net::IPAddress ip(const char* s) { return *net::IPAddress::Parse(s); }

inline VirtualServer svc(const char* addr, uint16_t port, net::Protocol proto, const char* sched,
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

inline RealServer dest(const char* addr, uint16_t port, uint32_t weight) {
  RealServer rs;
  rs.address = ip(addr);
  rs.port = port;
  rs.weight = weight;
  return rs;
}

class IpvsVm : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = ipvs::open_netlink_ipvs();
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

// Real packets: two backends answering their names, a wrr 3:1 service, a client
// namespace making connections through the node.
// Brings the topology of netns_topology.sh up once per test binary.
inline void topology_up() {
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
  VirtualServer vs_ = svc("10.96.0.100", 80, net::Protocol::kTCP, "wrr");
};


}  // namespace knode::vmtest::ipvs_fixture
