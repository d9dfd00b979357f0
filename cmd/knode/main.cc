// knode: the kubelet and kube-proxy of a node in one daemon.
//   knode agent|kubelet|proxy [flags]   knode version   knode --help
#include <malloc.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "agent.h"
#include "knode/config.h"
#include "knode/log.h"
#include "knode/proxy/server.h"

#ifndef KNODE_VERSION
#define KNODE_VERSION "0.0.0"
#endif

namespace {

#ifdef KNODE_PROXY_ONLY
// knode-proxy: the same proxy as `knode proxy`, built without the kubelet, so the process
// maps none of the kubelet's gRPC stack (grpc++, grpc, abseil, re2, c-ares: ~5.5 MB of RSS).
const char* kProgram = "knode-proxy";
const char* kUsage =
    "knode-proxy: knode's service proxy alone (a kube-proxy replacement, without the kubelet)\n\n"
    "Usage:\n"
    "  knode-proxy proxy [flags]   the service proxy (the same flags as `knode proxy`)\n"
    "  knode-proxy version         print the version\n\n"
    "Run `knode-proxy proxy --help` for the flags.\n";
#else
const char* kProgram = "knode";
const char* kUsage =
    "knode: the kubelet and kube-proxy of a node in one daemon\n\n"
    "Usage:\n"
    "  knode agent   [flags]   kubelet and proxy together (the systemd service)\n"
    "  knode kubelet [flags]   the kubelet part only\n"
    "  knode proxy   [flags]   the service proxy only (a kube-proxy replacement)\n"
    "  knode version           print the version\n\n"
    "Run `knode <command> --help` for the flags of a command.\n";
#endif

int run(knode::config::Component component, const std::string& cmd, const std::vector<std::string>& args) {
  using knode::config::ParseOutcome;
  knode::config::AgentConfig cfg;
  auto outcome = knode::config::parse_flags(component, args, &cfg);
  if (outcome.kind == ParseOutcome::kHelp) {
    std::fputs(outcome.message.c_str(), stdout);
    return 0;
  }
  if (outcome.kind == ParseOutcome::kRun && cfg.runs_proxy()) {
    // What the proxy cannot program is a configuration error too.
    if (knode::Status s = knode::proxy::check_config(cfg.proxy); !s.ok()) {
      outcome = {ParseOutcome::kError, s.message()};
    }
  }
  if (outcome.kind == ParseOutcome::kError) {
    std::fprintf(stderr, "%s %s: %s\n%s", kProgram, cmd.c_str(), outcome.message.c_str(),
                 knode::config::usage(component).c_str());
    return 2;
  }
  knode::log::set_verbosity(cfg.verbosity);
  if (cfg.cleanup) {
    auto s = knode::proxy::cleanup(cfg.proxy);
    if (!s.ok()) {
      KLOG(ERROR, "cleanup failed").kv("err", s.message());
      return 1;
    }
    KLOG(INFO, "cleanup done: knode's rules, chains, sets and addresses are gone");
    return 0;
  }
  return knode::run_agent(cfg);
}

}  // namespace

namespace {

// glibc gives every thread that allocates an arena of its own, up to 8 per core: knode's
// threads (the loop, the runtime and sync workers, informers) then each keep freed memory
// apart. Two arenas (set before any thread starts) took the kubelet's RSS with 30 pods
// from 31.5 to 29.7 MB in bench/kubelet (2026-12-03, start times unchanged). The proxy
// alone (`proxy`) has two threads that allocate, the loop and the sync worker, and one
// arena for both: the first sync's memory, freed on the worker, is then what the loop's
// next allocations reuse, where with two it stayed apart (peak RSS at 10,000 × 10 in
// nftables mode from manifests, 2026-12-05: `knode proxy` 62.1–62.4 MB with two arenas,
// 59.5–59.9 with one; `knode-proxy` 58.0 and 55.7; ready time and change latency the same).
// Blocks of 256 KB and more are mapped and unmapped on their own, always: glibc's default
// raises that threshold to the size of each big block freed, after which the proxy's
// per-sync arrays (megabytes at 10,000 services) came from the heap and stayed there (the
// daemon's RSS after 10 changes at 10,000 services: 217 MB, with this 197 MB; change
// latency unchanged). MALLOC_ARENA_MAX, MALLOC_MMAP_THRESHOLD_ or GLIBC_TUNABLES in the
// environment still decide.
void tune_malloc(const char* command) {
  if (std::getenv("GLIBC_TUNABLES") != nullptr) return;
  const bool proxy_alone = command != nullptr && std::strcmp(command, "proxy") == 0;
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr) (void)mallopt(M_ARENA_MAX, proxy_alone ? 1 : 2);
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") == nullptr) (void)mallopt(M_MMAP_THRESHOLD, 256 * 1024);
}

}  // namespace

int main(int argc, char** argv) {
  tune_malloc(argc > 1 ? argv[1] : nullptr);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
    std::fputs(kUsage, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  std::string cmd = args[0];
  args.erase(args.begin());
  if (cmd == "version" || cmd == "--version") {
    std::printf("%s %s\n", kProgram, KNODE_VERSION);
    return 0;
  }
  using knode::config::Component;
  if (cmd == "proxy") return run(Component::kProxy, cmd, args);
#ifndef KNODE_PROXY_ONLY
  if (cmd == "agent") return run(Component::kAgent, cmd, args);
  if (cmd == "kubelet") return run(Component::kKubelet, cmd, args);
#endif
  std::fprintf(stderr, "%s: unknown command \"%s\"\n%s", kProgram, cmd.c_str(), kUsage);
  return 2;
}
