// The libiptc wrapper in a private netns.
#include <gtest/gtest.h>

#include <algorithm>

#include "knode/dataplane/iptables/table.h"
#include "support/netns_util.h"

namespace knode::iptables {
namespace {

using testing::saved;

TEST(IptablesTable, ChainsRulesAndCommit) {
  KNODE_REQUIRE_NETNS();
  testing::reset_tables();
  auto t = Table::open("nat");
  ASSERT_TRUE(t.ok()) << t.error();
  EXPECT_TRUE(t->is_builtin("PREROUTING"));
  EXPECT_FALSE(t->has_chain("KNODE-CNI-X"));
  ASSERT_TRUE(t->create_chain("KNODE-CNI-X").ok());
  auto r1 = parse_rule("-p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.88.0.2:80");
  auto r2 = parse_rule("-j RETURN");
  ASSERT_TRUE(r1.ok() && r2.ok());
  ASSERT_TRUE(t->append("KNODE-CNI-X", *r2).ok());
  ASSERT_TRUE(t->insert("KNODE-CNI-X", r1->encode(), 0).ok());
  ASSERT_TRUE(t->append("PREROUTING", *parse_rule("-j KNODE-CNI-X")).ok());
  auto rules = t->rules("KNODE-CNI-X");
  ASSERT_TRUE(rules.ok());
  ASSERT_EQ(rules->size(), 2u);
  EXPECT_EQ((*rules)[0], r1->encode());
  EXPECT_EQ((*rules)[1], r2->encode());
  Status s = t->delete_chain("KNODE-CNI-X");  // still referenced
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("delete chain KNODE-CNI-X in nat"), std::string::npos) << s.message();
  ASSERT_TRUE(t->commit().ok());
  EXPECT_FALSE(t->create_chain("X").ok());  // spent

  auto lines = saved("nat");
  EXPECT_NE(std::find(lines.begin(), lines.end(),
                      "-A KNODE-CNI-X -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.88.0.2:80"),
            lines.end());
  EXPECT_NE(std::find(lines.begin(), lines.end(), "-A PREROUTING -j KNODE-CNI-X"), lines.end());

  auto t2 = Table::open("nat", /*lock_wait_ms=*/5000);
  ASSERT_TRUE(t2.ok());
  auto chains = t2->chains();
  EXPECT_NE(std::find(chains.begin(), chains.end(), "KNODE-CNI-X"), chains.end());
  auto pre = t2->rules("PREROUTING");
  ASSERT_TRUE(pre.ok());
  ASSERT_EQ(pre->size(), 1u);
  EXPECT_EQ((*pre)[0], parse_rule("-j KNODE-CNI-X")->encode());
  ASSERT_TRUE(t2->erase("PREROUTING", 0).ok());
  ASSERT_TRUE(t2->flush_chain("KNODE-CNI-X").ok());
  ASSERT_TRUE(t2->delete_chain("KNODE-CNI-X").ok());
  ASSERT_TRUE(t2->commit().ok());
  EXPECT_EQ(saved("nat").size(), 4u);
}

TEST(IptablesTable, OpenUnknownTableFails) {
  KNODE_REQUIRE_NETNS();
  auto t = Table::open("nosuchtable");
  EXPECT_FALSE(t.ok());
  EXPECT_NE(t.error().find("open table nosuchtable"), std::string::npos) << t.error();
}

}  // namespace
}  // namespace knode::iptables
