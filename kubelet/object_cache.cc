#include "object_cache.h"

namespace knode::kubelet {
namespace {

class Snapshot final : public EnvLookup {
 public:
  Snapshot(std::map<api::ObjectKey, api::ObjectPtr> objects, api::ResourceList allocatable,
           std::vector<std::string> host_ips, std::shared_ptr<const ObjectCache::TokenSource> tokens,
           std::shared_ptr<const ObjectCache::ClaimSource> claims)
      : objects_(std::move(objects)), allocatable_(std::move(allocatable)), host_ips_(std::move(host_ips)),
        tokens_(std::move(tokens)), claims_(std::move(claims)) {}

  Result<ClaimedVolume> claimed_volume(const std::string& ns, const std::string& claim) const override {
    if (claims_ && *claims_) return (*claims_)(ns, claim);
    return EnvLookup::claimed_volume(ns, claim);
  }

  Result<std::string> service_account_token(const api::Pod& pod,
                                            const api::ServiceAccountTokenProjection& p) const override {
    if (tokens_ && *tokens_) return (*tokens_)(pod, p);
    return EnvLookup::service_account_token(pod, p);
  }

  const api::ConfigMap* config_map(const std::string& ns, const std::string& name) const override {
    return get<api::ConfigMap>(api::Kind::kConfigMap, ns, name);
  }
  const api::Secret* secret(const std::string& ns, const std::string& name) const override {
    return get<api::Secret>(api::Kind::kSecret, ns, name);
  }
  std::vector<const api::Service*> services(const std::string& ns) const override {
    std::vector<const api::Service*> out;
    for (const auto& [key, obj] : objects_) {
      if (key.kind != api::Kind::kService) continue;
      const auto& svc = std::get<api::Service>(*obj);
      if (svc.metadata.namespace_ == ns) out.push_back(&svc);
    }
    return out;
  }
  api::ResourceList node_allocatable() const override { return allocatable_; }
  std::vector<std::string> host_ips() const override { return host_ips_; }

 private:
  template <typename T>
  const T* get(api::Kind kind, const std::string& ns, const std::string& name) const {
    auto it = objects_.find(api::ObjectKey{kind, (ns.empty() ? "default" : ns) + "/" + name});
    return it == objects_.end() ? nullptr : std::get_if<T>(it->second.get());
  }

  std::map<api::ObjectKey, api::ObjectPtr> objects_;
  api::ResourceList allocatable_;
  std::vector<std::string> host_ips_;
  std::shared_ptr<const ObjectCache::TokenSource> tokens_;
  std::shared_ptr<const ObjectCache::ClaimSource> claims_;
};

}  // namespace

void ObjectCache::follow(ObjectStore& store) {
  for (auto kind : {api::Kind::kConfigMap, api::Kind::kSecret, api::Kind::kService}) {
    store.subscribe(kind, [this](const Event& e) { on_event(e); });
  }
}

void ObjectCache::set_node(api::ResourceList allocatable, std::vector<std::string> host_ips) {
  std::lock_guard lock(mu_);
  allocatable_ = std::move(allocatable);
  host_ips_ = std::move(host_ips);
}

void ObjectCache::set_token_source(TokenSource fn) {
  std::lock_guard lock(mu_);
  tokens_ = std::make_shared<const TokenSource>(std::move(fn));
}

void ObjectCache::set_claim_source(ClaimSource fn) {
  std::lock_guard lock(mu_);
  claims_ = std::make_shared<const ClaimSource>(std::move(fn));
}

void ObjectCache::on_event(const Event& e) {
  std::lock_guard lock(mu_);
  auto key = api::key_of(*e.object);
  if (e.type == EventType::kDeleted) {
    objects_.erase(key);
  } else {
    objects_[key] = e.object;
  }
}

std::shared_ptr<const EnvLookup> ObjectCache::snapshot() const {
  std::lock_guard lock(mu_);
  return std::make_shared<Snapshot>(objects_, allocatable_, host_ips_, tokens_, claims_);
}

}  // namespace knode::kubelet
