#include "knode/dataplane/nftables/print.h"

#include <arpa/inet.h>
#include <netinet/in.h>  // before the linux/ headers, which it guards against
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <sstream>

#include "knode/dataplane/nftables/exprs.h"
#include "nftables/udata.h"

namespace knode::nftables {
namespace {

uint32_t host_u32(std::string_view b) {
  uint32_t v = 0;
  if (!b.empty()) std::memcpy(&v, b.data(), std::min<size_t>(4, b.size()));  // an empty view's data() may be null
  return v;
}

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

std::string hex_bytes(std::string_view b) {
  std::string out = "0x";
  char buf[4];
  for (unsigned char c : b) {
    std::snprintf(buf, sizeof buf, "%02x", c);
    out += buf;
  }
  return out;
}

std::string ipv4(std::string_view b) {
  unsigned char a[4] = {0, 0, 0, 0};
  if (!b.empty()) std::memcpy(a, b.data(), std::min<size_t>(4, b.size()));
  char buf[20];
  std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
  return buf;
}

std::string proto_name(uint8_t p) {
  switch (p) {
    case IPPROTO_TCP: return "tcp";
    case IPPROTO_UDP: return "udp";
    case IPPROTO_SCTP: return "sctp";
    case IPPROTO_ICMP: return "icmp";
    default: return std::to_string(p);
  }
}

std::string quote(const std::string& s) { return "\"" + s + "\""; }

std::string verdict_text(const Verdict& v) { return v.str(); }

// The parts of a (concatenated) datatype, first part first.
std::vector<uint32_t> type_parts(uint32_t key_type) {
  std::deque<uint32_t> parts;
  while (key_type != 0) {
    parts.push_front(key_type & 63);
    key_type >>= 6;
  }
  return {parts.begin(), parts.end()};
}

const char* type_name(uint32_t t) {
  switch (static_cast<Datatype>(t)) {
    case Datatype::kVerdict: return "verdict";
    case Datatype::kInteger: return "integer";
    case Datatype::kIPv4Addr: return "ipv4_addr";
    case Datatype::kInetProto: return "inet_proto";
    case Datatype::kInetService: return "inet_service";
  }
  return "invalid";
}

std::string print_part(uint32_t type, std::string_view b) {
  switch (static_cast<Datatype>(type)) {
    case Datatype::kIPv4Addr: return ipv4(b);
    case Datatype::kInetProto: return b.empty() ? "?" : proto_name(static_cast<uint8_t>(b[0]));
    case Datatype::kInetService:
      return b.size() < 2 ? "?" : std::to_string((static_cast<uint8_t>(b[0]) << 8) | static_cast<uint8_t>(b[1]));
    case Datatype::kInteger: return std::to_string(host_u32(b));
    default: return hex_bytes(b);
  }
}

// A key as a string that sorts the way nft sorts a set's elements: as one number, read in
// the byte order nft noted for the key (big endian for addresses; host order for
// concatenations and integers, whose parts then compare from the last one).
std::string sort_key(std::string_view key, const SetSpec& set) {
  std::string out(key);
  if (set.userdata.key_byteorder.value_or(0) != 2) std::reverse(out.begin(), out.end());
  return out;
}

// An interval set's ranges [start, end): each start element with the end element after
// it (keys big endian; at one key, an end sorts before a start). A start without an end,
// or noted as open, runs to the end of the key space.
struct Range {
  uint64_t start = 0, end = 0;
  const Element* first = nullptr;
};
std::vector<Range> ranges_of(const std::vector<Element>& elements) {
  std::vector<const Element*> sorted;
  for (const auto& e : elements) sorted.push_back(&e);
  auto number = [](const Element* e) { return ntohl(host_u32(e->key)); };
  auto is_end = [](const Element* e) { return (e->flags & NFT_SET_ELEM_INTERVAL_END) != 0; };
  std::sort(sorted.begin(), sorted.end(), [&](const Element* a, const Element* b) {
    return number(a) != number(b) ? number(a) < number(b) : is_end(a) > is_end(b);
  });
  std::vector<Range> out;
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (is_end(sorted[i])) continue;
    Range r{number(sorted[i]), uint64_t{1} << 32, sorted[i]};
    if (!(sorted[i]->udata_flags & 1) && i + 1 < sorted.size() && is_end(sorted[i + 1])) r.end = number(sorted[++i]);
    out.push_back(r);
  }
  return out;
}

// Address ranges as the prefixes nft prints.
std::vector<std::string> intervals(const std::vector<Element>& elements) {
  std::vector<std::string> out;
  for (const auto& [start, end, s] : ranges_of(elements)) {
    uint64_t size = end - start;
    std::string first = ipv4(s->key);
    if (size == 1) {
      out.push_back(first);
    } else if (std::has_single_bit(size) && start % size == 0) {
      out.push_back(first + "/" + std::to_string(32 - std::countr_zero(size)));
    } else {
      uint32_t last = htonl(static_cast<uint32_t>(end - 1));
      out.push_back(first + "-" + ipv4(std::string_view(reinterpret_cast<const char*>(&last), 4)));
    }
  }
  return out;
}

// nft's typeof note as text, for the notes knode writes ("numgen random mod M" keys,
// "ip daddr . th dport" data); nullopt for any other, which prints as `type`.
std::optional<std::string> typeof_expr(std::string_view note) {
  uint32_t expr = 0;
  std::string_view data;
  bool has_data = false;
  if (!udata::each(note, [&](uint8_t t, std::string_view v) {
        if (t == 0) expr = udata::u32_of(v);
        if (t == 1) data = v, has_data = true;
      }) ||
      !has_data) {
    return std::nullopt;
  }
  std::map<uint8_t, std::string_view> f;
  if (!udata::each(data, [&](uint8_t t, std::string_view v) { f[t] = v; })) return std::nullopt;
  auto u32 = [&](uint8_t t) { return f.count(t) ? udata::u32_of(f[t]) : 0u; };
  switch (expr) {
    case udata::kExprPayload: {
      const uint32_t desc = u32(0), field = u32(1);
      if (desc == udata::kDescIp && field == udata::kIpSaddr) return "ip saddr";
      if (desc == udata::kDescIp && field == udata::kIpDaddr) return "ip daddr";
      if (desc == udata::kDescTh && field == udata::kThDport) return "th dport";
      return std::nullopt;
    }
    case udata::kExprNumgen: {
      if (u32(0) != NFT_NG_RANDOM) return std::nullopt;
      std::string out = "numgen random mod " + std::to_string(u32(1));
      if (u32(2)) out += " offset " + std::to_string(u32(2));
      return out;
    }
    case udata::kExprConcat: {
      std::vector<std::string> parts;
      for (const auto& [t, v] : f) {
        auto part = typeof_expr(v);
        if (!part) return std::nullopt;
        parts.push_back(*part);
      }
      if (parts.empty()) return std::nullopt;
      std::string out;
      for (size_t i = 0; i < parts.size(); ++i) out += (i ? " . " : "") + parts[i];
      return out;
    }
    default: return std::nullopt;
  }
}

// "typeof K : D" when both notes read (maps) or the key's does (sets).
std::optional<std::string> typeof_text(const SetSpec& s) {
  if (!s.userdata.key_typeof) return std::nullopt;
  auto key = typeof_expr(*s.userdata.key_typeof);
  if (!key) return std::nullopt;
  if (!s.is_map()) return *key;
  if (!s.userdata.data_typeof) return std::nullopt;
  auto data = typeof_expr(*s.userdata.data_typeof);
  if (!data) return std::nullopt;
  return *key + " : " + *data;
}

// Elements of an interval map keyed by integers ("0-360359 : 10.0.0.1 . 80").
std::vector<std::string> integer_intervals(const std::vector<Element>& elements, const SetSpec& set) {
  std::vector<std::string> out;
  for (const auto& [start, end, s] : ranges_of(elements)) {
    std::string text = std::to_string(start);
    if (end - start > 1) text += "-" + std::to_string(end - 1);
    if (set.is_map() && !s->data.empty()) text += " : " + print_key(s->data, set.data_type, set.data_len);
    out.push_back(std::move(text));
  }
  return out;
}

bool integer_intervals_set(const SetSpec& s) {
  return (s.flags & NFT_SET_INTERVAL) && s.key_type == static_cast<uint32_t>(Datatype::kInteger);
}

std::vector<std::string> anonymous_elements(const AnonymousSet& set) {
  if (set.spec.flags & NFT_SET_INTERVAL) return intervals(set.elements);
  std::vector<std::pair<std::string, std::string>> items;
  for (const auto& e : set.elements) items.emplace_back(sort_key(e.key, set.spec), print_element(e, set.spec));
  std::sort(items.begin(), items.end());
  std::vector<std::string> out;
  for (auto& [k, text] : items) out.push_back(std::move(text));
  return out;
}

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? sep : "") + parts[i];
  return out;
}

