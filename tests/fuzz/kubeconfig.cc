// Fuzzes kubeconfig parsing: kube::parse_kubeconfig (YAML through api::yaml_to_json; the
// current context, its cluster and user; certificate-authority/client-certificate/
// client-key as base64 "-data" or as file paths; token and tokenFile), for the current
// context and for a context named by the input, then KubeConfig::host()/port() on the
// result (what the client connects to).
//
// A kubeconfig names files the parser reads. So that a fuzz input cannot make it read
// /dev/zero or /dev/stdin, a document that names such a file in any cluster or user entry
// is given to the parser as the same document with those values replaced by a relative
// name under a directory that does not exist; every other input is parsed as it came.
// Errors travel as Result/Status: nothing is caught here.
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "fuzz_util.h"
#include "knode/api/codec.h"
#include "knode/kube/kubeconfig.h"
#include "knode/json_get.h"

namespace {

constexpr const char* kPath = "/nonexistent-knode-fuzz/kubeconfig";

// Replaces file-naming values of entries in root[list][*][field]; true when it changed any.
bool neutralize(nlohmann::json& root, const char* list, const char* field) {
  static const char* const kFileKeys[] = {"certificate-authority", "client-certificate", "client-key"};
  bool changed = false;
  auto it = root.find(list);
  if (it == root.end() || !it->is_array()) return false;
  for (auto& e : *it) {
    if (!e.is_object()) continue;
    auto f = e.find(field);
    if (f == e.end() || !f->is_object()) continue;
    for (const char* key : kFileKeys) {
      auto v = f->find(key);
      if (v != f->end() && v->is_string() && !v->get_ref<const std::string&>().empty()) {
        *v = "missing-file";
        changed = true;
      }
    }
  }
  return changed;
}

void use(const knode::Result<knode::kube::KubeConfig>& c) {
  if (!c.ok()) return;
  (void)c->host();
  (void)c->port();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(knode::fuzz::as_view(data, size));
  auto doc = knode::api::yaml_to_json(text, kPath);
  if (doc.ok() && doc->is_object()) {
    bool changed = neutralize(*doc, "clusters", "cluster");
    changed = neutralize(*doc, "users", "user") || changed;
    if (changed) text = knode::jget::dump(*doc);  // JSON is YAML
  }
  use(knode::kube::parse_kubeconfig(text, kPath));
  // Every context by name, as --context would pick it (at most a few).
  if (doc.ok() && doc->is_object()) {
    auto ctxs = doc->find("contexts");
    if (ctxs != doc->end() && ctxs->is_array()) {
      int n = 0;
      for (const auto& c : *ctxs) {
        if (++n > 4) break;
        if (c.is_object() && c.contains("name") && c["name"].is_string()) {
          use(knode::kube::parse_kubeconfig(text, kPath, c["name"].get<std::string>()));
        }
      }
    }
  }
  return 0;
}
