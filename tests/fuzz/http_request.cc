// Fuzzes what the health and metrics servers do with the bytes of a request:
// Boost.Beast's request_parser<string_body> with the server's limits (ServerOptions'
// defaults: 8 KiB of header, 16 KiB of body), request after request on one keep-alive
// connection as Session::do_read reads them, then the http::Request the server builds
// (method, target split into path and query, headers, body) and the exact-path routing
// the server applies (GET/HEAD only, else 405; unknown path 404) to the real handlers:
// http::kubelet_healthz_handler, http::metrics_handler, plus the Request helpers the
// kubelet API uses (header, query_values, query_value) and http::parse_query /
// url_decode. The request is also counted in a labelled family rendered by the metrics
// handler, as the kubelet API counts its requests, so label escaping meets the bytes.
//
// The Request and the answer around a plain handler come from the server's own
// detail::make_request and detail::answer_plain (common/http/request_detail.h), as
// Session::serve calls them; the path lookup is a map here (ServerCore's is one too, behind
// a socket). No socket is opened. Errors are beast error codes and HTTP statuses.
#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <map>
#include <string>

#include "fuzz_util.h"
#include "knode/health.h"
#include "knode/http/handlers.h"
#include "knode/http/types.h"
#include "knode/metrics.h"
#include "request_detail.h"

namespace bhttp = boost::beast::http;

namespace {

void serve(bhttp::request<bhttp::string_body> req) {
  const bhttp::verb method = req.method();
  const unsigned version = req.version();
  const knode::http::Request r = knode::http::detail::make_request(std::move(req), "127.0.0.1:40000", false, std::nullopt);
  (void)r.header("Host");
  (void)r.header("authorization");
  for (const char* name : {"follow", "tailLines", "command", "port", "sinceTime"}) {
    (void)r.query_values(name);
    (void)r.query_value(name);
  }
  for (const auto& [k, v] : knode::http::parse_query(r.query)) (void)(k.size() + v.size());
  (void)knode::http::url_decode(r.path);
  (void)knode::http::url_decode(r.query, true);

  knode::health::HealthRegistry health;
  health.set_healthy("proxy");
  health.set_unhealthy("kubelet", "PLEG is not healthy: " + r.path);
  knode::metrics::Registry registry;
  registry.counter_family("fuzz_http_requests_total", "Requests by method and path.", {"method", "path"})
      .with({r.method, r.path})
      .inc();
  const std::map<std::string, knode::http::Handler> routes = {
      {"/healthz", knode::http::kubelet_healthz_handler(health)},
      {"/metrics", knode::http::metrics_handler(registry)},
  };
  auto it = routes.find(r.path);
  const knode::http::Response resp =
      knode::http::detail::answer_plain(it == routes.end() ? nullptr : &it->second, r, method);
  // The response head the server writes must be valid for Beast.
  bhttp::response<bhttp::string_body> m(static_cast<bhttp::status>(resp.status), version);
  m.set(bhttp::field::content_type, resp.content_type);
  for (const auto& [k, v] : resp.headers) m.set(k, v);
  m.body() = resp.body;
  m.prepare_payload();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  size_t off = 0;
  for (int n = 0; n < 8; ++n) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(8 * 1024);
    parser.body_limit(16 * 1024);
    boost::beast::error_code ec;
    while (!parser.is_done()) {
      const size_t used = parser.put(boost::asio::buffer(data + off, size - off), ec);
      off += used;
      if (ec == bhttp::error::need_more) {
        ec = {};
        if (used == 0 || off >= size) {
          if (parser.got_some()) parser.put_eof(ec);  // the client stopped sending
          break;
        }
        continue;
      }
      if (ec || used == 0) break;  // an error, or a parser that takes nothing more
    }
    if (ec || !parser.is_done()) return 0;  // 400/413/431 or a cut-off request: connection closed
    const bool keep_alive = parser.get().keep_alive();
    serve(parser.release());
    if (!keep_alive || off >= size) return 0;
  }
  return 0;
}
