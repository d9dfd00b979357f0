#include "knode/api/codec.h"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <regex>

#include "defaults.h"
#include "knode/api/field_codec.h"
#include "knode/json_get.h"
#include "validate.h"

namespace knode::api {
namespace {

using detail::json;

bool is_plain_int(const std::string& s, int64_t* out) {
  static const std::regex kDec("[-+]?[0-9]+");
  static const std::regex kHex("0x[0-9a-fA-F]+");
  static const std::regex kOct("0o[0-7]+");
  // YAML 1.1's octal, as Kubernetes' YAML reader (and kubectl) takes it: "0400" is 256,
  // the way modes (defaultMode: 0400) are written.
  static const std::regex kOct11("[-+]?0[0-7]+");
  try {
    if (std::regex_match(s, kOct11)) {
      *out = std::stoll(s, nullptr, 8);
      return true;
    }
    if (std::regex_match(s, kDec)) {
      *out = std::stoll(s, nullptr, 10);
      return true;
    }
    if (std::regex_match(s, kHex)) {
      *out = std::stoll(s.substr(2), nullptr, 16);
      return true;
    }
    if (std::regex_match(s, kOct)) {
      *out = std::stoll(s.substr(2), nullptr, 8);
      return true;
    }
  } catch (const std::out_of_range&) {
    return false;  // too large for an integer: stays a string/float
  }
  return false;
}

bool is_plain_float(const std::string& s, double* out) {
  static const std::regex kFloat("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?");
  if (std::regex_match(s, kFloat)) {
    *out = std::stod(s);
    return true;
  }
  if (s == ".inf" || s == ".Inf" || s == ".INF" || s == "+.inf") {
    *out = INFINITY;
    return true;
  }
  if (s == "-.inf" || s == "-.Inf" || s == "-.INF") {
    *out = -INFINITY;
    return true;
  }
  return false;
}

// YAML 1.2 core schema resolution of a plain scalar.
json resolve_plain(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  int64_t i;
  if (is_plain_int(s, &i)) return i;
  double f;
  if (is_plain_float(s, &f)) return f;
  return s;
}

// s with every byte that is not part of a valid UTF-8 sequence replaced by U+FFFD, as
// Go's encoding/json reads strings (the API server's, and sigs.k8s.io/yaml's, reading of
// a manifest): JSON text holds only valid UTF-8, so what knode writes back is what it read.
std::string valid_utf8(std::string s) {
  auto cont = [&](size_t i) { return i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80; };
  size_t i = 0;
  for (; i < s.size(); ++i) {
    if (static_cast<unsigned char>(s[i]) >= 0x80) break;
  }
  if (i == s.size()) return s;  // ASCII: the common case
  std::string out = s.substr(0, i);
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    if (c < 0x80) {
      n = 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
      n = cont(i + 1) ? 2 : 0;
    } else if (c >= 0xE0 && c <= 0xEF) {
      const auto c1 = i + 1 < s.size() ? static_cast<unsigned char>(s[i + 1]) : 0;
      const bool ok1 = c == 0xE0 ? (c1 >= 0xA0 && c1 <= 0xBF) : c == 0xED ? (c1 >= 0x80 && c1 <= 0x9F) : cont(i + 1);
      n = ok1 && cont(i + 2) ? 3 : 0;  // no overlong forms, no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      const auto c1 = i + 1 < s.size() ? static_cast<unsigned char>(s[i + 1]) : 0;
      const bool ok1 = c == 0xF0 ? (c1 >= 0x90 && c1 <= 0xBF) : c == 0xF4 ? (c1 >= 0x80 && c1 <= 0x8F) : cont(i + 1);
      n = ok1 && cont(i + 2) && cont(i + 3) ? 4 : 0;  // up to U+10FFFF
    }
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s, i, n);
      i += n;
    }
  }
  return out;
}

