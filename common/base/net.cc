#include "knode/net.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace knode::net {

const char* to_string(Protocol p) {
  switch (p) {
    case Protocol::kTCP: return "TCP";
    case Protocol::kUDP: return "UDP";
    case Protocol::kSCTP: return "SCTP";
  }
  return "?";
}

const char* to_lower_string(Protocol p) {
  switch (p) {
    case Protocol::kTCP: return "tcp";
    case Protocol::kUDP: return "udp";
    case Protocol::kSCTP: return "sctp";
  }
  return "?";
}

uint8_t protocol_number(Protocol p) {
  switch (p) {
    case Protocol::kUDP: return IPPROTO_UDP;
    case Protocol::kSCTP: return IPPROTO_SCTP;
    case Protocol::kTCP: break;
  }
  return IPPROTO_TCP;
}

bool protocol_from_number(int number, Protocol* out) {
  switch (number) {
    case IPPROTO_TCP: *out = Protocol::kTCP; return true;
    case IPPROTO_UDP: *out = Protocol::kUDP; return true;
    case IPPROTO_SCTP: *out = Protocol::kSCTP; return true;
    default: return false;
  }
}

std::optional<IPAddress> IPAddress::Parse(std::string_view text) {
  if (text.empty() || text.size() > 45) return std::nullopt;
  char buf[64];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  IPAddress ip;
  if (text.find(':') == std::string_view::npos) {
    // inet_pton accepts only dotted quads, which is what Kubernetes validates too
    // (no leading zeros is checked by callers that care).
    if (inet_pton(AF_INET, buf, ip.bytes_.data()) != 1) return std::nullopt;
    ip.family_ = 4;
  } else {
    if (inet_pton(AF_INET6, buf, ip.bytes_.data()) != 1) return std::nullopt;
    ip.family_ = 6;
  }
  return ip;
}

IPAddress IPAddress::V4(uint32_t host_order) {
  IPAddress ip;
  ip.family_ = 4;
  ip.bytes_[0] = static_cast<uint8_t>(host_order >> 24);
  ip.bytes_[1] = static_cast<uint8_t>(host_order >> 16);
  ip.bytes_[2] = static_cast<uint8_t>(host_order >> 8);
  ip.bytes_[3] = static_cast<uint8_t>(host_order);
  return ip;
}

uint32_t IPAddress::v4_be() const {
  uint32_t v;
  std::memcpy(&v, bytes_.data(), 4);
  return v;
}

uint32_t IPAddress::v4_host() const { return ntohl(v4_be()); }

bool IPAddress::is_loopback() const {
  if (is_v4()) return bytes_[0] == 127;
  if (!is_v6()) return false;
  for (int i = 0; i < 15; ++i) {
    if (bytes_[i] != 0) return false;
  }
  return bytes_[15] == 1;
}

bool IPAddress::is_unspecified() const {
  if (!valid()) return true;
  size_t n = is_v4() ? 4 : 16;
  for (size_t i = 0; i < n; ++i) {
    if (bytes_[i] != 0) return false;
  }
  return true;
}

std::string IPAddress::str() const {
  if (!valid()) return "<invalid>";
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(is_v4() ? AF_INET : AF_INET6, bytes_.data(), buf, sizeof(buf));
  return buf;
}

Cidr::Cidr(IPAddress base, int prefix) : addr_(base), prefix_(prefix) {
  // Mask host bits so equal networks compare equal.
  std::array<uint8_t, 16> b = addr_.bytes();
  int total = addr_.is_v4() ? 32 : 128;
  for (int bit = prefix; bit < total; ++bit) b[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  std::string s;
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(addr_.is_v4() ? AF_INET : AF_INET6, b.data(), buf, sizeof(buf));
  addr_ = *IPAddress::Parse(buf);
}

std::optional<Cidr> Cidr::Parse(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto ip = IPAddress::Parse(text.substr(0, slash));
  if (!ip) return std::nullopt;
  auto digits = text.substr(slash + 1);
  if (digits.empty() || digits.size() > 3) return std::nullopt;
  int prefix = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    prefix = prefix * 10 + (c - '0');
  }
  int max = ip->is_v4() ? 32 : 128;
  if (prefix > max) return std::nullopt;
  return Cidr(*ip, prefix);
}

bool Cidr::contains(const IPAddress& ip) const {
  if (ip.family() != addr_.family()) return false;
  const auto& a = addr_.bytes();
  const auto& b = ip.bytes();
  int full = prefix_ / 8;
  if (std::memcmp(a.data(), b.data(), full) != 0) return false;
  int rest = prefix_ % 8;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[full] & mask) == (b[full] & mask);
}

std::string Cidr::str() const { return addr_.str() + "/" + std::to_string(prefix_); }

}  // namespace knode::net
