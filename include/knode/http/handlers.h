// Ready-made handlers for the daemon's endpoints.
//
//   kubelet   127.0.0.1:10248  /healthz  kubelet_healthz_handler(health_registry)
//   proxy     0.0.0.0:10256    /healthz  proxy_healthz_handler(proxy_health)
//                              /livez    proxy_livez_handler(proxy_health)
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

// kube-proxy's JSON bodies (application/json, X-Content-Type-Options: nosniff):
//   /healthz {"lastUpdated": "...","currentTime": "...", "nodeEligible": true}
//   /livez   {"lastUpdated": "...","currentTime": "..."}
// 200 when healthy, 503 when not; /livez ignores node eligibility.
// `answers`, when given, counts responses by status code; kube-proxy registers these as
// kubeproxy_healthz_total{code} and kubeproxy_livez_total{code}.
Handler proxy_healthz_handler(const health::ProxyHealth& health,
                              metrics::CounterFamily* answers = nullptr);
Handler proxy_livez_handler(const health::ProxyHealth& health,
                            metrics::CounterFamily* answers = nullptr);

// The registry in text format 0.0.4.
Handler metrics_handler(const metrics::Registry& registry);

}  // namespace knode::http