// What a register holds while a rule is read: the expression that loaded it.
struct Load {
  enum Kind { kIpAddr, kL4proto, kThPort, kMark, kCtState, kCtStatus, kFibType, kNumgen, kValue, kMapped, kOther } kind =
      kOther;
  std::string text;      // "ip saddr"
  uint32_t len = 4;      // bytes loaded
  Bytes mask, xor_;      // a bitwise applied to it
  bool has_bitwise = false;
  Bytes value;           // immediates
};

class RulePrinter {
 public:
  std::string print(const Rule& r) {
    for (const auto& e : r.exprs) {
      if (!std::visit(*this, e)) return raw(r);
    }
    if (!pending_.empty()) return raw(r);
    std::string out = join(stmts_, " ");
    if (!r.comment.empty()) out += (out.empty() ? "" : " ") + std::string("comment ") + quote(r.comment);
    return out;
  }

  bool operator()(const Payload& p) {
    Load l;
    l.len = p.len;
    if (p.base == NFT_PAYLOAD_NETWORK_HEADER && (p.offset == 12 || p.offset == 16) && p.len <= 4) {
      l.kind = Load::kIpAddr;
      l.text = p.offset == 12 ? "ip saddr" : "ip daddr";
    } else if (p.base == NFT_PAYLOAD_TRANSPORT_HEADER && (p.offset == 0 || p.offset == 2) && p.len == 2) {
      l.kind = Load::kThPort;
      l.text = p.offset == 0 ? "th sport" : "th dport";
    } else {
      return false;
    }
    return push(p.dreg, std::move(l));
  }
  bool operator()(const Meta& m) {
    if (m.sreg != 0) {  // meta set
      if (m.key != NFT_META_MARK || pending_.size() != 1) return false;
      Load l = take();
      if (l.kind != Load::kMark) return false;
      std::string rhs;
      if (!l.has_bitwise) return false;
      uint32_t mask = host_u32(l.mask), x = host_u32(l.xor_);
      if (mask == ~x) {
        rhs = "meta mark | " + hex32(x);
      } else if (mask == 0xffffffffu) {
        rhs = "meta mark ^ " + hex32(x);
      } else {
        rhs = "meta mark & " + hex32(mask) + " ^ " + hex32(x);
      }
      stmts_.push_back("meta mark set " + rhs);
      return true;
    }
    Load l;
    if (m.key == NFT_META_L4PROTO) {
      l.kind = Load::kL4proto;
      l.text = "meta l4proto";
      l.len = 1;
    } else if (m.key == NFT_META_MARK) {
      l.kind = Load::kMark;
      l.text = "meta mark";
    } else {
      return false;
    }
    return push(m.dreg, std::move(l));
  }
  bool operator()(const Ct& c) {
    if (c.key != NFT_CT_STATE && c.key != NFT_CT_STATUS) return false;
    Load l;
    l.kind = c.key == NFT_CT_STATE ? Load::kCtState : Load::kCtStatus;
    l.text = c.key == NFT_CT_STATE ? "ct state" : "ct status";
    return push(c.dreg, std::move(l));
  }
  bool operator()(const Fib& f) {
    if (f.result != NFT_FIB_RESULT_ADDRTYPE) return false;
    Load l;
    l.kind = Load::kFibType;
    l.text = std::string("fib ") + ((f.flags & NFTA_FIB_F_SADDR) ? "saddr" : "daddr") + " type";
    return push(f.dreg, std::move(l));
  }
  bool operator()(const Numgen& n) {
    if (n.type != NFT_NG_RANDOM) return false;
    Load l;
    l.kind = Load::kNumgen;
    l.text = "numgen random mod " + std::to_string(n.modulus);
    if (n.offset) l.text += " offset " + std::to_string(n.offset);
    return push(n.dreg, std::move(l));
  }
  bool operator()(const Bitwise& b) {
    if (pending_.empty() || b.sreg != b.dreg) return false;
    Load& l = pending_.back();
    l.mask = b.mask;
    l.xor_ = b.xor_;
    l.has_bitwise = true;
    return true;
  }
  bool operator()(const Cmp& c) {
    if (pending_.size() != 1) return false;
    Load l = take();
    const bool eq = c.op == NFT_CMP_EQ;
    if (!eq && c.op != NFT_CMP_NEQ) return false;
    const std::string op = eq ? "" : "!= ";
    switch (l.kind) {
      case Load::kIpAddr: {
        Bytes addr = c.data;
        addr.resize(4, '\0');
        int prefix = static_cast<int>(l.len) * 8;
        if (l.has_bitwise) prefix = std::popcount(host_u32(l.mask));
        std::string rhs = ipv4(addr) + (prefix == 32 ? "" : "/" + std::to_string(prefix));
        stmts_.push_back(l.text + " " + op + rhs);
        return true;
      }
      case Load::kL4proto:
        stmts_.push_back(l.text + " " + op + proto_name(c.data.empty() ? 0 : static_cast<uint8_t>(c.data[0])));
        return true;
      case Load::kThPort:
        if (c.data.size() != 2) return false;
        stmts_.push_back(l.text + " " + op + print_part(static_cast<uint32_t>(Datatype::kInetService), c.data));
        return true;
      case Load::kCtState: {
        if (!l.has_bitwise || eq || host_u32(c.data) != 0) return false;
        uint32_t bits = host_u32(l.mask);
        std::vector<std::string> names;
        const std::pair<uint32_t, const char*> kStates[] = {{kCtStateInvalid, "invalid"},
                                                            {kCtStateEstablished, "established"},
                                                            {kCtStateRelated, "related"},
                                                            {kCtStateNew, "new"},
                                                            {kCtStateUntracked, "untracked"}};
        for (auto [bit, name] : kStates) {
          if (bits & bit) names.push_back(name);
        }
        stmts_.push_back("ct state " + join(names, ","));
        return true;
      }
      case Load::kCtStatus: {
        if (!l.has_bitwise || eq || host_u32(c.data) != 0) return false;
        uint32_t bits = host_u32(l.mask);
        std::vector<std::string> names;
        const std::pair<uint32_t, const char*> kStatus[] = {{IPS_EXPECTED, "expected"},   {IPS_SEEN_REPLY, "seen-reply"},
                                                            {IPS_ASSURED, "assured"},     {IPS_CONFIRMED, "confirmed"},
                                                            {IPS_SRC_NAT, "snat"},        {IPS_DST_NAT, "dnat"},
                                                            {IPS_DYING, "dying"}};
        for (auto [bit, name] : kStatus) {
          if (bits & bit) names.push_back(name);
        }
        if (names.empty()) return false;
        stmts_.push_back("ct status " + join(names, ","));
        return true;
      }
      case Load::kFibType: {
        uint32_t t = host_u32(c.data);
        stmts_.push_back(l.text + " " + op + (t == 2 ? "local" : std::to_string(t)));
        return true;
      }
      case Load::kNumgen:
        stmts_.push_back(l.text + " " + op + std::to_string(host_u32(c.data)));
        return true;
      case Load::kMark:
        if (l.has_bitwise) {
          stmts_.push_back("meta mark & " + hex32(host_u32(l.mask)) + " " + (eq ? "==" : "!=") + " " +
                           hex32(host_u32(c.data)));
        } else {
          stmts_.push_back("meta mark " + op + hex32(host_u32(c.data)));
        }
        return true;
      default: return false;
    }
  }
  bool operator()(const Lookup& lk) {
    if (pending_.empty()) return false;
    std::vector<std::string> parts;
    for (const auto& l : pending_) {
      if (l.has_bitwise) return false;
      parts.push_back(l.text);
    }
    pending_.clear();
    regs_.clear();
    std::string lhs = join(parts, " . ");
    const bool vmap = lk.dreg && *lk.dreg == reg::kVerdict;
    std::string rhs;
    if (lk.anonymous) {
      rhs = "{ " + join(anonymous_elements(*lk.anonymous), ", ") + " }";
    } else {
      rhs = "@" + lk.set;
    }
    if (lk.dreg && !vmap) {
      // A data map: what it maps to feeds the statement after it (dnat ... to <map>).
      Load l;
      l.kind = Load::kMapped;
      l.text = lhs + " map " + rhs;
      return push(*lk.dreg, std::move(l));
    }
    if (vmap) {
      stmts_.push_back(lhs + " vmap " + rhs);
    } else {
      stmts_.push_back(lhs + " " + (lk.invert ? "!= " : "") + rhs);
    }
    return true;
  }
  bool operator()(const Dynset& d) {
    if (pending_.size() != 1) return false;
    Load l = take();
    const char* op = d.op == NFT_DYNSET_OP_UPDATE ? "update" : d.op == NFT_DYNSET_OP_ADD ? "add" : "delete";
    stmts_.push_back(std::string(op) + " @" + d.set + " { " + l.text + " }");
    return true;
  }
  bool operator()(const Immediate& i) {
    if (i.dreg == reg::kVerdict) {
      stmts_.push_back(verdict_text(i.verdict));
      return true;
    }
    Load l;
    l.kind = Load::kValue;
    l.value = i.data;
    return push(i.dreg, std::move(l));
  }
  bool operator()(const Nat& n) {
    if (n.type != NFT_NAT_DNAT || n.family != NFPROTO_IPV4) return false;
    auto value = [&](uint32_t r) -> const Load* {
      auto it = regs_.find(r);
      return it == regs_.end() ? nullptr : &pending_[it->second];
    };
    const Load* addr = n.reg_addr_min ? value(n.reg_addr_min) : nullptr;
    if (addr && addr->kind == Load::kMapped) {
      // Address and port from one map lookup (`dnat ip addr . port to ... map`): the port
      // in the 32-bit register after the address; nft prints it without "addr . port".
      if (n.reg_addr_min != reg::k1 || n.reg_proto_min != reg::k32(1)) return false;
      std::string text = "dnat ip to " + addr->text;
      pending_.clear();
      regs_.clear();
      stmts_.push_back(std::move(text));
      return true;
    }
    const Load* port = n.reg_proto_min ? value(n.reg_proto_min) : nullptr;
    if (!addr || addr->kind != Load::kValue) return false;
    std::string to = ipv4(addr->value);
    if (port) {
      if (port->kind != Load::kValue || port->value.size() != 2) return false;
      to += ":" + print_part(static_cast<uint32_t>(Datatype::kInetService), port->value);
    }
    pending_.clear();
    regs_.clear();
    stmts_.push_back("dnat to " + to);
    return true;
  }
  bool operator()(const Masq& m) {
    std::string s = "masquerade";
    if (m.flags & NF_NAT_RANGE_PROTO_RANDOM) s += " random";
    if (m.flags & NF_NAT_RANGE_PROTO_RANDOM_FULLY) s += " fully-random";
    if (m.flags & NF_NAT_RANGE_PERSISTENT) s += " persistent";
    stmts_.push_back(s);
    return true;
  }
  bool operator()(const Reject& r) {
    if (r.type == NFT_REJECT_ICMP_UNREACH && r.code == 3) {
      stmts_.push_back("reject");
    } else if (r.type == NFT_REJECT_TCP_RST) {
      stmts_.push_back("reject with tcp reset");
    } else {
      stmts_.push_back("reject with icmp " + std::to_string(r.code));
    }
    return true;
  }
  bool operator()(const Counter& c) {
    stmts_.push_back("counter packets " + std::to_string(c.packets) + " bytes " + std::to_string(c.bytes));
    return true;
  }
  bool operator()(const Byteorder& b) {
    // nft's conversion of a host-order value for an interval lookup (numgen keys are kept
    // big endian there): in place, and not printed.
    if (b.sreg != b.dreg || b.op != NFT_BYTEORDER_HTON || b.len != 4 || b.size != 4 || !regs_.count(b.sreg)) {
      return false;
    }
    return pending_[regs_[b.sreg]].kind == Load::kNumgen;
  }

