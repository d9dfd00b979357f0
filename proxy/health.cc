// kube-proxy's proxier health rule (pkg/proxy/healthcheck, ProxyHealthServer): a family
// counts once it has synced; it is late when its oldest queued change has waited longer
// than the timeout.
#include "health.h"

#include "knode/health.h"

namespace knode::proxy {

void ProxyHealth::queued_update(int ip_family) {
  const auto now = clock_.steady_now();
  std::lock_guard lock(mu_);
  pending_.try_emplace(ip_family, now);  // keeps the oldest
}

void ProxyHealth::updated(int ip_family) {
  const auto steady = clock_.steady_now();
  const auto system = clock_.system_now();
  std::lock_guard lock(mu_);
  pending_.erase(ip_family);
  updated_[ip_family] = Family{steady, system, std::nullopt};
}

void ProxyHealth::set_node_eligible(bool eligible) {
  std::lock_guard lock(mu_);
  node_eligible_ = eligible;
}

ProxyHealth::State ProxyHealth::state() const {
  const auto steady = clock_.steady_now();
  State s;
  s.current_time = clock_.system_now();
  std::lock_guard lock(mu_);
  s.node_eligible = node_eligible_;
  for (const auto& [family, f] : updated_) {
    if (f.updated_system > s.last_updated) s.last_updated = f.updated_system;
  }
  for (const auto& [family, f] : updated_) {
    auto pending = pending_.find(family);
    if (pending == pending_.end()) continue;  // fully synced
    const auto waited = steady - pending->second;
    if (waited < timeout_) continue;  // queued, not late yet
    s.healthy = false;
    s.last_updated = f.updated_system;
    s.reason = "IPv" + std::to_string(family) + " rules not synced for " +
               std::to_string(std::chrono::duration_cast<std::chrono::seconds>(waited).count()) +
               "s (limit " +
               std::to_string(std::chrono::duration_cast<std::chrono::seconds>(timeout_).count()) +
               "s)";
    break;
  }
  return s;
}

namespace {

http::Response json_answer(ProxyHealth::State s, bool healthy, bool with_node) {
  // kube-proxy answers a healthy probe with lastUpdated = now, as older releases did.
  if (healthy) s.last_updated = s.current_time;
  http::Response r;
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

http::Response count(metrics::CounterFamily* answers, http::Response r) {
  if (answers) answers->with({std::to_string(r.status)}).inc();
  return r;
}

}  // namespace

http::Handler healthz_handler(const ProxyHealth& health, metrics::CounterFamily* answers) {
  return [&health, answers](const http::Request&) {
    auto s = health.state();
    return count(answers, json_answer(s, s.healthy && s.node_eligible, true));
  };
}

http::Handler livez_handler(const ProxyHealth& health, metrics::CounterFamily* answers) {
  return [&health, answers](const http::Request&) {
    auto s = health.state();
    return count(answers, json_answer(s, s.healthy, false));
  };
}

}  // namespace knode::proxy
