// nft statements as nft (1.0.x) encodes them, so that a rule built here is the same
// kernel object `nft -f` makes from the statement's text, and `nft list` prints that
// text back. Each builder names the statement it encodes.
//
//   Rule r = RuleBuilder().ip_daddr(vip).ip_saddr(inside, /*negate=*/true).jump("x").build();
//   // "ip daddr 10.96.0.10 ip saddr != 10.244.0.0/16 jump x"
//
// Sets come with the same care: set specs carry the userdata nft writes (byte orders,
// typeof hints, comment), and keys are laid out as nft lays them out (each concatenated
// part padded to 4 bytes).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "knode/dataplane/nftables.h"
#include "knode/net.h"

namespace knode::nftables {

// nft's datatype ids and sizes (bits), as set keys use them.
enum class Datatype : uint32_t {
  kVerdict = 1,
  kInteger = 4,
  kIPv4Addr = 7,
  kInetProto = 12,
  kInetService = 13,
};

// `ct state` bits (NF_CT_STATE_*_BIT).
inline constexpr uint32_t kCtStateInvalid = 1, kCtStateEstablished = 2, kCtStateRelated = 4, kCtStateNew = 8,
                          kCtStateUntracked = 64;

class RuleBuilder {
 public:
  // ip saddr / ip daddr == or != an address or prefix ("ip saddr != 10.0.0.0/8").
  RuleBuilder& ip_saddr(const net::Cidr& cidr, bool negate = false);
  RuleBuilder& ip_daddr(const net::Cidr& cidr, bool negate = false);
  RuleBuilder& ip_daddr(const net::IPAddress& ip, bool negate = false);
  // ip saddr { a, b/16 } (an anonymous interval set; one prefix is a plain compare, as nft
  // makes it).
  RuleBuilder& ip_saddr_in(const std::vector<net::Cidr>& cidrs, bool negate = false);
  // ip saddr @set / ip daddr @set
  RuleBuilder& ip_saddr_in_set(const std::string& set, bool negate = false);
  RuleBuilder& ip_daddr_in_set(const std::string& set, bool negate = false);
  RuleBuilder& ct_state(uint32_t bits);          // ct state new
  RuleBuilder& fib_daddr_type_local();           // fib daddr type local
  RuleBuilder& fib_saddr_type_local();           // fib saddr type local
  RuleBuilder& meta_l4proto(uint8_t protocol);   // meta l4proto tcp
  // meta mark & M == V (or != V)
  RuleBuilder& mark_and_equals(uint32_t mask, uint32_t value, bool negate = false);
  RuleBuilder& ct_status_dnat();                 // ct status dnat
  // ip saddr . ip daddr . meta l4proto . th dport @set
  RuleBuilder& saddr_daddr_proto_dport_in_set(const std::string& set);
  RuleBuilder& mark_set_or(uint32_t bits);       // meta mark set meta mark | B
  RuleBuilder& mark_set_xor(uint32_t bits);      // meta mark set meta mark ^ B
  // ip daddr . meta l4proto . th dport vmap @map
  RuleBuilder& vmap_daddr_proto_dport(const std::string& map);
  // meta l4proto . th dport vmap @map
  RuleBuilder& vmap_proto_dport(const std::string& map);
  // numgen random mod N vmap { 0 : v0, 1 : v1, ... }
  RuleBuilder& numgen_random_vmap(const std::vector<Verdict>& targets);
  // numgen random mod N V (true with probability 1/N for V < N)
  RuleBuilder& numgen_random_equals(uint32_t modulus, uint32_t value);
  // update @set { ip saddr }
  RuleBuilder& update_set_with_saddr(const std::string& set);
  RuleBuilder& dnat_to(const net::IPAddress& ip, uint16_t port);  // dnat to 10.0.0.1:80
  // dnat ip addr . port to numgen random mod N map { 0 : 10.0.0.1 . 80, 1 : ... }
  // (`nft list` prints it as "dnat ip to numgen random mod N map { ... }")
  RuleBuilder& dnat_numgen_random_map(const std::vector<std::pair<net::IPAddress, uint16_t>>& targets);
  // dnat ip addr . port to numgen random mod M offset O map @map  (a named slot map,
  // below; the slots [O, O+M) of it) (`nft list`: "dnat ip to numgen random mod M offset
  // O map @map", without "offset 0")
  RuleBuilder& dnat_numgen_random_slot_map(const std::string& map, uint32_t modulus, uint32_t offset = 0);
  RuleBuilder& masquerade(bool fully_random);                    // masquerade fully-random
  RuleBuilder& reject();                                         // reject (ICMP port unreachable)
  RuleBuilder& counter();
  RuleBuilder& verdict(const Verdict& v);
  RuleBuilder& jump(const std::string& chain) { return verdict(Verdict::Jump(chain)); }
  RuleBuilder& goto_(const std::string& chain) { return verdict(Verdict::Goto(chain)); }
  RuleBuilder& accept() { return verdict(Verdict::Accept()); }
  RuleBuilder& drop() { return verdict(Verdict::Drop()); }
  RuleBuilder& return_() { return verdict(Verdict::Return()); }
  RuleBuilder& comment(std::string text);

