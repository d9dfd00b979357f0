#include "knode/kube/kubeconfig.h"

#include <cstdlib>

#include <nlohmann/json.hpp>

#include "knode/api/base64.h"
#include "knode/api/codec.h"
#include "knode/file.h"

namespace knode::kube {

using nlohmann::json;

namespace {

std::string dir_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string resolve(const std::string& dir, const std::string& p) {
  if (p.empty() || p.front() == '/') return p;
  return dir + "/" + p;
}

std::string str(const json& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : "";
}

// The entry named `name` in a kubeconfig list (clusters, users, contexts): its `field`.
const json* find_named(const json& root, const char* list, const char* field, const std::string& name) {
  auto it = root.find(list);
  if (it == root.end() || !it->is_array()) return nullptr;
  for (const auto& e : *it) {
    if (e.is_object() && str(e, "name") == name) {
      auto f = e.find(field);
      return f != e.end() && f->is_object() ? &*f : nullptr;
    }
  }
  return nullptr;
}

// "<key>-data" (base64) or "<key>" (a file): the PEM text, or empty when neither is set.
Result<std::string> pem(const json& o, const std::string& key, const std::string& dir,
                        const std::string& what) {
  std::string data = str(o, (key + "-data").c_str());
  if (!data.empty()) {
    auto decoded = api::base64_decode(data);
    if (!decoded) return Status::Error(what + ": " + key + "-data: not valid base64");
    return *decoded;
  }
  std::string file = str(o, key.c_str());
  if (file.empty()) return std::string();
  auto text = read_file(resolve(dir, file));
  if (!text.ok()) return text.status().Wrap(what + ": " + key);
  return *text;
}

}  // namespace

std::string KubeConfig::host() const {
  std::string rest = server;
  if (auto p = rest.find("://"); p != std::string::npos) rest = rest.substr(p + 3);
  if (auto p = rest.find('/'); p != std::string::npos) rest = rest.substr(0, p);
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    return rest.substr(1, close == std::string::npos ? std::string::npos : close - 1);
  }
  if (auto p = rest.rfind(':'); p != std::string::npos) return rest.substr(0, p);
  return rest;
}

std::string KubeConfig::port() const {
  std::string rest = server;
  bool https = true;
  if (auto p = rest.find("://"); p != std::string::npos) {
    https = rest.substr(0, p) != "http";
    rest = rest.substr(p + 3);
  }
  if (auto p = rest.find('/'); p != std::string::npos) rest = rest.substr(0, p);
  auto close = rest.find(']');
  auto colon = rest.rfind(':');
  if (colon != std::string::npos && (close == std::string::npos || colon > close)) {
    return rest.substr(colon + 1);
  }
  return https ? "443" : "80";
}

Result<KubeConfig> parse_kubeconfig(const std::string& text, const std::string& path,
                                    const std::string& context) {
  auto doc = api::yaml_to_json(text, path);
  if (!doc.ok()) return doc.status();
  const json& root = *doc;
  const std::string what = "kubeconfig " + path;
  if (!root.is_object()) return Status::Error(what + ": not a mapping");
  std::string ctx_name = context.empty() ? str(root, "current-context") : context;
  if (ctx_name.empty()) return Status::Error(what + ": current-context is not set");
  const json* ctx = find_named(root, "contexts", "context", ctx_name);
  if (!ctx) return Status::Error(what + ": context \"" + ctx_name + "\" not found");
  const std::string cluster_name = str(*ctx, "cluster");
  const std::string user_name = str(*ctx, "user");
  const json* cluster = find_named(root, "clusters", "cluster", cluster_name);
  if (!cluster) {
    return Status::Error(what + ": cluster \"" + cluster_name + "\" of context \"" + ctx_name + "\" not found");
  }
  const std::string dir = dir_of(path);
  KubeConfig c;
  c.source = path;
  c.server = str(*cluster, "server");
  if (c.server.empty()) return Status::Error(what + ": cluster \"" + cluster_name + "\": server is not set");
  if (!c.server.starts_with("https://") && !c.server.starts_with("http://")) {
    return Status::Error(what + ": cluster \"" + cluster_name + "\": server \"" + c.server +
                         "\" is not an http(s) URL");
  }
  c.tls_server_name = str(*cluster, "tls-server-name");
  if (auto it = cluster->find("insecure-skip-tls-verify"); it != cluster->end() && it->is_boolean()) {
    c.insecure_skip_tls_verify = it->get<bool>();
  }
  auto ca = pem(*cluster, "certificate-authority", dir, what + ": cluster \"" + cluster_name + "\"");
  if (!ca.ok()) return ca.status();
  c.ca_pem = *ca;
  c.namespace_ = str(*ctx, "namespace");
  if (c.namespace_.empty()) c.namespace_ = "default";
  if (!user_name.empty()) {
    const json* user = find_named(root, "users", "user", user_name);
    if (!user) return Status::Error(what + ": user \"" + user_name + "\" of context \"" + ctx_name + "\" not found");
    const std::string uw = what + ": user \"" + user_name + "\"";
    if (user->contains("exec") || user->contains("auth-provider")) {
      return Status::Error(uw + ": exec and auth-provider credentials are not supported; "
                                "use a client certificate or a token");
    }
    auto cert = pem(*user, "client-certificate", dir, uw);
    if (!cert.ok()) return cert.status();
    auto key = pem(*user, "client-key", dir, uw);
    if (!key.ok()) return key.status();
    c.client_cert_pem = *cert;
    c.client_key_pem = *key;
    if (c.client_cert_pem.empty() != c.client_key_pem.empty()) {
      return Status::Error(uw + ": a client certificate needs its key and the other way round");
    }
    c.token = str(*user, "token");
    c.token_file = resolve(dir, str(*user, "tokenFile"));
  }
  return c;
}

Result<KubeConfig> load_kubeconfig(const std::string& path, const std::string& context) {
  auto text = read_file(path);
  if (!text.ok()) return text.status().Wrap("kubeconfig");
  return parse_kubeconfig(*text, path, context);
}

Result<KubeConfig> in_cluster_config(const std::string& root) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (!host || !*host || !port || !*port) {
    return Status::Error("in-cluster config: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set");
  }
  KubeConfig c;
  c.source = "in-cluster service account " + root;
  std::string h = host;
  if (h.find(':') != std::string::npos) h = "[" + h + "]";
  c.server = "https://" + h + ":" + port;
  auto ca = read_file(root + "/ca.crt");
  if (!ca.ok()) return ca.status().Wrap("in-cluster config");
  c.ca_pem = *ca;
  c.token_file = root + "/token";
  if (auto ns = read_file(root + "/namespace"); ns.ok() && !ns->empty()) {
    c.namespace_ = *ns;
    while (!c.namespace_.empty() && std::isspace(static_cast<unsigned char>(c.namespace_.back()))) c.namespace_.pop_back();
  } else {
    c.namespace_ = "default";
  }
  if (auto tok = read_file(c.token_file); !tok.ok()) return tok.status().Wrap("in-cluster config");
  return c;
}

}  // namespace knode::kube
