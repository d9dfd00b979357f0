// The nfnetlink ipset client against a real ip_set kernel, inside the VM;
// `ipset list` is the referee.
#include <gtest/gtest.h>
#include <linux/netfilter/ipset/ip_set.h>

#include <algorithm>
#include <set>

#include "ipvs/kube_sets.h"
#include "knode/dataplane/ipset.h"
#include "support/vm_util.h"

namespace knode::ipset {
namespace {

using vmtest::shell;
using ipvs_proxy::kube_proxy_sets;

net::IPAddress ip(const char* s) { return *net::IPAddress::Parse(s); }
net::Cidr cidr(const char* s) { return *net::Cidr::Parse(s); }

Entry ip_port(const char* addr, net::Protocol p, uint16_t port) {
  Entry e;
  e.ip = ip(addr);
  e.protocol = p;
  e.port = port;
  return e;
}

// `ipset list NAME` as (type line, members).
struct Listed {
  std::string type;
  std::set<std::string> members;
  std::string raw;
};
Listed ipset_list(const std::string& name) {
  Listed l;
  l.raw = shell("ipset list " + name + " 2>&1");
  bool members = false;
  for (const auto& line : vmtest::lines(l.raw)) {
    if (line.starts_with("Type: ")) l.type = line.substr(6);
    if (members && !line.empty()) l.members.insert(line);
    if (line == "Members:") members = true;
  }
  return l;
}

std::set<std::string> texts(const Set& s) {
  std::set<std::string> out;
  for (const auto& e : s.entries) out.insert(e.str(s.spec.type));
  return out;
}

class IpsetVm : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = open_netlink_ipset();
    ASSERT_TRUE(opened.ok()) << opened.error();
    ipset_ = std::move(*opened);
    ASSERT_TRUE(ipset_->is_available()) << "this test runs in the VM, with ip_set loaded";
    shell("iptables -F; ipset destroy 2>/dev/null");
  }
  void TearDown() override { shell("iptables -F; ipset destroy 2>/dev/null"); }
  void create(const SetSpec& spec) {
    Status st = ipset_->create_set(spec, false);
    ASSERT_TRUE(st.ok()) << st.message();
  }
  void add(const std::string& set, const Entry& e) {
    Status st = ipset_->add_entry(set, e, false);
    ASSERT_TRUE(st.ok()) << st.message();
  }
  IpsetPtr ipset_;
};

TEST_F(IpsetVm, KubeProxySetsAsIpsetListShowsThem) {
  create({"KUBE-CLUSTER-IP", SetType::kHashIpPort});
  add("KUBE-CLUSTER-IP", ip_port("10.96.0.1", net::Protocol::kTCP, 443));
  add("KUBE-CLUSTER-IP", ip_port("10.96.0.10", net::Protocol::kUDP, 53));
  add("KUBE-CLUSTER-IP", ip_port("10.96.0.10", net::Protocol::kTCP, 53));
  add("KUBE-CLUSTER-IP", ip_port("10.96.0.11", net::Protocol::kSCTP, 9999));

  create({"KUBE-LOOP-BACK", SetType::kHashIpPortIp});
  Entry loop = ip_port("10.244.1.2", net::Protocol::kTCP, 8080);
  loop.ip2 = ip("10.244.1.2");
  add("KUBE-LOOP-BACK", loop);

  SetSpec node_ports{"KUBE-NODE-PORT-TCP", SetType::kBitmapPort};
  create(node_ports);
  Entry np;
  np.port = 30080;
  add("KUBE-NODE-PORT-TCP", np);
  np.port = 32767;
  add("KUBE-NODE-PORT-TCP", np);

  create({"KUBE-LOAD-BALANCER-SOURCE-CIDR", SetType::kHashIpPortNet});
  Entry lb = ip_port("192.0.2.10", net::Protocol::kTCP, 80);
  lb.net = cidr("203.0.113.0/24");
  add("KUBE-LOAD-BALANCER-SOURCE-CIDR", lb);

  create({"KUBE-IPVS-EXCLUDE-CIDR", SetType::kHashNet});
  Entry net;
  net.net = cidr("172.16.0.0/12");
  add("KUBE-IPVS-EXCLUDE-CIDR", net);
  net.net = cidr("198.51.100.7/32");
  add("KUBE-IPVS-EXCLUDE-CIDR", net);

  create({"KUBE-HEALTH-CHECK-NODE-PORT", SetType::kHashIp});
  Entry host;
  host.ip = ip("10.0.0.5");
  add("KUBE-HEALTH-CHECK-NODE-PORT", host);

  struct Want {
    std::string name, type;
    std::set<std::string> members;
  };
  std::vector<Want> want = {
      {"KUBE-CLUSTER-IP", "hash:ip,port",
       {"10.96.0.1,tcp:443", "10.96.0.10,udp:53", "10.96.0.10,tcp:53", "10.96.0.11,sctp:9999"}},
      {"KUBE-LOOP-BACK", "hash:ip,port,ip", {"10.244.1.2,tcp:8080,10.244.1.2"}},
      {"KUBE-NODE-PORT-TCP", "bitmap:port", {"30080", "32767"}},
      {"KUBE-LOAD-BALANCER-SOURCE-CIDR", "hash:ip,port,net", {"192.0.2.10,tcp:80,203.0.113.0/24"}},
      {"KUBE-IPVS-EXCLUDE-CIDR", "hash:net", {"172.16.0.0/12", "198.51.100.7"}},
      {"KUBE-HEALTH-CHECK-NODE-PORT", "hash:ip", {"10.0.0.5"}},
  };
  for (const auto& w : want) {
    Listed l = ipset_list(w.name);
    EXPECT_EQ(l.type, w.type) << l.raw;
    EXPECT_EQ(l.members, w.members) << l.raw;
    auto mine = ipset_->list_set(w.name);
    ASSERT_TRUE(mine.ok()) << mine.error();
    EXPECT_EQ(to_string(mine->spec.type), w.type);
    EXPECT_EQ(texts(*mine), w.members) << w.name;
  }
  auto names = ipset_->list_set_names();
  ASSERT_TRUE(names.ok()) << names.error();
  EXPECT_EQ(names->size(), want.size());

  auto bitmap = ipset_->list_set("KUBE-NODE-PORT-TCP");
  ASSERT_TRUE(bitmap.ok());
  EXPECT_EQ(bitmap->spec.port_from, 0);
  EXPECT_EQ(bitmap->spec.port_to, 65535);
}

