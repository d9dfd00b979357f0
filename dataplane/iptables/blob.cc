#include "iptables/blob.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <chrono>
#include <cstddef>
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

// --- the image ---

const size_t TableImage::kEntriesAt = offsetof(ipt_replace, entries);
static_assert(offsetof(ipt_replace, entries) >= offsetof(ipt_get_entries, entrytable),
              "a read's header must fit before the replace header's entries");
static_assert(offsetof(ipt_replace, entries) % alignof(ipt_entry) == 0);

size_t TableImage::num_rules() const {
  size_t n = 0;
  for (const ChainRef& c : chains_) n += c.num_rules;
  return n;
}

int TableImage::find(std::string_view name) const {
  if (by_name_.empty()) return -1;
  const size_t mask = by_name_.size() - 1;
  for (size_t i = std::hash<std::string_view>{}(name) & mask;; i = (i + 1) & mask) {
    const uint32_t c = by_name_[i];
    if (c == kNoChain) return -1;
    if (chains_[c].name == name) return static_cast<int>(c);
  }
}

int TableImage::chain_at_body(uint32_t offset) const {
  // Bodies ascend in blob order, and no two chains share one (a head or a footer
  // separates them).
  auto it = std::lower_bound(chains_.begin(), chains_.end(), offset,
                             [](const ChainRef& c, uint32_t o) { return c.body < o; });
  if (it == chains_.end() || it->body != offset) return -1;
  return static_cast<int>(it - chains_.begin());
}

std::vector<std::string> TableImage::jump_targets(size_t chain) const {
  std::vector<int> to;
  const ChainRef& c = chains_[chain];
  const char* base = entries();
  for (uint32_t off = c.body; off < c.footer;) {
    const ipt_entry* e = entry_at(base, off);
    if (e->next_offset < sizeof(ipt_entry)) break;  // not reached: reads check every entry
    const xt_entry_target* t = target_of(e);
    if (is_standard(t) && verdict_of(t) >= 0 && static_cast<uint32_t>(verdict_of(t)) != off + e->next_offset) {
      if (int j = chain_at_body(static_cast<uint32_t>(verdict_of(t))); j >= 0 && chains_[j].hook < 0) to.push_back(j);
    }
    off += e->next_offset;
  }
  std::sort(to.begin(), to.end());
  to.erase(std::unique(to.begin(), to.end()), to.end());
  std::vector<std::string> out;
  out.reserve(to.size());
  for (int j : to) out.push_back(chains_[j].name);
  return out;
}

int TableImage::policy(size_t chain) const {
  return verdict_of(target_of(entry_at(entries(), chains_[chain].footer)));
}

void TableImage::normalized_body(size_t chain, std::string* out) const {
  const ChainRef& c = chains_[chain];
  out->assign(entries() + c.body, c.footer - c.body);
  for (uint32_t off = 0; off < out->size();) {
    ipt_entry* e = entry_at(out->data(), off);
    if (e->next_offset < sizeof(ipt_entry)) break;  // not reached: reads check every entry
    const uint32_t abs = c.body + off;
    xt_entry_target* t = target_of(e);
    const char* label = nullptr;
    if (is_standard(t)) {
      const int v = verdict_of(t);
      if (v < 0) {
        label = verdict_label(v);
        if (!label) label = "";
      } else if (static_cast<uint32_t>(v) == abs + e->next_offset) {
        label = "";  // fall-through: a rule without target
      } else if (int j = chain_at_body(static_cast<uint32_t>(v)); j >= 0) {
        label = chains_[j].name.c_str();
      } else {
        label = "";  // not reached: reads and edits leave only jumps to chain starts
      }
    }
    normalize(e, label);
    off += e->next_offset;
  }
}

Status TableImage::reserve(size_t bytes) {
  if (buf_ && bytes <= capacity_) return Status::Ok();
  // Room to grow by a few chains without moving: large blocks are their own mappings,
  // and realloc moves those with mremap, without copying.
  const size_t cap = bytes + bytes / 16 + 4096;
  void* p = std::realloc(buf_.get(), kEntriesAt + cap);
  if (!p) return Status::Error("iptables: no memory for a table of " + std::to_string(bytes) + " bytes", ENOMEM);
  (void)buf_.release();
  buf_.reset(static_cast<char*>(p));
  capacity_ = cap;
  return Status::Ok();
}

