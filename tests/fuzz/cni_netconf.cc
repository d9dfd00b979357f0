// Fuzzes the network configuration a container runtime writes to the CNI plugin's stdin:
// cni::parse_netconf (JSON; the bridge fields, host-local IPAM ranges and routes,
// runtimeConfig.portMappings, prevResult, cni.dev/valid-attachments), with and without
// required ranges (ADD/DEL/CHECK vs. STATUS/GC), then what the plugin does next with a
// config that parses: the prevResult through cni::parse_result and back to JSON (CHECK
// and DEL read it), the range text of its messages, and the error/version answers for
// its cniVersion. Errors travel as Result/Status: nothing is caught here.
#include <cstddef>
#include <cstdint>

#include <nlohmann/json.hpp>

#include "fuzz_util.h"
#include "knode/cni/config.h"
#include "knode/cni/error.h"
#include "knode/cni/result.h"
#include "knode/cni/version.h"
#include "knode/json_get.h"

namespace {

void after_parse(const knode::cni::NetConf& c) {
  using namespace knode::cni;
  for (const auto& set : c.ipam.ranges) {
    (void)range_set_str(set);
    for (const auto& r : set) {
      if (!r.subnet.contains(r.first) || !r.subnet.contains(r.last) || !r.subnet.contains(r.gateway)) {
        knode::fuzz::fail("a parsed range leaves its subnet", r.str());
      }
    }
  }
  for (const auto& route : c.ipam.routes) {
    (void)route.dst.str();
    if (route.gw) (void)route.gw->str();
  }
  for (const auto& pm : c.port_mappings) {
    if (pm.host_ip) (void)pm.host_ip->str();
  }
  if (c.prev_result) {
    auto r = parse_result(*c.prev_result);
    if (r.ok()) {
      r->cni_version = c.cni_version;
      (void)knode::jget::dump(to_json(*r));
    }
  }
  (void)knode::jget::dump(c.dns);
  (void)compare_versions(c.cni_version, "0.4.0");
  (void)knode::jget::dump(error_json(error(kInvalidConfig, "fuzz"), c.cni_version));
  (void)knode::jget::dump(version_json(c.cni_version));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = knode::fuzz::as_view(data, size);
  for (bool need_ipam : {true, false}) {
    auto c = knode::cni::parse_netconf(text, need_ipam);
    if (c.ok()) after_parse(*c);
  }
  return 0;
}
