#include "knode/dataplane/model.h"

#include <sstream>

namespace knode::dp {

const char* to_string(Protocol p) {
  switch (p) {
    case Protocol::kTCP: return "TCP";
    case Protocol::kUDP: return "UDP";
    case Protocol::kSCTP: return "SCTP";
  }
  return "?";
}

const char* to_lower_string(Protocol p) {
  switch (p) {
    case Protocol::kTCP: return "tcp";
    case Protocol::kUDP: return "udp";
    case Protocol::kSCTP: return "sctp";
  }
  return "?";
}

namespace {
struct SchedName {
  Scheduler s;
  const char* name;
};
constexpr SchedName kSchedulers[] = {
    {Scheduler::kRR, "rr"},     {Scheduler::kWRR, "wrr"}, {Scheduler::kLC, "lc"},
    {Scheduler::kWLC, "wlc"},   {Scheduler::kLBLC, "lblc"}, {Scheduler::kLBLCR, "lblcr"},
    {Scheduler::kDH, "dh"},     {Scheduler::kSH, "sh"},   {Scheduler::kSED, "sed"},
    {Scheduler::kNQ, "nq"},     {Scheduler::kMH, "mh"},
};
}  // namespace

const char* to_string(Scheduler s) {
  for (const auto& e : kSchedulers) {
    if (e.s == s) return e.name;
  }
  return "?";
}

bool parse_scheduler(const std::string& name, Scheduler* out) {
  for (const auto& e : kSchedulers) {
    if (name == e.name) {
      *out = e.s;
      return true;
    }
  }
  return false;
}

std::string Backend::str() const {
  if (ip.is_v6()) return "[" + ip.str() + "]:" + std::to_string(port);
  return ip.str() + ":" + std::to_string(port);
}

std::string ServicePort::str() const {
  std::ostringstream os;
  os << name << ' ' << cluster_ip.str() << ':' << port << '/' << to_string(protocol);
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Backend& b) {
  os << b.str() << (b.ready ? "" : " !ready") << (b.terminating ? " terminating" : "")
     << (b.local ? " local" : "") << " w=" << b.weight;
  return os;
}

std::ostream& operator<<(std::ostream& os, const ServicePort& s) {
  os << s.str() << " nodePort=" << s.node_port << " backends=[";
  for (size_t i = 0; i < s.cluster_backends.size(); ++i) {
    if (i) os << ", ";
    os << s.cluster_backends[i];
  }
  return os << "]";
}

}  // namespace knode::dp
