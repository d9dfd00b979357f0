#include "cluster/references.h"

namespace knode::kubelet {

std::set<ObjectRef> referenced_objects(const api::Pod& pod) {
  std::set<ObjectRef> out;
  const std::string ns = pod.metadata.namespace_.empty() ? "default" : pod.metadata.namespace_;
  auto cm = [&](const std::string& name) {
    if (!name.empty()) out.emplace(api::Kind::kConfigMap, ns + "/" + name);
  };
  auto secret = [&](const std::string& name) {
    if (!name.empty()) out.emplace(api::Kind::kSecret, ns + "/" + name);
  };
  for (const auto& v : pod.spec.volumes) {
    if (v.config_map) cm(v.config_map->name);
    if (v.secret) secret(v.secret->secret_name);
    if (v.projected) {
      for (const auto& s : v.projected->sources) {
        if (s.config_map) cm(s.config_map->name);
        if (s.secret) secret(s.secret->name);
      }
    }
  }
  for (const auto* list : {&pod.spec.init_containers, &pod.spec.containers, &pod.spec.ephemeral_containers}) {
    for (const auto& c : *list) {
      for (const auto& e : c.env) {
        if (!e.value_from) continue;
        if (e.value_from->config_map_key_ref) cm(e.value_from->config_map_key_ref->name);
        if (e.value_from->secret_key_ref) secret(e.value_from->secret_key_ref->name);
      }
      for (const auto& f : c.env_from) {
        if (f.config_map_ref) cm(f.config_map_ref->name);
        if (f.secret_ref) secret(f.secret_ref->name);
      }
    }
  }
  for (const auto& s : pod.spec.image_pull_secrets) secret(s.name);
  return out;
}

}  // namespace knode::kubelet
