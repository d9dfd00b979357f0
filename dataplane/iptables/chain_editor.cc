#include "knode/dataplane/iptables/chain_editor.h"

#include <cerrno>

namespace knode::iptables {
namespace {

Result<std::string> encoded(const Rule& rule) {
  if (Status s = rule.validate(); !s) return s;
  return rule.encode();
}

}  // namespace

int ChainEditor::find(const std::string& chain, const std::string& entry) const {
  auto rules = table_.rules(chain);
  if (!rules.ok()) return -1;
  for (size_t i = 0; i < rules->size(); ++i) {
    if ((*rules)[i] == entry) return static_cast<int>(i);
  }
  return -1;
}

bool ChainEditor::contains(const std::string& chain, const Rule& rule) const {
  auto entry = encoded(rule);
  return entry.ok() && table_.has_chain(chain) && find(chain, *entry) >= 0;
}

bool ChainEditor::holds_exactly(const std::string& chain, const std::vector<Rule>& rules) const {
  if (!table_.has_chain(chain)) return false;
  auto have = table_.rules(chain);
  if (!have.ok() || have->size() != rules.size()) return false;
  for (size_t i = 0; i < rules.size(); ++i) {
    auto want = encoded(rules[i]);
    if (!want.ok() || *want != (*have)[i]) return false;
  }
  return true;
}

Status ChainEditor::ensure_chain(const std::string& chain) {
  if (table_.has_chain(chain)) return Status::Ok();
  changed_ = true;
  return table_.create_chain(chain);
}

Status ChainEditor::ensure_rule(const std::string& chain, const Rule& rule, Position where) {
  auto entry = encoded(rule);
  if (!entry.ok()) return entry.status().Wrap("rule for " + chain);
  if (find(chain, *entry) >= 0) return Status::Ok();
  changed_ = true;
  return where == kFirst ? table_.insert(chain, *entry, 0) : table_.append(chain, *entry);
}

Status ChainEditor::remove_rule(const std::string& chain, const Rule& rule) {
  if (!table_.has_chain(chain)) return Status::Ok();
  auto entry = encoded(rule);
  if (!entry.ok()) return entry.status().Wrap("rule for " + chain);
  for (int pos = find(chain, *entry); pos >= 0; pos = find(chain, *entry)) {
    changed_ = true;
    if (Status s = table_.erase(chain, static_cast<unsigned>(pos)); !s) return s;
  }
  return Status::Ok();
}

Status ChainEditor::set_chain(const std::string& chain, const std::vector<Rule>& rules) {
  std::vector<std::string> entries;
  entries.reserve(rules.size());
  for (const auto& r : rules) {
    auto e = encoded(r);
    if (!e.ok()) return e.status().Wrap("rule for " + chain);
    entries.push_back(std::move(*e));
  }
  if (table_.has_chain(chain)) {
    auto have = table_.rules(chain);
    if (have.ok() && *have == entries) return Status::Ok();
    if (Status s = table_.flush_chain(chain); !s) return s;
  } else if (Status s = table_.create_chain(chain); !s) {
    return s;
  }
  changed_ = true;
  for (const auto& e : entries) {
    if (Status s = table_.append(chain, e); !s) return s;
  }
  return Status::Ok();
}

Status ChainEditor::drop_chain(const std::string& chain) {
  if (!table_.has_chain(chain)) return Status::Ok();
  changed_ = true;
  if (Status s = table_.flush_chain(chain); !s) return s;
  return table_.delete_chain(chain);
}

Status edit_table(const std::string& table, const std::function<Status(ChainEditor&)>& edit, int lock_wait_ms) {
  constexpr int kAttempts = 20;
  Status last;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    auto t = Table::open(table, lock_wait_ms);
    if (!t.ok()) return t.status();
    ChainEditor editor(*t);
    if (Status s = edit(editor); !s) return s;
    if (!editor.changed()) return Status::Ok();
    last = t->commit();
    if (last.ok() || last.error_number() != EAGAIN) return last;
  }
  return last.Wrap("iptables: table " + table + " kept changing under " + std::to_string(kAttempts) + " attempts");
}

}  // namespace knode::iptables
