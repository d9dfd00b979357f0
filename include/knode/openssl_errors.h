// OpenSSL's thread-local error queue as one line ("error:...; error:..."), emptying it:
// for the messages of whatever failed in an OpenSSL call. Header-only: every user links
// OpenSSL already.
#pragma once

#include <openssl/err.h>

#include <string>

namespace knode {

inline std::string openssl_errors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

}  // namespace knode
