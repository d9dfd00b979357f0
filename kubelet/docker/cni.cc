#include "docker/cni.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <sstream>

#include "knode/process.h"
#include "knode/json_get.h"
#include "knode/log.h"

extern char** environ;

namespace knode::docker {

using nlohmann::json;

namespace {

bool is_config_name(const std::string& n) {
  return n.ends_with(".conflist") || n.ends_with(".conf") || n.ends_with(".json");
}

bool is_dir(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

const char* protocol_name(runtime::Protocol p) {
  switch (p) {
    case runtime::Protocol::kUDP:
      return "udp";
    case runtime::Protocol::kSCTP:
      return "sctp";
    case runtime::Protocol::kTCP:
      break;
  }
  return "tcp";
}

bool has_capability(const json& plugin, const char* name) {
  auto caps = plugin.find("capabilities");
  if (caps == plugin.end() || !caps->is_object()) return false;
  auto it = caps->find(name);
  return it != caps->end() && it->is_boolean() && it->get<bool>();
}

// The highest version of a list's cniVersions this runtime passes on (CNI 1.1 lists may
// name several; older runtimes read cniVersion only).
std::string pick_version(const json& doc) {
  std::string best = jget::str(doc, "cniVersion");
  auto vs = doc.find("cniVersions");
  if (vs == doc.end() || !vs->is_array()) return best;
  auto key = [](const std::string& v) {
    std::vector<int> parts;
    std::stringstream ss(v);
    for (std::string p; std::getline(ss, p, '.');) parts.push_back(std::atoi(p.c_str()));
    return parts;
  };
  for (const auto& v : *vs) {
    if (!v.is_string()) continue;
    const std::string s = v.get<std::string>();
    if (key(s) <= key("1.1.0") && (best.empty() || key(s) > key(best))) best = s;
  }
  return best;
}

}  // namespace

Result<NetworkList> load_network(const std::string& conf) {
  std::string path = conf;
  if (is_dir(conf)) {
    std::vector<std::string> names;
    if (DIR* d = ::opendir(conf.c_str())) {
      while (dirent* e = ::readdir(d)) {
        if (is_config_name(e->d_name)) names.emplace_back(e->d_name);
      }
      ::closedir(d);
    }
    if (names.empty()) {
      return Status::Error("CNI: no network configuration in " + conf, ENOENT);
    }
    std::sort(names.begin(), names.end());
    path = conf + "/" + names.front();
  }
  std::ifstream in(path);
  if (!in) return Status::Error("CNI: cannot read the network configuration " + path, ENOENT);
  std::stringstream text;
  text << in.rdbuf();
  json doc = json::parse(text.str(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return Status::Error("CNI: " + path + " is not a JSON object", EINVAL);
  }
  NetworkList net;
  net.path = path;
  net.name = jget::str(doc, "name");  // not a string: "no name" below
  net.cni_version = pick_version(doc);
  if (auto plugins = doc.find("plugins"); plugins != doc.end()) {
    if (!plugins->is_array() || plugins->empty()) {
      return Status::Error("CNI: " + path + ": \"plugins\" must be a non-empty list", EINVAL);
    }
    for (const auto& p : *plugins) net.plugins.push_back(p);
  } else {
    net.plugins.push_back(doc);  // a single plugin's .conf
  }
  if (net.name.empty()) return Status::Error("CNI: " + path + ": the network has no name", EINVAL);
  for (const auto& p : net.plugins) {
    if (!p.is_object() || !p.contains("type") || !p["type"].is_string()) {
      return Status::Error("CNI: " + path + ": a plugin without a type", EINVAL);
    }
  }
  return net;
}

json plugin_input(const NetworkList& net, const json& plugin, const CniPod& pod,
                  const std::optional<json>& prev_result) {
  json in = plugin;
  in["name"] = net.name;
  in["cniVersion"] = net.cni_version;
  in.erase("capabilities");
  if (has_capability(plugin, "portMappings") && !pod.port_mappings.empty()) {
    json pms = json::array();
    for (const auto& pm : pod.port_mappings) {
      json m = {{"hostPort", pm.host_port},
                {"containerPort", pm.container_port},
                {"protocol", protocol_name(pm.protocol)}};
      if (!pm.host_ip.empty()) m["hostIP"] = pm.host_ip;
      pms.push_back(std::move(m));
    }
    // A runtimeConfig of the file that is not an object is replaced (libcni replaces it
    // whole); operator[] would throw on it.
    json& rc = in["runtimeConfig"];
    if (!rc.is_object()) rc = json::object();
    rc["portMappings"] = std::move(pms);
  }
  if (prev_result) in["prevResult"] = *prev_result;
  return in;
}

std::string cni_args(const CniPod& pod) {
  return "IgnoreUnknown=1;K8S_POD_NAMESPACE=" + pod.ns + ";K8S_POD_NAME=" + pod.name +
         ";K8S_POD_INFRA_CONTAINER_ID=" + pod.container_id + ";K8S_POD_UID=" + pod.uid;
}

std::vector<std::string> result_ips(const json& result) {
  std::vector<std::string> out;
  auto ips = result.find("ips");
  if (ips == result.end() || !ips->is_array()) return out;
  for (const auto& ip : *ips) {
    const std::string a = jget::str(ip, "address");
    if (!a.empty()) out.push_back(a.substr(0, a.find('/')));
  }
  return out;
}

Result<std::string> CniNetwork::find_plugin(const std::string& type) const {
  if (type.find('/') != std::string::npos) {
    return Status::Error("CNI: plugin type \"" + type + "\" is not a plain name", EINVAL);
  }
  for (const auto& dir : options_.bin_dirs) {
    std::string p = dir + "/" + type;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  std::string dirs;
  for (const auto& d : options_.bin_dirs) dirs += (dirs.empty() ? "" : ":") + d;
  return Status::Error("CNI: failed to find plugin \"" + type + "\" in path [" + dirs + "]",
                       ENOENT);
}

Status CniNetwork::ready() const {
  auto net = load_network(options_.conf);
  if (!net.ok()) return net.status();
  for (const auto& p : net->plugins) {
    if (auto found = find_plugin(p["type"].get<std::string>()); !found.ok()) return found.status();
  }
  return Status::Ok();
}

Result<json> CniNetwork::exec(const std::string& command, const NetworkList& net,
                              const json& plugin, const CniPod& pod,
                              const std::optional<json>& prev_result) const {
  const std::string type = plugin["type"].get<std::string>();
  auto path = find_plugin(type);
  if (!path.ok()) return path.status();
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    if (std::string_view(*e).starts_with("CNI_")) continue;
    env.emplace_back(*e);
  }
  std::string cni_path;
  for (const auto& d : options_.bin_dirs) cni_path += (cni_path.empty() ? "" : ":") + d;
  env.push_back("CNI_COMMAND=" + command);
  env.push_back("CNI_CONTAINERID=" + pod.container_id);
  env.push_back("CNI_NETNS=" + pod.netns);
  env.push_back("CNI_IFNAME=" + options_.ifname);
  env.push_back("CNI_ARGS=" + cni_args(pod));
  env.push_back("CNI_PATH=" + cni_path);
  const std::string input = jget::dump(plugin_input(net, plugin, pod, prev_result));
  const auto t0 = std::chrono::steady_clock::now();
  auto r = run_process({*path}, env, input, options_.timeout);
  const std::string what = "CNI " + command + " " + type + " (network " + net.name + ")";
  if (!r.ok()) return r.status().Wrap(what);
  KLOGV(4, "CNI plugin ran")
      .kv("command", command)
      .kv("plugin", type)
      .kv("container", pod.container_id.substr(0, 12))
      .kv("exit", r->exit_code)
      .kv("tookMs", std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - t0)
                        .count());
  json out = json::parse(r->out, nullptr, false);
  if (r->exit_code != 0) {
    std::string msg;
    if (!out.is_discarded() && out.is_object()) {
      msg = jget::str(out, "msg");
      const std::string details = jget::str(out, "details");
      if (!details.empty()) msg += ": " + details;
      if (out.contains("code")) msg += " (code " + jget::dump(out["code"]) + ")";
    }
    if (msg.empty()) msg = r->err.empty() ? r->out : r->err;
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    return Status::Error(what + ": exit " + std::to_string(r->exit_code) + ": " + msg, EIO);
  }
  if (command == "DEL") return json::object();
  if (out.is_discarded() || !out.is_object()) {
    return Status::Error(what + ": the plugin printed no JSON result", EIO);
  }
  return out;
}

Result<std::vector<std::string>> CniNetwork::add(const CniPod& pod) const {
  auto net = load_network(options_.conf);
  if (!net.ok()) return net.status();
  std::optional<json> prev;
  for (const auto& plugin : net->plugins) {
    auto r = exec("ADD", *net, plugin, pod, prev);
    if (!r.ok()) return r.status();
    prev = std::move(*r);
  }
  return result_ips(*prev);
}

Status CniNetwork::del(const CniPod& pod) const {
  auto net = load_network(options_.conf);
  if (!net.ok()) return net.status();
  for (auto it = net->plugins.rbegin(); it != net->plugins.rend(); ++it) {
    auto r = exec("DEL", *net, *it, pod, std::nullopt);
    if (!r.ok()) return r.status();
  }
  return Status::Ok();
}

}  // namespace knode::docker
