#pragma once
#include <string>
#include "knode/api/object.h"
#include "knode/status.h"
namespace knode::api {
// Upstream validation rules where a node depends on them. The error names the field:
// "spec.ports[0].port: 70000 out of range 1-65535".
Status validate(const Object& o);

bool is_dns1123_label(const std::string& s);      // "my-pod"
bool is_dns1123_subdomain(const std::string& s);  // "my.pod-1"
bool is_dns1035_label(const std::string& s);      // starts with a letter (Service names)
bool is_iana_svc_name(const std::string& s);      // named ports: "http", "dns-tcp"
}  // namespace knode::api
