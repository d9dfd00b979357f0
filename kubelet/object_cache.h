// The objects a pod's containers read (ConfigMaps, Secrets, Services), kept from the
// object store for the pod workers, which run off the event loop: the loop writes, a
// worker takes a consistent snapshot for one sync.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "knode/store.h"
#include "pod/env.h"

namespace knode::kubelet {

class ObjectCache {
 public:
  // Follows ConfigMaps, Secrets and Services in `store` (on the loop).
  void follow(ObjectStore& store);
  void set_node(api::ResourceList allocatable, std::vector<std::string> host_ips);
  // What only a cluster's API server answers, asked when a volume is set up (from the
  // workers' threads): service account tokens (TokenRequest), claims (PVCs and PVs), trust
  // bundles (ClusterTrustBundles). Unset ones answer as standalone. Thread-safe.
  struct ClusterReads {
    std::function<Result<std::string>(const api::Pod&, const api::ServiceAccountTokenProjection&)> tokens;
    std::function<Result<ClaimedVolume>(const std::string& ns, const std::string& claim)> claims;
    std::function<Result<std::string>(const api::ClusterTrustBundleProjection&)> trust_bundles;
    std::function<Result<PodCredential>(const api::Pod&, const std::string& volume, size_t index,
                                        const api::PodCertificateProjection&)>
        pod_certificates;
    // A pod's volumes are gone: what is kept for them may go too.
    std::function<void(const std::string& pod_uid)> pod_gone;
  };
  void set_cluster_reads(ClusterReads reads);
  void pod_gone(const std::string& pod_uid) const;

  // A snapshot: later changes do not reach it.
  std::shared_ptr<const EnvLookup> snapshot() const;

 private:
  void on_event(const Event& e);

  mutable std::mutex mu_;
  std::map<api::ObjectKey, api::ObjectPtr> objects_;
  api::ResourceList allocatable_;
  std::vector<std::string> host_ips_;
  std::shared_ptr<const ClusterReads> reads_;
};

}  // namespace knode::kubelet
