// The plugin's entry point: CNI_* environment + stdin in, exit code + stdout out.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace knode::cni {

// Looks an environment variable up; injected so unit tests need no real environment.
using Getenv = std::function<std::optional<std::string>(const char* name)>;
Getenv process_env();

struct Response {
  int exit_code = 0;
  std::string out;  // what goes to stdout
};

Response run_plugin(const Getenv& env, std::string_view stdin_text);

}  // namespace knode::cni
