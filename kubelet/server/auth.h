// Who may use the kubelet API, as upstream's kubelet decides in its webhook modes
// (pkg/kubelet/server/auth.go, the delegating authenticator and authorizer of
// k8s.io/apiserver):
//
// - Authentication: a client certificate that chains to --client-ca-file (the API server
//   calls with its --kubelet-client-certificate: the user is the CN, the groups the O=
//   values), or a bearer token the API server vouches for in a TokenReview. Either way
//   the user gains the group system:authenticated. Credentials that do not authenticate:
//   401 "Unauthorized". None at all: 401 as well, unless anonymous requests are allowed
//   (`authentication.anonymous.enabled`, off by default as in the KubeletConfiguration):
//   then the user is system:anonymous, authorized like any other.
// - Authorization: a SubjectAccessReview of `verb` on resource "nodes", name = this node,
//   with a subresource by path (request_attributes); v1.37's fine-grained checks
//   (/pods asks for nodes/pods, then nodes/proxy) are always on there, and so here.
//   Denied: 403 "Forbidden (user=..., verb=..., resource=nodes, subresource(s)=[...])".
//   A review that fails: 500.
// - Caching, as upstream's defaults: token reviews 2 min (successes and failures), access
//   decisions 5 min when allowed and 30 s when denied; errors are not cached.
//
// The reviews are seams (TokenReviewer, AccessReviewer) with API-server implementations in
// webhook.h and fakes in the unit tests; time comes from an injected Clock.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "knode/clock.h"
#include "knode/http/types.h"
#include "knode/status.h"

namespace knode::kubelet {

struct UserInfo {
  std::string name, uid;
  std::vector<std::string> groups;
  std::map<std::string, std::vector<std::string>> extra;
  bool operator==(const UserInfo&) const = default;
  auto operator<=>(const UserInfo&) const = default;
};

// What a request to the kubelet API asks for: `verb` on nodes/<subresource> of this node,
// the subresources tried in order (the first one allowed wins).
struct NodeRequestAttributes {
  std::string verb;  // "get", "create", ...; "" for methods without a verb (HEAD, OPTIONS)
  std::vector<std::string> subresources;
  bool operator==(const NodeRequestAttributes&) const = default;
};

// Upstream's mapping (v1.37): the HTTP method gives the verb (GET get, POST create, PUT
// update, PATCH patch, DELETE delete); the path gives the subresources: /stats stats,
// /metrics metrics, /logs log, /checkpoint checkpoint, /statusz statusz, /flagz configz;
// /pods and /runningpods pods then proxy, /healthz healthz then proxy, /configz configz
// then proxy; everything else (/exec, /attach, /portForward, /run, /containerLogs, ...)
// proxy. A path matches "/x" when it is "/x" or starts with "/x/".
NodeRequestAttributes request_attributes(std::string_view method, std::string_view path);

// One SubjectAccessReview: may `user` do `verb` on nodes/<subresource> named `node`?
struct AccessReview {
  UserInfo user;
  std::string verb, subresource, node;
  bool operator==(const AccessReview&) const = default;
  auto operator<=>(const AccessReview&) const = default;
};

struct AccessDecision {
  bool allowed = false;
  std::string reason;
};

class TokenReviewer {
 public:
  virtual ~TokenReviewer() = default;
  // The token's user, nullopt when it does not authenticate; an error when the review
  // could not be made. Blocking.
  virtual Result<std::optional<UserInfo>> review_token(const std::string& token) = 0;
};

class AccessReviewer {
 public:
  virtual ~AccessReviewer() = default;
  // Blocking.
  virtual Result<AccessDecision> review_access(const AccessReview& review) = 0;
};

struct AuthOptions {
  std::chrono::seconds token_ttl{120};    // --authentication-token-webhook-cache-ttl
  std::chrono::seconds allowed_ttl{300};  // --authorization-webhook-cache-authorized-ttl
  std::chrono::seconds denied_ttl{30};    // --authorization-webhook-cache-unauthorized-ttl
  std::size_t max_cache_entries = 4096;   // per cache; the oldest go first beyond it
  // --anonymous-auth: a request with no credentials is user system:anonymous (group
  // system:unauthenticated), then authorized as any other; else 401.
  bool anonymous = false;
};

// The outcome for one request: status 0 when it may proceed, else the HTTP status and
// the text to answer with.
struct AuthOutcome {
  int status = 0;
  std::string message;
  UserInfo user;
  bool ok() const { return status == 0; }
};

class KubeletAuth {
 public:
  // tokens null: bearer tokens do not authenticate (standalone, or the token webhook
  // off). access null: every authenticated user is allowed (AlwaysAllow, or standalone:
  // there is no API server to ask).
  KubeletAuth(std::string node_name, TokenReviewer* tokens, AccessReviewer* access,
              const Clock& clock, AuthOptions options = {});

  // Authenticates and authorizes a request. Blocking (reviews): not on the event loop.
  AuthOutcome check(const http::Request& request);

  // The two halves, for tests and logs.
  Result<std::optional<UserInfo>> authenticate(const http::Request& request);
  AuthOutcome authorize(const UserInfo& user, std::string_view method, std::string_view path);

 private:
  template <typename V>
  struct Entry {
    V value;
    Clock::SteadyTime expires;
    uint64_t seq;
  };
  template <typename K, typename V>
  static void put(std::map<K, Entry<V>>& cache, K key, V value, Clock::SteadyTime now,
                  std::chrono::seconds ttl, uint64_t seq, std::size_t max);

  Result<std::optional<UserInfo>> review_token(const std::string& token);
  Result<AccessDecision> review_access(const AccessReview& review);

  const std::string node_;
  TokenReviewer* tokens_;
  AccessReviewer* access_;
  const Clock& clock_;
  const AuthOptions options_;
  std::mutex mu_;
  uint64_t seq_ = 0;
  std::map<std::string, Entry<std::optional<UserInfo>>> token_cache_;  // by SHA-256 of the token
  std::map<AccessReview, Entry<AccessDecision>> access_cache_;
};

}  // namespace knode::kubelet
