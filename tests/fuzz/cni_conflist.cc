// Fuzzes cni::make_conflist, which turns the Node's spec.podCIDR (from the API server, or
// --pod-cidr) and the bridge/network options into the conflist the kubelet installs, then
// reads that document back with cni::parse_netconf the way the plugin will: a conflist
// knode writes for a CIDR it accepted must give the plugin a config it accepts.
// Input: pod CIDR, bridge, network name, data dir as NUL- or newline-separated fields
// (missing ones keep their defaults), mtu from a trailing field. Nothing is written.
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "fuzz_util.h"
#include "knode/cni/config.h"
#include "knode/cni/conflist.h"
#include "knode/json_get.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = knode::fuzz::as_view(data, size);
  const char sep = text.find('\0') != std::string_view::npos ? '\0' : '\n';
  auto f = knode::fuzz::split(text, sep);
  knode::cni::ConflistOptions o;
  o.pod_cidr = f[0];
  if (f.size() > 1 && !f[1].empty()) o.bridge = f[1];
  if (f.size() > 2 && !f[2].empty()) o.network_name = f[2];
  if (f.size() > 3) o.data_dir = f[3];
  if (f.size() > 4) o.mtu = static_cast<unsigned>(std::strtoul(f[4].c_str(), nullptr, 10));
  if (f.size() > 5) {
    o.ip_masq = !f[5].empty() && (f[5][0] & 1);
    o.hairpin_mode = !f[5].empty() && (f[5][0] & 2);
  }
  auto doc = knode::cni::make_conflist(o);
  if (!doc.ok()) return 0;
  const std::string text_out = knode::jget::dump(*doc);
  const auto& plugins = (*doc)["plugins"];
  if (!plugins.is_array()) knode::fuzz::fail("conflist without a plugins array", text_out);
  for (const auto& p : plugins) {
    nlohmann::json conf = p;
    conf["cniVersion"] = (*doc)["cniVersion"];
    conf["name"] = (*doc)["name"];
    if (conf.value("type", "") != "knode-cni") continue;
    (void)knode::cni::parse_netconf(knode::jget::dump(conf), true);
  }
  return 0;
}
