// IP addresses and CIDRs as values: parsed once, compared and printed cheaply.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace knode::net {

// A transport protocol, as services, IPVS and ip sets name it.
enum class Protocol : uint8_t { kTCP, kUDP, kSCTP };
const char* to_string(Protocol p);        // "TCP"
const char* to_lower_string(Protocol p);  // "tcp"
uint8_t protocol_number(Protocol p);      // IPPROTO_TCP, ...
// From an IPPROTO_* number; false for any other protocol.
bool protocol_from_number(int number, Protocol* out);

class IPAddress {
 public:
  IPAddress() = default;
  static std::optional<IPAddress> Parse(std::string_view text);
  static IPAddress V4(uint32_t host_order);

  bool valid() const { return family_ != 0; }
  bool is_v4() const { return family_ == 4; }
  bool is_v6() const { return family_ == 6; }
  int family() const { return family_; }
  // IPv4 in network byte order, as the kernel's structs want it.
  uint32_t v4_be() const;
  uint32_t v4_host() const;
  const std::array<uint8_t, 16>& bytes() const { return bytes_; }
  bool is_loopback() const;
  bool is_unspecified() const;
  std::string str() const;

  auto operator<=>(const IPAddress&) const = default;

 private:
  uint8_t family_ = 0;  // 0 invalid, 4 or 6
  std::array<uint8_t, 16> bytes_{};  // v4 uses the first four bytes
};

class Cidr {
 public:
  Cidr() = default;
  static std::optional<Cidr> Parse(std::string_view text);
  Cidr(IPAddress base, int prefix);

  const IPAddress& address() const { return addr_; }
  int prefix() const { return prefix_; }
  bool contains(const IPAddress& ip) const;
  std::string str() const;

  auto operator<=>(const Cidr&) const = default;

 private:
  IPAddress addr_;  // masked to the prefix
  int prefix_ = 0;
};

}  // namespace knode::net
