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
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <string>
#include <vector>

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
// The same with subjectAltNames (a serving certificate's): DNS names and IP addresses.
Result<KeyAndCsr> make_node_csr(const std::string& node_name, const std::vector<std::string>& dns_names,
                                const std::vector<std::string>& ips);

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

// The kubelet API's serving certificate from the cluster's CA, as upstream's
// serverTLSBootstrap (--rotate-server-certificates): a CSR for CN=system:node:<name>,
// O=system:nodes with the node's names and IPs as subjectAltNames, signer
// kubernetes.io/kubelet-serving, usages digital signature and server auth. Nothing in a
// cluster approves those by default: an administrator does (kubectl certificate approve),
// or an approver they run. Kept with its key in <cert-dir>/kubelet-server-current.pem,
// handed to on_cert (one PEM text: certificate, then key) when found valid at start or
// issued, and renewed the same way at a random point between 70% and 90% of its life; a
// CSR not signed within `timeout` is asked again.
std::string serving_pem_path(const std::string& cert_dir);

class ServingCertManager {
 public:
  struct Options {
    std::string node_name;
    std::vector<std::string> dns_names;
    std::vector<std::string> ips;
    std::string cert_dir;
    double fraction = 0;  // renew at this fraction of the life; 0: random in [0.7, 0.9]
    std::chrono::seconds timeout{std::chrono::minutes(15)};
  };
  using OnCertificate = std::function<void(const std::string& pem)>;
  ServingCertManager(RestClient& client, Options o, OnCertificate on_cert);
  ~ServingCertManager();
  // The certificate and key kept in cert_dir, when valid now.
  static std::optional<std::string> current(const std::string& cert_dir);
  void start();
  void stop();
  uint64_t issued() const { return issued_; }

 private:
  void run();
  RestClient& client_;
  const Options o_;
  const OnCertificate on_cert_;
  Worker worker_;
  std::atomic<uint64_t> issued_{0};
};

}  // namespace knode::kube
