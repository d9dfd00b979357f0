#include "knode/api/field_codec.h"
#include "knode/json_get.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace knode::api::detail {

const char* json_type_name(const json& j) {
  switch (j.type()) {
    case json::value_t::null: return "null";
    case json::value_t::object: return "object";
    case json::value_t::array: return "array";
    case json::value_t::string: return "string";
    case json::value_t::boolean: return "boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "integer";
    case json::value_t::number_float: return "number";
    default: return "value";
  }
}

void Decoder::note_unknown_fields(const json& j, const std::vector<std::string>& known) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (std::find(known.begin(), known.end(), it.key()) != known.end()) continue;
    size_t mark = push_key(it.key().c_str());
    KLOGV(4, "ignoring unknown field").kv("field", path());
    pop(mark);
  }
}

void decode_scalar(Decoder& d, const json& j, std::string& out) {
  if (j.is_null()) {
    out.clear();
    return;
  }
  if (!j.is_string()) d.fail(std::string("expected string, got ") + json_type_name(j));
  out = j.get<std::string>();
}

void decode_scalar(Decoder& d, const json& j, bool& out) {
  if (j.is_null()) {
    out = false;
    return;
  }
  if (!j.is_boolean()) d.fail(std::string("expected boolean, got ") + json_type_name(j));
  out = j.get<bool>();
}

namespace {
int64_t integer_of(Decoder& d, const json& j) {
  if (j.is_number_integer()) return j.get<int64_t>();
  if (j.is_number_unsigned()) {
    auto u = j.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) d.fail("integer out of range");
    return static_cast<int64_t>(u);
  }
  if (j.is_number_float()) {
    double f = j.get<double>();
    if (std::floor(f) == f && std::fabs(f) < 9.2e18) return static_cast<int64_t>(f);
    d.fail("expected integer, got fractional number " + jget::dump(j));
  }
  d.fail(std::string("expected integer, got ") + json_type_name(j));
}
}  // namespace

void decode_scalar(Decoder& d, const json& j, int32_t& out) {
  if (j.is_null()) {
    out = 0;
    return;
  }
  int64_t v = integer_of(d, j);
  if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max()) {
    d.fail(std::to_string(v) + " does not fit in a 32-bit integer");
  }
  out = static_cast<int32_t>(v);
}

void decode_scalar(Decoder& d, const json& j, int64_t& out) {
  out = j.is_null() ? 0 : integer_of(d, j);
}

void decode_scalar(Decoder& d, const json& j, Quantity& out) {
  std::string text;
  if (j.is_null()) {
    out = Quantity();
    return;
  }
  if (j.is_string()) {
    text = j.get<std::string>();
  } else if (j.is_number()) {
    text = jget::dump(j);
  } else {
    d.fail(std::string("expected quantity, got ") + json_type_name(j));
  }
  std::string err;
  auto q = Quantity::Parse(text, &err);
  if (!q) d.fail(err);
  out = *q;
}

void decode_scalar(Decoder& d, const json& j, IntOrString& out) {
  if (j.is_null()) {
    out = IntOrString();
  } else if (j.is_string()) {
    out = IntOrString::String(j.get<std::string>());
  } else if (j.is_number()) {
    int32_t v;
    decode_scalar(d, j, v);
    out = IntOrString::Int(v);
  } else {
    d.fail(std::string("expected integer or string, got ") + json_type_name(j));
  }
}

void decode_scalar(Decoder& d, const json& j, Time& out) {
  if (j.is_null()) {
    out = Time();
    return;
  }
  if (!j.is_string()) d.fail(std::string("expected RFC 3339 time, got ") + json_type_name(j));
  auto t = Time::Parse(j.get<std::string>());
  if (!t) d.fail("\"" + j.get<std::string>() + "\" is not an RFC 3339 time");
  out = *t;
}

void decode_scalar(Decoder& d, const json& j, Duration& out) {
  if (j.is_null()) {
    out = Duration();
    return;
  }
  if (!j.is_string()) d.fail(std::string("expected duration like \"30s\", got ") + json_type_name(j));
  auto v = Duration::Parse(j.get<std::string>());
  if (!v) d.fail("\"" + j.get<std::string>() + "\" is not a duration (e.g. \"30s\", \"1m\", \"500ms\")");
  out = *v;
}

std::optional<json> encode_scalar(const Duration& v) {
  if (v.nanos() == 0) return std::nullopt;
  return json(v.str());
}

std::optional<json> encode_scalar(const std::string& v) {
  if (v.empty()) return std::nullopt;
  return json(v);
}
std::optional<json> encode_scalar(bool v) {
  if (!v) return std::nullopt;
  return json(true);
}
std::optional<json> encode_scalar(int32_t v) {
  if (v == 0) return std::nullopt;
  return json(v);
}
std::optional<json> encode_scalar(int64_t v) {
  if (v == 0) return std::nullopt;
  return json(v);
}
std::optional<json> encode_scalar(const Quantity& v) {
  if (v.empty()) return std::nullopt;
  return json(v.str());
}
std::optional<json> encode_scalar(const IntOrString& v) {
  if (v.empty()) return std::nullopt;
  if (v.is_int()) return json(v.int_value());
  return json(v.str_value());
}
// metav1.Time goes on the wire in whole seconds (RFC 3339), as the API server writes it.
std::optional<json> encode_scalar(const Time& v) {
  if (!v.is_set()) return std::nullopt;
  return json(Time::FromUnixNanos(v.unix_seconds() * 1000000000).str());
}

}  // namespace knode::api::detail