  Rule build() && { return std::move(rule_); }
  Rule build() const& { return rule_; }

 private:
  RuleBuilder& ip_addr(uint32_t offset, const net::Cidr& cidr, bool negate);
  void numgen_random_lookup(std::shared_ptr<AnonymousSet> map, uint32_t dreg);
  Rule rule_;
};

// ---------------------------------------------------------------- sets

// type ipv4_addr [; comment "..."]
SetSpec ipv4_addr_set(const std::string& name, const std::string& comment = "");
// type ipv4_addr ; flags dynamic,timeout ; timeout N s  (filled by `update @set`)
SetSpec dynamic_ipv4_addr_set(const std::string& name, uint32_t timeout_seconds);
// type A . B . C [; comment "..."]
SetSpec concat_set(const std::string& name, const std::vector<Datatype>& key, const std::string& comment = "");
// type A . B . C : verdict [; comment "..."]
SetSpec concat_verdict_map(const std::string& name, const std::vector<Datatype>& key,
                           const std::string& comment = "");

// A slot map: `typeof numgen random mod M : ip daddr . th dport ; flags interval`. The
// targets share the slots [O, O+M) in contiguous ranges, so the rule that reads it (above)
// names no count: targets come and go as element changes alone. Rules with different
// offsets share one map, each reading its own slots. (A rule added or
// replaced makes the kernel validate every chain reachable from the table's base chains
// at commit, milliseconds per thousand rules; elements of a map without verdicts are
// not validated.)
SetSpec numgen_slot_map(const std::string& name, uint32_t modulus);
// Its elements for `targets` in the slots [O, O+M), as nft sends a named interval map's:
// for each range a start element carrying the target and an end element (flags
// NFT_SET_ELEM_INTERVAL_END) at the first slot after it. Target i gets the slots
// O + [i*M/N, (i+1)*M/N); with more targets than slots, those whose range is empty are
// left out (never the case below 720720). O + M must not exceed 2^32.
std::vector<Element> numgen_slot_elements(const std::vector<std::pair<net::IPAddress, uint16_t>>& targets,
                                          uint32_t modulus, uint32_t offset = 0);
// Appends them to `out`.
void append_numgen_slot_elements(const std::vector<std::pair<net::IPAddress, uint16_t>>& targets, uint32_t modulus,
                                 uint32_t offset, std::vector<Element>* out);
// The slot count knode uses: 720720, the least common multiple of 1..16, so up to 16
// targets (and any divisor) share the slots exactly evenly, and N targets otherwise within
// one slot in M/N (under 0.15% at 1,000 targets).
inline constexpr uint32_t kSlots = 720720;

// Keys, laid out as the kernel compares them.
Bytes ipv4_key(const net::IPAddress& ip);
Bytes proto_key(uint8_t protocol);   // inet_proto, padded to 4 bytes
Bytes port_key(uint16_t port);       // inet_service (network order), padded to 4 bytes

// One element of a verdict map; `comment` is stored with it (nft's element comment).
Element verdict_element(Bytes key, Verdict verdict, std::string comment = "");
Element key_element(Bytes key);

// Byte order helpers: a host-order u32 as the kernel holds marks and numgen results.
Bytes host_u32(uint32_t v);

}  // namespace knode::nftables