 private:
  bool push(uint32_t dreg, Load l) {
    regs_[dreg] = pending_.size();
    pending_.push_back(std::move(l));
    return true;
  }
  Load take() {
    Load l = std::move(pending_.back());
    pending_.clear();
    regs_.clear();
    return l;
  }
  static std::string raw(const Rule& r);

  std::vector<Load> pending_;
  std::map<uint32_t, size_t> regs_;
  std::vector<std::string> stmts_;
};

// The expressions themselves, for a rule the printer has no statement for.
std::string RulePrinter::raw(const Rule& r) {
  std::ostringstream os;
  for (const auto& e : r.exprs) {
    static constexpr const char* kNames[] = {"payload", "meta",   "cmp", "bitwise", "ct",     "fib",     "numgen",
                                             "immediate", "lookup", "dynset", "nat", "masq", "reject", "counter", "byteorder"};
    os << "[ " << kNames[e.index()] << " ] ";
  }
  if (!r.comment.empty()) os << "comment " << quote(r.comment);
  std::string s = os.str();
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

const char* hook_name(uint32_t hook) {
  switch (hook) {
    case NF_INET_PRE_ROUTING: return "prerouting";
    case NF_INET_LOCAL_IN: return "input";
    case NF_INET_FORWARD: return "forward";
    case NF_INET_LOCAL_OUT: return "output";
    case NF_INET_POST_ROUTING: return "postrouting";
  }
  return "?";
}

// nft's names for standard priorities, with the hooks they belong to; a priority within
// 10 of one prints as "name + N".
std::string priority_text(uint32_t hook, int32_t prio) {
  struct Std {
    int32_t prio;
    const char* name;
    int hook;  // -1: any
  };
  static constexpr Std kStd[] = {{-300, "raw", -1},      {-150, "mangle", -1}, {-100, "dstnat", NF_INET_PRE_ROUTING},
                                 {0, "filter", -1},      {50, "security", -1}, {100, "srcnat", NF_INET_POST_ROUTING}};
  for (const auto& s : kStd) {
    if (s.hook != -1 && s.hook != static_cast<int>(hook)) continue;
    const int64_t off = int64_t{prio} - s.prio;  // a priority near INT32_MIN/MAX would overflow int32
    if (off == 0) return s.name;
    if (off > 0 && off <= 10) return std::string(s.name) + " + " + std::to_string(off);
    if (off < 0 && off >= -10) return std::string(s.name) + " - " + std::to_string(-off);
  }
  return std::to_string(prio);
}

std::string duration_text(uint64_t ms) {
  if (ms == 0) return "0s";
  std::string out;
  const std::pair<uint64_t, const char*> kUnits[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};
  for (auto [unit, name] : kUnits) {
    if (ms >= unit) {
      out += std::to_string(ms / unit) + name;
      ms %= unit;
    }
  }
  if (ms) out += std::to_string(ms) + "ms";
  return out;
}

std::string flags_text(uint32_t flags) {
  std::vector<std::string> f;
  if (flags & NFT_SET_CONSTANT) f.push_back("constant");
  if (flags & NFT_SET_EVAL) f.push_back("dynamic");
  if (flags & NFT_SET_INTERVAL) f.push_back("interval");
  if (flags & NFT_SET_TIMEOUT) f.push_back("timeout");
  return join(f, ",");
}

// nft breaks long element lists: address sets two to a line, integer-like types five,
// anything else (concatenations, maps) one.
size_t per_line(const SetSpec& s) {
  if (s.is_map() && s.key_type != static_cast<uint32_t>(Datatype::kInteger)) return 1;
  switch (static_cast<Datatype>(s.key_type)) {
    case Datatype::kIPv4Addr: return 2;
    case Datatype::kInteger:
    case Datatype::kInetProto:
    case Datatype::kInetService: return 5;
    default: return 1;
  }
}

std::vector<std::string> sorted_elements(const SetContent& s) {
  if (integer_intervals_set(s.spec)) return integer_intervals(s.elements, s.spec);
  std::vector<std::pair<std::string, std::string>> items;
  for (const auto& e : s.elements) items.emplace_back(sort_key(e.key, s.spec), print_element(e, s.spec));
  std::sort(items.begin(), items.end());
  std::vector<std::string> out;
  for (auto& [k, text] : items) out.push_back(std::move(text));
  return out;
}

void print_set(std::ostringstream& os, const SetContent& s) {
  os << "\t" << (s.spec.is_map() ? "map " : "set ") << s.spec.name << " {\n";
  if (auto t = typeof_text(s.spec)) {
    os << "\t\ttypeof " << *t << "\n";
  } else {
    os << "\t\ttype " << print_set_type(s.spec) << "\n";
  }
  if (s.spec.size) os << "\t\tsize " << s.spec.size << "\n";
  if (s.spec.flags & (NFT_SET_CONSTANT | NFT_SET_EVAL | NFT_SET_INTERVAL | NFT_SET_TIMEOUT)) {
    os << "\t\tflags " << flags_text(s.spec.flags) << "\n";
  }
  if (s.spec.timeout_ms) os << "\t\ttimeout " << duration_text(s.spec.timeout_ms) << "\n";
  if (!s.spec.userdata.comment.empty()) os << "\t\tcomment " << quote(s.spec.userdata.comment) << "\n";
  if (!s.elements.empty() && !(s.spec.flags & NFT_SET_EVAL)) {
    auto items = sorted_elements(s);
    size_t n = per_line(s.spec);
    os << "\t\telements = { ";
    for (size_t i = 0; i < items.size(); ++i) {
      if (i > 0) os << ((i % n == 0) ? ",\n\t\t\t     " : ", ");
      os << items[i];
    }
    os << " }\n";
  }
  os << "\t}\n";
}

void print_chain(std::ostringstream& os, const ChainContent& c) {
  os << "\tchain " << c.chain.name << " {\n";
  if (!c.chain.comment.empty()) os << "\t\tcomment " << quote(c.chain.comment) << "\n";
  if (c.chain.base) {
    const auto& b = *c.chain.base;
    os << "\t\ttype " << b.type << " hook " << hook_name(b.hook) << " priority " << priority_text(b.hook, b.priority)
       << "; policy " << (b.policy == NF_DROP ? "drop" : "accept") << ";\n";
  }
  for (const auto& r : c.rules) os << "\t\t" << print_rule(r) << "\n";
  os << "\t}\n";
}

}  // namespace

