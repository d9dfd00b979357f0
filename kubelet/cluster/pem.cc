#include "cluster/pem.h"

#include <algorithm>

#include "knode/api/base64.h"

namespace knode::kubelet {

Result<std::vector<std::string>> pem_blocks(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (true) {
    size_t begin = text.find("-----BEGIN ", pos);
    if (begin == std::string::npos) break;
    size_t begin_end = text.find("-----", begin + 11);
    size_t body = begin_end == std::string::npos ? std::string::npos : text.find('\n', begin_end);
    size_t end = body == std::string::npos ? std::string::npos : text.find("-----END ", body);
    if (end == std::string::npos) return Status::Error("a PEM block without its END line", EINVAL);
    std::string b64;
    size_t line_start = body + 1;
    while (line_start < end) {
      size_t nl = text.find('\n', line_start);
      std::string line = text.substr(line_start, std::min(nl, end) - line_start);
      if (line.find(':') == std::string::npos) {  // PEM headers ("Proc-Type: ...") are not data
        for (char c : line) {
          if (c != ' ' && c != '\t' && c != '\r') b64 += c;
        }
      }
      if (nl == std::string::npos) break;
      line_start = nl + 1;
    }
    auto der = api::base64_decode(b64);
    if (!der || der->empty()) return Status::Error("a PEM block that is not base64", EINVAL);
    out.push_back(std::move(*der));
    size_t after = text.find("-----", end + 9);
    pos = after == std::string::npos ? text.size() : after + 5;
  }
  return out;
}

std::string pem_certificate(const std::string& der) {
  std::string b64 = api::base64_encode(der);
  std::string out = "-----BEGIN CERTIFICATE-----\n";
  for (size_t i = 0; i < b64.size(); i += 64) out += b64.substr(i, 64) + "\n";
  return out + "-----END CERTIFICATE-----\n";
}

Result<std::string> clean_certificate_chain(const std::string& chain) {
  auto blocks = pem_blocks(chain);
  if (!blocks.ok()) return blocks.status();
  std::string out;
  for (const auto& der : *blocks) out += pem_certificate(der);
  return out;
}

}  // namespace knode::kubelet
