#include "validate.h"

#include <set>

#include "knode/api/base64.h"
#include "knode/net.h"

namespace knode::api {
namespace {

// Collects the first error with its field path.
class V {
 public:
  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }
  void error(const std::string& field, const std::string& msg) {
    if (error_.empty()) error_ = field + ": " + msg;
  }
  void require(bool ok, const std::string& field, const std::string& msg) {
    if (!ok) error(field, msg);
  }
  void range(int64_t v, int64_t lo, int64_t hi, const std::string& field) {
    if (v < lo || v > hi) {
      error(field, std::to_string(v) + " out of range " + std::to_string(lo) + "-" + std::to_string(hi));
    }
  }
  void one_of(const std::string& v, std::initializer_list<const char*> allowed,
              const std::string& field) {
    for (const char* a : allowed) {
      if (v == a) return;
    }
    std::string list;
    for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + "\"" + a + "\"";
    error(field, "unsupported value \"" + v + "\": supported values: " + list);
  }
  void ip(const std::string& v, const std::string& field) {
    if (!net::IPAddress::Parse(v)) error(field, "\"" + v + "\" is not a valid IP address");
  }
  void cidr(const std::string& v, const std::string& field) {
    if (!net::Cidr::Parse(v)) error(field, "\"" + v + "\" is not a valid CIDR");
  }
  void protocol(const std::string& v, const std::string& field) {
    one_of(v, {"TCP", "UDP", "SCTP"}, field);
  }

 private:
  std::string error_;
};

std::string idx(const std::string& base, size_t i) { return base + "[" + std::to_string(i) + "]"; }

bool label_chars(const std::string& s, size_t max) {
  if (s.empty() || s.size() > max) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(s.front()) || !alnum(s.back())) return false;
  for (char c : s) {
    if (!alnum(c) && c != '-') return false;
  }
  return true;
}

void validate_meta(V& v, const ObjectMeta& m, bool name_is_subdomain, bool namespaced) {
  if (m.name.empty()) {
    v.error("metadata.name", "required");
    return;
  }
  bool ok = name_is_subdomain ? is_dns1123_subdomain(m.name) : is_dns1035_label(m.name);
  v.require(ok, "metadata.name",
            "\"" + m.name + "\" is not a valid name: must be " +
                (name_is_subdomain ? "a lowercase RFC 1123 subdomain"
                                   : "a lowercase RFC 1035 label") );
  if (namespaced) {
    v.require(is_dns1123_label(m.namespace_), "metadata.namespace",
              "\"" + m.namespace_ + "\" is not a valid namespace name");
  }
}

void validate_probe(V& v, const Probe& p, const std::string& f, bool success_must_be_one) {
  int handlers = (p.exec ? 1 : 0) + (p.http_get ? 1 : 0) + (p.tcp_socket ? 1 : 0) + (p.grpc ? 1 : 0);
  v.require(handlers == 1, f, handlers == 0 ? "must specify a handler type"
                                            : "may not specify more than 1 handler type");
  v.require(p.initial_delay_seconds >= 0, f + ".initialDelaySeconds", "must be greater than or equal to 0");
  v.require(p.timeout_seconds >= 1, f + ".timeoutSeconds", "must be greater than or equal to 1");
  v.require(p.period_seconds >= 1, f + ".periodSeconds", "must be greater than or equal to 1");
  v.require(p.success_threshold >= 1, f + ".successThreshold", "must be greater than or equal to 1");
  v.require(p.failure_threshold >= 1, f + ".failureThreshold", "must be greater than or equal to 1");
  if (success_must_be_one) v.require(p.success_threshold == 1, f + ".successThreshold", "must be 1");
  if (p.exec) v.require(!p.exec->command.empty(), f + ".exec.command", "required");
  auto port = [&](const IntOrString& port, const std::string& pf) {
    if (port.is_int()) {
      v.range(port.int_value(), 1, 65535, pf);
    } else {
      v.require(is_iana_svc_name(port.str_value()), pf,
                "\"" + port.str_value() + "\" must be a port number or a port name");
    }
  };
  if (p.http_get) {
    port(p.http_get->port, f + ".httpGet.port");
    v.one_of(p.http_get->scheme, {"HTTP", "HTTPS"}, f + ".httpGet.scheme");
  }
  if (p.tcp_socket) port(p.tcp_socket->port, f + ".tcpSocket.port");
  if (p.grpc) v.range(p.grpc->port, 1, 65535, f + ".grpc.port");
}