void TableImage::index_names() {
  size_t slots = 16;
  while (slots < 2 * chains_.size()) slots *= 2;  // at most half full: short probes
  by_name_.assign(slots, kNoChain);
  const size_t mask = slots - 1;
  for (uint32_t c = 0; c < chains_.size(); ++c) {
    size_t i = std::hash<std::string_view>{}(chains_[c].name) & mask;
    while (by_name_[i] != kNoChain) {
      if (chains_[by_name_[i]].name == chains_[c].name) break;  // a duplicate name: the first one stays
      i = (i + 1) & mask;
    }
    if (by_name_[i] == kNoChain) by_name_[i] = c;
  }
}

namespace {

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

}  // namespace

namespace {

// Why the entry at `off` (< size) of a table read from the kernel cannot be used, or
// nullptr. These are the kernel's own checks on a table it is given
// (check_entry_size_and_hooks, xt_check_entry_offsets, xt_check_entry_match), so a table
// it hands back passes them; checking again keeps a wrong answer from making us read
// past an entry or the buffer. Nothing of the entry is read before the bytes it sits in
// are known to be there.
const char* entry_problem(const char* base, uint32_t size, uint32_t off) {
  if (off % alignof(ipt_entry) != 0) return "misaligned entry";
  if (size - off < sizeof(ipt_entry)) return "truncated entry";
  const ipt_entry* e = entry_at(base, off);
  const uint32_t next = e->next_offset;
  const uint32_t target = e->target_offset;
  if (next < sizeof(ipt_entry) + sizeof(xt_entry_target) || next > size - off) return "bad next_offset";
  if (XT_ALIGN(next) != next) return "misaligned next_offset";
  if (target < sizeof(ipt_entry) || target > next - sizeof(xt_entry_target)) return "bad target_offset";
  if (target % alignof(xt_entry_target) != 0) return "misaligned target";
  // The matches must tile [sizeof(ipt_entry), target_offset) exactly: clean_names walks them.
  for (uint32_t m = sizeof(ipt_entry); m < target;) {
    if (m % alignof(xt_entry_match) != 0 || target - m < sizeof(xt_entry_match)) return "bad match";
    const auto* match = reinterpret_cast<const xt_entry_match*>(reinterpret_cast<const char*>(e) + m);
    if (match->u.match_size < sizeof(xt_entry_match) || match->u.match_size > target - m) return "bad match size";
    m += match->u.match_size;
  }
  const xt_entry_target* t = target_of(e);
  if (t->u.target_size < sizeof(xt_entry_target) || t->u.target_size > next - target) return "bad target size";
  // is_error() checks the size; a name that long without a NUL is no chain name.
  if (is_error(t) && std::memchr(reinterpret_cast<const xt_error_target*>(t)->errorname, '\0',
                                 sizeof(xt_error_target::errorname)) == nullptr) {
    return "unterminated chain name";
  }
  return nullptr;
}

// A chain's footer is exactly what apply_edits and write_table put there: an
// unconditional entry of the standard size with a standard target (the kernel requires
// this of a built-in chain's policy too, in check_underflow).
bool is_footer_shaped(const ipt_entry* e) {
  return e->target_offset == sizeof(ipt_entry) && e->next_offset == kStandardEntrySize && is_standard(target_of(e));
}

}  // namespace

Result<TableImage> read_table(const std::string& table) {
  RawSocket sock;
  if (sock.fd() < 0) return Status::FromErrno("iptables: open raw socket", errno);
  TableImage img;
  ipt_getinfo info;
  // The read's header goes where its entries land on the replace header's.
  const size_t ge_at = TableImage::kEntriesAt - offsetof(ipt_get_entries, entrytable);
  for (int attempt = 0;; ++attempt) {
    Status s = get_info(sock.fd(), table, &info);
    if (!s) return s;
    if (s = img.reserve(info.size); !s) return s;
    auto* ge = reinterpret_cast<ipt_get_entries*>(img.buf_.get() + ge_at);
    std::memset(ge, 0, sizeof *ge);
    std::strncpy(ge->name, table.c_str(), sizeof ge->name - 1);
    ge->size = info.size;
    socklen_t len = sizeof(ipt_get_entries) + info.size;
    if (::getsockopt(sock.fd(), SOL_IP, IPT_SO_GET_ENTRIES, ge, &len) == 0) break;
    // EAGAIN: the table changed size between the two calls.
    if (errno != EAGAIN || attempt >= 5) {
      return Status::FromErrno("iptables: get entries of table " + table, errno);
    }
  }
  // The kernel names the table as asked; keep the caller's name in case it does not.
  std::memset(info.name, 0, sizeof info.name);
  std::strncpy(info.name, table.c_str(), sizeof info.name - 1);
  if (Status s = img.decode(info); !s) return s;
  return img;
}

