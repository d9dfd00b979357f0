#include "knode/dataplane/nftables/exprs.h"

#include <arpa/inet.h>
#include <netinet/in.h>  // before the linux/ headers, which it guards against
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/rtnetlink.h>

#include <algorithm>
#include <cstring>

#include "nftables/udata.h"

namespace knode::nftables {
namespace {

constexpr uint32_t kSaddrOffset = 12, kDaddrOffset = 16;

Bytes u32_raw(uint32_t v) { return Bytes(reinterpret_cast<const char*>(&v), 4); }

// nft's "typeof" notes for the keys it knows: [expr type][expr data], nested TLVs.
Bytes typeof_note(uint32_t expr_type, const Bytes& data) {
  Bytes out;
  udata::put_u32(out, 0, expr_type);
  udata::put(out, 1, data);
  return out;
}
using udata::kDescIp, udata::kDescTh, udata::kExprConcat, udata::kExprNumgen, udata::kExprPayload,
    udata::kExprVerdict, udata::kIpDaddr, udata::kIpSaddr, udata::kThDport;
// A payload field as nft notes it: protocol description and field number.
Bytes payload_typeof(uint32_t desc, uint32_t field) {
  Bytes data;
  udata::put_u32(data, 0, desc);
  udata::put_u32(data, 1, field);
  return typeof_note(kExprPayload, data);
}
Bytes ip_saddr_typeof() { return payload_typeof(kDescIp, kIpSaddr); }
// `numgen random mod M`: mode (1 random), modulus, offset.
Bytes numgen_random_typeof(uint32_t modulus) {
  Bytes data;
  udata::put_u32(data, 0, NFT_NG_RANDOM);
  udata::put_u32(data, 1, modulus);
  udata::put_u32(data, 2, 0);
  return typeof_note(kExprNumgen, data);
}
// `ip daddr . th dport`: a concatenation, its parts numbered from 0.
Bytes daddr_dport_typeof() {
  Bytes parts;
  udata::put(parts, 0, payload_typeof(kDescIp, kIpDaddr));
  udata::put(parts, 1, payload_typeof(kDescTh, kThDport));
  return typeof_note(kExprConcat, parts);
}
constexpr uint32_t kByteorderHost = 1, kByteorderBig = 2;

Payload load(uint32_t base, uint32_t offset, uint32_t len, uint32_t dreg = reg::k1) {
  return Payload{base, offset, len, dreg};
}

// An anonymous map keyed by `numgen random mod n` (0 .. n-1), as nft makes it.
SetSpec numgen_map_spec(size_t n, uint32_t data_type, uint32_t data_len) {
  SetSpec s;
  s.flags = NFT_SET_ANONYMOUS | NFT_SET_CONSTANT | NFT_SET_MAP;
  s.key_type = static_cast<uint32_t>(Datatype::kInteger);
  s.key_len = 4;
  s.data_type = data_type;
  s.data_len = data_len;
  s.size = static_cast<uint32_t>(n);
  s.userdata.key_byteorder = kByteorderHost;
  s.userdata.data_byteorder = 0;
  s.userdata.data_interval = 0;
  return s;
}

}  // namespace

Bytes host_u32(uint32_t v) { return u32_raw(v); }

Bytes ipv4_key(const net::IPAddress& ip) {
  return Bytes(reinterpret_cast<const char*>(ip.bytes().data()), 4);
}

Bytes proto_key(uint8_t protocol) {
  Bytes b(4, '\0');
  b[0] = static_cast<char>(protocol);
  return b;
}

Bytes port_key(uint16_t port) {
  Bytes b(4, '\0');
  b[0] = static_cast<char>(port >> 8);
  b[1] = static_cast<char>(port & 0xff);
  return b;
}

Element verdict_element(Bytes key, Verdict verdict, std::string comment) {
  Element e;
  e.key = std::move(key);
  e.verdict = std::move(verdict);
  e.comment = udata::clamp_comment(comment);  // as it reads back
  return e;
}

Element key_element(Bytes key) {
  Element e;
  e.key = std::move(key);
  return e;
}

RuleBuilder& RuleBuilder::ip_addr(uint32_t offset, const net::Cidr& cidr, bool negate) {
  const auto& bytes = cidr.address().bytes();
  const int prefix = cidr.prefix();
  const uint32_t op = negate ? NFT_CMP_NEQ : NFT_CMP_EQ;
  if (prefix == 32 || (prefix > 0 && prefix % 8 == 0)) {
    // Whole bytes: nft loads only the prefix's bytes.
    uint32_t len = static_cast<uint32_t>(prefix / 8);
    rule_.exprs.push_back(load(NFT_PAYLOAD_NETWORK_HEADER, offset, len));
    rule_.exprs.push_back(Cmp{reg::k1, op, Bytes(reinterpret_cast<const char*>(bytes.data()), len)});
    return *this;
  }
  uint32_t mask = prefix == 0 ? 0 : htonl(~uint32_t{0} << (32 - prefix));
  rule_.exprs.push_back(load(NFT_PAYLOAD_NETWORK_HEADER, offset, 4));
  rule_.exprs.push_back(Bitwise{reg::k1, reg::k1, 4, u32_raw(mask), u32_raw(0)});
  rule_.exprs.push_back(Cmp{reg::k1, op, Bytes(reinterpret_cast<const char*>(bytes.data()), 4)});
  return *this;
}

RuleBuilder& RuleBuilder::ip_saddr(const net::Cidr& cidr, bool negate) { return ip_addr(kSaddrOffset, cidr, negate); }
RuleBuilder& RuleBuilder::ip_daddr(const net::Cidr& cidr, bool negate) { return ip_addr(kDaddrOffset, cidr, negate); }
RuleBuilder& RuleBuilder::ip_daddr(const net::IPAddress& ip, bool negate) {
  return ip_addr(kDaddrOffset, net::Cidr(ip, 32), negate);
}

RuleBuilder& RuleBuilder::ip_saddr_in(const std::vector<net::Cidr>& cidrs, bool negate) {
  if (cidrs.size() == 1) return ip_saddr(cidrs[0], negate);  // nft turns `{ x }` into a compare
  // An interval set as nft sends it: each range as a start element and an end element
  // (the first address after it), a leading end at 0.0.0.0 when the first range starts
  // above it, and ranges merged where they touch.
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto& c : cidrs) {
    uint64_t start = c.address().v4_host();
    uint64_t size = uint64_t{1} << (32 - c.prefix());
    ranges.emplace_back(start, start + size);
  }
  std::sort(ranges.begin(), ranges.end());
  std::vector<std::pair<uint64_t, uint64_t>> merged;
  for (const auto& r : ranges) {
    if (!merged.empty() && r.first <= merged.back().second) {
      merged.back().second = std::max(merged.back().second, r.second);
    } else {
      merged.push_back(r);
    }
  }
  auto set = std::make_shared<AnonymousSet>();
  SetSpec& s = set->spec;
  s.flags = NFT_SET_ANONYMOUS | NFT_SET_CONSTANT | NFT_SET_INTERVAL;
  s.key_type = static_cast<uint32_t>(Datatype::kIPv4Addr);
  s.key_len = 4;
  s.size = static_cast<uint32_t>(2 * merged.size() + (merged.front().first != 0 ? 1 : 0));
  s.userdata.key_byteorder = kByteorderBig;
  s.userdata.merge_elements = 1;
  s.userdata.key_typeof = ip_saddr_typeof();
  auto key = [](uint64_t host) { return ipv4_key(net::IPAddress::V4(static_cast<uint32_t>(host))); };
  if (merged.front().first != 0) {
    Element e = key_element(key(0));
    e.flags = NFT_SET_ELEM_INTERVAL_END;
    set->elements.push_back(std::move(e));
  }
  for (const auto& [start, end] : merged) {
    Element e = key_element(key(start));
    if (end > 0xffffffffull) {
      e.udata_flags = 1;  // open to the end of the address space: no end element
      set->elements.push_back(std::move(e));
      continue;
    }
    set->elements.push_back(std::move(e));
    Element stop = key_element(key(end));
    stop.flags = NFT_SET_ELEM_INTERVAL_END;
    set->elements.push_back(std::move(stop));
  }
  rule_.exprs.push_back(load(NFT_PAYLOAD_NETWORK_HEADER, kSaddrOffset, 4));
  Lookup l;
  l.sreg = reg::k1;
  l.invert = negate;
  l.anonymous = std::move(set);
  rule_.exprs.push_back(std::move(l));
  return *this;
}

