#include "knode/cni/result.h"

#include "knode/cni/version.h"

namespace knode::cni {

using nlohmann::json;

json to_json(const CniResult& r) {
  // 0.3.x and 0.4.0 tag every IP with its family; 1.0.0 dropped the field.
  const bool legacy = compare_versions(r.cni_version, "1.0.0") < 0;
  const bool has_mtu = compare_versions(r.cni_version, "1.1.0") >= 0;
  json j = json::object();
  j["cniVersion"] = r.cni_version;
  json ifaces = json::array();
  for (const auto& i : r.interfaces) {
    json o = {{"name", i.name}};
    if (!i.mac.empty()) o["mac"] = i.mac;
    if (has_mtu && i.mtu) o["mtu"] = *i.mtu;
    if (!i.sandbox.empty()) o["sandbox"] = i.sandbox;
    ifaces.push_back(std::move(o));
  }
  j["interfaces"] = std::move(ifaces);
  json ips = json::array();
  for (const auto& ip : r.ips) {
    json o = json::object();
    if (legacy) o["version"] = ip.address.ip.is_v4() ? "4" : "6";
    o["address"] = ip.address.str();
    if (ip.gateway) o["gateway"] = ip.gateway->str();
    if (ip.interface) o["interface"] = *ip.interface;
    ips.push_back(std::move(o));
  }
  j["ips"] = std::move(ips);
  if (!r.routes.empty()) {
    json routes = json::array();
    for (const auto& rt : r.routes) {
      json o = {{"dst", rt.dst.str()}};
      if (rt.gw) o["gw"] = rt.gw->str();
      routes.push_back(std::move(o));
    }
    j["routes"] = std::move(routes);
  }
  j["dns"] = r.dns.is_object() ? r.dns : json::object();
  return j;
}

Result<CniResult> parse_result(const json& j) {
  auto bad = [](const std::string& what) { return error(kInvalidConfig, "prevResult: " + what); };
  if (!j.is_object()) return bad("must be an object");
  CniResult r;
  if (j.contains("cniVersion") && j["cniVersion"].is_string()) r.cni_version = j["cniVersion"];
  if (j.contains("interfaces")) {
    if (!j["interfaces"].is_array()) return bad("interfaces must be an array");
    for (const json& i : j["interfaces"]) {
      if (!i.is_object() || !i.contains("name") || !i["name"].is_string()) return bad("interface without a name");
      ResultInterface ri;
      ri.name = i["name"];
      if (i.contains("mac") && i["mac"].is_string()) ri.mac = i["mac"];
      if (i.contains("sandbox") && i["sandbox"].is_string()) ri.sandbox = i["sandbox"];
      if (i.contains("mtu") && i["mtu"].is_number_unsigned()) ri.mtu = i["mtu"].get<unsigned>();
      r.interfaces.push_back(std::move(ri));
    }
  }
  if (j.contains("ips")) {
    if (!j["ips"].is_array()) return bad("ips must be an array");
    for (const json& i : j["ips"]) {
      if (!i.is_object() || !i.contains("address") || !i["address"].is_string()) return bad("ip without an address");
      auto addr = link::IpNet::Parse(i["address"].get<std::string>());
      if (!addr) return bad("invalid address " + i["address"].get<std::string>());
      ResultIp ip{*addr, std::nullopt, std::nullopt};
      if (i.contains("gateway") && i["gateway"].is_string()) {
        auto gw = net::IPAddress::Parse(i["gateway"].get<std::string>());
        if (!gw) return bad("invalid gateway");
        ip.gateway = *gw;
      }
      if (i.contains("interface") && i["interface"].is_number_integer()) ip.interface = i["interface"].get<int>();
      r.ips.push_back(ip);
    }
  }
  if (j.contains("routes")) {
    if (!j["routes"].is_array()) return bad("routes must be an array");
    for (const json& rt : j["routes"]) {
      if (!rt.is_object() || !rt.contains("dst") || !rt["dst"].is_string()) return bad("route without dst");
      auto dst = net::Cidr::Parse(rt["dst"].get<std::string>());
      if (!dst) return bad("invalid route dst " + rt["dst"].get<std::string>());
      ResultRoute route{*dst, std::nullopt};
      if (rt.contains("gw") && rt["gw"].is_string()) {
        auto gw = net::IPAddress::Parse(rt["gw"].get<std::string>());
        if (!gw) return bad("invalid route gw");
        route.gw = *gw;
      }
      r.routes.push_back(route);
    }
  }
  if (j.contains("dns") && j["dns"].is_object()) r.dns = j["dns"];
  return r;
}

json error_json(const Status& e, const std::string& cni_version) {
  return {{"cniVersion", cni_version.empty() ? std::string(kLatestVersion) : cni_version},
          {"code", e.error_number()},
          {"msg", e.message()}};
}

json version_json(const std::string& cni_version) {
  return {{"cniVersion", cni_version.empty() ? std::string(kLatestVersion) : cni_version},
          {"supportedVersions", supported_versions()}};
}

}  // namespace knode::cni
