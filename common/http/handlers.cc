#include "knode/http/handlers.h"

namespace knode::http {
namespace {

constexpr const char* kTextPlain = "text/plain; charset=utf-8";

Response proxy_json(health::ProxyHealth::State s, bool healthy, bool with_node) {
  // kube-proxy answers a healthy probe with lastUpdated = now, as older releases did.
  if (healthy) s.last_updated = s.current_time;
  Response r;
  r.status = healthy ? 200 : 503;
  r.content_type = "application/json";
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  // Field spacing as kube-proxy writes it, so scripts that grep it keep working.
  r.body = "{\"lastUpdated\": \"" + health::format_rfc3339(s.last_updated) +
           "\",\"currentTime\": \"" + health::format_rfc3339(s.current_time) + "\"";
  if (with_node) r.body += std::string(", \"nodeEligible\": ") + (s.node_eligible ? "true" : "false");
  r.body += "}";
  return r;
}

Response count(metrics::CounterFamily* answers, Response r) {
  if (answers) answers->with({std::to_string(r.status)}).inc();
  return r;
}

}  // namespace

Handler kubelet_healthz_handler(const health::HealthRegistry& registry) {
  return [&registry](const Request&) {
    std::string reason = registry.unhealthy_reason();
    if (reason.empty()) return Response{200, kTextPlain, "ok"};
    return Response{503, kTextPlain, reason + "\n"};
  };
}

Handler proxy_healthz_handler(const health::ProxyHealth& health,
                              metrics::CounterFamily* answers) {
  return [&health, answers](const Request&) {
    auto s = health.state();
    return count(answers, proxy_json(s, s.healthy && s.node_eligible, true));
  };
}

Handler proxy_livez_handler(const health::ProxyHealth& health, metrics::CounterFamily* answers) {
  return [&health, answers](const Request&) {
    auto s = health.state();
    return count(answers, proxy_json(s, s.healthy, false));
  };
}

Handler metrics_handler(const metrics::Registry& registry) {
  return [&registry](const Request&) {
    return Response{200, std::string(metrics::kContentType), registry.render()};
  };
}

}  // namespace knode::http