Result<TableImage> decode_table(const ipt_getinfo& info, const void* entries, size_t size) {
  const std::string table(info.name, strnlen(info.name, sizeof info.name));
  if (size != info.size) {
    return Status::Error("iptables: table " + table + ": " + std::to_string(size) + " bytes of entries, info says " +
                             std::to_string(info.size),
                         EINVAL);
  }
  TableImage img;
  if (Status s = img.reserve(size); !s) return s;
  if (size != 0) std::memcpy(img.mutable_entries(), entries, size);
  if (Status s = img.decode(info); !s) return s;
  return img;
}

Status TableImage::decode(const ipt_getinfo& info) {
  name_.assign(info.name, strnlen(info.name, sizeof info.name));
  valid_hooks_ = info.valid_hooks;
  num_entries_ = info.num_entries;
  size_ = info.size;
  chains_.clear();
  const std::string& table = name_;
  char* base = mutable_entries();
  const uint32_t size = info.size;
  auto malformed = [&](uint32_t off, const char* why) {
    return Status::Error("iptables: table " + table + ": malformed entry at " + std::to_string(off) + " (" + why + ")",
                         EINVAL);
  };

  // Chain boundaries. A chain starts at a hook entry or after an ERROR head; jumps point
  // at the first entry after the head.
  std::unordered_map<uint32_t, int> hook_entry;
  for (int h = 0; h < NF_INET_NUMHOOKS; ++h) {
    if (info.valid_hooks & (1u << h)) hook_entry[info.hook_entry[h]] = h;
  }
  int current = -1;  // index into chains_ of the open chain
  uint32_t index = 0;
  for (uint32_t off = 0; off < size; ++index) {
    if (const char* why = entry_problem(base, size, off)) return malformed(off, why);
    ipt_entry* e = entry_at(base, off);
    clean_names(e);
    const xt_entry_target* t = target_of(e);
    if (auto it = hook_entry.find(off); it != hook_entry.end() && current < 0) {
      current = static_cast<int>(chains_.size());
      ChainRef& c = chains_.emplace_back();
      c.name = kHookNames[it->second];
      c.hook = it->second;
      c.head = c.body = off;
      c.first_index = index;
    }
    if (is_error(t)) {
      // A head (or the table's end) while a chain is open: that chain has no footer, and
      // apply_edits would take its extent from a footer offset never set.
      if (current >= 0) {
        return Status::Error("iptables: table " + table + ": chain " + chains_[current].name + " has no end", EINVAL);
      }
      const char* name = reinterpret_cast<const xt_error_target*>(t)->errorname;  // NUL-terminated: checked
      if (std::strcmp(name, XT_ERROR_TARGET) != 0) {
        current = static_cast<int>(chains_.size());
        ChainRef& c = chains_.emplace_back();
        c.name.assign(name, strnlen(name, XT_FUNCTION_MAXNAMELEN));
        c.head = off;
        c.body = off + e->next_offset;
        c.first_index = index + 1;
      }
      off += e->next_offset;
      continue;
    }
    if (current < 0) {
      return Status::Error("iptables: table " + table + ": entry outside a chain at " + std::to_string(off), EINVAL);
    }
    ChainRef& c = chains_[current];
    bool footer = false;
    if (c.hook >= 0) {
      footer = off == info.underflow[c.hook];
      if (footer && !is_footer_shaped(e)) return malformed(off, "policy of a built-in chain is no verdict");
    } else {
      // A user chain ends with an unconditional RETURN followed by the next head; that
      // next entry is checked before its target is looked at.
      const uint32_t next = off + e->next_offset;
      footer = is_footer_shaped(e) && verdict_of(t) == XT_RETURN &&
               (next >= size ||
                (entry_problem(base, size, next) == nullptr && is_error(target_of(entry_at(base, next)))));
    }
    if (footer) {
      c.footer = off;
      current = -1;
    } else {
      ++c.num_rules;
    }
    off += e->next_offset;
  }
  if (current >= 0) {
    return Status::Error("iptables: table " + table + ": chain " + chains_[current].name + " has no end", EINVAL);
  }
  // Every jump must land on a chain's first rule (or be a rule's fall-through).
  for (const ChainRef& c : chains_) {
    for (uint32_t off = c.body; off < c.footer;) {
      const ipt_entry* e = entry_at(base, off);
      const xt_entry_target* t = target_of(e);
      if (is_standard(t)) {
        const int v = verdict_of(t);
        if (v >= 0 && static_cast<uint32_t>(v) != off + e->next_offset && chain_at_body(static_cast<uint32_t>(v)) < 0) {
          return Status::Error("iptables: table " + table + ": jump to " + std::to_string(v) + " is no chain start",
                               EINVAL);
        }
      }
      off += e->next_offset;
    }
  }
  index_names();
  return Status::Ok();
}

