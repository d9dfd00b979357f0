// The kernel's IPVS table as plain values, and the small interface that programs it.
// The real implementation speaks generic netlink (family "IPVS", dataplane/ipvs/);
// tests/fakes/fake_ipvs.h keeps the table in memory for unit tests.
#pragma once

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "knode/net.h"
#include "knode/net.h"
#include "knode/status.h"

namespace knode::ipvs {

// Virtual server flags, as in <linux/ip_vs.h> (IP_VS_SVC_F_*).
inline constexpr uint32_t kFlagPersistent = 0x0001;
inline constexpr uint32_t kFlagHashed = 0x0002;     // set by the kernel on every service
inline constexpr uint32_t kFlagOnePacket = 0x0004;
inline constexpr uint32_t kFlagShFallback = 0x0008;  // sh: skip unavailable servers
inline constexpr uint32_t kFlagShPort = 0x0010;      // sh: hash the source port too
// The flags a caller chooses; the others are the kernel's bookkeeping.
inline constexpr uint32_t kUserFlags = kFlagPersistent | kFlagOnePacket | kFlagShFallback |
                                       kFlagShPort | 0x0020;

// Counters of a service or destination, as the kernel reports them.
struct Stats {
  uint64_t connections = 0;
  uint64_t packets_in = 0;
  uint64_t packets_out = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  uint64_t cps = 0;  // current rates, per second
  uint64_t pps_in = 0;
  uint64_t pps_out = 0;
  uint64_t bps_in = 0;
  uint64_t bps_out = 0;
  bool operator==(const Stats&) const = default;
};

// A virtual service, identified by (address, port, protocol). Firewall-mark services
// are not supported here.
struct VirtualServer {
  net::IPAddress address;
  uint16_t port = 0;
  net::Protocol protocol = net::Protocol::kTCP;
  std::string scheduler = "rr";
  uint32_t flags = 0;
  uint32_t timeout = 0;  // persistence, seconds (with kFlagPersistent)
  // Persistence granularity as a prefix length: 32 (v4) / 128 (v6) means one client.
  // 0 means "the full length of the address family".
  uint8_t netmask = 0;
  Stats stats;  // read-only, filled by listings

  // "10.96.0.1:443/TCP" ("[fd00::1]:443/TCP" for IPv6).
  std::string str() const;
  // Same service identity (address, port, protocol).
  bool same_key(const VirtualServer& o) const {
    return address == o.address && port == o.port && protocol == o.protocol;
  }
  // Same identity and configuration; ignores kernel-only flags such as hashed.
  bool same_config(const VirtualServer& o) const;
  uint8_t effective_netmask() const { return netmask ? netmask : (address.is_v6() ? 128 : 32); }
  bool operator==(const VirtualServer&) const = default;
};

enum class ForwardMethod : uint8_t { kMasquerade = 0, kLocal = 1, kTunnel = 2, kDirectRoute = 3 };
const char* to_string(ForwardMethod m);  // "Masq", "Local", "Tunnel", "Route" as ipvsadm


// A destination of a virtual server, identified by (address, port).
struct RealServer {
  net::IPAddress address;
  uint16_t port = 0;
  uint32_t weight = 1;
  ForwardMethod forward = ForwardMethod::kMasquerade;
  uint32_t upper_threshold = 0;  // 0: no limit
  uint32_t lower_threshold = 0;

  // Read-only, filled by listings.
  uint32_t active_connections = 0;
  uint32_t inactive_connections = 0;
  uint32_t persistent_connections = 0;
  Stats stats;

  std::string str() const;  // "10.244.0.5:8080"
  bool same_key(const RealServer& o) const { return address == o.address && port == o.port; }
  // Same identity and configuration (weight, forwarding, thresholds); ignores counters.
  bool same_config(const RealServer& o) const {
    return same_key(o) && weight == o.weight && forward == o.forward &&
           upper_threshold == o.upper_threshold && lower_threshold == o.lower_threshold;
  }
  bool operator==(const RealServer&) const = default;
};

// Connection timeouts in seconds; 0 in a set_timeouts() call leaves that one unchanged.
struct Timeouts {
  uint32_t tcp = 0;
  uint32_t tcp_fin = 0;
  uint32_t udp = 0;
  bool operator==(const Timeouts&) const = default;
};

std::ostream& operator<<(std::ostream& os, const VirtualServer& vs);
std::ostream& operator<<(std::ostream& os, const RealServer& rs);

// The IPVS table of the current network namespace. Errors name the operation and the
// object: "add IPVS service 10.96.0.1:443/TCP: File exists".
class Ipvs {
 public:
  virtual ~Ipvs() = default;

  // True when the kernel has IPVS (the generic netlink family resolves).
  virtual bool is_available() = 0;

  virtual Result<std::vector<VirtualServer>> list_services() = 0;
  // The kernel's copy of one service (identity from `key`); ENOENT when absent.
  virtual Result<VirtualServer> get_service(const VirtualServer& key) = 0;
  virtual Status add_service(const VirtualServer& vs) = 0;
  // Changes scheduler, flags, timeout and netmask of an existing service.
  virtual Status update_service(const VirtualServer& vs) = 0;
  virtual Status delete_service(const VirtualServer& vs) = 0;

  virtual Result<std::vector<RealServer>> list_destinations(const VirtualServer& vs) = 0;
  virtual Status add_destination(const VirtualServer& vs, const RealServer& rs) = 0;
  // Changes weight, forwarding method and thresholds of an existing destination.
  virtual Status update_destination(const VirtualServer& vs, const RealServer& rs) = 0;
  virtual Status delete_destination(const VirtualServer& vs, const RealServer& rs) = 0;

  virtual Result<Timeouts> get_timeouts() = 0;
  virtual Status set_timeouts(const Timeouts& t) = 0;

  // Removes every service and destination.
  virtual Status flush() = 0;
};

using IpvsPtr = std::unique_ptr<Ipvs>;

// The netlink implementation, bound to the network namespace of the calling thread at
// the time of the call. Fails only when no netlink socket can be opened; a kernel
// without IPVS gives an object whose is_available() is false and whose operations fail.
Result<IpvsPtr> open_netlink_ipvs();

}  // namespace knode::ipvs
