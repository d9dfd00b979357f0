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
  // Where service account tokens come from (a cluster's TokenRequest); thread-safe.
  using TokenSource = std::function<Result<std::string>(const api::Pod&, const api::ServiceAccountTokenProjection&)>;
  void set_token_source(TokenSource fn);
  // Where claims are resolved (a cluster's PVCs and PVs); thread-safe.
  using ClaimSource = std::function<Result<ClaimedVolume>(const std::string& ns, const std::string& claim)>;
  void set_claim_source(ClaimSource fn);

  // A snapshot: later changes do not reach it.
  std::shared_ptr<const EnvLookup> snapshot() const;

 private:
  void on_event(const Event& e);

  mutable std::mutex mu_;
  std::map<api::ObjectKey, api::ObjectPtr> objects_;
  api::ResourceList allocatable_;
  std::vector<std::string> host_ips_;
  std::shared_ptr<const TokenSource> tokens_;
  std::shared_ptr<const ClaimSource> claims_;
};

}  // namespace knode::kubelet
