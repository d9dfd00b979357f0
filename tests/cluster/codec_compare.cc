// knode_codec_compare --kubeconfig FILE [--kind pods|services|endpointslices|nodes|configmaps|secrets]...
//                     [--repeat N]
//                     [--dump DIR]   (default: every kind)
//
// Reads the same objects from a real API server twice, as JSON and as protobuf, through
// knode's own client and readers, and compares the typed objects knode gets from each:
// a full list (one page), and a watch from resourceVersion 0 (the server's synthetic
// ADDED events for what exists, then a bookmark or the timeout) in each encoding. Prints
// one JSON report on stdout; the cluster test (knode_node_test.py) judges it. With
// --dump DIR, the protobuf bodies are written there too (the fuzz seeds). With --repeat
// N, the list is read and decoded N more times in each encoding and the median decode
// times are reported.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "knode/api/codec.h"
#include "knode/kube/client.h"
#include "knode/kube/informer.h"
#include "knode/kube/kubeconfig.h"
#include "knode/kube/protobuf.h"

using namespace knode;
using nlohmann::json;

namespace {

constexpr std::string_view kJson = "application/json";
constexpr std::string_view kProtobuf = "application/vnd.kubernetes.protobuf";

struct Read {
  std::string raw;  // the protobuf body or the frames (length-prefixed again), for --dump
  std::string content_type;
  size_t bytes = 0;
  double decode_ms = 0;
  std::map<std::string, api::ObjectPtr> objects;
  std::vector<std::string> bad;
  std::string error;
};

Read list(kube::RestClient& client, api::Kind kind, std::string_view accept) {
  Read out;
  auto r = client.get(kube::collection_path(kind), nullptr, accept);
  if (!r.ok()) {
    out.error = r.status().message();
    return out;
  }
  if (!r->ok()) {
    out.error = "HTTP " + std::to_string(r->status) + ": " + kube::status_message(*r);
    return out;
  }
  out.content_type = r->content_type;
  out.bytes = r->body.size();
  if (kube::protobuf::is_protobuf(r->content_type)) out.raw = r->body;
  const auto t0 = std::chrono::steady_clock::now();
  auto page = kube::protobuf::is_protobuf(r->content_type) ? kube::parse_list_page_protobuf(r->body, kind)
                                                             : kube::parse_list_page(r->body, kind);
  out.decode_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (!page.ok()) {
    out.error = page.status().message();
    return out;
  }
  if (!page->continue_token.empty()) out.error = "the list came in more than one page";
  for (auto& o : page->items) out.objects[api::namespaced_name(api::meta_of(*o))] = o;
  out.bad = page->bad;
  return out;
}

// A watch from resourceVersion 0 until `want` ADDED events came (or 20 s).
Read watch(kube::RestClient& client, api::Kind kind, std::string_view accept, size_t want) {
  Read out;
  const std::string target = kube::collection_path(kind) + "?watch=true&resourceVersion=0&timeoutSeconds=20";
  auto r = client.stream(
      target, accept,
      [&](std::string_view frame, bool proto) {
        out.bytes += frame.size();
        if (proto) {
          const auto n = static_cast<uint32_t>(frame.size());
          for (int shift : {24, 16, 8, 0}) out.raw += static_cast<char>(n >> shift);
          out.raw += frame;
        }
        kube::WatchLine w = proto ? kube::parse_watch_frame(frame, kind) : kube::parse_watch_line(frame, kind);
        if (w.type == kube::WatchLine::Type::kEvent) {
          out.objects[api::namespaced_name(api::meta_of(*w.object))] = w.object;
        } else if (w.type != kube::WatchLine::Type::kBookmark) {
          out.bad.push_back(w.message);
        }
        return out.objects.size() < want;
      },
      std::chrono::seconds(25));
  if (!r.ok()) {
    out.error = r.status().message();
  } else {
    out.content_type = r->content_type;
    if (!r->ok()) out.error = "HTTP " + std::to_string(r->status);
  }
  return out;
}

// Objects in one read and not the other, or different at the same resourceVersion (one
// changed between the two reads is counted, not compared).
json compare(const Read& a, const Read& b) {
  json diff = json::array();
  int equal = 0, changed = 0;
  for (const auto& [key, o] : a.objects) {
    auto it = b.objects.find(key);
    if (it == b.objects.end()) {
      diff.push_back(key + ": only in the first");
    } else if (api::meta_of(*o).resource_version != api::meta_of(*it->second).resource_version) {
      ++changed;
    } else if (*o == *it->second) {
      ++equal;
    } else {
      diff.push_back(key + ": differs: " + api::encode_json(*o) + " <> " + api::encode_json(*it->second));
    }
  }
  for (const auto& [key, o] : b.objects) {
    if (!a.objects.count(key)) diff.push_back(key + ": only in the second");
  }
  return {{"equal", equal}, {"changedBetween", changed}, {"differences", diff}};
}

json report(const Read& r) {
  return {{"contentType", r.content_type}, {"objects", r.objects.size()}, {"bytes", r.bytes},
          {"bad", r.bad},                  {"error", r.error}};
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::string kubeconfig;
  std::vector<std::string> kinds;
  int repeat = 0;
  std::string dump;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--kubeconfig" && i + 1 < argc) {
      kubeconfig = argv[++i];
    } else if (a == "--kind" && i + 1 < argc) {
      kinds.emplace_back(argv[++i]);
    } else if (a == "--dump" && i + 1 < argc) {
      dump = argv[++i];
    } else if (a == "--repeat" && i + 1 < argc) {
      repeat = std::stoi(argv[++i]);
    } else {
      std::cerr << "usage: knode_codec_compare --kubeconfig FILE [--kind pods|services|endpointslices|nodes|"
                   "configmaps|secrets]... "
                   "[--repeat N] [--dump DIR]\n";
      return 2;
    }
  }
  if (kinds.empty()) kinds = {"pods", "services", "endpointslices", "nodes", "configmaps", "secrets"};
  auto kc = kube::load_kubeconfig(kubeconfig);
  if (!kc.ok()) {
    std::cerr << kc.status().message() << "\n";
    return 1;
  }
  kube::ClientOptions options;
  options.qps = 0;
  auto client = kube::RestClient::create(*kc, options);
  if (!client.ok()) {
    std::cerr << client.status().message() << "\n";
    return 1;
  }
  json out = json::object();
  for (const auto& name : kinds) {
    api::Kind kind;
    if (name == "pods") {
      kind = api::Kind::kPod;
    } else if (name == "services") {
      kind = api::Kind::kService;
    } else if (name == "endpointslices") {
      kind = api::Kind::kEndpointSlice;
    } else if (name == "nodes") {
      kind = api::Kind::kNode;
    } else if (name == "configmaps") {
      kind = api::Kind::kConfigMap;
    } else if (name == "secrets") {
      kind = api::Kind::kSecret;
    } else {
      std::cerr << "unknown kind " << name << "\n";
      return 2;
    }
    Read lj = list(**client, kind, kJson);
    Read lp = list(**client, kind, kProtobuf);
    Read wj, wp;
    if (!lj.objects.empty()) {
      wj = watch(**client, kind, kJson, lj.objects.size());
      wp = watch(**client, kind, kProtobuf, lj.objects.size());
    }
    json k = {{"list", {{"json", report(lj)}, {"protobuf", report(lp)}}},
              {"watch", {{"json", report(wj)}, {"protobuf", report(wp)}}},
              {"listJsonVsProtobuf", compare(lj, lp)},
              {"watchJsonVsProtobuf", compare(wj, wp)},
              {"protobufListVsWatch", compare(lp, wp)}};
    if (repeat > 0) {
      std::vector<double> tj, tp;
      for (int i = 0; i < repeat; ++i) {
        tj.push_back(list(**client, kind, kJson).decode_ms);
        tp.push_back(list(**client, kind, kProtobuf).decode_ms);
      }
      k["decodeMsMedian"] = {{"json", median(tj)}, {"protobuf", median(tp)}};
    }
    out[name] = std::move(k);
    if (!dump.empty()) {
      // The protobuf bytes as the server sent them: seeds for tests/fuzz/kube_protobuf.
      for (const auto& [suffix, bytes] : {std::pair{".list.pb", &lp.raw}, std::pair{".watch.pb", &wp.raw}}) {
        if (FILE* f = std::fopen((dump + "/" + name + suffix).c_str(), "wb")) {
          std::fwrite(bytes->data(), 1, bytes->size(), f);
          std::fclose(f);
        }
      }
    }
  }
  std::cout << out.dump(1) << "\n";
  return 0;
}
