// GET /stats/summary: upstream's stats/v1alpha1 Summary, as far as knode measures it. The
// node's CPU (the non-idle time of /proc/stat) and memory (/proc/meminfo: usage =
// total - free, working set = usage - inactive file pages, available = total - working
// set, rss = anonymous pages), its start time (boot); per pod its containers' CPU and
// working set from the runtime's ContainerStats (CRI), summed into the pod's.
// usageNanoCores is the rate since the previous summary of the same node or container, so
// the first answer has none. What the runtime cannot say is left out: the summary stays
// valid (metrics-server reads cpu.usageCoreNanoSeconds and memory.workingSetBytes).
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "knode/api/pod.h"
#include "knode/clock.h"
#include "knode/runtime.h"

namespace knode::kubelet {

class StatsProvider {
 public:
  StatsProvider(std::string node_name, runtime::ContainerRuntime& runtime, const Clock& clock,
                std::string proc_root = "/proc");

  // The Summary as JSON for these pods (their running containers). Blocking: asks the
  // runtime once per container. Thread-safe.
  std::string summary(const std::vector<api::Pod>& pods);

 private:
  struct CpuSample {
    int64_t time_nanos = 0;
    uint64_t core_nanos = 0;
  };
  // usageNanoCores against the previous sample under `key`, and remembers this one.
  std::optional<uint64_t> rate(const std::string& key, CpuSample now);

  const std::string node_;
  runtime::ContainerRuntime& runtime_;
  const Clock& clock_;
  const std::string proc_;
  std::mutex mu_;
  std::map<std::string, CpuSample> last_;
};

}  // namespace knode::kubelet
