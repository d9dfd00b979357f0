// ipset nfnetlink messages built and parsed without a kernel; entry text as `ipset list`
// prints it; the fake. Label: unit.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/ipset/ip_set.h>
#include <linux/netfilter/ipset/ip_set_hash.h>
#include <linux/netfilter/nfnetlink.h>

#include <map>
#include <vector>

#include "fakes/fake_ipset.h"
#include "ipset/codec.h"

namespace knode::ipset {
namespace {

net::IPAddress ip(const char* s) { return *net::IPAddress::Parse(s); }
net::Cidr cidr(const char* s) { return *net::Cidr::Parse(s); }

// Top-level attributes of a message, raw (type with flags kept).
std::map<int, const nlattr*> walk(const void* start, int left) {
  std::map<int, const nlattr*> out;
  const auto* a = static_cast<const nlattr*>(start);
  while (mnl_attr_ok(a, left)) {
    out[mnl_attr_get_type(a)] = a;
    left -= static_cast<int>(MNL_ALIGN(a->nla_len));
    a = reinterpret_cast<const nlattr*>(reinterpret_cast<const char*>(a) + MNL_ALIGN(a->nla_len));
  }
  return out;
}
std::map<int, const nlattr*> attrs_of(const nlmsghdr* nlh) {
  const char* start = static_cast<const char*>(mnl_nlmsg_get_payload_offset(nlh, sizeof(nfgenmsg)));
  return walk(start, static_cast<int>(reinterpret_cast<const char*>(mnl_nlmsg_get_payload_tail(nlh)) - start));
}
std::map<int, const nlattr*> nested_of(const nlattr* nest) {
  return walk(mnl_attr_get_payload(nest), static_cast<int>(mnl_attr_get_payload_len(nest)));
}
bool net_order(const nlattr* a) { return (a->nla_type & NLA_F_NET_BYTEORDER) != 0; }
bool nested(const nlattr* a) { return (a->nla_type & NLA_F_NESTED) != 0; }

TEST(IpsetCodec, CreateHashIpPort) {
  SetSpec spec{"KUBE-CLUSTER-IP", SetType::kHashIpPort};
  codec::Request req(IPSET_CMD_CREATE, NLM_F_EXCL, codec::nfproto_of(spec));
  ASSERT_TRUE(req.put_create(spec, 6).ok());
  const nlmsghdr* nlh = req.header();
  EXPECT_EQ(nlh->nlmsg_type, (NFNL_SUBSYS_IPSET << 8) | IPSET_CMD_CREATE);
  EXPECT_EQ(nlh->nlmsg_flags, NLM_F_REQUEST | NLM_F_EXCL);
  const auto* nfg = static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(nlh));
  EXPECT_EQ(nfg->nfgen_family, NFPROTO_IPV4);
  auto a = attrs_of(nlh);
  EXPECT_EQ(mnl_attr_get_u8(a[IPSET_ATTR_PROTOCOL]), IPSET_PROTOCOL);
  EXPECT_STREQ(mnl_attr_get_str(a[IPSET_ATTR_SETNAME]), "KUBE-CLUSTER-IP");
  EXPECT_STREQ(mnl_attr_get_str(a[IPSET_ATTR_TYPENAME]), "hash:ip,port");
  EXPECT_EQ(mnl_attr_get_u8(a[IPSET_ATTR_REVISION]), 6);
  ASSERT_TRUE(a[IPSET_ATTR_DATA]);
  EXPECT_TRUE(nested(a[IPSET_ATTR_DATA]));
  auto d = nested_of(a[IPSET_ATTR_DATA]);
  ASSERT_TRUE(d[IPSET_ATTR_HASHSIZE]);
  EXPECT_TRUE(net_order(d[IPSET_ATTR_HASHSIZE]));
  EXPECT_EQ(ntohl(mnl_attr_get_u32(d[IPSET_ATTR_HASHSIZE])), 1024u);
  EXPECT_EQ(ntohl(mnl_attr_get_u32(d[IPSET_ATTR_MAXELEM])), 65536u);
}

TEST(IpsetCodec, CreateBitmapPortCarriesTheRange) {
  SetSpec spec{"KUBE-NODE-PORT-TCP", SetType::kBitmapPort};
  spec.port_from = 30000;
  spec.port_to = 32767;
  codec::Request req(IPSET_CMD_CREATE, 0, codec::nfproto_of(spec));
  ASSERT_TRUE(req.put_create(spec, 3).ok());
  auto d = nested_of(attrs_of(req.header())[IPSET_ATTR_DATA]);
  EXPECT_EQ(ntohs(mnl_attr_get_u16(d[IPSET_ATTR_PORT])), 30000);
  EXPECT_EQ(ntohs(mnl_attr_get_u16(d[IPSET_ATTR_PORT_TO])), 32767);
  EXPECT_EQ(d.count(IPSET_ATTR_HASHSIZE), 0u);
  EXPECT_EQ(codec::nfproto_of(spec), NFPROTO_UNSPEC);
}

TEST(IpsetCodec, CreateRejectsBadNamesAndRanges) {
  codec::Request req(IPSET_CMD_CREATE, 0, NFPROTO_IPV4);
  EXPECT_EQ(req.put_create(SetSpec{std::string(32, 'X'), SetType::kHashIp}, 1).error_number(), EINVAL);
  SetSpec bad{"P", SetType::kBitmapPort};
  bad.port_from = 10;
  bad.port_to = 5;
  EXPECT_EQ(req.put_create(bad, 1).error_number(), EINVAL);
}

TEST(IpsetCodec, EntryHashIpPortNet) {
  Entry e;
  e.ip = ip("10.96.0.1");
  e.protocol = net::Protocol::kUDP;
  e.port = 53;
  e.net = cidr("192.168.0.0/16");
  codec::Request req(IPSET_CMD_ADD, 0, NFPROTO_UNSPEC);
  req.put_setname("KUBE-LOAD-BALANCER-SOURCE-CIDR");
  ASSERT_TRUE(req.put_entry(SetType::kHashIpPortNet, e).ok());
  auto d = nested_of(attrs_of(req.header())[IPSET_ATTR_DATA]);
  ASSERT_TRUE(d[IPSET_ATTR_IP] && nested(d[IPSET_ATTR_IP]));
  auto ipn = nested_of(d[IPSET_ATTR_IP]);
  ASSERT_TRUE(ipn[IPSET_ATTR_IPADDR_IPV4]);
  EXPECT_TRUE(net_order(ipn[IPSET_ATTR_IPADDR_IPV4]));
  EXPECT_EQ(mnl_attr_get_u32(ipn[IPSET_ATTR_IPADDR_IPV4]), e.ip.v4_be());
  EXPECT_EQ(ntohs(mnl_attr_get_u16(d[IPSET_ATTR_PORT])), 53);
  EXPECT_TRUE(net_order(d[IPSET_ATTR_PORT]));
  EXPECT_EQ(mnl_attr_get_u8(d[IPSET_ATTR_PROTO]), IPPROTO_UDP);
  EXPECT_EQ(mnl_attr_get_u8(d[IPSET_ATTR_CIDR2]), 16);
  auto ip2 = nested_of(d[IPSET_ATTR_IP2]);
  EXPECT_EQ(mnl_attr_get_u32(ip2[IPSET_ATTR_IPADDR_IPV4]), ip("192.168.0.0").v4_be());
}

TEST(IpsetCodec, EntryWithoutItsFieldsIsRejected) {
  codec::Request req(IPSET_CMD_ADD, 0, NFPROTO_UNSPEC);
  EXPECT_EQ(req.put_entry(SetType::kHashIpPort, Entry{}).error_number(), EINVAL);
  Entry e;
  e.ip = ip("10.0.0.1");
  EXPECT_EQ(req.put_entry(SetType::kHashIpPortIp, e).error_number(), EINVAL);
}

TEST(IpsetCodec, EntryTextAsIpsetListPrintsIt) {
  Entry e;
  e.ip = ip("10.96.0.1");
  e.port = 80;
  EXPECT_EQ(e.str(SetType::kHashIpPort), "10.96.0.1,tcp:80");
  e.ip2 = ip("10.96.0.1");
  EXPECT_EQ(e.str(SetType::kHashIpPortIp), "10.96.0.1,tcp:80,10.96.0.1");
  e.net = cidr("10.0.0.0/8");
  EXPECT_EQ(e.str(SetType::kHashIpPortNet), "10.96.0.1,tcp:80,10.0.0.0/8");
  EXPECT_EQ(e.str(SetType::kHashNet), "10.0.0.0/8");
  e.net = cidr("10.1.2.3/32");
  EXPECT_EQ(e.str(SetType::kHashNet), "10.1.2.3");
  e.port = 30080;
  EXPECT_EQ(e.str(SetType::kBitmapPort), "30080");
  EXPECT_EQ(parse_set_type("hash:ip,port,net"), SetType::kHashIpPortNet);
  EXPECT_FALSE(parse_set_type("list:set"));
}

// A list reply as the kernel sends it: header, then an ADT nest of entries.
std::vector<char> list_reply(bool with_header) {
  std::vector<char> buf(4096);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = (NFNL_SUBSYS_IPSET << 8) | IPSET_CMD_LIST;
  mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg));
  mnl_attr_put_u8(nlh, IPSET_ATTR_PROTOCOL, IPSET_PROTOCOL);
  mnl_attr_put_strz(nlh, IPSET_ATTR_SETNAME, "KUBE-LOOP-BACK");
  if (with_header) {
    mnl_attr_put_strz(nlh, IPSET_ATTR_TYPENAME, "hash:ip,port,ip");
    mnl_attr_put_u8(nlh, IPSET_ATTR_FAMILY, NFPROTO_IPV4);
    mnl_attr_put_u8(nlh, IPSET_ATTR_REVISION, 5);
    nlattr* d = mnl_attr_nest_start(nlh, IPSET_ATTR_DATA);
    mnl_attr_put_u32(nlh, IPSET_ATTR_HASHSIZE | NLA_F_NET_BYTEORDER, htonl(1024));
    mnl_attr_put_u32(nlh, IPSET_ATTR_MAXELEM | NLA_F_NET_BYTEORDER, htonl(65536));
    mnl_attr_put_u32(nlh, IPSET_ATTR_REFERENCES | NLA_F_NET_BYTEORDER, htonl(2));
    mnl_attr_nest_end(nlh, d);
  }
  nlattr* adt = mnl_attr_nest_start(nlh, IPSET_ATTR_ADT);
  for (uint32_t host : {0x0af40102u, 0x0af40203u}) {
    nlattr* d = mnl_attr_nest_start(nlh, IPSET_ATTR_DATA);
    for (int which : {int(IPSET_ATTR_IP), int(IPSET_ATTR_IP2)}) {
      nlattr* n = mnl_attr_nest_start(nlh, which);
      mnl_attr_put_u32(nlh, IPSET_ATTR_IPADDR_IPV4 | NLA_F_NET_BYTEORDER, htonl(host));
      mnl_attr_nest_end(nlh, n);
    }
    mnl_attr_put_u16(nlh, IPSET_ATTR_PORT | NLA_F_NET_BYTEORDER, htons(8080));
    mnl_attr_put_u8(nlh, IPSET_ATTR_PROTO, IPPROTO_TCP);
    mnl_attr_nest_end(nlh, d);
  }
  mnl_attr_nest_end(nlh, adt);
  return buf;
}

