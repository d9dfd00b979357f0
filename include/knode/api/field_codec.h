// The generic field-list codec: decodes JSON into any struct that lists its fields with
// KNODE_FIELDS (API objects, config files), and encodes it back.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "knode/api/box.h"
#include "knode/api/values.h"
#include "knode/log.h"
#include "knode/status.h"

namespace knode::api::detail {

using nlohmann::json;

// Thrown inside the decoder only; decode_object turns it into a Status.
struct FieldError {
  std::string path;
  std::string message;
};

const char* json_type_name(const json& j);

template <typename T, typename = void>
struct has_fields : std::false_type {};
template <typename T>
struct has_fields<T, std::void_t<decltype(std::declval<T&>().fields(std::declval<int&>()))>>
    : std::true_type {};

template <typename T>
struct is_optional : std::false_type {};
template <typename T>
struct is_optional<std::optional<T>> : std::true_type {};
template <typename T>
struct is_optional<Box<T>> : std::true_type {};
template <typename T>
struct is_vector : std::false_type {};
template <typename T>
struct is_vector<std::vector<T>> : std::true_type {};
template <typename T>
struct is_map : std::false_type {};
template <typename T>
struct is_map<std::map<std::string, T>> : std::true_type {};

class Decoder {
 public:
  template <typename T>
  void decode(const json& j, T& out);

  std::string path() const { return path_.empty() ? "<root>" : path_; }
  [[noreturn]] void fail(const std::string& message) const { throw FieldError{path(), message}; }

  // Field visitor used by KNODE_FIELDS.
  struct FieldVisitor {
    Decoder* d;
    const json* obj;
    size_t* matched;
    template <typename T>
    void operator()(const char* key, T& member, Always = {}) {
      auto it = obj->find(key);
      if (it == obj->end()) return;
      ++*matched;
      size_t mark = d->push_key(key);
      d->decode(*it, member);
      d->pop(mark);
    }
  };

  size_t push_key(const char* key) {
    size_t mark = path_.size();
    if (!path_.empty()) path_ += '.';
    path_ += key;
    return mark;
  }
  size_t push_index(size_t i) {
    size_t mark = path_.size();
    path_ += '[';
    path_ += std::to_string(i);
    path_ += ']';
    return mark;
  }
  void pop(size_t mark) { path_.resize(mark); }

 private:
  template <typename T>
  void decode_struct(const json& j, T& out);
  void note_unknown_fields(const json& j, const std::vector<std::string>& known);