void validate_container(V& v, const Container& c, const std::string& f,
                        const std::set<std::string>& volumes, bool init) {
  v.require(is_dns1123_label(c.name), f + ".name",
            c.name.empty() ? "required" : "\"" + c.name + "\" is not a valid container name");
  v.require(!c.image.empty(), f + ".image", "required");
  v.one_of(c.image_pull_policy, {"Always", "IfNotPresent", "Never"}, f + ".imagePullPolicy");
  for (size_t i = 0; i < c.ports.size(); ++i) {
    const auto& p = c.ports[i];
    std::string pf = idx(f + ".ports", i);
    v.range(p.container_port, 1, 65535, pf + ".containerPort");
    v.range(p.host_port, 0, 65535, pf + ".hostPort");
    v.protocol(p.protocol, pf + ".protocol");
    if (!p.host_ip.empty()) v.ip(p.host_ip, pf + ".hostIP");
  }
  for (size_t i = 0; i < c.env.size(); ++i) {
    v.require(!c.env[i].name.empty(), idx(f + ".env", i) + ".name", "required");
  }
  for (const auto* list : {&c.resources.limits, &c.resources.requests}) {
    for (const auto& [name, q] : *list) {
      v.require(q.milli_value() >= 0, f + ".resources." + (list == &c.resources.limits ? "limits" : "requests") + "." + name,
                "must be greater than or equal to 0");
    }
  }
  for (size_t i = 0; i < c.volume_mounts.size(); ++i) {
    const auto& m = c.volume_mounts[i];
    std::string mf = idx(f + ".volumeMounts", i);
    v.require(volumes.count(m.name) > 0, mf + ".name", "volume \"" + m.name + "\" not found");
    v.require(!m.mount_path.empty(), mf + ".mountPath", "required");
  }
  if (c.liveness_probe) validate_probe(v, *c.liveness_probe, f + ".livenessProbe", true);
  if (c.readiness_probe) validate_probe(v, *c.readiness_probe, f + ".readinessProbe", false);
  if (c.startup_probe) validate_probe(v, *c.startup_probe, f + ".startupProbe", true);
  if (c.restart_policy) {
    v.require(init && *c.restart_policy == "Always", f + ".restartPolicy",
              init ? "only \"Always\" is supported" : "may only be set on init containers");
  }
}

