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

// The types of a reply's top-level attributes, for genlmsg_parse (IPVS_CMD_ATTR_MAX):
// with it an IPVS_CMD_ATTR_TIMEOUT_* shorter than a u32 makes the parse fail.
const nla_policy* cmd_policy();

// Parses the nested IPVS_CMD_ATTR_SERVICE of a reply. Its attributes are checked against
// the kernel's types (a short integer, a string without its NUL: EPROTO).
Result<VirtualServer> parse_service(nlattr* nested);
// Parses the nested IPVS_CMD_ATTR_DEST; `service_family` is used when the kernel
// does not send IPVS_DEST_ATTR_ADDR_FAMILY.
Result<RealServer> parse_destination(nlattr* nested, int service_family);
// Parses the top-level attributes of an IPVS_CMD_GET_CONFIG reply (split with
// cmd_policy(); a timeout too short to be a u32 reads as 0 all the same).
Timeouts parse_timeouts(nlattr* const* cmd_attrs);
// Parses an IPVS_*_ATTR_STATS or _STATS64 nest.
Stats parse_stats(nlattr* nested, bool is64);

}  // namespace knode::ipvs::codec
