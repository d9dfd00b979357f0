#include "object_cache.h"

namespace knode::kubelet {
namespace {

class Snapshot final : public EnvLookup {
 public:
  Snapshot(std::map<api::ObjectKey, api::ObjectPtr> objects, api::ResourceList allocatable,
           std::vector<std::string> host_ips, std::shared_ptr<const ObjectCache::ClusterReads> reads)
      : objects_(std::move(objects)), allocatable_(std::move(allocatable)), host_ips_(std::move(host_ips)),
        reads_(std::move(reads)) {}

  Result<ClaimedVolume> claimed_volume(const std::string& ns, const std::string& claim) const override {
    if (reads_ && reads_->claims) return reads_->claims(ns, claim);
    return EnvLookup::claimed_volume(ns, claim);
  }

  Result<std::string> service_account_token(const api::Pod& pod,
                                            const api::ServiceAccountTokenProjection& p) const override {
    if (reads_ && reads_->tokens) return reads_->tokens(pod, p);
    return EnvLookup::service_account_token(pod, p);
  }

  Result<PodCredential> pod_certificate(const api::Pod& pod, const std::string& volume, size_t index,
                                        const api::PodCertificateProjection& p) const override {
    if (reads_ && reads_->pod_certificates) return reads_->pod_certificates(pod, volume, index, p);
    return EnvLookup::pod_certificate(pod, volume, index, p);
  }

  Result<std::string> cluster_trust_bundle(const api::ClusterTrustBundleProjection& p) const override {
    if (reads_ && reads_->trust_bundles) return reads_->trust_bundles(p);
    return EnvLookup::cluster_trust_bundle(p);
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
      const auto& svc = api::get<api::Service>(*obj);
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
    return it == objects_.end() ? nullptr : api::get_if<T>(it->second.get());
  }

  std::map<api::ObjectKey, api::ObjectPtr> objects_;
  api::ResourceList allocatable_;
  std::vector<std::string> host_ips_;
  std::shared_ptr<const ObjectCache::ClusterReads> reads_;
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

void ObjectCache::set_cluster_reads(ClusterReads reads) {
  std::lock_guard lock(mu_);
  reads_ = std::make_shared<const ClusterReads>(std::move(reads));
}

void ObjectCache::pod_gone(const std::string& pod_uid) const {
  std::shared_ptr<const ClusterReads> reads;
  {
    std::lock_guard lock(mu_);
    reads = reads_;
  }
  if (reads && reads->pod_gone) reads->pod_gone(pod_uid);
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
  return std::make_shared<Snapshot>(objects_, allocatable_, host_ips_, reads_);
}

}  // namespace knode::kubelet
