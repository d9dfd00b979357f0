#include "iptables/chain_names.h"

#include <openssl/sha.h>

namespace knode::iptables_proxy {
namespace {

std::string hash16(std::string_view input) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  // RFC 4648 base32; 16 characters use the first 10 bytes exactly.
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  std::string out;
  out.reserve(16);
  uint64_t buffer = 0;
  int bits = 0;
  for (int i = 0; i < 10; ++i) {
    buffer = (buffer << 8) | digest[i];
    bits += 8;
    while (bits >= 5) {
      out += kAlphabet[(buffer >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out;
}

}  // namespace

std::string service_chain(std::string_view prefix, std::string_view name, std::string_view proto) {
  std::string in;
  in.reserve(name.size() + proto.size());
  in.append(name).append(proto);
  return std::string(prefix) + hash16(in);
}

std::string endpoint_chain(std::string_view name, std::string_view proto, std::string_view endpoint) {
  std::string in;
  in.reserve(name.size() + proto.size() + endpoint.size());
  in.append(name).append(proto).append(endpoint);
  return "KUBE-SEP-" + hash16(in);
}

}  // namespace knode::iptables_proxy
