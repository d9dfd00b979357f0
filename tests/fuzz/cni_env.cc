// Fuzzes the CNI plugin's environment: cni::parse_request over a Getenv built from the
// input (no setenv: the plugin takes its environment as a function). Input: KEY=VALUE
// lines (CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS, CNI_PATH, ...),
// then an empty line, then the stdin text. When the request does not parse, or asks for
// VERSION, the whole plugin (cni::run_plugin) runs on it too: those paths answer without
// touching the host. ADD/DEL/CHECK/STATUS/GC would program links, iptables and the IPAM
// store, so for them only parse_request runs. Errors travel as Result/Status.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "fuzz_util.h"
#include "knode/cni/plugin.h"
#include "request.h"  // cni/src (private): parse_request, Request

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = knode::fuzz::as_view(data, size);
  std::string_view env_part = text, stdin_part;
  if (auto blank = text.find("\n\n"); blank != std::string_view::npos) {
    env_part = text.substr(0, blank);
    stdin_part = text.substr(blank + 2);
  }
  std::map<std::string, std::string> vars;
  for (const std::string& line : knode::fuzz::split(env_part, '\n')) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    vars.emplace(line.substr(0, eq), line.substr(eq + 1));  // first one wins, as getenv
  }
  const knode::cni::Getenv env = [&vars](const char* name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };

  auto req = knode::cni::parse_request(env);
  if (req.ok()) {
    (void)req->attachment();
    if (req->command != knode::cni::Command::kVersion) return 0;
  }
  knode::cni::Response r = knode::cni::run_plugin(env, stdin_part);
  // The plugin's stdout is always one JSON document (or nothing), whatever came in.
  if (!r.out.empty()) {
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (j.is_discarded()) knode::fuzz::fail("run_plugin printed something that is not JSON", r.out);
  }
  return 0;
}