json yaml_node_to_json(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return nullptr;
    case YAML::NodeType::Scalar: {
      const std::string& tag = node.Tag();
      if (tag == "?") return resolve_plain(valid_utf8(node.Scalar()));
      if (tag == "tag:yaml.org,2002:int") {
        int64_t i;
        if (is_plain_int(node.Scalar(), &i)) return i;
      }
      if (tag == "tag:yaml.org,2002:bool") return resolve_plain(valid_utf8(node.Scalar()));
      if (tag == "tag:yaml.org,2002:null") return nullptr;
      return valid_utf8(node.Scalar());  // quoted, !!str or other tags: a string
    }
    case YAML::NodeType::Sequence: {
      json arr = json::array();
      for (const auto& item : node) arr.push_back(yaml_node_to_json(item));
      return arr;
    }
    case YAML::NodeType::Map: {
      json obj = json::object();
      for (const auto& kv : node) {
        obj[valid_utf8(kv.first.as<std::string>())] = yaml_node_to_json(kv.second);
      }
      return obj;
    }
    case YAML::NodeType::Undefined:
      break;
  }
  return nullptr;
}

template <typename T>
Object decode_as(const json& j) {
  T out;
  detail::Decoder d;
  d.decode(j, out);
  return Object(std::move(out));
}

struct KindEntry {
  const char* kind;
  const char* api_version;
  Object (*decode)(const json&);
};

constexpr KindEntry kKinds[] = {
    {Pod::kKind, Pod::kApiVersion, decode_as<Pod>},
    {Service::kKind, Service::kApiVersion, decode_as<Service>},
    {EndpointSlice::kKind, EndpointSlice::kApiVersion, decode_as<EndpointSlice>},
    {Endpoints::kKind, Endpoints::kApiVersion, decode_as<Endpoints>},
    {Node::kKind, Node::kApiVersion, decode_as<Node>},
    {ConfigMap::kKind, ConfigMap::kApiVersion, decode_as<ConfigMap>},
    {Secret::kKind, Secret::kApiVersion, decode_as<Secret>},
    {Namespace::kKind, Namespace::kApiVersion, decode_as<Namespace>},
};

std::string describe(const json& j) {
  // "Service default/kubia" from whatever the document says, for error messages.
  std::string kind = j.contains("kind") && j["kind"].is_string() ? j["kind"].get<std::string>()
                                                                  : "object";
  std::string name, ns;
  if (j.contains("metadata") && j["metadata"].is_object()) {
    const auto& m = j["metadata"];
    if (m.contains("name") && m["name"].is_string()) name = m["name"].get<std::string>();
    if (m.contains("namespace") && m["namespace"].is_string()) ns = m["namespace"].get<std::string>();
  }
  bool namespaced = kind != "Node" && kind != "Namespace";
  if (namespaced && ns.empty()) ns = "default";
  if (name.empty()) return kind + " <unnamed>";
  return kind + " " + (namespaced ? ns + "/" : "") + name;
}

}  // namespace

