#include "knode/kube/protobuf.h"

#include <google/protobuf/descriptor.h>

#include <cstring>

#include <nlohmann/json.hpp>

#include "common/kube/proto/core.pb.h"
#include "common/kube/proto/discovery.pb.h"
#include "common/kube/proto/meta.pb.h"
#include "common/kube/proto/options.pb.h"
#include "common/kube/proto/runtime.pb.h"
#include "knode/api/base64.h"
#include "knode/api/codec.h"
#include "knode/api/values.h"
#include "knode/kube/informer.h"

namespace knode::kube::protobuf {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using nlohmann::json;

namespace {

constexpr std::string_view kMagic{"k8s\0", 4};
constexpr int kMaxDepth = 100;

// ---- the wire format ----

enum WireType { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kStartGroup = 3, kEndGroup = 4, kFixed32 = 5 };

// Thrown inside this file only; the entry points turn it into a Status.
struct WireError {
  std::string message;
};

class Reader {
 public:
  explicit Reader(std::string_view data) : p_(data.data()), end_(data.data() + data.size()) {}
  bool done() const { return p_ == end_; }

  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ == end_) throw WireError{"a varint runs past the end"};
      const auto b = static_cast<uint8_t>(*p_++);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    throw WireError{"a varint over 10 bytes"};
  }
  uint64_t fixed(int bytes) {
    if (end_ - p_ < bytes) throw WireError{"a fixed-width value runs past the end"};
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(p_[i])) << (8 * i);
    p_ += bytes;
    return v;
  }
  std::string_view bytes() {
    const uint64_t n = varint();
    if (n > static_cast<uint64_t>(end_ - p_)) throw WireError{"a length-delimited field runs past the end"};
    std::string_view v(p_, n);
    p_ += n;
    return v;
  }
  // Reads a tag: field number and wire type.
  std::pair<uint32_t, int> tag() {
    const uint64_t t = varint();
    const uint64_t number = t >> 3;
    if (number == 0 || number > (1u << 29) - 1) throw WireError{"a field number out of range"};
    return {static_cast<uint32_t>(number), static_cast<int>(t & 7)};
  }
  void skip(int wire_type) {
    switch (wire_type) {
      case kVarint:
        varint();
        return;
      case kFixed64:
        fixed(8);
        return;
      case kLengthDelimited:
        bytes();
        return;
      case kFixed32:
        fixed(4);
        return;
      default:
        // Groups are proto1's; nothing in Kubernetes writes them.
        throw WireError{"wire type " + std::to_string(wire_type) + " is not read"};
    }
  }

 private:
  const char* p_;
  const char* end_;
};

// ---- Kubernetes' special messages ----

bool is_inline(const FieldDescriptor* f) { return f->options().GetExtension(knode::kube::inline_); }

// meta.v1.Time and MicroTime: {seconds, nanos}. Go writes the zero time as an empty
// message and reads an empty one as zero: null here, as in JSON (the Unix epoch itself is
// written with its fields, and read as a time). JSON has seconds (Time: the nanoseconds
// are not read, as Go's JSON drops them) or microseconds (MicroTime).
json time_json(std::string_view bytes, bool micro) {
  if (bytes.empty()) return nullptr;
  Reader r(bytes);
  int64_t seconds = 0;
  int64_t nanos = 0;
  while (!r.done()) {
    auto [n, wt] = r.tag();
    if (n == 1 && wt == kVarint) {
      seconds = static_cast<int64_t>(r.varint());
    } else if (n == 2 && wt == kVarint) {
      nanos = static_cast<int32_t>(r.varint());
    } else {
      r.skip(wt);
    }
  }
  // What knode's Time holds (nanoseconds since 1970 in 64 bits): the years 1678 to 2261.
  if (seconds < -9223372035LL || seconds > 9223372035LL) throw WireError{"a time out of range"};
  if (micro && (nanos < 0 || nanos > 999999999)) throw WireError{"a time's nanoseconds out of range"};
  const int64_t frac = micro ? nanos / 1000 * 1000 : 0;
  return api::Time::FromUnixNanos(seconds * 1000000000LL + frac).str();
}