RuleBuilder& RuleBuilder::ip_saddr_in_set(const std::string& set, bool negate) {
  rule_.exprs.push_back(load(NFT_PAYLOAD_NETWORK_HEADER, kSaddrOffset, 4));
  Lookup l;
  l.sreg = reg::k1;
  l.invert = negate;
  l.set = set;
  rule_.exprs.push_back(std::move(l));
  return *this;
}

RuleBuilder& RuleBuilder::ip_daddr_in_set(const std::string& set, bool negate) {
  rule_.exprs.push_back(load(NFT_PAYLOAD_NETWORK_HEADER, kDaddrOffset, 4));
  Lookup l;
  l.sreg = reg::k1;
  l.invert = negate;
  l.set = set;
  rule_.exprs.push_back(std::move(l));
  return *this;
}

RuleBuilder& RuleBuilder::ct_state(uint32_t bits) {
  rule_.exprs.push_back(Ct{NFT_CT_STATE, reg::k1});
  rule_.exprs.push_back(Bitwise{reg::k1, reg::k1, 4, u32_raw(bits), u32_raw(0)});
  rule_.exprs.push_back(Cmp{reg::k1, NFT_CMP_NEQ, u32_raw(0)});
  return *this;
}

RuleBuilder& RuleBuilder::fib_daddr_type_local() {
  rule_.exprs.push_back(Fib{NFTA_FIB_F_DADDR, NFT_FIB_RESULT_ADDRTYPE, reg::k1});
  rule_.exprs.push_back(Cmp{reg::k1, NFT_CMP_EQ, u32_raw(RTN_LOCAL)});
  return *this;
}

