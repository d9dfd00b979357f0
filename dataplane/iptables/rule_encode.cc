// Rule -> ipt_entry bytes, with the match/target revisions iptables 1.8.9 uses.
#include "knode/dataplane/iptables/rule.h"

#include <arpa/inet.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/xt_addrtype.h>
#include <linux/netfilter/xt_comment.h>
#include <linux/netfilter/xt_ipvs.h>
#include <linux/netfilter/xt_conntrack.h>
#include <linux/netfilter/xt_mark.h>
#include <linux/netfilter/xt_physdev.h>
#include <linux/netfilter/xt_recent.h>
#include <linux/netfilter/xt_set.h>
// xt_sctp.h is C: its inline helpers use _Bool, and it defines a `bytes` macro.
#define _Bool bool
#include <linux/netfilter/xt_sctp.h>
#undef _Bool
#undef bytes
#include <linux/netfilter/xt_statistic.h>
#include <linux/netfilter/xt_tcpudp.h>
#include <linux/netfilter_ipv4/ip_tables.h>
#include <linux/netfilter_ipv4/ipt_REJECT.h>
#include <netinet/in.h>

#include <cstring>

#include "iptables/entry.h"

namespace knode::iptables {
namespace {

void copy_name(char* dst, size_t cap, const std::string& s) {
  std::memset(dst, 0, cap);
  std::memcpy(dst, s.data(), std::min(s.size(), cap - 1));
}

// Appends an xt_entry_match/xt_entry_target header and zeroed data, padded to XT_ALIGN,
// and returns the data to fill in (valid until `out` grows again). Building in place
// keeps struct padding zero, so encoded rules compare byte for byte.
template <typename Data>
Data* append_ext(std::string& out, const char* name, uint8_t revision) {
  static_assert(sizeof(xt_entry_match) == sizeof(xt_entry_target));
  const size_t size = XT_ALIGN(sizeof(xt_entry_match) + sizeof(Data));
  const size_t at = out.size();
  out.resize(at + size, '\0');
  auto* h = reinterpret_cast<xt_entry_match*>(out.data() + at);
  h->u.user.match_size = static_cast<uint16_t>(size);
  std::strncpy(h->u.user.name, name, sizeof h->u.user.name - 1);
  h->u.user.revision = revision;
  return reinterpret_cast<Data*>(out.data() + at + sizeof(xt_entry_match));
}

void set_iface(const IfaceMatch& i, char* name, unsigned char* mask) {
  copy_name(name, IFNAMSIZ, i.name);
  // As xtables_parse_interface: "eth+" matches the prefix, "eth0" includes the NUL.
  if (i.name.back() == '+') {
    std::memset(mask, 0xff, i.name.size() - 1);
  } else {
    std::memset(mask, 0xff, i.name.size() + 1);
  }
}

uint32_t prefix_mask_be(int prefix) {
  if (prefix <= 0) return 0;
  return htonl(prefix >= 32 ? 0xffffffffu : ~((1u << (32 - prefix)) - 1));
}

// xt_tcp and xt_udp share their layout of ports and inversion flags.
template <typename T>
void ports(T* d, const Port& m, PortRange sp, PortRange dp, uint8_t inv_src, uint8_t inv_dst) {
  d->spts[0] = sp.first;
  d->spts[1] = sp.last;
  d->dpts[0] = dp.first;
  d->dpts[1] = dp.last;
  if (m.sport && m.sport_negate) d->invflags |= inv_src;
  if (m.dport && m.dport_negate) d->invflags |= inv_dst;
}

struct MatchEncoder {
  std::string& out;
  Proto proto;