// resource.Quantity: {string}.
json quantity_json(std::string_view bytes) {
  Reader r(bytes);
  std::string s = "0";  // the zero Quantity, as Go writes it in JSON
  while (!r.done()) {
    auto [n, wt] = r.tag();
    if (n == 1 && wt == kLengthDelimited) {
      s = std::string(r.bytes());
    } else {
      r.skip(wt);
    }
  }
  return s;
}

// intstr.IntOrString: {type, intVal, strVal}.
json int_or_string_json(std::string_view bytes) {
  Reader r(bytes);
  int64_t type = 0;
  int32_t i = 0;
  std::string s;
  while (!r.done()) {
    auto [n, wt] = r.tag();
    if (n == 1 && wt == kVarint) {
      type = static_cast<int64_t>(r.varint());
    } else if (n == 2 && wt == kVarint) {
      i = static_cast<int32_t>(r.varint());
    } else if (n == 3 && wt == kLengthDelimited) {
      s = api::valid_utf8(std::string(r.bytes()));
    } else {
      r.skip(wt);
    }
  }
  if (type == 1) return s;
  return i;
}

// ---- messages to JSON ----

void message_into(std::string_view bytes, const Descriptor* d, json& obj, int depth);

json message_value(std::string_view bytes, const Descriptor* d, int depth) {
  if (depth > kMaxDepth) throw WireError{"nesting over " + std::to_string(kMaxDepth) + " levels"};
  const std::string& name = d->full_name();
  if (name == "k8s.io.apimachinery.pkg.apis.meta.v1.Time") return time_json(bytes, false);
  if (name == "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime") return time_json(bytes, true);
  if (name == "k8s.io.apimachinery.pkg.api.resource.Quantity") return quantity_json(bytes);
  if (name == "k8s.io.apimachinery.pkg.util.intstr.IntOrString") return int_or_string_json(bytes);
  json obj = json::object();
  message_into(bytes, d, obj, depth);
  return obj;
}

// A scalar of field `f` read with wire type `wt`.
json scalar_value(Reader& r, const FieldDescriptor* f, int wt) {
  auto expect = [&](int want) {
    if (wt != want) throw WireError{"field " + f->name() + " has wire type " + std::to_string(wt)};
  };
  switch (f->type()) {
    case FieldDescriptor::TYPE_BOOL:
      expect(kVarint);
      return r.varint() != 0;
    case FieldDescriptor::TYPE_INT32:
      expect(kVarint);
      return static_cast<int32_t>(r.varint());
    case FieldDescriptor::TYPE_INT64:
      expect(kVarint);
      return static_cast<int64_t>(r.varint());
    case FieldDescriptor::TYPE_UINT32:
      expect(kVarint);
      return static_cast<uint32_t>(r.varint());
    case FieldDescriptor::TYPE_UINT64:
      expect(kVarint);
      return r.varint();
    case FieldDescriptor::TYPE_SINT32:
    case FieldDescriptor::TYPE_SINT64: {
      expect(kVarint);
      const uint64_t v = r.varint();
      return static_cast<int64_t>((v >> 1) ^ (~(v & 1) + 1));
    }
    case FieldDescriptor::TYPE_FIXED32:
      expect(kFixed32);
      return static_cast<uint32_t>(r.fixed(4));
    case FieldDescriptor::TYPE_SFIXED32:
      expect(kFixed32);
      return static_cast<int32_t>(r.fixed(4));
    case FieldDescriptor::TYPE_FIXED64:
      expect(kFixed64);
      return r.fixed(8);
    case FieldDescriptor::TYPE_SFIXED64:
      expect(kFixed64);
      return static_cast<int64_t>(r.fixed(8));
    case FieldDescriptor::TYPE_DOUBLE: {
      expect(kFixed64);
      const uint64_t v = r.fixed(8);
      double d;
      std::memcpy(&d, &v, sizeof d);
      return d;
    }
    case FieldDescriptor::TYPE_FLOAT: {
      expect(kFixed32);
      const auto v = static_cast<uint32_t>(r.fixed(4));
      float x;
      std::memcpy(&x, &v, sizeof x);
      return x;
    }
    case FieldDescriptor::TYPE_STRING:
      // Go's JSON writes a byte that is not UTF-8 as U+FFFD: so do we, so that both
      // encodings give the same object (and the runtime's proto3 strings stay valid).
      expect(kLengthDelimited);
      return api::valid_utf8(std::string(r.bytes()));
    case FieldDescriptor::TYPE_BYTES:
      // []byte is base64 in the API's JSON.
      expect(kLengthDelimited);
      return api::base64_encode(r.bytes());
    default:
      throw WireError{"field " + f->name() + " has a type this reader does not know"};
  }
}

