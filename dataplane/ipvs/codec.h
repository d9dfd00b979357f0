// Building and parsing the attributes of IPVS generic netlink messages. Pure functions
// over libnl's message buffers: no socket, no kernel, so they are unit-tested alone.
#pragma once

#include <netlink/attr.h>
#include <netlink/msg.h>

#include "knode/dataplane/ipvs.h"

namespace knode::ipvs::codec {

int address_family(const net::IPAddress& ip);             // AF_INET / AF_INET6

// Appends IPVS_CMD_ATTR_SERVICE. `full` adds the configuration (scheduler, flags,
// timeout, netmask) the kernel wants for add and update; without it only the identity.
Status put_service(nl_msg* msg, const VirtualServer& vs, bool full);
// Appends IPVS_CMD_ATTR_DEST; `full` as for put_service.
Status put_destination(nl_msg* msg, const RealServer& rs, bool full);
// Appends the IPVS_CMD_ATTR_TIMEOUT_* attributes of `t` (zeros too: "unchanged").
Status put_timeouts(nl_msg* msg, const Timeouts& t);

// Parses the nested IPVS_CMD_ATTR_SERVICE of a reply.
Result<VirtualServer> parse_service(nlattr* nested);
// Parses the nested IPVS_CMD_ATTR_DEST; `service_family` is used when the kernel
// does not send IPVS_DEST_ATTR_ADDR_FAMILY.
Result<RealServer> parse_destination(nlattr* nested, int service_family);
// Parses the top-level attributes of an IPVS_CMD_GET_CONFIG reply.
Timeouts parse_timeouts(nlattr* const* cmd_attrs);
// Parses an IPVS_*_ATTR_STATS or _STATS64 nest.
Stats parse_stats(nlattr* nested, bool is64);

}  // namespace knode::ipvs::codec
