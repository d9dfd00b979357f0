#include "server/auth.h"

#include <openssl/sha.h>

#include <algorithm>

#include "knode/log.h"

namespace knode::kubelet {
namespace {

constexpr const char* kAuthenticated = "system:authenticated";
constexpr const char* kAnonymous = "system:anonymous";
constexpr const char* kUnauthenticated = "system:unauthenticated";

// Upstream's isSubpath: "/x" matches "/x" and "/x/...", whatever trailing slash the
// handler's path has.
bool is_subpath(std::string_view path, std::string_view root) {
  if (!root.empty() && root.back() == '/') root.remove_suffix(1);
  return path == root || (path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
                          path[root.size()] == '/');
}

std::string sha256_hex(const std::string& s) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), md);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : md) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

}  // namespace

NodeRequestAttributes request_attributes(std::string_view method, std::string_view path) {
  NodeRequestAttributes a;
  if (method == "POST") {
    a.verb = "create";
  } else if (method == "GET") {
    a.verb = "get";
  } else if (method == "PUT") {
    a.verb = "update";
  } else if (method == "PATCH") {
    a.verb = "patch";
  } else if (method == "DELETE") {
    a.verb = "delete";
  }
  // KubeletFineGrainedAuthz (GA and locked on in v1.37): a narrower subresource first.
  if (is_subpath(path, "/pods") || is_subpath(path, "/runningpods/")) {
    a.subresources.push_back("pods");
  } else if (is_subpath(path, "/healthz")) {
    a.subresources.push_back("healthz");
  } else if (is_subpath(path, "/configz")) {
    a.subresources.push_back("configz");
  }
  if (is_subpath(path, "/stats/")) {
    a.subresources.push_back("stats");
  } else if (is_subpath(path, "/metrics")) {
    a.subresources.push_back("metrics");
  } else if (is_subpath(path, "/logs/")) {
    a.subresources.push_back("log");  // as the log subresources of the API (pods/log)
  } else if (is_subpath(path, "/checkpoint/")) {
    a.subresources.push_back("checkpoint");
  } else if (is_subpath(path, "/statusz")) {
    a.subresources.push_back("statusz");
  } else if (is_subpath(path, "/flagz")) {
    a.subresources.push_back("configz");
  } else {
    a.subresources.push_back("proxy");
  }
  return a;
}

KubeletAuth::KubeletAuth(std::string node_name, TokenReviewer* tokens, AccessReviewer* access,
                         const Clock& clock, AuthOptions options)
    : node_(std::move(node_name)),
      tokens_(tokens),
      access_(access),
      clock_(clock),
      options_(options) {}

template <typename K, typename V>
void KubeletAuth::put(std::map<K, Entry<V>>& cache, K key, V value, Clock::SteadyTime now,
                      std::chrono::seconds ttl, uint64_t seq, std::size_t max) {
  cache.insert_or_assign(std::move(key), Entry<V>{std::move(value), now + ttl, seq});
  if (cache.size() <= max) return;
  // Full: the expired entries go, then the oldest.
  std::erase_if(cache, [&](const auto& kv) { return kv.second.expires <= now; });
  while (cache.size() > max) {
    auto oldest = std::min_element(cache.begin(), cache.end(), [](const auto& a, const auto& b) {
      return a.second.seq < b.second.seq;
    });
    cache.erase(oldest);
  }
}

Result<std::optional<UserInfo>> KubeletAuth::review_token(const std::string& token) {
  const std::string key = sha256_hex(token);
  {
    std::lock_guard lock(mu_);
    auto it = token_cache_.find(key);
    if (it != token_cache_.end() && clock_.steady_now() < it->second.expires)
      return it->second.value;
  }
  auto r = tokens_->review_token(token);
  if (!r.ok()) return r.status();
  std::lock_guard lock(mu_);
  put(token_cache_, key, *r, clock_.steady_now(), options_.token_ttl, ++seq_,
      options_.max_cache_entries);
  return *r;
}

Result<AccessDecision> KubeletAuth::review_access(const AccessReview& review) {
  {
    std::lock_guard lock(mu_);
    auto it = access_cache_.find(review);
    if (it != access_cache_.end() && clock_.steady_now() < it->second.expires)
      return it->second.value;
  }
  auto r = access_->review_access(review);
  if (!r.ok()) return r.status();
  std::lock_guard lock(mu_);
  const auto ttl = r->allowed ? options_.allowed_ttl : options_.denied_ttl;
  put(access_cache_, review, *r, clock_.steady_now(), ttl, ++seq_, options_.max_cache_entries);
  return *r;
}

