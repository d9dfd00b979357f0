#include "nftables/chain_names.h"

#include <openssl/sha.h>

#include <algorithm>

namespace knode::nftables_proxy {
namespace {

// kube-proxy truncates names to fit nftables' 256 characters, minus its longest prefix.
constexpr size_t kBaseLengthMax = 256 - 16;

std::string hash_and_truncate(const std::string& name) {
  std::string out = hash8(name) + "-" + name;
  if (out.size() > kBaseLengthMax) out = out.substr(0, kBaseLengthMax - 3) + "...";
  return out;
}

}  // namespace

std::string hash_base32(std::string_view text, size_t chars) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  // RFC 4648 base32 of the digest's first bits.
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  chars = std::min<size_t>(chars, SHA256_DIGEST_LENGTH * 8 / 5);
  std::string out;
  uint64_t buffer = 0;
  int bits = 0;
  for (size_t i = 0; out.size() < chars; ++i) {
    buffer = (buffer << 8) | digest[i];
    bits += 8;
    while (bits >= 5 && out.size() < chars) {
      out += kAlphabet[(buffer >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out;
}

std::string hash8(std::string_view text) { return hash_base32(text, 8); }

std::string service_port_base_name(const proxy::ServicePort& sp) {
  // sp.name is "namespace/name" or "namespace/name:port".
  const std::string& n = sp.name;
  size_t colon = n.find(':', n.find('/'));
  std::string ns_name = colon == std::string::npos ? n : n.substr(0, colon);
  std::string port = colon == std::string::npos ? "" : n.substr(colon + 1);
  return ns_name + "/" + net::to_lower_string(sp.protocol) + "/" + port;
}

std::string service_chain_base(const proxy::ServicePort& sp) { return hash_and_truncate(service_port_base_name(sp)); }

std::string endpoint_chain_base(const proxy::ServicePort& sp, const proxy::Endpoint& ep) {
  return hash_and_truncate(service_port_base_name(sp) + "__" + ep.ip.str() + "/" + std::to_string(ep.port));
}

}  // namespace knode::nftables_proxy
