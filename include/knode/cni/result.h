// The ADD result and its JSON for each spec version (0.4.0 carries "version" in ips).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "knode/cni/error.h"
#include "knode/dataplane/link.h"
#include "knode/net.h"

namespace knode::cni {

struct ResultInterface {
  std::string name;
  std::string mac;
  std::optional<unsigned> mtu;
  std::string sandbox;  // empty for host interfaces
};

struct ResultIp {
  link::IpNet address;
  std::optional<net::IPAddress> gateway;
  std::optional<int> interface;  // index into interfaces
};

struct ResultRoute {
  net::Cidr dst;
  std::optional<net::IPAddress> gw;
};

struct CniResult {
  std::string cni_version;
  std::vector<ResultInterface> interfaces;
  std::vector<ResultIp> ips;
  std::vector<ResultRoute> routes;
  nlohmann::json dns = nlohmann::json::object();
};

nlohmann::json to_json(const CniResult& r);
// Reads a result (e.g. prevResult); 7 when it is malformed.
Result<CniResult> parse_result(const nlohmann::json& j);

nlohmann::json error_json(const Status& e, const std::string& cni_version);
nlohmann::json version_json(const std::string& cni_version);

}  // namespace knode::cni
