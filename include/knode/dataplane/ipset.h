// The kernel's ip sets as plain values, and the small interface that programs them.
// A load balancer keeps its address lists in sets that a few iptables rules match
// (`-m set`), so the rules stay few however many addresses there are. The real
// implementation speaks nfnetlink (NFNL_SUBSYS_IPSET, dataplane/ipset/);
// tests/fakes/fake_ipset.h keeps the sets in memory for unit tests.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "knode/net.h"
#include "knode/net.h"
#include "knode/status.h"

namespace knode::ipset {

// The set types a load balancer needs, named as `ipset` names them.
enum class SetType : uint8_t {
  kHashIp,          // hash:ip
  kHashIpPort,      // hash:ip,port        virtual IP:port pairs
  kHashIpPortIp,    // hash:ip,port,ip     virtual IP:port with one real server (hairpin)
  kHashIpPortNet,   // hash:ip,port,net    virtual IP:port with allowed source networks
  kHashNet,         // hash:net            networks
  kBitmapPort,      // bitmap:port         ports
};
const char* to_string(SetType t);  // "hash:ip,port"
std::optional<SetType> parse_set_type(const std::string& name);

inline constexpr size_t kMaxNameLength = 31;  // IPSET_MAXNAMELEN - 1

struct SetSpec {
  std::string name;
  SetType type = SetType::kHashIpPort;
  int family = 4;               // 4 or 6 (hash types); bitmap:port ignores it
  uint32_t hash_size = 1024;    // hash types
  uint32_t max_elements = 65536;
  uint16_t port_from = 0;       // bitmap:port range
  uint16_t port_to = 65535;
  std::string comment;          // not stored in the kernel; for callers' bookkeeping

  // Same kernel-visible definition (name, type, family; range for bitmap:port).
  bool same_definition(const SetSpec& o) const {
    return name == o.name && type == o.type &&
           (type == SetType::kBitmapPort ? port_from == o.port_from && port_to == o.port_to
                                         : family == o.family);
  }
  bool operator==(const SetSpec&) const = default;
};

// One member. Which fields count depends on the set type:
//   hash:ip          ip
//   hash:ip,port     ip, protocol, port
//   hash:ip,port,ip  ip, protocol, port, ip2
//   hash:ip,port,net ip, protocol, port, net
//   hash:net         net
//   bitmap:port      port
struct Entry {
  net::IPAddress ip;
  net::Protocol protocol = net::Protocol::kTCP;
  uint16_t port = 0;
  net::IPAddress ip2;
  net::Cidr net;

  // As `ipset list` prints it: "10.96.0.1,tcp:80", "10.0.0.0/8", "30080".
  std::string str(SetType type) const;
  auto operator<=>(const Entry&) const = default;
};

struct Set {
  SetSpec spec;
  std::vector<Entry> entries;  // kernel order
  uint32_t references = 0;     // iptables rules using the set
};

// The ip sets of the current network namespace. Errors name the operation, the set
// and the entry: "add 10.96.0.1,tcp:80 to ipset LB-VIPS: Element exists".
class Ipset {
 public:
  virtual ~Ipset() = default;

  // True when the kernel has ip_set (the nfnetlink subsystem answers).
  virtual bool is_available() = 0;

  // `exist_ok`: an existing set of the same type is fine (ipset create -exist).
  virtual Status create_set(const SetSpec& spec, bool exist_ok) = 0;
  // Fails with "Set cannot be destroyed: it is in use" while a rule references it.
  virtual Status destroy_set(const std::string& name) = 0;
  virtual Status flush_set(const std::string& name) = 0;
  virtual Result<std::vector<std::string>> list_set_names() = 0;
  virtual Result<Set> list_set(const std::string& name) = 0;

  // `exist_ok` (add) / `missing_ok` (del): like ipset's -exist.
  virtual Status add_entry(const std::string& set, const Entry& e, bool exist_ok) = 0;
  virtual Status del_entry(const std::string& set, const Entry& e, bool missing_ok) = 0;
  virtual Result<bool> test_entry(const std::string& set, const Entry& e) = 0;

  // Many entries in few messages (as `ipset restore` does). Stops at the first entry
  // the kernel refuses and names it; those before it are in. The default loops.
  virtual Status add_entries(const std::string& set, const std::vector<Entry>& entries,
                             bool exist_ok) {
    for (const auto& e : entries) {
      Status st = add_entry(set, e, exist_ok);
      if (!st.ok()) return st;
    }
    return Status::Ok();
  }
  virtual Status del_entries(const std::string& set, const std::vector<Entry>& entries,
                             bool missing_ok) {
    for (const auto& e : entries) {
      Status st = del_entry(set, e, missing_ok);
      if (!st.ok()) return st;
    }
    return Status::Ok();
  }
};

using IpsetPtr = std::unique_ptr<Ipset>;

// The netlink implementation, bound to the network namespace of the calling thread.
Result<IpsetPtr> open_netlink_ipset();

}  // namespace knode::ipset
