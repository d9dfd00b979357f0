// nf_tables netlink messages (the kernel's dumps, or our own requests) to values, parsed
// with libnftnl. Lookups keep the set's name; the caller attaches anonymous sets.
#pragma once

#include <linux/netlink.h>

#include <string>
#include <vector>

#include "knode/dataplane/nftables.h"

namespace knode::nftables::decode {

bool table(const nlmsghdr* nlh, Table* out);
bool chain(const nlmsghdr* nlh, std::string* table, Chain* out);
bool set(const nlmsghdr* nlh, std::string* table, SetSpec* out);
// NEWSETELEM: the set's name and its elements.
bool elements(const nlmsghdr* nlh, std::string* set, std::vector<Element>* out);
bool rule(const nlmsghdr* nlh, std::string* table, std::string* chain, Rule* out);
uint32_t generation(const nlmsghdr* nlh);

}  // namespace knode::nftables::decode
