// knode_iptables_bench: the iptables Reconciler against iptables-legacy-restore on a
// kube-proxy-shaped nat table (per service: a KUBE-SERVICES rule, a KUBE-SVC- chain
// with a masquerade rule and statistic rules, per endpoint a KUBE-SEP- chain with a
// masquerade rule and a DNAT), in a private network namespace entered at start.
//
//   knode_iptables_bench [--services 10000] [--endpoints 10] [--verify] [--no-restore]
//                        [--large-cluster] [--keep FILE]
//
// Needs root. Never touches the root namespace: unshare(CLONE_NEWNET) comes first and
// the program stops if it fails.
#include <sched.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include "knode/dataplane/iptables/reconciler.h"

using namespace knode;
using namespace knode::iptables;

namespace {

using Clock = std::chrono::steady_clock;
double ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::string hash_name(const std::string& prefix, const std::string& key) {
  // kube-proxy uses base32(sha256) truncated to 16; any stable 16 characters will do.
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  uint64_t h = std::hash<std::string>{}(key) * 0x9E3779B97F4A7C15ull;
  uint64_t g = std::hash<std::string>{}(key + "#") ^ (h >> 17);
  std::string out = prefix;
  for (int i = 0; i < 16; ++i) {
    uint64_t& src = i < 12 ? h : g;
    out += kAlphabet[src & 31];
    src >>= 5;
  }
  return out;
}

net::IPAddress v4(uint32_t host) { return net::IPAddress::V4(host); }

struct Model {
  int services = 10000;
  int endpoints = 10;
  // kube-proxy's large-cluster mode (> 1000 endpoints): no comments on the per-endpoint
  // rules (KUBE-SVC- picks, KUBE-SEP- rules), which halves the table's bytes.
  bool large_cluster = false;
};
bool g_large_cluster = false;

const std::string kMarkMasq = "KUBE-MARK-MASQ";

Rule masq_for_service(const net::IPAddress& cip, const std::string& comment) {
  Rule r;
  r.src = CidrMatch{*net::Cidr::Parse("10.244.0.0/16"), true};
  r.dst = CidrMatch{net::Cidr(cip, 32)};
  r.protocol = Proto::kTCP;
  r.matches = {Comment{comment}, Port{.dport = PortRange::One(80)}};
  r.target = Jump{kMarkMasq};
  return r;
}

// Builds service `i` into `d`; `skip_endpoint` >= 0 leaves that endpoint out.
void add_service(DesiredTable& d, int i, int endpoints, int skip_endpoint,
                 std::vector<std::string>* chain_names = nullptr) {
  const std::string name = "ns" + std::to_string(i % 100) + "/svc" + std::to_string(i) + ":http";
  const std::string svc = hash_name("KUBE-SVC-", name + "/tcp");
  const net::IPAddress cip = v4((10u << 24) | ((96u << 16) + static_cast<uint32_t>(i)));
  const std::string cluster_comment = name + " cluster IP";

  Rule portal;
  portal.dst = CidrMatch{net::Cidr(cip, 32)};
  portal.protocol = Proto::kTCP;
  portal.matches = {Comment{cluster_comment}, Port{.dport = PortRange::One(80)}};
  portal.target = Jump{svc};
  d.chains["KUBE-SERVICES"].push_back(std::move(portal));

  auto& svc_rules = d.chains[svc];
  svc_rules.push_back(masq_for_service(cip, cluster_comment));
  if (chain_names) chain_names->push_back(svc);
  std::vector<int> eps;
  for (int e = 0; e < endpoints; ++e) {
    if (e != skip_endpoint) eps.push_back(e);
  }
  for (size_t k = 0; k < eps.size(); ++k) {
    const int e = eps[k];
    const net::IPAddress ep = v4((10u << 24) | ((128u << 16) + static_cast<uint32_t>(i * endpoints + e)));
    const std::string sep = hash_name("KUBE-SEP-", name + "/tcp/" + ep.str() + ":8080");
    Rule pick;
    if (!g_large_cluster) pick.matches.push_back(Comment{name + " -> " + ep.str() + ":8080"});
    if (k + 1 < eps.size()) {
      pick.matches.push_back(Statistic::Random(1.0 / static_cast<double>(eps.size() - k)));
    }
    pick.target = Jump{sep};
    svc_rules.push_back(std::move(pick));

    auto& sep_rules = d.chains[sep];
    Rule hairpin;
    hairpin.src = CidrMatch{net::Cidr(ep, 32)};
    if (!g_large_cluster) hairpin.matches = {Comment{name}};
    hairpin.target = Jump{kMarkMasq};
    Rule dnat;
    dnat.protocol = Proto::kTCP;
    dnat.matches = {Port{}};
    if (!g_large_cluster) dnat.matches.insert(dnat.matches.begin(), Comment{name});
    Dnat to;
    to.ip = ep;
    to.ports = PortRange::One(8080);
    dnat.target = to;
    sep_rules = {std::move(hairpin), std::move(dnat)};
    if (chain_names) chain_names->push_back(sep);
  }
}

DesiredTable build(const Model& m, int changed_service = -1) {
  DesiredTable d;
  d.table = "nat";
  d.owned_prefixes = {"KUBE-"};
  Rule masq_mark;
  masq_mark.target = MarkTarget::OrMark(0x4000);
  d.chains[kMarkMasq] = {masq_mark};
  auto& post = d.chains["KUBE-POSTROUTING"];
  post.push_back(*parse_rule("-m mark ! --mark 0x4000/0x4000 -j RETURN"));
  post.push_back(*parse_rule("-j MARK --set-xmark 0x4000/0x0"));
  post.push_back(*parse_rule(
      "-m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully"));
  d.chains["KUBE-SERVICES"].reserve(static_cast<size_t>(m.services) + 1);
  for (int i = 0; i < m.services; ++i) {
    add_service(d, i, m.endpoints, i == changed_service ? m.endpoints - 1 : -1);
  }
  Rule portals = *parse_rule("-m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES");
  Rule postrouting =
      *parse_rule("-m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING");
  d.jumps = {{"PREROUTING", portals}, {"OUTPUT", portals}, {"POSTROUTING", postrouting}};
  return d;
}

// The same table as iptables-restore input (what kube-proxy would feed it).
std::string restore_text(const DesiredTable& d, const std::set<std::string>* only = nullptr) {
  std::string out = "*nat\n";
  for (const auto& [c, _] : d.chains) {
    if (!only || only->count(c)) out += ":" + c + " - [0:0]\n";
  }
  if (only) {
    for (const auto& c : *only) {
      if (!d.chains.count(c)) out += ":" + c + " - [0:0]\n";  // flushed, then deleted
    }
    for (const auto& c : *only) {
      if (!d.chains.count(c)) out += "-X " + c + "\n";
    }
  }
  if (!only) {
    for (const auto& j : d.jumps) out += j.rule.save_string(j.chain) + "\n";
  }
  for (const auto& [c, rules] : d.chains) {
    if (only && !only->count(c)) continue;
    for (const auto& r : rules) out += r.save_string(c) + "\n";
  }
  out += "COMMIT\n";
  return out;
}

double run_timed(const std::string& cmd) {
  auto t0 = Clock::now();
  int rc = std::system(cmd.c_str());
  auto t1 = Clock::now();
  if (rc != 0) {
    std::fprintf(stderr, "command failed (%d): %s\n", rc, cmd.c_str());
    return -1;
  }
  return ms(t0, t1);
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

size_t count_rules(const DesiredTable& d) {
  size_t n = 0;
  for (const auto& [_, r] : d.chains) n += r.size();
  return n + d.jumps.size();
}

void print_stats(const char* what, double total, const ReconcileStats& s) {
  std::printf("  %-44s %9.1f ms  (read %.1f, diff %.1f, write %.1f of which kernel %.1f; +%zu ~%zu -%zu chains, %zu rules written%s)\n",
              what, total, s.read_ms, s.diff_ms, s.write_ms, s.kernel_ms, s.chains_created, s.chains_rewritten,
              s.chains_deleted, s.rules_written, s.committed ? "" : ", no commit");
}

long peak_rss_mb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024;
}

}  // namespace

