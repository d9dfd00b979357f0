// Where the API server is and who we are to it: a kubeconfig file (the current context's
// cluster and user) or the in-cluster service account. Credentials are loaded into memory
// here, so the HTTPS client never reads files; a tokenFile is named, not read, because
// it rotates (the client rereads it).
#pragma once

#include <string>

#include "knode/status.h"

namespace knode::kube {

struct KubeConfig {
  std::string server;           // "https://192.168.77.2:6443"
  std::string tls_server_name;  // checked against the serving certificate instead of the host
  bool insecure_skip_tls_verify = false;
  std::string ca_pem;           // empty: the system's trust store
  std::string client_cert_pem;  // with client_key_pem: mutual TLS
  std::string client_key_pem;
  std::string token;            // a bearer token
  std::string token_file;       // or a file holding one, read before each connection
  std::string namespace_;       // the context's namespace, "default" when unset
  std::string source;           // where this came from, for messages

  // host and port parsed from server (port 443 when absent).
  std::string host() const;
  std::string port() const;
};

// Reads a kubeconfig: current-context (or `context` when not empty), its cluster and
// user; relative file paths resolve against the kubeconfig's directory. Errors name the
// file and the missing or wrong field.
Result<KubeConfig> load_kubeconfig(const std::string& path, const std::string& context = "");
Result<KubeConfig> parse_kubeconfig(const std::string& text, const std::string& path,
                                    const std::string& context = "");

// The pod's service account: KUBERNETES_SERVICE_HOST/PORT and
// /var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt,namespace}; `root`
// replaces that directory (tests).
Result<KubeConfig> in_cluster_config(
    const std::string& root = "/var/run/secrets/kubernetes.io/serviceaccount");

}  // namespace knode::kube
