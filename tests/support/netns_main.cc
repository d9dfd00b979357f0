#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "support/netns_util.h"

namespace knode::iptables::testing {
namespace {
std::string g_skip = "not initialised";
}

const std::string& netns_skip_reason() { return g_skip; }

std::string run(const std::string& cmd, int* rc) {
  std::string out;
  FILE* f = ::popen(cmd.c_str(), "r");
  if (!f) {
    if (rc) *rc = -1;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  int st = ::pclose(f);
  if (rc) *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

std::vector<std::string> saved(const std::string& table) {
  std::istringstream in(run("iptables-legacy-save -t " + table));
  std::vector<std::string> lines;
  std::string l;
  while (std::getline(in, l)) {
    if (l.empty() || l[0] == '#' || l[0] == '*' || l == "COMMIT") continue;
    if (l[0] == ':') l = l.substr(0, l.rfind(' '));  // drop "[0:0]"
    lines.push_back(l);
  }
  return lines;
}

void reset_tables() {
  for (const char* t : {"nat", "filter"}) {
    run(std::string("iptables-legacy -t ") + t + " -F; iptables-legacy -t " + t + " -X");
  }
}

}  // namespace knode::iptables::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  bool listing = false;
  for (int i = 1; i < argc; ++i) listing |= std::strstr(argv[i], "list_tests") != nullptr;
  using knode::iptables::testing::g_skip;
  if (listing) {
    g_skip = "listing only";
  } else if (::geteuid() != 0) {
    g_skip = "needs root to create a private network namespace";
  } else if (::unshare(CLONE_NEWNET) != 0) {
    g_skip = std::string("unshare(CLONE_NEWNET) failed: ") + std::strerror(errno);
  } else if (::system("iptables-legacy-save -t nat >/dev/null 2>&1") != 0) {
    g_skip = "iptables-legacy-save missing or the nat table is unavailable";
  } else {
    g_skip.clear();
  }
  return RUN_ALL_TESTS();
}
