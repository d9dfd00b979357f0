// The network configuration a runtime passes on stdin: the bridge plugin's fields,
// host-local IPAM, the portMappings capability, prevResult and GC's valid attachments.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "knode/cni/error.h"
#include "knode/net.h"

namespace knode::cni {

// One allocatable range, resolved: first..last inclusive, never network/broadcast.
struct Range {
  net::Cidr subnet;
  net::IPAddress first;
  net::IPAddress last;
  net::IPAddress gateway;
  std::string str() const;  // "10.22.0.0/24 (10.22.0.2-10.22.0.254)"
};
using RangeSet = std::vector<Range>;
std::string range_set_str(const RangeSet& set);

struct RouteConf {
  net::Cidr dst;
  std::optional<net::IPAddress> gw;
};

struct IpamConfig {
  std::string type = "host-local";
  std::vector<RangeSet> ranges;
  std::vector<RouteConf> routes;
  std::string data_dir = "/var/lib/cni/networks";
};

struct PortMapping {
  uint16_t host_port = 0;
  uint16_t container_port = 0;
  std::string protocol = "tcp";  // tcp, udp, sctp
  std::optional<net::IPAddress> host_ip;
};

struct Attachment {
  std::string container_id;
  std::string ifname;
  auto operator<=>(const Attachment&) const = default;
};

struct NetConf {
  std::string cni_version;
  std::string name;
  std::string type;
  std::string bridge = "cni0";
  bool is_gateway = false;
  bool is_default_gateway = false;
  bool hairpin_mode = false;
  bool promisc_mode = false;
  bool ip_masq = false;
  unsigned mtu = 0;
  IpamConfig ipam;
  std::vector<PortMapping> port_mappings;   // runtimeConfig.portMappings
  std::optional<nlohmann::json> prev_result;
  std::optional<std::vector<Attachment>> valid_attachments;  // GC
  nlohmann::json dns = nlohmann::json::object();
};

// Parses and validates: 6 when stdin is not JSON, 1 for an unsupported cniVersion,
// 7 for anything else wrong (missing name, bad subnet, range outside its subnet, ...).
// `need_ipam` is false for VERSION/STATUS-style callers that tolerate no ranges.
Result<NetConf> parse_netconf(std::string_view text, bool need_ipam = true);

}  // namespace knode::cni
