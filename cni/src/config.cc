#include "knode/cni/config.h"

#include <algorithm>
#include <cctype>
#include <string_view>

#include "knode/cni/ip_math.h"
#include "knode/cni/version.h"

namespace knode::cni {

using nlohmann::json;

std::string Range::str() const {
  return subnet.str() + " (" + first.str() + "-" + last.str() + ")";
}

std::string range_set_str(const RangeSet& set) {
  std::string s;
  for (const auto& r : set) {
    if (!s.empty()) s += ", ";
    s += r.str();
  }
  return s;
}

namespace {

Status invalid(std::string msg) { return error(kInvalidConfig, std::move(msg)); }

// The member `key`, or else one whose name equals it ignoring case, as Go's encoding/json
// (every reference plugin) matches them: containerd's go-cni sends its portMappings as
// {"HostPort", "ContainerPort", "Protocol", "HostIP"}, Go field names without JSON tags.
json::const_iterator find_field(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it != obj.end()) return it;
  const std::string_view want(key);
  for (auto i = obj.begin(); i != obj.end(); ++i) {
    const std::string& k = i.key();
    if (k.size() == want.size() &&
        std::equal(k.begin(), k.end(), want.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
        })) {
      return i;
    }
  }
  return obj.end();
}

// Reads an optional field of one JSON type; a present field of the wrong type is an error.
template <typename T>
Status read(const json& obj, const char* key, T* out, const std::string& where) {
  auto it = find_field(obj, key);
  if (it == obj.end() || it->is_null()) return Status::Ok();
  bool type_ok = false;
  if constexpr (std::is_same_v<T, bool>) {
    type_ok = it->is_boolean();
  } else if constexpr (std::is_same_v<T, std::string>) {
    type_ok = it->is_string();
  } else {
    type_ok = it->is_number_unsigned() || (it->is_number_integer() && it->template get<long long>() >= 0);
  }
  if (!type_ok) return invalid(where + key + ": wrong type");
  *out = it->template get<T>();
  return Status::Ok();
}

Result<net::IPAddress> read_ip(const json& obj, const char* key, const std::string& where) {
  std::string text;
  if (auto r = read(obj, key, &text, where); !r.ok()) return r;
  auto ip = net::IPAddress::Parse(text);
  if (!ip) return invalid(where + key + ": invalid IP address \"" + text + "\"");
  return *ip;
}

Result<Range> parse_range(const json& j, const std::string& where) {
  if (!j.is_object()) return invalid(where + ": a range must be an object");
  std::string subnet_text;
  if (auto r = read(j, "subnet", &subnet_text, where + "."); !r.ok()) return r;
  if (subnet_text.empty()) return invalid(where + ".subnet: missing");
  auto subnet = net::Cidr::Parse(subnet_text);
  if (!subnet) return invalid(where + ".subnet: invalid CIDR \"" + subnet_text + "\"");
  const bool v4 = subnet->address().is_v4();
  if ((v4 && subnet->prefix() > 30) || (!v4 && subnet->prefix() > 126)) {
    return invalid(where + ".subnet: " + subnet_text + " is too small to allocate from");
  }
  Range r;
  r.subnet = *subnet;
  net::IPAddress net_addr = network_address(*subnet);
  net::IPAddress bcast = broadcast_address(*subnet);
  // The first usable address; v4's broadcast is never handed out, v6 has none.
  r.first = next_ip(net_addr);
  r.last = v4 ? from_int(4, to_int(bcast) - 1) : bcast;
  r.gateway = r.first;
  auto in_subnet = [&](const char* key, net::IPAddress* out) -> Status {
    if (!j.contains(key) || j[key].is_null()) return Status::Ok();
    auto ip = read_ip(j, key, where + ".");
    if (!ip.ok()) return ip.status();
    if (!subnet->contains(*ip)) {
      return invalid(where + "." + key + ": " + ip->str() + " is outside " + subnet->str());
    }
    *out = *ip;
    return Status::Ok();
  };
  if (auto d = in_subnet("rangeStart", &r.first); !d.ok()) return d;
  if (auto d = in_subnet("rangeEnd", &r.last); !d.ok()) return d;
  if (auto d = in_subnet("gateway", &r.gateway); !d.ok()) return d;
  if (r.first == net_addr || (v4 && r.last == bcast)) {
    return invalid(where + ": range " + r.first.str() + "-" + r.last.str() +
                   " includes the network or broadcast address of " + subnet->str());
  }
  if (to_int(r.first) > to_int(r.last)) {
    return invalid(where + ": rangeStart " + r.first.str() + " is after rangeEnd " + r.last.str());
  }
  return r;
}

