// A pod's network for the Docker backend, as dockershim made it: dockerd creates the
// pause container with network mode "none", and the backend runs the node's CNI plugins
// on that container's network namespace (/proc/<pid>/ns/net): ADD once it runs, DEL when
// the sandbox stops. The conflist is the one containerd would read (knode writes
// 10-knode.conflist for knode-cni); plugins are found in the bin dirs, chained with
// prevResult on ADD and run in reverse on DEL, as libcni does.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "knode/runtime.h"
#include "knode/status.h"

namespace knode::docker {

struct CniOptions {
  // A network configuration (.conflist, or a single plugin's .conf/.json), or a directory:
  // then its first such file by name, as libcni picks.
  std::string conf = "/etc/cni/net.d";
  std::vector<std::string> bin_dirs = {"/opt/cni/bin"};
  std::string ifname = "eth0";
  std::chrono::milliseconds timeout = std::chrono::seconds(60);  // per plugin run
};

// What a plugin is told about the pod (CNI_* variables, CNI_ARGS, runtimeConfig).
struct CniPod {
  std::string container_id;  // the pause container's
  std::string netns;         // may be empty on DEL: the pause container is gone
  std::string name, ns, uid;
  std::vector<runtime::PortMapping> port_mappings;
};

struct NetworkList {
  std::string path;  // the file it came from
  std::string name;
  std::string cni_version;
  std::vector<nlohmann::json> plugins;
};

// The network configuration `conf` names (see CniOptions::conf). ENOENT when there is
// none, EINVAL when it does not parse or lacks a name or plugins.
Result<NetworkList> load_network(const std::string& conf);

// The configuration one plugin reads on stdin: its own object with the list's name and
// version, runtimeConfig for the capabilities it declares, and prevResult when chained.
nlohmann::json plugin_input(const NetworkList& net, const nlohmann::json& plugin, const CniPod& pod,
                            const std::optional<nlohmann::json>& prev_result);
// "IgnoreUnknown=1;K8S_POD_NAMESPACE=...;K8S_POD_NAME=...;K8S_POD_INFRA_CONTAINER_ID=...;K8S_POD_UID=..."
std::string cni_args(const CniPod& pod);
// The addresses of a result ("ips": [{"address": "10.88.0.5/24"}] -> "10.88.0.5").
std::vector<std::string> result_ips(const nlohmann::json& result);

class CniNetwork {
 public:
  explicit CniNetwork(CniOptions options) : options_(std::move(options)) {}

  // OK when the configuration loads and every plugin it names is in a bin dir.
  Status ready() const;
  // ADD through the chain; the pod's addresses, primary first.
  Result<std::vector<std::string>> add(const CniPod& pod) const;
  // DEL through the chain in reverse. Plugins succeed when there is nothing to remove.
  Status del(const CniPod& pod) const;

  const CniOptions& options() const { return options_; }

 private:
  Result<std::string> find_plugin(const std::string& type) const;
  Result<nlohmann::json> exec(const std::string& command, const NetworkList& net,
                              const nlohmann::json& plugin, const CniPod& pod,
                              const std::optional<nlohmann::json>& prev_result) const;

  CniOptions options_;
};

}  // namespace knode::docker