Result<std::optional<UserInfo>> KubeletAuth::authenticate(const http::Request& request) {
  // A union, as upstream's: the first authenticator that says who it is wins; errors
  // matter only when none does.
  std::vector<std::string> errors;
  std::optional<UserInfo> user;
  if (const auto& cert = request.peer_certificate) {
    if (!cert->verified) {
      errors.push_back(
          "x509: certificate signed by unknown authority or not for client authentication (" +
          cert->verify_error + ")");
    } else if (cert->common_name.empty()) {
      // No user in it: not a credential (upstream's CommonNameUserConversion), so such a
      // request is anonymous when that is allowed, else 401.
    } else {
      user = UserInfo{cert->common_name, "", cert->organizations, {}};
    }
  }
  if (!user) {
    auto auth = request.header("Authorization");
    constexpr std::string_view kBearer = "Bearer ";
    if (auth && auth->size() > kBearer.size() && auth->substr(0, kBearer.size()) == kBearer) {
      std::string token(auth->substr(kBearer.size()));
      while (!token.empty() && token.back() == ' ') token.pop_back();
      // Without a token reviewer (standalone, or the token webhook off) a token is no
      // credential at all, as upstream has no token authenticator then.
      if (tokens_ != nullptr && !token.empty()) {
        auto r = review_token(token);
        if (!r.ok()) {
          errors.push_back(r.status().message());
        } else if (!*r) {
          errors.push_back("invalid bearer token");  // (so never anonymous, as upstream's)
        } else {
          user = *r;
        }
      }
    }
  }
  if (!user) {
    if (!errors.empty()) return Status::Error(join(errors, "; "), EACCES);
    return std::optional<UserInfo>();
  }
  if (std::find(user->groups.begin(), user->groups.end(), kAuthenticated) == user->groups.end()) {
    user->groups.push_back(kAuthenticated);
  }
  return user;
}

AuthOutcome KubeletAuth::authorize(const UserInfo& user, std::string_view method,
                                   std::string_view path) {
  const NodeRequestAttributes attrs = request_attributes(method, path);
  if (access_ == nullptr) return AuthOutcome{0, "", user};
  for (const auto& sub : attrs.subresources) {
    auto d = review_access(AccessReview{user, attrs.verb, sub, node_});
    if (!d.ok()) {
      KLOG(ERROR, "kubelet API: authorization error")
          .kv("user", user.name)
          .kv("verb", attrs.verb)
          .kv("subresource", sub)
          .kv("err", d.status().message());
      return AuthOutcome{500,
                         "Authorization error (user=" + user.name + ", verb=" + attrs.verb +
                             ", resource=nodes, subresource=" + sub + ")",
                         user};
    }
    if (d->allowed) return AuthOutcome{0, "", user};
  }
  KLOGV(2, "kubelet API: forbidden")
      .kv("user", user.name)
      .kv("verb", attrs.verb)
      .kv("subresources", join(attrs.subresources, ","));
  return AuthOutcome{403,
                     "Forbidden (user=" + user.name + ", verb=" + attrs.verb +
                         ", resource=nodes, subresource(s)=[" + join(attrs.subresources, " ") +
                         "])\n",
                     user};
}

AuthOutcome KubeletAuth::check(const http::Request& request) {
  auto user = authenticate(request);
  if (!user.ok()) {
    KLOGV(2, "kubelet API: unable to authenticate the request")
        .kv("remote", request.remote_address)
        .kv("err", user.status().message());
    return AuthOutcome{401, "Unauthorized", {}};
  }
  if (!*user) {
    // No credentials at all (a bad certificate or token is an error above, never anonymous,
    // as upstream's anonymous authenticator comes after the others fail without error).
    if (!options_.anonymous) return AuthOutcome{401, "Unauthorized", {}};
    return authorize(UserInfo{kAnonymous, "", {kUnauthenticated}, {}}, request.method, request.path);
  }
  return authorize(**user, request.method, request.path);
}

}  // namespace knode::kubelet
