#include "volume/payload.h"

#include <set>

#include "knode/api/base64.h"
#include "volume/fs_util.h"

namespace knode::kubelet::volume {
namespace {

constexpr char kModeError[] = "must be a number between 0 and 0777 (octal), both inclusive";

std::string idx(const std::string& f, size_t i) { return f + "[" + std::to_string(i) + "]"; }

Status at(const std::string& field, const std::string& message, int err = EINVAL) {
  return Status::Error(field + ": " + message, err);
}

Status check_mode(const std::optional<int32_t>& mode, const std::string& field) {
  if (mode && !valid_file_mode(*mode)) return at(field, kModeError);
  return Status::Ok();
}

Status check_path(const std::string& path, const std::string& field) {
  if (Status s = AtomicWriter::validate_path(path); !s.ok()) return at(field, s.message());
  return Status::Ok();
}

// One object's data as files: every key when `items` is empty, else the listed keys at their
// paths. `data` holds the decoded bytes. A listed key that is missing is an error unless the
// source is optional.
Status add_items(const std::map<std::string, std::string>& data,
                 const std::vector<api::KeyToPath>& items, int32_t default_mode, bool optional,
                 const std::string& missing_key_text, const std::string& field, Payload* out) {
  if (items.empty()) {
    for (const auto& [key, bytes] : data) {
      // The API server would have refused such a key; knode reads objects from files.
      if (Status s = check_path(key, field + ": key \"" + key + "\""); !s.ok()) return s;
      (*out)[key] = {bytes, default_mode};
    }
    return Status::Ok();
  }
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& item = items[i];
    std::string f = idx(field + ".items", i);
    if (Status s = check_path(item.path, f + ".path"); !s.ok()) return s;
    if (Status s = check_mode(item.mode, f + ".mode"); !s.ok()) return s;
    auto it = data.find(item.key);
    if (it == data.end()) {
      if (optional) continue;
      return at(f + ".key", missing_key_text + item.key, ENOENT);
    }
    (*out)[item.path] = {it->second, item.mode.value_or(default_mode)};
  }
  return Status::Ok();
}

Result<std::map<std::string, std::string>> decoded(const api::StringMap& b64,
                                                   const std::string& what) {
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : b64) {
    auto bytes = api::base64_decode(value);
    if (!bytes) return Status::Error("key " + key + " of " + what + " is not valid base64");
    out[key] = std::move(*bytes);
  }
  return out;
}

Status config_map_files(const api::Pod& pod, const std::string& name,
                        const std::vector<api::KeyToPath>& items, bool optional,
                        int32_t default_mode, const std::string& field, const EnvLookup& lookup,
                        Payload* out) {
  const std::string& ns = pod.metadata.namespace_;
  const api::ConfigMap* cm = lookup.config_map(ns, name);
  if (cm == nullptr && !optional)
    return at(field + ".name", "configmap \"" + name + "\" not found", ENOENT);
  std::map<std::string, std::string> data;
  if (cm != nullptr) {
    auto binary = decoded(cm->binary_data, "configmap " + ns + "/" + name + " binaryData");
    if (!binary.ok()) return at(field + ".name", binary.error());
    data = std::move(*binary);
    for (const auto& [key, value] : cm->data) data[key] = value;
  }
  return add_items(data, items, default_mode, optional,
                   "configmap references non-existent config key: ", field, out);
}

Status secret_files(const api::Pod& pod, const std::string& name, const std::string& name_field,
                    const std::vector<api::KeyToPath>& items, bool optional, int32_t default_mode,
                    const std::string& field, const EnvLookup& lookup, Payload* out) {
  const std::string& ns = pod.metadata.namespace_;
  const api::Secret* secret = lookup.secret(ns, name);
  if (secret == nullptr && !optional)
    return at(name_field, "secret \"" + name + "\" not found", ENOENT);
  std::map<std::string, std::string> data;
  if (secret != nullptr) {
    auto d = decoded(secret->data, "secret " + ns + "/" + name);
    if (!d.ok()) return at(name_field, d.error());
    data = std::move(*d);
  }
  return add_items(data, items, default_mode, optional,
                   "references non-existent secret key: ", field, out);
}