TEST(IpsetCodec, ParseListReply) {
  auto buf = list_reply(true);
  auto chunk = codec::parse_list_reply(reinterpret_cast<const nlmsghdr*>(buf.data()), std::nullopt);
  ASSERT_TRUE(chunk.ok()) << chunk.error();
  EXPECT_EQ(chunk->name, "KUBE-LOOP-BACK");
  ASSERT_TRUE(chunk->header);
  EXPECT_EQ(chunk->header->type, SetType::kHashIpPortIp);
  EXPECT_EQ(chunk->header->family, 4);
  EXPECT_EQ(chunk->revision, 5);
  EXPECT_EQ(chunk->references, 2u);
  ASSERT_EQ(chunk->entries.size(), 2u);
  EXPECT_EQ(chunk->entries[0].str(SetType::kHashIpPortIp), "10.244.1.2,tcp:8080,10.244.1.2");
  EXPECT_EQ(chunk->entries[1].str(SetType::kHashIpPortIp), "10.244.2.3,tcp:8080,10.244.2.3");
}

TEST(IpsetCodec, ContinuationChunkNeedsTheTypeFromTheFirst) {
  auto buf = list_reply(false);
  const auto* nlh = reinterpret_cast<const nlmsghdr*>(buf.data());
  EXPECT_FALSE(codec::parse_list_reply(nlh, std::nullopt).ok());
  auto chunk = codec::parse_list_reply(nlh, SetType::kHashIpPortIp);
  ASSERT_TRUE(chunk.ok()) << chunk.error();
  EXPECT_FALSE(chunk->header);
  EXPECT_EQ(chunk->entries.size(), 2u);
}

