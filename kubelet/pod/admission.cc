#include "pod/admission.h"

#include <tuple>

namespace knode::kubelet {
namespace {

struct HostPort {
  std::string protocol, ip;
  int32_t port;
};

std::vector<HostPort> host_ports(const api::Pod& pod) {
  std::vector<HostPort> out;
  for (const auto* list : {&pod.spec.init_containers, &pod.spec.containers}) {
    for (const auto& c : *list) {
      for (const auto& p : c.ports) {
        if (p.host_port <= 0) continue;
        std::string ip = p.host_ip.empty() || p.host_ip == "::" ? "0.0.0.0" : p.host_ip;
        out.push_back({p.protocol.empty() ? "TCP" : p.protocol, ip, p.host_port});
      }
    }
  }
  return out;
}

bool conflict(const HostPort& a, const HostPort& b) {
  if (a.port != b.port || a.protocol != b.protocol) return false;
  return a.ip == b.ip || a.ip == "0.0.0.0" || b.ip == "0.0.0.0";
}

}  // namespace

std::optional<AdmitRejection> check_host_ports(const api::Pod& pod, const std::vector<const api::Pod*>& active) {
  const auto wanted = host_ports(pod);
  if (wanted.empty()) return std::nullopt;
  for (const api::Pod* other : active) {
    if (other->metadata.uid == pod.metadata.uid) continue;
    for (const auto& held : host_ports(*other)) {
      for (const auto& w : wanted) {
        if (conflict(w, held)) {
          return AdmitRejection{"NodePorts",
                                "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports"};
        }
      }
    }
  }
  return std::nullopt;
}

}  // namespace knode::kubelet
