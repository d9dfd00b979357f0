#include "knode/cni/ipam.h"

#include "knode/cni/ip_math.h"

namespace knode::cni {

namespace {

bool in_range(const Range& r, const net::IPAddress& ip) {
  if (ip.family() != r.first.family()) return false;
  Uint128 v = to_int(ip);
  return v >= to_int(r.first) && v <= to_int(r.last);
}

bool is_gateway(const RangeSet& set, const net::IPAddress& ip) {
  for (const auto& r : set) {
    if (r.gateway == ip) return true;
  }
  return false;
}

// Walks every address of the set once, starting right after `after` (or at the start
// of the first range), wrapping from the last range back to the first.
template <typename F>
std::optional<net::IPAddress> walk(const RangeSet& set, std::optional<net::IPAddress> after, F&& accept) {
  size_t start_range = 0;
  std::optional<net::IPAddress> start_ip;
  if (after) {
    for (size_t i = 0; i < set.size(); ++i) {
      if (in_range(set[i], *after)) {
        start_range = i;
        if (*after != set[i].last) {
          start_ip = next_ip(*after);
        } else {
          start_range = (i + 1) % set.size();
        }
        break;
      }
    }
  }
  for (size_t n = 0; n <= set.size(); ++n) {
    size_t i = (start_range + n) % set.size();
    const Range& r = set[i];
    net::IPAddress ip = (n == 0 && start_ip) ? *start_ip : r.first;
    // On the wrap-around pass the starting range is walked up to where we began.
    std::optional<Uint128> stop;
    if (n == set.size()) {
      if (!start_ip) break;
      stop = to_int(*start_ip);
    }
    while (true) {
      if (stop && to_int(ip) >= *stop) break;
      if (accept(ip)) return ip;
      if (ip == r.last) break;
      ip = next_ip(ip);
    }
  }
  return std::nullopt;
}

}  // namespace

const Range* find_range(const IpamConfig& conf, const net::IPAddress& ip) {
  for (const auto& set : conf.ranges) {
    for (const auto& r : set) {
      if (r.subnet.contains(ip)) return &r;
    }
  }
  return nullptr;
}

Result<Allocation> ipam_allocate(IpamStore& store, const IpamConfig& conf, const Attachment& owner) {
  // No scan for an earlier reservation of owner: the spec forbids a second ADD without
  // a DEL, and reading every reservation file would make each ADD O(pods).
  Allocation out;
  auto fail = [&](Status e) -> Result<Allocation> {
    // Rolling back: the runtime sees the first error; a reservation that cannot be
    // removed now is released by its DEL or by GC.
    for (const auto& ip : out.ips) (void)store.release(ip.address.ip);
    return e;
  };
  for (size_t idx = 0; idx < conf.ranges.size(); ++idx) {
    const RangeSet& set = conf.ranges[idx];
    Status io_failure;
    bool failed = false;
    std::optional<net::IPAddress> chosen = walk(set, store.last_reserved(idx), [&](const net::IPAddress& ip) {
      if (failed || is_gateway(set, ip)) return false;
      auto r = store.reserve(ip, owner, idx);
      if (!r.ok()) {
        failed = true;
        io_failure = r.status();
        return false;
      }
      return *r;
    });
    if (failed) return fail(io_failure);
    if (!chosen) return fail(error(kRangeExhausted, "no IP addresses available in range set " + range_set_str(set)));
    const Range* range = &set.front();
    for (const auto& r : set) {
      if (in_range(r, *chosen)) range = &r;
    }
    out.ips.push_back(ResultIp{link::IpNet{*chosen, range->subnet.prefix()}, range->gateway, std::nullopt});
  }
  for (const auto& rc : conf.routes) out.routes.push_back(ResultRoute{rc.dst, rc.gw});
  return out;
}

size_t ipam_free_count(const IpamStore& store, const RangeSet& set, size_t cap) {
  size_t n = 0;
  auto allocated = store.allocations();
  walk(set, std::nullopt, [&](const net::IPAddress& ip) {
    if (!is_gateway(set, ip) && allocated.find(ip) == allocated.end()) ++n;
    return n >= cap;
  });
  return n;
}

}  // namespace knode::cni