Status downward_api_files(const api::Pod& pod, const std::vector<api::DownwardAPIVolumeFile>& items,
                          int32_t default_mode, const std::string& field, const EnvLookup& lookup,
                          Payload* out) {
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& item = items[i];
    std::string f = idx(field + ".items", i);
    if (Status s = check_path(item.path, f + ".path"); !s.ok()) return s;
    if (Status s = check_mode(item.mode, f + ".mode"); !s.ok()) return s;
    Result<std::string> value = std::string();
    if (item.field_ref && item.resource_field_ref) {
      return at(f, "fieldRef and resourceFieldRef are mutually exclusive");
    } else if (item.field_ref) {
      value = pod_metadata_field(pod, item.field_ref->field_path);
      if (!value.ok()) return at(f + ".fieldRef.fieldPath", value.error());
    } else if (item.resource_field_ref) {
      if (item.resource_field_ref->container_name.empty()) {
        return at(f + ".resourceFieldRef.containerName", "required");
      }
      value = container_resource_field(pod, *item.resource_field_ref, lookup.node_allocatable());
      if (!value.ok()) return at(f + ".resourceFieldRef", value.error());
    } else {
      return at(f, "must specify one of fieldRef or resourceFieldRef");
    }
    (*out)[clean_path(item.path)] = {std::move(*value), item.mode.value_or(default_mode)};
  }
  return Status::Ok();
}

// The explicit paths of a projected source, for upstream's "conflicting duplicate paths".
Status claim_paths(const std::vector<std::string>& paths, const std::string& field,
                   std::set<std::string>* seen) {
  for (size_t i = 0; i < paths.size(); ++i) {
    if (!seen->insert(clean_path(paths[i])).second) {
      return at(idx(field + ".items", i) + ".path", "conflicting duplicate paths");
    }
  }
  return Status::Ok();
}

