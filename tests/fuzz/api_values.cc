// Fuzzes the scalar parsers every manifest field goes through (common/api, common/base):
// api::Quantity::Parse (resource quantities: "500m", "2Gi", "1e3", with value() and
// milli_value()), api::Time::Parse (RFC 3339), api::Duration::Parse (Go durations, as
// config files spell them), net::IPAddress::Parse and net::Cidr::Parse (every address
// field, --cluster-cidr, podCIDR), api::base64_decode (Secret data, kubeconfig
// *-data), each on every input line; and the round trips the codec relies on when it
// writes objects back: str() parses again to an equal value.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "knode/api/base64.h"
#include "knode/api/values.h"
#include "knode/net.h"

namespace {

void one(const std::string& s) {
  using knode::fuzz::fail;
  std::string err;
  if (auto q = knode::api::Quantity::Parse(s, &err)) {
    (void)q->value();
    (void)q->milli_value();
    auto again = knode::api::Quantity::Parse(q->str());
    if (!again || !(*again == *q)) fail("Quantity::Parse(q.str()) != q", s);
  }
  if (auto t = knode::api::Time::Parse(s)) {
    const std::string text = t->str();
    auto again = knode::api::Time::Parse(text);
    if (!again || !(*again == *t)) fail("Time::Parse(t.str()) != t", s + "\n" + text);
  }
  if (auto d = knode::api::Duration::Parse(s)) {
    const std::string text = d->str();
    auto again = knode::api::Duration::Parse(text);
    if (!again || !(*again == *d)) fail("Duration::Parse(d.str()) != d", s + "\n" + text);
    (void)d->millis();
  }
  if (auto ip = knode::net::IPAddress::Parse(s)) {
    const std::string text = ip->str();
    auto again = knode::net::IPAddress::Parse(text);
    if (!again || !(*again == *ip)) fail("IPAddress::Parse(ip.str()) != ip", s + "\n" + text);
    (void)ip->is_loopback();
    (void)ip->is_unspecified();
    if (ip->is_v4()) (void)(ip->v4_be() ^ ip->v4_host());
  }
  if (auto c = knode::net::Cidr::Parse(s)) {
    const std::string text = c->str();
    auto again = knode::net::Cidr::Parse(text);
    if (!again || !(*again == *c)) fail("Cidr::Parse(c.str()) != c", s + "\n" + text);
    if (!c->contains(c->address())) fail("a CIDR does not contain its own address", s);
  }
  if (auto b = knode::api::base64_decode(s)) {
    const std::string enc = knode::api::base64_encode(*b);
    auto again = knode::api::base64_decode(enc);
    if (!again || *again != *b) fail("base64_decode(base64_encode(x)) != x", s);
  }
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
