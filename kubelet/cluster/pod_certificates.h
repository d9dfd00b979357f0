// podCertificate projected volumes (certificates.k8s.io/v1 PodCertificateRequest, GA in
// 1.37), as upstream's kubelet (pkg/kubelet/podcertificate) runs them: for each source of
// each pod, the kubelet generates a private key of the asked type (RSA3072, RSA4096,
// ECDSAP256/384/521, ED25519), creates a PodCertificateRequest naming the pod, its service
// account and the node (with their UIDs), the signer, maxExpirationSeconds, the user's
// annotations and a stub PKCS#10 request signed with the key (the proof of possession),
// and waits for the signer to set Issued with the chain. The volume gets the key (PKCS#8
// "PRIVATE KEY") and the chain (CERTIFICATE blocks). From the issued beginRefreshAt on, a
// new key and request replace them when the new chain is issued; the old ones serve until
// then. A Denied or Failed request is final for that source (the pod does not start), as
// upstream's.
//
// Until the first chain is there, credential() answers EAGAIN: the pod worker retries the
// volume a moment later (it polls the request with a GET, which the Node authorizer allows
// for requests of its own pods).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "knode/api/pod.h"
#include "knode/kube/client.h"
#include "pod/env.h"

namespace knode::kubelet {

struct KeyAndStubCsr {
  std::string key_pem;  // PKCS#8
  std::string csr_der;  // a PKCS#10 request with an empty subject, signed with the key
};
// A new key of `key_type` and its stub request; EINVAL names an unknown type.
Result<KeyAndStubCsr> generate_key_and_stub_csr(const std::string& key_type);

// The API server calls the manager makes (an interface, for tests).
class PodCertificateApi {
 public:
  virtual ~PodCertificateApi() = default;
  // POST the request; the created object (its generated name).
  virtual Result<nlohmann::json> create(const std::string& ns, const nlohmann::json& request) = 0;
  virtual Result<nlohmann::json> get(const std::string& ns, const std::string& name) = 0;
  virtual Result<std::string> service_account_uid(const std::string& ns, const std::string& name) = 0;
  virtual Result<std::string> node_uid() = 0;
};

// The calls over a RestClient for node `node_name`.
std::unique_ptr<PodCertificateApi> rest_pod_certificate_api(kube::RestClient& client, std::string node_name);

class PodCertificateManager {
 public:
  using Now = std::function<std::chrono::system_clock::time_point()>;
  PodCertificateManager(PodCertificateApi& api, std::string node_name,
                        Now now = [] { return std::chrono::system_clock::now(); });

  // The source's current key and chain (see above). Thread-safe.
  Result<PodCredential> credential(const api::Pod& pod, const std::string& volume, size_t index,
                                   const api::PodCertificateProjection& p);
  // Drops what the manager holds for a pod that is gone.
  void forget(const std::string& pod_uid);
  size_t tracked() const;

 private:
  struct Issued {
    std::string key_pem, chain_pem;
    std::optional<std::chrono::system_clock::time_point> begin_refresh_at;
  };
  struct Pending {
    std::string name, key_pem;
  };
  struct Record {
    std::optional<Issued> current;
    std::optional<Pending> pending;
    std::string final_error;  // Denied or Failed
  };
  using Key = std::tuple<std::string, std::string, size_t>;  // pod UID, volume, source

  Result<Pending> request(const api::Pod& pod, const api::PodCertificateProjection& p);

  PodCertificateApi& api_;
  std::string node_name_;
  Now now_;
  mutable std::mutex mu_;  // records_; calls to the API server are made without it
  std::map<Key, Record> records_;
  std::string node_uid_;
};

// The request's body (pure, for tests).
nlohmann::json pod_certificate_request(const api::Pod& pod, const std::string& service_account_uid,
                                       const std::string& node_name, const std::string& node_uid,
                                       const api::PodCertificateProjection& p, const std::string& csr_der);

}  // namespace knode::kubelet
