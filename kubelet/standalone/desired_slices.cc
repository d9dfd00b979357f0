#include "standalone/desired_slices.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <tuple>

#include "knode/fnv.h"
#include "knode/net.h"

namespace knode::kubelet {
namespace {

std::string pod_name(const api::Pod& pod) {
  return pod.metadata.namespace_ + "/" + pod.metadata.name;
}

bool has_cluster_ip(const api::Service& svc) {
  return !svc.spec.cluster_ip.empty() && svc.spec.cluster_ip != "None";
}

const std::string& protocol_or_tcp(const std::string& p) {
  static const std::string kTcp = "TCP";
  return p.empty() ? kTcp : p;
}

auto port_tuple(const api::EndpointPort& p) {
  return std::make_tuple(p.name.value_or(""), p.protocol.value_or(""), p.port.value_or(0),
                         p.app_protocol.value_or(""));
}

bool ports_less(const std::vector<api::EndpointPort>& a, const std::vector<api::EndpointPort>& b) {
  return std::lexicographical_compare(
      a.begin(), a.end(), b.begin(), b.end(),
      [](const auto& x, const auto& y) { return port_tuple(x) < port_tuple(y); });
}

bool group_less(const EndpointGroup& a, const EndpointGroup& b) {
  if (a.address_type != b.address_type) return a.address_type < b.address_type;
  return ports_less(a.ports, b.ports);
}

// An endpoint's identity across computations: its addresses and its pod (two host-network
// pods share an address and are still two endpoints, as upstream hashes them).
std::string endpoint_key(const api::Endpoint& ep) {
  std::string k;
  for (const auto& a : ep.addresses) k += a + ",";
  if (ep.target_ref) k += "/" + ep.target_ref->namespace_ + "/" + ep.target_ref->name;
  return k;
}

bool endpoint_less(const api::Endpoint& a, const api::Endpoint& b) {
  auto ip = [](const api::Endpoint& e) {
    return e.addresses.empty() ? std::optional<net::IPAddress>()
                               : net::IPAddress::Parse(e.addresses[0]);
  };
  auto ia = ip(a), ib = ip(b);
  if (ia != ib) return ia < ib;
  return endpoint_key(a) < endpoint_key(b);
}

// The pod's IPs, parsed and printed canonically: status.podIPs, or status.podIP when the
// list is empty (the API server fills one from the other).
std::vector<net::IPAddress> pod_ips(const api::Pod& pod, std::vector<std::string>* problems) {
  std::vector<std::pair<std::string, std::string>> raw;  // (field, text)
  const auto& st = pod.status;
  if (!st.pod_ips.empty()) {
    for (size_t i = 0; i < st.pod_ips.size(); ++i) {
      raw.emplace_back("status.podIPs[" + std::to_string(i) + "].ip", st.pod_ips[i].ip);
    }
  } else if (!st.pod_ip.empty()) {
    raw.emplace_back("status.podIP", st.pod_ip);
  }
  std::vector<net::IPAddress> out;
  for (const auto& [field, text] : raw) {
    auto ip = net::IPAddress::Parse(text);
    if (!ip) {
      if (problems) {
        problems->push_back("Pod " + pod_name(pod) + ": " + field + ": \"" + text +
                            "\" is not an IP address");
      }
      continue;
    }
    if (std::find(out.begin(), out.end(), *ip) == out.end()) out.push_back(*ip);
  }
  return out;
}

std::vector<api::EndpointPort> endpoint_ports(const api::Service& svc, const api::Pod& pod,
                                              std::vector<std::string>* problems) {
  std::vector<api::EndpointPort> out;
  for (const auto& sp : svc.spec.ports) {
    auto target = find_target_port(pod, sp);
    if (!target) {
      if (problems) {
        problems->push_back("Pod " + pod_name(pod) + " has no " + protocol_or_tcp(sp.protocol) +
                            " container port named \"" + sp.target_port.str() + "\" (Service " +
                            svc.metadata.namespace_ + "/" + svc.metadata.name + " port \"" +
                            sp.name + "\"); the port is left out of its endpoint");
      }
      continue;
    }
    api::EndpointPort ep;
    ep.name = sp.name;
    ep.port = *target;
    ep.protocol = protocol_or_tcp(sp.protocol);
    if (!sp.app_protocol.empty()) ep.app_protocol = sp.app_protocol;
    out.push_back(std::move(ep));
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return port_tuple(a) < port_tuple(b); });
  return out;
}

api::Endpoint pod_endpoint(const api::Service& svc, const api::Pod& pod,
                           std::vector<std::string> addresses, const SliceContext& ctx) {
  api::Endpoint ep;
  ep.addresses = std::move(addresses);
  bool serving = is_pod_ready(pod);
  bool terminating = pod.metadata.deletion_timestamp.is_set();
  // A terminating pod is never "ready" (unless the service publishes not-ready
  // addresses): consumers fall back to serving+terminating endpoints on their own.
  ep.conditions.ready = svc.spec.publish_not_ready_addresses || (serving && !terminating);
  ep.conditions.serving = serving;
  ep.conditions.terminating = terminating;
  api::ObjectReference ref;
  ref.kind = "Pod";
  ref.namespace_ = pod.metadata.namespace_;
  ref.name = pod.metadata.name;
  ref.uid = pod.metadata.uid;
  ep.target_ref = std::move(ref);
  const std::string& node = pod.spec.node_name.empty() ? ctx.node_name : pod.spec.node_name;
  if (!node.empty()) {
    ep.node_name = node;
    if (ctx.zone_of) {
      if (auto zone = ctx.zone_of(node); zone && !zone->empty()) ep.zone = *zone;
    }
  }
  if (!pod.spec.hostname.empty() && pod.spec.subdomain == svc.metadata.name &&
      pod.metadata.namespace_ == svc.metadata.namespace_) {
    ep.hostname = pod.spec.hostname;
  }
  return ep;
}

bool is_reserved_label(const std::string& key) {
  return key == api::EndpointSlice::kServiceNameLabel || key == kManagedByLabel ||
         key == kHeadlessServiceLabel;
}

api::EndpointSlice new_slice(const api::Service& svc, const EndpointGroup& group) {
  api::EndpointSlice es;
  es.metadata.namespace_ = svc.metadata.namespace_;
  for (const auto& [k, v] : svc.metadata.labels) {
    if (!is_reserved_label(k)) es.metadata.labels[k] = v;
  }
  if (!has_cluster_ip(svc)) es.metadata.labels[kHeadlessServiceLabel] = "";
  es.metadata.labels[api::EndpointSlice::kServiceNameLabel] = svc.metadata.name;
  es.metadata.labels[kManagedByLabel] = kEndpointSliceControllerName;
  api::OwnerReference owner;
  owner.api_version = "v1";
  owner.kind = "Service";
  owner.name = svc.metadata.name;
  owner.uid = svc.metadata.uid;
  owner.controller = true;
  owner.block_owner_deletion = true;
  es.metadata.owner_references.push_back(std::move(owner));
  es.address_type = group.address_type;
  es.ports = group.ports;
  return es;
}

}  // namespace