void validate(V& v, const Pod& p) {
  validate_meta(v, p.metadata, true, true);
  const auto& s = p.spec;
  std::set<std::string> volumes;
  for (size_t i = 0; i < s.volumes.size(); ++i) {
    const auto& vol = s.volumes[i];
    std::string f = idx("spec.volumes", i);
    v.require(is_dns1123_label(vol.name), f + ".name", "\"" + vol.name + "\" is not a valid volume name");
    v.require(volumes.insert(vol.name).second, f + ".name", "duplicate volume \"" + vol.name + "\"");
    int sources = !!vol.host_path + !!vol.empty_dir + !!vol.config_map + !!vol.secret +
                  !!vol.persistent_volume_claim + !!vol.downward_api + !!vol.projected + !!vol.image +
                  !!vol.nfs;
    v.require(sources == 1, f, sources == 0 ? "must specify a volume type" : "may not specify more than 1 volume type");
    if (vol.host_path) v.require(!vol.host_path->path.empty(), f + ".hostPath.path", "required");
    if (vol.nfs) {
      v.require(!vol.nfs->server.empty(), f + ".nfs.server", "required");
      v.require(!vol.nfs->path.empty(), f + ".nfs.path", "required");
      if (!vol.nfs->path.empty()) v.require(vol.nfs->path[0] == '/', f + ".nfs.path", "must be an absolute path");
    }
    if (vol.image) {
      v.require(!vol.image->reference.empty(), f + ".image.reference", "required");
      v.one_of(vol.image->pull_policy, {"Always", "IfNotPresent", "Never"}, f + ".image.pullPolicy");
    }
  }
  v.require(!s.containers.empty(), "spec.containers", "required");
  std::set<std::string> names;
  for (size_t i = 0; i < s.init_containers.size(); ++i) {
    std::string f = idx("spec.initContainers", i);
    validate_container(v, s.init_containers[i], f, volumes, true);
    v.require(names.insert(s.init_containers[i].name).second, f + ".name", "duplicate container name");
  }
  for (size_t i = 0; i < s.containers.size(); ++i) {
    std::string f = idx("spec.containers", i);
    validate_container(v, s.containers[i], f, volumes, false);
    v.require(names.insert(s.containers[i].name).second, f + ".name", "duplicate container name");
  }
  v.one_of(s.restart_policy, {"Always", "OnFailure", "Never"}, "spec.restartPolicy");
  v.one_of(s.dns_policy, {"ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"}, "spec.dnsPolicy");
  if (s.termination_grace_period_seconds) {
    v.require(*s.termination_grace_period_seconds >= 0, "spec.terminationGracePeriodSeconds",
              "must be greater than or equal to 0");
  }
  if (!s.hostname.empty()) v.require(is_dns1123_label(s.hostname), "spec.hostname", "must be a DNS label");
  if (!s.subdomain.empty()) v.require(is_dns1123_label(s.subdomain), "spec.subdomain", "must be a DNS label");
  if (s.dns_policy == "None") {
    v.require(s.dns_config && !s.dns_config->nameservers.empty(), "spec.dnsConfig.nameservers",
              "must provide at least one DNS nameserver when dnsPolicy is None");
  }
}

