#include "knode/http/handlers.h"

namespace knode::http {
namespace {

constexpr const char* kTextPlain = "text/plain; charset=utf-8";

}  // namespace

Handler kubelet_healthz_handler(const health::HealthRegistry& registry) {
  return [&registry](const Request&) {
    std::string reason = registry.unhealthy_reason();
    if (reason.empty()) return Response{200, kTextPlain, "ok"};
    return Response{503, kTextPlain, reason + "\n"};
  };
}

Handler metrics_handler(const metrics::Registry& registry) {
  return [&registry](const Request&) {
    return Response{200, std::string(metrics::kContentType), registry.render()};
  };
}

}  // namespace knode::http
