// The kubelet API's serving certificate, as upstream's kubelet finds it: --tls-cert-file
// and --tls-private-key-file when given; otherwise kubelet.crt and kubelet.key in the
// certificate directory (<root-dir>/pki), made once as a self-signed certificate for the
// node's name and IPs (ECDSA P-256, one year) and reused afterwards until it expires.
// API servers do not check a kubelet's certificate unless told to
// (--kubelet-certificate-authority); serving certificates from the cluster's CA through
// CSRs are a later step.
#pragma once

#include <string>
#include <vector>

#include "knode/clock.h"
#include "knode/status.h"

namespace knode::kubelet {

struct ServingCertificate {
  std::string cert_pem, key_pem;
  std::string cert_path, key_path;
  bool generated = false;  // made just now
};

Result<ServingCertificate> load_serving_certificate(
    const std::string& cert_file, const std::string& key_file, const std::string& cert_dir,
    const std::string& node_name, const std::vector<std::string>& node_ips, const Clock& clock);

// A self-signed serving certificate: CN "<node>@<unix time>", SANs DNS:<node> and
// IP:<each ip>, extended key usage serverAuth. Returns (certificate PEM, key PEM).
Result<std::pair<std::string, std::string>> make_self_signed_serving_certificate(
    const std::string& node_name, const std::vector<std::string>& ips, Clock::SystemTime now);

}  // namespace knode::kubelet
