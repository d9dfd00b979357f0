// Fuzzes decoding of JSON objects, as the informers get them from the API server and as
// JSON manifests are read: nlohmann::json::parse (without exceptions, as informer.cc
// does), then api::decode_object on the document (or each element of an array / a
// List's items), which decodes, defaults and validates; and api::decode_manifest on the
// same bytes (its JSON branch when they start with '{' or '['). Errors travel as
// Result/Status: nothing is caught here.
#include <cstddef>
#include <cstdint>

#include "api_checks.h"

namespace {

void decode_one(const nlohmann::json& j) {
  auto o = knode::api::decode_object(j, "apiserver");
  if (o.ok()) knode::fuzz::check_decoded_object(*o);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = knode::fuzz::as_view(data, size);
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_discarded()) {
    decode_one(j);
    if (j.is_array()) {
      for (const auto& item : j) decode_one(item);
    } else if (j.is_object()) {
      auto items = j.find("items");
      if (items != j.end() && items->is_array()) {
        for (const auto& item : *items) decode_one(item);
      }
    }
  }
  auto m = knode::api::decode_manifest(text, "fuzz.json");
  if (m.ok()) {
    for (const auto& obj : m->objects) knode::fuzz::check_decoded_object(*obj);
  }
  return 0;
}
