#include "knode/api/codec.h"

#include <yaml.h>

#include <cmath>
#include <map>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <limits>
#include <string_view>

#include "defaults.h"
#include "knode/api/field_codec.h"
#include "knode/json_get.h"
#include "validate.h"

namespace knode::api {
namespace {

using detail::json;

bool all_of_digits(std::string_view s, int base) {
  if (s.empty()) return false;
  for (char c : s) {
    const bool ok = base == 16 ? std::isxdigit(static_cast<unsigned char>(c)) != 0
                               : (c >= '0' && c < static_cast<char>('0' + base));
    if (!ok) return false;
  }
  return true;
}

// digits (no sign) in base, negated when negative; false when out of int64's range.
bool parse_int(std::string_view digits, int base, bool negative, int64_t* out) {
  // Parsed as unsigned so that -9223372036854775808 fits.
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v, base);
  if (ec != std::errc() || end != digits.data() + digits.size()) return false;
  constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (negative) {
    if (v > kMax + 1) return false;
    *out = v == kMax + 1 ? std::numeric_limits<int64_t>::min() : -static_cast<int64_t>(v);
  } else {
    if (v > kMax) return false;
    *out = static_cast<int64_t>(v);
  }
  return true;
}

// A plain scalar that reads as an integer: [-+]?[0-9]+ (decimal), 0x[0-9a-fA-F]+, 0o[0-7]+
// and YAML 1.1's [-+]?0[0-7]+ (octal), as Kubernetes' YAML reader (and kubectl) takes it:
// "0400" is 256, the way modes (defaultMode: 0400) are written. Too large for an int64,
// it stays a string or float. (Hand-written: std::regex took most of a manifest's decode.)
bool is_plain_int(std::string_view s, int64_t* out) {
  if (s.size() > 2 && s[0] == '0' && s[1] == 'x') return all_of_digits(s.substr(2), 16) && parse_int(s.substr(2), 16, false, out);
  if (s.size() > 2 && s[0] == '0' && s[1] == 'o') return all_of_digits(s.substr(2), 8) && parse_int(s.substr(2), 8, false, out);
  const bool negative = !s.empty() && s[0] == '-';
  const std::string_view digits = !s.empty() && (s[0] == '-' || s[0] == '+') ? s.substr(1) : s;
  if (digits.size() >= 2 && digits[0] == '0' && all_of_digits(digits.substr(1), 8)) {
    return parse_int(digits.substr(1), 8, negative, out);
  }
  return all_of_digits(digits, 10) && parse_int(digits, 10, negative, out);
}

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?, and YAML's infinities. A finite
// number beyond a double's range stays a string (as Go's strconv refuses it); one too
// small reads as 0 or a subnormal, as Go reads it.
bool is_plain_float(const std::string& s, double* out) {
  if (s == ".inf" || s == ".Inf" || s == ".INF" || s == "+.inf") {
    *out = INFINITY;
    return true;
  }
  if (s == "-.inf" || s == "-.Inf" || s == "-.INF") {
    *out = -INFINITY;
    return true;
  }
  size_t i = 0;
  auto digits = [&] {
    const size_t from = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i - from;
  };
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (digits() == 0) return false;
  } else {
    if (digits() == 0) return false;
    if (i < s.size() && s[i] == '.') {
      ++i;
      digits();
    }
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    if (digits() == 0) return false;
  }
  if (i != s.size()) return false;
  const double d = std::strtod(s.c_str(), nullptr);  // the C locale: knode never sets one
  if (std::isinf(d)) return false;
  *out = d;
  return true;
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

// YAML text to JSON values through libyaml's event parser (the C library Go's YAML package
// was ported from, so what it refuses Go refuses too), one event at a time: nesting is
// bounded, aliases are expanded with a bound on the values they add, and nothing in the
// input can make it loop (yaml-cpp 0.7, used before, hung on a 322-byte flow mapping the
// fuzzer found). Scalars: plain ones resolve as resolve_plain, quoted and block ones are
// strings, !!int / !!bool / !!null as their tag says, any other tag a string.
class YamlReader {
 public:
  static constexpr size_t kMaxDepth = 512;
  static constexpr size_t kMaxValues = size_t{1} << 22;       // in all, aliases expanded
  static constexpr size_t kMaxAliasValues = size_t{1} << 18;  // what aliases add (a copy each)

