#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "knode/cni/config.h"
#include "knode/cni/ipam.h"
#include "knode/cni/ipam_store.h"

namespace knode::cni {
namespace {

class IpamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/knode-cni-ipam-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  IpamConfig config(const std::string& ranges) {
    auto c = parse_netconf(R"({"cniVersion":"1.1.0","name":"net","type":"knode-cni","ipam":{"ranges":)" + ranges + "}}");
    EXPECT_TRUE(c.ok()) << c.error();
    IpamConfig ipam = c->ipam;
    ipam.data_dir = dir_;
    return ipam;
  }

  Result<Allocation> allocate(const IpamConfig& conf, const std::string& id, const std::string& ifname = "eth0") {
    auto store = IpamStore::Open(dir_, "net");
    EXPECT_TRUE(store.ok());
    return ipam_allocate(*store, conf, Attachment{id, ifname});
  }

  std::string dir_;
};

// Whoever can write the store can give a pod another pod's address: a world-writable data
// directory, network directory or lock file is refused with the path and the fix.
TEST_F(IpamTest, WorldWritableStoreIsRefused) {
  namespace fs = std::filesystem;
  ASSERT_TRUE(IpamStore::Open(dir_, "net").ok());
  for (const std::string& path : {dir_, dir_ + "/net", dir_ + "/net/lock"}) {
    auto before = fs::status(path).permissions();
    fs::permissions(path, fs::perms::others_write, fs::perm_options::add);
    auto store = IpamStore::Open(dir_, "net");
    ASSERT_FALSE(store.ok()) << path;
    EXPECT_EQ(store.status().error_number(), kInvalidConfig) << store.error();
    EXPECT_NE(store.error().find(path + " is world-writable"), std::string::npos) << store.error();
    EXPECT_NE(store.error().find("chmod o-w " + path), std::string::npos) << store.error();
    fs::permissions(path, before, fs::perm_options::replace);
    EXPECT_TRUE(IpamStore::Open(dir_, "net").ok()) << path;
  }
}

TEST_F(IpamTest, HandsOutAddressesInOrderSkippingGateway) {
  auto conf = config(R"([[{"subnet":"10.0.0.0/24"}]])");
  auto a = allocate(conf, "a");
  auto b = allocate(conf, "b");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->ips[0].address.str(), "10.0.0.2/24");  // .1 is the gateway
  EXPECT_EQ(a->ips[0].gateway->str(), "10.0.0.1");
  EXPECT_EQ(b->ips[0].address.str(), "10.0.0.3/24");
  std::ifstream f(dir_ + "/net/10.0.0.2");
  std::string content((std::istreambuf_iterator<char>(f)), {});
  EXPECT_EQ(content, "a\r\neth0");  // host-local's layout
}

TEST_F(IpamTest, NeverNetworkBroadcastOrGatewayAndFullRangeNamesTheRange) {
  auto conf = config(R"([[{"subnet":"10.0.0.0/29","gateway":"10.0.0.4"}]])");
  std::set<std::string> got;
  for (int i = 0; i < 5; ++i) {
    auto a = allocate(conf, "c" + std::to_string(i));
    ASSERT_TRUE(a.ok()) << a.error();
    got.insert(a->ips[0].address.ip.str());
  }
  EXPECT_EQ(got, (std::set<std::string>{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.5", "10.0.0.6"}));
  auto full = allocate(conf, "overflow");
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.status().error_number(), kRangeExhausted);
  EXPECT_NE(full.error().find("10.0.0.0/29"), std::string::npos) << full.error();
}

TEST_F(IpamTest, RoundRobinContinuesAfterLastReservedAddress) {
  auto conf = config(R"([[{"subnet":"10.0.0.0/24","rangeStart":"10.0.0.10","rangeEnd":"10.0.0.12"}]])");
  auto a = allocate(conf, "a");  // .10
  auto b = allocate(conf, "b");  // .11
  ASSERT_TRUE(a.ok() && b.ok());
  {
    auto store = IpamStore::Open(dir_, "net");
    ASSERT_TRUE(store->release_owner(Attachment{"a", "eth0"}).ok());
  }
  auto c = allocate(conf, "c");  // .12, not the freed .10
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->ips[0].address.ip.str(), "10.0.0.12");
  auto d = allocate(conf, "d");  // wraps to .10
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->ips[0].address.ip.str(), "10.0.0.10");
}

