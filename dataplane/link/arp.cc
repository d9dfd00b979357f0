// A gratuitous ARP over a packet socket: one Ethernet frame, broadcast, carrying an ARP
// request whose sender and target address are both the announced one (RFC 5227's
// announcement). Receivers that hold an entry for the address take the new MAC (Linux
// does even within the entry's locktime: it is a gratuitous ARP).
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <arpa/inet.h>
#include <net/if_arp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "knode/dataplane/link.h"

namespace knode::link {

namespace {

bool parse_mac(std::string_view text, std::array<uint8_t, 6>* out) {
  if (text.size() != 17) return false;
  for (size_t i = 0; i < 6; ++i) {
    unsigned v = 0;
    for (size_t j = 0; j < 2; ++j) {
      char c = text[i * 3 + j];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= static_cast<unsigned>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        v |= static_cast<unsigned>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        v |= static_cast<unsigned>(c - 'A' + 10);
      } else {
        return false;
      }
    }
    if (i < 5 && text[i * 3 + 2] != ':') return false;
    (*out)[i] = static_cast<uint8_t>(v);
  }
  return true;
}

}  // namespace

Status announce_ipv4(int ifindex, std::string_view mac, const net::IPAddress& ip) {
  const std::string what = "gratuitous ARP for " + ip.str();
  if (!ip.is_v4()) return Status::Error(what + ": not an IPv4 address", EINVAL);
  std::array<uint8_t, 6> hw{};
  if (!parse_mac(mac, &hw)) return Status::Error(what + ": bad MAC \"" + std::string(mac) + "\"", EINVAL);

  // Ethernet header (14) + ARP for Ethernet/IPv4 (28).
  std::array<uint8_t, 42> frame{};
  uint8_t* p = frame.data();
  std::memset(p, 0xff, 6);  // broadcast
  std::memcpy(p + 6, hw.data(), 6);
  p[12] = ETH_P_ARP >> 8;
  p[13] = ETH_P_ARP & 0xff;
  uint8_t* arp = p + 14;
  arp[0] = 0, arp[1] = ARPHRD_ETHER;
  arp[2] = ETH_P_IP >> 8, arp[3] = ETH_P_IP & 0xff;
  arp[4] = 6, arp[5] = 4;
  arp[6] = 0, arp[7] = ARPOP_REQUEST;
  std::memcpy(arp + 8, hw.data(), 6);         // sender MAC
  std::memcpy(arp + 14, ip.bytes().data(), 4);  // sender IP
  // target MAC: zero (unknown)
  std::memcpy(arp + 24, ip.bytes().data(), 4);  // target IP = sender IP

  int fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);  // protocol 0: send only
  if (fd < 0) return Status::Error(what + ": packet socket: " + std::strerror(errno), errno);
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_protocol = htons(ETH_P_ARP);
  to.sll_ifindex = ifindex;
  to.sll_halen = 6;
  std::memset(to.sll_addr, 0xff, 6);
  ssize_t n = ::sendto(fd, frame.data(), frame.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
  int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(frame.size())) {
    return Status::Error(what + ": send: " + (n < 0 ? std::strerror(err) : "short write"), n < 0 ? err : EIO);
  }
  return Status::Ok();
}

}  // namespace knode::link