  void operator()(const Comment& m) {
    auto* d = append_ext<xt_comment_info>(out, "comment", 0);
    copy_name(d->comment, sizeof d->comment, m.text);
  }
  void operator()(const Port& m) {
    PortRange sp = m.sport.value_or(PortRange{0, 0xffff});
    PortRange dp = m.dport.value_or(PortRange{0, 0xffff});
    if (proto == Proto::kSCTP) {
      // libxt_sctp leaves unused port ranges at 0-0, unlike tcp/udp's 0-65535.
      if (!m.sport) sp = PortRange{0, 0};
      if (!m.dport) dp = PortRange{0, 0};
      auto* d = append_ext<xt_sctp_info>(out, "sctp", 0);
      for (auto& f : d->flag_info) f.chunktype = 0xff;  // as libxt_sctp's init
      d->spts[0] = sp.first;
      d->spts[1] = sp.last;
      d->dpts[0] = dp.first;
      d->dpts[1] = dp.last;
      if (m.sport) d->flags |= XT_SCTP_SRC_PORTS;
      if (m.dport) d->flags |= XT_SCTP_DEST_PORTS;
      if (m.sport && m.sport_negate) d->invflags |= XT_SCTP_SRC_PORTS;
      if (m.dport && m.dport_negate) d->invflags |= XT_SCTP_DEST_PORTS;
    } else if (proto == Proto::kUDP) {
      ports(append_ext<xt_udp>(out, "udp", 0), m, sp, dp, XT_UDP_INV_SRCPT, XT_UDP_INV_DSTPT);
    } else {
      ports(append_ext<xt_tcp>(out, "tcp", 0), m, sp, dp, XT_TCP_INV_SRCPT, XT_TCP_INV_DSTPT);
    }
  }
  void operator()(const Mark& m) {
    auto* d = append_ext<xt_mark_mtinfo1>(out, "mark", 1);
    d->mark = m.value;
    d->mask = m.mask;
    d->invert = m.negate ? 1 : 0;
  }
  void operator()(const AddrTypeMatch& m) {
    auto* d = append_ext<xt_addrtype_info_v1>(out, "addrtype", 1);
    d->source = m.src_types;
    d->dest = m.dst_types;
    if (m.src_types && m.src_negate) d->flags |= XT_ADDRTYPE_INVERT_SOURCE;
    if (m.dst_types && m.dst_negate) d->flags |= XT_ADDRTYPE_INVERT_DEST;
    if (m.limit_iface_in) d->flags |= XT_ADDRTYPE_LIMIT_IFACE_IN;
    if (m.limit_iface_out) d->flags |= XT_ADDRTYPE_LIMIT_IFACE_OUT;
  }
  void operator()(const Conntrack& m) {
    auto* d = append_ext<xt_conntrack_mtinfo3>(out, "conntrack", 3);
    d->match_flags = XT_CONNTRACK_STATE;
    if (m.negate) d->invert_flags = XT_CONNTRACK_STATE;
    d->state_mask = m.states;
  }
  void operator()(const Statistic& m) {
    auto* d = append_ext<xt_statistic_info>(out, "statistic", 0);
    d->mode = XT_STATISTIC_MODE_RANDOM;
    d->flags = m.negate ? XT_STATISTIC_INVERT : 0;
    d->u.random.probability = m.probability;
    // libxt_statistic computes nth.count = every - packet whatever the mode; in the
    // union that puts the probability there too.
    d->u.nth.count = m.probability;
  }
  void operator()(const Recent& m) {
    auto* d = append_ext<xt_recent_mtinfo_v1>(out, "recent", 1);
    d->seconds = m.seconds;
    d->hit_count = m.hit_count;
    switch (m.mode) {
      case Recent::Mode::kSet: d->check_set = XT_RECENT_SET; break;
      case Recent::Mode::kRcheck: d->check_set = XT_RECENT_CHECK; break;
      case Recent::Mode::kUpdate: d->check_set = XT_RECENT_UPDATE; break;
      case Recent::Mode::kRemove: d->check_set = XT_RECENT_REMOVE; break;
    }
    if (m.reap) d->check_set |= XT_RECENT_REAP;
    d->invert = m.negate ? 1 : 0;
    copy_name(d->name, sizeof d->name, m.name);
    d->side = m.rdest ? XT_RECENT_DEST : XT_RECENT_SOURCE;
    d->mask.ip = m.mask.v4_be();
  }
  void operator()(const SetMatch& m) {
    auto* d = append_ext<xt_set_info_match_v4>(out, "set", 4);
    uint8_t src = 0;
    int dim = set_match_dims(m.dirs, &src);
    d->match_set.index = m.index;
    d->match_set.dim = static_cast<uint8_t>(dim < 0 ? 0 : dim);
    d->match_set.flags = static_cast<uint8_t>(src | (m.negate ? IPSET_INV_MATCH : 0));
  }
  void operator()(const IpvsMatch& m) {
    auto* d = append_ext<xt_ipvs_mtinfo>(out, "ipvs", 0);
    d->bitmask = XT_IPVS_IPVS_PROPERTY;
    if (m.vaddr) {
      d->vaddr.ip = m.vaddr->address().v4_be();
      // As libxt_ipvs: the whole mask union starts all ones; an IPv4 mask fills the first word.
      std::memset(&d->vmask, 0xff, sizeof d->vmask);
      d->vmask.ip = prefix_mask_be(m.vaddr->prefix());
      d->bitmask |= XT_IPVS_VADDR;
    }
    if (m.vproto) {
      d->l4proto = m.vproto;
      d->bitmask |= XT_IPVS_PROTO;
    }
    if (m.vport) {
      d->vport = htons(m.vport);
      d->bitmask |= XT_IPVS_VPORT;
    }
  }
  void operator()(const Physdev& m) {
    auto* d = append_ext<xt_physdev_info>(out, "physdev", 0);
    if (m.is_in != Physdev::IsIn::kAny) {
      d->bitmask |= XT_PHYSDEV_OP_ISIN;
      if (m.is_in == Physdev::IsIn::kNo) d->invert |= XT_PHYSDEV_OP_ISIN;
    }
    if (!m.in.empty()) {
      set_iface(IfaceMatch{m.in, m.in_negate}, d->physindev,
                reinterpret_cast<unsigned char*>(d->in_mask));
      d->bitmask |= XT_PHYSDEV_OP_IN;
      if (m.in_negate) d->invert |= XT_PHYSDEV_OP_IN;
    }
    if (!m.out.empty()) {
      set_iface(IfaceMatch{m.out, m.out_negate}, d->physoutdev,
                reinterpret_cast<unsigned char*>(d->out_mask));
      d->bitmask |= XT_PHYSDEV_OP_OUT;
      if (m.out_negate) d->invert |= XT_PHYSDEV_OP_OUT;
    }
    if (m.bridged != Physdev::Bridged::kAny) {
      d->bitmask |= XT_PHYSDEV_OP_BRIDGED;
      if (m.bridged == Physdev::Bridged::kNotBridged) d->invert |= XT_PHYSDEV_OP_BRIDGED;
    }
  }
};

int reject_code(RejectWith w) {
  switch (w) {
    case RejectWith::kIcmpNetUnreachable: return IPT_ICMP_NET_UNREACHABLE;
    case RejectWith::kIcmpHostUnreachable: return IPT_ICMP_HOST_UNREACHABLE;
    case RejectWith::kIcmpProtoUnreachable: return IPT_ICMP_PROT_UNREACHABLE;
    case RejectWith::kIcmpPortUnreachable: return IPT_ICMP_PORT_UNREACHABLE;
    case RejectWith::kIcmpNetProhibited: return IPT_ICMP_NET_PROHIBITED;
    case RejectWith::kIcmpHostProhibited: return IPT_ICMP_HOST_PROHIBITED;
    case RejectWith::kTcpReset: return IPT_TCP_RESET;
    case RejectWith::kIcmpAdminProhibited: return IPT_ICMP_ADMIN_PROHIBITED;
  }
  return IPT_ICMP_PORT_UNREACHABLE;
}

void nat_range(nf_nat_range2* rp, const Nat& n) {
  nf_nat_range2& r = *rp;
  r.flags = NF_NAT_RANGE_MAP_IPS;
  r.min_addr.ip = n.ip.v4_be();
  r.max_addr.ip = n.ip.v4_be();
  if (n.ports) {
    r.flags |= NF_NAT_RANGE_PROTO_SPECIFIED;
    r.min_proto.all = htons(n.ports->first);
    r.max_proto.all = htons(n.ports->last);
  }
  if (n.random) r.flags |= NF_NAT_RANGE_PROTO_RANDOM;
  if (n.random_fully) r.flags |= NF_NAT_RANGE_PROTO_RANDOM_FULLY;
  if (n.persistent) r.flags |= NF_NAT_RANGE_PERSISTENT;
}

struct TargetEncoder {
  std::string& out;

