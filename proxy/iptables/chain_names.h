// kube-proxy's chain names: prefix + the first 16 characters of
// base32(sha256(servicePortName + protocol [+ endpoint])), so operators find the same
// KUBE-SVC-/KUBE-SEP-/KUBE-EXT-/KUBE-FW-/KUBE-SVL- names they know.
#pragma once

#include <string>
#include <string_view>

namespace knode::iptables_proxy {

// "KUBE-SVC-NPX46M4PTMTKRN6Y" for ("KUBE-SVC-", "default/kubernetes:https", "tcp").
std::string service_chain(std::string_view prefix, std::string_view service_port_name,
                          std::string_view lower_protocol);
// "KUBE-SEP-..." for an endpoint "10.244.1.5:8080" of that service port.
std::string endpoint_chain(std::string_view service_port_name, std::string_view lower_protocol,
                           std::string_view endpoint);

}  // namespace knode::iptables_proxy