namespace {

// A standard target names its destination (a chain, a verdict, or "" for fall-through);
// the kernel wants the destination's offset or the verdict number instead.
template <typename Lookup>
Status resolve_jump(const std::string& table, const std::string& chain, char* base, uint32_t off,
                    Lookup&& body_of) {
  ipt_entry* e = entry_at(base, off);
  xt_entry_target* t = target_of(e);
  if (t->u.target_size != kStandardTargetSize) return Status::Ok();
  std::string_view label(t->u.user.name, strnlen(t->u.user.name, sizeof t->u.user.name));
  int verdict = 1;
  if (label.empty()) {
    verdict = static_cast<int>(off + e->next_offset);
  } else if (int64_t b = body_of(label); b >= 0) {
    verdict = static_cast<int>(b);
  } else {
    verdict = label_verdict(label);
  }
  if (verdict != 1) {
    std::memset(t->u.user.name, 0, sizeof t->u.user.name);
    t->u.user.revision = 0;
    verdict_of(t) = verdict;
  } else if (label.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string_view::npos) {
    // An all-capitals name of the standard size is a target module's (CLASSIFY...).
    return Status::Error("iptables: table " + table + ": chain " + chain + " jumps to missing chain " +
                             std::string(label),
                         ENOENT);
  }
  return Status::Ok();
}

}  // namespace

void EntryMap::add(uint32_t to, uint32_t from, uint32_t count) {
  if (count == 0) return;
  if (!runs.empty()) {
    Run& last = runs.back();
    if (last.to + last.count == to && last.from + last.count == from) {
      last.count += count;
      return;
    }
  }
  runs.push_back({to, from, count});
}

int64_t EntryMap::from_of(uint32_t to) const {
  auto it = std::upper_bound(runs.begin(), runs.end(), to, [](uint32_t t, const Run& r) { return t < r.to; });
  if (it == runs.begin()) return -1;
  --it;
  return to < it->to + it->count ? int64_t{it->from} + (to - it->to) : -1;
}

