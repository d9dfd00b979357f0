// Fuzzes manifest decoding of YAML text (multi-document, v1 List): api::decode_manifest,
// the entry point of --manifest-dir files and static pods, which parses with libyaml,
// resolves scalars (YAML 1.2 core schema + 1.1 octals), decodes every kind knode reads
// (Pod, Service, EndpointSlice, Endpoints, Node, ConfigMap, Secret, Namespace), defaults
// and validates each; then api::yaml_to_json (the config/kubeconfig loader's reader) on
// the same text. Errors travel as Result/Status: nothing is caught here.
#include <cstddef>
#include <cstdint>

#include "api_checks.h"
#include "knode/json_get.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = knode::fuzz::as_view(data, size);
  auto m = knode::api::decode_manifest(text, "fuzz.yaml");
  if (m.ok()) {
    for (const auto& obj : m->objects) knode::fuzz::check_decoded_object(*obj);
    for (const auto& r : m->rejected) {
      if (r.key) (void)r.key->str();
    }
  }
  auto j = knode::api::yaml_to_json(text, "fuzz.yaml");
  if (j.ok()) (void)knode::jget::dump(*j);
  return 0;
}
