// Manifest decoding, the --manifest-dir reader's cost: N Services with one EndpointSlice
// each (three endpoints, as a Deployment's), written as one YAML file of 2N documents and as
// one JSON v1 List, decoded with api::decode_manifest (parse, resolve, decode, default,
// validate) several times; prints the median wall time per file and per object.
//
//   knode_manifest_bench [--services 10000] [--repeat 5]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "knode/api/codec.h"

namespace {

std::string service_yaml(int i) {
  const std::string n = "svc-" + std::to_string(i);
  const std::string ip = "10.96." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
  std::string s = "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + n +
                  "\n  namespace: default\n  labels: {app: " + n + "}\nspec:\n  clusterIP: " + ip +
                  "\n  selector: {app: " + n + "}\n  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n"
                  "    protocol: TCP\n---\n";
  s += "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: " + n +
       "-abc12\n  namespace: default\n  labels:\n    kubernetes.io/service-name: " + n +
       "\naddressType: IPv4\nports:\n- name: http\n  port: 8080\n  protocol: TCP\nendpoints:\n";
  for (int e = 0; e < 3; ++e) {
    s += "- addresses: [\"10.244." + std::to_string(i % 200) + "." + std::to_string(e + 2) +
         "\"]\n  conditions: {ready: true, serving: true, terminating: false}\n  nodeName: node-1\n";
  }
  return s + "---\n";
}

std::string service_json(int i) {
  const std::string n = "svc-" + std::to_string(i);
  const std::string ip = "10.96." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
  std::string s = R"({"apiVersion":"v1","kind":"Service","metadata":{"name":")" + n +
                  R"(","namespace":"default","labels":{"app":")" + n + R"("}},"spec":{"clusterIP":")" + ip +
                  R"(","selector":{"app":")" + n +
                  R"("},"ports":[{"name":"http","port":80,"targetPort":8080,"protocol":"TCP"}]}},)";
  s += R"({"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":")" + n +
       R"(-abc12","namespace":"default","labels":{"kubernetes.io/service-name":")" + n +
       R"("}},"addressType":"IPv4","ports":[{"name":"http","port":8080,"protocol":"TCP"}],"endpoints":[)";
  for (int e = 0; e < 3; ++e) {
    if (e) s += ",";
    s += R"({"addresses":["10.244.)" + std::to_string(i % 200) + "." + std::to_string(e + 2) +
         R"("],"conditions":{"ready":true,"serving":true,"terminating":false},"nodeName":"node-1"})";
  }
  return s + "]}";
}

double median_ms(const std::string& text, const char* name, int repeat, size_t want) {
  std::vector<double> ms;
  for (int r = 0; r < repeat; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    auto m = knode::api::decode_manifest(text, name);
    const auto t1 = std::chrono::steady_clock::now();
    if (!m.ok() || m->objects.size() != want || !m->rejected.empty()) {
      std::fprintf(stderr, "%s: decoded %zu objects, %zu rejected, want %zu: %s\n", name,
                   m.ok() ? m->objects.size() : 0, m.ok() ? m->rejected.size() : 0, want,
                   m.ok() ? "" : m.error().c_str());
      std::exit(1);
    }
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int services = 10000;
  int repeat = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--services")) services = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--repeat")) repeat = std::max(1, std::atoi(argv[i + 1]));
  }
  std::string yaml;
  std::string json = R"({"apiVersion":"v1","kind":"List","items":[)";
  for (int i = 0; i < services; ++i) {
    yaml += service_yaml(i);
    if (i) json += ",";
    json += service_json(i);
  }
  json += "]}";
  const size_t objects = 2 * static_cast<size_t>(services);
  std::printf("%-6s %10s %8s %12s %14s\n", "format", "bytes", "objects", "median ms", "us per object");
  for (auto [fmt, text, name] : {std::tuple{"yaml", &yaml, "bench.yaml"}, std::tuple{"json", &json, "bench.json"}}) {
    const double ms = median_ms(*text, name, repeat, objects);
    std::printf("%-6s %10zu %8zu %12.1f %14.1f\n", fmt, text->size(), objects, ms, ms * 1000 / objects);
  }
  return 0;
}