int main(int argc, char** argv) {
  Model m;
  bool verify = false;
  bool restore = true;
  std::string keep;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--services" && i + 1 < argc) m.services = std::atoi(argv[++i]);
    else if (a == "--endpoints" && i + 1 < argc) m.endpoints = std::atoi(argv[++i]);
    else if (a == "--verify") verify = true;
    else if (a == "--no-restore") restore = false;
    else if (a == "--large-cluster") m.large_cluster = true;
    else if (a == "--keep" && i + 1 < argc) keep = argv[++i];
    else {
      std::fprintf(stderr, "usage: %s [--services N] [--endpoints N] [--verify] [--no-restore] [--large-cluster] [--keep FILE]\n", argv[0]);
      return 2;
    }
  }
  if (::unshare(CLONE_NEWNET) != 0) {
    std::fprintf(stderr, "unshare(CLONE_NEWNET): %s (needs root); not touching the root netns\n",
                 std::strerror(errno));
    return 1;
  }

  g_large_cluster = m.large_cluster;
  std::printf("iptables reconcile bench: %d services x %d endpoints%s, private netns\n", m.services,
              m.endpoints, m.large_cluster ? " (large-cluster mode: no per-endpoint comments)" : "");
  auto t0 = Clock::now();
  DesiredTable desired = build(m);
  auto t1 = Clock::now();
  const size_t rules = count_rules(desired);
  std::printf("  generated %zu chains, %zu rules in %.1f ms (proxy-side cost, not counted below)\n",
              desired.chains.size(), rules, ms(t0, t1));

  Reconciler rec;
  ReconcileStats st;
  auto timed = [&](const char* what, const DesiredTable& d, const ReconcileOptions& o,
                   Reconciler& r) -> double {
    auto a = Clock::now();
    Status s = r.reconcile(d, o, &st);
    double t = ms(a, Clock::now());
    if (!s) {
      std::fprintf(stderr, "%s: %s\n", what, s.message().c_str());
      std::exit(1);
    }
    print_stats(what, t, st);
    return t;
  };

  std::printf("knode Reconciler (\"cached\": trust_cache, no kernel read):\n");
  ReconcileOptions full;
  ReconcileOptions full_cached;
  full_cached.trust_cache = true;
  const double full_empty = timed("full sync into an empty table", desired, full, rec);
  const double noop_cached = timed("full sync, nothing changed (cached)", desired, full_cached, rec);
  Reconciler fresh;
  const double noop_read = timed("full sync, nothing changed (reads kernel)", desired, full, fresh);

  // One endpoint of one service goes away.
  const int victim = m.services / 2;
  DesiredTable changed = build(m, victim);
  std::set<std::string> touched;
  {
    // The proxy knows which service changed: its KUBE-SVC chain and every KUBE-SEP chain
    // it had or has (the gone one gets deleted).
    DesiredTable scratch;
    std::vector<std::string> names;
    add_service(scratch, victim, m.endpoints, -1, &names);
    touched.insert(names.begin(), names.end());
  }
  ReconcileOptions partial;
  partial.only_chains = touched;
  partial.trust_cache = true;
  const double part = timed("partial: one endpoint removed (cached)", changed, partial, rec);
  const double back = timed("partial: endpoint back (cached)", desired, partial, rec);
  ReconcileOptions partial_read = partial;
  partial_read.trust_cache = false;
  const double part_read = timed("partial: one endpoint removed (reads kernel)", changed, partial_read, rec);
  timed("partial: endpoint back (reads kernel)", desired, partial_read, rec);
  const double full_change = timed("full sync with one endpoint removed (cached)", changed, full_cached, rec);
  const double full_change_read =
      timed("full sync, endpoint back (reads kernel)", desired, full, fresh);

  if (verify) {
    std::printf("verifying iptables-legacy-save output against Rule::save_string ...\n");
    std::string want = restore_text(desired);
    write_file("/tmp/knode_bench_want.txt", want);
    std::string cmd =
        "iptables-legacy-save -t nat | grep -v '^#' | sed 's/ \\[0:0\\]$//' | sort > /tmp/knode_bench_got.s; "
        "sed 's/ \\[0:0\\]$//' /tmp/knode_bench_want.txt | sort > /tmp/knode_bench_want.s; "
        "grep -v -e '^:PREROUTING' -e '^:INPUT' -e '^:OUTPUT' -e '^:POSTROUTING' -e '^\\*nat' "
        "/tmp/knode_bench_got.s > /tmp/knode_bench_got.t; "
        "grep -v -e '^\\*nat' /tmp/knode_bench_want.s > /tmp/knode_bench_want.t; "
        "cmp -s /tmp/knode_bench_got.t /tmp/knode_bench_want.t";
    int rc = std::system(cmd.c_str());
    std::printf("  %s\n", rc == 0 ? "identical" : "DIFFERENT (see /tmp/knode_bench_{got,want}.t)");
    if (rc != 0) return 1;
  }

  if (!restore) return 0;
  // The same work with iptables-legacy-restore, in this netns.
  std::printf("iptables-legacy-restore (libiptc), same rules, same netns:\n");
  char path[] = "/tmp/knode_iptables_bench_XXXXXX";
  int fd = ::mkstemp(path);
  if (fd < 0) return 1;
  ::close(fd);
  write_file(path, restore_text(desired));
  std::string part_path = std::string(path) + ".partial";
  write_file(part_path, restore_text(changed, &touched));
  run_timed("iptables-legacy -t nat -F && iptables-legacy -t nat -X");
  const double r_empty = run_timed(std::string("iptables-legacy-restore < ") + path);
  std::printf("  %-44s %9.1f ms\n", "full restore into an empty table", r_empty);
  const double r_full = run_timed(std::string("iptables-legacy-restore < ") + path);
  std::printf("  %-44s %9.1f ms\n", "full restore over the same table", r_full);
  const double r_part = run_timed("iptables-legacy-restore --noflush < " + part_path);
  std::printf("  %-44s %9.1f ms\n", "--noflush restore of the changed chains", r_part);
  if (!keep.empty()) write_file(keep, restore_text(desired));
  ::unlink(path);
  ::unlink(part_path.c_str());

  std::printf("summary (%zu rules, %zu chains; peak RSS %ld MB):\n", rules, desired.chains.size(),
              peak_rss_mb());
  std::printf("  full sync (empty table):     knode %8.1f ms   restore %8.1f ms   %.1fx\n", full_empty,
              r_empty, r_empty / full_empty);
  std::printf("  full sync (table in place):  knode %8.1f ms   restore %8.1f ms   %.1fx\n",
              full_change, r_full, r_full / full_change);
  std::printf("  one-endpoint change:         knode %8.1f ms   restore %8.1f ms   %.1fx  (cached)\n", part,
              r_part, r_part / part);
  std::printf("  one-endpoint change:         knode %8.1f ms   restore %8.1f ms   %.1fx  (reading the kernel)\n",
              part_read, r_part, r_part / part_read);
  std::printf("  no-op sync:                  knode %8.1f ms (cached), %.1f ms (reading the kernel)\n",
              noop_cached, noop_read);
  std::printf("  (also: endpoint back %.1f ms partial; full sync reading the kernel %.1f ms)\n", back,
              full_change_read);
  return 0;
}
