#include "cluster/trust_bundles.h"

#include <algorithm>
#include <set>

#include "cluster/pem.h"
#include "knode/json_get.h"

namespace knode::kubelet {

using nlohmann::json;

namespace {

constexpr char kPath[] = "/apis/certificates.k8s.io/v1/clustertrustbundles";

std::string http_error(const std::string& what, const kube::Response& r) {
  return what + ": HTTP " + std::to_string(r.status) + ": " + kube::status_message(r);
}

}  // namespace

Result<std::string> normalize_trust_anchors(const std::vector<std::pair<std::string, std::string>>& named_bundles) {
  std::set<std::string> anchors;
  for (const auto& [name, bundle] : named_bundles) {
    auto blocks = pem_blocks(bundle);
    if (!blocks.ok()) return blocks.status().Wrap("ClusterTrustBundle " + name + " spec.trustBundle");
    anchors.insert(blocks->begin(), blocks->end());
  }
  std::string out;
  for (const auto& der : anchors) out += pem_certificate(der);
  return out;
}

Result<std::string> trust_anchors_of_signer(const json& list, const api::ClusterTrustBundleProjection& p) {
  std::vector<std::pair<std::string, std::string>> picked;
  // The list is read without exceptions: a malformed item is skipped, a malformed field reads as empty.
  const json items = jget::array(list, "items");
  if (p.label_selector) {  // a null selector picks nothing
    for (const auto& item : items) {
      if (!item.is_object()) continue;
      const json& meta = jget::member(item, "metadata");
      const json& spec = jget::member(item, "spec");
      if (jget::str(spec, "signerName") != *p.signer_name) continue;
      api::StringMap labels;
      const json label_map = jget::object(meta, "labels");
      for (const auto& [k, v] : label_map.items()) {
        if (v.is_string()) labels[k] = v.get<std::string>();
      }
      auto match = api::selector_matches(*p.label_selector, labels);
      if (!match.ok()) return match.status().Wrap("labelSelector");
      if (*match) picked.emplace_back(jget::str(meta, "name"), jget::str(spec, "trustBundle"));
    }
  }
  if (picked.empty()) {
    if (p.optional.value_or(false)) return std::string();
    return Status::Error("combination of signerName and labelSelector matched zero ClusterTrustBundles", ENOENT);
  }
  return normalize_trust_anchors(picked);
}

Result<std::string> trust_anchors(kube::RestClient& client, const api::ClusterTrustBundleProjection& p) {
  const bool by_name = p.name && !p.name->empty();
  const bool by_signer = p.signer_name && !p.signer_name->empty();
  if (by_name == by_signer) {
    return Status::Error("exactly one of name and signerName must be set", EINVAL);
  }
  if (by_name) {
    const std::string what = "ClusterTrustBundle " + *p.name;
    auto r = client.get(std::string(kPath) + "/" + *p.name);
    if (!r.ok()) return r.status().Wrap(what);
    if (r->status == 404) {
      if (p.optional.value_or(false)) return std::string();
      return Status::Error(what + " not found", ENOENT);
    }
    if (!r->ok()) return Status::Error(http_error(what, *r), EIO);
    json ctb = json::parse(r->body, nullptr, false);
    return normalize_trust_anchors({{*p.name, jget::str(jget::member(ctb, "spec"), "trustBundle")}});
  }
  if (!p.label_selector) return trust_anchors_of_signer(json::object(), p);  // nothing to ask
  auto r = client.get(std::string(kPath) + "?fieldSelector=spec.signerName%3D" + kube::query_escape(*p.signer_name));
  if (!r.ok()) return r.status().Wrap("ClusterTrustBundles of " + *p.signer_name);
  if (!r->ok()) return Status::Error(http_error("ClusterTrustBundles of " + *p.signer_name, *r), EIO);
  return trust_anchors_of_signer(json::parse(r->body, nullptr, false), p);
}

}  // namespace knode::kubelet