bool packable(const FieldDescriptor* f) {
  return f->is_repeated() && f->cpp_type() != FieldDescriptor::CPPTYPE_STRING &&
         f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE;
}

// A map entry {key = 1, value = 2} into obj[key].
void map_entry_into(std::string_view bytes, const FieldDescriptor* f, json& obj, int depth) {
  const Descriptor* entry = f->message_type();
  const FieldDescriptor* kf = entry->map_key();
  const FieldDescriptor* vf = entry->map_value();
  Reader r(bytes);
  std::string key;
  json value;
  bool have_value = false;
  while (!r.done()) {
    auto [n, wt] = r.tag();
    if (n == 1) {
      json k = scalar_value(r, kf, wt);
      key = k.is_string() ? k.get<std::string>() : k.dump();
    } else if (n == 2) {
      if (vf->type() == FieldDescriptor::TYPE_MESSAGE) {
        if (wt != kLengthDelimited) throw WireError{"map value of " + f->name() + " is not a message"};
        value = message_value(r.bytes(), vf->message_type(), depth + 1);
      } else {
        value = scalar_value(r, vf, wt);
      }
      have_value = true;
    } else {
      r.skip(wt);
    }
  }
  if (!have_value) {
    // An absent value is the type's zero.
    if (vf->type() == FieldDescriptor::TYPE_MESSAGE) {
      value = message_value({}, vf->message_type(), depth + 1);
    } else if (vf->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
      value = "";
    } else if (vf->cpp_type() == FieldDescriptor::CPPTYPE_BOOL) {
      value = false;
    } else {
      value = 0;
    }
  }
  json& m = obj[f->name()];
  if (!m.is_object()) m = json::object();
  m[key] = std::move(value);
}

void message_into(std::string_view bytes, const Descriptor* d, json& obj, int depth) {
  if (depth > kMaxDepth) throw WireError{"nesting over " + std::to_string(kMaxDepth) + " levels"};
  Reader r(bytes);
  while (!r.done()) {
    auto [n, wt] = r.tag();
    const FieldDescriptor* f = d->FindFieldByNumber(static_cast<int>(n));
    if (!f) {
      r.skip(wt);
      continue;
    }
    if (f->is_map()) {
      if (wt != kLengthDelimited) throw WireError{"map field " + f->name() + " is not length-delimited"};
      map_entry_into(r.bytes(), f, obj, depth);
      continue;
    }
    if (f->type() == FieldDescriptor::TYPE_MESSAGE) {
      if (wt != kLengthDelimited) throw WireError{"field " + f->name() + " is not a message"};
      std::string_view b = r.bytes();
      if (is_inline(f)) {
        message_into(b, f->message_type(), obj, depth + 1);
      } else if (f->is_repeated()) {
        json& a = obj[f->name()];
        if (!a.is_array()) a = json::array();
        a.push_back(message_value(b, f->message_type(), depth + 1));
      } else {
        json v = message_value(b, f->message_type(), depth + 1);
        auto it = obj.find(f->name());
        if (v.is_null()) {
          obj.erase(f->name());  // a zero Time: absent, as in JSON
        } else if (it != obj.end() && it->is_object() && v.is_object()) {
          it->update(v, true);  // a message field seen twice merges, as protobuf's readers do
        } else {
          obj[f->name()] = std::move(v);
        }
      }
      continue;
    }
    if (f->is_repeated()) {
      json& a = obj[f->name()];
      if (!a.is_array()) a = json::array();
      if (wt == kLengthDelimited && packable(f)) {
        Reader packed(r.bytes());
        const int element = f->type() == FieldDescriptor::TYPE_DOUBLE || f->type() == FieldDescriptor::TYPE_FIXED64 ||
                                    f->type() == FieldDescriptor::TYPE_SFIXED64
                                ? kFixed64
                            : f->type() == FieldDescriptor::TYPE_FLOAT || f->type() == FieldDescriptor::TYPE_FIXED32 ||
                                    f->type() == FieldDescriptor::TYPE_SFIXED32
                                ? kFixed32
                                : kVarint;
        while (!packed.done()) a.push_back(scalar_value(packed, f, element));
      } else {
        a.push_back(scalar_value(r, f, wt));
      }
      continue;
    }
    obj[f->name()] = scalar_value(r, f, wt);
  }
}

