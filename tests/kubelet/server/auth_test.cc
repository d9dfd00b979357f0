// The kubelet API's authentication and authorization decisions, with fake reviewers and a
// fake clock: upstream's path -> subresource mapping, the x509 / token union, the caches
// and their lifetimes, and the answers' texts.
#include "server/auth.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "fakes/fake_clock.h"
#include "server/webhook.h"

namespace knode::kubelet {
namespace {

using namespace std::chrono_literals;
using knode::testing::FakeClock;
using Strings = std::vector<std::string>;

class FakeReviewer final : public TokenReviewer, public AccessReviewer {
 public:
  Result<std::optional<UserInfo>> review_token(const std::string& token) override {
    ++token_calls;
    if (token == "broken") return Status::Error("TokenReview: 503 the server is down", EIO);
    auto it = tokens.find(token);
    if (it == tokens.end()) return std::optional<UserInfo>();
    return std::optional<UserInfo>(it->second);
  }
  Result<AccessDecision> review_access(const AccessReview& r) override {
    reviews.push_back(r);
    if (fail_access) return Status::Error("SubjectAccessReview: connection refused", ECONNREFUSED);
    bool ok = allowed.count({r.user.name, r.verb + " " + r.subresource}) > 0;
    return AccessDecision{ok, ok ? "RBAC: allowed" : ""};
  }
  void allow(const std::string& user, const std::string& verb_sub) {
    allowed.insert({user, verb_sub});
  }

