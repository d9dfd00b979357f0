// sysctl against a fake /proc/sys in a temporary directory.
#include "knode/dataplane/sysctl.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>

namespace knode::sysctl {
namespace {

class SysctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/knode_sysctl_XXXXXX";
    root_ = ::mkdtemp(tmpl);
    ::mkdir((root_ + "/net").c_str(), 0755);
    ::mkdir((root_ + "/net/ipv4").c_str(), 0755);
    std::ofstream(root_ + "/net/ipv4/ip_forward") << "0\n";
  }
  void TearDown() override { std::system(("rm -rf " + root_).c_str()); }
  std::string root_;
};

TEST_F(SysctlTest, DotsAndSlashesNameTheSameFile) {
  EXPECT_EQ(path_of("net.ipv4.ip_forward", "/r"), "/r/net/ipv4/ip_forward");
  EXPECT_EQ(path_of("net/ipv4/conf/eth0.100/forwarding", "/r"), "/r/net/ipv4/conf/eth0.100/forwarding");
}

TEST_F(SysctlTest, ReadWriteEnsure) {
  auto v = read_int("net.ipv4.ip_forward", root_);
  ASSERT_TRUE(v.ok()) << v.error();
  EXPECT_EQ(*v, 0);
  bool changed = false;
  ASSERT_TRUE(ensure("net/ipv4/ip_forward", "1", &changed, root_).ok());
  EXPECT_TRUE(changed);
  EXPECT_EQ(*read("net.ipv4.ip_forward", root_), "1");
  ASSERT_TRUE(ensure("net/ipv4/ip_forward", "1", &changed, root_).ok());
  EXPECT_FALSE(changed);
}

TEST_F(SysctlTest, ErrorsNameThePath) {
  auto v = read("net.ipv4.nosuch", root_);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.error().find(root_ + "/net/ipv4/nosuch"), std::string::npos) << v.error();
  Status s = write("net.ipv6.x", "1", root_);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("write sysctl " + root_ + "/net/ipv6/x=1"), std::string::npos);
}

}  // namespace
}  // namespace knode::sysctl