TEST_F(IpamTest, ReleaseOwnerFreesOnlyThatAttachment) {
  auto conf = config(R"([[{"subnet":"10.0.0.0/24"}]])");
  auto a = allocate(conf, "a");
  auto a_net1 = allocate(conf, "a", "net1");
  auto b = allocate(conf, "b");
  ASSERT_TRUE(a.ok() && a_net1.ok() && b.ok());
  auto store = IpamStore::Open(dir_, "net");
  auto released = store->release_owner(Attachment{"a", "eth0"});
  ASSERT_TRUE(released.ok());
  ASSERT_EQ(released->size(), 1u);
  EXPECT_EQ((*released)[0], a->ips[0].address.ip);
  EXPECT_EQ(store->allocations().size(), 2u);
  EXPECT_TRUE(store->is_reserved(a_net1->ips[0].address.ip));
}

TEST_F(IpamTest, OneAddressPerRangeSetAndMultipleRangesInASet) {
  auto conf = config(R"([[{"subnet":"fd00::/120"}],[{"subnet":"10.0.0.0/30"},{"subnet":"10.0.1.0/30"}]])");
  auto a = allocate(conf, "a");
  auto b = allocate(conf, "b");
  ASSERT_TRUE(a.ok() && b.ok()) << (a.ok() ? b.error() : a.error());
  ASSERT_EQ(a->ips.size(), 2u);
  EXPECT_EQ(a->ips[0].address.str(), "fd00::2/120");
  EXPECT_EQ(a->ips[1].address.str(), "10.0.0.2/30");
  EXPECT_EQ(b->ips[0].address.str(), "fd00::3/120");
  EXPECT_EQ(b->ips[1].address.str(), "10.0.1.2/30");  // first range is full (.1 gateway, .3 broadcast)
  auto c = allocate(conf, "c");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().error_number(), kRangeExhausted);
  // A failed allocation gives back what it took in earlier range sets.
  auto store = IpamStore::Open(dir_, "net");
  EXPECT_TRUE(store->find(Attachment{"c", "eth0"}).empty());
}

TEST_F(IpamTest, ConcurrentProcessesGetDistinctAddresses) {
  auto conf = config(R"([[{"subnet":"10.0.0.0/24"}]])");
  constexpr int kProcs = 20;
  std::vector<pid_t> pids;
  for (int i = 0; i < kProcs; ++i) {
    pid_t pid = fork();
    if (pid == 0) {
      auto store = IpamStore::Open(dir_, "net");
      auto a = ipam_allocate(*store, conf, Attachment{"p" + std::to_string(i), "eth0"});
      _exit(a.ok() ? 0 : 1);
    }
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  auto store = IpamStore::Open(dir_, "net");
  EXPECT_EQ(store->allocations().size(), static_cast<size_t>(kProcs));
}

TEST_F(IpamTest, FreeCountSeesReservations) {
  auto conf = config(R"([[{"subnet":"10.0.0.0/29"}]])");  // .2-.6 usable
  auto store = IpamStore::Open(dir_, "net");
  EXPECT_EQ(ipam_free_count(*store, conf.ranges[0], 100), 5u);
  ASSERT_TRUE(ipam_allocate(*store, conf, Attachment{"a", "eth0"}).ok());
  EXPECT_EQ(ipam_free_count(*store, conf.ranges[0], 100), 4u);
}

}  // namespace
}  // namespace knode::cni