std::string print_rule(const Rule& rule) { return RulePrinter().print(rule); }

std::string print_key(std::string_view key, uint32_t key_type, uint32_t key_len) {
  auto parts = type_parts(key_type);
  if (parts.size() <= 1) {
    return print_part(parts.empty() ? 0 : parts[0], key.substr(0, key_len ? std::min<size_t>(key_len, key.size())
                                                                         : key.size()));
  }
  std::vector<std::string> out;
  size_t off = 0;
  for (uint32_t t : parts) {
    out.push_back(print_part(t, off < key.size() ? key.substr(off, 4) : std::string_view()));
    off += 4;
  }
  return join(out, " . ");
}

std::string print_element(const Element& e, const SetSpec& set) {
  std::string out = print_key(e.key, set.key_type, set.key_len);
  if (!e.comment.empty()) out += " comment " + quote(e.comment);
  if (e.verdict) {
    out += " : " + verdict_text(*e.verdict);
  } else if (set.is_map() && !e.data.empty()) {
    out += " : " + print_key(e.data, set.data_type, set.data_len);
  }
  return out;
}

std::string print_set_type(const SetSpec& set) {
  std::vector<std::string> names;
  for (uint32_t t : type_parts(set.key_type)) names.push_back(type_name(t));
  std::string out = join(names, " . ");
  if (set.is_map()) {
    std::vector<std::string> data;
    if (set.data_type == NFT_DATA_VERDICT) {
      data.push_back("verdict");
    } else {
      for (uint32_t t : type_parts(set.data_type)) data.push_back(type_name(t));
    }
    out += " : " + join(data, " . ");
  }
  return out;
}

