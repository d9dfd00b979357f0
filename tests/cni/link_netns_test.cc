// dataplane/netns and dataplane/link against the real kernel, inside a private netns:
// every operation is idempotent and the guard always returns to the old namespace.
#include <gtest/gtest.h>
#include <linux/if.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "knode/dataplane/link.h"
#include "knode/dataplane/netns.h"

namespace knode::link {
namespace {

class LinkNetns : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "namespace test: needs root to create network namespaces";
    name_ = "knode-cni-test-" + std::to_string(getpid()) + "-link";
    ASSERT_EQ(std::system(("ip netns add " + name_).c_str()), 0);
    created_ = true;
  }
  void TearDown() override {
    if (created_) std::system(("ip netns del " + name_).c_str());
  }
  std::string path() const { return "/var/run/netns/" + name_; }
  std::string name_;
  bool created_ = false;
};

ino_t current_netns_inode() {
  struct stat st {};
  stat(("/proc/self/task/" + std::to_string(gettid()) + "/ns/net").c_str(), &st);
  return st.st_ino;
}

TEST_F(LinkNetns, GuardEntersAndAlwaysRestores) {
  ino_t before = current_netns_inode();
  {
    auto guard = netns::NetnsGuard::Enter(path());
    ASSERT_TRUE(guard.ok()) << guard.error();
    EXPECT_NE(current_netns_inode(), before);
  }
  EXPECT_EQ(current_netns_inode(), before);
  Status inside = netns::with_netns(path(), [&]() -> Status {
    return current_netns_inode() != before ? Status::Ok() : Status::Error("not inside");
  });
  EXPECT_TRUE(inside.ok()) << inside.message();
  EXPECT_EQ(current_netns_inode(), before);
  auto missing = netns::NetnsHandle::Open("/var/run/netns/knode-cni-test-does-not-exist");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().error_number(), ENOENT);
  auto not_ns = netns::NetnsHandle::Open("/etc/hostname");
  ASSERT_FALSE(not_ns.ok());
  EXPECT_EQ(not_ns.status().error_number(), EINVAL);
}

TEST_F(LinkNetns, BridgeVethAddressesAndRoutesAreIdempotent) {
  auto guard = netns::NetnsGuard::Enter(path());
  ASSERT_TRUE(guard.ok());
  auto s = Socket::Open();
  ASSERT_TRUE(s.ok());
  auto br = ensure_bridge(*s, BridgeOptions{"kt-br0", 1400, true});
  ASSERT_TRUE(br.ok()) << br.error();
  EXPECT_EQ(br->kind, "bridge");
  EXPECT_EQ(br->mtu, 1400u);
  EXPECT_TRUE(br->up());
  EXPECT_TRUE(br->promisc());
  auto again = ensure_bridge(*s, BridgeOptions{"kt-br0", 1400, true});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->index, br->index);

  ASSERT_TRUE(create_veth(*s, VethOptions{"kt-h0", "kt-p0", 0, -1, br->index, true}).ok());
  Status dup = create_veth(*s, VethOptions{"kt-h0", "kt-p1"});
  EXPECT_EQ(dup.error_number(), EEXIST) << dup.message();
  auto host = get_link(*s, "kt-h0");
  ASSERT_TRUE(host.ok());
  EXPECT_EQ(host->master_index, br->index);
  EXPECT_TRUE(host->up());
  EXPECT_TRUE(set_hairpin(*s, "kt-h0", true).ok());
  auto other_bridge = ensure_dummy(*s, "kt-br0");  // exists with another kind
  EXPECT_FALSE(other_bridge.ok());

  auto addr = *IpNet::Parse("10.77.0.1/24");
  ASSERT_TRUE(add_address(*s, "kt-br0", addr).ok());
  ASSERT_TRUE(add_address(*s, "kt-br0", addr).ok());
  auto addrs = list_addresses(*s, "kt-br0", AF_INET);
  ASSERT_TRUE(addrs.ok());
  ASSERT_EQ(addrs->size(), 1u);
  EXPECT_EQ((*addrs)[0], addr);

  Route r{*net::Cidr::Parse("10.88.0.0/16"), *net::IPAddress::Parse("10.77.0.254"), 0};
  ASSERT_TRUE(add_route(*s, r).ok());
  ASSERT_TRUE(add_route(*s, r).ok());
  auto routes = list_routes(*s, AF_INET);
  ASSERT_TRUE(routes.ok());
  bool found = false;
  for (const auto& have : *routes) found = found || (have.dst == r.dst && have.gateway == r.gateway);
  EXPECT_TRUE(found);
  ASSERT_TRUE(del_route(*s, r).ok());
  ASSERT_TRUE(del_route(*s, r).ok());
  ASSERT_TRUE(del_address(*s, "kt-br0", addr).ok());
  ASSERT_TRUE(del_address(*s, "kt-br0", addr).ok());
  EXPECT_TRUE(list_addresses(*s, "kt-br0", AF_INET)->empty());

  ASSERT_TRUE(delete_link(*s, "kt-h0").ok());
  ASSERT_TRUE(delete_link(*s, "kt-h0").ok());
  EXPECT_FALSE(link_exists(*s, "kt-p0"));  // the peer went with it
  auto gone = get_link(*s, "kt-h0");
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.status().error_number(), ENODEV);
}

// ensure_dummy (kube-ipvs0) needs the dummy driver, which this machine's kernel lacks;
// the VM tier, whose stock kernel has it, exercises it through the IPVS backend.

}  // namespace
}  // namespace knode::link
