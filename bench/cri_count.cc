// The kubelet benchmark's observer: counts what a CRI runtime lists, over one gRPC
// connection kept open, so that polling every 50 ms costs the runtime one List call and
// this process almost nothing (a `crictl` per poll is a Go process start, a new
// connection and a Version call: 0.3 CPU-seconds of every 30-pod start on 2 cores).
//
//   knode_cri_count --endpoint unix:///path/containerd.sock
//
// Reads commands on stdin, one per line, and answers each with one line on stdout:
//   running <namespace>   containers RUNNING of pods labelled io.kubernetes.pod.namespace=<namespace>
//   ready <namespace>     pod sandboxes READY of that namespace
// The answer is the count, or "-1 <error>" when the runtime did not answer.
#include <cstdio>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>

#include "cri/cri_runtime.h"

namespace {

constexpr const char* kNamespaceLabel = "io.kubernetes.pod.namespace";

int usage() {
  std::fprintf(stderr, "usage: knode_cri_count --endpoint unix:///path [--timeout-ms N]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  knode::cri::CriOptions options;
  options.request_timeout = std::chrono::seconds(10);
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--endpoint") == 0 && i + 1 < argc) {
      options.endpoint = argv[++i];
    } else if (std::strcmp(argv[i], "--timeout-ms") == 0 && i + 1 < argc) {
      options.request_timeout = std::chrono::milliseconds(std::stol(argv[++i]));
    } else {
      return usage();
    }
  }
  auto rt = knode::cri::CriRuntime::connect(options);
  if (!rt.ok()) {
    std::fprintf(stderr, "knode_cri_count: %s\n", rt.error().c_str());
    return 1;
  }
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string what, ns;
    in >> what >> ns;
    knode::runtime::Labels selector = {{kNamespaceLabel, ns}};
    std::string answer;
    if (what == "running") {
      auto list = (*rt)->list_containers(
          {.state = knode::runtime::ContainerState::kRunning, .label_selector = selector});
      answer = list.ok() ? std::to_string(list->size()) : "-1 " + list.error();
    } else if (what == "ready") {
      auto list = (*rt)->list_pod_sandboxes(
          {.state = knode::runtime::SandboxState::kReady, .label_selector = selector});
      answer = list.ok() ? std::to_string(list->size()) : "-1 " + list.error();
    } else {
      answer = "-1 unknown command: " + line;
    }
    for (char& c : answer) {
      if (c == '\n') c = ' ';
    }
    std::cout << answer << std::endl;
  }
  return 0;
}