void validate(V& v, const Service& svc) {
  validate_meta(v, svc.metadata, false, true);
  const auto& s = svc.spec;
  v.one_of(s.type, {"ClusterIP", "NodePort", "LoadBalancer", "ExternalName"}, "spec.type");
  if (s.type == "ExternalName") {
    v.require(is_dns1123_subdomain(s.external_name), "spec.externalName",
              s.external_name.empty() ? "required for ExternalName services"
                                      : "\"" + s.external_name + "\" is not a valid DNS name");
    return;
  }
  v.require(!s.ports.empty() || s.cluster_ip == "None", "spec.ports", "required");
  std::set<std::string> names;
  for (size_t i = 0; i < s.ports.size(); ++i) {
    const auto& p = s.ports[i];
    std::string f = idx("spec.ports", i);
    if (s.ports.size() > 1) v.require(!p.name.empty(), f + ".name", "required when there are multiple ports");
    if (!p.name.empty()) {
      v.require(is_dns1123_label(p.name), f + ".name", "\"" + p.name + "\" is not a valid port name");
      v.require(names.insert(p.name).second, f + ".name", "duplicate port name \"" + p.name + "\"");
    }
    v.range(p.port, 1, 65535, f + ".port");
    v.protocol(p.protocol, f + ".protocol");
    if (p.target_port.is_int()) {
      v.range(p.target_port.int_value(), 1, 65535, f + ".targetPort");
    } else {
      v.require(is_iana_svc_name(p.target_port.str_value()), f + ".targetPort",
                "\"" + p.target_port.str_value() + "\" must be a port number or a port name");
    }
    v.range(p.node_port, 0, 65535, f + ".nodePort");
    if (p.node_port != 0) {
      v.require(s.type == "NodePort" || s.type == "LoadBalancer", f + ".nodePort",
                "may only be set for NodePort and LoadBalancer services");
    }
  }
  if (!s.cluster_ip.empty() && s.cluster_ip != "None") v.ip(s.cluster_ip, "spec.clusterIP");
  for (size_t i = 0; i < s.cluster_ips.size(); ++i) {
    if (s.cluster_ips[i] != "None") v.ip(s.cluster_ips[i], idx("spec.clusterIPs", i));
  }
  for (size_t i = 0; i < s.external_ips.size(); ++i) v.ip(s.external_ips[i], idx("spec.externalIPs", i));
  if (!s.load_balancer_ip.empty()) v.ip(s.load_balancer_ip, "spec.loadBalancerIP");
  for (size_t i = 0; i < s.load_balancer_source_ranges.size(); ++i) {
    v.cidr(s.load_balancer_source_ranges[i], idx("spec.loadBalancerSourceRanges", i));
  }
  v.one_of(s.session_affinity, {"None", "ClientIP"}, "spec.sessionAffinity");
  if (s.session_affinity_config && s.session_affinity_config->client_ip &&
      s.session_affinity_config->client_ip->timeout_seconds) {
    v.range(*s.session_affinity_config->client_ip->timeout_seconds, 1, 86400,
            "spec.sessionAffinityConfig.clientIP.timeoutSeconds");
  }
  if (!s.external_traffic_policy.empty()) {
    v.one_of(s.external_traffic_policy, {"Cluster", "Local"}, "spec.externalTrafficPolicy");
  }
  if (s.internal_traffic_policy) {
    v.one_of(*s.internal_traffic_policy, {"Cluster", "Local"}, "spec.internalTrafficPolicy");
  }
  v.range(s.health_check_node_port, 0, 65535, "spec.healthCheckNodePort");
  for (size_t i = 0; i < s.ip_families.size(); ++i) {
    v.one_of(s.ip_families[i], {"IPv4", "IPv6"}, idx("spec.ipFamilies", i));
  }
  const auto& ingress = svc.status.load_balancer.ingress;
  for (size_t i = 0; i < ingress.size(); ++i) {
    if (!ingress[i].ip.empty()) v.ip(ingress[i].ip, idx("status.loadBalancer.ingress", i) + ".ip");
  }
}

void validate(V& v, const EndpointSlice& es) {
  validate_meta(v, es.metadata, true, true);
  v.one_of(es.address_type, {"IPv4", "IPv6", "FQDN"}, "addressType");
  for (size_t i = 0; i < es.endpoints.size(); ++i) {
    const auto& e = es.endpoints[i];
    std::string f = idx("endpoints", i);
    v.require(!e.addresses.empty() && e.addresses.size() <= 100, f + ".addresses",
              "must contain between 1 and 100 addresses");
    for (size_t k = 0; k < e.addresses.size(); ++k) {
      std::string af = idx(f + ".addresses", k);
      if (es.address_type == "FQDN") {
        v.require(is_dns1123_subdomain(e.addresses[k]), af, "must be a valid FQDN");
        continue;
      }
      auto ip = net::IPAddress::Parse(e.addresses[k]);
      if (!ip) {
        v.error(af, "\"" + e.addresses[k] + "\" is not a valid IP address");
      } else {
        v.require(ip->is_v4() == (es.address_type == "IPv4"), af,
                  "\"" + e.addresses[k] + "\" does not match addressType " + es.address_type);
      }
    }
  }
  std::set<std::string> names;
  for (size_t i = 0; i < es.ports.size(); ++i) {
    const auto& p = es.ports[i];
    std::string f = idx("ports", i);
    if (p.port) v.range(*p.port, 1, 65535, f + ".port");
    if (p.protocol) v.protocol(*p.protocol, f + ".protocol");
    std::string name = p.name.value_or("");
    if (!name.empty()) v.require(is_dns1123_label(name), f + ".name", "\"" + name + "\" is not a valid port name");
    v.require(names.insert(name).second, f + ".name", "duplicate port name \"" + name + "\"");
  }
}

