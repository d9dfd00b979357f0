// IPVS netlink messages built and parsed without a kernel; detection with an injected
// /proc; the fake's kernel-like errors. Label: unit.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/ip_vs.h>
#include <netlink/genl/genl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <fstream>

#include "fakes/fake_ipvs.h"
#include "ipvs/codec.h"
#include "knode/dataplane/ipvs_detect.h"
#include "ipvs/genl_socket.h"

namespace knode::ipvs {
namespace {

net::IPAddress ip(const char* s) { return *net::IPAddress::Parse(s); }

// Parses the top-level attributes of a message we built.
struct Parsed {
  NlMsgPtr msg;
  nlattr* tb[IPVS_CMD_ATTR_MAX + 1] = {};
};

std::unique_ptr<Parsed> reparse(NlMsgPtr msg) {
  auto p = std::make_unique<Parsed>();
  p->msg = std::move(msg);
  EXPECT_EQ(genlmsg_parse(nlmsg_hdr(p->msg.get()), 0, p->tb, IPVS_CMD_ATTR_MAX, codec::cmd_policy()), 0);
  return p;
}

NlMsgPtr new_msg() { return GenlSocket::new_message(42, IPVS_CMD_NEW_SERVICE, 1, 0); }

TEST(IpvsCodec, ServiceRoundTrip) {
  VirtualServer vs;
  vs.address = ip("10.96.0.1");
  vs.port = 443;
  vs.protocol = net::Protocol::kUDP;
  vs.scheduler = "sh";
  vs.flags = kFlagPersistent | kFlagShFallback | kFlagShPort;
  vs.timeout = 10800;
  vs.netmask = 24;
  auto msg = new_msg();
  ASSERT_TRUE(codec::put_service(msg.get(), vs, true).ok());
  auto p = reparse(std::move(msg));
  auto back = codec::parse_service(p->tb[IPVS_CMD_ATTR_SERVICE]);
  ASSERT_TRUE(back.ok()) << back.error();
  EXPECT_TRUE(back->same_config(vs)) << *back;
  EXPECT_EQ(back->netmask, 24);
  EXPECT_EQ(back->str(), "10.96.0.1:443/UDP");
}

TEST(IpvsCodec, ServiceWireLayoutIsWhatTheKernelReads) {
  VirtualServer vs;
  vs.address = ip("10.96.0.1");
  vs.port = 443;
  auto msg = new_msg();
  ASSERT_TRUE(codec::put_service(msg.get(), vs, true).ok());
  auto p = reparse(std::move(msg));
  nlattr* svc[IPVS_SVC_ATTR_MAX + 1] = {};
  ASSERT_EQ(nla_parse_nested(svc, IPVS_SVC_ATTR_MAX, p->tb[IPVS_CMD_ATTR_SERVICE], nullptr), 0);
  EXPECT_EQ(nla_get_u16(svc[IPVS_SVC_ATTR_AF]), AF_INET);
  EXPECT_EQ(nla_get_u16(svc[IPVS_SVC_ATTR_PROTOCOL]), IPPROTO_TCP);
  EXPECT_EQ(nla_get_u16(svc[IPVS_SVC_ATTR_PORT]), htons(443));  // network order
  ASSERT_EQ(nla_len(svc[IPVS_SVC_ATTR_ADDR]), 16);  // union nf_inet_addr
  const auto* a = static_cast<const uint8_t*>(nla_data(svc[IPVS_SVC_ATTR_ADDR]));
  EXPECT_EQ(a[0], 10);
  EXPECT_EQ(a[1], 96);
  EXPECT_EQ(a[3], 1);
  EXPECT_EQ(nla_get_u32(svc[IPVS_SVC_ATTR_NETMASK]), 0xffffffffu);
  EXPECT_STREQ(nla_get_string(svc[IPVS_SVC_ATTR_SCHED_NAME]), "rr");
  ip_vs_flags f;
  ASSERT_EQ(nla_len(svc[IPVS_SVC_ATTR_FLAGS]), int(sizeof(f)));
  std::memcpy(&f, nla_data(svc[IPVS_SVC_ATTR_FLAGS]), sizeof(f));
  EXPECT_EQ(f.flags, 0u);
  EXPECT_EQ(f.mask, 0xffffffffu);
}

TEST(IpvsCodec, IdentityOnlyLeavesConfigurationOut) {
  VirtualServer vs;
  vs.address = ip("10.96.0.1");
  vs.port = 80;
  auto msg = new_msg();
  ASSERT_TRUE(codec::put_service(msg.get(), vs, false).ok());
  auto p = reparse(std::move(msg));
  nlattr* svc[IPVS_SVC_ATTR_MAX + 1] = {};
  ASSERT_EQ(nla_parse_nested(svc, IPVS_SVC_ATTR_MAX, p->tb[IPVS_CMD_ATTR_SERVICE], nullptr), 0);
  EXPECT_EQ(svc[IPVS_SVC_ATTR_SCHED_NAME], nullptr);
  EXPECT_EQ(svc[IPVS_SVC_ATTR_FLAGS], nullptr);
}

TEST(IpvsCodec, Ipv6ServiceCarriesPrefixLengthAsNetmask) {
  VirtualServer vs;
  vs.address = ip("fd00::1");
  vs.port = 80;
  auto msg = new_msg();
  ASSERT_TRUE(codec::put_service(msg.get(), vs, true).ok());
  auto p = reparse(std::move(msg));
  nlattr* svc[IPVS_SVC_ATTR_MAX + 1] = {};
  ASSERT_EQ(nla_parse_nested(svc, IPVS_SVC_ATTR_MAX, p->tb[IPVS_CMD_ATTR_SERVICE], nullptr), 0);
  EXPECT_EQ(nla_get_u16(svc[IPVS_SVC_ATTR_AF]), AF_INET6);
  EXPECT_EQ(nla_get_u32(svc[IPVS_SVC_ATTR_NETMASK]), 128u);
  auto back = codec::parse_service(p->tb[IPVS_CMD_ATTR_SERVICE]);
  ASSERT_TRUE(back.ok()) << back.error();
  EXPECT_EQ(back->address, vs.address);
  EXPECT_EQ(back->str(), "[fd00::1]:80/TCP");
}

TEST(IpvsCodec, BadInputIsRejectedBeforeTheKernel) {
  VirtualServer vs;
  vs.address = ip("10.96.0.1");
  vs.port = 80;
  vs.scheduler = "";
  auto msg = new_msg();
  Status st = codec::put_service(msg.get(), vs, true);
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.error_number(), EINVAL);
  EXPECT_NE(st.message().find("10.96.0.1:80/TCP"), std::string::npos) << st.message();
  vs.scheduler = "rr";
  vs.netmask = 33;
  EXPECT_FALSE(codec::put_service(new_msg().get(), vs, true).ok());
  EXPECT_FALSE(codec::put_service(new_msg().get(), VirtualServer{}, false).ok());
}

TEST(IpvsCodec, DestinationRoundTrip) {
  RealServer rs;
  rs.address = ip("10.244.1.2");
  rs.port = 8080;
  rs.weight = 3;
  rs.upper_threshold = 100;
  auto msg = new_msg();
  ASSERT_TRUE(codec::put_destination(msg.get(), rs, true).ok());
  auto p = reparse(std::move(msg));
  auto back = codec::parse_destination(p->tb[IPVS_CMD_ATTR_DEST], AF_INET);
  ASSERT_TRUE(back.ok()) << back.error();
  EXPECT_TRUE(back->same_config(rs)) << *back;
  EXPECT_EQ(back->forward, ForwardMethod::kMasquerade);
}

TEST(IpvsCodec, TimeoutsRoundTrip) {
  auto msg = new_msg();
  ASSERT_TRUE(codec::put_timeouts(msg.get(), {900, 120, 300}).ok());
  auto p = reparse(std::move(msg));
  EXPECT_EQ(codec::parse_timeouts(p->tb), (Timeouts{900, 120, 300}));
}

// A reply as the kernel would send one for 10.96.0.1:80/TCP, with `extra` appended to
// the service nest (for a destination: `dest` true, address and port only).
NlMsgPtr reply_with(bool dest, const std::function<void(nl_msg*)>& extra) {
  auto msg = new_msg();
  const uint8_t addr[16] = {10, 96, 0, 1};
  nlattr* nest = nla_nest_start(msg.get(), dest ? IPVS_CMD_ATTR_DEST : IPVS_CMD_ATTR_SERVICE);
  if (dest) {
    nla_put(msg.get(), IPVS_DEST_ATTR_ADDR, sizeof addr, addr);
    nla_put_u16(msg.get(), IPVS_DEST_ATTR_PORT, htons(80));
  } else {
    nla_put_u16(msg.get(), IPVS_SVC_ATTR_AF, AF_INET);
    nla_put_u16(msg.get(), IPVS_SVC_ATTR_PROTOCOL, IPPROTO_TCP);
    nla_put(msg.get(), IPVS_SVC_ATTR_ADDR, sizeof addr, addr);
    nla_put_u16(msg.get(), IPVS_SVC_ATTR_PORT, htons(80));
  }
  extra(msg.get());
  nla_nest_end(msg.get(), nest);
  return msg;
}

void put_short(nl_msg* m, int type) {
  const uint8_t one = 7;
  nla_put(m, type, 1, &one);
}

TEST(IpvsCodec, WellFormedReplyBuiltByHandParses) {
  auto p = reparse(reply_with(false, [](nl_msg* m) { nla_put_u32(m, IPVS_SVC_ATTR_TIMEOUT, 30); }));
  auto vs = codec::parse_service(p->tb[IPVS_CMD_ATTR_SERVICE]);
  ASSERT_TRUE(vs.ok()) << vs.error();
  EXPECT_EQ(vs->str(), "10.96.0.1:80/TCP");
  EXPECT_EQ(vs->timeout, 30u);
}

// nla_get_u32/u16 do not look at the length: without a policy these read past the
// attribute (and past the message when it is the last one).
TEST(IpvsCodec, ShortIntegerAttributesAreRefused) {
  for (int type : {IPVS_SVC_ATTR_NETMASK, IPVS_SVC_ATTR_TIMEOUT, IPVS_SVC_ATTR_FWMARK}) {
    auto p = reparse(reply_with(false, [&](nl_msg* m) { put_short(m, type); }));
    EXPECT_FALSE(codec::parse_service(p->tb[IPVS_CMD_ATTR_SERVICE]).ok()) << type;
  }
  auto msg = new_msg();
  nlattr* nest = nla_nest_start(msg.get(), IPVS_CMD_ATTR_SERVICE);
  put_short(msg.get(), IPVS_SVC_ATTR_AF);  // u16 in one byte
  nla_nest_end(msg.get(), nest);
  auto p = reparse(std::move(msg));
  EXPECT_FALSE(codec::parse_service(p->tb[IPVS_CMD_ATTR_SERVICE]).ok());
  for (int type : {IPVS_DEST_ATTR_WEIGHT, IPVS_DEST_ATTR_FWD_METHOD, IPVS_DEST_ATTR_ADDR_FAMILY}) {
    auto d = reparse(reply_with(true, [&](nl_msg* m) { put_short(m, type); }));
    EXPECT_FALSE(codec::parse_destination(d->tb[IPVS_CMD_ATTR_DEST], AF_INET).ok()) << type;
  }
}

TEST(IpvsCodec, SchedulerNameWithoutItsNulIsRefused) {
  auto p = reparse(reply_with(false, [](nl_msg* m) { nla_put(m, IPVS_SVC_ATTR_SCHED_NAME, 2, "rr"); }));
  EXPECT_FALSE(codec::parse_service(p->tb[IPVS_CMD_ATTR_SERVICE]).ok());
  auto q = reparse(reply_with(false, [](nl_msg* m) { nla_put_string(m, IPVS_SVC_ATTR_SCHED_NAME, "rr"); }));
  auto vs = codec::parse_service(q->tb[IPVS_CMD_ATTR_SERVICE]);
  ASSERT_TRUE(vs.ok()) << vs.error();
  EXPECT_EQ(vs->scheduler, "rr");
}

TEST(IpvsCodec, ShortStatisticsReadAsNone) {
  auto p = reparse(reply_with(false, [](nl_msg* m) {
    nlattr* st = nla_nest_start(m, IPVS_SVC_ATTR_STATS64);
    nla_put_u64(m, IPVS_STATS_ATTR_CONNS, 5);
    nla_put_u32(m, IPVS_STATS_ATTR_INPKTS, 6);  // a u32 where the kernel puts a u64
    nla_nest_end(m, st);
  }));
  auto vs = codec::parse_service(p->tb[IPVS_CMD_ATTR_SERVICE]);
  ASSERT_TRUE(vs.ok()) << vs.error();
  EXPECT_EQ(vs->stats.connections, 0u);
  EXPECT_EQ(vs->stats.packets_in, 0u);
}

TEST(IpvsCodec, ShortTimeoutFailsTheReplyParse) {
  auto msg = new_msg();
  put_short(msg.get(), IPVS_CMD_ATTR_TIMEOUT_TCP);
  nlattr* tb[IPVS_CMD_ATTR_MAX + 1] = {};
  EXPECT_LT(genlmsg_parse(nlmsg_hdr(msg.get()), 0, tb, IPVS_CMD_ATTR_MAX, codec::cmd_policy()), 0);
  // Split without the policy, parse_timeouts still does not read past it.
  ASSERT_EQ(genlmsg_parse(nlmsg_hdr(msg.get()), 0, tb, IPVS_CMD_ATTR_MAX, nullptr), 0);
  EXPECT_EQ(codec::parse_timeouts(tb).tcp, 0u);
}

TEST(IpvsCodec, Strings) {
  VirtualServer vs;
  vs.address = ip("10.96.0.1");
  vs.port = 443;
  EXPECT_EQ(vs.str(), "10.96.0.1:443/TCP");
  EXPECT_STREQ(to_string(ForwardMethod::kMasquerade), "Masq");
  VirtualServer hashed = vs;
  hashed.flags = kFlagHashed;
  EXPECT_TRUE(vs.same_config(hashed));
  hashed.netmask = 32;
  EXPECT_TRUE(vs.same_config(hashed));
  hashed.scheduler = "wrr";
  EXPECT_FALSE(vs.same_config(hashed));
}

// A scratch /proc for detection.
class FakeProc {
 public:
  FakeProc() {
    char tmpl[] = "/tmp/knode-proc.XXXXXX";
    root_ = mkdtemp(tmpl);
  }
  ~FakeProc() { std::filesystem::remove_all(root_); }
  void file(const std::string& rel, const std::string& text = "") {
    std::filesystem::create_directories(std::filesystem::path(root_ + "/" + rel).parent_path());
    std::ofstream(root_ + "/" + rel) << text;
  }
  const std::string& root() const { return root_; }