const Descriptor* item_descriptor(api::Kind kind) {
  switch (kind) {
    case api::Kind::kPod:
      return k8s::io::api::core::v1::Pod::descriptor();
    case api::Kind::kService:
      return k8s::io::api::core::v1::Service::descriptor();
    case api::Kind::kEndpointSlice:
      return k8s::io::api::discovery::v1::EndpointSlice::descriptor();
    case api::Kind::kNode:
      return k8s::io::api::core::v1::Node::descriptor();
    case api::Kind::kConfigMap:
      return k8s::io::api::core::v1::ConfigMap::descriptor();
    case api::Kind::kSecret:
      return k8s::io::api::core::v1::Secret::descriptor();
    default:
      return nullptr;
  }
}

template <typename F>
auto guarded(const char* what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const WireError& e) {
    return Status::Error(std::string(what) + ": " + e.message, EBADMSG);
  }
}

}  // namespace

bool is_protobuf(std::string_view content_type) {
  if (content_type.substr(0, kContentType.size()) != kContentType) return false;
  const std::string_view rest = content_type.substr(kContentType.size());
  return rest.empty() || rest.front() == ';' || rest.front() == ' ';
}

bool supports(api::Kind kind) { return item_descriptor(kind) != nullptr; }

Result<Envelope> unwrap(std::string_view body) {
  return guarded("protobuf envelope", [&]() -> Result<Envelope> {
    if (body.substr(0, kMagic.size()) != kMagic) throw WireError{"no k8s magic prefix"};
    Reader r(body.substr(kMagic.size()));
    Envelope e;
    bool have_raw = false;
    while (!r.done()) {
      auto [n, wt] = r.tag();
      if (n == 1 && wt == kLengthDelimited) {  // typeMeta
        Reader t(r.bytes());
        while (!t.done()) {
          auto [tn, twt] = t.tag();
          if (tn == 1 && twt == kLengthDelimited) {
            e.api_version = std::string(t.bytes());
          } else if (tn == 2 && twt == kLengthDelimited) {
            e.kind = std::string(t.bytes());
          } else {
            t.skip(twt);
          }
        }
      } else if (n == 2 && wt == kLengthDelimited) {  // raw
        e.raw = r.bytes();
        have_raw = true;
      } else if (n == 3 && wt == kLengthDelimited) {  // contentEncoding
        if (std::string_view enc = r.bytes(); !enc.empty()) {
          throw WireError{"content encoding " + std::string(enc) + " is not read"};
        }
      } else {
        r.skip(wt);
      }
    }
    if (!have_raw && e.kind.empty()) throw WireError{"an empty envelope"};
    return e;
  });
}

