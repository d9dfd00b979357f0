#include "server/webhook.h"

#include <nlohmann/json.hpp>

#include "knode/json_get.h"

namespace knode::kubelet {

using nlohmann::json;

namespace {

constexpr const char* kTokenReviews = "/apis/authentication.k8s.io/v1/tokenreviews";
constexpr const char* kAccessReviews = "/apis/authorization.k8s.io/v1/subjectaccessreviews";

Result<json> status_of(const std::string& body, const char* what) {
  auto j = json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("status") || !j["status"].is_object()) {
    return Status::Error(std::string(what) + ": the API server's answer has no status", EIO);
  }
  return j["status"];
}

Result<kube::Response> post(kube::RestClient& api, const char* path, const std::string& body,
                            const char* what) {
  auto r = api.request("POST", path, body);
  if (!r.ok()) return r.status().Wrap(what);
  if (!r->ok()) {
    return Status::Error(
        std::string(what) + ": " + std::to_string(r->status) + " " + kube::status_message(*r), EIO);
  }
  return r;
}

}  // namespace

std::string token_review_body(const std::string& token) {
  json j = {{"apiVersion", "authentication.k8s.io/v1"},
            {"kind", "TokenReview"},
            {"spec", {{"token", token}}}};
  return jget::dump(j);
}

Result<std::optional<UserInfo>> parse_token_review(const std::string& body) {
  auto st = status_of(body, "TokenReview");
  if (!st.ok()) return st.status();
  const json& s = *st;
  // Not authenticated (status.error says why: invalid, expired, ...): a 401 either way.
  // A status.authenticated that is not a boolean is read as false: fail closed.
  if (!jget::boolean(s, "authenticated")) return std::optional<UserInfo>();
  UserInfo u;
  if (s.contains("user") && s["user"].is_object()) {
    const json& user = s["user"];
    u.name = jget::str(user, "username");
    u.uid = jget::str(user, "uid");
    if (user.contains("groups") && user["groups"].is_array()) {
      for (const auto& g : user["groups"]) {
        if (g.is_string()) u.groups.push_back(g.get<std::string>());
      }
    }
    if (user.contains("extra") && user["extra"].is_object()) {
      for (const auto& [k, v] : user["extra"].items()) {
        auto& vals = u.extra[k];
        if (v.is_array()) {
          for (const auto& x : v) {
            if (x.is_string()) vals.push_back(x.get<std::string>());
          }
        }
      }
    }
  }
  if (u.name.empty()) return Status::Error("TokenReview: authenticated without a user name", EIO);
  return std::optional<UserInfo>(std::move(u));
}

std::string access_review_body(const AccessReview& r) {
  json spec = {{"user", r.user.name},
               {"groups", r.user.groups},
               {"resourceAttributes",
                {{"verb", r.verb},
                 {"group", ""},
                 {"version", "v1"},
                 {"resource", "nodes"},
                 {"subresource", r.subresource},
                 {"name", r.node}}}};
  if (!r.user.uid.empty()) spec["uid"] = r.user.uid;
  if (!r.user.extra.empty()) spec["extra"] = r.user.extra;
  json j = {
      {"apiVersion", "authorization.k8s.io/v1"}, {"kind", "SubjectAccessReview"}, {"spec", spec}};
  return jget::dump(j);
}

Result<AccessDecision> parse_access_review(const std::string& body) {
  auto st = status_of(body, "SubjectAccessReview");
  if (!st.ok()) return st.status();
  AccessDecision d;
  // Fail closed on a malformed answer: an "allowed" that is not a boolean does not allow,
  // and a "denied" that is not a boolean (or null, which Go reads as absent) denies.
  const json& denied = jget::member(*st, "denied");
  const bool is_denied = !denied.is_null() && (!denied.is_boolean() || denied.get<bool>());
  d.allowed = jget::boolean(*st, "allowed") && !is_denied;
  d.reason = jget::str(*st, "reason");
  const std::string err = jget::str(*st, "evaluationError");
  if (!d.allowed && !err.empty() && d.reason.empty()) d.reason = err;
  return d;
}

Result<std::optional<UserInfo>> ApiReviewer::review_token(const std::string& token) {
  auto r = post(api_, kTokenReviews, token_review_body(token), "TokenReview");
  if (!r.ok()) return r.status();
  return parse_token_review(r->body);
}

Result<AccessDecision> ApiReviewer::review_access(const AccessReview& review) {
  auto r = post(api_, kAccessReviews, access_review_body(review), "SubjectAccessReview");
  if (!r.ok()) return r.status();
  return parse_access_review(r->body);
}

}  // namespace knode::kubelet
