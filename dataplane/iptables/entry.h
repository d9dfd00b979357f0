// Internal to dataplane/iptables: helpers over raw ipt_entry bytes.
#pragma once

#include <linux/netfilter/x_tables.h>
#include <linux/netfilter_ipv4/ip_tables.h>

#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>

namespace knode::iptables::detail {

inline constexpr size_t kStandardTargetSize = XT_ALIGN(sizeof(xt_standard_target));
inline constexpr size_t kErrorTargetSize = XT_ALIGN(sizeof(xt_error_target));
inline constexpr size_t kErrorEntrySize = sizeof(ipt_entry) + kErrorTargetSize;
inline constexpr size_t kStandardEntrySize = sizeof(ipt_entry) + kStandardTargetSize;

inline const ipt_entry* entry_at(const char* base, size_t offset) {
  return reinterpret_cast<const ipt_entry*>(base + offset);
}
inline ipt_entry* entry_at(char* base, size_t offset) {
  return reinterpret_cast<ipt_entry*>(base + offset);
}
inline const xt_entry_target* target_of(const ipt_entry* e) {
  return reinterpret_cast<const xt_entry_target*>(reinterpret_cast<const char*>(e) +
                                                  e->target_offset);
}
inline xt_entry_target* target_of(ipt_entry* e) {
  return reinterpret_cast<xt_entry_target*>(reinterpret_cast<char*>(e) + e->target_offset);
}
inline bool is_standard(const xt_entry_target* t) {
  return t->u.user.name[0] == '\0' && t->u.target_size == kStandardTargetSize;
}
// Also says the target is large enough to hold xt_error_target::errorname.
inline bool is_error(const xt_entry_target* t) {
  return t->u.target_size >= sizeof(xt_error_target) && std::strcmp(t->u.user.name, XT_ERROR_TARGET) == 0;
}
inline int& verdict_of(xt_entry_target* t) {
  return reinterpret_cast<xt_standard_target*>(t)->verdict;
}
inline int verdict_of(const xt_entry_target* t) {
  return reinterpret_cast<const xt_standard_target*>(t)->verdict;
}

// The label of a kernel verdict (< 0), or nullptr.
inline const char* verdict_label(int verdict) {
  switch (verdict) {
    case -NF_ACCEPT - 1: return "ACCEPT";
    case -NF_DROP - 1: return "DROP";
    case -NF_QUEUE - 1: return "QUEUE";
    case XT_RETURN: return "RETURN";
  }
  return nullptr;
}
// The kernel verdict of a label, or 1 when `name` is no standard label.
inline int label_verdict(std::string_view name) {
  if (name == "ACCEPT") return -NF_ACCEPT - 1;
  if (name == "DROP") return -NF_DROP - 1;
  if (name == "RETURN") return XT_RETURN;
  if (name == "QUEUE") return -NF_QUEUE - 1;
  return 1;
}

// Zeroes a match/target name after its NUL: the kernel copies back only strlen + 1
// bytes of the name over its own pointer there, so the rest is kernel garbage.
inline void clean_name(char* name, size_t cap) {
  size_t n = strnlen(name, cap);
  if (n < cap) std::memset(name + n, 0, cap - n);
}

// Cleans every match and target name of an entry read from the kernel.
inline void clean_names(ipt_entry* e) {
  char* p = reinterpret_cast<char*>(e);
  for (size_t off = sizeof(ipt_entry); off + sizeof(xt_entry_match) <= e->target_offset;) {
    auto* m = reinterpret_cast<xt_entry_match*>(p + off);
    clean_name(m->u.user.name, sizeof m->u.user.name);
    if (m->u.match_size == 0) break;
    off += m->u.match_size;
  }
  xt_entry_target* tg = target_of(e);
  clean_name(tg->u.user.name, sizeof tg->u.user.name);
}

// Makes an entry read from the kernel comparable with Rule::encode(): counters and
// comefrom zeroed, names cleaned, a standard target renamed to `label` (a chain,
// ACCEPT, ... or "" for fall-through) with verdict 0.
inline void normalize(ipt_entry* e, const char* label) {
  std::memset(&e->counters, 0, sizeof e->counters);
  e->comefrom = 0;
  e->nfcache = 0;
  clean_names(e);
  if (label) {
    xt_entry_target* t = target_of(e);
    std::memset(t->u.user.name, 0, sizeof t->u.user.name);
    std::strncpy(t->u.user.name, label, sizeof t->u.user.name - 1);
    verdict_of(t) = 0;
  }
}

}  // namespace knode::iptables::detail
