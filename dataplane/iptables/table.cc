#include "knode/dataplane/iptables/table.h"

#include <libiptc/libiptc.h>

#include <cerrno>
#include <utility>

#include "iptables/entry.h"

namespace knode::iptables {
namespace {

Status iptc_error(const std::string& what, int err) {
  return Status::Error(what + ": " + iptc_strerror(err), err);
}

}  // namespace

Table::Table(std::string name, xtc_handle* h, detail::XtablesLock lock)
    : name_(std::move(name)), handle_(h), lock_(std::move(lock)) {}

Table::Table(Table&& o) noexcept
    : name_(std::move(o.name_)), handle_(std::exchange(o.handle_, nullptr)), lock_(std::move(o.lock_)) {}

Table& Table::operator=(Table&& o) noexcept {
  if (this != &o) {
    if (handle_) iptc_free(handle_);
    name_ = std::move(o.name_);
    handle_ = std::exchange(o.handle_, nullptr);
    lock_ = std::move(o.lock_);
  }
  return *this;
}

Table::~Table() {
  if (handle_) iptc_free(handle_);
}

Result<Table> Table::open(const std::string& name, int lock_wait_ms) {
  detail::XtablesLock held;
  if (lock_wait_ms >= 0) {
    auto lock = detail::XtablesLock::acquire(lock_wait_ms);
    if (!lock) return lock.status().Wrap("iptables: open table " + name);
    held = std::move(*lock);
  }
  xtc_handle* h = iptc_init(name.c_str());
  if (!h) return iptc_error("iptables: open table " + name, errno);
  return Table(name, h, std::move(held));
}

std::vector<std::string> Table::chains() const {
  std::vector<std::string> out;
  if (!handle_) return out;
  for (const char* c = iptc_first_chain(handle_); c; c = iptc_next_chain(handle_)) {
    out.emplace_back(c);
  }
  return out;
}

bool Table::has_chain(const std::string& chain) const {
  return handle_ && iptc_is_chain(chain.c_str(), handle_);
}

bool Table::is_builtin(const std::string& chain) const {
  return handle_ && iptc_builtin(chain.c_str(), handle_);
}

Result<std::vector<std::string>> Table::rules(const std::string& chain) const {
  if (!handle_) return Status::Error("iptables: table " + name_ + " already committed", EBADF);
  if (!iptc_is_chain(chain.c_str(), handle_)) {
    return Status::Error("iptables: list chain " + chain + " in table " + name_ + ": no such chain",
                         ENOENT);
  }
  std::vector<std::string> out;
  for (const ipt_entry* e = iptc_first_rule(chain.c_str(), handle_); e;
       e = iptc_next_rule(e, handle_)) {
    std::string bytes(reinterpret_cast<const char*>(e), e->next_offset);
    auto* copy = reinterpret_cast<ipt_entry*>(bytes.data());
    const xt_entry_target* t = detail::target_of(e);
    const char* label = nullptr;
    if (t->u.target_size == detail::kStandardTargetSize &&
        (t->u.user.name[0] == '\0' || detail::label_verdict(t->u.user.name) != 1 ||
         iptc_is_chain(t->u.user.name, handle_))) {
      label = iptc_get_target(e, handle_);
      if (!label) label = "";
    }
    detail::normalize(copy, label);
    out.push_back(std::move(bytes));
  }
  return out;
}

#define KNODE_IPTC_CALL(what, call)                                         \
  do {                                                                      \
    if (!handle_) return Status::Error(what + ": table committed", EBADF); \
    if (!(call)) return iptc_error(what, errno);                            \
  } while (0)

Status Table::create_chain(const std::string& chain) {
  KNODE_IPTC_CALL("iptables: create chain " + chain + " in " + name_,
                  iptc_create_chain(chain.c_str(), handle_));
  return Status::Ok();
}

Status Table::flush_chain(const std::string& chain) {
  KNODE_IPTC_CALL("iptables: flush chain " + chain + " in " + name_,
                  iptc_flush_entries(chain.c_str(), handle_));
  return Status::Ok();
}

Status Table::delete_chain(const std::string& chain) {
  KNODE_IPTC_CALL("iptables: delete chain " + chain + " in " + name_,
                  iptc_delete_chain(chain.c_str(), handle_));
  return Status::Ok();
}

Status Table::append(const std::string& chain, const std::string& entry) {
  KNODE_IPTC_CALL("iptables: append to " + chain + " in " + name_,
                  iptc_append_entry(chain.c_str(), reinterpret_cast<const ipt_entry*>(entry.data()),
                                    handle_));
  return Status::Ok();
}

Status Table::append(const std::string& chain, const Rule& rule) {
  Status s = rule.validate();
  if (!s) return s;
  return append(chain, rule.encode());
}

Status Table::insert(const std::string& chain, const std::string& entry, unsigned position) {
  KNODE_IPTC_CALL("iptables: insert at " + std::to_string(position) + " of " + chain + " in " + name_,
                  iptc_insert_entry(chain.c_str(), reinterpret_cast<const ipt_entry*>(entry.data()),
                                    position, handle_));
  return Status::Ok();
}

Status Table::replace(const std::string& chain, const std::string& entry, unsigned position) {
  KNODE_IPTC_CALL("iptables: replace rule " + std::to_string(position) + " of " + chain + " in " + name_,
                  iptc_replace_entry(chain.c_str(), reinterpret_cast<const ipt_entry*>(entry.data()),
                                     position, handle_));
  return Status::Ok();
}

Status Table::erase(const std::string& chain, unsigned position) {
  KNODE_IPTC_CALL("iptables: delete rule " + std::to_string(position) + " of " + chain + " in " + name_,
                  iptc_delete_num_entry(chain.c_str(), position, handle_));
  return Status::Ok();
}

Status Table::commit() {
  KNODE_IPTC_CALL("iptables: commit table " + name_, iptc_commit(handle_));
  iptc_free(handle_);
  handle_ = nullptr;
  lock_ = detail::XtablesLock();
  return Status::Ok();
}

#undef KNODE_IPTC_CALL

}  // namespace knode::iptables
