// CNI spec versions knode-cni speaks, and how a result is shaped for each.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace knode::cni {

inline constexpr std::string_view kLatestVersion = "1.1.0";
const std::vector<std::string>& supported_versions();  // ascending
bool is_supported_version(std::string_view v);
// -1, 0, 1 like strcmp, comparing "a.b.c" numerically; unparsable parts compare as 0.
int compare_versions(std::string_view a, std::string_view b);

}  // namespace knode::cni