RuleBuilder& RuleBuilder::fib_saddr_type_local() {
  rule_.exprs.push_back(Fib{NFTA_FIB_F_SADDR, NFT_FIB_RESULT_ADDRTYPE, reg::k1});
  rule_.exprs.push_back(Cmp{reg::k1, NFT_CMP_EQ, u32_raw(RTN_LOCAL)});
  return *this;
}

RuleBuilder& RuleBuilder::meta_l4proto(uint8_t protocol) {
  rule_.exprs.push_back(Meta{NFT_META_L4PROTO, reg::k1, 0});
  rule_.exprs.push_back(Cmp{reg::k1, NFT_CMP_EQ, Bytes(1, static_cast<char>(protocol))});
  return *this;
}

RuleBuilder& RuleBuilder::mark_and_equals(uint32_t mask, uint32_t value, bool negate) {
  rule_.exprs.push_back(Meta{NFT_META_MARK, reg::k1, 0});
  rule_.exprs.push_back(Bitwise{reg::k1, reg::k1, 4, u32_raw(mask), u32_raw(0)});
  rule_.exprs.push_back(Cmp{reg::k1, negate ? NFT_CMP_NEQ : NFT_CMP_EQ, u32_raw(value)});
  return *this;
}

RuleBuilder& RuleBuilder::ct_status_dnat() {
  rule_.exprs.push_back(Ct{NFT_CT_STATUS, reg::k1});
  rule_.exprs.push_back(Bitwise{reg::k1, reg::k1, 4, u32_raw(IPS_DST_NAT), u32_raw(0)});
  rule_.exprs.push_back(Cmp{reg::k1, NFT_CMP_NEQ, u32_raw(0)});
  return *this;
}

