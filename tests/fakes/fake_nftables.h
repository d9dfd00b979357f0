// In-memory nf_tables for unit tests: tables as values, transactions applied all or
// nothing in phase order, with the kernel's answers for what callers meet (ENOENT for a
// missing table, chain, set or element, EEXIST for a different element or set under an
// existing name, EBUSY for deleting a chain or set something still uses, ERESTART for a
// stale generation). It records the operations of each commit so a test can check what
// a sync touched, and prints a table as `nft list table` would.
#pragma once

#include <cerrno>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "knode/dataplane/nftables.h"
#include "knode/dataplane/nftables/print.h"

namespace knode::nftables {

class FakeNftables : public Nftables {
 public:
  // Operations of the last successful commit, as "add rule <chain>: <rule>",
  // "flush chain <c>", "add element <set> <key>", ...
  std::vector<std::string> last_ops;
  int commits = 0, failed_commits = 0, lists = 0;

  // The next commit fails with this status, changing nothing.
  void fail_next_commit(Status s) { fail_next_ = std::move(s); }
  // The commit made when `successes` commits in all (since the fake was made) have
  // succeeded fails so.
  void fail_commit_after(int successes, Status s) { fail_after_ = {successes, std::move(s)}; }
  // Called after each successful commit.
  std::function<void()> after_commit;
  // Something else changed the ruleset (the generation moves).
  void bump_generation() { ++generation_; }

  TableContent* table(Family f, const std::string& name) {
    auto it = tables_.find({f, name});
    return it == tables_.end() ? nullptr : &it->second;
  }
  std::string list(Family f, const std::string& name) {
    auto* t = table(f, name);
    return t ? print_table(*t) : "";
  }

  Result<uint32_t> generation() override { return generation_; }

  Result<bool> list_table(Family f, const std::string& name, TableVisitor& v) override {
    ++lists;
    auto* t = table(f, name);
    if (!t) return false;
    v.table(t->table);
    for (const auto& s : t->sets) {
      auto elements = s.elements;
      v.set(s.spec, std::move(elements));
    }
    for (const auto& c : t->chains) {
      v.chain(c.chain);
      for (const auto& r : c.rules) {
        Rule copy = r;
        v.rule(c.chain.name, std::move(copy));
      }
    }
    return true;
  }

  std::unique_ptr<Transaction> begin(Family f, const std::string& name, std::optional<uint32_t> gen) override {
    return std::make_unique<Tx>(*this, f, name, gen);
  }

 private:
  struct Op {
    enum Kind { kAddTable, kDelTable, kAddChain, kFlushChain, kDelChain, kAddRule, kDelRule, kAddSet, kFlushSet,
                kDelSet, kAddElems, kDelElems } kind;
    std::string name;  // chain or set
    Table table;
    Chain chain;
    Rule rule;
    uint64_t handle = 0;
    SetSpec set;
    std::vector<Element> elements;
  };

  class Tx final : public Transaction {
   public:
    Tx(FakeNftables& f, Family fam, std::string table, std::optional<uint32_t> gen)
        : f_(f), fam_(fam), table_(std::move(table)), gen_(gen) {}
    void phase(uint8_t p) override { phase_ = p < kPhases ? p : kPhases - 1; }
    void add_table(const Table& t) override { push({Op::kAddTable, "", t}); }
    void delete_table() override { push({Op::kDelTable}); }
    void add_chain(const Chain& c) override {
      Op o{Op::kAddChain, c.name};
      o.chain = c;
      push(std::move(o));
    }
    void flush_chain(std::string_view c) override { push({Op::kFlushChain, std::string(c)}); }
    void delete_chain(std::string_view c) override { push({Op::kDelChain, std::string(c)}); }
    void add_rule(std::string_view c, const Rule& r) override {
      Op o{Op::kAddRule, std::string(c)};
      o.rule = r;
      push(std::move(o));
    }
    void delete_rule(std::string_view c, uint64_t handle) override {
      Op o{Op::kDelRule, std::string(c)};
      o.handle = handle;
      push(std::move(o));
    }
    void add_set(const SetSpec& s) override {
      Op o{Op::kAddSet, s.name};
      o.set = s;
      push(std::move(o));
    }
    void flush_set(std::string_view s) override { push({Op::kFlushSet, std::string(s)}); }
    void delete_set(std::string_view s) override { push({Op::kDelSet, std::string(s)}); }
    void add_elements(std::string_view s, std::span<const Element> e) override {
      Op o{Op::kAddElems, std::string(s)};
      o.elements.assign(e.begin(), e.end());
      push(std::move(o));
    }
    void delete_elements(std::string_view s, std::span<const Element> e) override {
      Op o{Op::kDelElems, std::string(s)};
      o.elements.assign(e.begin(), e.end());
      push(std::move(o));
    }
    size_t size() const override {
      size_t n = 0;
      for (const auto& p : ops_) n += p.size();
      return n;
    }
    Status commit() override { return f_.apply(*this); }

    FakeNftables& f_;
    Family fam_;
    std::string table_;
    std::optional<uint32_t> gen_;
    uint8_t phase_ = 0;
    std::vector<Op> ops_[kPhases];