Result<json> yaml_to_json(std::string_view text, const std::string& filename) {
  try {
    YAML::Node node = YAML::Load(std::string(text));
    return yaml_node_to_json(node);
  } catch (const YAML::Exception& e) {
    return Status::Error(filename + ":" + std::to_string(e.mark.line + 1) + ":" +
                         std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
}

Result<Object> decode_object(const json& j, const std::string& context) {
  std::string prefix = context.empty() ? "" : context + ": ";
  if (!j.is_object()) {
    return Status::Error(prefix + "expected an object, got " + detail::json_type_name(j));
  }
  prefix += describe(j) + ": ";
  auto kind_it = j.find("kind");
  if (kind_it == j.end() || !kind_it->is_string()) return Status::Error(prefix + "kind: required");
  std::string kind = kind_it->get<std::string>();
  const KindEntry* entry = nullptr;
  for (const auto& e : kKinds) {
    if (kind == e.kind) entry = &e;
  }
  if (!entry) return Status::Error(prefix + "kind: unsupported kind \"" + kind + "\"");
  auto api_it = j.find("apiVersion");
  if (api_it == j.end() || !api_it->is_string()) {
    return Status::Error(prefix + "apiVersion: required");
  }
  if (api_it->get<std::string>() != entry->api_version) {
    return Status::Error(prefix + "apiVersion: \"" + api_it->get<std::string>() +
                         "\" is not supported for " + kind + " (want \"" + entry->api_version +
                         "\")");
  }
  try {
    Object obj = entry->decode(j);
    apply_defaults(obj);
    if (auto s = validate(obj); !s.ok()) return Status::Error(prefix + s.message());
    return obj;
  } catch (const detail::FieldError& e) {
    return Status::Error(prefix + e.path + ": " + e.message);
  }
}

Result<ManifestContents> decode_manifest(std::string_view data, const std::string& filename) {
  std::vector<json> docs;
  std::string_view trimmed = data;
  while (!trimmed.empty() && std::isspace(static_cast<unsigned char>(trimmed.front()))) {
    trimmed.remove_prefix(1);
  }
  if (!trimmed.empty() && (trimmed.front() == '{' || trimmed.front() == '[')) {
    try {
      json j = json::parse(data);
      docs.push_back(std::move(j));
    } catch (const json::parse_error& e) {
      return Status::Error(filename + ": " + e.what());
    }
  } else {
    try {
      for (const auto& node : YAML::LoadAll(std::string(data))) {
        json j = yaml_node_to_json(node);
        if (!j.is_null()) docs.push_back(std::move(j));
      }
    } catch (const YAML::Exception& e) {
      return Status::Error(filename + ":" + std::to_string(e.mark.line + 1) + ":" +
                           std::to_string(e.mark.column + 1) + ": " + e.msg);
    }
  }
  // A v1 List (or a JSON array) holds its objects under items.
  std::vector<json> items;
  for (auto& d : docs) {
    if (d.is_array()) {
      for (auto& x : d) items.push_back(std::move(x));
    } else if (jget::str(d, "kind") == "List" && d.contains("items")) {
      for (auto& x : d["items"]) items.push_back(std::move(x));
    } else {
      items.push_back(std::move(d));
    }
  }
  ManifestContents out;
  for (const auto& item : items) {
    auto obj = decode_object(item, filename);
    if (obj.ok()) {
      out.objects.push_back(std::make_shared<const Object>(std::move(*obj)));
      continue;
    }
    RejectedObject r;
    r.error = obj.error();
    // Name the object when the document names it, so its last good version can stay.
    if (item.is_object() && item.contains("kind") && item["kind"].is_string()) {
      std::string kind = item["kind"].get<std::string>();
      for (int k = 0; k < kKindCount; ++k) {
        if (kind != kind_name(static_cast<Kind>(k))) continue;
        const json* m = item.contains("metadata") ? &item["metadata"] : nullptr;
        if (m && m->is_object() && m->contains("name") && (*m)["name"].is_string()) {
          bool namespaced = kind != "Node" && kind != "Namespace";
          std::string ns = namespaced ? "default" : "";
          if (namespaced && m->contains("namespace") && (*m)["namespace"].is_string()) {
            ns = (*m)["namespace"].get<std::string>();
          }
          std::string name = (*m)["name"].get<std::string>();
          r.key = ObjectKey{static_cast<Kind>(k), ns.empty() ? name : ns + "/" + name};
        }
      }
    }
    out.rejected.push_back(std::move(r));
  }
  return out;
}

json to_json(const Object& o) {
  return std::visit(
      [](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        json j = json::object();
        j["apiVersion"] = T::kApiVersion;
        j["kind"] = T::kKind;
        auto body = detail::encode(x);
        if (body) j.update(*body);
        return j;
      },
      o);
}

std::string encode_json(const Object& o, int indent) { return jget::dump(to_json(o), indent); }

}  // namespace knode::api
