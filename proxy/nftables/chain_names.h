// kube-proxy's nftables names: a chain or set per service port and per endpoint, named
// prefix + base32(sha256(name))[:8] + "-" + name, where name is
// "namespace/service/protocol/port" (and "__ip/port" for an endpoint), so an operator
// reads `service-ULMVA6XW-ns1/svc1/tcp/p80` as on any cluster.
#pragma once

#include <string>
#include <string_view>

#include "knode/proxy/model.h"

namespace knode::nftables_proxy {

// "ns1/svc1/tcp/p80" for the service port "ns1/svc1:p80" (TCP); "ns1/svc1/tcp/" when the
// port has no name.
std::string service_port_base_name(const proxy::ServicePort& sp);
// "ULMVA6XW-ns1/svc1/tcp/p80".
std::string service_chain_base(const proxy::ServicePort& sp);
// "5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80".
std::string endpoint_chain_base(const proxy::ServicePort& sp, const proxy::Endpoint& ep);
// base32(sha256(text)), the first `chars` characters (at most 51).
std::string hash_base32(std::string_view text, size_t chars);
// The first 8 (40 bits), as kube-proxy's chain names use them.
std::string hash8(std::string_view text);

}  // namespace knode::nftables_proxy