   private:
    void push(Op o) { ops_[phase_].push_back(std::move(o)); }
  };

  static Status err(const std::string& what, int code) { return Status::FromErrno(what, code); }

  static bool refers_to_chain(const Rule& r, const std::string& chain) {
    for (const auto& e : r.exprs) {
      if (const auto* i = std::get_if<Immediate>(&e); i && i->dreg == reg::kVerdict && i->verdict.chain == chain) {
        return true;
      }
      if (const auto* l = std::get_if<Lookup>(&e); l && l->anonymous) {
        for (const auto& el : l->anonymous->elements) {
          if (el.verdict && el.verdict->chain == chain) return true;
        }
      }
    }
    return false;
  }
  static bool refers_to_set(const Rule& r, const std::string& set) {
    for (const auto& e : r.exprs) {
      if (const auto* l = std::get_if<Lookup>(&e); l && !l->anonymous && l->set == set) return true;
      if (const auto* d = std::get_if<Dynset>(&e); d && d->set == set) return true;
    }
    return false;
  }
  static ChainContent* find_chain(TableContent& t, const std::string& name) {
    for (auto& c : t.chains) {
      if (c.chain.name == name) return &c;
    }
    return nullptr;
  }
  static SetContent* find_set(TableContent& t, const std::string& name) {
    for (auto& s : t.sets) {
      if (s.spec.name == name) return &s;
    }
    return nullptr;
  }
  // Chains a rule or element sends packets to must exist.
  static Status check_targets(TableContent& t, const Rule& r, const std::string& what) {
    for (const auto& e : r.exprs) {
      auto verdict_ok = [&](const Verdict& v) {
        return v.chain.empty() || find_chain(t, v.chain) != nullptr;
      };
      if (const auto* i = std::get_if<Immediate>(&e); i && i->dreg == reg::kVerdict && !verdict_ok(i->verdict)) {
        return err(what, ENOENT);
      }
      if (const auto* l = std::get_if<Lookup>(&e)) {
        if (!l->anonymous && !find_set(t, l->set)) return err(what, ENOENT);
        if (l->anonymous) {
          for (const auto& el : l->anonymous->elements) {
            if (el.verdict && !verdict_ok(*el.verdict)) return err(what, ENOENT);
          }
        }
      }
      if (const auto* d = std::get_if<Dynset>(&e); d && !find_set(t, d->set)) return err(what, ENOENT);
    }
    return Status::Ok();
  }

  Status apply(Tx& tx) {
    if (fail_next_) {
      Status s = *fail_next_;
      fail_next_.reset();
      ++failed_commits;
      return s;
    }
    if (fail_after_ && fail_after_->first == commits) {
      Status s = fail_after_->second;
      fail_after_.reset();
      ++failed_commits;
      return s;
    }
    if (tx.gen_ && *tx.gen_ != generation_) {
      ++failed_commits;
      return err("commit: the ruleset changed since it was read", ERESTART);
    }
    auto tables = tables_;  // all or nothing
    std::vector<std::string> ops;
    const std::string where = std::string(family_name(tx.fam_)) + " " + tx.table_;
    const auto key = std::make_pair(tx.fam_, tx.table_);
    for (auto& phase : tx.ops_) {
      for (auto& o : phase) {
        auto it = tables.find(key);
        TableContent* t = it == tables.end() ? nullptr : &it->second;
        Status s = apply_one(tables, t, key, where, o, ops);
        if (!s.ok()) {
          ++failed_commits;
          return s;
        }
      }
    }
    tables_ = std::move(tables);
    last_ops = std::move(ops);
    ++commits;
    if (tx.size() > 0) ++generation_;
    if (after_commit) after_commit();
    return Status::Ok();
  }