RuleBuilder& RuleBuilder::saddr_daddr_proto_dport_in_set(const std::string& set) {
  rule_.exprs.push_back(load(NFT_PAYLOAD_NETWORK_HEADER, kSaddrOffset, 4, reg::k1));
  rule_.exprs.push_back(load(NFT_PAYLOAD_NETWORK_HEADER, kDaddrOffset, 4, reg::k32(1)));
  rule_.exprs.push_back(Meta{NFT_META_L4PROTO, reg::k32(2), 0});
  rule_.exprs.push_back(load(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, reg::k32(3)));
  Lookup l;
  l.sreg = reg::k1;
  l.set = set;
  rule_.exprs.push_back(std::move(l));
  return *this;
}

RuleBuilder& RuleBuilder::mark_set_or(uint32_t bits) {
  rule_.exprs.push_back(Meta{NFT_META_MARK, reg::k1, 0});
  rule_.exprs.push_back(Bitwise{reg::k1, reg::k1, 4, u32_raw(~bits), u32_raw(bits)});
  rule_.exprs.push_back(Meta{NFT_META_MARK, 0, reg::k1});
  return *this;
}

RuleBuilder& RuleBuilder::mark_set_xor(uint32_t bits) {
  rule_.exprs.push_back(Meta{NFT_META_MARK, reg::k1, 0});
  rule_.exprs.push_back(Bitwise{reg::k1, reg::k1, 4, u32_raw(~uint32_t{0}), u32_raw(bits)});
  rule_.exprs.push_back(Meta{NFT_META_MARK, 0, reg::k1});
  return *this;
}

RuleBuilder& RuleBuilder::vmap_daddr_proto_dport(const std::string& map) {
  // A concatenation: the first part in the 16-byte register 1, the rest in the 32-bit
  // registers after it, each part padded to 4 bytes.
  rule_.exprs.push_back(load(NFT_PAYLOAD_NETWORK_HEADER, kDaddrOffset, 4, reg::k1));
  rule_.exprs.push_back(Meta{NFT_META_L4PROTO, reg::k32(1), 0});
  rule_.exprs.push_back(load(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, reg::k32(2)));
  Lookup l;
  l.sreg = reg::k1;
  l.dreg = reg::kVerdict;
  l.set = map;
  rule_.exprs.push_back(std::move(l));
  return *this;
}

RuleBuilder& RuleBuilder::vmap_proto_dport(const std::string& map) {
  rule_.exprs.push_back(Meta{NFT_META_L4PROTO, reg::k1, 0});
  rule_.exprs.push_back(load(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, reg::k32(1)));
  Lookup l;
  l.sreg = reg::k1;
  l.dreg = reg::kVerdict;
  l.set = map;
  rule_.exprs.push_back(std::move(l));
  return *this;
}

RuleBuilder& RuleBuilder::numgen_random_vmap(const std::vector<Verdict>& targets) {
  auto set = std::make_shared<AnonymousSet>();
  set->spec = numgen_map_spec(targets.size(), NFT_DATA_VERDICT, 16);
  set->spec.userdata.data_typeof = typeof_note(kExprVerdict, {});
  for (size_t i = 0; i < targets.size(); ++i) {
    set->elements.push_back(verdict_element(u32_raw(static_cast<uint32_t>(i)), targets[i]));
  }
  numgen_random_lookup(std::move(set), reg::kVerdict);
  return *this;
}

void RuleBuilder::numgen_random_lookup(std::shared_ptr<AnonymousSet> map, uint32_t dreg) {
  rule_.exprs.push_back(Numgen{reg::k1, static_cast<uint32_t>(map->elements.size()), NFT_NG_RANDOM, 0});
  Lookup l;
  l.sreg = reg::k1;
  l.dreg = dreg;
  l.anonymous = std::move(map);
  rule_.exprs.push_back(std::move(l));
}

RuleBuilder& RuleBuilder::numgen_random_equals(uint32_t modulus, uint32_t value) {
  rule_.exprs.push_back(Numgen{reg::k1, modulus, NFT_NG_RANDOM, 0});
  rule_.exprs.push_back(Cmp{reg::k1, NFT_CMP_EQ, u32_raw(value)});
  return *this;
}

