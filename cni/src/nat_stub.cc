// Stand-in for builds without the iptables layer: asking for NAT fails clearly.
#include "nat.h"

namespace knode::cni {

namespace {
Error unavailable(const char* what) {
  return Error{kInvalidConfig, std::string(what) + " needs iptables support, which this build lacks", {}};
}
}  // namespace

bool nat_available() { return false; }
Done ensure_masquerade(const NetConf&, const std::vector<ResultIp>&) { return unavailable("ipMasq"); }
Done add_port_mappings(const NetConf&, const Attachment&, const std::vector<ResultIp>&) {
  return unavailable("portMappings");
}
Done remove_port_mappings(const NetConf&, const Attachment&) { return ok(); }
Done check_nat(const NetConf&, const Attachment&, const std::vector<ResultIp>&) { return ok(); }
Done gc_port_mappings(const NetConf&, const std::vector<Attachment>&) { return ok(); }

}  // namespace knode::cni