  Status apply_one(std::map<std::pair<Family, std::string>, TableContent>& tables, TableContent* t,
                   const std::pair<Family, std::string>& key, const std::string& where, Op& o,
                   std::vector<std::string>& ops) {
    auto need_table = [&](const std::string& what) { return t ? Status::Ok() : err(what, ENOENT); };
    switch (o.kind) {
      case Op::kAddTable: {
        if (!t) {
          TableContent c;
          c.table = o.table;
          c.table.family = key.first;
          c.table.name = key.second;
          tables[key] = std::move(c);
        }
        ops.push_back("add table " + where);
        return Status::Ok();
      }
      case Op::kDelTable:
        if (!t) return err("delete table " + where, ENOENT);
        tables.erase(key);
        ops.push_back("delete table " + where);
        return Status::Ok();
      case Op::kAddChain: {
        const std::string what = "add chain " + where + " " + o.name;
        if (Status s = need_table(what); !s.ok()) return s;
        if (auto* c = find_chain(*t, o.name)) {
          if (c->chain.base != o.chain.base) return err(what, EEXIST);
          c->chain.comment = o.chain.comment;
        } else {
          t->chains.push_back(ChainContent{o.chain, {}});
        }
        ops.push_back("add chain " + o.name);
        return Status::Ok();
      }
      case Op::kFlushChain: {
        const std::string what = "flush chain " + where + " " + o.name;
        if (Status s = need_table(what); !s.ok()) return s;
        auto* c = find_chain(*t, o.name);
        if (!c) return err(what, ENOENT);
        c->rules.clear();
        ops.push_back("flush chain " + o.name);
        return Status::Ok();
      }
      case Op::kDelChain: {
        const std::string what = "delete chain " + where + " " + o.name;
        if (Status s = need_table(what); !s.ok()) return s;
        auto* c = find_chain(*t, o.name);
        if (!c) return err(what, ENOENT);
        for (const auto& other : t->chains) {
          if (other.chain.name == o.name) continue;
          for (const auto& r : other.rules) {
            if (refers_to_chain(r, o.name)) return err(what, EBUSY);
          }
        }
        for (const auto& s : t->sets) {
          for (const auto& e : s.elements) {
            if (e.verdict && e.verdict->chain == o.name) return err(what, EBUSY);
          }
        }
        t->chains.erase(t->chains.begin() + (c - t->chains.data()));
        ops.push_back("delete chain " + o.name);
        return Status::Ok();
      }
      case Op::kAddRule: {
        const std::string what = "add rule " + where + " " + o.name + ": " + print_rule(o.rule);
        if (Status s = need_table(what); !s.ok()) return s;
        auto* c = find_chain(*t, o.name);
        if (!c) return err(what, ENOENT);
        if (Status s = check_targets(*t, o.rule, what); !s.ok()) return s;
        Rule r = o.rule;
        r.handle = ++handle_;
        c->rules.push_back(std::move(r));
        ops.push_back("add rule " + o.name + ": " + print_rule(o.rule));
        return Status::Ok();
      }
      case Op::kDelRule: {
        const std::string what = "delete rule " + where + " " + o.name;
        if (Status s = need_table(what); !s.ok()) return s;
        auto* c = find_chain(*t, o.name);
        if (!c) return err(what, ENOENT);
        for (auto it = c->rules.begin(); it != c->rules.end(); ++it) {
          if (it->handle == o.handle) {
            c->rules.erase(it);
            ops.push_back("delete rule " + o.name);
            return Status::Ok();
          }
        }
        return err(what, ENOENT);
      }
      case Op::kAddSet: {
        const std::string what = "add set " + where + " " + o.name;
        if (Status s = need_table(what); !s.ok()) return s;
        if (auto* s = find_set(*t, o.name)) {
          if (!(s->spec == o.set)) return err(what, EEXIST);
        } else {
          t->sets.push_back(SetContent{o.set, {}});
        }
        ops.push_back("add set " + o.name);
        return Status::Ok();
      }
      case Op::kFlushSet:
      case Op::kDelSet: {
        const bool del = o.kind == Op::kDelSet;
        const std::string what = (del ? "delete set " : "flush set ") + where + " " + o.name;
        if (Status s = need_table(what); !s.ok()) return s;
        auto* s = find_set(*t, o.name);
        if (!s) return err(what, ENOENT);
        if (del) {
          for (const auto& c : t->chains) {
            for (const auto& r : c.rules) {
              if (refers_to_set(r, o.name)) return err(what, EBUSY);
            }
          }
          t->sets.erase(t->sets.begin() + (s - t->sets.data()));
        } else {
          s->elements.clear();
        }
        ops.push_back((del ? "delete set " : "flush set ") + o.name);
        return Status::Ok();
      }
      case Op::kAddElems:
      case Op::kDelElems: {
        const bool add = o.kind == Op::kAddElems;
        auto* s = t ? find_set(*t, o.name) : nullptr;
        for (const auto& e : o.elements) {
          const std::string text = s ? print_element(e, s->spec) : e.key;
          const std::string what = std::string(add ? "add element " : "delete element ") + where + " " + o.name +
                                   " { " + text + " }";
          if (!s) return err(what, ENOENT);
          if (e.key.size() != s->spec.key_len) return err(what, EINVAL);
          auto it = std::find_if(s->elements.begin(), s->elements.end(),
                                 [&](const Element& x) { return x.key == e.key && x.flags == e.flags; });
          if (add) {
            if (e.verdict && !e.verdict->chain.empty() && !find_chain(*t, e.verdict->chain)) return err(what, ENOENT);
            if (it != s->elements.end()) {
              if (!(*it == e)) return err(what, EEXIST);
              continue;
            }
            s->elements.push_back(e);
          } else {
            if (it == s->elements.end()) return err(what, ENOENT);
            s->elements.erase(it);
          }
          ops.push_back(std::string(add ? "add element " : "delete element ") + o.name + " " +
                        print_key(e.key, s->spec.key_type, s->spec.key_len));
        }
        return Status::Ok();
      }
    }
    return Status::Ok();
  }

  std::map<std::pair<Family, std::string>, TableContent> tables_;
  uint32_t generation_ = 1;
  uint64_t handle_ = 0;
  std::optional<Status> fail_next_;
  std::optional<std::pair<int, Status>> fail_after_;
};

}  // namespace knode::nftables
