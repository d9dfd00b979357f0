// Small edits of one iptables table: a few chains and rules at a time, for callers that
// own some chains among others' (a few chains per attached interface). The whole-table
// Reconciler is for callers that own a large, generated layout; this is the other case.
//
//   Status s = edit_table("nat", [&](ChainEditor& t) {
//     if (Status e = t.ensure_chain("MY-CHAIN"); !e) return e;
//     if (Status e = t.set_chain("MY-CHAIN", rules); !e) return e;
//     return t.ensure_rule("POSTROUTING", jump_to_my_chain, ChainEditor::kFirst);
//   });
//
// Every edit is idempotent: it changes the table only when it differs from what is
// asked, and edit_table commits only when something changed.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "knode/dataplane/iptables/rule.h"
#include "knode/dataplane/iptables/table.h"
#include "knode/status.h"

namespace knode::iptables {

class ChainEditor {
 public:
  enum Position : uint8_t { kFirst, kLast };

  explicit ChainEditor(Table& table) : table_(table) {}

  bool has_chain(const std::string& chain) const { return table_.has_chain(chain); }
  std::vector<std::string> chains() const { return table_.chains(); }
  // Whether `chain` holds `rule` (false when the chain is missing).
  bool contains(const std::string& chain, const Rule& rule) const;
  // Whether `chain` holds exactly `rules`, in order.
  bool holds_exactly(const std::string& chain, const std::vector<Rule>& rules) const;

  [[nodiscard]] Status ensure_chain(const std::string& chain);
  // Adds `rule` to `chain` (which must exist) unless it is there already.
  [[nodiscard]] Status ensure_rule(const std::string& chain, const Rule& rule, Position where = kLast);
  // Removes every copy of `rule` from `chain`; nothing when the chain is missing.
  [[nodiscard]] Status remove_rule(const std::string& chain, const Rule& rule);
  // Makes `chain` exist and hold exactly `rules`; untouched when it already does.
  [[nodiscard]] Status set_chain(const std::string& chain, const std::vector<Rule>& rules);
  // Flushes and deletes `chain` (every reference to it must be gone); nothing when missing.
  [[nodiscard]] Status drop_chain(const std::string& chain);

  bool changed() const { return changed_; }

 private:
  int find(const std::string& chain, const std::string& entry) const;
  Table& table_;
  bool changed_ = false;
};

// Opens `table` under the xtables lock (waiting up to lock_wait_ms), runs `edit` and
// commits when it changed something. When another program committed in between (the
// kernel answers EAGAIN) it starts over on a fresh copy, a bounded number of times.
[[nodiscard]] Status edit_table(const std::string& table, const std::function<Status(ChainEditor&)>& edit,
                                int lock_wait_ms = 5000);

}  // namespace knode::iptables
