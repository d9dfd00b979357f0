// Runs a program to completion with a deadline: stdin given, stdout and stderr captured.
// For CNI plugins, which the Docker backend runs itself (containerd runs them for CRI),
// and mount(8) for NFS volumes.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "knode/status.h"

namespace knode {

struct ProcessResult {
  int exit_code = 0;  // 128 + signal when a signal ended it
  std::string out, err;
};

// argv[0] is the program's path; env is the whole environment ("K=V"). At the timeout the
// program is killed (SIGKILL) and the call fails with ETIMEDOUT. Descriptors other than
// the three pipes are not inherited.
Result<ProcessResult> run_process(const std::vector<std::string>& argv,
                                  const std::vector<std::string>& env, const std::string& input,
                                  std::chrono::milliseconds timeout);

}  // namespace knode
