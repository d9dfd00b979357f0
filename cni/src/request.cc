#include "request.h"

#include <cctype>

namespace knode::cni {

namespace {

Status bad_env(std::string msg) { return error(kInvalidEnvironment, std::move(msg)); }

bool valid_container_id(const std::string& id) {
  if (id.empty() || !std::isalnum(static_cast<unsigned char>(id[0]))) return false;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

bool valid_ifname(const std::string& name) {
  if (name.empty() || name.size() > 15 || name == "." || name == "..") return false;
  for (char c : name) {
    if (c == '/' || c == ':' || std::isspace(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

Result<Request> parse_request(const Getenv& env) {
  Request r;
  auto command = env("CNI_COMMAND");
  if (!command || command->empty()) return bad_env("CNI_COMMAND is not set");
  if (*command == "ADD") {
    r.command = Command::kAdd;
  } else if (*command == "DEL") {
    r.command = Command::kDel;
  } else if (*command == "CHECK") {
    r.command = Command::kCheck;
  } else if (*command == "VERSION") {
    r.command = Command::kVersion;
  } else if (*command == "STATUS") {
    r.command = Command::kStatus;
  } else if (*command == "GC") {
    r.command = Command::kGc;
  } else {
    return bad_env("CNI_COMMAND \"" + *command + "\" is not one of ADD, DEL, CHECK, VERSION, STATUS, GC");
  }
  r.container_id = env("CNI_CONTAINERID").value_or("");
  r.netns = env("CNI_NETNS").value_or("");
  r.ifname = env("CNI_IFNAME").value_or("");
  r.args = env("CNI_ARGS").value_or("");
  r.path = env("CNI_PATH").value_or("");
  const bool attachment = r.command == Command::kAdd || r.command == Command::kDel || r.command == Command::kCheck;
  if (!attachment) return r;
  if (r.container_id.empty()) return bad_env("CNI_CONTAINERID is not set");
  if (!valid_container_id(r.container_id)) return bad_env("CNI_CONTAINERID \"" + r.container_id + "\" is not a valid container ID");
  if (r.ifname.empty()) return bad_env("CNI_IFNAME is not set");
  if (!valid_ifname(r.ifname)) return bad_env("CNI_IFNAME \"" + r.ifname + "\" is not a valid interface name");
  // DEL must work without a namespace (it may be gone already).
  if (r.command != Command::kDel && r.netns.empty()) return bad_env("CNI_NETNS is not set");
  return r;
}

}  // namespace knode::cni
