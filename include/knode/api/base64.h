#pragma once
#include <optional>
#include <string>
#include <string_view>
namespace knode::api {
std::string base64_encode(std::string_view in);
// Standard alphabet with padding, as Kubernetes encodes []byte; nullopt when malformed.
std::optional<std::string> base64_decode(std::string_view in);
}  // namespace knode::api