Status apply_edits(TableImage& img, ImageEdits&& ed, EntryMap* entry_map,
                   std::vector<bool>* unfilled) {
  const std::vector<ChainRef>& old = img.chains_;
  const size_t n_old = old.size();
  constexpr int32_t kKept = -1, kRemoved = -2;
  std::vector<int32_t> fate(n_old, kKept);  // or the index of its Replace
  for (uint32_t r : ed.remove) fate.at(r) = kRemoved;
  for (size_t i = 0; i < ed.replace.size(); ++i) fate.at(ed.replace[i].chain) = static_cast<int32_t>(i);
  std::sort(ed.create.begin(), ed.create.end(),
            [](const ImageEdits::Create& a, const ImageEdits::Create& b) { return a.name < b.name; });
  for (size_t i = 1; i < ed.create.size(); ++i) {
    if (ed.create[i].name == ed.create[i - 1].name) {
      return Status::Error("iptables: table " + img.name_ + ": chain " + ed.create[i].name + " created twice", EINVAL);
    }
  }

  // The new order: the old chains that stay, with the created ones merged in by name
  // among the user chains.
  // Where each chain comes from, beside its place in the new image (`chains`, named at
  // the end): two arrays, not one of both (at 110,000 chains every byte is 110 KB).
  struct Slot {
    int32_t old = -1, rep = -1, cre = -1;
    int policy = 0;
  };
  std::vector<Slot> slots;
  std::vector<ChainRef> chains;
  slots.reserve(n_old + ed.create.size());
  chains.reserve(n_old + ed.create.size());
  size_t next_created = 0;
  auto created_before = [&](const std::string* name) {
    while (next_created < ed.create.size() && (!name || ed.create[next_created].name < *name)) {
      Slot s;
      s.cre = static_cast<int32_t>(next_created++);
      slots.push_back(s);
      chains.emplace_back();
    }
  };
  for (size_t i = 0; i < n_old; ++i) {
    if (old[i].hook < 0) created_before(&old[i].name);
    if (fate[i] == kRemoved) continue;
    Slot s;
    s.old = static_cast<int32_t>(i);
    s.rep = fate[i] >= 0 ? fate[i] : -1;
    chains.emplace_back().hook = old[i].hook;
    if (old[i].hook >= 0) s.policy = img.policy(i);  // read before anything moves
    slots.push_back(s);
  }
  created_before(nullptr);

  // Where everything goes.
  uint64_t off = 0;
  uint32_t index = 0;
  for (size_t i = 0; i < slots.size(); ++i) {
    const Slot& s = slots[i];
    ChainRef& n = chains[i];
    uint64_t body_len;
    if (s.cre >= 0) {
      const auto& c = ed.create[s.cre];
      body_len = c.deferred ? c.size : c.bytes ? c.bytes->size() : 0;
      n.num_rules = c.num_rules;
    } else if (s.rep >= 0) {
      const auto& r = ed.replace[s.rep];
      body_len = r.deferred ? r.size : r.bytes.size();
      n.num_rules = r.num_rules;
    } else {
      body_len = old[s.old].footer - old[s.old].body;
      n.num_rules = old[s.old].num_rules;
    }
    n.head = static_cast<uint32_t>(off);
    if (n.hook < 0) {
      off += kErrorEntrySize;
      ++index;
    }
    n.body = static_cast<uint32_t>(off);
    n.first_index = index;
    off += body_len;
    index += n.num_rules;
    n.footer = static_cast<uint32_t>(off);
    off += kStandardEntrySize;
    ++index;
    if (off > UINT32_MAX / 2) return Status::Error("iptables: table " + img.name_ + " too large", E2BIG);
  }
  off += kErrorEntrySize;
  ++index;
  const uint32_t new_size = static_cast<uint32_t>(off);
  const uint32_t new_entries = index;

  std::vector<uint32_t> new_body(n_old, UINT32_MAX);  // of each old chain that stays
  for (size_t i = 0; i < slots.size(); ++i) {
    if (slots[i].old >= 0) new_body[slots[i].old] = chains[i].body;
  }
  if (Status s = img.reserve(std::max(new_size, img.size_)); !s) return s;
  char* base = img.mutable_entries();

  // Kept chains move as runs: consecutive ones that keep their distance.
  struct Run {
    uint32_t src, dst, len;
  };
  std::vector<Run> runs;
  for (size_t i = 0; i < slots.size(); ++i) {
    const Slot& s = slots[i];
    if (s.old < 0 || s.rep >= 0) continue;
    const ChainRef& c = old[s.old];
    const uint32_t head = chains[i].head;
    const uint32_t len = c.footer + static_cast<uint32_t>(kStandardEntrySize) - c.head;
    if (!runs.empty() && runs.back().src + runs.back().len == c.head && runs.back().dst + runs.back().len == head) {
      runs.back().len += len;
    } else {
      runs.push_back({c.head, head, len});
    }
  }
  // In place: runs moving left go first, from the left; then those moving right, from
  // the right. Neither overwrites a run that has yet to move.
  for (const Run& r : runs) {
    if (r.dst < r.src) std::memmove(base + r.dst, base + r.src, r.len);
  }
  for (auto it = runs.rbegin(); it != runs.rend(); ++it) {
    if (it->dst > it->src) std::memmove(base + it->dst, base + it->src, it->len);
  }
  // Where an old offset inside a kept run is now (runs ascend in old order too: kept
  // chains keep their order), or -1.
  auto moved = [&runs](uint32_t v) -> int64_t {
    auto it = std::upper_bound(runs.begin(), runs.end(), v, [](uint32_t o, const Run& r) { return o < r.src; });
    if (it == runs.begin()) return -1;
    --it;
    if (v >= it->src + it->len) return -1;
    return static_cast<int64_t>(v) + (static_cast<int64_t>(it->dst) - it->src);
  };
  // Jumps in the moved runs: to a chain's new first rule, or along with the run. A jump
  // into a kept run moves with that run (a few runs: cheaper than finding the chain).
  for (const Run& r : runs) {
    const int64_t delta = static_cast<int64_t>(r.dst) - r.src;
    for (uint32_t o = r.dst; o < r.dst + r.len;) {
      ipt_entry* e = entry_at(base, o);
      if (e->next_offset < sizeof(ipt_entry)) {
        return Status::Error("iptables: table " + img.name_ + ": image corrupt at " + std::to_string(o), EINVAL);
      }
      xt_entry_target* t = target_of(e);
      if (is_standard(t) && verdict_of(t) >= 0) {
        const uint32_t v = static_cast<uint32_t>(verdict_of(t));
        if (int64_t to = moved(v); to >= 0) {
          verdict_of(t) = static_cast<int>(to);
        } else if (int j = img.chain_at_body(v); j >= 0) {
          if (new_body[j] == UINT32_MAX) {
            return Status::Error("iptables: table " + img.name_ + ": a kept rule jumps to deleted chain " + old[j].name,
                                 EINVAL);
          }
          verdict_of(t) = static_cast<int>(new_body[j]);
        } else if (v >= r.src && v <= r.src + r.len) {
          verdict_of(t) = static_cast<int>(v + delta);
        } else {
          return Status::Error("iptables: table " + img.name_ + ": jump to " + std::to_string(v) + " is no chain start",
                               EINVAL);
        }
      }
      o += e->next_offset;
    }
  }
  // The new and rewritten chains.
  // Created chains by name: `ed.create` is sorted by name, so a binary search finds one
  // (a hash table of 110,000 names was 4 MB at the peak of a first sync).
  std::vector<uint32_t> created_body(ed.create.size());
  for (size_t i = 0; i < slots.size(); ++i) {
    if (slots[i].cre >= 0) created_body[slots[i].cre] = chains[i].body;
  }
  auto body_of = [&](std::string_view label) -> int64_t {
    if (int j = img.find(label); j >= 0) {
      return new_body[j] == UINT32_MAX ? int64_t{-1} : int64_t{new_body[j]};
    }
    auto it = std::lower_bound(ed.create.begin(), ed.create.end(), label,
                               [](const ImageEdits::Create& c, std::string_view l) { return c.name < l; });
    if (it == ed.create.end() || it->name != label) return int64_t{-1};
    return int64_t{created_body[static_cast<size_t>(it - ed.create.begin())]};
  };
  for (size_t i = 0; i < slots.size(); ++i) {
    const Slot& s = slots[i];
    const ChainRef& n = chains[i];
    if (s.old >= 0 && s.rep < 0) continue;
    const std::string& name = s.cre >= 0 ? ed.create[s.cre].name : old[s.old].name;
    std::string none;
    std::string& bytes = s.cre < 0                ? ed.replace[s.rep].bytes
                         : ed.create[s.cre].bytes ? *ed.create[s.cre].bytes
                                                  : none;
    const bool deferred = s.cre >= 0 ? ed.create[s.cre].deferred : ed.replace[s.rep].deferred;
    if (n.hook < 0) put_error(base, n.head, name);
    put_standard(base, n.footer, n.hook >= 0 ? s.policy : XT_RETURN);
    if (deferred) continue;  // fill_chain writes the body
    std::memcpy(base + n.body, bytes.data(), bytes.size());
    for (uint32_t o = n.body; o < n.footer;) {
      if (Status st = resolve_jump(img.name_, name, base, o, body_of); !st) return st;
      o += entry_at(base, o)->next_offset;
    }
    std::string().swap(bytes);  // in the blob now
  }
  put_error(base, new_size - static_cast<uint32_t>(kErrorEntrySize), XT_ERROR_TARGET);

  // Counters: which new entry was which old one.
  entry_map->runs.clear();
  entry_map->entries = new_entries;
  for (size_t i = 0; i < slots.size(); ++i) {
    const Slot& s = slots[i];
    const ChainRef& n = chains[i];
    if (s.old < 0) continue;
    if (s.rep < 0) {
      // Its head (a user chain's), rules and footer: consecutive kept chains make one run.
      const uint32_t head = n.hook < 0 ? 1 : 0;
      entry_map->add(n.first_index - head, old[s.old].first_index - head, n.num_rules + 1 + head);
    } else if (const auto& oi = ed.replace[s.rep].old_index; oi.size() == n.num_rules + 1) {
      for (uint32_t k = 0; k <= n.num_rules; ++k) {
        if (oi[k] >= 0) entry_map->add(n.first_index + k, static_cast<uint32_t>(oi[k]), 1);
      }
    }
  }

  if (unfilled) {
    unfilled->assign(slots.size(), false);
    for (size_t i = 0; i < slots.size(); ++i) {
      const Slot& s = slots[i];
      (*unfilled)[i] = s.cre >= 0 ? ed.create[s.cre].deferred : s.rep >= 0 && ed.replace[s.rep].deferred;
    }
  }
  for (size_t i = 0; i < slots.size(); ++i) {
    const Slot& s = slots[i];
    chains[i].name = s.cre >= 0 ? std::move(ed.create[s.cre].name) : std::move(img.chains_[s.old].name);
  }
  img.chains_ = std::move(chains);
  img.size_ = new_size;
  img.num_entries_ = new_entries;
  img.index_names();
  return Status::Ok();
}

