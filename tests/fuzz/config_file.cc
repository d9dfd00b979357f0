// Fuzzes the --config file loader: config::load_config_file (api::yaml_documents: libyaml,
// every document of the file, then KubeProxyConfiguration /
// KubeletConfiguration decoded field by field with api::decode_fields), then
// config::validate on what loaded. load_config_file takes a path, so each input is
// written to a file in a private mkdtemp directory under /tmp, removed after the run.
// Errors travel as Status: nothing is caught here.
#include <cstddef>
#include <cstdint>

#include "fuzz_util.h"
#include "knode/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  knode::fuzz::TempDir dir;
  const std::string path = dir.path() + "/config.yaml";
  knode::fuzz::write_file(path, knode::fuzz::as_view(data, size));
  knode::config::AgentConfig cfg;
  cfg.manifest_dir = "/nonexistent-knode-fuzz/manifests";  // validate() wants a mode
  if (knode::config::load_config_file(path, &cfg).ok()) {
    for (auto c : {knode::config::Component::kAgent, knode::config::Component::kKubelet,
                   knode::config::Component::kProxy}) {
      cfg.component = c;
      (void)knode::config::validate(cfg);
    }
    (void)cfg.proxy.ipvs.sync_period.str();
    (void)cfg.kubelet.runtime_request_timeout.str();
  }
  return 0;
}