Result<IpamConfig> parse_ipam(const json& j, bool need_ranges) {
  IpamConfig ipam;
  if (!j.is_object()) return invalid("ipam: must be an object");
  if (auto r = read(j, "type", &ipam.type, "ipam."); !r.ok()) return r;
  if (ipam.type != "host-local") {
    return invalid("ipam.type: \"" + ipam.type + "\" is not supported (knode-cni has host-local built in)");
  }
  if (auto r = read(j, "dataDir", &ipam.data_dir, "ipam."); !r.ok()) return r;
  if (j.contains("ranges")) {
    const json& sets = j["ranges"];
    if (!sets.is_array()) return invalid("ipam.ranges: must be an array of range sets");
    for (size_t i = 0; i < sets.size(); ++i) {
      std::string where = "ipam.ranges[" + std::to_string(i) + "]";
      if (!sets[i].is_array() || sets[i].empty()) return invalid(where + ": must be a non-empty array of ranges");
      RangeSet set;
      for (size_t k = 0; k < sets[i].size(); ++k) {
        auto r = parse_range(sets[i][k], where + "[" + std::to_string(k) + "]");
        if (!r.ok()) return r.status();
        if (!set.empty() && set.front().subnet.address().family() != r->subnet.address().family()) {
          return invalid(where + ": mixes IPv4 and IPv6 ranges");
        }
        set.push_back(*r);
      }
      ipam.ranges.push_back(std::move(set));
    }
  } else if (j.contains("subnet")) {
    // The older single-range form: subnet/rangeStart/rangeEnd/gateway at ipam level.
    auto r = parse_range(j, "ipam");
    if (!r.ok()) return r.status();
    ipam.ranges.push_back({*r});
  }
  if (need_ranges && ipam.ranges.empty()) return invalid("ipam.ranges: no range configured");
  if (j.contains("routes")) {
    const json& routes = j["routes"];
    if (!routes.is_array()) return invalid("ipam.routes: must be an array");
    for (size_t i = 0; i < routes.size(); ++i) {
      std::string where = "ipam.routes[" + std::to_string(i) + "].";
      if (!routes[i].is_object()) return invalid(where + ": must be an object");
      std::string dst;
      if (auto r = read(routes[i], "dst", &dst, where); !r.ok()) return r;
      auto cidr = net::Cidr::Parse(dst);
      if (!cidr) return invalid(where + "dst: invalid CIDR \"" + dst + "\"");
      RouteConf rc{*cidr, std::nullopt};
      if (routes[i].contains("gw")) {
        auto gw = read_ip(routes[i], "gw", where);
        if (!gw.ok()) return gw.status();
        rc.gw = *gw;
      }
      ipam.routes.push_back(rc);
    }
  }
  return ipam;
}

Result<std::vector<PortMapping>> parse_port_mappings(const json& j) {
  std::vector<PortMapping> out;
  if (!j.is_array()) return invalid("runtimeConfig.portMappings: must be an array");
  for (size_t i = 0; i < j.size(); ++i) {
    std::string where = "runtimeConfig.portMappings[" + std::to_string(i) + "].";
    const json& m = j[i];
    if (!m.is_object()) return invalid(where + ": must be an object");
    unsigned long host = 0, container = 0;
    if (auto r = read(m, "hostPort", &host, where); !r.ok()) return r;
    if (auto r = read(m, "containerPort", &container, where); !r.ok()) return r;
    if (host == 0 || host > 65535) return invalid(where + "hostPort: must be 1-65535");
    if (container == 0 || container > 65535) return invalid(where + "containerPort: must be 1-65535");
    PortMapping pm;
    pm.host_port = static_cast<uint16_t>(host);
    pm.container_port = static_cast<uint16_t>(container);
    if (auto r = read(m, "protocol", &pm.protocol, where); !r.ok()) return r;
    for (char& c : pm.protocol) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (pm.protocol.empty()) pm.protocol = "tcp";
    if (pm.protocol != "tcp" && pm.protocol != "udp" && pm.protocol != "sctp") {
      return invalid(where + "protocol: \"" + pm.protocol + "\" is not tcp, udp or sctp");
    }
    std::string host_ip;
    if (auto r = read(m, "hostIP", &host_ip, where); !r.ok()) return r;
    if (!host_ip.empty() && host_ip != "0.0.0.0" && host_ip != "::") {
      auto ip = net::IPAddress::Parse(host_ip);
      if (!ip) return invalid(where + "hostIP: invalid IP address \"" + host_ip + "\"");
      pm.host_ip = *ip;
    }
    out.push_back(pm);
  }
  return out;
}