  YamlReader(std::string_view text, const std::string& filename)
      : text_(valid_utf8(std::string(text))), filename_(filename) {
    yaml_parser_initialize(&parser_);
    yaml_parser_set_input_string(&parser_, reinterpret_cast<const unsigned char*>(text_.data()), text_.size());
  }
  ~YamlReader() { yaml_parser_delete(&parser_); }
  YamlReader(const YamlReader&) = delete;
  YamlReader& operator=(const YamlReader&) = delete;

  Result<std::vector<json>> documents() {
    std::vector<json> docs;
    Event e;
    if (!next(&e)) return error();
    if (e.get().type != YAML_STREAM_START_EVENT) return fail(e, "expected the start of a stream");
    for (;;) {
      if (!next(&e)) return error();
      if (e.get().type == YAML_STREAM_END_EVENT) return docs;
      if (e.get().type != YAML_DOCUMENT_START_EVENT) return fail(e, "expected a document");
      Event body;
      if (!next(&body)) return error();
      json doc;
      if (!value(body, 0, &doc)) return error();
      if (!next(&e)) return error();
      if (e.get().type != YAML_DOCUMENT_END_EVENT) return fail(e, "expected the end of the document");
      anchors_.clear();  // anchors do not cross documents
      docs.push_back(std::move(doc));
    }
  }

 private:
  // Owns one event.
  class Event {
   public:
    Event() = default;
    ~Event() { reset(); }
    Event(const Event&) = delete;
    Event& operator=(const Event&) = delete;
    yaml_event_t* slot() {
      reset();
      return &e_;
    }
    void set() { live_ = true; }
    const yaml_event_t& get() const { return e_; }
    void reset() {
      if (live_) yaml_event_delete(&e_);
      live_ = false;
    }

   private:
    yaml_event_t e_{};
    bool live_ = false;
  };

  bool next(Event* e) {
    if (!yaml_parser_parse(&parser_, e->slot())) {
      const auto& m = parser_.problem_mark;
      std::string what = parser_.problem ? parser_.problem : "invalid YAML";
      if (parser_.context) what += std::string(" (") + parser_.context + ")";
      error_ = at(m.line, m.column) + what;
      return false;
    }
    e->set();
    return true;
  }

  std::string at(size_t line, size_t column) const {
    return filename_ + ":" + std::to_string(line + 1) + ":" + std::to_string(column + 1) + ": ";
  }
  Status fail(const Event& e, const std::string& what) {
    failed(e, what);
    return error();
  }
  bool failed(const Event& e, const std::string& what) {
    error_ = at(e.get().start_mark.line, e.get().start_mark.column) + what;
    return false;
  }
  Status error() const { return Status::Error(error_); }

  static size_t count(const json& j) {
    size_t n = 1;
    if (j.is_structured()) {
      for (const auto& v : j) n += count(v);
    }
    return n;
  }

  static json scalar(const yaml_event_t& e) {
    const auto& sc = e.data.scalar;
    std::string text(reinterpret_cast<const char*>(sc.value), sc.length);
    const char* tag = reinterpret_cast<const char*>(sc.tag);
    if (tag == nullptr) {
      return sc.style == YAML_PLAIN_SCALAR_STYLE ? resolve_plain(text) : json(std::move(text));
    }
    const std::string_view t(tag);
    if (t == "tag:yaml.org,2002:int") {
      int64_t i;
      if (is_plain_int(text, &i)) return i;
    }
    if (t == "tag:yaml.org,2002:bool") return resolve_plain(text);
    if (t == "tag:yaml.org,2002:null") return nullptr;
    return text;
  }

