#include "cluster/claims.h"

#include <nlohmann/json.hpp>

#include "knode/json_get.h"

namespace knode::kubelet {

using nlohmann::json;

Result<ClaimedVolume> resolve_claim(kube::RestClient& client, const std::string& ns, const std::string& claim) {
  const std::string what = "PersistentVolumeClaim " + ns + "/" + claim;
  auto r = client.request("GET", "/api/v1/namespaces/" + ns + "/persistentvolumeclaims/" + claim);
  if (!r.ok()) return r.status().Wrap(what);
  if (r->status == 404) return Status::Error(what + " not found", ENOENT);
  if (!r->ok()) return Status::Error(what + ": HTTP " + std::to_string(r->status) + ": " + kube::status_message(*r), EIO);
  json pvc = json::parse(r->body, nullptr, false);
  // Read without exceptions: a malformed answer reads as "not bound".
  const std::string phase = jget::str(jget::member(pvc, "status"), "phase");
  const std::string pv_name = jget::str(jget::member(pvc, "spec"), "volumeName");
  if (phase != "Bound" || pv_name.empty()) {
    return Status::Error(what + " is not bound yet (phase " + (phase.empty() ? "?" : phase) + ")", EAGAIN);
  }
  const std::string pv_what = "PersistentVolume " + pv_name;
  auto v = client.request("GET", "/api/v1/persistentvolumes/" + pv_name);
  if (!v.ok()) return v.status().Wrap(pv_what);
  if (!v->ok()) return Status::Error(pv_what + ": HTTP " + std::to_string(v->status) + ": " + kube::status_message(*v), EIO);
  json pv = json::parse(v->body, nullptr, false);
  const json spec = jget::object(pv, "spec");
  ClaimedVolume out;
  out.pv_name = pv_name;
  if (const json& host = jget::member(spec, "hostPath"); host.is_object()) {
    out.kind = "hostPath";
    out.path = jget::str(host, "path");
    out.host_path_type = jget::str(host, "type");
  } else if (const json& local = jget::member(spec, "local"); local.is_object()) {
    out.kind = "local";
    out.path = jget::str(local, "path");
  } else if (const json& nfs = jget::member(spec, "nfs"); nfs.is_object()) {
    out.kind = "nfs";
    out.server = jget::str(nfs, "server");
    out.path = jget::str(nfs, "path");
    out.read_only = jget::boolean(nfs, "readOnly");
    if (out.server.empty()) return Status::Error(pv_what + ": nfs.server is empty", EINVAL);
  } else {
    std::string kind = "an unknown source";
    for (const auto& [k, val] : spec.items()) {
      if (val.is_object() && k != "claimRef" && k != "capacity" && k != "nodeAffinity") kind = k;
    }
    return Status::Error(pv_what + ": " + kind + " volumes are not supported by knode (hostPath, local and nfs are)",
                         ENOTSUP);
  }
  if (const json& opts = jget::member(spec, "mountOptions"); opts.is_array()) {
    for (const auto& o : opts) {
      if (o.is_string()) out.mount_options.push_back(o.get<std::string>());
    }
  }
  if (out.path.empty()) return Status::Error(pv_what + ": no path", EINVAL);
  return out;
}

}  // namespace knode::kubelet
