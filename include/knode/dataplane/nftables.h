// nf_tables as plain values, and the small interface that reads and writes one table.
//
// The values mirror what the kernel stores: a table, its chains (base chains carry their
// hook, priority and policy), rules as lists of expressions in the kernel's own
// vocabulary (payload, meta, cmp, lookup, immediate, ...), and sets and maps with their
// elements. Anonymous sets (`{ a, b }` inside a rule) travel inside the lookup that uses
// them. include/knode/dataplane/nftables/exprs.h builds the expressions the way `nft`
// encodes its statements; print.h prints them the way `nft list` does.
//
// The real implementation speaks nfnetlink (NFNL_SUBSYS_NFTABLES) through libmnl and
// parses the kernel's dumps with libnftnl (dataplane/nftables/); every change goes to the
// kernel as one transaction (NFNL_MSG_BATCH_BEGIN ... END), which applies completely or
// not at all. tests/fakes/fake_nftables.h keeps tables in memory for unit tests.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "knode/status.h"

namespace knode::nftables {

enum class Family : uint8_t { kInet = 1, kIPv4 = 2, kIPv6 = 10 };
const char* family_name(Family f);  // "ip", "ip6", "inet"

// Raw bytes as the kernel holds them: addresses and ports in network order, values that
// sit in a register padded to 4 bytes.
using Bytes = std::string;

// The kernel's registers: kVerdict, the four 16-byte ones, and the 32-bit ones that
// overlay them (k32(0) is the first 4 bytes of k1).
namespace reg {
inline constexpr uint32_t kVerdict = 0, k1 = 1, k2 = 2, k3 = 3, k4 = 4;
constexpr uint32_t k32(uint32_t n) { return 8 + n; }
}  // namespace reg

struct Verdict {
  enum class Code : int32_t { kDrop = 0, kAccept = 1, kContinue = -1, kBreak = -2, kJump = -3, kGoto = -4, kReturn = -5 };
  Code code = Code::kAccept;
  std::string chain;  // kJump, kGoto

  static Verdict Accept() { return {Code::kAccept, {}}; }
  static Verdict Drop() { return {Code::kDrop, {}}; }
  static Verdict Return() { return {Code::kReturn, {}}; }
  static Verdict Jump(std::string chain) { return {Code::kJump, std::move(chain)}; }
  static Verdict Goto(std::string chain) { return {Code::kGoto, std::move(chain)}; }
  std::string str() const;  // "goto chain", "drop"
  bool operator==(const Verdict&) const = default;
};

// ---------------------------------------------------------------- sets and maps

// nft's notes on a set (NFTA_SET_USERDATA): how to print its keys and data, and a
// comment. Kept as nft writes them so `nft list` shows the set as nft would.
struct SetUserdata {
  std::optional<uint32_t> key_byteorder, data_byteorder, merge_elements, data_interval;
  std::optional<Bytes> key_typeof, data_typeof;
  std::string comment;
  bool operator==(const SetUserdata&) const = default;
};

struct SetSpec {
  std::string name;        // anonymous sets: the client names them ("__set3.5e2a9c01")
  uint32_t flags = 0;      // NFT_SET_ANONYMOUS | CONSTANT | INTERVAL | MAP | TIMEOUT | EVAL
  uint32_t key_type = 0;   // nft's datatype id; concatenations shift each part by 6 bits
  uint32_t key_len = 0;    // bytes, each concatenated part padded to 4
  uint32_t data_type = 0;  // maps: NFT_DATA_VERDICT or a datatype id
  uint32_t data_len = 0;
  uint64_t timeout_ms = 0;
  uint32_t size = 0;       // NFTA_SET_DESC_SIZE; 0: none given
  SetUserdata userdata;