void validate(V& v, const Endpoints& ep) {
  validate_meta(v, ep.metadata, true, true);
  for (size_t i = 0; i < ep.subsets.size(); ++i) {
    const auto& ss = ep.subsets[i];
    std::string f = idx("subsets", i);
    for (size_t k = 0; k < ss.addresses.size(); ++k) v.ip(ss.addresses[k].ip, idx(f + ".addresses", k) + ".ip");
    for (size_t k = 0; k < ss.not_ready_addresses.size(); ++k) {
      v.ip(ss.not_ready_addresses[k].ip, idx(f + ".notReadyAddresses", k) + ".ip");
    }
    for (size_t k = 0; k < ss.ports.size(); ++k) {
      std::string pf = idx(f + ".ports", k);
      v.range(ss.ports[k].port, 1, 65535, pf + ".port");
      v.protocol(ss.ports[k].protocol, pf + ".protocol");
    }
  }
}

void validate(V& v, const Node& n) {
  validate_meta(v, n.metadata, true, false);
  if (!n.spec.pod_cidr.empty()) v.cidr(n.spec.pod_cidr, "spec.podCIDR");
  for (size_t i = 0; i < n.spec.pod_cidrs.size(); ++i) v.cidr(n.spec.pod_cidrs[i], idx("spec.podCIDRs", i));
}

bool config_key_ok(const std::string& k) {
  if (k.empty() || k.size() > 253 || k == "." || k == "..") return false;
  for (char c : k) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

void validate(V& v, const ConfigMap& cm) {
  validate_meta(v, cm.metadata, true, true);
  for (const auto& [k, val] : cm.data) {
    v.require(config_key_ok(k), "data[" + k + "]", "not a valid key");
    v.require(cm.binary_data.count(k) == 0, "data[" + k + "]", "duplicate of key in binaryData");
  }
  for (const auto& [k, val] : cm.binary_data) {
    v.require(config_key_ok(k), "binaryData[" + k + "]", "not a valid key");
    v.require(base64_decode(val).has_value(), "binaryData[" + k + "]", "not valid base64");
  }
}

void validate(V& v, const Secret& s) {
  validate_meta(v, s.metadata, true, true);
  for (const auto& [k, val] : s.data) {
    v.require(config_key_ok(k), "data[" + k + "]", "not a valid key");
    v.require(base64_decode(val).has_value(), "data[" + k + "]", "not valid base64");
  }
}

void validate(V& v, const Namespace& n) {
  validate_meta(v, n.metadata, true, false);
  v.require(is_dns1123_label(n.metadata.name), "metadata.name", "must be a DNS label");
}

}  // namespace

bool is_dns1123_label(const std::string& s) { return label_chars(s, 63); }

bool is_dns1123_subdomain(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  size_t start = 0;
  while (true) {
    size_t dot = s.find('.', start);
    std::string part = s.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    // As upstream's IsDNS1123Subdomain: 253 in all, no limit on one part (a 70-character
    // pod name is valid; the API server only warns that the hostname is cut to 63).
    if (!label_chars(part, 253)) return false;
    if (dot == std::string::npos) return true;
    start = dot + 1;
  }
}

bool is_dns1035_label(const std::string& s) {
  return label_chars(s, 63) && s.front() >= 'a' && s.front() <= 'z';
}

bool is_iana_svc_name(const std::string& s) {
  if (s.empty() || s.size() > 15) return false;
  bool letter = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool lower = c >= 'a' && c <= 'z';
    bool digit = c >= '0' && c <= '9';
    if (!lower && !digit && c != '-') return false;
    if (c == '-' && (i == 0 || i + 1 == s.size() || s[i - 1] == '-')) return false;
    letter |= lower;
  }
  return letter;
}

Status validate(const Object& o) {
  V v;
  api::visit([&](const auto& x) { validate(v, x); }, o);
  if (v.failed()) return Status::Error(v.error());
  return Status::Ok();
}

}  // namespace knode::api
