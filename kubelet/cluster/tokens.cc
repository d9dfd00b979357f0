#include "cluster/tokens.h"

#include <nlohmann/json.hpp>
#include "knode/json_get.h"

namespace knode::kubelet {

using nlohmann::json;

Result<std::string> TokenManager::token(const api::Pod& pod, const api::ServiceAccountTokenProjection& p) {
  const int64_t ttl = p.expiration_seconds.value_or(3600);
  const std::string key = pod.metadata.uid + "|" + p.audience + "|" + std::to_string(ttl);
  {
    std::lock_guard lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end() && std::chrono::steady_clock::now() < it->second.refresh_at) return it->second.token;
  }
  const std::string sa = pod.spec.service_account_name.empty() ? "default" : pod.spec.service_account_name;
  const std::string ns = pod.metadata.namespace_.empty() ? "default" : pod.metadata.namespace_;
  json spec = {{"expirationSeconds", ttl},
               {"boundObjectRef", {{"apiVersion", "v1"}, {"kind", "Pod"}, {"name", pod.metadata.name}, {"uid", pod.metadata.uid}}}};
  if (!p.audience.empty()) spec["audiences"] = json::array({p.audience});
  json req = {{"apiVersion", "authentication.k8s.io/v1"}, {"kind", "TokenRequest"}, {"spec", spec}};
  const std::string what = "request a token for service account " + ns + "/" + sa;
  auto r = client_.request("POST", "/api/v1/namespaces/" + ns + "/serviceaccounts/" + sa + "/token", jget::dump(req));
  if (!r.ok()) return r.status().Wrap(what);
  if (!r->ok()) {
    return Status::Error(what + ": HTTP " + std::to_string(r->status) + ": " + kube::status_message(*r), EAGAIN);
  }
  json j = json::parse(r->body, nullptr, false);
  if (!j.is_object() || !j.contains("status") || !j["status"].contains("token")) {
    return Status::Error(what + ": no token in the answer", EIO);
  }
  std::string token = j["status"]["token"].get<std::string>();
  std::lock_guard lock(mu_);
  cache_[key] = Cached{token, pod.metadata.uid,
                       std::chrono::steady_clock::now() + std::chrono::seconds(ttl * 8 / 10)};
  return token;
}

void TokenManager::forget_except(const std::set<std::string>& live_uids) {
  std::lock_guard lock(mu_);
  std::erase_if(cache_, [&](const auto& kv) { return !live_uids.count(kv.second.uid); });
}

}  // namespace knode::kubelet