TEST_F(IpsetVm, AllOfKubeProxysSetsForBothFamilies) {
  size_t n = 0;
  for (int family : {4, 6}) {
    for (const auto& spec : kube_proxy_sets(family)) {
      Status st = ipset_->create_set(spec, true);
      ASSERT_TRUE(st.ok()) << st.message();
      EXPECT_EQ(ipset_list(spec.name).type, to_string(spec.type)) << spec.name;
      ++n;
    }
  }
  auto names = ipset_->list_set_names();
  ASSERT_TRUE(names.ok()) << names.error();
  EXPECT_EQ(names->size(), n);
}

TEST_F(IpsetVm, DuplicatesAndMissingEntries) {
  create({"KUBE-CLUSTER-IP", SetType::kHashIpPort});
  auto e = ip_port("10.96.0.1", net::Protocol::kTCP, 443);
  add("KUBE-CLUSTER-IP", e);

  Status st = ipset_->add_entry("KUBE-CLUSTER-IP", e, false);
  EXPECT_EQ(st.error_number(), IPSET_ERR_EXIST);
  EXPECT_EQ(st.message(), "add 10.96.0.1,tcp:443 to ipset KUBE-CLUSTER-IP: Element cannot be "
                          "added to the set: it's already added");
  EXPECT_TRUE(ipset_->add_entry("KUBE-CLUSTER-IP", e, true).ok());

  EXPECT_TRUE(*ipset_->test_entry("KUBE-CLUSTER-IP", e));
  ASSERT_TRUE(ipset_->del_entry("KUBE-CLUSTER-IP", e, false).ok());
  EXPECT_FALSE(*ipset_->test_entry("KUBE-CLUSTER-IP", e));
  st = ipset_->del_entry("KUBE-CLUSTER-IP", e, false);
  EXPECT_EQ(st.error_number(), IPSET_ERR_EXIST) << st.message();
  EXPECT_TRUE(ipset_->del_entry("KUBE-CLUSTER-IP", e, true).ok());

  st = ipset_->add_entry("NO-SUCH-SET", e, false);
  EXPECT_EQ(st.error_number(), ENOENT) << st.message();
  EXPECT_NE(st.message().find("NO-SUCH-SET"), std::string::npos);
}

