#include "knode/health.h"

namespace knode::health {
namespace {

std::string seconds_text(Clock::SteadyTime::duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(d).count()) + "s";
}

}  // namespace

void HealthRegistry::report(std::string_view component, bool healthy, std::string reason) {
  const auto steady = clock_.steady_now();
  const auto system = clock_.system_now();
  std::lock_guard lock(mu_);
  auto it = entries_.find(component);
  if (it == entries_.end()) it = entries_.emplace(std::string(component), Entry{}).first;
  Entry& e = it->second;
  e.reported = true;
  e.healthy = healthy;
  e.reason = healthy ? std::string() : std::move(reason);
  e.steady_time = steady;
  e.system_time = system;
}

void HealthRegistry::set_healthy(std::string_view component) { report(component, true, {}); }

void HealthRegistry::set_unhealthy(std::string_view component, std::string reason) {
  if (reason.empty()) reason = "unhealthy";
  report(component, false, std::move(reason));
}

void HealthRegistry::set_max_age(std::string_view component,
                                 Clock::SteadyTime::duration max_age) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(component);
  if (it == entries_.end()) it = entries_.emplace(std::string(component), Entry{}).first;
  it->second.max_age = max_age;
}

void HealthRegistry::set_external(std::string_view component) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(component);
  if (it == entries_.end()) it = entries_.emplace(std::string(component), Entry{}).first;
  it->second.external = true;
}

std::vector<ComponentHealth> HealthRegistry::components() const {
  const auto now = clock_.steady_now();
  std::lock_guard lock(mu_);
  std::vector<ComponentHealth> out;
  for (const auto& [name, e] : entries_) {
    if (!e.reported) continue;
    ComponentHealth c{name, e.healthy, e.reason, e.system_time, e.external};
    if (e.max_age && now - e.steady_time > *e.max_age) {
      c.healthy = false;
      c.reason = "no report for " + seconds_text(now - e.steady_time) + " (limit " +
                 seconds_text(*e.max_age) + ")";
    }
    out.push_back(std::move(c));
  }
  return out;
}

bool HealthRegistry::healthy(Scope scope) const {
  for (const auto& c : components()) {
    if (scope == Scope::kSelf && c.external) continue;
    if (!c.healthy) return false;
  }
  return true;
}

std::string HealthRegistry::unhealthy_reason() const {
  std::string out;
  for (const auto& c : components()) {
    if (c.healthy) continue;
    if (!out.empty()) out += "; ";
    out += c.component + ": " + c.reason;
  }
  return out;
}

}  // namespace knode::health
