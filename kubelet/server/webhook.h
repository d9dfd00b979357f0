// The reviews of auth.h asked of the API server, as upstream's webhook authenticator and
// authorizer ask them (with the kubelet's own credentials, which the Node authorizer lets
// create both): POST /apis/authentication.k8s.io/v1/tokenreviews and
// /apis/authorization.k8s.io/v1/subjectaccessreviews through the RestClient. A non-2xx
// answer or an unreadable body is an error naming the review and what the server said.
#pragma once

#include <string>

#include "knode/kube/client.h"
#include "server/auth.h"

namespace knode::kubelet {

class ApiReviewer final : public TokenReviewer, public AccessReviewer {
 public:
  explicit ApiReviewer(kube::RestClient& api) : api_(api) {}
  Result<std::optional<UserInfo>> review_token(const std::string& token) override;
  Result<AccessDecision> review_access(const AccessReview& review) override;

 private:
  kube::RestClient& api_;
};

// The request bodies, and the answers read back (for tests).
std::string token_review_body(const std::string& token);
Result<std::optional<UserInfo>> parse_token_review(const std::string& body);
std::string access_review_body(const AccessReview& review);
Result<AccessDecision> parse_access_review(const std::string& body);

}  // namespace knode::kubelet
