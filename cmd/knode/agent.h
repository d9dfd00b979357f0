#pragma once
#include "knode/config.h"
namespace knode {
// Runs the node agent (kubelet and/or proxy per config.component) until SIGTERM/SIGINT.
// Returns the process exit code.
int run_agent(const config::AgentConfig& config);
}  // namespace knode