Result<std::vector<Attachment>> parse_attachments(const json& j) {
  std::vector<Attachment> out;
  if (!j.is_array()) return invalid("cni.dev/valid-attachments: must be an array");
  for (const json& a : j) {
    if (!a.is_object()) return invalid("cni.dev/valid-attachments: entries must be objects");
    Attachment att;
    if (auto r = read(a, "containerID", &att.container_id, "cni.dev/valid-attachments."); !r.ok()) return r;
    if (auto r = read(a, "ifname", &att.ifname, "cni.dev/valid-attachments."); !r.ok()) return r;
    out.push_back(std::move(att));
  }
  return out;
}

}  // namespace

Result<NetConf> parse_netconf(std::string_view text, bool need_ipam) {
  json j = json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded()) return error(kDecodeFailure, "network configuration is not valid JSON");
  if (!j.is_object()) return error(kDecodeFailure, "network configuration must be a JSON object");
  NetConf c;
  if (auto r = read(j, "cniVersion", &c.cni_version, ""); !r.ok()) return r;
  if (c.cni_version.empty()) c.cni_version = "0.1.0";
  if (!is_supported_version(c.cni_version)) {
    return error(kIncompatibleVersion,
                 "cniVersion " + c.cni_version + " is not supported (supported: 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0)");
  }
  if (auto r = read(j, "name", &c.name, ""); !r.ok()) return r;
  if (auto r = read(j, "type", &c.type, ""); !r.ok()) return r;
  if (c.name.empty()) return invalid("name: missing");
  if (c.name.find('/') != std::string::npos || c.name == "." || c.name == "..") {
    return invalid("name: \"" + c.name + "\" cannot name a directory");
  }
  const std::initializer_list<std::pair<const char*, bool*>> flags = {
      {"isGateway", &c.is_gateway}, {"isDefaultGateway", &c.is_default_gateway},
      {"hairpinMode", &c.hairpin_mode}, {"promiscMode", &c.promisc_mode}, {"ipMasq", &c.ip_masq}};
  for (auto [key, out] : flags) {
    if (auto r = read(j, key, out, ""); !r.ok()) return r;
  }
  if (c.is_default_gateway) c.is_gateway = true;  // as the reference bridge plugin does
  if (auto r = read(j, "bridge", &c.bridge, ""); !r.ok()) return r;
  if (c.bridge.empty() || c.bridge.size() > 15) return invalid("bridge: \"" + c.bridge + "\" is not a valid interface name");
  unsigned long mtu = 0;
  if (auto r = read(j, "mtu", &mtu, ""); !r.ok()) return r;
  if (mtu != 0 && (mtu < 68 || mtu > 65535)) return invalid("mtu: " + std::to_string(mtu) + " is out of range");
  c.mtu = static_cast<unsigned>(mtu);
  if (j.contains("ipam")) {
    auto ipam = parse_ipam(j["ipam"], need_ipam);
    if (!ipam.ok()) return ipam.status();
    c.ipam = std::move(*ipam);
  } else if (need_ipam) {
    return invalid("ipam: missing");
  }
  if (j.contains("runtimeConfig") && j["runtimeConfig"].is_object() &&
      j["runtimeConfig"].contains("portMappings")) {
    auto pm = parse_port_mappings(j["runtimeConfig"]["portMappings"]);
    if (!pm.ok()) return pm.status();
    c.port_mappings = std::move(*pm);
  }
  if (j.contains("prevResult") && !j["prevResult"].is_null()) c.prev_result = j["prevResult"];
  // libcni sends both spellings (an early draft of 1.1 used the second).
  for (const char* key : {"cni.dev/valid-attachments", "cni.dev/attachments"}) {
    if (j.contains(key) && !c.valid_attachments) {
      auto a = parse_attachments(j[key]);
      if (!a.ok()) return a.status();
      c.valid_attachments = std::move(*a);
    }
  }
  if (j.contains("dns") && j["dns"].is_object()) c.dns = j["dns"];
  return c;
}

}  // namespace knode::cni