  std::string path_;
};

void decode_scalar(Decoder& d, const json& j, std::string& out);
void decode_scalar(Decoder& d, const json& j, bool& out);
void decode_scalar(Decoder& d, const json& j, int32_t& out);
void decode_scalar(Decoder& d, const json& j, int64_t& out);
void decode_scalar(Decoder& d, const json& j, Quantity& out);
void decode_scalar(Decoder& d, const json& j, IntOrString& out);
void decode_scalar(Decoder& d, const json& j, Time& out);
void decode_scalar(Decoder& d, const json& j, Duration& out);

// Collects the JSON names a struct lists, for the unknown-field note.
struct KeyCollector {
  std::vector<std::string>* keys;
  template <typename T>
  void operator()(const char* key, T&, Always = {}) {
    keys->emplace_back(key);
  }
};

template <typename T>
void Decoder::decode_struct(const json& j, T& out) {
  if (!j.is_object()) fail(std::string("expected object, got ") + json_type_name(j));
  size_t matched = 0;
  FieldVisitor v{this, &j, &matched};
  out.fields(v);
  if (matched != j.size() && log::enabled(4)) {
    std::vector<std::string> known;
    KeyCollector kc{&known};
    out.fields(kc);
    note_unknown_fields(j, known);
  }
}

template <typename T>
void Decoder::decode(const json& j, T& out) {
  if constexpr (has_fields<T>::value) {
    decode_struct(j, out);
  } else if constexpr (is_optional<T>::value) {
    if (j.is_null()) {
      out.reset();
      return;
    }
    out.emplace();
    decode(j, *out);
  } else if constexpr (is_vector<T>::value) {
    out.clear();
    if (j.is_null()) return;
    if (!j.is_array()) fail(std::string("expected array, got ") + json_type_name(j));
    out.resize(j.size());
    for (size_t i = 0; i < j.size(); ++i) {
      size_t mark = push_index(i);
      decode(j[i], out[i]);
      pop(mark);
    }
  } else if constexpr (is_map<T>::value) {
    out.clear();
    if (j.is_null()) return;
    if (!j.is_object()) fail(std::string("expected object, got ") + json_type_name(j));
    for (auto it = j.begin(); it != j.end(); ++it) {
      size_t mark = push_key(it.key().c_str());
      decode(it.value(), out[it.key()]);
      pop(mark);
    }
  } else {
    decode_scalar(*this, j, out);
  }
}

// --- encoding: returns nothing for empty values (omitempty), as the API server does ---
std::optional<json> encode_scalar(const std::string& v);
std::optional<json> encode_scalar(bool v);
std::optional<json> encode_scalar(int32_t v);
std::optional<json> encode_scalar(int64_t v);
std::optional<json> encode_scalar(const Quantity& v);
std::optional<json> encode_scalar(const IntOrString& v);
std::optional<json> encode_scalar(const Time& v);
std::optional<json> encode_scalar(const Duration& v);

template <typename T>
std::optional<json> encode(const T& v);
template <typename T>
json encode_always(const T& v);

struct EncodeVisitor {
  json* obj;
  template <typename T>
  void operator()(const char* key, const T& member) {
    auto e = encode(member);
    if (e) (*obj)[key] = std::move(*e);
  }
  // A field the API server writes even when it is empty (no omitempty in its Go type).
  template <typename T>
  void operator()(const char* key, const T& member, Always) {
    (*obj)[key] = encode_always(member);
  }
};

// Inside arrays and optionals, values are always written, even when empty.
template <typename T>
json encode_always(const T& v) {
  auto e = encode(v);
  if (e) return std::move(*e);
  if constexpr (has_fields<T>::value || is_map<T>::value) return json::object();
  if constexpr (is_vector<T>::value) return json::array();
  if constexpr (std::is_same_v<T, std::string>) return json("");
  if constexpr (std::is_same_v<T, bool>) return json(false);
  if constexpr (std::is_integral_v<T>) return json(0);
  return json(nullptr);
}

template <typename T>
std::optional<json> encode(const T& v) {
  if constexpr (has_fields<T>::value) {
    json obj = json::object();
    EncodeVisitor ev{&obj};
    v.fields(ev);
    if (obj.empty()) return std::nullopt;
    return obj;
  } else if constexpr (is_optional<T>::value) {
    if (!v) return std::nullopt;
    return encode_always(*v);
  } else if constexpr (is_vector<T>::value) {
    if (v.empty()) return std::nullopt;
    json arr = json::array();
    for (const auto& e : v) arr.push_back(encode_always(e));
    return arr;
  } else if constexpr (is_map<T>::value) {
    if (v.empty()) return std::nullopt;
    json obj = json::object();
    for (const auto& [k, e] : v) obj[k] = encode_always(e);
    return obj;
  } else {
    return encode_scalar(v);
  }
}

}  // namespace knode::api::detail

namespace knode::api {
// Decodes JSON into any KNODE_FIELDS struct; the error names the field path.
template <typename T>
Status decode_fields(const nlohmann::json& j, T& out) {
  try {
    detail::Decoder d;
    d.decode(j, out);
    return Status::Ok();
  } catch (const detail::FieldError& e) {
    return Status::Error(e.path + ": " + e.message);
  }
}
}  // namespace knode::api
