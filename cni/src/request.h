// One invocation as the runtime described it in CNI_* variables (private to the plugin).
#pragma once

#include <string>

#include "knode/cni/config.h"
#include "knode/cni/error.h"
#include "knode/cni/plugin.h"

namespace knode::cni {

enum class Command { kAdd, kDel, kCheck, kVersion, kStatus, kGc };

struct Request {
  Command command = Command::kVersion;
  std::string container_id;
  std::string netns;
  std::string ifname;
  std::string args;
  std::string path;
  Attachment attachment() const { return Attachment{container_id, ifname}; }
};

// Reads and validates the variables the command needs; code 4 when one is missing or bad.
Result<Request> parse_request(const Getenv& env);

}  // namespace knode::cni