 private:
  std::string root_;
};

TEST(IpvsDetect, RequiredModulesFollowTheSchedulers) {
  EXPECT_EQ(required_modules({"rr", "wrr", "rr"}),
            (std::vector<std::string>{"ip_vs", "ip_vs_rr", "ip_vs_wrr", "nf_conntrack"}));
}

TEST(IpvsDetect, KernelWithoutModulesOrIpvsFallsBack) {
  FakeProc proc;  // no /proc/modules: no loadable modules, as on this build host
  DetectOptions o;
  o.proc_root = proc.root();
  o.modules_root = proc.root() + "/nolib";
  o.genl_family_present = [] { return false; };
  bool modprobe_called = false;
  o.modprobe = [&](const std::vector<std::string>&, std::string*) {
    modprobe_called = true;
    return 1;
  };
  Detection d = detect(o);
  EXPECT_FALSE(d.available());
  EXPECT_FALSE(modprobe_called);
  ASSERT_FALSE(d.missing.empty());
  EXPECT_EQ(d.missing[0], "ip_vs");
  EXPECT_NE(d.summary().find("IPVS unavailable: missing ip_vs"), std::string::npos) << d.summary();
  EXPECT_NE(d.hint().find("--proxy-mode=iptables"), std::string::npos) << d.hint();
}

TEST(IpvsDetect, ModprobeLoadsWhatIsMissing) {
  FakeProc proc;
  proc.file("modules", "nf_conntrack 172032 0 - Live 0x0\n");
  proc.file("sys/net/netfilter/nf_conntrack_max", "65536\n");
  DetectOptions o;
  o.proc_root = proc.root();
  o.modules_root = proc.root() + "/nolib";
  bool loaded = false;
  o.genl_family_present = [&] { return loaded; };
  std::vector<std::string> asked;
  o.modprobe = [&](const std::vector<std::string>& mods, std::string*) {
    asked = mods;
    proc.file("modules",
              "ip_vs_sh 16384 0 - Live 0x0\nip_vs_wrr 16384 0 - Live 0x0\n"
              "ip_vs_rr 16384 0 - Live 0x0\nip_vs 180224 6 - Live 0x0\n"
              "nf_conntrack 172032 1 ip_vs, Live 0x0\n");
    proc.file("net/ip_vs");
    loaded = true;
    return 0;
  };
  Detection d = detect(o);
  EXPECT_TRUE(d.modprobe_tried);
  EXPECT_EQ(asked, (std::vector<std::string>{"ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_sh",
                                             "nf_conntrack"}));
  EXPECT_TRUE(d.available()) << d.summary();
}

TEST(IpvsDetect, ModularKernelMissingASchedulerSaysWhichAndHow) {
  FakeProc proc;
  proc.file("modules", "ip_vs_rr 16384 0 - Live 0x0\nip_vs 180224 6 - Live 0x0\n"
                       "nf_conntrack 172032 1 ip_vs, Live 0x0\n");
  proc.file("net/ip_vs");
  DetectOptions o;
  o.proc_root = proc.root();
  o.modules_root = proc.root() + "/nolib";
  o.genl_family_present = [] { return true; };
  o.modprobe = [](const std::vector<std::string>&, std::string* out) {
    *out = "modprobe: FATAL: Module ip_vs_wrr not found\n";
    return 1;
  };
  Detection d = detect(o);
  EXPECT_FALSE(d.available());
  EXPECT_EQ(d.missing, (std::vector<std::string>{"ip_vs_wrr", "ip_vs_sh"}));
  EXPECT_EQ(d.hint().rfind("load the modules with 'modprobe -a ip_vs_wrr ip_vs_sh'", 0), 0u)
      << d.hint();
}

// On the build host (no IPVS in the kernel) detection must say so; where the kernel
// does have IPVS, it must agree with the netlink probe.
TEST(IpvsDetect, ThisKernelIsConsistent) {
  DetectOptions o;
  o.try_modprobe = false;
  Detection d = detect(o);
  auto ipvs = open_netlink_ipvs();
  ASSERT_TRUE(ipvs.ok()) << ipvs.error();
  bool family = (*ipvs)->is_available();
  EXPECT_EQ(d.genl_family, family);
  if (!family) {
    EXPECT_FALSE(d.available());
    EXPECT_EQ(d.missing.front(), "ip_vs") << d.summary();
    auto st = (*ipvs)->add_service(VirtualServer{ip("10.96.0.1"), 80});
    EXPECT_FALSE(st.ok());
    EXPECT_NE(st.message().find("add IPVS service 10.96.0.1:80/TCP: IPVS is not available"),
              std::string::npos) << st.message();
  }
  std::printf("detect on this kernel: %s\n", d.summary().c_str());
}

TEST(FakeIpvs, BehavesLikeTheKernel) {
  FakeIpvs fake;
  VirtualServer vs{ip("10.96.0.1"), 443};
  EXPECT_TRUE(fake.add_service(vs).ok());
  EXPECT_EQ(fake.add_service(vs).message(), "add IPVS service 10.96.0.1:443/TCP: File exists");
  RealServer rs{ip("10.244.0.5"), 8443, 2};
  EXPECT_TRUE(fake.add_destination(vs, rs).ok());
  EXPECT_EQ(fake.add_destination(vs, rs).error_number(), EEXIST);
  rs.weight = 0;
  EXPECT_TRUE(fake.update_destination(vs, rs).ok());
  EXPECT_EQ(fake.list_destinations(vs)->at(0).weight, 0u);
  EXPECT_EQ(fake.delete_service(VirtualServer{ip("10.96.0.2"), 1}).error_number(), ESRCH);
  EXPECT_EQ(fake.list_services()->at(0).flags, kFlagHashed);
  EXPECT_EQ(fake.calls.mutations(), 6);  // failed calls count too
}

}  // namespace
}  // namespace knode::ipvs