  bool is_map() const;
  bool is_anonymous() const;
  bool operator==(const SetSpec&) const = default;
};

struct Element {
  Bytes key;
  uint32_t flags = 0;              // NFT_SET_ELEM_INTERVAL_END
  std::optional<Verdict> verdict;  // verdict maps
  Bytes data;                      // data maps
  std::string comment;
  uint32_t udata_flags = 0;  // nft's element note: 1 = an interval open to the end of the key space
  bool operator==(const Element&) const = default;
};

struct AnonymousSet {
  SetSpec spec;                   // flags include NFT_SET_ANONYMOUS | NFT_SET_CONSTANT
  std::vector<Element> elements;  // in the order given; compared as a set
  bool operator==(const AnonymousSet& o) const;
};

// ---------------------------------------------------------------- expressions

struct Payload {
  uint32_t base = 0;  // NFT_PAYLOAD_LL/NETWORK/TRANSPORT_HEADER
  uint32_t offset = 0, len = 0, dreg = 0;
  bool operator==(const Payload&) const = default;
};
struct Meta {  // a load (dreg) or a set (sreg)
  uint32_t key = 0, dreg = 0, sreg = 0;
  bool operator==(const Meta&) const = default;
};
struct Cmp {
  uint32_t sreg = 0, op = 0;  // NFT_CMP_EQ, NEQ, ...
  Bytes data;
  bool operator==(const Cmp&) const = default;
};
struct Bitwise {  // dreg = (sreg & mask) ^ xor
  uint32_t sreg = 0, dreg = 0, len = 0;
  Bytes mask, xor_;
  bool operator==(const Bitwise&) const = default;
};
struct Ct {
  uint32_t key = 0, dreg = 0;
  bool operator==(const Ct&) const = default;
};
struct Fib {
  uint32_t flags = 0, result = 0, dreg = 0;
  bool operator==(const Fib&) const = default;
};
struct Numgen {
  uint32_t dreg = 0, modulus = 0, type = 0, offset = 0;
  bool operator==(const Numgen&) const = default;
};
struct Immediate {  // dreg kVerdict: the verdict; else data into a register
  uint32_t dreg = 0;
  Bytes data;
  Verdict verdict;
  bool operator==(const Immediate&) const = default;
};
struct Lookup {
  uint32_t sreg = 0;
  std::optional<uint32_t> dreg;  // maps: where the data goes (kVerdict for a vmap)
  bool invert = false;           // NFT_LOOKUP_F_INV
  std::string set;               // a named set, or
  std::shared_ptr<const AnonymousSet> anonymous;
  bool operator==(const Lookup& o) const;
};
struct Dynset {
  uint32_t op = 0;  // NFT_DYNSET_OP_ADD/UPDATE/DELETE
  uint32_t sreg_key = 0;
  std::string set;
  uint64_t timeout_ms = 0;
  bool operator==(const Dynset&) const = default;
};
struct Nat {
  uint32_t type = 0;  // NFT_NAT_SNAT/DNAT
  uint32_t family = 0;
  uint32_t reg_addr_min = 0, reg_addr_max = 0, reg_proto_min = 0, reg_proto_max = 0;
  uint32_t flags = 0;  // NF_NAT_RANGE_*
  bool operator==(const Nat&) const = default;
};
struct Masq {
  uint32_t flags = 0;
  bool operator==(const Masq&) const = default;
};
struct Reject {
  uint32_t type = 0;  // NFT_REJECT_ICMP_UNREACH, ...
  uint8_t code = 0;
  bool operator==(const Reject&) const = default;
};
struct Byteorder {  // dreg = hton/ntoh(sreg): `len` bytes as words of `size` bytes
  uint32_t sreg = 0, dreg = 0, op = 0, len = 0, size = 0;  // op: NFT_BYTEORDER_NTOH/HTON
  bool operator==(const Byteorder&) const = default;
};
struct Counter {  // its numbers are the kernel's; two counters always compare equal
  uint64_t packets = 0, bytes = 0;
  bool operator==(const Counter&) const { return true; }
};

using Expr = std::variant<Payload, Meta, Cmp, Bitwise, Ct, Fib, Numgen, Immediate, Lookup, Dynset, Nat, Masq,
                          Reject, Counter, Byteorder>;

struct Rule {
  std::vector<Expr> exprs;
  std::string comment;
  uint64_t handle = 0;  // set when read from the kernel; not part of ==
  bool operator==(const Rule& o) const { return exprs == o.exprs && comment == o.comment; }
};

// ---------------------------------------------------------------- tables and chains

struct BaseChain {
  std::string type;       // "filter", "nat", "route"
  uint32_t hook = 0;      // NF_INET_*
  int32_t priority = 0;
  uint32_t policy = 1;    // NF_ACCEPT
  bool operator==(const BaseChain&) const = default;
};

struct Chain {
  std::string name;
  std::optional<BaseChain> base;
  std::string comment;
  uint64_t handle = 0;  // set when read from the kernel; not part of ==
  bool operator==(const Chain& o) const { return name == o.name && base == o.base && comment == o.comment; }
};

struct Table {
  Family family = Family::kIPv4;
  std::string name;
  uint32_t flags = 0;
  std::string comment;
  bool operator==(const Table&) const = default;
};

// A whole table as values, in the kernel's order: what tests and the printer use.
struct SetContent {
  SetSpec spec;
  std::vector<Element> elements;
};
struct ChainContent {
  Chain chain;
  std::vector<Rule> rules;
};
struct TableContent {
  Table table;
  std::vector<SetContent> sets;      // named sets only
  std::vector<ChainContent> chains;
  const ChainContent* find_chain(std::string_view name) const;
  const SetContent* find_set(std::string_view name) const;
};

// ---------------------------------------------------------------- the interface

// Receives a table as it is read: the table, its named sets with their elements, then
// each chain followed by its rules (anonymous sets inlined into their lookups).
class TableVisitor {
 public:
  virtual ~TableVisitor() = default;
  virtual void table(const Table&) {}
  virtual void set(const SetSpec&, std::vector<Element>&&) {}
  virtual void chain(const Chain&) {}
  virtual void rule(const std::string& /*chain*/, Rule&&) {}
};

// One transaction on one table. Operations are encoded as they are added and sent
// together by commit(); the kernel applies all of them or none. commit() errors name the
// operation the kernel refused and its answer:
//   "add rule ip t c: ip saddr 10.0.0.1 jump x: No such file or directory".
class Transaction {
 public:
  virtual ~Transaction() = default;
  // Operations added after this call belong to phase `p` (0 until called); the batch
  // sends phase 0's operations first, then phase 1's, ..., each in the order added. A
  // caller can so decide an operation late that must run early (a flush before a set is
  // replaced, deletions after everything else).
  static constexpr uint8_t kPhases = 8;
  virtual void phase(uint8_t p) = 0;
  virtual void add_table(const Table& table) = 0;  // creates or updates
  virtual void delete_table() = 0;
  virtual void add_chain(const Chain& chain) = 0;  // creates or updates
  virtual void flush_chain(std::string_view chain) = 0;
  virtual void delete_chain(std::string_view chain) = 0;  // with its rules
  virtual void add_rule(std::string_view chain, const Rule& rule) = 0;
  virtual void delete_rule(std::string_view chain, uint64_t handle) = 0;
  virtual void add_set(const SetSpec& set) = 0;  // creates (no-op when the same exists)
  virtual void flush_set(std::string_view set) = 0;
  virtual void delete_set(std::string_view set) = 0;
  virtual void add_elements(std::string_view set, std::span<const Element> elements) = 0;
  virtual void delete_elements(std::string_view set, std::span<const Element> elements) = 0;
  // Operations added so far.
  virtual size_t size() const = 0;
  virtual Status commit() = 0;
};

class Nftables {
 public:
  virtual ~Nftables() = default;
  // The ruleset generation of this network namespace: it changes with every commit,
  // anyone's. Equal generations mean nothing changed in between.
  virtual Result<uint32_t> generation() = 0;
  // Reads one table into `visitor`; false when the table does not exist.
  virtual Result<bool> list_table(Family family, const std::string& table, TableVisitor& visitor) = 0;
  // A transaction on `table`. With `generation`, the kernel refuses the whole batch
  // (ERESTART) if the ruleset changed since that generation was read.
  virtual std::unique_ptr<Transaction> begin(Family family, const std::string& table,
                                             std::optional<uint32_t> generation = std::nullopt) = 0;
};

using NftablesPtr = std::unique_ptr<Nftables>;

// The netlink implementation, bound to the network namespace of the calling thread.
Result<NftablesPtr> open_netlink_nftables();

// A table as values (nullopt when absent); for tests and small tables.
Result<std::optional<TableContent>> read_table(Nftables& nft, Family family, const std::string& table);

}  // namespace knode::nftables