Status fill_chain(TableImage& img, size_t chain, std::string_view bytes) {
  if (chain >= img.chains_.size()) return Status::Error("iptables: fill of a chain not in the image", EINVAL);
  const ChainRef& c = img.chains_[chain];
  if (bytes.size() != c.footer - c.body) {
    return Status::Error("iptables: table " + img.name_ + ": chain " + c.name + " came back with " +
                             std::to_string(bytes.size()) + " bytes, not the " + std::to_string(c.footer - c.body) +
                             " it announced",
                         EINVAL);
  }
  char* base = img.mutable_entries();
  std::memcpy(base + c.body, bytes.data(), bytes.size());
  auto body_of = [&img](std::string_view label) -> int64_t {
    int j = img.find(label);
    return j < 0 ? int64_t{-1} : int64_t{img.chains_[j].body};
  };
  for (uint32_t o = c.body; o < c.footer;) {
    const ipt_entry* e = entry_at(base, o);
    if (e->next_offset < sizeof(ipt_entry) || o + e->next_offset > c.footer) {
      return Status::Error("iptables: table " + img.name_ + ": chain " + c.name + " has a malformed rule", EINVAL);
    }
    if (Status st = resolve_jump(img.name_, c.name, base, o, body_of); !st) return st;
    o += e->next_offset;
  }
  return Status::Ok();
}

