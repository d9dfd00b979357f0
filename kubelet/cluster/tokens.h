// Service account tokens for projected volumes, from the API server's TokenRequest, bound
// to the pod (so they die with it), cached per pod, audience and lifetime and asked for
// again once 80% of a token's life passed, as the upstream kubelet's token manager.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "knode/api/pod.h"
#include "knode/kube/client.h"

namespace knode::kubelet {

class TokenManager {
 public:
  explicit TokenManager(kube::RestClient& client) : client_(client) {}
  // Thread-safe; blocks on the API server when the cached token is missing or old.
  Result<std::string> token(const api::Pod& pod, const api::ServiceAccountTokenProjection& p);
  // Drops what was cached for pods not in `live_uids` (call now and then).
  void forget_except(const std::set<std::string>& live_uids);

 private:
  struct Cached {
    std::string token, uid;
    std::chrono::steady_clock::time_point refresh_at;
  };
  kube::RestClient& client_;
  std::mutex mu_;
  std::map<std::string, Cached> cache_;
};

}  // namespace knode::kubelet