// A reply message whose attributes `fill` writes after the nfgenmsg.
template <typename Fill>
std::vector<char> reply(uint8_t cmd, Fill&& fill) {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = (NFNL_SUBSYS_IPSET << 8) | cmd;
  mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg));
  mnl_attr_put_u8(nlh, IPSET_ATTR_PROTOCOL, IPSET_PROTOCOL);
  fill(nlh);
  return buf;
}
const nlmsghdr* hdr(const std::vector<char>& buf) { return reinterpret_cast<const nlmsghdr*>(buf.data()); }

// mnl_attr_get_str is strlen over the payload: a name without its NUL read on past it.
TEST(IpsetCodec, SetNameWithoutItsNulIsRefused) {
  auto buf = reply(IPSET_CMD_LIST, [](nlmsghdr* nlh) { mnl_attr_put(nlh, IPSET_ATTR_SETNAME, 4, "KUBE"); });
  EXPECT_FALSE(codec::parse_list_reply(hdr(buf), SetType::kHashIp).ok());
  auto type = reply(IPSET_CMD_LIST, [](nlmsghdr* nlh) {
    mnl_attr_put_strz(nlh, IPSET_ATTR_SETNAME, "KUBE");
    mnl_attr_put(nlh, IPSET_ATTR_TYPENAME, 7, "hash:ip");
  });
  EXPECT_FALSE(codec::parse_list_reply(hdr(type), std::nullopt).ok());
}

