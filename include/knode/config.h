// knode's configuration: upstream KubeProxyConfiguration / KubeletConfiguration shapes
// for the fields knode implements, filled from a --config file and then from flags
// (flags win), with upstream flag names.
#pragma once

#include <string>
#include <vector>

#include "knode/api/meta.h"
#include "knode/status.h"

namespace knode::config {

using api::Duration;

struct IPVSConfig {
  std::string scheduler;  // "" means rr
  Duration sync_period = Duration::Seconds(30);
  Duration min_sync_period = Duration::Seconds(1);
  Duration tcp_timeout, tcp_fin_timeout, udp_timeout;
  bool strict_arp = false;
  std::vector<std::string> exclude_cidrs;
  KNODE_FIELDS(v("scheduler", scheduler); v("syncPeriod", sync_period);
               v("minSyncPeriod", min_sync_period); v("tcpTimeout", tcp_timeout);
               v("tcpFinTimeout", tcp_fin_timeout); v("udpTimeout", udp_timeout);
               v("strictARP", strict_arp); v("excludeCIDRs", exclude_cidrs))
};

struct IPTablesConfig {
  int32_t masquerade_bit = 14;
  bool masquerade_all = false;
  bool localhost_node_ports = true;
  Duration sync_period = Duration::Seconds(30);
  Duration min_sync_period = Duration::Seconds(1);
  KNODE_FIELDS(v("masqueradeBit", masquerade_bit); v("masqueradeAll", masquerade_all);
               v("localhostNodePorts", localhost_node_ports); v("syncPeriod", sync_period);
               v("minSyncPeriod", min_sync_period))
};

struct ClientConnection {
  std::string kubeconfig;
  KNODE_FIELDS(v("kubeconfig", kubeconfig))
};

// kubeproxy.config.k8s.io/v1alpha1 KubeProxyConfiguration (implemented fields).
struct ProxyConfig {
  std::string bind_address = "0.0.0.0";
  std::string healthz_bind_address = "0.0.0.0:10256";
  std::string metrics_bind_address = "127.0.0.1:10249";
  std::string cluster_cidr;
  std::string hostname_override;
  std::string mode;  // "" means iptables, as upstream
  IPVSConfig ipvs;
  IPTablesConfig iptables;
  std::vector<std::string> node_port_addresses;
  ClientConnection client_connection;
  KNODE_FIELDS(v("bindAddress", bind_address); v("healthzBindAddress", healthz_bind_address);
               v("metricsBindAddress", metrics_bind_address); v("clusterCIDR", cluster_cidr);
               v("hostnameOverride", hostname_override); v("mode", mode); v("ipvs", ipvs);
               v("iptables", iptables); v("nodePortAddresses", node_port_addresses);
               v("clientConnection", client_connection))
};

// KubeletConfiguration's authentication and authorization of the kubelet API. The
// defaults are the config file's, for knode's flags too (upstream's flags default to
// anonymous access and AlwaysAllow instead): no anonymous requests, bearer tokens checked
// by TokenReview, every request authorized by SubjectAccessReview.
struct KubeletX509Authentication {
  std::string client_ca_file;
  KNODE_FIELDS(v("clientCAFile", client_ca_file))
};
struct KubeletWebhookAuthentication {
  bool enabled = true;                          // --authentication-token-webhook
  Duration cache_ttl = Duration::Seconds(120);  // --authentication-token-webhook-cache-ttl
  KNODE_FIELDS(v("enabled", enabled); v("cacheTTL", cache_ttl))
};
struct KubeletAnonymousAuthentication {
  bool enabled = false;  // --anonymous-auth: a request with no credentials is system:anonymous
  KNODE_FIELDS(v("enabled", enabled))
};
struct KubeletAuthentication {
  KubeletX509Authentication x509;
  KubeletWebhookAuthentication webhook;
  KubeletAnonymousAuthentication anonymous;
  KNODE_FIELDS(v("x509", x509); v("webhook", webhook); v("anonymous", anonymous))
};
struct KubeletWebhookAuthorization {
  Duration cache_authorized_ttl = Duration::Seconds(300);   // --authorization-webhook-cache-authorized-ttl
  Duration cache_unauthorized_ttl = Duration::Seconds(30);  // --authorization-webhook-cache-unauthorized-ttl
  KNODE_FIELDS(v("cacheAuthorizedTTL", cache_authorized_ttl); v("cacheUnauthorizedTTL", cache_unauthorized_ttl))
};
struct KubeletAuthorization {
  std::string mode = "Webhook";  // --authorization-mode: Webhook or AlwaysAllow
  KubeletWebhookAuthorization webhook;
  KNODE_FIELDS(v("mode", mode); v("webhook", webhook))
};

// kubelet.config.k8s.io/v1beta1 KubeletConfiguration (implemented fields).
struct KubeletConfig {
  std::string static_pod_path;
  std::string healthz_bind_address = "127.0.0.1";
  int32_t healthz_port = 10248;
  Duration file_check_frequency = Duration::Seconds(20);
  std::string pod_cidr;
  std::string cni_conf_dir = "/etc/cni/net.d";  // flag only: where the pod network config goes
  std::string cni_data_dir;  // flag only: the conflist's IPAM dataDir; empty: host-local's default
  // The container runtime.
  std::string container_runtime_endpoint = "unix:///run/containerd/containerd.sock";
  // Flags only: "remote" (a CRI runtime at the endpoint above) or "docker" (dockerd's
  // Engine API, kubelet/docker/), with the pause image and CNI plugins that backend uses.
  std::string container_runtime = "remote";
  std::string docker_endpoint = "unix:///var/run/docker.sock";
  std::string pod_infra_container_image = "registry.k8s.io/pause:3.10";
  std::string cni_bin_dir = "/opt/cni/bin";
  Duration runtime_request_timeout = Duration::Seconds(120);
  std::string cgroup_driver = "cgroupfs";
  std::string cgroup_root = "/";
  // Pods.
  std::string root_dir = "/var/lib/kubelet";        // flag only, as upstream (--root-dir)
  // knode's flag: container logs go to <log_root>/var/log/pods, links to .../containers.
  std::string log_root = "/";
  std::vector<std::string> cluster_dns;
  std::string cluster_domain = "cluster.local";
  std::string resolv_conf = "/etc/resolv.conf";
  // The read-only port (GET /pods, /healthz): 0 disables. It answers anyone who reaches it
  // with no authentication, so it listens on loopback unless --read-only-address says
  // otherwise (upstream listens on --address; its config-file default is 0, off).
  int32_t read_only_port = 10255;
  std::string read_only_address = "127.0.0.1";  // flag only
  // Where the kubelet API (--port, authenticated) listens.
  std::string address = "0.0.0.0";
  // The kubelet API over TLS (10250): on in cluster mode; standalone, only with a
  // --tls-cert-file. 0 disables.
  int32_t port = 10250;
  std::string tls_cert_file, tls_private_key_file;  // none: a self-signed one in <root-dir>/pki
  // In a cluster, without --tls-cert-file: a serving certificate from the cluster's CA
  // through a kubernetes.io/kubelet-serving CSR, renewed before it expires
  // (--rotate-server-certificates, serverTLSBootstrap). The self-signed one serves until
  // an administrator approves the CSR.
  bool server_tls_bootstrap = false;
  KubeletAuthentication authentication;  // --client-ca-file, --anonymous-auth, --authentication-token-webhook*
  KubeletAuthorization authorization;    // --authorization-mode, --authorization-webhook-*
  std::string node_ip;  // --node-ip; empty: the default route's interface's addresses
  // Flags only. --pod-routes=host-gw: routes to the other nodes' spec.podCIDR through
  // their InternalIP (nodes on one L2 segment); needs --cluster-cidr, which bounds them.
  std::string pod_routes = "none";
  std::string cluster_cidr;
  KNODE_FIELDS(v("staticPodPath", static_pod_path); v("healthzBindAddress", healthz_bind_address);
               v("healthzPort", healthz_port); v("fileCheckFrequency", file_check_frequency);
               v("podCIDR", pod_cidr); v("containerRuntimeEndpoint", container_runtime_endpoint);
               v("runtimeRequestTimeout", runtime_request_timeout); v("cgroupDriver", cgroup_driver);
               v("cgroupRoot", cgroup_root); v("clusterDNS", cluster_dns); v("clusterDomain", cluster_domain);
               v("resolvConf", resolv_conf); v("readOnlyPort", read_only_port); v("address", address);
               v("port", port); v("tlsCertFile", tls_cert_file); v("tlsPrivateKeyFile", tls_private_key_file);
               v("serverTLSBootstrap", server_tls_bootstrap); v("authentication", authentication);
               v("authorization", authorization))
};

enum class Component : unsigned { kAgent = 1, kKubelet = 2, kProxy = 4 };

struct AgentConfig {
  Component component = Component::kAgent;
  std::string config_file;
  std::string manifest_dir;  // --manifest-dir / --pod-manifest-path / staticPodPath
  std::string kubeconfig;
  std::string bootstrap_kubeconfig;  // --bootstrap-kubeconfig: TLS bootstrap into --kubeconfig
  std::string cert_dir = "/var/lib/kubelet/pki";  // --cert-dir
  bool rotate_certificates = true;  // --rotate-certificates (with a bootstrapped certificate)
  double rotation_fraction = 0;     // --rotate-certificates-at: 0 = between 70% and 90% of its life
  double kube_api_qps = 50;   // --kube-api-qps (kubeAPIQPS)
  int32_t kube_api_burst = 100;  // --kube-api-burst (kubeAPIBurst)
  // --kube-api-content-type (contentType): what knode asks the API server for when it
  // lists and watches; upstream's default.
  std::string kube_api_content_type = "application/vnd.kubernetes.protobuf";
  std::string hostname_override;
  int verbosity = 0;
  bool cleanup = false;  // knode proxy --cleanup
  ProxyConfig proxy;
  KubeletConfig kubelet;

  bool runs_proxy() const { return component != Component::kKubelet; }
  bool runs_kubelet() const { return component != Component::kProxy; }
};

// Outcome of parsing a command line.
struct ParseOutcome {
  enum Kind { kRun, kHelp, kError } kind = kRun;
  std::string message;  // help text, or the one-line reason for kError
};

// Parses `knode <component>` flags (argv after the subcommand). Loads --config first, then
// applies flags over it, then validates everything.
ParseOutcome parse_flags(Component component, const std::vector<std::string>& args,
                         AgentConfig* out);
std::string usage(Component component);

// Loads a config file (KubeProxyConfiguration and/or KubeletConfiguration documents).
Status load_config_file(const std::string& path, AgentConfig* out);
Status validate(const AgentConfig& c);

// "a,b,,c" -> {"a", "b", "c"}: comma-separated flag values (CIDR lists).
std::vector<std::string> split_list(const std::string& v);

// "0.0.0.0:10256" -> host, port. A bare IP takes default_port.
bool split_host_port(const std::string& s, int default_port, std::string* host, int* port);

}  // namespace knode::config
