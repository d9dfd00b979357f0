#include "iptables/blob.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <string_view>
#include <unordered_map>

#include "iptables/entry.h"

namespace knode::iptables::detail {
namespace {

const char* const kHookNames[NF_INET_NUMHOOKS] = {"PREROUTING", "INPUT", "FORWARD", "OUTPUT",
                                                  "POSTROUTING"};

class RawSocket {
 public:
  RawSocket() : fd_(::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW)) {}
  ~RawSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawSocket(const RawSocket&) = delete;
  RawSocket& operator=(const RawSocket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

Status get_info(int fd, const std::string& table, ipt_getinfo* info) {
  std::memset(info, 0, sizeof *info);
  std::strncpy(info->name, table.c_str(), sizeof info->name - 1);
  socklen_t len = sizeof *info;
  if (::getsockopt(fd, SOL_IP, IPT_SO_GET_INFO, info, &len) < 0) {
    return Status::FromErrno("iptables: get info of table " + table, errno);
  }
  return Status::Ok();
}

}  // namespace

Status table_info(const std::string& table, uint32_t* num_entries, uint32_t* size) {
  RawSocket sock;
  if (sock.fd() < 0) return Status::FromErrno("iptables: open raw socket", errno);
  ipt_getinfo info;
  Status s = get_info(sock.fd(), table, &info);
  if (!s) return s;
  *num_entries = info.num_entries;
  *size = info.size;
  return Status::Ok();
}

Result<TableImage> read_table(const std::string& table) {
  RawSocket sock;
  if (sock.fd() < 0) return Status::FromErrno("iptables: open raw socket", errno);
  ipt_getinfo info;
  std::unique_ptr<char[]> buf;
  for (int attempt = 0;; ++attempt) {
    Status s = get_info(sock.fd(), table, &info);
    if (!s) return s;
    socklen_t len = sizeof(ipt_get_entries) + info.size;
    buf.reset(new char[len]);
    auto* ge = reinterpret_cast<ipt_get_entries*>(buf.get());
    std::memset(ge, 0, sizeof *ge);
    std::strncpy(ge->name, table.c_str(), sizeof ge->name - 1);
    ge->size = info.size;
    if (::getsockopt(sock.fd(), SOL_IP, IPT_SO_GET_ENTRIES, ge, &len) == 0) break;
    // EAGAIN: the table changed size between the two calls.
    if (errno != EAGAIN || attempt >= 5) {
      return Status::FromErrno("iptables: get entries of table " + table, errno);
    }
  }
  char* base = reinterpret_cast<char*>(reinterpret_cast<ipt_get_entries*>(buf.get())->entrytable);
  const uint32_t size = info.size;

  TableImage img;
  img.name = table;
  img.valid_hooks = info.valid_hooks;
  img.num_entries = info.num_entries;
  img.size = size;

  // Pass 1: chain boundaries. A chain starts at a hook entry or after an ERROR head;
  // jumps point at the first entry after the head.
  struct Span {
    uint32_t begin, end;  // rules [begin, end); end is the footer entry
    uint32_t first_index;
  };
  std::vector<Span> spans;
  std::unordered_map<uint32_t, uint32_t> chain_at;  // jump offset -> chain index
  std::vector<int> hook_at_offset;
  {
    std::unordered_map<uint32_t, int> hook_entry;
    for (int h = 0; h < NF_INET_NUMHOOKS; ++h) {
      if (info.valid_hooks & (1u << h)) hook_entry[info.hook_entry[h]] = h;
    }
    int current = -1;  // index into spans of the open chain
    uint32_t index = 0;
    for (uint32_t off = 0; off < size; ++index) {
      const ipt_entry* e = entry_at(base, off);
      if (e->next_offset < sizeof(ipt_entry) || off + e->next_offset > size) {
        return Status::Error("iptables: table " + table + ": malformed entry at " +
                             std::to_string(off), EINVAL);
      }
      const xt_entry_target* t = target_of(e);
      if (auto it = hook_entry.find(off); it != hook_entry.end() && current < 0) {
        current = static_cast<int>(spans.size());
        spans.push_back({off, off, index});
        img.chains.emplace_back();
        img.chains.back().name = kHookNames[it->second];
        img.chains.back().hook = it->second;
      }
      if (is_error(t)) {
        const char* name = reinterpret_cast<const xt_error_target*>(t)->errorname;
        if (std::strcmp(name, XT_ERROR_TARGET) != 0) {
          uint32_t first = off + e->next_offset;
          current = static_cast<int>(spans.size());
          spans.push_back({first, first, index + 1});
          chain_at[first] = static_cast<uint32_t>(current);
          img.chains.emplace_back();
          img.chains.back().name = name;
        }
        off += e->next_offset;
        continue;
      }
      if (current < 0) {
        return Status::Error("iptables: table " + table + ": entry outside a chain at " +
                             std::to_string(off), EINVAL);
      }
      bool footer = false;
      ChainImage& c = img.chains[current];
      if (c.hook >= 0) {
        footer = off == info.underflow[c.hook];
        if (footer) c.policy = verdict_of(t);
      } else {
        // A user chain ends with an unconditional RETURN followed by the next head.
        uint32_t next = off + e->next_offset;
        footer = is_standard(t) && verdict_of(t) == XT_RETURN &&
                 (next >= size || is_error(target_of(entry_at(base, next))));
      }
      if (footer) {
        spans[current].end = off;
        current = -1;
      }
      off += e->next_offset;
    }
  }

  // Pass 2: copy each chain's rules, normalized.
  for (size_t ci = 0; ci < img.chains.size(); ++ci) {
    ChainImage& c = img.chains[ci];
    const Span& sp = spans[ci];
    c.entries.assign(base + sp.begin, sp.end - sp.begin);
    uint32_t n = 0;
    for (uint32_t off = 0; off < c.entries.size(); ++n) {
      ipt_entry* e = entry_at(c.entries.data(), off);
      const uint32_t abs = sp.begin + off;
      xt_entry_target* t = target_of(e);
      const char* label = nullptr;
      if (is_standard(t)) {
        int v = verdict_of(t);
        if (v < 0) {
          label = verdict_label(v);
          if (!label) label = "";
        } else if (static_cast<uint32_t>(v) == abs + e->next_offset) {
          label = "";  // fall-through: a rule without target
        } else if (auto it = chain_at.find(static_cast<uint32_t>(v)); it != chain_at.end()) {
          label = img.chains[it->second].name.c_str();
        } else {
          return Status::Error("iptables: table " + table + ": jump to " + std::to_string(v) +
                               " is no chain start", EINVAL);
        }
      }
      normalize(e, label);
      off += e->next_offset;
    }
    c.num_rules = n;
    c.old_index.resize(n + 1);
    for (uint32_t i = 0; i <= n; ++i) c.old_index[i] = static_cast<int32_t>(sp.first_index + i);
  }
  return img;
}

namespace {

// Where everything goes in the blob: each chain's first rule (what jumps resolve to),
// the built-in chains' entry points and policies, the size and entry count.
struct Layout {
  std::unordered_map<std::string_view, uint32_t> first_rule;
  uint32_t hook_entry[NF_INET_NUMHOOKS] = {};
  uint32_t underflow[NF_INET_NUMHOOKS] = {};
  uint64_t size = 0;
  uint32_t num_entries = 0;
};

Layout lay_out(const TableImage& img) {
  Layout l;
  l.first_rule.reserve(img.chains.size() * 2);
  for (const ChainImage& c : img.chains) {
    if (c.hook < 0) {
      l.size += kErrorEntrySize;  // a user chain starts with its name
      ++l.num_entries;
    } else {
      l.hook_entry[c.hook] = static_cast<uint32_t>(l.size);
    }
    l.first_rule[c.name] = static_cast<uint32_t>(l.size);
    l.size += c.entries.size();
    l.num_entries += c.num_rules;
    if (c.hook >= 0) l.underflow[c.hook] = static_cast<uint32_t>(l.size);
    l.size += kStandardEntrySize;  // policy or RETURN footer
    ++l.num_entries;
  }
  l.size += kErrorEntrySize;
  ++l.num_entries;
  return l;
}

void put_standard(char* base, uint32_t off, int verdict) {
  std::memset(base + off, 0, kStandardEntrySize);
  ipt_entry* e = entry_at(base, off);
  e->target_offset = sizeof(ipt_entry);
  e->next_offset = kStandardEntrySize;
  xt_entry_target* t = target_of(e);
  t->u.user.target_size = kStandardTargetSize;
  verdict_of(t) = verdict;
}

void put_error(char* base, uint32_t off, const std::string& name) {
  std::memset(base + off, 0, kErrorEntrySize);
  ipt_entry* e = entry_at(base, off);
  e->target_offset = sizeof(ipt_entry);
  e->next_offset = kErrorEntrySize;
  auto* t = reinterpret_cast<xt_error_target*>(target_of(e));
  t->target.u.user.target_size = kErrorTargetSize;
  std::strncpy(t->target.u.user.name, XT_ERROR_TARGET, sizeof t->target.u.user.name - 1);
  std::strncpy(t->errorname, name.c_str(), sizeof t->errorname - 1);
}

// A standard target names its destination (an owned chain, or a verdict); the kernel
// wants the destination's offset or the verdict number instead.
Status resolve_jump(const Layout& l, const TableImage& img, const ChainImage& c, char* base, uint32_t off) {
  ipt_entry* e = entry_at(base, off);
  xt_entry_target* t = target_of(e);
  if (t->u.target_size != kStandardTargetSize) return Status::Ok();
  std::string_view label(t->u.user.name, strnlen(t->u.user.name, sizeof t->u.user.name));
  int verdict = 1;
  if (label.empty()) {
    verdict = static_cast<int>(off + e->next_offset);
  } else if (auto it = l.first_rule.find(label); it != l.first_rule.end()) {
    verdict = static_cast<int>(it->second);
  } else {
    verdict = label_verdict(label);
  }
  if (verdict != 1) {
    std::memset(t->u.user.name, 0, sizeof t->u.user.name);
    t->u.user.revision = 0;
    verdict_of(t) = verdict;
  } else if (label.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string_view::npos) {
    return Status::Error("iptables: table " + img.name + ": chain " + c.name + " jumps to missing chain " +
                             std::string(label),
                         ENOENT);
  }
  return Status::Ok();
}

// Writes every entry at `base`; new_to_old maps each new entry to its old index (for
// the counters), -1 for new ones.
Status fill_entries(const Layout& l, const TableImage& img, char* base, std::vector<int32_t>* new_to_old) {
  uint32_t off = 0;
  uint32_t index = 0;
  for (const ChainImage& c : img.chains) {
    if (c.hook < 0) {
      put_error(base, off, c.name);
      off += kErrorEntrySize;
      ++index;
    }
    const bool have_old = c.old_index.size() == c.num_rules + 1;
    std::memcpy(base + off, c.entries.data(), c.entries.size());
    const uint32_t end = off + static_cast<uint32_t>(c.entries.size());
    for (uint32_t i = 0; off < end; ++i, ++index) {
      if (Status s = resolve_jump(l, img, c, base, off); !s.ok()) return s;
      if (have_old) (*new_to_old)[index] = c.old_index[i];
      off += entry_at(base, off)->next_offset;
    }
    put_standard(base, off, c.hook >= 0 ? c.policy : XT_RETURN);
    if (have_old) (*new_to_old)[index] = c.old_index[c.num_rules];
    off += kStandardEntrySize;
    ++index;
  }
  put_error(base, off, XT_ERROR_TARGET);
  return Status::Ok();
}

// Carries the counters of kept entries over, as libiptc does.
Status restore_counters(int fd, const std::string& table, const std::vector<int32_t>& new_to_old,
                        const std::vector<xt_counters>& old_counters, double* kernel_ms) {
  const uint32_t n = static_cast<uint32_t>(new_to_old.size());
  const size_t csize = sizeof(xt_counters_info) + sizeof(xt_counters) * n;
  std::unique_ptr<char[]> cbuf(new char[csize]);
  auto* ci = reinterpret_cast<xt_counters_info*>(cbuf.get());
  std::memset(ci, 0, sizeof *ci);
  std::strncpy(ci->name, table.c_str(), sizeof ci->name - 1);
  ci->num_counters = n;
  bool any = false;
  for (uint32_t i = 0; i < n; ++i) {
    int32_t o = new_to_old[i];
    if (o >= 0 && static_cast<size_t>(o) < old_counters.size()) {
      ci->counters[i] = old_counters[o];
      any = any || old_counters[o].pcnt || old_counters[o].bcnt;
    } else {
      ci->counters[i] = xt_counters{0, 0};
    }
  }
  if (!any) return Status::Ok();
  const auto c0 = std::chrono::steady_clock::now();
  const int rc = ::setsockopt(fd, SOL_IP, IPT_SO_SET_ADD_COUNTERS, cbuf.get(), static_cast<socklen_t>(csize));
  if (kernel_ms) *kernel_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - c0).count();
  // On failure the table is in place; only counters were lost.
  return rc < 0 ? Status::FromErrno("iptables: restore counters of table " + table, errno) : Status::Ok();
}

// Renumbers old_index to the layout just written, for the next write.
void renumber(TableImage& img, const Layout& l) {
  uint32_t index = 0;
  for (ChainImage& c : img.chains) {
    if (c.hook < 0) ++index;
    c.old_index.resize(c.num_rules + 1);
    for (uint32_t i = 0; i <= c.num_rules; ++i) c.old_index[i] = static_cast<int32_t>(index++);
  }
  img.num_entries = l.num_entries;
  img.size = static_cast<uint32_t>(l.size);
}

}  // namespace

Status write_table(TableImage& img, uint32_t old_num_entries, double* kernel_ms,
                   std::vector<char>* scratch) {
  const Layout l = lay_out(img);
  if (l.size > UINT32_MAX / 2) return Status::Error("iptables: table too large", E2BIG);

  const size_t total = sizeof(ipt_replace) + l.size;
  std::unique_ptr<char[]> own;
  char* blob = nullptr;
  if (scratch) {
    if (scratch->size() < total) scratch->resize(total);
    blob = scratch->data();
  } else {
    own.reset(new char[total]);
    blob = own.get();
  }
  // Every byte of [0, total) is written below.
  auto* repl = reinterpret_cast<ipt_replace*>(blob);
  std::memset(repl, 0, sizeof *repl);
  std::strncpy(repl->name, img.name.c_str(), sizeof repl->name - 1);
  repl->valid_hooks = img.valid_hooks;
  repl->num_entries = l.num_entries;
  repl->size = static_cast<uint32_t>(l.size);
  std::memcpy(repl->hook_entry, l.hook_entry, sizeof l.hook_entry);
  std::memcpy(repl->underflow, l.underflow, sizeof l.underflow);
  std::vector<xt_counters> old_counters(old_num_entries);
  repl->num_counters = old_num_entries;
  repl->counters = old_counters.data();

  std::vector<int32_t> new_to_old(l.num_entries, -1);
  if (Status s = fill_entries(l, img, reinterpret_cast<char*>(repl->entries), &new_to_old); !s.ok()) return s;

  RawSocket sock;
  if (sock.fd() < 0) return Status::FromErrno("iptables: open raw socket", errno);
  const auto k0 = std::chrono::steady_clock::now();
  if (::setsockopt(sock.fd(), SOL_IP, IPT_SO_SET_REPLACE, blob, static_cast<socklen_t>(total)) < 0) {
    int err = errno;
    std::string hint = err == EAGAIN ? " (table changed meanwhile)" : "";
    return Status::FromErrno("iptables: replace table " + img.name + " (" + std::to_string(l.num_entries) +
                                 " entries)" + hint,
                             err);
  }
  if (kernel_ms) *kernel_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - k0).count();
  own.reset();
  if (Status s = restore_counters(sock.fd(), img.name, new_to_old, old_counters, kernel_ms); !s.ok()) return s;
  renumber(img, l);
  return Status::Ok();
}

}  // namespace knode::iptables::detail