TEST(IpsetCodec, IntegersOfTheWrongSizeAreRefused) {
  auto empty_rev = reply(IPSET_CMD_TYPE, [](nlmsghdr* nlh) { mnl_attr_put(nlh, IPSET_ATTR_REVISION, 0, nullptr); });
  EXPECT_FALSE(codec::parse_type_reply(hdr(empty_rev)).ok());
  auto good_rev = reply(IPSET_CMD_TYPE, [](nlmsghdr* nlh) { mnl_attr_put_u8(nlh, IPSET_ATTR_REVISION, 7); });
  auto r = codec::parse_type_reply(hdr(good_rev));
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->max, 7);
  EXPECT_EQ(r->min, 7);
  // A header whose hash size is two bytes.
  auto header = reply(IPSET_CMD_LIST, [](nlmsghdr* nlh) {
    mnl_attr_put_strz(nlh, IPSET_ATTR_SETNAME, "KUBE");
    mnl_attr_put_strz(nlh, IPSET_ATTR_TYPENAME, "hash:ip");
    nlattr* d = mnl_attr_nest_start(nlh, IPSET_ATTR_DATA);
    mnl_attr_put_u16(nlh, IPSET_ATTR_HASHSIZE | NLA_F_NET_BYTEORDER, htons(1024));
    mnl_attr_nest_end(nlh, d);
  });
  EXPECT_FALSE(codec::parse_list_reply(hdr(header), std::nullopt).ok());
}