RuleBuilder& RuleBuilder::update_set_with_saddr(const std::string& set) {
  rule_.exprs.push_back(load(NFT_PAYLOAD_NETWORK_HEADER, kSaddrOffset, 4));
  rule_.exprs.push_back(Dynset{NFT_DYNSET_OP_UPDATE, reg::k1, set, 0});
  return *this;
}

RuleBuilder& RuleBuilder::dnat_to(const net::IPAddress& ip, uint16_t port) {
  Bytes p(2, '\0');
  p[0] = static_cast<char>(port >> 8);
  p[1] = static_cast<char>(port & 0xff);
  rule_.exprs.push_back(Immediate{reg::k1, ipv4_key(ip), {}});
  rule_.exprs.push_back(Immediate{reg::k2, p, {}});
  rule_.exprs.push_back(Nat{NFT_NAT_DNAT, NFPROTO_IPV4, reg::k1, reg::k1, reg::k2, reg::k2,
                            NF_NAT_RANGE_MAP_IPS | NF_NAT_RANGE_PROTO_SPECIFIED});
  return *this;
}

RuleBuilder& RuleBuilder::dnat_numgen_random_map(const std::vector<std::pair<net::IPAddress, uint16_t>>& targets) {
  auto set = std::make_shared<AnonymousSet>();
  set->spec = numgen_map_spec(
      targets.size(), (static_cast<uint32_t>(Datatype::kIPv4Addr) << 6) | static_cast<uint32_t>(Datatype::kInetService),
      8);
  for (size_t i = 0; i < targets.size(); ++i) {
    Element e = key_element(u32_raw(static_cast<uint32_t>(i)));
    e.data = ipv4_key(targets[i].first) + port_key(targets[i].second);
    set->elements.push_back(std::move(e));
  }
  // The address lands in register 1, the port in the 32-bit register after it.
  numgen_random_lookup(std::move(set), reg::k1);
  rule_.exprs.push_back(Nat{NFT_NAT_DNAT, NFPROTO_IPV4, reg::k1, reg::k1, reg::k32(1), reg::k32(1),
                            NF_NAT_RANGE_MAP_IPS | NF_NAT_RANGE_PROTO_SPECIFIED});
  return *this;
}

RuleBuilder& RuleBuilder::dnat_numgen_random_slot_map(const std::string& map, uint32_t modulus, uint32_t offset) {
  rule_.exprs.push_back(Numgen{reg::k1, modulus, NFT_NG_RANDOM, offset});
  // The map's keys are big endian (an interval set compares keys as bytes): so is the slot.
  rule_.exprs.push_back(Byteorder{reg::k1, reg::k1, NFT_BYTEORDER_HTON, 4, 4});
  Lookup l;
  l.sreg = reg::k1;
  l.dreg = reg::k1;
  l.set = map;
  rule_.exprs.push_back(std::move(l));
  rule_.exprs.push_back(Nat{NFT_NAT_DNAT, NFPROTO_IPV4, reg::k1, reg::k1, reg::k32(1), reg::k32(1),
                            NF_NAT_RANGE_MAP_IPS | NF_NAT_RANGE_PROTO_SPECIFIED});
  return *this;
}

RuleBuilder& RuleBuilder::masquerade(bool fully_random) {
  rule_.exprs.push_back(Masq{fully_random ? uint32_t{NF_NAT_RANGE_PROTO_RANDOM_FULLY} : 0u});
  return *this;
}

RuleBuilder& RuleBuilder::reject() {
  rule_.exprs.push_back(Reject{NFT_REJECT_ICMP_UNREACH, 3 /* ICMP_PORT_UNREACH */});
  return *this;
}

RuleBuilder& RuleBuilder::counter() {
  rule_.exprs.push_back(Counter{});
  return *this;
}

RuleBuilder& RuleBuilder::verdict(const Verdict& v) {
  rule_.exprs.push_back(Immediate{reg::kVerdict, {}, v});
  return *this;
}

RuleBuilder& RuleBuilder::comment(std::string text) {
  // As the kernel will hand it back, so the reconciler's comparison of what it reads
  // with what it wants does not see a change on every sync.
  rule_.comment = udata::clamp_comment(text);
  return *this;
}

