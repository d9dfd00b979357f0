// Shared by the netns tests: each test process enters a private network namespace in
// main() (see netns_main.cc) and runs the iptables tools there.
#pragma once

#include <string>
#include <vector>

namespace knode::iptables::testing {

// Empty when the process is in a private netns; otherwise why the tests must skip.
const std::string& netns_skip_reason();

#define KNODE_REQUIRE_NETNS()                                          \
  do {                                                                 \
    if (!::knode::iptables::testing::netns_skip_reason().empty()) {    \
      GTEST_SKIP() << ::knode::iptables::testing::netns_skip_reason(); \
    }                                                                  \
  } while (0)

// Runs `cmd` with sh -c; returns stdout, sets *rc to the exit status.
std::string run(const std::string& cmd, int* rc = nullptr);

// iptables-legacy-save -t TABLE without comments, COMMIT and counters: chain headers
// as ":NAME POLICY", then rules, one per line.
std::vector<std::string> saved(const std::string& table);

// Empties every table we use (nat, filter) in this netns.
void reset_tables();

}  // namespace knode::iptables::testing