bool manages_endpoint_slices(const api::Service& svc) {
  return !svc.spec.selector.empty() && svc.spec.type != "ExternalName";
}

bool selector_matches(const api::StringMap& selector, const api::StringMap& labels) {
  if (selector.empty()) return false;  // no selector selects nothing
  for (const auto& [k, v] : selector) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

bool is_pod_ready(const api::Pod& pod) {
  for (const auto& c : pod.status.conditions) {
    if (c.type == "Ready") return c.status == "True";
  }
  return false;
}

std::optional<int32_t> find_target_port(const api::Pod& pod, const api::ServicePortSpec& port) {
  const auto& t = port.target_port;
  if (t.is_int()) return t.int_value();
  if (t.empty()) return port.port;  // targetPort defaults to port
  const std::string& proto = protocol_or_tcp(port.protocol);
  auto search = [&](const api::Container& c) -> std::optional<int32_t> {
    for (const auto& cp : c.ports) {
      if (cp.name == t.str_value() && protocol_or_tcp(cp.protocol) == proto)
        return cp.container_port;
    }
    return std::nullopt;
  };
  for (const auto& c : pod.spec.containers) {
    if (auto p = search(c)) return p;
  }
  for (const auto& c : pod.spec.init_containers) {
    if (c.restart_policy.value_or("") != "Always") continue;  // only sidecars serve
    if (auto p = search(c)) return p;
  }
  return std::nullopt;
}

std::vector<std::string> service_address_types(const api::Service& svc) {
  std::set<std::string> types;
  for (const auto& f : svc.spec.ip_families) {
    if (f == "IPv4" || f == "IPv6") types.insert(f);
  }
  if (types.empty() && has_cluster_ip(svc)) {
    std::vector<std::string> ips = svc.spec.cluster_ips;
    if (ips.empty()) ips.push_back(svc.spec.cluster_ip);
    for (const auto& s : ips) {
      auto ip = net::IPAddress::Parse(s);
      types.insert(ip && ip->is_v6() ? "IPv6" : "IPv4");
    }
  }
  if (types.empty()) types = {"IPv4", "IPv6"};
  return {types.begin(), types.end()};
}

std::vector<EndpointGroup> desired_endpoints(const api::Service& svc,
                                             const std::vector<const api::Pod*>& pods,
                                             const SliceContext& ctx,
                                             std::vector<std::string>* problems) {
  std::vector<EndpointGroup> groups;
  if (!manages_endpoint_slices(svc)) return groups;
  auto types = service_address_types(svc);
  auto group_for = [&](const std::string& type,
                       const std::vector<api::EndpointPort>& ports) -> EndpointGroup& {
    for (auto& g : groups) {
      if (g.address_type == type && g.ports == ports) return g;
    }
    groups.push_back(EndpointGroup{type, ports, {}});
    return groups.back();
  };
  for (const api::Pod* pod : pods) {
    if (pod->metadata.namespace_ != svc.metadata.namespace_) continue;
    if (!selector_matches(svc.spec.selector, pod->metadata.labels)) continue;
    // Succeeded and Failed pods never serve again.
    if (pod->status.phase == "Succeeded" || pod->status.phase == "Failed") continue;
    auto ips = pod_ips(*pod, problems);
    if (ips.empty()) continue;
    auto ports = endpoint_ports(svc, *pod, problems);
    for (const auto& type : types) {
      std::vector<std::string> addresses;
      for (const auto& ip : ips) {
        if (ip.is_v6() == (type == "IPv6")) addresses.push_back(ip.str());
      }
      if (addresses.empty()) continue;
      group_for(type, ports)
          .endpoints.push_back(pod_endpoint(svc, *pod, std::move(addresses), ctx));
    }
  }
  for (auto& g : groups) std::sort(g.endpoints.begin(), g.endpoints.end(), endpoint_less);
  std::sort(groups.begin(), groups.end(), group_less);
  return groups;
}

std::string generated_slice_name(const api::Service& svc, int attempt) {
  // Upstream's generateName alphabet (no vowels, no look-alikes).
  static constexpr char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
  constexpr uint64_t kBase = sizeof(kAlphabet) - 1;
  uint64_t h =
      fnv1a64(svc.metadata.namespace_ + "/" + svc.metadata.name + "#" + std::to_string(attempt));
  std::string suffix;
  for (int i = 0; i < 5; ++i) {
    suffix += kAlphabet[h % kBase];
    h /= kBase;
  }
  return svc.metadata.name + "-" + suffix;
}

std::vector<api::EndpointSlice> place_endpoints(const api::Service& svc,
                                                const std::vector<EndpointGroup>& desired,
                                                const SliceState& state, size_t max_endpoints) {
  if (max_endpoints == 0) max_endpoints = kDefaultMaxEndpointsPerSlice;
  std::vector<EndpointGroup> groups = desired;
  // An address type without endpoints still gets a slice: an empty placeholder.
  for (const auto& type : service_address_types(svc)) {
    bool has = std::any_of(groups.begin(), groups.end(),
                           [&](const auto& g) { return g.address_type == type; });
    if (!has) groups.push_back(EndpointGroup{type, {}, {}});
  }
  std::sort(groups.begin(), groups.end(), group_less);

  std::vector<const api::EndpointSlice*> current;
  for (const auto& es : state.current) current.push_back(&es);
  std::sort(current.begin(), current.end(),
            [](const auto* a, const auto* b) { return a->metadata.name < b->metadata.name; });
  std::set<const api::EndpointSlice*> claimed;

  std::vector<api::EndpointSlice> out;      // named
  std::vector<api::EndpointSlice> unnamed;  // new, named below
  std::vector<std::string> dropped;         // names of current slices no longer needed
  std::map<std::string, std::string> dropped_type;

  for (const auto& g : groups) {
    std::map<std::string, const api::Endpoint*> want;
    for (const auto& ep : g.endpoints) want.emplace(endpoint_key(ep), &ep);
    std::set<std::string> placed;
    std::vector<api::EndpointSlice> kept;
    // Endpoints stay in the slice that holds them.
    for (const auto* es : current) {
      if (claimed.contains(es) || es->address_type != g.address_type || es->ports != g.ports)
        continue;
      claimed.insert(es);
      api::EndpointSlice s = new_slice(svc, g);
      s.metadata.name = es->metadata.name;
      for (const auto& ep : es->endpoints) {
        auto k = endpoint_key(ep);
        auto it = want.find(k);
        if (it == want.end() || placed.contains(k) || s.endpoints.size() >= max_endpoints) continue;
        s.endpoints.push_back(*it->second);
        placed.insert(k);
      }
      kept.push_back(std::move(s));
    }
    // New endpoints fill the slices with room, then new slices.
    std::vector<const api::Endpoint*> rest;
    for (const auto& ep : g.endpoints) {
      if (!placed.contains(endpoint_key(ep))) rest.push_back(&ep);
    }
    size_t next = 0;
    for (auto& s : kept) {
      while (next < rest.size() && s.endpoints.size() < max_endpoints)
        s.endpoints.push_back(*rest[next++]);
    }
    bool placeholder_kept = false;
    for (auto& s : kept) {
      // One empty slice stays as the placeholder of a group without endpoints.
      if (s.endpoints.empty() && (!g.endpoints.empty() || placeholder_kept)) {
        dropped.push_back(s.metadata.name);
        dropped_type[s.metadata.name] = s.address_type;
        continue;
      }
      placeholder_kept = placeholder_kept || s.endpoints.empty();
      std::sort(s.endpoints.begin(), s.endpoints.end(), endpoint_less);
      out.push_back(std::move(s));
    }
    while (next < rest.size()) {
      api::EndpointSlice s = new_slice(svc, g);
      while (next < rest.size() && s.endpoints.size() < max_endpoints)
        s.endpoints.push_back(*rest[next++]);
      std::sort(s.endpoints.begin(), s.endpoints.end(), endpoint_less);
      unnamed.push_back(std::move(s));
    }
    if (g.endpoints.empty() && kept.empty()) unnamed.push_back(new_slice(svc, g));
  }
  for (const auto* es : current) {
    if (!claimed.contains(es)) {
      dropped.push_back(es->metadata.name);
      dropped_type[es->metadata.name] = es->address_type;
    }
  }
  std::sort(dropped.begin(), dropped.end());

  // New slices take over dropped names of their address type (an update rather than a
  // delete and a create, as upstream does), then fresh names no one holds.
  std::set<std::string> in_use;
  for (const auto* es : current) in_use.insert(es->metadata.name);
  int attempt = 0;
  for (auto& s : unnamed) {
    auto reuse = std::find_if(dropped.begin(), dropped.end(),
                              [&](const auto& n) { return dropped_type[n] == s.address_type; });
    if (reuse != dropped.end()) {
      s.metadata.name = *reuse;
      dropped.erase(reuse);
    } else {
      std::string name;
      do {
        name = generated_slice_name(svc, attempt++);
      } while (in_use.contains(name) || (state.name_taken && state.name_taken(name)));
      s.metadata.name = name;
      in_use.insert(name);
    }
    out.push_back(std::move(s));
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.metadata.name < b.metadata.name; });
  return out;
}

std::vector<api::EndpointSlice> desired_endpoint_slices(const api::Service& svc,
                                                        const std::vector<const api::Pod*>& pods,
                                                        const SliceContext& ctx,
                                                        const SliceState& state,
                                                        std::vector<std::string>* problems) {
  if (!manages_endpoint_slices(svc)) return {};
  return place_endpoints(svc, desired_endpoints(svc, pods, ctx, problems), state,
                         ctx.max_endpoints_per_slice);
}

}  // namespace knode::kubelet
