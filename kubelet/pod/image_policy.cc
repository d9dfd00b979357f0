#include "pod/image_policy.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <nlohmann/json.hpp>
#include <tuple>

#include "knode/api/base64.h"
#include "knode/json_get.h"

namespace knode::kubelet {
namespace {

constexpr char kDefaultDomain[] = "docker.io";
constexpr char kLegacyDefaultDomain[] = "index.docker.io";
constexpr char kOfficialRepoPrefix[] = "library/";
constexpr char kDefaultTag[] = "latest";
// Credentials stored under this host serve every Docker Hub image.
constexpr char kDefaultRegistryHost[] = "index.docker.io";

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }
bool is_hex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

// [a-z0-9]+ joined by one of ".", "_", "__" or a run of "-".
bool valid_path_component(std::string_view s) {
  if (s.empty() || !is_lower_alnum(s.front()) || !is_lower_alnum(s.back())) return false;
  for (size_t i = 0; i < s.size();) {
    if (is_lower_alnum(s[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < s.size() && !is_lower_alnum(s[j])) ++j;
    std::string_view sep = s.substr(i, j - i);
    bool dashes = sep.find_first_not_of('-') == std::string_view::npos;
    if (sep != "." && sep != "_" && sep != "__" && !dashes) return false;
    i = j;
  }
  return true;
}

bool valid_domain(std::string_view d) {
  auto colon = d.rfind(':');
  if (colon != std::string_view::npos && d.front() != '[') {
    std::string_view port = d.substr(colon + 1);
    if (port.empty() || !std::all_of(port.begin(), port.end(), ::isdigit)) return false;
    d = d.substr(0, colon);
  }
  if (d.empty()) return false;
  if (d.front() == '[') return d.back() == ']' || d.find("]:") != std::string_view::npos;
  for (size_t start = 0; start <= d.size();) {
    size_t dot = d.find('.', start);
    std::string_view label = d.substr(start, dot == std::string_view::npos ? d.npos : dot - start);
    if (label.empty() || !is_alnum(label.front()) || !is_alnum(label.back())) return false;
    for (char c : label) {
      if (!is_alnum(c) && c != '-') return false;
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return true;
}

bool valid_tag(std::string_view t) {
  if (t.empty() || t.size() > 128) return false;
  auto word = [](char c) { return is_alnum(c) || c == '_'; };
  if (!word(t.front())) return false;
  return std::all_of(t.begin(), t.end(), [&](char c) { return word(c) || c == '.' || c == '-'; });
}

bool valid_digest(std::string_view d) {
  auto colon = d.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view algo = d.substr(0, colon), hex = d.substr(colon + 1);
  if (!std::isalpha(static_cast<unsigned char>(algo.front()))) return false;
  bool algo_ok = std::all_of(algo.begin(), algo.end(), [](char c) {
    return is_alnum(c) || c == '-' || c == '_' || c == '+' || c == '.';
  });
  return algo_ok && hex.size() >= 32 && std::all_of(hex.begin(), hex.end(), is_hex);
}

// Docker's rule: the first component is a registry when it has a '.' or ':', is
// "localhost", or has upper case; otherwise the image is on Docker Hub.
void split_domain(std::string_view s, std::string* domain, std::string* remainder) {
  auto slash = s.find('/');
  std::string_view first = s.substr(0, slash == std::string_view::npos ? 0 : slash);
  bool lower = std::none_of(first.begin(), first.end(), ::isupper);
  if (slash == std::string_view::npos ||
      (first.find_first_of(".:") == std::string_view::npos && first != "localhost" && lower)) {
    *domain = kDefaultDomain;
    *remainder = std::string(s);
  } else {
    *domain = std::string(first);
    *remainder = std::string(s.substr(slash + 1));
  }
  if (*domain == kLegacyDefaultDomain) *domain = kDefaultDomain;
  if (*domain == kDefaultDomain && remainder->find('/') == std::string::npos) {
    *remainder = kOfficialRepoPrefix + *remainder;
  }
}

Status invalid(std::string_view image, const std::string& why) {
  return Status::Error("couldn't parse image name \"" + std::string(image) + "\": " + why, EINVAL);
}

bool all_hex64(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// ---- credentials ----

struct Keyring {
  std::map<std::string, std::vector<runtime::AuthConfig>> creds;
};

// "https://index.docker.io/v1/" -> "index.docker.io"; "reg:5000/team" -> "reg:5000/team".
std::string keyring_key(std::string loc) {
  for (const char* scheme : {"https://", "http://"}) {
    if (loc.rfind(scheme, 0) == 0) loc = loc.substr(std::string(scheme).size());
  }
  loc = loc.substr(0, loc.find_first_of("?#"));
  auto slash = loc.find('/');
  std::string host = loc.substr(0, slash);
  std::string path = slash == std::string::npos ? "" : loc.substr(slash);
  if (path.rfind("/v2/", 0) == 0 || path.rfind("/v1/", 0) == 0) path = path.substr(3);
  return path.empty() || path == "/" ? host : host + path;
}

// The "auth" field: base64 of "user:password", padded or not.
Result<std::pair<std::string, std::string>> decode_auth(std::string field) {
  while (field.size() % 4 != 0) field += '=';
  auto decoded = api::base64_decode(field);
  if (!decoded) return Status::Error("auth field is not base64");
  auto colon = decoded->find(':');
  if (colon == std::string::npos) {
    return Status::Error(
        "unable to parse auth field, must be formatted as base64(username:password)");
  }
  return std::make_pair(decoded->substr(0, colon), decoded->substr(colon + 1));
}

// A field that is absent or null reads as empty; any other non-string fails the secret,
// as Go's json.Unmarshal would.
bool string_field(const nlohmann::json& j, const char* name, std::string* out) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return true;
  if (!it->is_string()) return false;
  *out = it->get<std::string>();
  return true;
}

Status add_config(const nlohmann::json& entries, Keyring& ring) {
  if (entries.is_null()) return Status::Ok();
  if (!entries.is_object()) return Status::Error("registry entries must be an object");
  for (const auto& [loc, entry] : entries.items()) {
    runtime::AuthConfig a;
    std::string auth;
    bool ok = entry.is_object() && string_field(entry, "username", &a.username) &&
              string_field(entry, "password", &a.password) && string_field(entry, "auth", &auth);
    if (!ok) return Status::Error(loc + ": username, password and auth must be strings");
    if (!auth.empty()) {
      auto up = decode_auth(auth);
      if (!up.ok()) return up.status().Wrap(loc);
      std::tie(a.username, a.password) = *up;
    }
    ring.creds[keyring_key(loc)].push_back(std::move(a));
  }
  return Status::Ok();
}

Status add_secret(const api::Secret& s, Keyring& ring) {
  struct Kind {
    const char* type;
    const char* key;
    bool wrapped;
  };
  static constexpr Kind kKinds[] = {{"kubernetes.io/dockerconfigjson", ".dockerconfigjson", true},
                                    {"kubernetes.io/dockercfg", ".dockercfg", false}};
  for (const auto& k : kKinds) {
    auto it = s.data.find(k.key);
    if (s.type != k.type || it == s.data.end() || it->second.empty()) continue;
    auto bytes = api::base64_decode(it->second);
    std::string where = "secret " + s.metadata.namespace_ + "/" + s.metadata.name;
    if (!bytes) return Status::Error(where + ": " + k.key + " is not base64");
    try {
      auto j = nlohmann::json::parse(*bytes);
      if (k.wrapped && !j.is_object()) return Status::Error(where + ": not a docker config object");
      return add_config(k.wrapped ? jget::member(j, "auths") : j, ring).Wrap(where);
    } catch (const nlohmann::json::exception& e) {
      return Status::Error(where + ": " + e.what());
    }
  }
  return Status::Ok();
}

// filepath.Match for one host label: '*' and '?' wildcards.
bool glob_match(std::string_view pattern, std::string_view s) {
  if (pattern.empty()) return s.empty();
  if (pattern.front() == '*') {
    for (size_t i = 0; i <= s.size(); ++i) {
      if (glob_match(pattern.substr(1), s.substr(i))) return true;
    }
    return false;
  }
  if (s.empty()) return false;
  if (pattern.front() != '?' && pattern.front() != s.front()) return false;
  return glob_match(pattern.substr(1), s.substr(1));
}

struct UrlParts {
  std::vector<std::string> labels;
  std::string port, path;
};

UrlParts split_url(const std::string& schemeless) {
  UrlParts u;
  auto slash = schemeless.find('/');
  std::string host = schemeless.substr(0, slash);
  u.path = slash == std::string::npos ? "" : schemeless.substr(slash);
  auto colon = host.rfind(':');
  if (colon != std::string::npos && host.find(']') == std::string::npos) {
    u.port = host.substr(colon + 1);
    host = host.substr(0, colon);
  }
  for (size_t start = 0;;) {
    auto dot = host.find('.', start);
    u.labels.push_back(host.substr(start, dot == std::string::npos ? host.npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return u;
}

// A credential's key matches an image when the ports agree, the host has as many labels
// (each a glob), and the key's path is a prefix of the image's.
bool url_matches(const std::string& key, const std::string& image) {
  UrlParts g = split_url(key), t = split_url(image);
  if (g.port != t.port || g.labels.size() != t.labels.size()) return false;
  if (t.path.rfind(g.path, 0) != 0) return false;
  for (size_t i = 0; i < g.labels.size(); ++i) {
    if (!glob_match(g.labels[i], t.labels[i])) return false;
  }
  return true;
}

bool is_default_registry_match(const std::string& image) {
  auto slash = image.find('/');
  std::string first = image.substr(0, slash);
  if (first.empty()) return false;
  if (slash == std::string::npos || first == kDefaultDomain || first == kLegacyDefaultDomain)
    return true;
  return first.find_first_of(".:") == std::string::npos;
}

}  // namespace

Result<ImageReference> parse_image_reference(std::string_view image) {
  if (all_hex64(image)) return invalid(image, "cannot specify 64-byte hexadecimal strings");
  ImageReference ref;
  std::string remainder;
  split_domain(image, &ref.domain, &remainder);
  auto at = remainder.find('@');
  if (at != std::string::npos) {
    ref.digest = remainder.substr(at + 1);
    remainder.resize(at);
    if (!valid_digest(ref.digest)) return invalid(image, "invalid reference format");
  }
  auto colon = remainder.rfind(':');
  if (colon != std::string::npos && remainder.find('/', colon) == std::string::npos) {
    ref.tag = remainder.substr(colon + 1);
    remainder.resize(colon);
    if (!valid_tag(ref.tag)) return invalid(image, "invalid reference format");
  }
  bool has_upper = std::any_of(remainder.begin(), remainder.end(), ::isupper);
  if (has_upper) return invalid(image, "repository name must be lowercase");
  ref.path = remainder;
  for (size_t start = 0;;) {
    auto slash = ref.path.find('/', start);
    if (!valid_path_component(std::string_view(ref.path).substr(start, slash - start))) {
      return invalid(image, "invalid reference format");
    }
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  if (!valid_domain(ref.domain) || ref.name().size() > 255) {
    return invalid(image, "invalid reference format");
  }
  return ref;
}

std::string default_pull_policy(std::string_view image) {
  auto ref = parse_image_reference(image);
  if (!ref.ok()) return kPullIfNotPresent;
  bool latest = ref->tag == kDefaultTag || (ref->tag.empty() && ref->digest.empty());
  return latest ? kPullAlways : kPullIfNotPresent;
}

Result<std::string> with_default_tag(std::string_view image) {
  auto ref = parse_image_reference(image);
  if (!ref.ok()) return ref.status();
  std::string out(image);
  if (ref->tag.empty() && ref->digest.empty()) out += std::string(":") + kDefaultTag;
  return out;
}

PullDecision decide_pull(const std::string& image, const std::string& policy, bool present,
                         bool in_backoff) {
  if (auto tagged = with_default_tag(image); !tagged.ok()) {
    return {PullAction::kWait, kInvalidImageName,
            "Failed to apply default image tag \"" + image + "\": " + tagged.error()};
  }
  // Always never asks what the node has; unknown policies pull too, as upstream's
  // precheck falls through.
  bool checks_presence = policy == kPullIfNotPresent || policy == kPullNever;
  if (checks_presence && present) return {PullAction::kUsePresent, "", ""};
  if (policy == kPullNever) {
    return {PullAction::kWait, kErrImageNeverPull,
            "Container image \"" + image + "\" is not present with pull policy of Never"};
  }
  if (in_backoff) {
    return {PullAction::kWait, kImagePullBackOff, "Back-off pulling image \"" + image + "\""};
  }
  return {PullAction::kPull, "", ""};
}

PullDecision pull_failed(const std::string& image, const std::string& error) {
  struct Special {
    const char* reason;
    const char* because;
  };
  static constexpr Special kSpecial[] = {
      {kRegistryUnavailable, "the registry is unavailable"},
      {kSignatureValidationFailed, "the signature validation failed"}};
  for (const auto& s : kSpecial) {
    std::string prefix = s.reason;
    if (error.rfind(prefix, 0) == 0) {
      return {
          PullAction::kWait, s.reason,
          "image pull failed for " + image + " because " + s.because + error.substr(prefix.size())};
    }
  }
  return {PullAction::kWait, kErrImagePull, error};
}

Result<std::vector<runtime::AuthConfig>> credentials_for(
    std::string_view image, const std::vector<const api::Secret*>& pull_secrets) {
  auto ref = parse_image_reference(image);
  if (!ref.ok()) return ref.status();
  Keyring ring;
  for (const auto* s : pull_secrets) {
    if (Status st = add_secret(*s, ring); !st.ok()) return st;
  }
  // More specific keys first: "quay.io/team" before "quay.io" (a reverse sort).
  std::vector<runtime::AuthConfig> out;
  for (auto it = ring.creds.rbegin(); it != ring.creds.rend(); ++it) {
    if (url_matches(it->first, ref->name()))
      out.insert(out.end(), it->second.begin(), it->second.end());
  }
  if (out.empty() && is_default_registry_match(ref->name())) {
    auto hub = ring.creds.find(kDefaultRegistryHost);
    if (hub != ring.creds.end()) out = hub->second;
  }
  return out;
}

}  // namespace knode::kubelet
