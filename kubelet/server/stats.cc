#include "server/stats.h"

#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "knode/log.h"
#include "knode/json_get.h"

namespace knode::kubelet {

using nlohmann::json;

namespace {

std::string rfc3339(int64_t unix_nanos) { return api::Time::FromUnixNanos(unix_nanos).str(); }

std::map<std::string, uint64_t> meminfo(const std::string& proc) {
  std::map<std::string, uint64_t> out;
  std::ifstream in(proc + "/meminfo");
  std::string key;
  uint64_t value = 0;
  std::string unit;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    if (ls >> key >> value) {
      if (!key.empty() && key.back() == ':') key.pop_back();
      ls >> unit;
      out[key] = unit == "kB" ? value * 1024 : value;
    }
  }
  return out;
}

// Non-idle CPU time of all cores (ns) and the boot time (s) from /proc/stat.
bool proc_stat(const std::string& proc, uint64_t* core_nanos, int64_t* boot_seconds) {
  std::ifstream in(proc + "/stat");
  std::string line;
  bool cpu = false;
  const double ns_per_tick = 1e9 / static_cast<double>(::sysconf(_SC_CLK_TCK));
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string key;
    ls >> key;
    if (key == "cpu") {
      uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0,
               steal = 0;
      ls >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
      *core_nanos = static_cast<uint64_t>(
          static_cast<double>(user + nice + system + irq + softirq + steal) * ns_per_tick);
      cpu = true;
    } else if (key == "btime") {
      ls >> *boot_seconds;
    }
  }
  return cpu;
}

std::string container_id_of(const std::string& with_scheme) {
  auto sep = with_scheme.find("://");
  return sep == std::string::npos ? with_scheme : with_scheme.substr(sep + 3);
}

}  // namespace

StatsProvider::StatsProvider(std::string node_name, runtime::ContainerRuntime& runtime,
                             const Clock& clock, std::string proc_root)
    : node_(std::move(node_name)), runtime_(runtime), clock_(clock), proc_(std::move(proc_root)) {}

std::optional<uint64_t> StatsProvider::rate(const std::string& key, CpuSample now) {
  std::lock_guard lock(mu_);
  auto it = last_.find(key);
  std::optional<uint64_t> out;
  if (it != last_.end() && now.time_nanos > it->second.time_nanos &&
      now.core_nanos >= it->second.core_nanos) {
    const double dt = static_cast<double>(now.time_nanos - it->second.time_nanos);
    out = static_cast<uint64_t>(static_cast<double>(now.core_nanos - it->second.core_nanos) / dt *
                                1e9);
  }
  last_[key] = now;
  return out;
}

std::string StatsProvider::summary(const std::vector<api::Pod>& pods) {
  const int64_t now =
      std::chrono::duration_cast<std::chrono::nanoseconds>(clock_.system_now().time_since_epoch())
          .count();
  json node = {{"nodeName", node_}};
  uint64_t core_nanos = 0;
  int64_t boot = 0;
  if (proc_stat(proc_, &core_nanos, &boot)) {
    json cpu = {{"time", rfc3339(now)}, {"usageCoreNanoSeconds", core_nanos}};
    if (auto r = rate("node", {now, core_nanos})) cpu["usageNanoCores"] = *r;
    node["cpu"] = cpu;
    if (boot > 0) node["startTime"] = rfc3339(boot * 1000000000);
  }
  auto mem = meminfo(proc_);
  if (mem.count("MemTotal") && mem.count("MemFree")) {
    const uint64_t usage = mem["MemTotal"] - mem["MemFree"];
    const uint64_t inactive = mem.count("Inactive(file)") ? mem["Inactive(file)"] : 0;
    const uint64_t working = usage > inactive ? usage - inactive : 0;
    node["memory"] = {{"time", rfc3339(now)},
                      {"availableBytes", mem["MemTotal"] - working},
                      {"usageBytes", usage},
                      {"workingSetBytes", working},
                      {"rssBytes", mem.count("AnonPages") ? mem["AnonPages"] : 0},
                      {"pageFaults", 0},
                      {"majorPageFaults", 0}};
  }

  json out_pods = json::array();
  std::set<std::string> seen;
  for (const auto& pod : pods) {
    json p = {{"podRef",
               {{"name", pod.metadata.name},
                {"namespace", pod.metadata.namespace_},
                {"uid", pod.metadata.uid}}}};
    if (pod.status.start_time.is_set()) p["startTime"] = pod.status.start_time.str();
    json containers = json::array();
    uint64_t pod_cpu = 0, pod_ws = 0, pod_rate = 0;
    bool have_cpu = false, all_rates = true;
    for (const auto& cs : pod.status.container_statuses) {
      if (!cs.state.running || cs.container_id.empty()) continue;
      const std::string id = container_id_of(cs.container_id);
      auto st = runtime_.container_stats(id);
      if (!st.ok()) {
        KLOGV(3, "kubelet API: no stats for a container")
            .kv("container", id)
            .kv("err", st.status().message());
        continue;
      }
      seen.insert(id);
      const int64_t t = st->timestamp > 0 ? st->timestamp : now;
      json c = {{"name", cs.name}};
      if (cs.state.running->started_at.is_set())
        c["startTime"] = cs.state.running->started_at.str();
      json cpu = {{"time", rfc3339(t)}, {"usageCoreNanoSeconds", st->cpu_usage_core_nanoseconds}};
      if (auto r = rate(id, {t, st->cpu_usage_core_nanoseconds})) {
        cpu["usageNanoCores"] = *r;
        pod_rate += *r;
      } else {
        all_rates = false;
      }
      c["cpu"] = cpu;
      c["memory"] = {{"time", rfc3339(t)}, {"workingSetBytes", st->memory_working_set_bytes}};
      c["rootfs"] = {{"time", rfc3339(t)}, {"usedBytes", st->writable_layer_used_bytes}};
      containers.push_back(c);
      pod_cpu += st->cpu_usage_core_nanoseconds;
      pod_ws += st->memory_working_set_bytes;
      have_cpu = true;
    }
    p["containers"] = containers;
    if (have_cpu) {
      json cpu = {{"time", rfc3339(now)}, {"usageCoreNanoSeconds", pod_cpu}};
      if (all_rates) cpu["usageNanoCores"] = pod_rate;
      p["cpu"] = cpu;
      p["memory"] = {{"time", rfc3339(now)}, {"workingSetBytes", pod_ws}};
    }
    out_pods.push_back(p);
  }
  {
    // Containers that are gone leave their samples behind.
    std::lock_guard lock(mu_);
    std::erase_if(last_,
                  [&](const auto& kv) { return kv.first != "node" && !seen.count(kv.first); });
  }
  return jget::dump(json{{"node", node}, {"pods", out_pods}});
}

}  // namespace knode::kubelet
