// Fuzzes iptables::parse_rule, the iptables-save rule text reader ("-A CHAIN" stripped:
// addresses, interfaces, -p, -m comment/tcp/udp/sctp/mark/addrtype/conntrack/statistic/
// recent/physdev/set/ipvs, -j/-g targets with their options), one rule per input line.
// For a rule that parses and validates, what the unit tests promise
// (tests/dataplane/iptables/rule_test.cc): save_string() reads back to an equal rule, and
// encode() lays out a well-formed ipt_entry (next_offset = its size, an 8-aligned target
// inside it). Errors travel as Result/Status: nothing is caught here.
#include <linux/netfilter_ipv4/ip_tables.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "fuzz_util.h"
#include "knode/dataplane/iptables/rule.h"

namespace {

void one(const std::string& line) {
  using namespace knode::iptables;
  std::string args = line;
  // "-A CHAIN args" as iptables-save prints it: keep what follows the chain.
  if (args.starts_with("-A ")) {
    auto sp = args.find(' ', 3);
    args = sp == std::string::npos ? std::string() : args.substr(sp + 1);
  }
  auto r = parse_rule(args);
  if (!r.ok()) return;
  for (const auto& m : r->matches) {
    if (const auto* s = std::get_if<SetMatch>(&m)) (void)set_match_dims(s->dirs);
  }
  const std::string saved = r->save_string("FUZZ-CHAIN");
  if (!r->validate().ok()) return;

  if (!saved.starts_with("-A FUZZ-CHAIN")) knode::fuzz::fail("save_string does not start with -A CHAIN", saved);
  const std::string rest = saved.size() > 14 ? saved.substr(14) : std::string();
  auto back = parse_rule(rest);
  if (!back.ok()) knode::fuzz::fail("a valid rule's save_string does not parse", saved + "\n" + back.error());
  if (!(*back == *r)) knode::fuzz::fail("parse_rule(save_string(r)) != r", line + "\n" + saved);

  const std::string bytes = r->encode();
  if (bytes.size() < sizeof(ipt_entry)) knode::fuzz::fail("encode() shorter than an ipt_entry", saved);
  ipt_entry e;
  std::memcpy(&e, bytes.data(), sizeof e);
  if (e.next_offset != bytes.size() || e.target_offset < sizeof(ipt_entry) || e.target_offset % 8 != 0 ||
      e.target_offset + sizeof(xt_entry_target) > e.next_offset) {
    knode::fuzz::fail("encode() lays out a malformed entry", saved);
  }
  if (back->encode() != bytes) knode::fuzz::fail("equal rules encode differently", saved);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  int n = 0;
  for (const std::string& line : knode::fuzz::split(knode::fuzz::as_view(data, size), '\n')) {
    if (++n > 64) break;
    one(line);
  }
  return 0;
}
