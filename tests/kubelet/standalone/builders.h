// Pods as the kubelet publishes them (spec plus status) and Services as manifests give
// them, for the EndpointSlice tests.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "knode/api/object.h"
#include "kubelet/pod/decode.h"

namespace knode::kubelet::testing {

class PodBuilder {
 public:
  explicit PodBuilder(const std::string& name, const std::string& ns = "default") {
    pod_.metadata.name = name;
    pod_.metadata.namespace_ = ns;
    pod_.metadata.uid = "uid-" + name;
    pod_.metadata.labels = {{"app", "kubia"}};
    pod_.status.phase = "Running";
    api::Container c;
    c.name = "main";
    pod_.spec.containers.push_back(c);
    ready(true);
  }
  PodBuilder& labels(api::StringMap l) {
    pod_.metadata.labels = std::move(l);
    return *this;
  }
  // Sets status.podIPs (and podIP to the first), as the kubelet reports them.
  PodBuilder& ips(std::vector<std::string> ips) {
    pod_.status.pod_ips.clear();
    for (auto& ip : ips) pod_.status.pod_ips.push_back(api::PodIP{ip});
    pod_.status.pod_ip = ips.empty() ? "" : ips.front();
    return *this;
  }
  PodBuilder& ip(const std::string& ip) { return ips({ip}); }
  PodBuilder& ready(bool r) {
    pod_.status.conditions.clear();
    api::PodCondition c;
    c.type = "Ready";
    c.status = r ? "True" : "False";
    pod_.status.conditions.push_back(c);
    return *this;
  }
  PodBuilder& terminating() {
    pod_.metadata.deletion_timestamp = api::Time::FromUnixNanos(1'700'000'000'000'000'000);
    return *this;
  }
  PodBuilder& phase(const std::string& p) {
    pod_.status.phase = p;
    return *this;
  }
  PodBuilder& node(const std::string& n) {
    pod_.spec.node_name = n;
    return *this;
  }
  PodBuilder& port(const std::string& name, int32_t number, const std::string& protocol = "TCP") {
    api::ContainerPort p;
    p.name = name;
    p.container_port = number;
    p.protocol = protocol;
    pod_.spec.containers.front().ports.push_back(p);
    return *this;
  }
  PodBuilder& sidecar_port(const std::string& name, int32_t number, bool sidecar = true) {
    api::Container c;
    c.name = "init-" + name;
    if (sidecar) c.restart_policy = "Always";
    api::ContainerPort p;
    p.name = name;
    p.container_port = number;
    p.protocol = "TCP";
    c.ports.push_back(p);
    pod_.spec.init_containers.push_back(c);
    return *this;
  }
  PodBuilder& hostname(const std::string& h, const std::string& subdomain) {
    pod_.spec.hostname = h;
    pod_.spec.subdomain = subdomain;
    return *this;
  }
  api::Pod get() const { return pod_; }
  api::ObjectPtr object() const { return std::make_shared<const api::Object>(api::Object(pod_)); }

 private:
  api::Pod pod_;
};

// A Service manifest, decoded and defaulted as knode decodes one.
inline api::Service service(const std::string& yaml) { return decode<api::Service>(yaml); }

// kubia: ClusterIP 10.96.0.10, selector app=kubia, port "http" 80 -> targetPort 8080.
inline api::Service kubia(const std::string& extra_spec = "") {
  return service(
      "apiVersion: v1\nkind: Service\nmetadata: {name: kubia, namespace: default, uid: svc-uid}\n"
      "spec:\n  clusterIP: 10.96.0.10\n  selector: {app: kubia}\n"
      "  ports: [{name: http, port: 80, targetPort: 8080}]\n" +
      extra_spec);
}

inline api::ObjectPtr object_of(api::Object o) {
  return std::make_shared<const api::Object>(std::move(o));
}

}  // namespace knode::kubelet::testing
