// Ready-made handlers for the daemon's endpoints.
//
//   kubelet   127.0.0.1:10248  /healthz  kubelet_healthz_handler(health_registry)
//   (the proxy's /healthz and /livez are in proxy/health.h)
//   metrics   127.0.0.1:10249  /metrics  metrics_handler(metrics_registry)
//
// Each handler borrows its state object, which must outlive the server.
#pragma once

#include "knode/health.h"
#include "knode/http/types.h"
#include "knode/metrics.h"

namespace knode::http {

// 200 "ok" (text/plain) when every component is healthy; 503 with the reasons otherwise.
Handler kubelet_healthz_handler(const health::HealthRegistry& registry);

// The registry in text format 0.0.4.
Handler metrics_handler(const metrics::Registry& registry);

}  // namespace knode::http