namespace {

// Carries the counters of kept entries over, as libiptc does. `ci->counters` holds the
// old table's `n_old` counters (the kernel wrote them there at the replace) and has room
// for the new table's: they are moved to their new places in that one buffer (a second
// one was 8.6 MB at 540,000 entries, on every sync of a node with traffic).
Status restore_counters(int fd, const std::string& table, const EntryMap& moved, xt_counters_info* ci,
                        size_t n_old, double* kernel_ms) {
  xt_counters* c = ci->counters;
  const uint32_t n = moved.entries;
  bool any = false;
  bool in_order = true;  // the runs ascend in the old table too, and stay inside it
  uint64_t old_end = 0;
  for (const EntryMap::Run& r : moved.runs) {
    in_order = in_order && r.from >= old_end && uint64_t{r.from} + r.count <= n_old && r.to + r.count <= n;
    old_end = uint64_t{r.from} + r.count;
    for (uint32_t k = 0; k < r.count && !any; ++k) {
      const size_t o = size_t{r.from} + k;
      any = o < n_old && (c[o].pcnt || c[o].bcnt);
    }
  }
  if (!any) return Status::Ok();
  if (in_order) {
    // As apply_edits moves runs of chains: those going left first, from the left, then
    // those going right, from the right; none overwrites a run still to move.
    for (const EntryMap::Run& r : moved.runs) {
      if (r.to < r.from) std::memmove(c + r.to, c + r.from, sizeof(xt_counters) * r.count);
    }
    for (auto it = moved.runs.rbegin(); it != moved.runs.rend(); ++it) {
      if (it->to > it->from) std::memmove(c + it->to, c + it->from, sizeof(xt_counters) * it->count);
    }
  } else {
    const std::vector<xt_counters> old(c, c + n_old);
    for (const EntryMap::Run& r : moved.runs) {
      for (uint32_t k = 0; k < r.count; ++k) {
        const size_t o = size_t{r.from} + k;
        if (r.to + k < n) c[r.to + k] = o < n_old ? old[o] : xt_counters{0, 0};
      }
    }
  }
  // New entries start at zero.
  uint32_t covered = 0;
  for (const EntryMap::Run& r : moved.runs) {
    if (r.to > covered) std::memset(c + covered, 0, sizeof(xt_counters) * (std::min(r.to, n) - covered));
    covered = std::max(covered, std::min(n, r.to + r.count));
  }
  if (n > covered) std::memset(c + covered, 0, sizeof(xt_counters) * (n - covered));
  std::memset(ci->name, 0, sizeof ci->name);
  std::strncpy(ci->name, table.c_str(), sizeof ci->name - 1);
  ci->num_counters = n;
  const size_t csize = sizeof(xt_counters_info) + sizeof(xt_counters) * n;
  const auto c0 = std::chrono::steady_clock::now();
  const int rc = ::setsockopt(fd, SOL_IP, IPT_SO_SET_ADD_COUNTERS, ci, static_cast<socklen_t>(csize));
  if (kernel_ms) *kernel_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - c0).count();
  // On failure the table is in place; only counters were lost.
  return rc < 0 ? Status::FromErrno("iptables: restore counters of table " + table, errno) : Status::Ok();
}

}  // namespace

