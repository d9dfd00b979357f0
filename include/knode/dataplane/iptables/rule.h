// One iptables rule as a plain value: what `iptables -A CHAIN ...` says, structured.
//
// A Rule knows how to print itself exactly as `iptables-legacy-save` prints it
// (save_string) and how to encode itself into the `ipt_entry` bytes the kernel takes
// (encode), using the same match/target revisions iptables 1.8.9 picks on a current
// kernel, so rules written by knode and by iptables are indistinguishable.
//
// Building a rule:
//   Rule r;
//   r.matches = {Comment{"web frontend"}};
//   r.dst = CidrMatch{*net::Cidr::Parse("10.96.0.10/32")};
//   r.protocol = Proto::kTCP;
//   r.matches.push_back(Port{.dport = PortRange{80, 80}});
//   r.target = Jump{"LB-WEB"};
// -> -A LB-VIPS -d 10.96.0.10/32 -p tcp -m comment --comment "web frontend" -m tcp
//    --dport 80 -j LB-WEB
// The Port match is printed as `-m tcp`/`-m udp`/`-m sctp` after the rule's protocol,
// which must be set. Matches are encoded and printed in the order given.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <variant>
#include <vector>

#include "knode/net.h"
#include "knode/status.h"

namespace knode::iptables {

enum class Proto : uint8_t { kNone, kTCP, kUDP, kSCTP };
const char* to_string(Proto p);  // "tcp", "udp", "sctp", "" for kNone
inline Proto to_proto(net::Protocol p) {
  switch (p) {
    case net::Protocol::kUDP: return Proto::kUDP;
    case net::Protocol::kSCTP: return Proto::kSCTP;
    case net::Protocol::kTCP: break;
  }
  return Proto::kTCP;
}

struct CidrMatch {
  net::Cidr cidr;  // IPv4 only
  bool negate = false;
  bool operator==(const CidrMatch&) const = default;
};

// "eth0", or a prefix "veth+" as iptables spells it.
struct IfaceMatch {
  std::string name;
  bool negate = false;
  bool operator==(const IfaceMatch&) const = default;
};

struct PortRange {
  uint16_t first = 0;
  uint16_t last = 0;
  static PortRange One(uint16_t p) { return PortRange{p, p}; }
  bool operator==(const PortRange&) const = default;
};

// ---- matches ----

// -m comment --comment "..." (at most 255 bytes).
struct Comment {
  std::string text;
  bool operator==(const Comment&) const = default;
};

// -m tcp / -m udp / -m sctp, chosen by Rule::protocol: [!] --sport, [!] --dport.
struct Port {
  std::optional<PortRange> sport;
  std::optional<PortRange> dport;
  bool sport_negate = false;
  bool dport_negate = false;
  bool operator==(const Port&) const = default;
};

// -m mark [!] --mark value[/mask] (revision 1).
struct Mark {
  uint32_t value = 0;
  uint32_t mask = 0xffffffff;
  bool negate = false;
  bool operator==(const Mark&) const = default;
};

// Address types as the kernel numbers them (RTN_*), bit i = 1 << i.
enum AddrType : uint16_t {
  kAddrUnspec = 1 << 0,
  kAddrUnicast = 1 << 1,
  kAddrLocal = 1 << 2,
  kAddrBroadcast = 1 << 3,
  kAddrAnycast = 1 << 4,
  kAddrMulticast = 1 << 5,
  kAddrBlackhole = 1 << 6,
  kAddrUnreachable = 1 << 7,
  kAddrProhibit = 1 << 8,
  kAddrThrow = 1 << 9,
  kAddrNat = 1 << 10,
  kAddrXresolve = 1 << 11,
};

// -m addrtype [!] --src-type T [!] --dst-type T [--limit-iface-in|out] (revision 1).
// Types are AddrType bit sets; 0 means "not matched".
struct AddrTypeMatch {
  uint16_t src_types = 0;
  uint16_t dst_types = 0;
  bool src_negate = false;
  bool dst_negate = false;
  bool limit_iface_in = false;
  bool limit_iface_out = false;
  bool operator==(const AddrTypeMatch&) const = default;
};

enum CtState : uint16_t {
  kCtInvalid = 1 << 0,
  kCtEstablished = 1 << 1,
  kCtRelated = 1 << 2,
  kCtNew = 1 << 3,
  kCtSnat = 1 << 8,
  kCtDnat = 1 << 9,
  kCtUntracked = 1 << 10,
};

// -m conntrack [!] --ctstate S[,S...] (revision 3). `states` is a CtState bit set.
struct Conntrack {
  uint16_t states = 0;
  bool negate = false;
  bool operator==(const Conntrack&) const = default;
};

// -m statistic --mode random --probability P (revision 0). The kernel keeps P as
// lround(P * 0x80000000); this struct keeps that integer so equality is exact.
struct Statistic {
  uint32_t probability = 0x80000000u;
  bool negate = false;
  static Statistic Random(double p);  // p in [0, 1]
  double probability_value() const { return probability / 2147483648.0; }
  bool operator==(const Statistic&) const = default;
};

// -m recent (revision 1): --set, or --rcheck [--seconds N] [--reap]; --name, --mask,
// --rsource/--rdest. Client affinity of a load balancer uses both forms.
struct Recent {
  enum class Mode : uint8_t { kSet, kRcheck, kUpdate, kRemove };
  Mode mode = Mode::kSet;
  std::string name = "DEFAULT";  // at most 199 bytes
  uint32_t seconds = 0;          // 0: not given
  bool reap = false;
  uint32_t hit_count = 0;
  bool rdest = false;            // false: --rsource
  net::IPAddress mask = net::IPAddress::V4(0xffffffffu);
  bool negate = false;
  bool operator==(const Recent&) const = default;
};

// -m physdev (revision 0): only what bridges need. Empty names are not matched.
// (Plain fields, no std::optional: GCC 12 warns maybe-uninitialized on variants of
// optionals of strings in initializer lists.)
struct Physdev {
  enum class Bridged : uint8_t { kAny, kBridged, kNotBridged };
  enum class IsIn : uint8_t { kAny, kYes, kNo };
  IsIn is_in = IsIn::kAny;  // [!] --physdev-is-in: arrived through a bridge port
  std::string in;  // --physdev-in
  bool in_negate = false;
  std::string out;  // --physdev-out
  bool out_negate = false;
  Bridged bridged = Bridged::kAny;  // [!] --physdev-is-bridged
  bool operator==(const Physdev&) const = default;
};

// -m set [!] --match-set NAME dst,dst[,src] (revision 4). The kernel refers to a set by
// its index, not its name: `index` must be resolved (resolve_set_indexes, set_index.h)
// before the rule is encoded. Equality and encoding use the index; the name is what
// iptables-save prints and what error messages say.
struct SetMatch {
  static constexpr uint16_t kUnresolved = 0xffff;  // IPSET_INVALID_ID
  std::string name;
  std::string dirs = "dst";  // 1..3 of "src"/"dst", comma separated, as iptables takes it
  uint16_t index = kUnresolved;
  bool negate = false;
  bool operator==(const SetMatch&) const = default;
};

// -m ipvs [--vproto N] [--vaddr A/M] [--vport P] (revision 0): packets IPVS handles for
// that virtual service.
struct IpvsMatch {
  std::optional<net::Cidr> vaddr;
  uint8_t vproto = 0;  // IP protocol number; 0: not matched
  uint16_t vport = 0;  // 0: not matched
  bool operator==(const IpvsMatch&) const = default;
};

using Match = std::variant<Comment, Port, Mark, AddrTypeMatch, Conntrack, Statistic, Recent,
                           Physdev, SetMatch, IpvsMatch>;

// ---- targets ----

// -j CHAIN (or -g CHAIN when `go_to`): a user-defined chain.
struct Jump {
  std::string chain;
  bool go_to = false;
  bool operator==(const Jump&) const = default;
};

enum class Verdict : uint8_t { kAccept, kDrop, kReturn };
const char* to_string(Verdict v);  // "ACCEPT"

// -j REJECT --reject-with ... (revision 0; filter table only).
enum class RejectWith : uint8_t {
  kIcmpNetUnreachable,
  kIcmpHostUnreachable,
  kIcmpProtoUnreachable,
  kIcmpPortUnreachable,
  kIcmpNetProhibited,
  kIcmpHostProhibited,
  kTcpReset,
  kIcmpAdminProhibited,
};
struct Reject {
  RejectWith with = RejectWith::kIcmpPortUnreachable;
  bool operator==(const Reject&) const = default;
};

// -j DNAT --to-destination ip[:port[-port]] / -j SNAT --to-source ... (revision 2).
struct Nat {
  net::IPAddress ip;                // IPv4
  std::optional<PortRange> ports;
  bool random = false;
  bool random_fully = false;
  bool persistent = false;
  bool operator==(const Nat&) const = default;
};
struct Dnat : Nat {
  bool operator==(const Dnat&) const = default;
};
struct Snat : Nat {
  bool operator==(const Snat&) const = default;
};

// -j MASQUERADE [--to-ports p[-q]] [--random] [--random-fully] (revision 0).
struct Masquerade {
  std::optional<PortRange> to_ports;
  bool random = false;
  bool random_fully = false;
  bool operator==(const Masquerade&) const = default;
};

// -j MARK (revision 2). The kernel knows only "xmark": new = (old & ~mask) ^ value, and
// iptables-save prints every form as --set-xmark value/mask. The helpers spell the
// user-facing forms:  --or-mark 0x4000 == SetXmark(0x4000, 0x4000).
struct MarkTarget {
  uint32_t value = 0;
  uint32_t mask = 0xffffffff;
  static MarkTarget SetXmark(uint32_t v, uint32_t m) { return {v, m}; }
  static MarkTarget SetMark(uint32_t v, uint32_t m = 0xffffffff) { return {v, v | m}; }
  static MarkTarget OrMark(uint32_t bits) { return {bits, bits}; }
  static MarkTarget AndMark(uint32_t bits) { return {0, ~bits}; }
  static MarkTarget XorMark(uint32_t bits) { return {bits, 0}; }
  bool operator==(const MarkTarget&) const = default;
};

using Target = std::variant<Jump, Verdict, Reject, Dnat, Snat, Masquerade, MarkTarget>;

struct Rule {
  std::optional<CidrMatch> src;
  std::optional<CidrMatch> dst;
  Proto protocol = Proto::kNone;
  bool protocol_negate = false;
  std::optional<IfaceMatch> in_iface;
  std::optional<IfaceMatch> out_iface;
  std::vector<Match> matches;
  Target target = Verdict::kAccept;

