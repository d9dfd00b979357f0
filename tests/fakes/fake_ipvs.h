// An in-memory IPVS table for unit tests: same errors as the kernel (EEXIST on a
// duplicate, ESRCH for a missing service, ENOENT for a missing destination), plus
// counters of the calls so tests can check that a sync touched only what changed.
#pragma once

#include <cerrno>
#include <algorithm>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "knode/dataplane/ipvs.h"

namespace knode::ipvs {

class FakeIpvs : public Ipvs {
 public:
  struct Calls {
    int add_service = 0, update_service = 0, delete_service = 0;
    int add_destination = 0, update_destination = 0, delete_destination = 0;
    int list_services = 0, list_destinations = 0, flush = 0, set_timeouts = 0;
    int mutations() const {
      return add_service + update_service + delete_service + add_destination +
             update_destination + delete_destination + flush + set_timeouts;
    }
  };

  bool available = true;
  Calls calls;
  // Makes the next call of that operation fail with this errno (0: none).
  int fail_next_add_service = 0;
  int fail_next_add_destination = 0;

  bool is_available() override { return available; }

  Result<std::vector<VirtualServer>> list_services() override {
    ++calls.list_services;
    if (!available) return unavailable("list IPVS services");
    std::vector<VirtualServer> out;
    for (const auto& [k, e] : table_) out.push_back(e.vs);
    return out;
  }

  Result<VirtualServer> get_service(const VirtualServer& key) override {
    auto it = table_.find(key_of(key));
    if (it == table_.end()) return Status::FromErrno("get IPVS service " + key.str(), ESRCH);
    return it->second.vs;
  }

  Status add_service(const VirtualServer& vs) override {
    ++calls.add_service;
    const std::string what = "add IPVS service " + vs.str();
    if (!available) return unavailable(what);
    if (int e = std::exchange(fail_next_add_service, 0)) return Status::FromErrno(what, e);
    auto k = key_of(vs);
    if (table_.count(k)) return Status::FromErrno(what, EEXIST);
    if (!known_scheduler(vs.scheduler)) return Status::FromErrno(what, ENOENT);
    Entry e;
    e.vs = vs;
    e.vs.flags = (vs.flags & kUserFlags) | kFlagHashed;
    e.vs.stats = {};
    table_[k] = e;
    return Status::Ok();
  }

  Status update_service(const VirtualServer& vs) override {
    ++calls.update_service;
    const std::string what = "update IPVS service " + vs.str();
    auto it = table_.find(key_of(vs));
    if (it == table_.end()) return Status::FromErrno(what, ESRCH);
    if (!known_scheduler(vs.scheduler)) return Status::FromErrno(what, ENOENT);
    Stats keep = it->second.vs.stats;
    it->second.vs = vs;
    it->second.vs.flags = (vs.flags & kUserFlags) | kFlagHashed;
    it->second.vs.stats = keep;
    return Status::Ok();
  }

  Status delete_service(const VirtualServer& vs) override {
    ++calls.delete_service;
    if (table_.erase(key_of(vs)) == 0) {
      return Status::FromErrno("delete IPVS service " + vs.str(), ESRCH);
    }
    return Status::Ok();
  }

  Result<std::vector<RealServer>> list_destinations(const VirtualServer& vs) override {
    ++calls.list_destinations;
    auto it = table_.find(key_of(vs));
    if (it == table_.end()) {
      return Status::FromErrno("list IPVS destinations of " + vs.str(), ESRCH);
    }
    return it->second.dests;
  }

  Status add_destination(const VirtualServer& vs, const RealServer& rs) override {
    ++calls.add_destination;
    const std::string what = "add IPVS destination " + rs.str() + " to " + vs.str();
    if (int e = std::exchange(fail_next_add_destination, 0)) return Status::FromErrno(what, e);
    auto* e = find(vs);
    if (e == nullptr) return Status::FromErrno(what, ESRCH);
    if (find_dest(*e, rs) != e->dests.end()) return Status::FromErrno(what, EEXIST);
    RealServer copy = rs;
    copy.active_connections = copy.inactive_connections = copy.persistent_connections = 0;
    copy.stats = {};
    e->dests.push_back(copy);
    return Status::Ok();
  }

  Status update_destination(const VirtualServer& vs, const RealServer& rs) override {
    ++calls.update_destination;
    const std::string what = "update IPVS destination " + rs.str() + " of " + vs.str();
    auto* e = find(vs);
    if (e == nullptr) return Status::FromErrno(what, ESRCH);
    auto it = find_dest(*e, rs);
    if (it == e->dests.end()) return Status::FromErrno(what, ENOENT);
    it->weight = rs.weight;
    it->forward = rs.forward;
    it->upper_threshold = rs.upper_threshold;
    it->lower_threshold = rs.lower_threshold;
    return Status::Ok();
  }

  Status delete_destination(const VirtualServer& vs, const RealServer& rs) override {
    ++calls.delete_destination;
    const std::string what = "delete IPVS destination " + rs.str() + " from " + vs.str();
    auto* e = find(vs);
    if (e == nullptr) return Status::FromErrno(what, ESRCH);
    auto it = find_dest(*e, rs);
    if (it == e->dests.end()) return Status::FromErrno(what, ENOENT);
    e->dests.erase(it);
    return Status::Ok();
  }

  Result<Timeouts> get_timeouts() override { return timeouts_; }

  Status set_timeouts(const Timeouts& t) override {
    ++calls.set_timeouts;
    if (t.tcp) timeouts_.tcp = t.tcp;
    if (t.tcp_fin) timeouts_.tcp_fin = t.tcp_fin;
    if (t.udp) timeouts_.udp = t.udp;
    return Status::Ok();
  }

  Status flush() override {
    ++calls.flush;
    table_.clear();
    return Status::Ok();
  }

  // Test helpers: simulate connections on a destination (for graceful termination).
  void set_connections(const VirtualServer& vs, const RealServer& rs, uint32_t active,
                       uint32_t inactive) {
    if (auto* e = find(vs)) {
      auto it = find_dest(*e, rs);
      if (it != e->dests.end()) {
        it->active_connections = active;
        it->inactive_connections = inactive;
      }
    }
  }
  size_t service_count() const { return table_.size(); }

 private:
  using Key = std::tuple<net::IPAddress, uint16_t, net::Protocol>;
  struct Entry {
    VirtualServer vs;
    std::vector<RealServer> dests;
  };

  static Key key_of(const VirtualServer& vs) { return {vs.address, vs.port, vs.protocol}; }
  static bool known_scheduler(const std::string& s) {
    static const char* kNames[] = {"rr",  "wrr", "lc", "wlc", "lblc", "lblcr",
                                   "dh",  "sh",  "sed", "nq", "mh",   "fo", "ovf"};
    return std::any_of(std::begin(kNames), std::end(kNames),
                       [&](const char* n) { return s == n; });
  }
  static Status unavailable(const std::string& what) {
    return Status::Error(what + ": IPVS is not available in this kernel", ENOENT);
  }
  Entry* find(const VirtualServer& vs) {
    auto it = table_.find(key_of(vs));
    return it == table_.end() ? nullptr : &it->second;
  }
  static std::vector<RealServer>::iterator find_dest(Entry& e, const RealServer& rs) {
    return std::find_if(e.dests.begin(), e.dests.end(),
                        [&](const RealServer& d) { return d.same_key(rs); });
  }

  std::map<Key, Entry> table_;
  Timeouts timeouts_{900, 120, 300};
};

}  // namespace knode::ipvs
