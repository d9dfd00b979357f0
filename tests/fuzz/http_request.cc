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
// Session::serve and ServerCore::find_handler are private to common/http/server.cc and
// only reachable through a socket: the conversion and routing here mirror serve() (keep
// in sync). No socket is opened. Errors are beast error codes and HTTP statuses; the
// handlers' own contract (server.cc catches std::exception from a handler and answers
// 500) is mirrored too.
#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <map>
#include <string>

#include "fuzz_util.h"
#include "knode/health.h"
#include "knode/http/handlers.h"
#include "knode/http/types.h"
#include "knode/metrics.h"

namespace bhttp = boost::beast::http;

namespace {

knode::http::Request to_request(const bhttp::request<bhttp::string_body>& req) {
  knode::http::Request r;  // as Session::serve() fills it
  r.method = std::string(req.method_string());
  r.target = std::string(req.target());
  auto q = r.target.find('?');
  r.path = r.target.substr(0, q);
  if (q != std::string::npos) r.query = r.target.substr(q + 1);
  r.remote_address = "127.0.0.1:40000";
  for (const auto& f : req) r.headers.emplace_back(f.name_string(), f.value());
  r.body = req.body();
  return r;
}

void serve(const bhttp::request<bhttp::string_body>& req) {
  const knode::http::Request r = to_request(req);
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
  if (it == routes.end()) return;  // 404
  if (req.method() != bhttp::verb::get && req.method() != bhttp::verb::head) return;  // 405
  knode::http::Response resp;
  try {
    resp = it->second(r);
  } catch (const std::exception&) {
    return;  // server.cc answers 500 for a handler that throws
  }
  // The response head the server writes must be valid for Beast.
  bhttp::response<bhttp::string_body> m(static_cast<bhttp::status>(resp.status), req.version());
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
    serve(parser.get());
    if (!keep_alive || off >= size) return 0;
  }
  return 0;
}