  std::map<std::string, UserInfo> tokens;
  std::set<std::pair<std::string, std::string>> allowed;
  std::vector<AccessReview> reviews;
  int token_calls = 0;
  bool fail_access = false;
};

http::Request request(std::string method, std::string path) {
  http::Request r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.tls = true;
  return r;
}

http::Request with_cert(http::Request r, std::string cn, Strings orgs, bool verified = true) {
  http::PeerCertificate c;
  c.verified = verified;
  c.common_name = std::move(cn);
  c.organizations = std::move(orgs);
  if (!verified) c.verify_error = "unable to get local issuer certificate";
  r.peer_certificate = c;
  return r;
}

http::Request with_token(http::Request r, const std::string& token) {
  r.headers.emplace_back("Authorization", "Bearer " + token);
  return r;
}

TEST(RequestAttributes, UpstreamsMappingOfMethodAndPath) {
  auto a = [](const char* m, const char* p) { return request_attributes(m, p); };
  EXPECT_EQ(a("GET", "/stats/summary"), (NodeRequestAttributes{"get", {"stats"}}));
  EXPECT_EQ(a("GET", "/stats"), (NodeRequestAttributes{"get", {"stats"}}));
  EXPECT_EQ(a("GET", "/metrics"), (NodeRequestAttributes{"get", {"metrics"}}));
  EXPECT_EQ(a("GET", "/metrics/cadvisor"), (NodeRequestAttributes{"get", {"metrics"}}));
  EXPECT_EQ(a("GET", "/logs/messages"), (NodeRequestAttributes{"get", {"log"}}));
  EXPECT_EQ(a("GET", "/spec/"), (NodeRequestAttributes{"get", {"proxy"}}));
  EXPECT_EQ(a("GET", "/pods"), (NodeRequestAttributes{"get", {"pods", "proxy"}}));
  EXPECT_EQ(a("GET", "/runningpods/"), (NodeRequestAttributes{"get", {"pods", "proxy"}}));
  EXPECT_EQ(a("GET", "/healthz"), (NodeRequestAttributes{"get", {"healthz", "proxy"}}));
  EXPECT_EQ(a("GET", "/configz"), (NodeRequestAttributes{"get", {"configz", "proxy"}}));
  EXPECT_EQ(a("GET", "/flagz"), (NodeRequestAttributes{"get", {"configz"}}));
  EXPECT_EQ(a("GET", "/containerLogs/default/p/c"), (NodeRequestAttributes{"get", {"proxy"}}));
  EXPECT_EQ(a("POST", "/exec/default/p/c"), (NodeRequestAttributes{"create", {"proxy"}}));
  EXPECT_EQ(a("GET", "/exec/default/p/c"), (NodeRequestAttributes{"get", {"proxy"}}));
  EXPECT_EQ(a("POST", "/attach/default/p/c"), (NodeRequestAttributes{"create", {"proxy"}}));
  EXPECT_EQ(a("POST", "/portForward/default/p"), (NodeRequestAttributes{"create", {"proxy"}}));
  EXPECT_EQ(a("POST", "/run/default/p/c"), (NodeRequestAttributes{"create", {"proxy"}}));
  EXPECT_EQ(a("PUT", "/x"), (NodeRequestAttributes{"update", {"proxy"}}));
  EXPECT_EQ(a("PATCH", "/x"), (NodeRequestAttributes{"patch", {"proxy"}}));
  EXPECT_EQ(a("DELETE", "/x"), (NodeRequestAttributes{"delete", {"proxy"}}));
  EXPECT_EQ(a("HEAD", "/healthz").verb, "");
  // A prefix is a path element, not a string prefix.
  EXPECT_EQ(a("GET", "/statsfoo"), (NodeRequestAttributes{"get", {"proxy"}}));
  EXPECT_EQ(a("GET", "/podsx"), (NodeRequestAttributes{"get", {"proxy"}}));
  EXPECT_EQ(a("GET", "/metricsx"), (NodeRequestAttributes{"get", {"proxy"}}));
}

class KubeletAuthTest : public ::testing::Test {
 protected:
  KubeletAuthTest() : auth_("n1", &fake_, &fake_, clock_) {}
  FakeClock clock_;
  FakeReviewer fake_;
  KubeletAuth auth_;
};

TEST_F(KubeletAuthTest, AnonymousIsUnauthorized) {
  auto out = auth_.check(request("GET", "/pods"));
  EXPECT_EQ(out.status, 401);
  EXPECT_EQ(out.message, "Unauthorized");
  EXPECT_TRUE(fake_.reviews.empty());
}

TEST_F(KubeletAuthTest, AVerifiedClientCertificateIsItsCommonNameAndOrganizations) {
  fake_.allow("kube-apiserver-kubelet-client", "get proxy");
  auto out = auth_.check(with_cert(request("GET", "/containerLogs/default/p/c"),
                                   "kube-apiserver-kubelet-client", {"system:masters"}));
  EXPECT_TRUE(out.ok()) << out.message;
  EXPECT_EQ(out.user.name, "kube-apiserver-kubelet-client");
  EXPECT_EQ(out.user.groups, (Strings{"system:masters", "system:authenticated"}));
  ASSERT_EQ(fake_.reviews.size(), 1u);
  EXPECT_EQ(fake_.reviews[0].verb, "get");
  EXPECT_EQ(fake_.reviews[0].subresource, "proxy");
  EXPECT_EQ(fake_.reviews[0].node, "n1");
}

TEST_F(KubeletAuthTest, ACertificateFromAnotherCaIsUnauthorizedUnlessATokenVouches) {
  auto out = auth_.check(
      with_cert(request("GET", "/pods"), "system:node:n1", {"system:nodes"}, /*verified=*/false));
  EXPECT_EQ(out.status, 401);
  EXPECT_TRUE(fake_.reviews.empty());
  fake_.tokens["good"] = UserInfo{"alice", "u-1", {"devs"}, {}};
  fake_.allow("alice", "get pods");
  out = auth_.check(with_token(with_cert(request("GET", "/pods"), "x", {}, false), "good"));
  EXPECT_TRUE(out.ok()) << out.message;
  EXPECT_EQ(out.user.name, "alice");
}

TEST_F(KubeletAuthTest, ForbiddenNamesTheUserVerbAndEverySubresourceTried) {
  auto out = auth_.check(with_cert(request("GET", "/pods"), "system:node:n1", {"system:nodes"}));
  EXPECT_EQ(out.status, 403);
  EXPECT_EQ(
      out.message,
      "Forbidden (user=system:node:n1, verb=get, resource=nodes, subresource(s)=[pods proxy])\n");
  ASSERT_EQ(fake_.reviews.size(), 2u);
  EXPECT_EQ(fake_.reviews[0].subresource, "pods");
  EXPECT_EQ(fake_.reviews[1].subresource, "proxy");
}

TEST_F(KubeletAuthTest, TheNarrowerSubresourceIsEnoughAndTheWiderOneAlso) {
  fake_.allow("metrics-reader", "get pods");
  EXPECT_TRUE(auth_.check(with_cert(request("GET", "/pods"), "metrics-reader", {})).ok());
  EXPECT_EQ(fake_.reviews.size(), 1u);
  fake_.allow("proxy-user", "get proxy");
  EXPECT_TRUE(auth_.check(with_cert(request("GET", "/pods"), "proxy-user", {})).ok());
  EXPECT_EQ(fake_.reviews.size(), 3u);
}

TEST_F(KubeletAuthTest, TokensAreReviewedOnceEveryTwoMinutesSuccessOrFailure) {
  fake_.tokens["good"] =
      UserInfo{"alice", "", {"devs", "system:authenticated"}, {{"scopes", {"a"}}}};
  fake_.allow("alice", "get stats");
  auto r = with_token(request("GET", "/stats/summary"), "good");
  EXPECT_TRUE(auth_.check(r).ok());
  EXPECT_TRUE(auth_.check(r).ok());
  EXPECT_EQ(fake_.token_calls, 1);
  EXPECT_EQ(fake_.reviews.back().user.groups, (Strings{"devs", "system:authenticated"}));
  EXPECT_EQ(fake_.reviews.back().user.extra.at("scopes"), Strings{"a"});
  auto bad = with_token(request("GET", "/stats/summary"), "stolen");
  EXPECT_EQ(auth_.check(bad).status, 401);
  EXPECT_EQ(auth_.check(bad).status, 401);
  EXPECT_EQ(fake_.token_calls, 2);
  clock_.advance(119s);
  EXPECT_TRUE(auth_.check(r).ok());
  EXPECT_EQ(fake_.token_calls, 2);
  clock_.advance(2s);
  EXPECT_TRUE(auth_.check(r).ok());
  EXPECT_EQ(auth_.check(bad).status, 401);
  EXPECT_EQ(fake_.token_calls, 4);
}

TEST_F(KubeletAuthTest, AReviewThatFailsIsNotCached) {
  auto r = with_token(request("GET", "/pods"), "broken");
  EXPECT_EQ(auth_.check(r).status, 401);
  EXPECT_EQ(auth_.check(r).status, 401);
  EXPECT_EQ(fake_.token_calls, 2);
  fake_.fail_access = true;
  auto out = auth_.check(with_cert(request("POST", "/exec/default/p/c"), "admin", {}));
  EXPECT_EQ(out.status, 500);
  EXPECT_EQ(out.message,
            "Authorization error (user=admin, verb=create, resource=nodes, subresource=proxy)");
  fake_.fail_access = false;
  fake_.allow("admin", "create proxy");
  EXPECT_TRUE(auth_.check(with_cert(request("POST", "/exec/default/p/c"), "admin", {})).ok());
}

TEST_F(KubeletAuthTest, AllowedIsCachedFiveMinutesDeniedThirtySeconds) {
  auto admin = with_cert(request("GET", "/metrics"), "admin", {});
  auto other = with_cert(request("GET", "/metrics"), "other", {});
  fake_.allow("admin", "get metrics");
  EXPECT_TRUE(auth_.check(admin).ok());
  EXPECT_EQ(auth_.check(other).status, 403);
  EXPECT_EQ(fake_.reviews.size(), 2u);
  // RBAC changes: both flip, and each cache notices in its own time.
  fake_.allowed.clear();
  fake_.allow("other", "get metrics");
  clock_.advance(29s);
  EXPECT_TRUE(auth_.check(admin).ok());
  EXPECT_EQ(auth_.check(other).status, 403);
  EXPECT_EQ(fake_.reviews.size(), 2u);
  clock_.advance(2s);
  EXPECT_TRUE(auth_.check(other).ok());
  EXPECT_TRUE(auth_.check(admin).ok());
  EXPECT_EQ(fake_.reviews.size(), 3u);
  clock_.advance(270s);  // 301 s after admin's review
  EXPECT_EQ(auth_.check(admin).status, 403);
  EXPECT_EQ(fake_.reviews.size(), 4u);
}

TEST_F(KubeletAuthTest, AccessDecisionsAreCachedPerUserVerbAndSubresource) {
  fake_.allow("admin", "get metrics");
  fake_.allow("admin", "get stats");
  EXPECT_TRUE(auth_.check(with_cert(request("GET", "/metrics"), "admin", {})).ok());
  EXPECT_TRUE(auth_.check(with_cert(request("GET", "/stats/summary"), "admin", {})).ok());
  EXPECT_TRUE(auth_.check(with_cert(request("GET", "/metrics"), "admin", {})).ok());
  EXPECT_EQ(fake_.reviews.size(), 2u);
  // Another group is another user for the cache.
  EXPECT_TRUE(auth_.check(with_cert(request("GET", "/metrics"), "admin", {"g"})).ok());
  EXPECT_EQ(fake_.reviews.size(), 3u);
}

TEST(KubeletAuthStandalone, WithoutAnApiServerCertificatesAreEnoughAndTokensAreNot) {
  FakeClock clock;
  KubeletAuth auth("n1", nullptr, nullptr, clock);
  EXPECT_TRUE(auth.check(with_cert(request("POST", "/exec/default/p/c"), "me", {})).ok());
  EXPECT_EQ(auth.check(with_token(request("GET", "/pods"), "t")).status, 401);
  EXPECT_EQ(auth.check(request("GET", "/pods")).status, 401);
}

TEST(KubeletAuthAnonymous, NoCredentialsAtAllIsSystemAnonymousAuthorizedLikeAnyone) {
  FakeClock clock;
  FakeReviewer fake;
  AuthOptions o;
  o.anonymous = true;
  KubeletAuth auth("n1", &fake, &fake, clock, o);
  auto out = auth.check(request("GET", "/healthz"));
  EXPECT_EQ(out.status, 403) << "asked, and RBAC allows system:anonymous nothing here";
  ASSERT_EQ(fake.reviews.size(), 2u);
  EXPECT_EQ(fake.reviews[0].user.name, "system:anonymous");
  EXPECT_EQ(fake.reviews[0].user.groups, (Strings{"system:unauthenticated"}));
  fake.allow("system:anonymous", "get healthz");
  clock.advance(31s);
  out = auth.check(request("GET", "/healthz"));
  EXPECT_TRUE(out.ok()) << out.message;
  EXPECT_EQ(out.user.name, "system:anonymous");
  // Credentials that fail are never anonymous: a certificate of another CA, a token the
  // API server does not know.
  EXPECT_EQ(auth.check(with_cert(request("GET", "/healthz"), "x", {}, /*verified=*/false)).status, 401);
  EXPECT_EQ(auth.check(with_token(request("GET", "/healthz"), "unknown")).status, 401);
  // A verified certificate naming nobody (no CN) is no credential, as upstream's
  // CommonNameUserConversion: anonymous here, 401 where anonymous is off.
  out = auth.check(with_cert(request("GET", "/healthz"), "", {"g"}));
  EXPECT_TRUE(out.ok()) << out.message;
  EXPECT_EQ(out.user.name, "system:anonymous");
  KubeletAuth closed("n1", &fake, &fake, clock);
  EXPECT_EQ(closed.check(with_cert(request("GET", "/healthz"), "", {"g"})).status, 401);
}

TEST(KubeletAuthAlwaysAllow, EveryAuthenticatedUserIsAllowedAndNoReviewIsMade) {
  FakeClock clock;
  FakeReviewer fake;
  fake.tokens["good"] = UserInfo{"alice", "u-1", {}, {}};
  KubeletAuth auth("n1", &fake, /*access=*/nullptr, clock);
  EXPECT_TRUE(auth.check(with_token(request("POST", "/exec/default/p/c"), "good")).ok());
  EXPECT_TRUE(auth.check(with_cert(request("GET", "/pods"), "bob", {})).ok());
  EXPECT_EQ(auth.check(request("GET", "/pods")).status, 401) << "anonymous is still refused";
  EXPECT_TRUE(fake.reviews.empty());

  AuthOptions o;
  o.anonymous = true;
  KubeletAuth open("n1", &fake, nullptr, clock, o);
  EXPECT_TRUE(open.check(request("GET", "/pods")).ok());
}

TEST(KubeletAuthTokenWebhookOff, ATokenIsNoCredential) {
  FakeClock clock;
  FakeReviewer fake;
  fake.tokens["good"] = UserInfo{"alice", "u-1", {}, {}};
  KubeletAuth auth("n1", /*tokens=*/nullptr, &fake, clock);
  EXPECT_EQ(auth.check(with_token(request("GET", "/pods"), "good")).status, 401);
  EXPECT_EQ(fake.token_calls, 0);
  AuthOptions o;
  o.anonymous = true;
  KubeletAuth anon("n1", nullptr, &fake, clock, o);
  fake.allow("system:anonymous", "get pods");
  auto out = anon.check(with_token(request("GET", "/pods"), "good"));
  EXPECT_TRUE(out.ok()) << out.message;
  EXPECT_EQ(out.user.name, "system:anonymous");
}

TEST(KubeletAuthCache, IsBounded) {
  FakeClock clock;
  FakeReviewer fake;
  AuthOptions o;
  o.max_cache_entries = 3;
  KubeletAuth auth("n1", &fake, &fake, clock, o);
  for (int i = 0; i < 5; ++i)
    auth.check(with_cert(request("GET", "/metrics"), "u" + std::to_string(i), {}));
  EXPECT_EQ(fake.reviews.size(), 5u);
  auth.check(with_cert(request("GET", "/metrics"), "u4", {}));
  EXPECT_EQ(fake.reviews.size(), 5u) << "the newest is kept";
  auth.check(with_cert(request("GET", "/metrics"), "u0", {}));
  EXPECT_EQ(fake.reviews.size(), 6u) << "the oldest went";
}

TEST(Webhook, ReviewBodiesAndAnswers) {
  auto body = nlohmann::json::parse(token_review_body("abc"));
  EXPECT_EQ(body["kind"], "TokenReview");
  EXPECT_EQ(body["apiVersion"], "authentication.k8s.io/v1");
  EXPECT_EQ(body["spec"]["token"], "abc");
  auto u = parse_token_review(
      R"({"status":{"authenticated":true,"user":{"username":"system:serviceaccount:default:x",
      "uid":"u1","groups":["system:serviceaccounts","system:authenticated"],"extra":{"k":["v1","v2"]}}}})");
  ASSERT_TRUE(u.ok()) << u.error();
  ASSERT_TRUE(*u);
  EXPECT_EQ(**u, (UserInfo{"system:serviceaccount:default:x",
                           "u1",
                           {"system:serviceaccounts", "system:authenticated"},
                           {{"k", {"v1", "v2"}}}}));
  auto no =
      parse_token_review(R"({"status":{"authenticated":false,"error":"invalid bearer token"}})");
  ASSERT_TRUE(no.ok());
  EXPECT_FALSE(*no);
  EXPECT_FALSE(parse_token_review("not json").ok());

  AccessReview r{UserInfo{"alice", "u1", {"devs", "system:authenticated"}, {{"k", {"v"}}}},
                 "create", "proxy", "n1"};
  auto sar = nlohmann::json::parse(access_review_body(r));
  EXPECT_EQ(sar["kind"], "SubjectAccessReview");
  EXPECT_EQ(sar["apiVersion"], "authorization.k8s.io/v1");
  EXPECT_EQ(sar["spec"]["user"], "alice");
  EXPECT_EQ(sar["spec"]["uid"], "u1");
  EXPECT_EQ(sar["spec"]["groups"], nlohmann::json({"devs", "system:authenticated"}));
  EXPECT_EQ(sar["spec"]["extra"]["k"], nlohmann::json({"v"}));
  EXPECT_EQ(sar["spec"]["resourceAttributes"], nlohmann::json({{"verb", "create"},
                                                               {"group", ""},
                                                               {"version", "v1"},
                                                               {"resource", "nodes"},
                                                               {"subresource", "proxy"},
                                                               {"name", "n1"}}));
  auto yes = parse_access_review(
      R"({"status":{"allowed":true,"reason":"RBAC: allowed by ClusterRoleBinding"}})");
  ASSERT_TRUE(yes.ok());
  EXPECT_TRUE(yes->allowed);
  auto denied = parse_access_review(R"({"status":{"allowed":true,"denied":true}})");
  ASSERT_TRUE(denied.ok());
  EXPECT_FALSE(denied->allowed);
  auto none = parse_access_review(R"({"status":{}})");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->allowed);
}