Status write_table(TableImage& img, uint32_t old_num_entries, const EntryMap& moved, double* kernel_ms) {
  if (!img.buf_) return Status::Error("iptables: write of an empty image", EINVAL);
  auto* repl = reinterpret_cast<ipt_replace*>(img.buf_.get());
  std::memset(repl, 0, TableImage::kEntriesAt);
  std::strncpy(repl->name, img.name_.c_str(), sizeof repl->name - 1);
  repl->valid_hooks = img.valid_hooks_;
  repl->num_entries = img.num_entries_;
  repl->size = img.size_;
  for (const ChainRef& c : img.chains_) {
    if (c.hook < 0) continue;
    repl->hook_entry[c.hook] = c.body;
    repl->underflow[c.hook] = c.footer;
  }
  // One buffer for the old counters (the kernel writes them at the replace) and the new
  // ones restore_counters makes of them.
  const size_t slots = std::max<size_t>(old_num_entries, img.num_entries_);
  std::unique_ptr<char[]> cbuf(new char[sizeof(xt_counters_info) + sizeof(xt_counters) * slots]);
  auto* ci = reinterpret_cast<xt_counters_info*>(cbuf.get());
  repl->num_counters = old_num_entries;
  repl->counters = ci->counters;

  RawSocket sock;
  if (sock.fd() < 0) return Status::FromErrno("iptables: open raw socket", errno);
  const auto k0 = std::chrono::steady_clock::now();
  const size_t total = TableImage::kEntriesAt + img.size_;
  if (::setsockopt(sock.fd(), SOL_IP, IPT_SO_SET_REPLACE, repl, static_cast<socklen_t>(total)) < 0) {
    int err = errno;
    std::string hint = err == EAGAIN ? " (table changed meanwhile)" : "";
    return Status::FromErrno("iptables: replace table " + img.name_ + " (" + std::to_string(img.num_entries_) +
                                 " entries)" + hint,
                             err);
  }
  if (kernel_ms) *kernel_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - k0).count();
  return restore_counters(sock.fd(), img.name_, moved, ci, old_num_entries, kernel_ms);
}

}  // namespace knode::iptables::detail