std::string print_table(const TableContent& t) {
  std::ostringstream os;
  os << "table " << family_name(t.table.family) << " " << t.table.name << " {\n";
  if (!t.table.comment.empty()) os << "\tcomment " << quote(t.table.comment) << "\n";
  const char* delim = "";
  for (const auto& s : t.sets) {
    os << delim;
    print_set(os, s);
    delim = "\n";
  }
  for (const auto& c : t.chains) {
    os << delim;
    print_chain(os, c);
    delim = "\n";
  }
  os << "}\n";
  return os.str();
}

std::string nft_script(const TableContent& t) {
  std::ostringstream os;
  const std::string where = std::string(family_name(t.table.family)) + " " + t.table.name;
  os << "add table " << where;
  if (!t.table.comment.empty()) os << " { comment " << quote(t.table.comment) << " ; }";
  os << "\n";
  for (const auto& s : t.sets) {
    os << "add " << (s.spec.is_map() ? "map " : "set ") << where << " " << s.spec.name << " { ";
    if (auto t = typeof_text(s.spec)) {
      os << "typeof " << *t << " ;";
    } else {
      os << "type " << print_set_type(s.spec) << " ;";
    }
    if (s.spec.flags & (NFT_SET_CONSTANT | NFT_SET_EVAL | NFT_SET_INTERVAL | NFT_SET_TIMEOUT)) {
      os << " flags " << flags_text(s.spec.flags) << " ;";
    }
    if (s.spec.timeout_ms) os << " timeout " << s.spec.timeout_ms / 1000 << "s ;";
    if (!s.spec.userdata.comment.empty()) os << " comment " << quote(s.spec.userdata.comment) << " ;";
    os << " }\n";
  }
  for (const auto& c : t.chains) {
    os << "add chain " << where << " " << c.chain.name;
    if (c.chain.base || !c.chain.comment.empty()) {
      os << " {";
      if (c.chain.base) {
        os << " type " << c.chain.base->type << " hook " << hook_name(c.chain.base->hook) << " priority "
           << c.chain.base->priority << " ;";
      }
      if (!c.chain.comment.empty()) os << " comment " << quote(c.chain.comment) << " ;";
      os << " }";
    }
    os << "\n";
  }
  for (const auto& c : t.chains) {
    for (const auto& r : c.rules) os << "add rule " << where << " " << c.chain.name << " " << print_rule(r) << "\n";
  }
  for (const auto& s : t.sets) {
    if (s.spec.flags & NFT_SET_EVAL) continue;
    if (integer_intervals_set(s.spec)) {
      // Ranges, not their start and end elements one by one.
      if (!s.elements.empty()) {
        os << "add element " << where << " " << s.spec.name << " { " << join(integer_intervals(s.elements, s.spec), ", ")
           << " }\n";
      }
      continue;
    }
    for (const auto& e : s.elements) {
      os << "add element " << where << " " << s.spec.name << " { " << print_element(e, s.spec) << " }\n";
    }
  }
  return os.str();
}

}  // namespace knode::nftables