TEST_F(IpsetVm, BatchRefusalNamesTheEntry) {
  create({"KUBE-CLUSTER-IP", SetType::kHashIpPort});
  add("KUBE-CLUSTER-IP", ip_port("10.96.0.3", net::Protocol::kTCP, 80));
  std::vector<Entry> batch = {ip_port("10.96.0.1", net::Protocol::kTCP, 80),
                              ip_port("10.96.0.2", net::Protocol::kTCP, 80),
                              ip_port("10.96.0.3", net::Protocol::kTCP, 80),
                              ip_port("10.96.0.4", net::Protocol::kTCP, 80)};
  Status st = ipset_->add_entries("KUBE-CLUSTER-IP", batch, false);
  EXPECT_EQ(st.error_number(), IPSET_ERR_EXIST);
  EXPECT_EQ(st.message(), "add 10.96.0.3,tcp:80 to ipset KUBE-CLUSTER-IP: Element cannot be "
                          "added to the set: it's already added");
  // Those before the refused one are in; with exist_ok the whole batch goes in.
  EXPECT_EQ(ipset_list("KUBE-CLUSTER-IP").members,
            (std::set<std::string>{"10.96.0.1,tcp:80", "10.96.0.2,tcp:80", "10.96.0.3,tcp:80"}));
  EXPECT_TRUE(ipset_->add_entries("KUBE-CLUSTER-IP", batch, true).ok());
  EXPECT_EQ(ipset_list("KUBE-CLUSTER-IP").members.size(), 4u);
}

TEST_F(IpsetVm, CreateExistOkOnlyForTheSameType) {
  create({"KUBE-EXTERNAL-IP", SetType::kHashIpPort});
  EXPECT_TRUE(ipset_->create_set({"KUBE-EXTERNAL-IP", SetType::kHashIpPort}, true).ok());
  Status st = ipset_->create_set({"KUBE-EXTERNAL-IP", SetType::kHashIpPort}, false);
  EXPECT_EQ(st.error_number(), EEXIST);
  EXPECT_EQ(st.message(), "create ipset KUBE-EXTERNAL-IP (hash:ip,port): Set cannot be "
                          "created: set with the same name already exists");
  EXPECT_FALSE(ipset_->create_set({"KUBE-EXTERNAL-IP", SetType::kHashNet}, true).ok());
}

TEST_F(IpsetVm, SetInUseCannotBeDestroyed) {
  create({"KUBE-CLUSTER-IP", SetType::kHashIpPort});
  int rc = 0;
  std::string out = shell("iptables -t nat -A PREROUTING -m set --match-set KUBE-CLUSTER-IP "
                          "dst,dst -j ACCEPT 2>&1", &rc);
  ASSERT_EQ(rc, 0) << out;
  auto listed = ipset_->list_set("KUBE-CLUSTER-IP");
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->references, 1u);
  Status st = ipset_->destroy_set("KUBE-CLUSTER-IP");
  EXPECT_EQ(st.error_number(), IPSET_ERR_BUSY) << st.message();
  EXPECT_EQ(st.message(), "destroy ipset KUBE-CLUSTER-IP: Set cannot be destroyed: it is in "
                          "use by a kernel component");
  shell("iptables -t nat -F PREROUTING");
  EXPECT_TRUE(ipset_->destroy_set("KUBE-CLUSTER-IP").ok());
  EXPECT_EQ(ipset_->list_set("KUBE-CLUSTER-IP").status().error_number(), ENOENT);
}

TEST_F(IpsetVm, FlushEmptiesTheSet) {
  create({"KUBE-CLUSTER-IP", SetType::kHashIpPort});
  add("KUBE-CLUSTER-IP", ip_port("10.96.0.1", net::Protocol::kTCP, 443));
  ASSERT_TRUE(ipset_->flush_set("KUBE-CLUSTER-IP").ok());
  EXPECT_TRUE(ipset_list("KUBE-CLUSTER-IP").members.empty());
}

TEST_F(IpsetVm, Ipv6HashIpPort) {
  SetSpec spec{"KUBE-6-CLUSTER-IP", SetType::kHashIpPort};
  spec.family = 6;
  create(spec);
  add(spec.name, ip_port("fd00:96::1", net::Protocol::kTCP, 443));
  Listed l = ipset_list(spec.name);
  EXPECT_EQ(l.members, std::set<std::string>{"fd00:96::1,tcp:443"}) << l.raw;
  EXPECT_NE(l.raw.find("family inet6"), std::string::npos) << l.raw;
  auto mine = ipset_->list_set(spec.name);
  ASSERT_TRUE(mine.ok()) << mine.error();
  EXPECT_EQ(mine->spec.family, 6);
}

