// Fuzzes what an httpGet probe or lifecycle hook takes from a pod (kubelet/prober):
// prober::parse_url on a URL, prober::resolve_reference of a Location header the pod's
// server answers with against it (RFC 3986 5.2; redirects are followed with it),
// prober::canonical_header_key on header names, and prober::http_get_request for an
// HTTPGetAction built from the input (scheme, host, path, headers), with Url::str() /
// host_port() of everything that parses. Input: NUL- or newline-separated fields: base
// URL, Location, then header names. The HTTP response parser itself (HttpClient::get)
// reads from a socket only and is not reached. Nothing is caught here.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "prober/http_client.h"  // kubelet/ (private to knode_kubelet)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace prober = knode::kubelet::prober;
  const std::string_view text = knode::fuzz::as_view(data, size);
  const char sep = text.find('\0') != std::string_view::npos ? '\0' : '\n';
  const auto f = knode::fuzz::split(text, sep);
  auto base = prober::parse_url(f[0]);
  if (base) {
    (void)base->str();
    (void)base->host_port();
    auto again = prober::parse_url(base->str());
    if (!again) knode::fuzz::fail("parse_url(u.str()) fails", f[0] + "\n" + base->str());
    if (f.size() > 1) {
      if (auto next = prober::resolve_reference(*base, f[1])) {
        (void)next->str();
        (void)next->host_port();
      }
    }
  }
  knode::api::HTTPGetAction action;
  action.path = f.size() > 1 ? f[1] : "/";
  action.scheme = f.size() > 2 ? f[2] : "";
  action.host = f.size() > 3 ? f[3] : "";
  for (size_t i = 2; i < f.size() && i < 18; ++i) {
    (void)prober::canonical_header_key(f[i]);
    action.http_headers.push_back(knode::api::HTTPHeader{f[i], f[i]});
  }
  auto req = prober::http_get_request(action, "10.244.0.5", 8080, "kube-probe/1.37");
  (void)req.url.str();
  (void)req.host;
  return 0;
}
