// The kernel's index of an ip set, which `-m set` rules carry instead of the set's name
// (iptables resolves names the same way, through getsockopt SO_IP_SET).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "knode/dataplane/iptables/rule.h"
#include "knode/status.h"

namespace knode::iptables {

// The index of set `name` in the current netns; an error when there is no such set.
Result<uint16_t> ipset_index(const std::string& name);

// Fills SetMatch::index of every set match in `rules` (each name looked up once).
Status resolve_set_indexes(std::vector<Rule>& rules);

}  // namespace knode::iptables
