// Rules made by knode and by iptables-legacy must be the same bytes in the kernel and
// print the same in iptables-legacy-save.
#include <gtest/gtest.h>

#include <cstdio>

#include "knode/dataplane/iptables/rule.h"
#include "knode/dataplane/iptables/set_index.h"
#include "knode/dataplane/iptables/table.h"
#include "support/netns_util.h"

namespace knode::iptables {
namespace {

using testing::run;
using testing::saved;

struct Case {
  const char* table;
  const char* args;  // as iptables-save prints them
};

const Case kCases[] = {
    {"nat", "-m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"},
    {"nat", "-d 10.96.0.10/32 -p tcp -m comment --comment \"default/kubia:http cluster IP\" -m tcp --dport 80 -j KUBE-SVC-ABCDEF"},
    {"nat", "! -s 10.244.0.0/16 -d 10.96.0.10/32 -p tcp -m comment --comment \"default/kubia:http cluster IP\" -m tcp --dport 80 -j KUBE-MARK-MASQ"},
    {"nat", "-m comment --comment \"default/kubia:http -> 10.244.1.5:8080\" -m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-XYZ"},
    {"nat", "-m statistic --mode random --probability 0.10000000009 -j KUBE-SEP-XYZ"},
    {"nat", "-s 10.244.1.5/32 -m comment --comment \"default/kubia:http\" -j KUBE-MARK-MASQ"},
    {"nat", "-p tcp -m comment --comment \"default/kubia:http\" -m tcp -j DNAT --to-destination 10.244.1.5:8080"},
    {"nat", "-p udp -m udp --sport 1000:2000 ! --dport 53 -j DNAT --to-destination 10.244.1.5:53"},
    {"nat", "-p sctp -m sctp --dport 3868 -j DNAT --to-destination 10.244.1.5:3868"},
    {"nat", "-p tcp -m recent --set --name KUBE-SEP-XYZ --mask 255.255.255.255 --rsource -m tcp -j DNAT --to-destination 10.244.1.5:80"},
    {"nat", "-m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-XYZ --mask 255.255.255.255 --rsource -j KUBE-SEP-XYZ"},
    {"nat", "-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS"},
    {"nat", "-m addrtype ! --src-type LOCAL --limit-iface-in -j RETURN"},
    {"nat", "-m mark ! --mark 0x4000/0x4000 -j RETURN"},
    {"nat", "-m mark --mark 0x1 -j ACCEPT"},
    {"nat", "-j MARK --set-xmark 0x4000/0x4000"},
    {"nat", "-j MARK --set-xmark 0x4000/0x0"},
    {"nat", "-m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully"},
    {"nat", "-o eth0 -j MASQUERADE"},
    {"nat", "-p tcp -j MASQUERADE --to-ports 1024-65535 --random"},
    {"nat", "-s 10.0.0.0/8 ! -o veth+ -p tcp -j SNAT --to-source 192.168.1.1:1024-2048 --persistent"},
    {"nat", "-j DNAT --to-destination 10.0.0.1 --random"},
    {"filter", "! -i lo -j DROP"},
    {"nat", "-g KUBE-SEP-XYZ"},
    {"filter", "-m conntrack --ctstate INVALID -j DROP"},
    {"filter", "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"},
    {"filter", "-m conntrack ! --ctstate NEW -j ACCEPT"},
    {"filter", "-d 10.96.0.11/32 -p tcp -m comment --comment \"default/empty:http has no endpoints\" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable"},
    {"filter", "-p tcp -j REJECT --reject-with tcp-reset"},
    {"filter", "-m comment --comment \"kubernetes forwarding rules\" -m mark --mark 0x4000/0x4000 -j ACCEPT"},
    {"filter", "-m physdev --physdev-is-bridged -j ACCEPT"},
    {"filter", "-m physdev --physdev-in veth1 ! --physdev-out eth+ -j DROP"},
    {"nat", "-m comment --comment \"Kubernetes service cluster ip + port for masquerade purpose\" -m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ"},
    {"nat", "-m set --match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE"},
    {"nat", "-p tcp -m set --match-set KUBE-NODE-PORT-TCP dst -j RETURN"},
    {"filter", "-m conntrack --ctstate NEW -m set ! --match-set KUBE-IPVS-IPS dst -j REJECT --reject-with icmp-port-unreachable"},
    {"filter", "-m set --match-set KUBE-LOAD-BALANCER-SOURCE-CIDR dst,dst,src -j RETURN"},
    {"nat", "-m comment --comment \"Kubernetes service external ip + port for masquerade and filter purpose\" -m set --match-set KUBE-CLUSTER-IP dst,dst -m physdev ! --physdev-is-in -m addrtype ! --src-type LOCAL -j ACCEPT"},
};

// 16 bytes a line, so a difference shows its offset.
std::string hex(const std::string& b) {
  std::string out;
  char buf[32];
  for (size_t i = 0; i < b.size(); ++i) {
    if (i % 16 == 0) {
      std::snprintf(buf, sizeof buf, "\n%04zx:", i);
      out += buf;
    }
    std::snprintf(buf, sizeof buf, " %02x", static_cast<unsigned char>(b[i]));
    out += buf;
  }
  return out;
}

void PrintTo(const Case& c, std::ostream* os) { *os << c.table << ": " << c.args; }

class IptablesEncoding : public ::testing::TestWithParam<Case> {};

TEST_P(IptablesEncoding, SameBytesAndSameSaveLineAsIptables) {
  KNODE_REQUIRE_NETNS();
  testing::reset_tables();
  run("ipset destroy 2>/dev/null");
  const Case& c = GetParam();
  const std::string table = c.table;
  // Targets of the jumps in the cases.
  for (const char* ch : {"KUBE-SERVICES", "KUBE-SVC-ABCDEF", "KUBE-MARK-MASQ", "KUBE-SEP-XYZ",
                         "KUBE-NODEPORTS", "T"}) {
    run("iptables-legacy -t " + table + " -N " + ch);
  }
  // REJECT is only allowed from INPUT/FORWARD/OUTPUT: hang T off FORWARD.
  if (table == "filter") run("iptables-legacy -t filter -A FORWARD -j T");
  // The sets the cases match on; a second set first, so the indexes are not all 0.
  run("ipset destroy 2>/dev/null; ipset create FIRST hash:ip");
  run("ipset create KUBE-CLUSTER-IP hash:ip,port; ipset create KUBE-LOOP-BACK hash:ip,port,ip");
  run("ipset create KUBE-NODE-PORT-TCP bitmap:port range 0-65535");
  run("ipset create KUBE-IPVS-IPS hash:ip");
  run("ipset create KUBE-LOAD-BALANCER-SOURCE-CIDR hash:ip,port,net");
  int rc = 0;
  std::string err = run("iptables-legacy -t " + table + " -A T " + c.args + " 2>&1", &rc);
  ASSERT_EQ(rc, 0) << c.args << ": " << err;

  auto rule = parse_rule(c.args);
  ASSERT_TRUE(rule.ok()) << rule.error();
  std::vector<Rule> one{*rule};
  ASSERT_TRUE(resolve_set_indexes(one).ok());
  rule = one[0];
  ASSERT_TRUE(rule->validate().ok()) << rule->validate().message();

  // Same line in iptables-save.
  std::string want;
  for (const auto& l : saved(table)) {
    if (l.rfind("-A T ", 0) == 0) want = l;
  }
  EXPECT_EQ(rule->save_string("T"), want);

  // Same bytes in the kernel.
  auto t = Table::open(table);
  ASSERT_TRUE(t.ok()) << t.error();
  auto rules = t->rules("T");
  ASSERT_TRUE(rules.ok()) << rules.error();
  ASSERT_EQ(rules->size(), 1u);
  std::string mine = rule->encode();
  EXPECT_EQ(hex((*rules)[0]), hex(mine)) << c.args;

  // And a rule knode appends reads back as the same bytes and line.
  ASSERT_TRUE(t->flush_chain("T").ok());
  ASSERT_TRUE(t->append("T", *rule).ok());
  ASSERT_TRUE(t->commit().ok());
  std::string got;
  for (const auto& l : saved(table)) {
    if (l.rfind("-A T ", 0) == 0) got = l;
  }
  EXPECT_EQ(got, want);
}

INSTANTIATE_TEST_SUITE_P(Rules, IptablesEncoding, ::testing::ValuesIn(kCases));

}  // namespace
}  // namespace knode::iptables

namespace knode::iptables {
namespace {

TEST(IptablesSetIndex, UnknownSetIsAnErrorNamingIt) {
  KNODE_REQUIRE_NETNS();
  testing::reset_tables();
  testing::run("ipset destroy 2>/dev/null");
  auto idx = ipset_index("KUBE-NOT-THERE");
  ASSERT_FALSE(idx.ok());
  EXPECT_NE(idx.error().find("KUBE-NOT-THERE"), std::string::npos) << idx.error();
  testing::run("ipset create A hash:ip; ipset create B hash:ip");
  auto a = ipset_index("A"), b = ipset_index("B");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
  // An unresolved set match is refused before it reaches the kernel.
  auto r = parse_rule("-m set --match-set A dst -j ACCEPT");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_FALSE(r->validate().ok());
}

}  // namespace
}  // namespace knode::iptables
