#include "cluster/claims.h"

#include <nlohmann/json.hpp>

namespace knode::kubelet {

using nlohmann::json;

Result<ClaimedVolume> resolve_claim(kube::RestClient& client, const std::string& ns, const std::string& claim) {
  const std::string what = "PersistentVolumeClaim " + ns + "/" + claim;
  auto r = client.request("GET", "/api/v1/namespaces/" + ns + "/persistentvolumeclaims/" + claim);
  if (!r.ok()) return r.status().Wrap(what);
  if (r->status == 404) return Status::Error(what + " not found", ENOENT);
  if (!r->ok()) return Status::Error(what + ": HTTP " + std::to_string(r->status) + ": " + kube::status_message(*r), EIO);
  json pvc = json::parse(r->body, nullptr, false);
  const std::string phase = pvc.is_object() ? pvc["status"].value("phase", "") : "";
  const std::string pv_name = pvc.is_object() ? pvc["spec"].value("volumeName", "") : "";
  if (phase != "Bound" || pv_name.empty()) {
    return Status::Error(what + " is not bound yet (phase " + (phase.empty() ? "?" : phase) + ")", EAGAIN);
  }
  const std::string pv_what = "PersistentVolume " + pv_name;
  auto v = client.request("GET", "/api/v1/persistentvolumes/" + pv_name);
  if (!v.ok()) return v.status().Wrap(pv_what);
  if (!v->ok()) return Status::Error(pv_what + ": HTTP " + std::to_string(v->status) + ": " + kube::status_message(*v), EIO);
  json pv = json::parse(v->body, nullptr, false);
  const json spec = pv.is_object() ? pv.value("spec", json::object()) : json::object();
  ClaimedVolume out;
  out.pv_name = pv_name;
  if (spec.contains("hostPath") && spec["hostPath"].is_object()) {
    out.kind = "hostPath";
    out.path = spec["hostPath"].value("path", "");
    out.host_path_type = spec["hostPath"].value("type", "");
  } else if (spec.contains("local") && spec["local"].is_object()) {
    out.kind = "local";
    out.path = spec["local"].value("path", "");
  } else {
    std::string kind = "an unknown source";
    for (const auto& [k, val] : spec.items()) {
      if (val.is_object() && k != "claimRef" && k != "capacity" && k != "nodeAffinity") kind = k;
    }
    return Status::Error(pv_what + ": " + kind + " volumes are not supported by knode (hostPath and local are)", ENOTSUP);
  }
  if (out.path.empty()) return Status::Error(pv_what + ": no path", EINVAL);
  return out;
}

}  // namespace knode::kubelet