// A set matched by a rule decides real packets: the kernel really holds what we wrote.
TEST_F(IpsetVm, RuleMatchingTheSetSeesTheEntries) {
  create({"KUBE-CLUSTER-IP", SetType::kHashIpPort});
  add("KUBE-CLUSTER-IP", ip_port("127.0.0.1", net::Protocol::kTCP, 9));
  int rc = 0;
  std::string out = shell(
      "iptables -A OUTPUT -o lo -p tcp -m set --match-set KUBE-CLUSTER-IP dst,dst -j REJECT "
      "--reject-with tcp-reset 2>&1 && iptables -A OUTPUT -o lo -p tcp --dport 9 -j ACCEPT 2>&1",
      &rc);
  ASSERT_EQ(rc, 0) << out;
  shell("nc -w 1 127.0.0.1 9 </dev/null >/dev/null 2>&1; nc -w 1 127.0.0.1 9 </dev/null >/dev/null 2>&1");
  std::string counters = shell("iptables -L OUTPUT -v -n -x");
  // The REJECT rule (first) matched both SYNs; nothing fell through to ACCEPT.
  auto ls = vmtest::lines(counters);
  ASSERT_GE(ls.size(), 4u) << counters;
  EXPECT_EQ(vmtest::squeeze(ls[2]).rfind("2 ", 0), 0u) << counters;
  EXPECT_EQ(vmtest::squeeze(ls[3]).rfind("0 ", 0), 0u) << counters;
}

// Ten thousand entries, written one message each, against `ipset restore` of the same.
TEST_F(IpsetVm, TenThousandEntries) {
  constexpr int kEntries = 10000;
  create({"KUBE-CLUSTER-IP", SetType::kHashIpPort});
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kEntries; ++i) {
    Entry e;
    e.ip = net::IPAddress::V4(0x0a600000u + uint32_t(i));
    e.port = 80;
    Status st = ipset_->add_entry("KUBE-CLUSTER-IP", e, false);
    ASSERT_TRUE(st.ok()) << st.message();
  }
  double add_s = vmtest::seconds_since(t0);

  create({"KUBE-BATCHED", SetType::kHashIpPort});
  std::vector<Entry> batch;
  for (int i = 0; i < kEntries; ++i) {
    Entry e;
    e.ip = net::IPAddress::V4(0x0a600000u + uint32_t(i));
    e.port = 80;
    batch.push_back(e);
  }
  t0 = std::chrono::steady_clock::now();
  Status st = ipset_->add_entries("KUBE-BATCHED", batch, false);
  double batch_s = vmtest::seconds_since(t0);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(ipset_list("KUBE-BATCHED").members.size(), size_t(kEntries));
  t0 = std::chrono::steady_clock::now();
  st = ipset_->del_entries("KUBE-BATCHED", batch, false);
  double del_batch_s = vmtest::seconds_since(t0);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_TRUE(ipset_->list_set("KUBE-BATCHED")->entries.empty());

  t0 = std::chrono::steady_clock::now();
  auto listed = ipset_->list_set("KUBE-CLUSTER-IP");
  double list_s = vmtest::seconds_since(t0);
  ASSERT_TRUE(listed.ok()) << listed.error();
  EXPECT_EQ(listed->entries.size(), size_t(kEntries));

  std::string restore = "create KUBE-RESTORED hash:ip,port\n";
  for (const auto& e : listed->entries) restore += "add KUBE-RESTORED " + e.str(SetType::kHashIpPort) + "\n";
  {
    FILE* f = fopen("/tmp/restore.txt", "w");
    fwrite(restore.data(), 1, restore.size(), f);
    fclose(f);
  }
  t0 = std::chrono::steady_clock::now();
  int rc = 0;
  std::string out = shell("ipset restore < /tmp/restore.txt 2>&1", &rc);
  double restore_s = vmtest::seconds_since(t0);
  ASSERT_EQ(rc, 0) << out;
  t0 = std::chrono::steady_clock::now();
  std::string text = shell("ipset list KUBE-RESTORED");
  double ipset_list_s = vmtest::seconds_since(t0);
  EXPECT_EQ(ipset_list("KUBE-RESTORED").members.size(), size_t(kEntries));
  std::printf("KNODE-MEASURE ipset %d entries: add one-by-one %.3f s, add batched %.3f s, "
              "delete batched %.3f s, list %.3f s; ipset restore %.3f s, ipset list %.3f s\n",
              kEntries, add_s, batch_s, del_batch_s, list_s, restore_s, ipset_list_s);
}

}  // namespace
}  // namespace knode::ipset
