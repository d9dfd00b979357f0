// In-memory ip sets for unit tests, with the kernel's answers for the cases callers
// meet (duplicate set or entry, missing set, set in use) and call counters.
#pragma once

#include <linux/netfilter/ipset/ip_set.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "knode/dataplane/ipset.h"

namespace knode::ipset {

class FakeIpset : public Ipset {
 public:
  struct Calls {
    int create = 0, destroy = 0, flush = 0, add = 0, del = 0, list = 0;
  };
  bool available = true;
  Calls calls;

  bool is_available() override { return available; }

  Status create_set(const SetSpec& spec, bool exist_ok) override {
    ++calls.create;
    const std::string what = "create ipset " + spec.name + " (" + to_string(spec.type) + ")";
    if (spec.name.empty() || spec.name.size() > kMaxNameLength) {
      return Status::Error(what + ": bad name", EINVAL);
    }
    auto it = sets_.find(spec.name);
    if (it != sets_.end()) {
      if (exist_ok && it->second.spec.same_definition(spec)) return Status::Ok();
      return Status::Error(what + ": Set cannot be created: set with the same name already exists",
                           EEXIST);
    }
    sets_[spec.name].spec = spec;
    return Status::Ok();
  }

  Status destroy_set(const std::string& name) override {
    ++calls.destroy;
    auto it = sets_.find(name);
    if (it == sets_.end()) return missing("destroy ipset " + name);
    if (it->second.references > 0) {
      return Status::Error("destroy ipset " + name +
                               ": Set cannot be destroyed: it is in use by a kernel component",
                           IPSET_ERR_BUSY);
    }
    sets_.erase(it);
    return Status::Ok();
  }

  Status flush_set(const std::string& name) override {
    ++calls.flush;
    auto it = sets_.find(name);
    if (it == sets_.end()) return missing("flush ipset " + name);
    it->second.entries.clear();
    return Status::Ok();
  }

  Result<std::vector<std::string>> list_set_names() override {
    std::vector<std::string> names;
    for (const auto& [n, s] : sets_) names.push_back(n);
    return names;
  }

  Result<Set> list_set(const std::string& name) override {
    ++calls.list;
    auto it = sets_.find(name);
    if (it == sets_.end()) return missing("list ipset " + name);
    Set out;
    out.spec = it->second.spec;
    out.references = it->second.references;
    out.entries.assign(it->second.entries.begin(), it->second.entries.end());
    return out;
  }

  Status add_entry(const std::string& set, const Entry& e, bool exist_ok) override {
    ++calls.add;
    auto it = sets_.find(set);
    if (it == sets_.end()) return missing("add entry to ipset " + set);
    if (!it->second.entries.insert(e).second && !exist_ok) {
      return Status::Error("add " + e.str(it->second.spec.type) + " to ipset " + set +
                               ": Element cannot be added to the set: it's already added",
                           IPSET_ERR_EXIST);
    }
    return Status::Ok();
  }

  Status del_entry(const std::string& set, const Entry& e, bool missing_ok) override {
    ++calls.del;
    auto it = sets_.find(set);
    if (it == sets_.end()) return missing("delete entry from ipset " + set);
    if (it->second.entries.erase(e) == 0 && !missing_ok) {
      return Status::Error("delete " + e.str(it->second.spec.type) + " from ipset " + set +
                               ": Element cannot be deleted from the set: it's not added",
                           IPSET_ERR_EXIST);
    }
    return Status::Ok();
  }

  Result<bool> test_entry(const std::string& set, const Entry& e) override {
    auto it = sets_.find(set);
    if (it == sets_.end()) return missing("test entry in ipset " + set);
    return it->second.entries.count(e) > 0;
  }

  // Test helper: pretend an iptables rule references the set.
  void set_references(const std::string& name, uint32_t n) { sets_[name].references = n; }
  bool has_set(const std::string& name) const { return sets_.count(name) > 0; }

 private:
  struct Stored {
    SetSpec spec;
    std::set<Entry> entries;
    uint32_t references = 0;
  };
  static Status missing(const std::string& what) {
    return Status::Error(what + ": The set with the given name does not exist", ENOENT);
  }
  std::map<std::string, Stored> sets_;
};

}  // namespace knode::ipset
