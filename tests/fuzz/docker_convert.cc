// Fuzzes the mapping of Docker Engine API answers to the runtime seam's values
// (kubelet/docker/convert.h), as DockerRuntime applies it to dockerd's JSON:
// docker::negotiate_api_version (GET /version), sandbox_from_list / container_from_list /
// state_from_list (GET /containers/json items, with parse_name on their names),
// sandbox_status_from_inspect / container_status_from_inspect / sandbox_state_of
// (GET /containers/{id}/json, with an image's inspect), image_from_json / image_ref_of
// (GET /images/...), stats_from_json (GET /containers/{id}/stats), split_labels / owned /
// label_of on the labels, and pull_params on the image reference.
//
// Input: one JSON document. An array is taken as a list answer (each item goes through
// everything); an object's "_image" member, when present, is used as the image inspect.
// DockerRuntime catches no exception around these calls, so none is caught here: a
// json::exception escaping one of them would end the kubelet.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "docker/convert.h"  // kubelet/ (private to knode_docker)
#include "fuzz_util.h"

namespace {

using nlohmann::json;
namespace docker = knode::docker;

std::string str_at(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

void one(const json& j) {
  (void)docker::negotiate_api_version(j);
  if (auto s = docker::sandbox_from_list(j)) (void)s->id;
  if (auto c = docker::container_from_list(j)) (void)c->id;
  (void)docker::state_from_list(str_at(j, "State"));
  if (j.is_object()) {
    if (auto names = j.find("Names"); names != j.end() && names->is_array()) {
      for (const auto& n : *names) {
        if (n.is_string()) (void)docker::parse_name(n.get<std::string>());
      }
    }
    (void)docker::parse_name(str_at(j, "Name"));
  }
  const std::vector<std::string> ips = {"10.244.0.5", "fd00::5"};
  (void)docker::sandbox_status_from_inspect(j, ips);
  static const json kNoImage;
  const json& image = j.is_object() && j.contains("_image") ? j["_image"] : kNoImage;
  (void)docker::container_status_from_inspect(j, image);
  (void)docker::sandbox_state_of(j);
  (void)docker::image_from_json(j);
  (void)docker::image_ref_of(j);
  (void)docker::stats_from_json("0123456789ab", j, 4096);

  if (j.is_object()) {
    for (const char* where : {"Labels", "Config"}) {
      const json* labels = j.contains(where) ? &j[where] : nullptr;
      if (labels && std::string(where) == "Config" && labels->is_object() && labels->contains("Labels")) {
        labels = &(*labels)["Labels"];
      }
      if (!labels) continue;
      knode::runtime::Labels l, a;
      docker::split_labels(*labels, &l, &a);
      (void)docker::owned(*labels);
      (void)docker::label_of(*labels, docker::kTypeLabel);
    }
    const std::string ref = str_at(j, "Image");
    if (!ref.empty()) (void)docker::pull_params(ref);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const json j = json::parse(knode::fuzz::as_view(data, size), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  one(j);
  if (j.is_array()) {
    for (const auto& item : j) one(item);
  }
  return 0;
}
