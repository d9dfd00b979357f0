// TLS bootstrap of the node's client certificate, as the upstream kubelet's
// --bootstrap-kubeconfig: with a bootstrap token, the node asks the API server for a
// certificate (a CertificateSigningRequest for CN=system:node:<name>, O=system:nodes,
// signer kubernetes.io/kube-apiserver-client-kubelet), waits for the controller-manager
// to approve and sign it, and keeps key and certificate in <cert-dir>/
// kubelet-client-current.pem, with a kubeconfig naming that file. The same request with
// the current certificate renews it before it expires (rotation).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <string>

#include "knode/kube/client.h"
#include "knode/kube/kubeconfig.h"
#include "knode/status.h"
#include "knode/worker.h"

namespace knode::kube {

struct CertInfo {
  std::string common_name;
  std::chrono::system_clock::time_point not_before, not_after;
};
// The first certificate of a PEM text.
Result<CertInfo> parse_certificate(const std::string& pem);

struct KeyAndCsr {
  std::string key_pem;  // PKCS#8, EC P-256
  std::string csr_pem;
};
Result<KeyAndCsr> make_node_csr(const std::string& node_name);

struct BootstrapOptions {
  std::string node_name;
  std::string bootstrap_kubeconfig;  // --bootstrap-kubeconfig
  std::string kubeconfig;            // --kubeconfig: written
  std::string cert_dir;              // --cert-dir
  std::chrono::seconds timeout{std::chrono::minutes(15)};
};

// True when `kubeconfig` exists and holds a client certificate valid now.
bool has_valid_client_certificate(const std::string& kubeconfig);

// Gets a certificate with the bootstrap credentials and writes the kubeconfig. Blocks
// until it is signed, refused or the timeout passes.
Status bootstrap_client_certificate(const BootstrapOptions& o);

// Asks `client` (authenticated as the node) for a new certificate and writes it where
// the kubeconfig's certificate file is. Returns the new certificate's info.
Result<CertInfo> renew_client_certificate(RestClient& client, const std::string& node_name,
                                          const std::string& cert_dir, std::chrono::seconds timeout);

// The path of the file holding the current key and certificate.
std::string current_pem_path(const std::string& cert_dir);

// Renews the node's client certificate (<cert-dir>/kubelet-client-current.pem) once
// `fraction` of its life passed (0: a random point between 70% and 90%, as upstream),
// and hands the new one to the client: later connections use it.
class CertRotator {
 public:
  CertRotator(RestClient& client, std::string node_name, std::string cert_dir, double fraction = 0);
  ~CertRotator();
  void start();
  void stop();
  uint64_t rotations() const { return rotations_; }

 private:
  void run();
  RestClient& client_;
  const std::string node_, cert_dir_;
  const double fraction_;
  Worker worker_;
  std::atomic<uint64_t> rotations_{0};
};

}  // namespace knode::kube
