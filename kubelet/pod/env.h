// A container's environment, built as the upstream kubelet builds it
// (makeEnvironmentVariables): Service link variables, then envFrom, then env in order,
// each `value` expanded against what is defined so far, each valueFrom resolved. Also the
// $(VAR) expansion of command and args.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "knode/api/cluster.h"
#include "knode/api/service.h"
#include "knode/runtime.h"
#include "knode/status.h"

namespace knode::kubelet {

// What a container's environment reads from outside its pod. The kubelet backs it with
// its object store. Pointers stay valid until the call that received them returns;
// nullptr means "not found".
// The storage a PersistentVolumeClaim is bound to, as the node mounts it.
struct ClaimedVolume {
  std::string pv_name;
  std::string kind;  // "hostPath" or "local" (a directory of this node), or "nfs"
  std::string path;
  std::string host_path_type;  // hostPath's type ("", "DirectoryOrCreate", ...)
  std::string server;          // nfs: the server (path is its export)
  bool read_only = false;      // nfs: the PV's readOnly
  std::vector<std::string> mount_options;  // the PV's spec.mountOptions
};

struct PodCredential {
  std::string key_pem, chain_pem;
};

class EnvLookup {
 public:
  virtual ~EnvLookup() = default;
  virtual const api::ConfigMap* config_map(const std::string& ns,
                                           const std::string& name) const = 0;
  virtual const api::Secret* secret(const std::string& ns, const std::string& name) const = 0;
  virtual std::vector<const api::Service*> services(const std::string& ns) const = 0;
  // What resourceFieldRef falls back to for a resource the container does not limit.
  virtual api::ResourceList node_allocatable() const = 0;
  // The node's IPs, primary first; empty when unknown.
  virtual std::vector<std::string> host_ips() const = 0;
  // A token for the pod's service account (a projected serviceAccountToken): from the
  // API server's TokenRequest, so only in a cluster.
  virtual Result<std::string> service_account_token(const api::Pod& pod,
                                                    const api::ServiceAccountTokenProjection& p) const {
    (void)pod;
    (void)p;
    return Status::Error("not supported in standalone mode: there is no API server to issue the token", ENOTSUP);
  }
  // The trust anchors a clusterTrustBundle projection names, as the file's content (PEM
  // certificates; empty when nothing matches and it is optional).
  virtual Result<std::string> cluster_trust_bundle(const api::ClusterTrustBundleProjection& p) const {
    (void)p;
    return Status::Error("not supported in standalone mode: there are no ClusterTrustBundles", ENOTSUP);
  }
  // The key and certificate chain (PEM) of a podCertificate projection: source `index` of
  // the projected volume `volume` of `pod`. EAGAIN while its PodCertificateRequest waits
  // for the signer.
  virtual Result<PodCredential> pod_certificate(const api::Pod& pod, const std::string& volume, size_t index,
                                                const api::PodCertificateProjection& p) const {
    (void)pod, (void)volume, (void)index, (void)p;
    return Status::Error("not supported in standalone mode: there is no API server to sign pod certificates", ENOTSUP);
  }
  // The volume a claim in namespace `ns` is bound to (a cluster's PVC and PV).
  virtual Result<ClaimedVolume> claimed_volume(const std::string& ns, const std::string& claim) const {
    (void)ns;
    (void)claim;
    return Status::Error("not supported in standalone mode: there are no PersistentVolumes to bind claims to", ENOTSUP);
  }
};

struct Environment {
  std::vector<runtime::KeyValue> vars;
  // One line per envFrom source whose keys were skipped (upstream's
  // InvalidEnvironmentVariableNames event text), for the caller to report.
  std::vector<std::string> warnings;
};

// The final environment of `container` in `pod`. `pod_ips` are the sandbox's addresses in
// any order. Errors name the pod, the container and the variable.
Result<Environment> make_environment(const api::Pod& pod, const api::Container& container,
                                     const std::vector<std::string>& pod_ips,
                                     const EnvLookup& lookup);

// The Service link variables a pod in `ns` sees (FOO_SERVICE_HOST, FOO_PORT_80_TCP, ...),
// in a stable order: by service name, then as upstream emits them per service.
std::vector<runtime::KeyValue> service_link_variables(const std::string& ns,
                                                      bool enable_service_links,
                                                      const EnvLookup& lookup);

// Upstream's $(VAR) syntax: "$$" is a literal "$", "$(NAME)" is replaced by lookup(NAME)
// and stays as written when lookup has no value; any other "$" is kept.
using EnvMapping = std::function<std::optional<std::string>(std::string_view)>;
std::string expand(std::string_view input, const EnvMapping& lookup);

// command and args with $(VAR) expanded against the container's final environment.
struct CommandLine {
  std::vector<std::string> command, args;
  bool operator==(const CommandLine&) const = default;
};
CommandLine expand_command(const api::Container& container,
                           const std::vector<runtime::KeyValue>& env);

// The downward API's values, which downwardAPI volumes share with environment variables.
// A fieldRef a volume may use: metadata.name, .namespace, .uid, .labels, .annotations and
// labels['k'] / annotations['k'] (maps as sorted `k="v"` lines); any other path is
// "unsupported fieldPath: <path>", as upstream's fieldpath.ExtractFieldPathAsString says.
Result<std::string> pod_metadata_field(const api::Pod& pod, const std::string& field_path);
// resourceFieldRef of the container it names (containerName), a limit it does not set being
// the node's allocatable.
Result<std::string> container_resource_field(const api::Pod& pod,
                                             const api::ResourceFieldSelector& selector,
                                             const api::ResourceList& node_allocatable);

// Whether an envFrom key can be a variable name. Upstream relaxed its rule (1.34 GA) from
// C identifiers to "printable ASCII other than '='", so "app.name" and "1st" pass.
bool is_env_var_name(std::string_view name);

// The pod's IPs as the kubelet reports them: the first of the node's primary family, then
// the first of the other family.
std::vector<std::string> sort_pod_ips(const std::vector<std::string>& pod_ips,
                                      const std::vector<std::string>& host_ips);

}  // namespace knode::kubelet