  // Reads the value that starts with e (consumed) into *out.
  bool value(Event& e, size_t depth, json* out) {
    if (depth > kMaxDepth) return failed(e, "nested more than " + std::to_string(kMaxDepth) + " levels deep");
    if (++values_ > kMaxValues) return failed(e, "more than " + std::to_string(kMaxValues) + " values");
    const yaml_event_t& ev = e.get();
    std::string anchor;
    switch (ev.type) {
      case YAML_ALIAS_EVENT: {
        auto it = anchors_.find(reinterpret_cast<const char*>(ev.data.alias.anchor));
        if (it == anchors_.end()) return failed(e, "unknown anchor");
        alias_values_ += it->second.second;
        if (alias_values_ > kMaxAliasValues) {
          return failed(e, "aliases expand to more than " + std::to_string(kMaxAliasValues) + " values");
        }
        values_ += it->second.second;
        if (values_ > kMaxValues) return failed(e, "more than " + std::to_string(kMaxValues) + " values");
        *out = it->second.first;
        return true;
      }
      case YAML_SCALAR_EVENT:
        if (ev.data.scalar.anchor) anchor = reinterpret_cast<const char*>(ev.data.scalar.anchor);
        *out = scalar(ev);
        break;
      case YAML_SEQUENCE_START_EVENT: {
        if (ev.data.sequence_start.anchor) anchor = reinterpret_cast<const char*>(ev.data.sequence_start.anchor);
        *out = json::array();
        for (;;) {
          Event item;
          if (!next(&item)) return false;
          if (item.get().type == YAML_SEQUENCE_END_EVENT) break;
          json v;
          if (!value(item, depth + 1, &v)) return false;
          out->push_back(std::move(v));
        }
        break;
      }
      case YAML_MAPPING_START_EVENT: {
        if (ev.data.mapping_start.anchor) anchor = reinterpret_cast<const char*>(ev.data.mapping_start.anchor);
        *out = json::object();
        for (;;) {
          Event key;
          if (!next(&key)) return false;
          if (key.get().type == YAML_MAPPING_END_EVENT) break;
          json k;
          if (!value(key, depth + 1, &k)) return false;
          // JSON keys are strings: a scalar key is its text; a map or list key cannot be one.
          std::string name;
          if (key.get().type == YAML_SCALAR_EVENT) {
            const auto& sc = key.get().data.scalar;
            name.assign(reinterpret_cast<const char*>(sc.value), sc.length);
          } else if (k.is_string()) {
            name = k.get<std::string>();
          } else if (k.is_primitive()) {
            name = k.is_null() ? "null" : k.dump();
          } else {
            return failed(key, "a mapping key must be a scalar");
          }
          Event val;
          if (!next(&val)) return false;
          json v;
          if (!value(val, depth + 1, &v)) return false;
          (*out)[name] = std::move(v);  // a key given twice: the last one wins
        }
        break;
      }
      default:
        return failed(e, "unexpected YAML event");
    }
    if (!anchor.empty()) anchors_[anchor] = {*out, count(*out)};
    return true;
  }

  std::string text_;  // libyaml reads it in place
  std::string filename_;
  yaml_parser_t parser_{};
  std::map<std::string, std::pair<json, size_t>> anchors_;  // value, and how many values it holds
  size_t values_ = 0, alias_values_ = 0;
  std::string error_;
};

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

Result<std::vector<json>> yaml_documents(std::string_view text, const std::string& filename) {
  return YamlReader(text, filename).documents();
}

Result<json> yaml_to_json(std::string_view text, const std::string& filename) {
  auto docs = yaml_documents(text, filename);
  if (!docs.ok()) return docs.status();
  if (docs->empty()) return json(nullptr);
  return std::move(docs->front());
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
    } catch (const json::exception& e) {
      // A syntax error, or a number beyond a double's range (out_of_range 406): the file
      // is refused, as Go's encoding/json refuses it; nothing else may throw past here.
      return Status::Error(filename + ": " + e.what());
    }
  } else {
    auto parsed = yaml_documents(data, filename);
    if (!parsed.ok()) return parsed.status();
    for (auto& j : *parsed) {
      if (!j.is_null()) docs.push_back(std::move(j));
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
  return api::visit(
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

}  // namespace knode::api