Result<Payload> projected_files(const api::Pod& pod, const std::string& volume, const api::ProjectedVolumeSource& src,
                                const std::string& field, const EnvLookup& lookup) {
  int32_t default_mode = src.default_mode.value_or(0644);
  Payload out;
  std::set<std::string> seen;
  for (size_t k = 0; k < src.sources.size(); ++k) {
    const auto& s = src.sources[k];
    std::string f = idx(field + ".sources", k);
    int kinds = !!s.config_map + !!s.secret + !!s.downward_api + !!s.service_account_token +
                !!s.cluster_trust_bundle + !!s.pod_certificate;
    if (kinds != 1)
      return at(
          f, kinds == 0 ? "must specify a source type" : "may not specify more than 1 source type");
    std::vector<std::string> paths;
    Status st;
    if (s.config_map) {
      for (const auto& item : s.config_map->items) paths.push_back(item.path);
      if (st = claim_paths(paths, f + ".configMap", &seen); !st.ok()) return st;
      st = config_map_files(pod, s.config_map->name, s.config_map->items,
                            s.config_map->optional.value_or(false), default_mode, f + ".configMap",
                            lookup, &out);
    } else if (s.secret) {
      for (const auto& item : s.secret->items) paths.push_back(item.path);
      if (st = claim_paths(paths, f + ".secret", &seen); !st.ok()) return st;
      st = secret_files(pod, s.secret->name, f + ".secret.name", s.secret->items,
                        s.secret->optional.value_or(false), default_mode, f + ".secret", lookup,
                        &out);
    } else if (s.downward_api) {
      for (const auto& item : s.downward_api->items) paths.push_back(item.path);
      if (st = claim_paths(paths, f + ".downwardAPI", &seen); !st.ok()) return st;
      st = downward_api_files(pod, s.downward_api->items, default_mode, f + ".downwardAPI", lookup,
                              &out);
    } else if (s.cluster_trust_bundle) {
      const auto& b = *s.cluster_trust_bundle;
      if (st = claim_paths({b.path}, f + ".clusterTrustBundle", &seen); !st.ok()) return st;
      auto pem = lookup.cluster_trust_bundle(b);
      if (!pem.ok()) return at(f + ".clusterTrustBundle", pem.status().message(), pem.status().error_number());
      out[b.path] = {std::move(*pem), default_mode};
    } else if (s.pod_certificate) {
      const auto& c = *s.pod_certificate;
      std::string pf = f + ".podCertificate";
      std::vector<std::string> files;
      for (const auto* p : {&c.credential_bundle_path, &c.key_path, &c.certificate_chain_path}) {
        if (!p->empty()) files.push_back(*p);
      }
      if (files.empty()) return at(pf, "at least one of credentialBundlePath, keyPath and certificateChainPath is required");
      if (st = claim_paths(files, pf, &seen); !st.ok()) return st;
      auto cred = lookup.pod_certificate(pod, volume, k, c);
      if (!cred.ok()) return at(pf, cred.status().message(), cred.status().error_number());
      // A private key: only its owner reads it when an owner is named (user, fsGroup).
      const bool owned = c.user || (pod.spec.security_context && pod.spec.security_context->fs_group);
      const int32_t mode = owned ? 0600 : default_mode;
      if (!c.credential_bundle_path.empty()) out[c.credential_bundle_path] = {cred->key_pem + cred->chain_pem, mode};
      if (!c.key_path.empty()) out[c.key_path] = {cred->key_pem, mode};
      if (!c.certificate_chain_path.empty()) out[c.certificate_chain_path] = {cred->chain_pem, mode};
    } else {
      const auto& t = *s.service_account_token;
      if (st = claim_paths({t.path}, f + ".serviceAccountToken", &seen); !st.ok()) return st;
      auto token = lookup.service_account_token(pod, t);
      if (!token.ok()) return at(f + ".serviceAccountToken", token.status().message(), token.status().error_number());
      out[t.path] = {std::move(*token), default_mode};
    }
    if (!st.ok()) return st;
  }
  return out;
}

}  // namespace

bool valid_file_mode(int32_t mode) { return mode >= 0 && mode <= 0777; }

Result<Payload> make_payload(const api::Pod& pod, const api::Volume& volume,
                             const std::string& field, const EnvLookup& lookup) {
  Payload out;
  Status s;
  if (volume.config_map) {
    const auto& src = *volume.config_map;
    std::string f = field + ".configMap";
    if (s = check_mode(src.default_mode, f + ".defaultMode"); !s.ok()) return s;
    s = config_map_files(pod, src.name, src.items, src.optional.value_or(false),
                         src.default_mode.value_or(0644), f, lookup, &out);
  } else if (volume.secret) {
    const auto& src = *volume.secret;
    std::string f = field + ".secret";
    if (s = check_mode(src.default_mode, f + ".defaultMode"); !s.ok()) return s;
    s = secret_files(pod, src.secret_name, f + ".secretName", src.items,
                     src.optional.value_or(false), src.default_mode.value_or(0644), f, lookup,
                     &out);
  } else if (volume.downward_api) {
    const auto& src = *volume.downward_api;
    std::string f = field + ".downwardAPI";
    if (s = check_mode(src.default_mode, f + ".defaultMode"); !s.ok()) return s;
    std::vector<std::string> paths;
    for (const auto& item : src.items) paths.push_back(item.path);
    std::set<std::string> seen;
    if (s = claim_paths(paths, f, &seen); !s.ok()) return s;
    s = downward_api_files(pod, src.items, src.default_mode.value_or(0644), f, lookup, &out);
  } else if (volume.projected) {
    std::string f = field + ".projected";
    if (s = check_mode(volume.projected->default_mode, f + ".defaultMode"); !s.ok()) return s;
    return projected_files(pod, volume.name, *volume.projected, f, lookup);
  } else {
    return at(field, "not a configMap, secret, downwardAPI or projected volume");
  }
  if (!s.ok()) return s;
  return out;
}

}  // namespace knode::kubelet::volume
