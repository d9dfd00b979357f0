// Fuzzes what the kubelet API reads from the API server when it authenticates and
// authorizes a request (kubelet/server/webhook.h): kubelet::parse_token_review (a
// TokenReview answer: authenticated, user name/uid/groups/extra) and
// kubelet::parse_access_review (a SubjectAccessReview answer: allowed, denied, reason,
// evaluationError); a user that authenticates is sent back in an access review body
// (access_review_body), as the authorizer does next. The first input line is also taken
// as "<METHOD> <path>" for kubelet::request_attributes (the verb and nodes/<subresource>
// a kubelet API request asks for). Errors travel as Result/Status.
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "fuzz_util.h"
#include "server/auth.h"     // kubelet/ (private to knode_kubelet)
#include "server/webhook.h"  // kubelet/ (private to knode_kubelet)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(knode::fuzz::as_view(data, size));

  auto user = knode::kubelet::parse_token_review(body);
  if (user.ok() && user->has_value()) {
    knode::kubelet::AccessReview review;
    review.user = **user;
    review.verb = "get";
    review.subresource = "proxy";
    review.node = "node-1";
    const std::string out = knode::kubelet::access_review_body(review);
    if (nlohmann::json::parse(out, nullptr, false).is_discarded()) {
      knode::fuzz::fail("access_review_body is not JSON", out);
    }
  }
  auto decision = knode::kubelet::parse_access_review(body);
  if (decision.ok()) (void)decision->reason.size();

  const std::string line = body.substr(0, body.find('\n'));
  const auto sp = line.find(' ');
  const auto attrs = knode::kubelet::request_attributes(
      line.substr(0, sp), sp == std::string::npos ? std::string_view() : std::string_view(line).substr(sp + 1));
  if (attrs.subresources.empty()) knode::fuzz::fail("request_attributes gave no subresource", line);
  (void)knode::kubelet::token_review_body(line);
  return 0;
}
