#include "nftables/udata.h"

#include <cstring>

namespace knode::nftables::udata {
namespace {

// libnftnl/udata.h's numbering.
enum : uint8_t { kSetKeyByteorder = 0, kSetDataByteorder, kSetMergeElements, kSetKeyTypeof, kSetDataTypeof,
                 kSetExpr, kSetDataInterval, kSetComment };
enum : uint8_t { kElemComment = 0, kElemFlags = 1 };

}  // namespace

bool put(Bytes& out, uint8_t type, std::string_view value) {
  if (value.size() > kMaxValueLength) return false;
  out.push_back(static_cast<char>(type));
  out.push_back(static_cast<char>(value.size()));
  out.append(value);
  return true;
}

void put_u32(Bytes& out, uint8_t type, uint32_t host_value) {
  put(out, type, std::string_view(reinterpret_cast<const char*>(&host_value), 4));
}

std::string clamp_comment(std::string_view s) {
  s = s.substr(0, s.find('\0'));
  if (s.size() <= kMaxCommentLength) return std::string(s);
  size_t n = kMaxCommentLength;
  // Back off continuation bytes (10xxxxxx) so a multi-byte character is not split.
  while (n > 0 && (static_cast<uint8_t>(s[n]) & 0xC0) == 0x80) --n;
  return std::string(s.substr(0, n));
}

void put_string(Bytes& out, uint8_t type, const std::string& s) {
  std::string v = clamp_comment(s);
  v.push_back('\0');
  put(out, type, v);
}

bool each(std::string_view in, const std::function<void(uint8_t, std::string_view)>& fn) {
  size_t i = 0;
  while (i + 2 <= in.size()) {
    uint8_t type = static_cast<uint8_t>(in[i]);
    size_t len = static_cast<uint8_t>(in[i + 1]);
    if (i + 2 + len > in.size()) return false;
    fn(type, in.substr(i + 2, len));
    i += 2 + len;
  }
  return i == in.size();
}

std::string string_of(std::string_view value) {
  size_t n = value.find('\0');
  return std::string(value.substr(0, n));
}

uint32_t u32_of(std::string_view value) {
  uint32_t v = 0;
  if (value.size() == 4) std::memcpy(&v, value.data(), 4);
  return v;
}

Bytes comment_note(const std::string& comment) {
  Bytes out;
  if (!comment.empty()) put_string(out, 0, comment);
  return out;
}

std::string comment_of(std::string_view note) {
  std::string out;
  if (!each(note, [&](uint8_t type, std::string_view v) {
        if (type == 0) out = string_of(v);
      })) {
    return {};
  }
  return out;
}

Bytes set_note(const SetUserdata& u) {
  Bytes out;
  if (u.key_byteorder) put_u32(out, kSetKeyByteorder, *u.key_byteorder);
  if (u.data_byteorder) put_u32(out, kSetDataByteorder, *u.data_byteorder);
  if (u.merge_elements) put_u32(out, kSetMergeElements, *u.merge_elements);
  if (u.key_typeof) put(out, kSetKeyTypeof, *u.key_typeof);
  if (u.data_typeof) put(out, kSetDataTypeof, *u.data_typeof);
  if (u.data_interval) put_u32(out, kSetDataInterval, *u.data_interval);
  if (!u.comment.empty()) put_string(out, kSetComment, u.comment);
  return out;
}

SetUserdata parse_set_note(std::string_view note) {
  SetUserdata u;
  const bool ok = each(note, [&](uint8_t type, std::string_view v) {
    switch (type) {
      case kSetKeyByteorder: u.key_byteorder = u32_of(v); break;
      case kSetDataByteorder: u.data_byteorder = u32_of(v); break;
      case kSetMergeElements: u.merge_elements = u32_of(v); break;
      case kSetKeyTypeof: u.key_typeof = Bytes(v); break;
      case kSetDataTypeof: u.data_typeof = Bytes(v); break;
      case kSetDataInterval: u.data_interval = u32_of(v); break;
      case kSetComment: u.comment = string_of(v); break;
      default: break;
    }
  });
  return ok ? u : SetUserdata{};
}

Bytes element_note(const Element& e) {
  Bytes out;
  if (!e.comment.empty()) put_string(out, kElemComment, e.comment);
  if (e.udata_flags != 0) put_u32(out, kElemFlags, e.udata_flags);
  return out;
}

void parse_element_note(std::string_view note, Element* e) {
  std::string comment = e->comment;
  uint32_t flags = e->udata_flags;
  if (!each(note, [&](uint8_t type, std::string_view v) {
        if (type == kElemComment) comment = string_of(v);
        if (type == kElemFlags) flags = u32_of(v);
      })) {
    return;
  }
  e->comment = std::move(comment);
  e->udata_flags = flags;
}

}  // namespace knode::nftables::udata