  bool operator==(const Rule&) const = default;

  // The line iptables-legacy-save prints for this rule in `chain`, without newline:
  //   -A LB-WEB -m comment --comment "web -> 10.0.0.1:80" -j LB-WEB-1
  std::string save_string(const std::string& chain) const;

  // Checks the rule can be encoded (IPv4 only, Port needs a protocol, name lengths).
  Status validate() const;

  // The ipt_entry bytes (header, matches, target, each XT_ALIGNed) in the form
  // libiptc's iptc_append_entry takes: a jump to a user chain has a standard target
  // named after the chain; ACCEPT/DROP/RETURN are standard targets with their verdict.
  // Counters are zero. Call validate() first; encode() of an invalid rule is garbage.
  std::string encode() const;
  // Appends the same bytes to `out` (for building a whole chain in one buffer).
  void encode_to(std::string& out) const;
};

std::ostream& operator<<(std::ostream& os, const Rule& r);  // save_string("<chain>")

// The number of dimensions of a SetMatch::dirs ("dst,dst,src" -> 3) and the kernel's
// source bits for them; -1 when malformed.
int set_match_dims(const std::string& dirs, uint8_t* src_flags = nullptr);

// Builds a Rule from its iptables-save tokens (the part after "-A CHAIN"), for tests and
// for callers that prefer text. Supports what this header models, nothing more.
Result<Rule> parse_rule(const std::string& args);

}  // namespace knode::iptables