// Answers of the wrong shape are read without exceptions (nlohmann's value() throws on a
// field of another type; gtest fails a test that throws) and fail closed.
TEST(Webhook, MalformedAnswersFailClosedWithoutThrowing) {
  for (const char* body : {R"({"status":{"authenticated":"yes","user":{"username":"mallory"}}})",
                           R"({"status":{"authenticated":1,"user":{"username":"mallory"}}})",
                           R"({"status":{"authenticated":null}})"}) {
    auto u = parse_token_review(body);
    ASSERT_TRUE(u.ok()) << body;
    EXPECT_FALSE(*u) << body << ": not authenticated";
  }
  // A user name that is not a string is no user name; other odd fields are empty.
  EXPECT_FALSE(
      parse_token_review(R"({"status":{"authenticated":true,"user":{"username":7,"uid":[]}}})").ok());
  auto odd = parse_token_review(
      R"({"status":{"authenticated":true,"user":{"username":"bob","uid":5,"groups":"g","extra":[]}}})");
  ASSERT_TRUE(odd.ok()) << odd.error();
  ASSERT_TRUE(*odd);
  EXPECT_EQ(**odd, (UserInfo{"bob", "", {}, {}}));
  EXPECT_FALSE(parse_token_review(R"({"status":"ok"})").ok());
  EXPECT_FALSE(parse_token_review("[1,2]").ok());

  for (const char* body : {R"({"status":{"allowed":"true"}})", R"({"status":{"allowed":1}})",
                           R"({"status":{"allowed":true,"denied":"false"}})",
                           R"({"status":{"allowed":true,"denied":0}})"}) {
    auto d = parse_access_review(body);
    ASSERT_TRUE(d.ok()) << body;
    EXPECT_FALSE(d->allowed) << body;
  }
  auto null_denied = parse_access_review(R"({"status":{"allowed":true,"denied":null}})");
  ASSERT_TRUE(null_denied.ok());
  EXPECT_TRUE(null_denied->allowed) << "null is absent, as Go reads it";
  auto odd_reason = parse_access_review(
      R"({"status":{"allowed":false,"reason":42,"evaluationError":"no RBAC"}})");
  ASSERT_TRUE(odd_reason.ok());
  EXPECT_FALSE(odd_reason->allowed);
  EXPECT_EQ(odd_reason->reason, "no RBAC");
}

}  // namespace
}  // namespace knode::kubelet
