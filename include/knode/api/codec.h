// Decoding manifests (YAML, multi-document, or JSON) into typed objects, and encoding
// objects as JSON. Every decoded object is defaulted and validated as the API server
// would; bad objects are reported by file, object and field and left out.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "knode/api/object.h"
#include "knode/status.h"

namespace knode::api {

struct RejectedObject {
  std::optional<ObjectKey> key;  // when the object got far enough to be named
  std::string error;             // "kubia-svc.yaml: Service default/kubia: spec.ports[0].port: ..."
};

struct ManifestContents {
  std::vector<ObjectPtr> objects;
  std::vector<RejectedObject> rejected;
};

// Decodes every document of a manifest file. A syntax error (unparseable YAML/JSON)
// fails the whole file; a bad object only rejects that object.
Result<ManifestContents> decode_manifest(std::string_view data, const std::string& filename);

// Decodes, defaults and validates one object from parsed JSON. `context` prefixes errors
// (usually the file name).
Result<Object> decode_object(const nlohmann::json& j, const std::string& context);

nlohmann::json to_json(const Object& o);
std::string encode_json(const Object& o, int indent = -1);

// Parses YAML text (every document of it) into JSON values with libyaml: plain scalars
// resolved with the YAML 1.2 core schema (and 1.1 octals), quoted ones strings, aliases
// expanded (adding at most 256K values; 4M in all), nesting at most 512 deep, bytes that
// are not UTF-8 read as U+FFFD. Errors are "<filename>:<line>:<column>: <problem>".
Result<std::vector<nlohmann::json>> yaml_documents(std::string_view text, const std::string& filename);
// The first document of the text (null if it has none); for the config and kubeconfig loaders.
Result<nlohmann::json> yaml_to_json(std::string_view text, const std::string& filename);

// s with every byte that is not part of a valid UTF-8 sequence replaced by U+FFFD, as
// Go's encoding/json writes and reads strings.
std::string valid_utf8(std::string s);

}  // namespace knode::api
