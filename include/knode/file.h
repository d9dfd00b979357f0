// A whole file's contents, or an error naming it ("read /etc/knode/ca.crt: No such file or
// directory"). Header-only.
#pragma once

#include <cerrno>
#include <fstream>
#include <sstream>
#include <string>

#include "knode/status.h"

namespace knode {

inline Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::FromErrno("read " + path, errno == 0 ? ENOENT : errno);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace knode