TEST(IpsetCodec, EntryWithAShortFieldIsRefused) {
  auto entry = [](bool short_port, bool short_ip) {
    return reply(IPSET_CMD_LIST, [=](nlmsghdr* nlh) {
      mnl_attr_put_strz(nlh, IPSET_ATTR_SETNAME, "KUBE");
      nlattr* adt = mnl_attr_nest_start(nlh, IPSET_ATTR_ADT);
      nlattr* d = mnl_attr_nest_start(nlh, IPSET_ATTR_DATA);
      nlattr* n = mnl_attr_nest_start(nlh, IPSET_ATTR_IP);
      if (short_ip) {
        mnl_attr_put_u16(nlh, IPSET_ATTR_IPADDR_IPV4 | NLA_F_NET_BYTEORDER, 0x0a0a);
      } else {
        mnl_attr_put_u32(nlh, IPSET_ATTR_IPADDR_IPV4 | NLA_F_NET_BYTEORDER, htonl(0x0af40102u));
      }
      mnl_attr_nest_end(nlh, n);
      if (short_port) {
        mnl_attr_put_u8(nlh, IPSET_ATTR_PORT | NLA_F_NET_BYTEORDER, 80);
      } else {
        mnl_attr_put_u16(nlh, IPSET_ATTR_PORT | NLA_F_NET_BYTEORDER, htons(80));
      }
      mnl_attr_put_u8(nlh, IPSET_ATTR_PROTO, IPPROTO_TCP);
      mnl_attr_nest_end(nlh, d);
      mnl_attr_nest_end(nlh, adt);
    });
  };
  auto good = entry(false, false);
  auto chunk = codec::parse_list_reply(hdr(good), SetType::kHashIpPort);
  ASSERT_TRUE(chunk.ok()) << chunk.error();
  ASSERT_EQ(chunk->entries.size(), 1u);
  EXPECT_EQ(chunk->entries[0].str(SetType::kHashIpPort), "10.244.1.2,tcp:80");
  EXPECT_FALSE(codec::parse_list_reply(hdr(entry(true, false)), SetType::kHashIpPort).ok());
  EXPECT_FALSE(codec::parse_list_reply(hdr(entry(false, true)), SetType::kHashIpPort).ok());
}

TEST(IpsetCodec, ErrorTextFollowsTheCommand) {
  EXPECT_EQ(codec::error_text(IPSET_ERR_EXIST, IPSET_CMD_ADD, SetType::kHashIpPort),
            "Element cannot be added to the set: it's already added");
  EXPECT_EQ(codec::error_text(IPSET_ERR_EXIST, IPSET_CMD_DEL, SetType::kHashIpPort),
            "Element cannot be deleted from the set: it's not added");
  EXPECT_EQ(codec::error_text(EEXIST, IPSET_CMD_CREATE, std::nullopt),
            "Set cannot be created: set with the same name already exists");
  EXPECT_EQ(codec::error_text(IPSET_ERR_TYPE_SPECIFIC, IPSET_CMD_ADD, SetType::kBitmapPort),
            "Element is out of the range of the set");
  EXPECT_EQ(codec::error_text(IPSET_ERR_HASH_FULL, IPSET_CMD_ADD, SetType::kHashIp),
            "Hash is full, cannot add more elements");
}

TEST(FakeIpset, BehavesLikeTheKernel) {
  FakeIpset fake;
  SetSpec spec{"KUBE-CLUSTER-IP", SetType::kHashIpPort};
  ASSERT_TRUE(fake.create_set(spec, false).ok());
  EXPECT_EQ(fake.create_set(spec, false).error_number(), EEXIST);
  EXPECT_TRUE(fake.create_set(spec, true).ok());
  Entry e;
  e.ip = ip("10.96.0.1");
  e.port = 443;
  ASSERT_TRUE(fake.add_entry(spec.name, e, false).ok());
  Status st = fake.add_entry(spec.name, e, false);
  EXPECT_EQ(st.error_number(), IPSET_ERR_EXIST);
  EXPECT_EQ(st.message(), "add 10.96.0.1,tcp:443 to ipset KUBE-CLUSTER-IP: Element cannot be "
                          "added to the set: it's already added");
  EXPECT_TRUE(*fake.test_entry(spec.name, e));
  fake.set_references(spec.name, 1);
  EXPECT_EQ(fake.destroy_set(spec.name).error_number(), IPSET_ERR_BUSY);
  fake.set_references(spec.name, 0);
  EXPECT_TRUE(fake.destroy_set(spec.name).ok());
  EXPECT_EQ(fake.flush_set(spec.name).error_number(), ENOENT);
}

}  // namespace
}  // namespace knode::ipset
