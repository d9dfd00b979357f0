// process_* metrics as the Prometheus client libraries define them, read from procfs at
// scrape time. The procfs root is a parameter so tests can feed fixed files.
#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>

#include "knode/metrics.h"

namespace knode::metrics {
namespace {

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct ProcStat {
  double utime_ticks = 0;
  double stime_ticks = 0;
  double start_ticks = 0;
  double vsize_bytes = 0;
  double rss_pages = 0;
};

// /proc/self/stat: "pid (comm) state ppid ...". comm may hold spaces and parentheses,
// so fields are counted from the last ')'. Field 3 (state) is the first after it.
std::optional<ProcStat> parse_stat(const std::string& text) {
  auto close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream in(text.substr(close + 1));
  std::vector<std::string> f;  // f[0] is field 3
  for (std::string tok; in >> tok;) f.push_back(tok);
  if (f.size() < 22) return std::nullopt;
  auto num = [&](int field) { return std::strtod(f[static_cast<std::size_t>(field - 3)].c_str(), nullptr); };
  return ProcStat{num(14), num(15), num(22), num(23), num(24)};
}

std::optional<double> boot_time(const std::string& text) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("btime ")) return std::strtod(line.c_str() + 6, nullptr);
  }
  return std::nullopt;
}

// "Max open files            1024                 524288               files"
std::optional<double> max_open_files(const std::string& text) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.starts_with("Max open files")) continue;
    std::istringstream fields(line.substr(14));
    std::string soft;
    fields >> soft;
    if (soft == "unlimited") return std::nullopt;
    return std::strtod(soft.c_str(), nullptr);
  }
  return std::nullopt;
}

std::optional<double> count_fds(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (!d) return std::nullopt;
  double n = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(d);
  return n;  // includes the descriptor that reads the directory, as the Go client's does
}

void add(std::vector<MetricFamily>& out, const char* name, const char* help, Type type,
         double value) {
  out.push_back(MetricFamily{name, help, type, {Sample{name, {}, value}}});
}

void collect(const std::string& root, std::vector<MetricFamily>& out) {
  static const double kTicks = static_cast<double>(sysconf(_SC_CLK_TCK));
  static const double kPageSize = static_cast<double>(sysconf(_SC_PAGESIZE));
  const std::string self = root + "/self";

  if (auto text = read_file(self + "/stat")) {
    if (auto st = parse_stat(*text)) {
      add(out, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
          Type::kCounter, (st->utime_ticks + st->stime_ticks) / kTicks);
      add(out, "process_resident_memory_bytes", "Resident memory size in bytes.", Type::kGauge,
          st->rss_pages * kPageSize);
      add(out, "process_virtual_memory_bytes", "Virtual memory size in bytes.", Type::kGauge,
          st->vsize_bytes);
      if (auto stat = read_file(root + "/stat")) {
        if (auto btime = boot_time(*stat)) {
          add(out, "process_start_time_seconds",
              "Start time of the process since unix epoch in seconds.", Type::kGauge,
              *btime + st->start_ticks / kTicks);
        }
      }
    }
  }
  if (auto n = count_fds(self + "/fd")) {
    add(out, "process_open_fds", "Number of open file descriptors.", Type::kGauge, *n);
  }
  if (auto text = read_file(self + "/limits")) {
    if (auto max = max_open_files(*text)) {
      add(out, "process_max_fds", "Maximum number of open file descriptors.", Type::kGauge, *max);
    }
  }
}

}  // namespace

Collector process_collector(std::string proc_root) {
  return [root = std::move(proc_root)](std::vector<MetricFamily>& out) { collect(root, out); };
}

void register_process_metrics(Registry& registry, std::string proc_root) {
  registry.add_collector(process_collector(std::move(proc_root)));
}

}  // namespace knode::metrics