Result<ListBytes> read_list(std::string_view body, api::Kind kind) {
  auto env = unwrap(body);
  if (!env.ok()) return env.status();
  if (!supports(kind)) return Status::Error(std::string("no protobuf schema for ") + api::kind_name(kind), EINVAL);
  const std::string list = std::string(kind_info(kind).kind) + "List";
  if (env->kind != list) {
    return Status::Error("expected a " + list + ", got a " +
                             (env->kind.empty() ? std::string("message of no kind") : env->kind),
                         EBADMSG);
  }
  return guarded(list.c_str(), [&]() -> Result<ListBytes> {
    ListBytes out;
    Reader r(env->raw);
    while (!r.done()) {
      auto [n, wt] = r.tag();
      if (n == 1 && wt == kLengthDelimited) {  // ListMeta
        Reader m(r.bytes());
        while (!m.done()) {
          auto [mn, mwt] = m.tag();
          if (mn == 2 && mwt == kLengthDelimited) {
            out.resource_version = std::string(m.bytes());
          } else if (mn == 3 && mwt == kLengthDelimited) {
            out.continue_token = std::string(m.bytes());
          } else {
            m.skip(mwt);
          }
        }
      } else if (n == 2 && wt == kLengthDelimited) {
        out.items.push_back(r.bytes());
      } else {
        r.skip(wt);
      }
    }
    return out;
  });
}

Result<WatchEventBytes> read_watch_event(std::string_view frame) {
  auto ev = guarded("watch event", [&]() -> Result<WatchEventBytes> {
    WatchEventBytes out;
    bool have_object = false;
    Reader r(frame);
    while (!r.done()) {
      auto [n, wt] = r.tag();
      if (n == 1 && wt == kLengthDelimited) {
        out.type = std::string(r.bytes());
      } else if (n == 2 && wt == kLengthDelimited) {  // RawExtension
        Reader x(r.bytes());
        while (!x.done()) {
          auto [xn, xwt] = x.tag();
          if (xn == 1 && xwt == kLengthDelimited) {
            out.object = x.bytes();
            have_object = true;
          } else {
            x.skip(xwt);
          }
        }
      } else {
        r.skip(wt);
      }
    }
    if (out.type.empty()) throw WireError{"no event type"};
    if (!have_object) throw WireError{"no object"};
    return out;
  });
  if (!ev.ok()) return ev;
  // The object is encoded as a whole body would be: the magic, then the envelope.
  if (ev->object.substr(0, kMagic.size()) == kMagic) {
    auto env = unwrap(ev->object);
    if (!env.ok()) return env.status().Wrap("watch event");
    ev->object = env->raw;
    ev->kind = std::move(env->kind);
  }
  return ev;
}

std::string resource_version(std::string_view bytes) {
  try {
    Reader r(bytes);
    while (!r.done()) {
      auto [n, wt] = r.tag();
      if (n != 1 || wt != kLengthDelimited) {
        r.skip(wt);
        continue;
      }
      Reader m(r.bytes());  // ObjectMeta
      while (!m.done()) {
        auto [mn, mwt] = m.tag();
        if (mn == 6 && mwt == kLengthDelimited) return std::string(m.bytes());
        m.skip(mwt);
      }
    }
  } catch (const WireError&) {
  }
  return "";
}

Result<json> message_json(std::string_view bytes, const std::string& full_name) {
  const Descriptor* d = google::protobuf::DescriptorPool::generated_pool()->FindMessageTypeByName(full_name);
  if (!d) return Status::Error("no message " + full_name + " in the schema", EINVAL);
  return guarded(full_name.c_str(), [&]() -> Result<json> { return message_value(bytes, d, 0); });
}

Result<json> object_json(std::string_view bytes, api::Kind kind) {
  const Descriptor* d = item_descriptor(kind);
  if (!d) return Status::Error(std::string("no protobuf schema for ") + api::kind_name(kind), EINVAL);
  const KindInfo& names = kind_info(kind);  // where the kind lives: its kind and apiVersion
  return guarded(names.kind, [&]() -> Result<json> {
    json obj = json::object();
    obj["apiVersion"] = names.api_version;
    obj["kind"] = names.kind;
    message_into(bytes, d, obj, 0);
    return obj;
  });
}

Result<json> status_json(std::string_view bytes) {
  return message_json(bytes, k8s::io::apimachinery::pkg::apis::meta::v1::Status::descriptor()->full_name());
}

}  // namespace knode::kube::protobuf
