#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "knode/api/codec.h"
#include "knode/api/field_codec.h"
#include "knode/config.h"
#include "knode/json_get.h"

namespace knode::config {

Status load_config_file(const std::string& path, AgentConfig* out) {
  std::ifstream in(path);
  if (!in) return Status::FromErrno("read config " + path, errno);
  std::stringstream ss;
  ss << in.rdbuf();
  auto docs = api::yaml_documents(ss.str(), path);
  if (!docs.ok()) return docs.status();
  int used = 0;
  for (auto& doc : *docs) {
    if (doc.is_null()) continue;
    nlohmann::json* j = &doc;
    if (!j->is_object()) return Status::Error(path + ": expected a configuration object");
    std::string kind = jget::str(*j, "kind");
    std::string api_version = jget::str(*j, "apiVersion");
    j->erase("kind");
    j->erase("apiVersion");
    Status s;
    if (kind == "KubeProxyConfiguration") {
      if (api_version != "kubeproxy.config.k8s.io/v1alpha1") {
        return Status::Error(path + ": KubeProxyConfiguration: apiVersion \"" + api_version +
                             "\" not supported (want kubeproxy.config.k8s.io/v1alpha1)");
      }
      s = api::decode_fields(*j, out->proxy);
      if (s.ok() && !out->proxy.hostname_override.empty()) out->hostname_override = out->proxy.hostname_override;
      if (s.ok() && !out->proxy.client_connection.kubeconfig.empty()) {
        out->kubeconfig = out->proxy.client_connection.kubeconfig;
      }
    } else if (kind == "KubeletConfiguration") {
      if (api_version != "kubelet.config.k8s.io/v1beta1") {
        return Status::Error(path + ": KubeletConfiguration: apiVersion \"" + api_version +
                             "\" not supported (want kubelet.config.k8s.io/v1beta1)");
      }
      s = api::decode_fields(*j, out->kubelet);
      if (s.ok() && !out->kubelet.static_pod_path.empty()) out->manifest_dir = out->kubelet.static_pod_path;
    } else {
      return Status::Error(path + ": kind \"" + kind +
                           "\" not supported (want KubeProxyConfiguration or KubeletConfiguration)");
    }
    if (!s.ok()) return Status::Error(path + ": " + kind + ": " + s.message());
    ++used;
  }
  if (used == 0) return Status::Error(path + ": no configuration document");
  return Status::Ok();
}

}  // namespace knode::config
