// The API server's protobuf encoding (application/vnd.kubernetes.protobuf), read for the
// kinds a node watches: Pods, Services, EndpointSlices, Nodes, ConfigMaps and Secrets.
//
// The wire schema is a subset of Kubernetes' own (common/kube/proto/*.proto: upstream's
// message names and field numbers, only the fields knode's structs list). Messages are
// not parsed into generated classes: a reader walks the wire format against those
// descriptors and writes the JSON the API server would have sent for the same object
// (Time as RFC 3339, Quantity as its string, IntOrString as a number or a string, Go's
// embedded structs flattened), which the JSON codec then decodes, defaults and
// validates as it does every object. Unknown fields are skipped, as in any protobuf
// reader. Whatever the bytes, these functions return (the server's bytes are outside
// input): malformed input is an error, nesting beyond 100 levels too.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "knode/api/object.h"
#include "knode/status.h"

namespace knode::kube::protobuf {

inline constexpr std::string_view kContentType = "application/vnd.kubernetes.protobuf";

// True for "application/vnd.kubernetes.protobuf" with or without parameters
// (";stream=watch").
bool is_protobuf(std::string_view content_type);

// Whether the schema covers this kind (all but Endpoints and Namespace, which knode does
// not watch).
bool supports(api::Kind kind);

// What a protobuf body carries: the "k8s\0" magic, then a runtime.Unknown with the type
// and the message's bytes.
struct Envelope {
  std::string api_version;  // "v1"
  std::string kind;         // "PodList", "Status"
  std::string_view raw;     // into the input
};
Result<Envelope> unwrap(std::string_view body);

// A list page: its resourceVersion and continue token, and each item's bytes (into the
// input). `kind` is the item kind; the envelope must hold its list.
struct ListBytes {
  std::string resource_version;
  std::string continue_token;
  std::vector<std::string_view> items;
};
Result<ListBytes> read_list(std::string_view body, api::Kind kind);

// One frame of a watch stream (meta.v1.WatchEvent, without the envelope): its type and
// the object's bytes with the envelope taken off.
struct WatchEventBytes {
  std::string type;  // ADDED, MODIFIED, DELETED, BOOKMARK, ERROR
  std::string kind;  // the object's, from its envelope ("Pod", "Status")
  std::string_view object;
};
Result<WatchEventBytes> read_watch_event(std::string_view frame);

// An object of `kind` (its message bytes) as the API server's JSON, kind and apiVersion
// included.
Result<nlohmann::json> object_json(std::string_view bytes, api::Kind kind);

// metadata.resourceVersion of an object's message bytes, read as far as they go ("" if
// they do not get there): the version an informer moves to past an object it cannot read.
std::string resource_version(std::string_view bytes);

// A meta.v1.Status (its message bytes) as JSON: code, reason, message, ...
Result<nlohmann::json> status_json(std::string_view bytes);

// Any message of the schema by its full name ("k8s.io.api.core.v1.Pod"), for tests.
Result<nlohmann::json> message_json(std::string_view bytes, const std::string& full_name);

}  // namespace knode::kube::protobuf