  // As iptables hands them to libiptc: the label as name, verdict 0.
  void operator()(const Jump& j) { append_ext<int>(out, j.chain.c_str(), 0); }
  void operator()(const Verdict& v) { append_ext<int>(out, to_string(v), 0); }
  void operator()(const Reject& r) {
    auto* d = append_ext<ipt_reject_info>(out, "REJECT", 0);
    d->with = static_cast<ipt_reject_with>(reject_code(r.with));
  }
  void operator()(const Dnat& n) { nat_range(append_ext<nf_nat_range2>(out, "DNAT", 2), n); }
  // iptables 1.8.9 still writes SNAT as revision 0 (and its save cannot print rev 2).
  void operator()(const Snat& n) {
    nf_nat_range2 r{};
    nat_range(&r, n);
    auto* d = append_ext<nf_nat_ipv4_multi_range_compat>(out, "SNAT", 0);
    d->rangesize = 1;
    d->range[0].flags = r.flags;
    d->range[0].min_ip = r.min_addr.ip;
    d->range[0].max_ip = r.max_addr.ip;
    d->range[0].min = r.min_proto;
    d->range[0].max = r.max_proto;
  }
  void operator()(const Masquerade& m) {
    auto* d = append_ext<nf_nat_ipv4_multi_range_compat>(out, "MASQUERADE", 0);
    d->rangesize = 1;
    if (m.to_ports) {
      d->range[0].flags |= NF_NAT_RANGE_PROTO_SPECIFIED;
      d->range[0].min.all = htons(m.to_ports->first);
      d->range[0].max.all = htons(m.to_ports->last);
    }
    if (m.random) d->range[0].flags |= NF_NAT_RANGE_PROTO_RANDOM;
    if (m.random_fully) d->range[0].flags |= NF_NAT_RANGE_PROTO_RANDOM_FULLY;
  }
  void operator()(const MarkTarget& m) {
    auto* d = append_ext<xt_mark_tginfo2>(out, "MARK", 2);
    d->mark = m.value;
    d->mask = m.mask;
  }
};

uint8_t proto_number(Proto p) {
  switch (p) {
    case Proto::kTCP: return IPPROTO_TCP;
    case Proto::kUDP: return IPPROTO_UDP;
    case Proto::kSCTP: return IPPROTO_SCTP;
    case Proto::kNone: break;
  }
  return 0;
}

}  // namespace

std::string Rule::encode() const {
  std::string out;
  out.reserve(512);
  encode_to(out);
  return out;
}

void Rule::encode_to(std::string& out) const {
  const size_t start = out.size();
  out.resize(start + sizeof(ipt_entry), '\0');
  {
    auto* e = reinterpret_cast<ipt_entry*>(out.data() + start);
    if (src) {
      e->ip.src.s_addr = src->cidr.address().v4_be();
      e->ip.smsk.s_addr = prefix_mask_be(src->cidr.prefix());
      if (src->negate) e->ip.invflags |= IPT_INV_SRCIP;
    }
    if (dst) {
      e->ip.dst.s_addr = dst->cidr.address().v4_be();
      e->ip.dmsk.s_addr = prefix_mask_be(dst->cidr.prefix());
      if (dst->negate) e->ip.invflags |= IPT_INV_DSTIP;
    }
    if (in_iface) {
      set_iface(*in_iface, e->ip.iniface, e->ip.iniface_mask);
      if (in_iface->negate) e->ip.invflags |= IPT_INV_VIA_IN;
    }
    if (out_iface) {
      set_iface(*out_iface, e->ip.outiface, e->ip.outiface_mask);
      if (out_iface->negate) e->ip.invflags |= IPT_INV_VIA_OUT;
    }
    e->ip.proto = proto_number(protocol);
    if (protocol != Proto::kNone && protocol_negate) e->ip.invflags |= XT_INV_PROTO;
    if (const auto* j = std::get_if<Jump>(&target); j && j->go_to) e->ip.flags |= IPT_F_GOTO;
  }
  MatchEncoder me{out, protocol};
  for (const auto& m : matches) std::visit(me, m);
  const size_t target_offset = out.size() - start;
  std::visit(TargetEncoder{out}, target);
  auto* e = reinterpret_cast<ipt_entry*>(out.data() + start);
  e->target_offset = static_cast<uint16_t>(target_offset);
  e->next_offset = static_cast<uint16_t>(out.size() - start);
}

}  // namespace knode::iptables
