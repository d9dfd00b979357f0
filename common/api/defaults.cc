#include "defaults.h"

#include "knode/api/base64.h"

namespace knode::api {
namespace {

void default_probe(std::optional<Probe>& p) {
  if (!p) return;
  if (p->timeout_seconds == 0) p->timeout_seconds = 1;
  if (p->period_seconds == 0) p->period_seconds = 10;
  if (p->success_threshold == 0) p->success_threshold = 1;
  if (p->failure_threshold == 0) p->failure_threshold = 3;
  if (p->http_get) {
    if (p->http_get->path.empty()) p->http_get->path = "/";
    if (p->http_get->scheme.empty()) p->http_get->scheme = "HTTP";
  }
}

void default_handler(std::optional<LifecycleHandler>& h) {
  if (h && h->http_get) {
    if (h->http_get->path.empty()) h->http_get->path = "/";
    if (h->http_get->scheme.empty()) h->http_get->scheme = "HTTP";
  }
}

// The API server's default pull policy for an image reference: Always for :latest or
// untagged images, IfNotPresent otherwise (containers and image volumes alike).
std::string default_pull_policy(const std::string& img) {
  auto slash = img.rfind('/');
  auto colon = img.rfind(':');
  bool has_tag = colon != std::string::npos && (slash == std::string::npos || colon > slash);
  bool digest = img.find('@') != std::string::npos;
  bool latest = has_tag && img.substr(colon + 1) == "latest";
  return (digest || (has_tag && !latest)) ? "IfNotPresent" : "Always";
}

void default_container(Container& c) {
  if (c.image_pull_policy.empty()) c.image_pull_policy = default_pull_policy(c.image);
  if (c.termination_message_path.empty()) c.termination_message_path = "/dev/termination-log";
  if (c.termination_message_policy.empty()) c.termination_message_policy = "File";
  for (auto& p : c.ports) {
    if (p.protocol.empty()) p.protocol = "TCP";
  }
  default_probe(c.liveness_probe);
  default_probe(c.readiness_probe);
  default_probe(c.startup_probe);
  if (c.lifecycle) {
    default_handler(c.lifecycle->post_start);
    default_handler(c.lifecycle->pre_stop);
  }
}

void defaults(Pod& p) {
  auto& s = p.spec;
  if (s.restart_policy.empty()) s.restart_policy = "Always";
  if (s.dns_policy.empty()) s.dns_policy = "ClusterFirst";
  if (!s.termination_grace_period_seconds) s.termination_grace_period_seconds = 30;
  if (!s.enable_service_links) s.enable_service_links = true;
  if (s.scheduler_name.empty()) s.scheduler_name = "default-scheduler";
  if (s.service_account_name.empty() && !s.service_account.empty()) {
    s.service_account_name = s.service_account;
  }
  for (auto& c : s.init_containers) default_container(c);
  for (auto& c : s.containers) default_container(c);
  for (auto& c : s.ephemeral_containers) default_container(c);
  for (auto& v : s.volumes) {
    if (v.config_map && !v.config_map->default_mode) v.config_map->default_mode = 0644;
    if (v.secret && !v.secret->default_mode) v.secret->default_mode = 0644;
    if (v.downward_api && !v.downward_api->default_mode) v.downward_api->default_mode = 0644;
    if (v.projected && !v.projected->default_mode) v.projected->default_mode = 0644;
    if (v.image && v.image->pull_policy.empty()) v.image->pull_policy = default_pull_policy(v.image->reference);
  }
}

void defaults(Service& svc) {
  auto& s = svc.spec;
  if (s.type.empty()) s.type = "ClusterIP";
  if (s.session_affinity.empty()) s.session_affinity = "None";
  if (s.session_affinity == "ClientIP") {
    if (!s.session_affinity_config) s.session_affinity_config.emplace();
    if (!s.session_affinity_config->client_ip) s.session_affinity_config->client_ip.emplace();
    if (!s.session_affinity_config->client_ip->timeout_seconds) {
      s.session_affinity_config->client_ip->timeout_seconds = 10800;
    }
  }
  for (auto& p : s.ports) {
    if (p.protocol.empty()) p.protocol = "TCP";
    if (p.target_port.empty()) p.target_port = IntOrString::Int(p.port);
  }
  if ((s.type == "NodePort" || s.type == "LoadBalancer") && s.external_traffic_policy.empty()) {
    s.external_traffic_policy = "Cluster";
  }
  if (s.type != "ExternalName" && !s.internal_traffic_policy) s.internal_traffic_policy = "Cluster";
  if (s.cluster_ips.empty() && !s.cluster_ip.empty()) s.cluster_ips.push_back(s.cluster_ip);
  if (s.cluster_ip.empty() && !s.cluster_ips.empty()) s.cluster_ip = s.cluster_ips.front();
}

void defaults(EndpointSlice& es) {
  for (auto& p : es.ports) {
    if (!p.protocol) p.protocol = "TCP";
  }
}

void defaults(Endpoints& ep) {
  for (auto& ss : ep.subsets) {
    for (auto& p : ss.ports) {
      if (p.protocol.empty()) p.protocol = "TCP";
    }
  }
}

void defaults(Secret& s) {
  if (s.type.empty()) s.type = "Opaque";
  // stringData is a write-only convenience: merged into data, as the API server does.
  for (const auto& [k, v] : s.string_data) s.data[k] = base64_encode(v);
  s.string_data.clear();
}

template <typename T>
void defaults(T&) {}

}  // namespace

void apply_defaults(Object& o) {
  api::visit(
      [](auto& x) {
        using T = std::decay_t<decltype(x)>;
        if (T::kNamespaced && x.metadata.namespace_.empty()) x.metadata.namespace_ = "default";
        if (!T::kNamespaced) x.metadata.namespace_.clear();
        defaults(x);
      },
      o);
}

}  // namespace knode::api
