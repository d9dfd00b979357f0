#include <algorithm>
#include <cstdlib>
#include <sstream>

#include "knode/api/codec.h"
#include "knode/config.h"
#include "knode/net.h"

namespace knode::config {
namespace {

constexpr unsigned kA = static_cast<unsigned>(Component::kAgent);
constexpr unsigned kK = static_cast<unsigned>(Component::kKubelet);
constexpr unsigned kP = static_cast<unsigned>(Component::kProxy);

using Setter = Status (*)(AgentConfig*, const std::string&);

struct Flag {
  const char* name;
  const char* alias;  // or nullptr
  unsigned components;
  const char* value_name;  // nullptr for a boolean flag
  const char* help;
  Setter set;
};

Status set_duration(Duration* d, const std::string& v) {
  auto p = Duration::Parse(v);
  if (!p || p->nanos() < 0) return Status::Error("\"" + v + "\" is not a duration (e.g. 30s, 1m, 500ms)");
  *d = *p;
  return Status::Ok();
}

Status set_bool(bool* b, const std::string& v) {
  if (v == "true" || v == "1" || v == "t" || v == "True") {
    *b = true;
  } else if (v == "false" || v == "0" || v == "f" || v == "False") {
    *b = false;
  } else {
    return Status::Error("\"" + v + "\" is not a boolean");
  }
  return Status::Ok();
}

Status set_int(int32_t* out, const std::string& v, int lo, int hi) {
  try {
    size_t pos;
    long x = std::stol(v, &pos, 10);
    if (pos != v.size()) throw std::invalid_argument(v);
    if (x < lo || x > hi) {
      return Status::Error(v + " out of range " + std::to_string(lo) + "-" + std::to_string(hi));
    }
    *out = static_cast<int32_t>(x);
  } catch (const std::exception&) {
    return Status::Error("\"" + v + "\" is not an integer");
  }
  return Status::Ok();
}

}  // namespace

std::vector<std::string> split_list(const std::string& v) {
  std::vector<std::string> out;
  std::stringstream ss(v);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

namespace {

const Flag kFlags[] = {
    {"config", nullptr, kA | kK | kP, "FILE",
     "KubeProxyConfiguration and/or KubeletConfiguration YAML; flags override it",
     [](AgentConfig* c, const std::string& v) { c->config_file = v; return Status::Ok(); }},
    {"manifest-dir", "pod-manifest-path", kA | kK | kP, "DIR",
     "directory of manifests (any supported kind, .yaml/.yml/.json) to run from (standalone mode)",
     [](AgentConfig* c, const std::string& v) { c->manifest_dir = v; return Status::Ok(); }},
    {"kubeconfig", nullptr, kA | kK | kP, "FILE", "kubeconfig of the API server to join",
     [](AgentConfig* c, const std::string& v) { c->kubeconfig = v; return Status::Ok(); }},
    {"bootstrap-kubeconfig", nullptr, kA | kK | kP, "FILE",
     "kubeconfig with a bootstrap token: get a client certificate for --kubeconfig through a CSR (TLS bootstrap)",
     [](AgentConfig* c, const std::string& v) { c->bootstrap_kubeconfig = v; return Status::Ok(); }},
    {"cert-dir", nullptr, kA | kK | kP, "DIR", "where the bootstrapped client certificate lives (default /var/lib/kubelet/pki)",
     [](AgentConfig* c, const std::string& v) { c->cert_dir = v; return Status::Ok(); }},
    {"rotate-certificates", nullptr, kA | kK | kP, "BOOL", "renew a bootstrapped client certificate before it expires (default true)",
     [](AgentConfig* c, const std::string& v) {
       if (v != "true" && v != "false") return Status::Error("true or false, not " + v);
       c->rotate_certificates = v == "true";
       return Status::Ok();
     }},
    {"rotate-certificates-at", nullptr, kA | kK | kP, "FRACTION",
     "renew at this fraction of the certificate's life, 0 < F < 1 (default: a random point between 0.7 and 0.9)",
     [](AgentConfig* c, const std::string& v) {
       char* end = nullptr;
       double f = std::strtod(v.c_str(), &end);
       if (v.empty() || *end != '\0' || f <= 0 || f >= 1) return Status::Error("a fraction between 0 and 1, not " + v);
       c->rotation_fraction = f;
       return Status::Ok();
     }},
    {"kube-api-qps", nullptr, kA | kK | kP, "QPS", "requests a second to the API server, after the burst (default 50)",
     [](AgentConfig* c, const std::string& v) {
       char* end = nullptr;
       double q = std::strtod(v.c_str(), &end);
       if (v.empty() || *end != '\0' || q < 0) return Status::Error("not a non-negative number: " + v);
       c->kube_api_qps = q;
       return Status::Ok();
     }},
    {"kube-api-burst", nullptr, kA | kK | kP, "N", "requests to the API server at once before --kube-api-qps applies (default 100)",
     [](AgentConfig* c, const std::string& v) { return set_int(&c->kube_api_burst, v, 1, 100000); }},
    {"kube-api-content-type", nullptr, kA | kK | kP, "TYPE",
     "how knode lists and watches objects of the API server: application/vnd.kubernetes.protobuf "
     "(default) or application/json",
     [](AgentConfig* c, const std::string& v) {
       if (v != "application/vnd.kubernetes.protobuf" && v != "application/json") {
         return Status::Error("application/vnd.kubernetes.protobuf or application/json, not " + v);
       }
       c->kube_api_content_type = v;
       return Status::Ok();
     }},
    {"hostname-override", nullptr, kA | kK | kP, "NAME", "node name to use instead of the hostname",
     [](AgentConfig* c, const std::string& v) { c->hostname_override = v; return Status::Ok(); }},
    {"v", nullptr, kA | kK | kP, "N", "log verbosity (0-10)",
     [](AgentConfig* c, const std::string& v) {
       int32_t n;
       auto s = set_int(&n, v, 0, 10);
       c->verbosity = n;
       return s;
     }},
    {"proxy-mode", nullptr, kA | kP, "MODE", "iptables (default), ipvs or nftables",
     [](AgentConfig* c, const std::string& v) { c->proxy.mode = v; return Status::Ok(); }},
    {"ipvs-scheduler", nullptr, kA | kP, "NAME",
     "IPVS scheduler: rr (default), wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, mh",
     [](AgentConfig* c, const std::string& v) { c->proxy.ipvs.scheduler = v; return Status::Ok(); }},
    {"cluster-cidr", nullptr, kA | kK | kP, "CIDR",
     "pod CIDR of the cluster; traffic from outside it to services is masqueraded",
     [](AgentConfig* c, const std::string& v) {
       c->proxy.cluster_cidr = v;
       c->kubelet.cluster_cidr = v;
       return Status::Ok();
     }},
    {"pod-routes", nullptr, kA | kK, "MODE",
     "none (default), or host-gw: routes to the other nodes' pod CIDRs through their InternalIP (cluster mode, "
     "nodes on one L2 segment; needs --cluster-cidr)",
     [](AgentConfig* c, const std::string& v) {
       if (v != "none" && v != "host-gw") return Status::Error("--pod-routes: none or host-gw, not " + v);
       c->kubelet.pod_routes = v;
       return Status::Ok();
     }},
    {"nodeport-addresses", nullptr, kA | kP, "CIDRS",
     "comma-separated CIDRs of node addresses that accept NodePort traffic (default: all)",
     [](AgentConfig* c, const std::string& v) { c->proxy.node_port_addresses = split_list(v); return Status::Ok(); }},
    {"healthz-bind-address", nullptr, kA | kP | kK, "IP[:PORT]",
     "proxy health endpoint (default 0.0.0.0:10256); for `knode kubelet`, the kubelet's (default 127.0.0.1)",
     [](AgentConfig* c, const std::string& v) {
       if (c->component == Component::kKubelet) {
         c->kubelet.healthz_bind_address = v;
       } else {
         c->proxy.healthz_bind_address = v;
       }
       return Status::Ok();
     }},
    {"kubelet-healthz-bind-address", nullptr, kA, "IP", "kubelet health endpoint address (default 127.0.0.1)",
     [](AgentConfig* c, const std::string& v) { c->kubelet.healthz_bind_address = v; return Status::Ok(); }},
    {"healthz-port", nullptr, kA | kK, "PORT", "kubelet health endpoint port (default 10248; 0 disables)",
     [](AgentConfig* c, const std::string& v) { return set_int(&c->kubelet.healthz_port, v, 0, 65535); }},
    {"metrics-bind-address", nullptr, kA | kP, "IP:PORT", "metrics endpoint (default 127.0.0.1:10249)",
     [](AgentConfig* c, const std::string& v) { c->proxy.metrics_bind_address = v; return Status::Ok(); }},
    {"file-check-frequency", nullptr, kA | kK | kP, "DURATION", "how often the manifest directory is rescanned (default 20s)",
     [](AgentConfig* c, const std::string& v) { return set_duration(&c->kubelet.file_check_frequency, v); }},
    {"pod-cidr", nullptr, kA | kK, "CIDR", "this node's pod CIDR (standalone mode); writes the CNI conflist for it",
     [](AgentConfig* c, const std::string& v) { c->kubelet.pod_cidr = v; return Status::Ok(); }},
    {"cni-conf-dir", nullptr, kA | kK, "DIR",
     "where the kubelet writes 10-knode.conflist for --pod-cidr (default /etc/cni/net.d)",
     [](AgentConfig* c, const std::string& v) { c->kubelet.cni_conf_dir = v; return Status::Ok(); }},
    {"cni-data-dir", nullptr, kA | kK, "DIR",
     "where knode-cni keeps the IPAM reservations of the conflist knode writes (default: host-local's, "
     "/var/lib/cni/networks); one of its own per node when several nodes share a host",
     [](AgentConfig* c, const std::string& v) { c->kubelet.cni_data_dir = v; return Status::Ok(); }},
    {"container-runtime-endpoint", nullptr, kA | kK, "ENDPOINT",
     "the CRI runtime's socket (default unix:///run/containerd/containerd.sock)",
     [](AgentConfig* c, const std::string& v) { c->kubelet.container_runtime_endpoint = v; return Status::Ok(); }},
    {"container-runtime", nullptr, kA | kK, "RUNTIME",
     "remote (default: a CRI runtime at --container-runtime-endpoint) or docker (dockerd at --docker-endpoint)",
     [](AgentConfig* c, const std::string& v) { c->kubelet.container_runtime = v; return Status::Ok(); }},
    {"docker-endpoint", nullptr, kA | kK, "ENDPOINT",
     "dockerd's socket for --container-runtime=docker (default unix:///var/run/docker.sock)",
     [](AgentConfig* c, const std::string& v) { c->kubelet.docker_endpoint = v; return Status::Ok(); }},
    {"pod-infra-container-image", nullptr, kA | kK, "IMAGE",
     "the pause image of --container-runtime=docker's pods (default registry.k8s.io/pause:3.10)",
     [](AgentConfig* c, const std::string& v) { c->kubelet.pod_infra_container_image = v; return Status::Ok(); }},
    {"cni-bin-dir", nullptr, kA | kK, "DIRS",
     "comma-separated CNI plugin directories for --container-runtime=docker (default /opt/cni/bin)",
     [](AgentConfig* c, const std::string& v) { c->kubelet.cni_bin_dir = v; return Status::Ok(); }},
    {"runtime-request-timeout", nullptr, kA | kK, "DURATION", "deadline of every runtime call but pulls (default 2m)",
     [](AgentConfig* c, const std::string& v) { return set_duration(&c->kubelet.runtime_request_timeout, v); }},
    {"cgroup-driver", nullptr, kA | kK, "DRIVER", "cgroupfs (default) or systemd; must match the runtime's",
     [](AgentConfig* c, const std::string& v) { c->kubelet.cgroup_driver = v; return Status::Ok(); }},
    {"cgroup-root", nullptr, kA | kK, "PATH", "the cgroup pods live under, as <root>/kubepods (default /)",
     [](AgentConfig* c, const std::string& v) { c->kubelet.cgroup_root = v; return Status::Ok(); }},
    {"root-dir", nullptr, kA | kK, "DIR", "the kubelet's state: pod volumes (default /var/lib/kubelet)",
     [](AgentConfig* c, const std::string& v) { c->kubelet.root_dir = v; return Status::Ok(); }},
    {"log-root", nullptr, kA | kK, "DIR",
     "container logs go to DIR/var/log/pods, their links to DIR/var/log/containers (default /)",
     [](AgentConfig* c, const std::string& v) { c->kubelet.log_root = v; return Status::Ok(); }},
    {"cluster-dns", nullptr, kA | kK, "IPS", "comma-separated DNS server IPs pods with dnsPolicy ClusterFirst use",
     [](AgentConfig* c, const std::string& v) { c->kubelet.cluster_dns = split_list(v); return Status::Ok(); }},
    {"cluster-domain", nullptr, kA | kK, "DOMAIN", "the cluster's DNS domain (default cluster.local)",
     [](AgentConfig* c, const std::string& v) { c->kubelet.cluster_domain = v; return Status::Ok(); }},
    {"resolv-conf", nullptr, kA | kK, "FILE", "the resolver config pods with dnsPolicy Default get (default /etc/resolv.conf)",
     [](AgentConfig* c, const std::string& v) { c->kubelet.resolv_conf = v; return Status::Ok(); }},
    {"read-only-port", nullptr, kA | kK, "PORT", "read-only kubelet API (GET /pods) port (default 10255; 0 disables)",
     [](AgentConfig* c, const std::string& v) { return set_int(&c->kubelet.read_only_port, v, 0, 65535); }},
    {"node-ip", nullptr, kA | kK, "IP", "the node's IP in pods' status.hostIP (default: the default route's interface's)",
     [](AgentConfig* c, const std::string& v) { c->kubelet.node_ip = v; return Status::Ok(); }},
    {"rotate-server-certificates", nullptr, kA | kK, nullptr,
     "in a cluster without --tls-cert-file: get the kubelet API's serving certificate from the cluster's CA through a "
     "CSR an administrator approves, and renew it before it expires",
     [](AgentConfig* c, const std::string& v) { return set_bool(&c->kubelet.server_tls_bootstrap, v); }},
    {"read-only-address", nullptr, kA | kK, "IP",
     "address of the read-only port, which has no authentication (default 127.0.0.1)",
     [](AgentConfig* c, const std::string& v) { c->kubelet.read_only_address = v; return Status::Ok(); }},
    {"address", nullptr, kA | kK, "IP", "address of the kubelet API (default 0.0.0.0)",
     [](AgentConfig* c, const std::string& v) { c->kubelet.address = v; return Status::Ok(); }},
    {"port", nullptr, kA | kK, "PORT",
     "kubelet API port, HTTPS (default 10250; 0 disables); standalone only with --tls-cert-file",
     [](AgentConfig* c, const std::string& v) { return set_int(&c->kubelet.port, v, 0, 65535); }},
    {"tls-cert-file", nullptr, kA | kK, "FILE",
     "the kubelet API's serving certificate (default: a self-signed one in <root-dir>/pki)",
     [](AgentConfig* c, const std::string& v) { c->kubelet.tls_cert_file = v; return Status::Ok(); }},
    {"tls-private-key-file", nullptr, kA | kK, "FILE", "the key of --tls-cert-file",
     [](AgentConfig* c, const std::string& v) { c->kubelet.tls_private_key_file = v; return Status::Ok(); }},
    {"client-ca-file", nullptr, kA | kK, "FILE",
     "CAs whose client certificates the kubelet API accepts (the API server's kubelet client certificate)",
     [](AgentConfig* c, const std::string& v) { c->kubelet.authentication.x509.client_ca_file = v; return Status::Ok(); }},
    {"anonymous-auth", nullptr, kA | kK, nullptr,
     "let requests to the kubelet API with no credentials in as system:anonymous (default false, unlike upstream's flag)",
     [](AgentConfig* c, const std::string& v) { return set_bool(&c->kubelet.authentication.anonymous.enabled, v); }},
    {"authentication-token-webhook", nullptr, kA | kK, nullptr,
     "accept bearer tokens at the kubelet API, checked by a TokenReview (default true, unlike upstream's flag)",
     [](AgentConfig* c, const std::string& v) { return set_bool(&c->kubelet.authentication.webhook.enabled, v); }},
    {"authentication-token-webhook-cache-ttl", nullptr, kA | kK, "DURATION",
     "how long token reviews are cached (default 2m)",
     [](AgentConfig* c, const std::string& v) { return set_duration(&c->kubelet.authentication.webhook.cache_ttl, v); }},
    {"authorization-mode", nullptr, kA | kK, "MODE",
     "Webhook (default, unlike upstream's flag): a SubjectAccessReview per kubelet API request; or AlwaysAllow",
     [](AgentConfig* c, const std::string& v) { c->kubelet.authorization.mode = v; return Status::Ok(); }},
    {"authorization-webhook-cache-authorized-ttl", nullptr, kA | kK, "DURATION",
     "how long an allowed access review is cached (default 5m)",
     [](AgentConfig* c, const std::string& v) {
       return set_duration(&c->kubelet.authorization.webhook.cache_authorized_ttl, v);
     }},
    {"authorization-webhook-cache-unauthorized-ttl", nullptr, kA | kK, "DURATION",
     "how long a denied access review is cached (default 30s)",
     [](AgentConfig* c, const std::string& v) {
       return set_duration(&c->kubelet.authorization.webhook.cache_unauthorized_ttl, v);
     }},
    {"iptables-sync-period", nullptr, kA | kP, "DURATION", "full resync period of the iptables rules (default 30s)",
     [](AgentConfig* c, const std::string& v) { return set_duration(&c->proxy.iptables.sync_period, v); }},
    {"iptables-min-sync-period", nullptr, kA | kP, "DURATION", "minimum time between syncs; bursts coalesce (default 1s)",
     [](AgentConfig* c, const std::string& v) { return set_duration(&c->proxy.iptables.min_sync_period, v); }},
    {"iptables-masquerade-bit", nullptr, kA | kP, "BIT", "fwmark bit marking packets to masquerade (default 14)",
     [](AgentConfig* c, const std::string& v) { return set_int(&c->proxy.iptables.masquerade_bit, v, 0, 31); }},
    {"masquerade-all", nullptr, kA | kP, nullptr, "masquerade all traffic sent to service cluster IPs",
     [](AgentConfig* c, const std::string& v) { return set_bool(&c->proxy.iptables.masquerade_all, v); }},
    {"ipvs-sync-period", nullptr, kA | kP, "DURATION", "full resync period of the IPVS state (default 30s)",
     [](AgentConfig* c, const std::string& v) { return set_duration(&c->proxy.ipvs.sync_period, v); }},
    {"ipvs-min-sync-period", nullptr, kA | kP, "DURATION", "minimum time between IPVS syncs (default 1s)",
     [](AgentConfig* c, const std::string& v) { return set_duration(&c->proxy.ipvs.min_sync_period, v); }},
    {"ipvs-tcp-timeout", nullptr, kA | kP, "DURATION", "IPVS idle TCP session timeout (0 leaves the kernel's)",
     [](AgentConfig* c, const std::string& v) { return set_duration(&c->proxy.ipvs.tcp_timeout, v); }},
    {"ipvs-tcpfin-timeout", nullptr, kA | kP, "DURATION", "IPVS TCP FIN_WAIT timeout (0 leaves the kernel's)",
     [](AgentConfig* c, const std::string& v) { return set_duration(&c->proxy.ipvs.tcp_fin_timeout, v); }},
    {"ipvs-udp-timeout", nullptr, kA | kP, "DURATION", "IPVS UDP timeout (0 leaves the kernel's)",
     [](AgentConfig* c, const std::string& v) { return set_duration(&c->proxy.ipvs.udp_timeout, v); }},
    {"ipvs-strict-arp", nullptr, kA | kP, nullptr, "set arp_ignore=1 and arp_announce=2 for kube-ipvs0 addresses",
     [](AgentConfig* c, const std::string& v) { return set_bool(&c->proxy.ipvs.strict_arp, v); }},
    {"ipvs-exclude-cidrs", nullptr, kA | kP, "CIDRS", "comma-separated CIDRs IPVS must not touch when cleaning up",
     [](AgentConfig* c, const std::string& v) { c->proxy.ipvs.exclude_cidrs = split_list(v); return Status::Ok(); }},
    {"cleanup", nullptr, kP, nullptr, "remove every rule, chain, set, virtual server and address knode created, then exit",
     [](AgentConfig* c, const std::string& v) { return set_bool(&c->cleanup, v); }},
};

const char* component_name(Component c) {
  switch (c) {
    case Component::kAgent: return "agent";
    case Component::kKubelet: return "kubelet";
    case Component::kProxy: return "proxy";
  }
  return "?";
}

const Flag* find_flag(Component comp, const std::string& name) {
  for (const auto& f : kFlags) {
    if (!(f.components & static_cast<unsigned>(comp))) continue;
    if (name == f.name || (f.alias && name == f.alias)) return &f;
  }
  return nullptr;
}

}  // namespace

std::string usage(Component component) {
  std::ostringstream os;
  os << "Usage: knode " << component_name(component) << " [flags]\n\nFlags:\n";
  for (const auto& f : kFlags) {
    if (!(f.components & static_cast<unsigned>(component))) continue;
    std::string left = std::string("  --") + f.name + (f.value_name ? std::string("=") + f.value_name : "");
    if (f.alias) left += std::string(", --") + f.alias;
    os << left;
    if (left.size() < 36) os << std::string(36 - left.size(), ' ');
    else os << "\n" << std::string(36, ' ');
    os << f.help << "\n";
  }
  os << "  -h, --help                        show this help\n";
  return os.str();
}

ParseOutcome parse_flags(Component component, const std::vector<std::string>& args,
                         AgentConfig* out) {
  out->component = component;
  auto error = [&](const std::string& msg) { return ParseOutcome{ParseOutcome::kError, msg}; };
  // First pass: split into (flag, value) pairs; find --config.
  std::vector<std::pair<const Flag*, std::string>> pairs;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help" || a == "-help") return ParseOutcome{ParseOutcome::kHelp, usage(component)};
    if (a.size() < 2 || a[0] != '-') return error("unexpected argument \"" + a + "\"");
    std::string body = a.substr(a[1] == '-' ? 2 : 1);
    std::string name = body, value;
    bool has_value = false;
    if (auto eq = body.find('='); eq != std::string::npos) {
      name = body.substr(0, eq);
      value = body.substr(eq + 1);
      has_value = true;
    }
    const Flag* f = find_flag(component, name);
    if (!f) return error("unknown flag: --" + name);
    if (!has_value) {
      if (!f->value_name) {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return error("flag needs an argument: --" + name);
      }
    }
    pairs.emplace_back(f, value);
  }
  for (const auto& [f, v] : pairs) {
    if (std::string(f->name) == "config") out->config_file = v;
  }
  if (!out->config_file.empty()) {
    if (auto s = load_config_file(out->config_file, out); !s.ok()) return error(s.message());
  }
  for (const auto& [f, v] : pairs) {
    if (auto s = f->set(out, v); !s.ok()) return error("invalid value for --" + std::string(f->name) + ": " + s.message());
  }
  if (auto s = validate(*out); !s.ok()) return error(s.message());
  return ParseOutcome{};
}

bool split_host_port(const std::string& s, int default_port, std::string* host, int* port) {
  std::string h = s;
  std::string p;
  if (!s.empty() && s[0] == '[') {
    auto close = s.find(']');
    if (close == std::string::npos) return false;
    h = s.substr(1, close - 1);
    if (close + 1 < s.size()) {
      if (s[close + 1] != ':') return false;
      p = s.substr(close + 2);
    }
  } else if (std::count(s.begin(), s.end(), ':') == 1) {
    auto colon = s.find(':');
    h = s.substr(0, colon);
    p = s.substr(colon + 1);
  }
  if (!net::IPAddress::Parse(h)) return false;
  *host = h;
  if (p.empty()) {
    *port = default_port;
    return true;
  }
  int32_t n;
  if (!set_int(&n, p, 0, 65535).ok()) return false;
  *port = n;
  return true;
}

Status validate(const AgentConfig& c) {
  const auto& p = c.proxy;
  if (c.runs_proxy()) {
    if (!p.mode.empty() && p.mode != "iptables" && p.mode != "ipvs" && p.mode != "nftables") {
      return Status::Error("invalid value for --proxy-mode: \"" + p.mode + "\" (want iptables, ipvs or nftables)");
    }
    for (const auto& cidr : split_list(p.cluster_cidr)) {
      if (!net::Cidr::Parse(cidr)) return Status::Error("invalid value for --cluster-cidr: \"" + cidr + "\" is not a CIDR");
    }
    for (const auto& cidr : p.node_port_addresses) {
      if (cidr != "primary" && !net::Cidr::Parse(cidr)) {
        return Status::Error("invalid value for --nodeport-addresses: \"" + cidr + "\" is not a CIDR");
      }
    }
    for (const auto& cidr : p.ipvs.exclude_cidrs) {
      if (!net::Cidr::Parse(cidr)) return Status::Error("invalid value for --ipvs-exclude-cidrs: \"" + cidr + "\" is not a CIDR");
    }
    std::string host;
    int port;
    if (!p.healthz_bind_address.empty() && !split_host_port(p.healthz_bind_address, 10256, &host, &port)) {
      return Status::Error("invalid value for --healthz-bind-address: \"" + p.healthz_bind_address + "\" (want IP[:PORT])");
    }
    if (!p.metrics_bind_address.empty() && !split_host_port(p.metrics_bind_address, 10249, &host, &port)) {
      return Status::Error("invalid value for --metrics-bind-address: \"" + p.metrics_bind_address + "\" (want IP:PORT)");
    }
    if (p.iptables.min_sync_period > p.iptables.sync_period) {
      return Status::Error("--iptables-min-sync-period must not exceed --iptables-sync-period");
    }
    if (p.ipvs.min_sync_period > p.ipvs.sync_period) {
      return Status::Error("--ipvs-min-sync-period must not exceed --ipvs-sync-period");
    }
    if (p.iptables.masquerade_bit < 0 || p.iptables.masquerade_bit > 31) {
      return Status::Error("iptables.masqueradeBit: must be within 0-31");
    }
  }
  if (c.runs_kubelet()) {
    if (!net::IPAddress::Parse(c.kubelet.healthz_bind_address)) {
      return Status::Error("invalid kubelet healthz bind address: \"" + c.kubelet.healthz_bind_address + "\" (want an IP)");
    }
    if (!c.kubelet.pod_cidr.empty() && !net::Cidr::Parse(c.kubelet.pod_cidr)) {
      return Status::Error("invalid value for --pod-cidr: \"" + c.kubelet.pod_cidr + "\" is not a CIDR");
    }
    if (c.kubelet.container_runtime != "remote" && c.kubelet.container_runtime != "docker") {
      return Status::Error("invalid value for --container-runtime: \"" + c.kubelet.container_runtime +
                           "\" (want remote or docker)");
    }
    if (c.kubelet.cgroup_driver != "cgroupfs" && c.kubelet.cgroup_driver != "systemd") {
      return Status::Error("invalid value for --cgroup-driver: \"" + c.kubelet.cgroup_driver +
                           "\" (want cgroupfs or systemd)");
    }
    for (const auto& ip : c.kubelet.cluster_dns) {
      if (!net::IPAddress::Parse(ip)) return Status::Error("invalid value for --cluster-dns: \"" + ip + "\" is not an IP");
    }
    if (!c.kubelet.node_ip.empty() && !net::IPAddress::Parse(c.kubelet.node_ip)) {
      return Status::Error("invalid value for --node-ip: \"" + c.kubelet.node_ip + "\" is not an IP");
    }
    if (!net::IPAddress::Parse(c.kubelet.address)) {
      return Status::Error("invalid value for --address: \"" + c.kubelet.address + "\" (want an IP)");
    }
    if (!net::IPAddress::Parse(c.kubelet.read_only_address)) {
      return Status::Error("invalid value for --read-only-address: \"" + c.kubelet.read_only_address +
                           "\" (want an IP)");
    }
    if (c.kubelet.runtime_request_timeout.nanos() <= 0) return Status::Error("--runtime-request-timeout must be positive");
    if (c.kubelet.port < 0 || c.kubelet.port > 65535) return Status::Error("port: must be within 0-65535");
    if (c.kubelet.tls_cert_file.empty() != c.kubelet.tls_private_key_file.empty()) {
      return Status::Error("--tls-cert-file and --tls-private-key-file go together");
    }
    const auto& authz = c.kubelet.authorization;
    if (authz.mode != "Webhook" && authz.mode != "AlwaysAllow") {
      return Status::Error("invalid value for --authorization-mode: \"" + authz.mode +
                           "\" (want Webhook or AlwaysAllow)");
    }
    for (const auto& [name, d] : {std::pair{"--authentication-token-webhook-cache-ttl",
                                            c.kubelet.authentication.webhook.cache_ttl},
                                  std::pair{"--authorization-webhook-cache-authorized-ttl",
                                            authz.webhook.cache_authorized_ttl},
                                  std::pair{"--authorization-webhook-cache-unauthorized-ttl",
                                            authz.webhook.cache_unauthorized_ttl}}) {
      if (d.nanos() < 0) return Status::Error(std::string(name) + " must not be negative");
    }
  }
  if (c.kubelet.file_check_frequency.nanos() <= 0) {
    return Status::Error("--file-check-frequency must be positive");
  }
  if (c.manifest_dir.empty() && c.kubeconfig.empty() && !c.cleanup) {
    return Status::Error("one of --manifest-dir (standalone) or --kubeconfig (cluster) is required");
  }
  if (!c.bootstrap_kubeconfig.empty() && c.kubeconfig.empty()) {
    return Status::Error("--bootstrap-kubeconfig needs --kubeconfig: where the bootstrapped kubeconfig is written");
  }
  if (c.kubelet.pod_routes == "host-gw") {
    if (c.kubeconfig.empty()) return Status::Error("--pod-routes=host-gw needs --kubeconfig: the routes follow the cluster's Nodes");
    if (c.kubelet.cluster_cidr.empty() && c.proxy.cluster_cidr.empty()) {
      return Status::Error("--pod-routes=host-gw needs --cluster-cidr: only routes inside it are knode's");
    }
  }
  return Status::Ok();
}

}  // namespace knode::config
