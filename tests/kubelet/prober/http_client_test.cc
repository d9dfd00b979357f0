// The pure parts of the probes' HTTP client: the request upstream builds from an
// HTTPGetAction, URLs and Location resolution, Go's header canonicalization and the Go
// formatting messages are made of.
#include "prober/http_client.h"

#include <gtest/gtest.h>

#include "prober/text.h"

namespace api = knode::api;
using namespace knode::kubelet::prober;
using namespace std::chrono_literals;

namespace {

api::HTTPGetAction action(const std::string& path, std::vector<api::HTTPHeader> headers = {}) {
  api::HTTPGetAction a;
  a.path = path;
  a.port = api::IntOrString::Int(8080);
  a.http_headers = std::move(headers);
  return a;
}

std::string header(const HttpRequest& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "<absent>";
}

}  // namespace

TEST(HttpGetRequest, DefaultsAsUpstream) {
  auto r = http_get_request(action("/healthz"), "10.244.0.5", 8080, "kube-probe/1.37");
  EXPECT_EQ(r.url.str(), "http://10.244.0.5:8080/healthz");
  EXPECT_EQ(r.host, "10.244.0.5:8080");
  EXPECT_EQ(header(r, "User-Agent"), "kube-probe/1.37");
  EXPECT_EQ(header(r, "Accept"), "*/*");
  EXPECT_EQ(header(r, "Host"), "<absent>");  // the Host header is r.host, sent first
}

TEST(HttpGetRequest, SchemeHostAndPath) {
  auto a = action("healthz?full=1#frag");
  a.scheme = "HTTPS";
  a.host = "fd00::5";
  auto r = http_get_request(a, "10.244.0.5", 8443, "ua");
  EXPECT_EQ(r.url.str(), "https://[fd00::5]:8443/healthz?full=1");
  EXPECT_EQ(r.host, "[fd00::5]:8443");
  EXPECT_EQ(http_get_request(action(""), "10.0.0.1", 80, "ua").url.target, "/");
  EXPECT_EQ(http_get_request(action("/a b/ü"), "10.0.0.1", 80, "ua").url.target, "/a%20b/%C3%BC");
}

TEST(HttpGetRequest, HeadersOverrideAndRemoveDefaults) {
  auto r = http_get_request(
      action("/", {{"host", "example.com"}, {"accept", ""}, {"user-agent", "me"}, {"x-a", "1"}}),
      "10.0.0.1", 80, "kube-probe/1.37");
  EXPECT_EQ(r.host, "example.com");
  EXPECT_EQ(header(r, "Accept"), "<absent>");
  EXPECT_EQ(header(r, "User-Agent"), "me");
  EXPECT_EQ(header(r, "X-A"), "1");
}

TEST(CanonicalHeaderKey, AsGo) {
  EXPECT_EQ(canonical_header_key("x-request-id"), "X-Request-Id");
  EXPECT_EQ(canonical_header_key("CONTENT-type"), "Content-Type");
  EXPECT_EQ(canonical_header_key("host"), "Host");
  EXPECT_EQ(canonical_header_key("bad name"), "bad name");  // not a token: left alone
}

TEST(Url, ParsesAbsoluteUrls) {
  auto u = parse_url("http://10.0.0.1:8080/a?b=c#d");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->scheme, "http");
  EXPECT_EQ(u->host, "10.0.0.1");
  EXPECT_EQ(u->port, 8080);
  EXPECT_EQ(u->target, "/a?b=c");
  EXPECT_EQ(parse_url("HTTPS://[::1]/x")->str(), "https://[::1]:443/x");
  EXPECT_EQ(parse_url("http://user:pw@h?q")->str(), "http://h:80/?q");
  EXPECT_FALSE(parse_url("/relative"));
  EXPECT_FALSE(parse_url("http://h:99999/"));
  EXPECT_FALSE(parse_url("http:///nohost"));
}

TEST(Url, ResolvesLocationAsRfc3986) {
  const Url base = *parse_url("http://10.0.0.1:8080/a/b/c?q=1");
  EXPECT_EQ(resolve_reference(base, "/x")->str(), "http://10.0.0.1:8080/x");
  EXPECT_EQ(resolve_reference(base, "d")->str(), "http://10.0.0.1:8080/a/b/d");
  EXPECT_EQ(resolve_reference(base, "../d?z")->str(), "http://10.0.0.1:8080/a/d?z");
  EXPECT_EQ(resolve_reference(base, "./")->str(), "http://10.0.0.1:8080/a/b/");
  EXPECT_EQ(resolve_reference(base, "?n=2")->str(), "http://10.0.0.1:8080/a/b/c?n=2");
  EXPECT_EQ(resolve_reference(base, "//other:81/p")->str(), "http://other:81/p");
  EXPECT_EQ(resolve_reference(base, "https://h/p")->str(), "https://h:443/p");
  EXPECT_EQ(resolve_reference(base, "/../../x")->str(), "http://10.0.0.1:8080/x");
  EXPECT_EQ(resolve_reference(base, "..")->str(), "http://10.0.0.1:8080/a/");
  EXPECT_EQ(resolve_reference(base, "/p//q/")->str(), "http://10.0.0.1:8080/p//q/");
}

TEST(GoText, QuoteDurationHostPort) {
  EXPECT_EQ(go_quote("a\"b\\c\nd\x01"), "\"a\\\"b\\\\c\\nd\\x01\"");
  EXPECT_EQ(go_duration(1s), "1s");
  EXPECT_EQ(go_duration(90s), "1m30s");
  EXPECT_EQ(go_duration(3600s), "1h0m0s");
  EXPECT_EQ(join_host_port("::1", 80), "[::1]:80");
  EXPECT_EQ(go_list({"sh", "-c", "exit 1"}), "[sh -c exit 1]");
  EXPECT_EQ(format_pod("web-0", "default", "u1"), "web-0_default(u1)");
}
