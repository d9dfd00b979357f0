#include "knode/cni/plugin.h"

#include <cstdlib>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "knode/cni/config.h"
#include "knode/cni/result.h"
#include "knode/cni/version.h"
#include "knode/json_get.h"
#include "request.h"

namespace knode::cni {

Getenv process_env() {
  return [](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

namespace {

// The version to answer in: the config's when it parses that far, else the latest.
std::string answer_version(std::string_view stdin_text) {
  auto j = nlohmann::json::parse(stdin_text.begin(), stdin_text.end(), nullptr, false);
  if (j.is_object() && j.contains("cniVersion") && j["cniVersion"].is_string()) {
    std::string v = j["cniVersion"];
    if (is_supported_version(v)) return v;
  }
  return std::string(kLatestVersion);
}

Response failure(const Status& e, const std::string& version) {
  return Response{1, jget::dump(error_json(e, version)) + "\n"};
}

}  // namespace

Response run_plugin(const Getenv& env, std::string_view stdin_text) {
  auto req = parse_request(env);
  if (!req.ok()) return failure(req.status(), answer_version(stdin_text));
  if (req->command == Command::kVersion) {
    // VERSION answers whatever stdin holds, even nothing.
    return Response{0, jget::dump(version_json(answer_version(stdin_text))) + "\n"};
  }
  const bool need_ipam = req->command != Command::kStatus && req->command != Command::kGc;
  auto conf = parse_netconf(stdin_text, need_ipam);
  if (!conf.ok()) return failure(conf.status(), answer_version(stdin_text));
  const std::string& version = conf->cni_version;

  Status done = Status::Ok();
  switch (req->command) {
    case Command::kAdd: {
      auto out = cmd_add(*req, *conf);
      if (!out.ok()) return failure(out.status(), version);
      return Response{0, *out + "\n"};
    }
    case Command::kDel:
      done = cmd_del(*req, *conf);
      break;
    case Command::kCheck:
      if (compare_versions(version, "0.4.0") < 0) {
        return failure(error(kIncompatibleVersion, "CHECK needs cniVersion 0.4.0 or later"), version);
      }
      done = cmd_check(*req, *conf);
      break;
    case Command::kGc:
      done = cmd_gc(*conf);
      break;
    case Command::kStatus:
      done = cmd_status(*conf);
      break;
    case Command::kVersion:
      break;
  }
  if (!done.ok()) return failure(done, version);
  return Response{0, ""};
}

}  // namespace knode::cni
