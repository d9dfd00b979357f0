// Deleting conntrack entries in a private netns; entries are made with conntrack -I.
#include <gtest/gtest.h>

#include "knode/dataplane/conntrack.h"
#include "support/netns_util.h"

namespace knode::conntrack {
namespace {

using iptables::testing::run;

net::IPAddress ip(const char* s) { return *net::IPAddress::Parse(s); }

// A UDP flow client:sport -> 10.96.0.10:53 DNATed to endpoint:5353.
void add_flow(const std::string& client, int sport, const std::string& svc, int port,
              const std::string& endpoint) {
  int rc = 0;
  std::string out = run("conntrack -I -p udp -s " + client + " -d " + svc + " --sport " +
                            std::to_string(sport) + " --dport " + std::to_string(port) +
                            " -r " + endpoint + " -q " + client + " --reply-port-src 5353" +
                            " --reply-port-dst " + std::to_string(sport) + " --timeout 300 2>&1",
                        &rc);
  ASSERT_EQ(rc, 0) << out;
}

int count(const std::string& grep) {
  std::string out = run("conntrack -L -p udp 2>/dev/null | grep -c -- '" + grep + "'");
  return std::atoi(out.c_str());
}

class ConntrackDelete : public ::testing::Test {
 protected:
  void SetUp() override {
    KNODE_REQUIRE_NETNS();
    int rc = 0;
    run("conntrack -V >/dev/null 2>&1", &rc);
    if (rc != 0) GTEST_SKIP() << "the conntrack tool is missing";
    run("conntrack -F 2>/dev/null");
    add_flow("10.0.0.1", 1001, "10.96.0.10", 53, "10.244.0.5");
    add_flow("10.0.0.2", 1002, "10.96.0.10", 53, "10.244.0.6");
    add_flow("10.0.0.3", 1003, "10.96.0.10", 54, "10.244.0.5");
    add_flow("10.0.0.4", 1004, "10.96.0.11", 53, "10.244.0.5");
    ASSERT_EQ(count("udp"), 4);
  }
};

TEST_F(ConntrackDelete, ByReplySourceOfOneDestination) {
  auto n = delete_entries({.orig_dst = ip("10.96.0.10"), .reply_src = ip("10.244.0.5")});
  ASSERT_TRUE(n.ok()) << n.error();
  EXPECT_EQ(*n, 2u);
  EXPECT_EQ(count("dst=10.96.0.10"), 1);
  EXPECT_EQ(count("src=10.244.0.6"), 1);
  EXPECT_EQ(count("dst=10.96.0.11"), 1);  // other service untouched
}

TEST_F(ConntrackDelete, ByDestinationPort) {
  auto n = delete_entries({.orig_dst = ip("10.96.0.10"), .orig_dst_port = 54});
  ASSERT_TRUE(n.ok()) << n.error();
  EXPECT_EQ(*n, 1u);
  EXPECT_EQ(count("dport=54"), 0);
  EXPECT_EQ(count("udp"), 3);
}

TEST_F(ConntrackDelete, ByDestination) {
  auto n = delete_entries({.orig_dst = ip("10.96.0.10")});
  ASSERT_TRUE(n.ok()) << n.error();
  EXPECT_EQ(*n, 3u);
  EXPECT_EQ(count("udp"), 1);
  // Nothing left to delete is not an error.
  n = delete_entries({.orig_dst = ip("10.96.0.10")});
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);
}

TEST_F(ConntrackDelete, OtherProtocolsAreLeftAlone) {
  auto n = delete_entries({.protocol = 6 /* tcp */, .orig_dst = ip("10.96.0.10")});
  ASSERT_TRUE(n.ok()) << n.error();
  EXPECT_EQ(*n, 0u);
  EXPECT_EQ(count("udp"), 4);
}

}  // namespace
}  // namespace knode::conntrack