SetSpec ipv4_addr_set(const std::string& name, const std::string& comment) {
  SetSpec s;
  s.name = name;
  s.key_type = static_cast<uint32_t>(Datatype::kIPv4Addr);
  s.key_len = 4;
  s.userdata.key_byteorder = kByteorderBig;
  s.userdata.comment = udata::clamp_comment(comment);  // as it reads back
  return s;
}

SetSpec numgen_slot_map(const std::string& name, uint32_t modulus) {
  SetSpec s;
  s.name = name;
  s.flags = NFT_SET_INTERVAL | NFT_SET_MAP;
  s.key_type = static_cast<uint32_t>(Datatype::kInteger);
  s.key_len = 4;
  s.data_type = (static_cast<uint32_t>(Datatype::kIPv4Addr) << 6) | static_cast<uint32_t>(Datatype::kInetService);
  s.data_len = 8;
  s.userdata.key_byteorder = kByteorderHost;
  s.userdata.data_byteorder = 0;
  s.userdata.key_typeof = numgen_random_typeof(modulus);
  s.userdata.data_typeof = daddr_dport_typeof();
  s.userdata.data_interval = 0;
  return s;
}

void append_numgen_slot_elements(const std::vector<std::pair<net::IPAddress, uint16_t>>& targets, uint32_t modulus,
                                 uint32_t offset, std::vector<Element>* out) {
  const uint64_t n = targets.size();
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t first = offset + i * modulus / n, end = offset + (i + 1) * modulus / n;
    if (first == end) continue;
    Element start = key_element(u32_raw(htonl(static_cast<uint32_t>(first))));
    start.data = ipv4_key(targets[i].first) + port_key(targets[i].second);
    out->push_back(std::move(start));
    Element stop = key_element(u32_raw(htonl(static_cast<uint32_t>(end))));
    stop.flags = NFT_SET_ELEM_INTERVAL_END;
    out->push_back(std::move(stop));
  }
}

std::vector<Element> numgen_slot_elements(const std::vector<std::pair<net::IPAddress, uint16_t>>& targets,
                                          uint32_t modulus, uint32_t offset) {
  std::vector<Element> out;
  append_numgen_slot_elements(targets, modulus, offset, &out);
  return out;
}

SetSpec dynamic_ipv4_addr_set(const std::string& name, uint32_t timeout_seconds) {
  SetSpec s = ipv4_addr_set(name);
  s.flags = NFT_SET_TIMEOUT | NFT_SET_EVAL;
  s.timeout_ms = uint64_t{timeout_seconds} * 1000;
  s.size = 65535;  // nft's default size for sets the datapath fills
  return s;
}

SetSpec concat_set(const std::string& name, const std::vector<Datatype>& key, const std::string& comment) {
  SetSpec s;
  s.name = name;
  for (auto t : key) s.key_type = (s.key_type << 6) | static_cast<uint32_t>(t);
  s.key_len = static_cast<uint32_t>(4 * key.size());
  s.userdata.key_byteorder = key.size() > 1 ? 0 : kByteorderBig;
  if (key.size() > 1) s.userdata.key_typeof = typeof_note(kExprConcat, {});
  s.userdata.comment = udata::clamp_comment(comment);  // as it reads back
  return s;
}

SetSpec concat_verdict_map(const std::string& name, const std::vector<Datatype>& key, const std::string& comment) {
  SetSpec s;
  s.name = name;
  s.flags = NFT_SET_MAP;
  for (auto t : key) s.key_type = (s.key_type << 6) | static_cast<uint32_t>(t);
  s.key_len = static_cast<uint32_t>(4 * key.size());
  s.data_type = NFT_DATA_VERDICT;
  s.data_len = 16;
  s.userdata.key_byteorder = key.size() > 1 ? 0 : kByteorderBig;
  s.userdata.data_byteorder = 0;
  if (key.size() > 1) s.userdata.key_typeof = typeof_note(kExprConcat, {});
  s.userdata.data_interval = 0;
  s.userdata.comment = udata::clamp_comment(comment);  // as it reads back
  return s;
}

}  // namespace knode::nftables
