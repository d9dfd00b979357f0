// core/v1 Pod: the spec a kubelet runs and the status it reports.
#pragma once

#include "knode/api/meta.h"

namespace knode::api {

using ResourceList = std::map<std::string, Quantity>;

struct ObjectFieldSelector {
  std::string api_version, field_path;
  KNODE_FIELDS(v("apiVersion", api_version); v("fieldPath", field_path))
  bool operator==(const ObjectFieldSelector&) const = default;
};
struct ResourceFieldSelector {
  std::string container_name, resource;
  Quantity divisor;
  KNODE_FIELDS(v("containerName", container_name); v("resource", resource); v("divisor", divisor))
  bool operator==(const ResourceFieldSelector&) const = default;
};
struct KeySelector {  // ConfigMapKeySelector and SecretKeySelector
  std::string name, key;
  std::optional<bool> optional;
  KNODE_FIELDS(v("name", name); v("key", key); v("optional", optional))
  bool operator==(const KeySelector&) const = default;
};
struct EnvVarSource {
  std::optional<ObjectFieldSelector> field_ref;
  std::optional<ResourceFieldSelector> resource_field_ref;
  std::optional<KeySelector> config_map_key_ref, secret_key_ref;
  KNODE_FIELDS(v("fieldRef", field_ref); v("resourceFieldRef", resource_field_ref);
               v("configMapKeyRef", config_map_key_ref); v("secretKeyRef", secret_key_ref))
  bool operator==(const EnvVarSource&) const = default;
};
struct EnvVar {
  std::string name, value;
  std::optional<EnvVarSource> value_from;
  KNODE_FIELDS(v("name", name); v("value", value); v("valueFrom", value_from))
  bool operator==(const EnvVar&) const = default;
};
struct EnvFromRef {  // ConfigMapEnvSource and SecretEnvSource
  std::string name;
  std::optional<bool> optional;
  KNODE_FIELDS(v("name", name); v("optional", optional))
  bool operator==(const EnvFromRef&) const = default;
};
struct EnvFromSource {
  std::string prefix;
  std::optional<EnvFromRef> config_map_ref, secret_ref;
  KNODE_FIELDS(v("prefix", prefix); v("configMapRef", config_map_ref); v("secretRef", secret_ref))
  bool operator==(const EnvFromSource&) const = default;
};

struct ContainerPort {
  std::string name;
  int32_t host_port = 0;
  int32_t container_port = 0;
  std::string protocol;  // defaulted to TCP
  std::string host_ip;
  KNODE_FIELDS(v("name", name); v("hostPort", host_port); v("containerPort", container_port);
               v("protocol", protocol); v("hostIP", host_ip))
  bool operator==(const ContainerPort&) const = default;
};

struct ResourceRequirements {
  ResourceList limits, requests;
  KNODE_FIELDS(v("limits", limits); v("requests", requests))
  bool operator==(const ResourceRequirements&) const = default;
};

struct VolumeMount {
  std::string name, mount_path, sub_path, sub_path_expr, mount_propagation;
  bool read_only = false;
  KNODE_FIELDS(v("name", name); v("readOnly", read_only); v("mountPath", mount_path);
               v("subPath", sub_path); v("subPathExpr", sub_path_expr);
               v("mountPropagation", mount_propagation))
  bool operator==(const VolumeMount&) const = default;
};

struct ExecAction {
  std::vector<std::string> command;
  KNODE_FIELDS(v("command", command))
  bool operator==(const ExecAction&) const = default;
};
struct HTTPHeader {
  std::string name, value;
  KNODE_FIELDS(v("name", name); v("value", value))
  bool operator==(const HTTPHeader&) const = default;
};
struct HTTPGetAction {
  std::string path, host, scheme;  // scheme defaulted to HTTP
  IntOrString port;
  std::vector<HTTPHeader> http_headers;
  KNODE_FIELDS(v("path", path); v("port", port); v("host", host); v("scheme", scheme);
               v("httpHeaders", http_headers))
  bool operator==(const HTTPGetAction&) const = default;
};
struct TCPSocketAction {
  IntOrString port;
  std::string host;
  KNODE_FIELDS(v("port", port); v("host", host))
  bool operator==(const TCPSocketAction&) const = default;
};
struct GRPCAction {
  int32_t port = 0;
  std::optional<std::string> service;
  KNODE_FIELDS(v("port", port); v("service", service))
  bool operator==(const GRPCAction&) const = default;
};
struct SleepAction {
  int64_t seconds = 0;
  KNODE_FIELDS(v("seconds", seconds))
  bool operator==(const SleepAction&) const = default;
};

struct Probe {
  std::optional<ExecAction> exec;
  std::optional<HTTPGetAction> http_get;
  std::optional<TCPSocketAction> tcp_socket;
  std::optional<GRPCAction> grpc;
  // Defaults applied on decode, as the API server does: timeout 1, period 10,
  // success 1, failure 3.
  int32_t initial_delay_seconds = 0;
  int32_t timeout_seconds = 0;
  int32_t period_seconds = 0;
  int32_t success_threshold = 0;
  int32_t failure_threshold = 0;
  std::optional<int64_t> termination_grace_period_seconds;
  KNODE_FIELDS(v("exec", exec); v("httpGet", http_get); v("tcpSocket", tcp_socket);
               v("grpc", grpc); v("initialDelaySeconds", initial_delay_seconds);
               v("timeoutSeconds", timeout_seconds); v("periodSeconds", period_seconds);
               v("successThreshold", success_threshold);
               v("failureThreshold", failure_threshold);
               v("terminationGracePeriodSeconds", termination_grace_period_seconds))
  bool operator==(const Probe&) const = default;
};

struct LifecycleHandler {
  std::optional<ExecAction> exec;
  std::optional<HTTPGetAction> http_get;
  std::optional<TCPSocketAction> tcp_socket;
  std::optional<SleepAction> sleep;
  KNODE_FIELDS(v("exec", exec); v("httpGet", http_get); v("tcpSocket", tcp_socket);
               v("sleep", sleep))
  bool operator==(const LifecycleHandler&) const = default;
};
struct Lifecycle {
  std::optional<LifecycleHandler> post_start, pre_stop;
  KNODE_FIELDS(v("postStart", post_start); v("preStop", pre_stop))
  bool operator==(const Lifecycle&) const = default;
};

struct Capabilities {
  std::vector<std::string> add, drop;
  KNODE_FIELDS(v("add", add); v("drop", drop))
  bool operator==(const Capabilities&) const = default;
};
struct SecurityContext {
  std::optional<bool> privileged, run_as_non_root, read_only_root_filesystem,
      allow_privilege_escalation;
  std::optional<int64_t> run_as_user, run_as_group;
  std::optional<Capabilities> capabilities;
  KNODE_FIELDS(v("privileged", privileged); v("runAsUser", run_as_user);
               v("runAsGroup", run_as_group); v("runAsNonRoot", run_as_non_root);
               v("readOnlyRootFilesystem", read_only_root_filesystem);
               v("allowPrivilegeEscalation", allow_privilege_escalation);
               v("capabilities", capabilities))
  bool operator==(const SecurityContext&) const = default;
};

// How a container takes a change of one resource in an in-place resize: NotRequired
// (its cgroup is changed while it runs, the default) or RestartContainer.
struct ContainerResizePolicy {
  std::string resource_name, restart_policy;
  KNODE_FIELDS(v("resourceName", resource_name); v("restartPolicy", restart_policy))
  bool operator==(const ContainerResizePolicy&) const = default;
};

struct Container {
  std::string name, image, image_pull_policy, working_dir;
  std::vector<std::string> command, args;
  std::vector<ContainerPort> ports;
  std::vector<EnvFromSource> env_from;
  std::vector<EnvVar> env;
  ResourceRequirements resources;
  std::vector<ContainerResizePolicy> resize_policy;
  std::vector<VolumeMount> volume_mounts;
  std::optional<Probe> liveness_probe, readiness_probe, startup_probe;
  std::optional<Lifecycle> lifecycle;
  std::string termination_message_path, termination_message_policy;
  std::optional<SecurityContext> security_context;
  bool stdin_ = false, tty = false;
  // "Always" on an init container makes it a sidecar.
  std::optional<std::string> restart_policy;
  // An ephemeral container (spec.ephemeralContainers, which share this shape): the
  // container whose process namespace it joins, when set.
  std::string target_container_name;
  KNODE_FIELDS(v("name", name); v("image", image); v("command", command); v("args", args);
               v("workingDir", working_dir); v("ports", ports); v("envFrom", env_from);
               v("env", env); v("resources", resources); v("resizePolicy", resize_policy);
               v("volumeMounts", volume_mounts);
               v("livenessProbe", liveness_probe); v("readinessProbe", readiness_probe);
               v("startupProbe", startup_probe); v("lifecycle", lifecycle);
               v("terminationMessagePath", termination_message_path);
               v("terminationMessagePolicy", termination_message_policy);
               v("imagePullPolicy", image_pull_policy);
               v("securityContext", security_context); v("stdin", stdin_); v("tty", tty);
               v("restartPolicy", restart_policy); v("targetContainerName", target_container_name))
  bool operator==(const Container&) const = default;
};

struct KeyToPath {
  std::string key, path;
  std::optional<int32_t> mode;
  KNODE_FIELDS(v("key", key); v("path", path); v("mode", mode))
  bool operator==(const KeyToPath&) const = default;
};
struct HostPathVolumeSource {
  std::string path, type;
  KNODE_FIELDS(v("path", path); v("type", type))
  bool operator==(const HostPathVolumeSource&) const = default;
};
struct EmptyDirVolumeSource {
  std::string medium;
  Quantity size_limit;
  KNODE_FIELDS(v("medium", medium); v("sizeLimit", size_limit))
  bool operator==(const EmptyDirVolumeSource&) const = default;
};
struct ConfigMapVolumeSource {
  std::string name;
  std::vector<KeyToPath> items;
  std::optional<int32_t> default_mode;
  std::optional<bool> optional;
  KNODE_FIELDS(v("name", name); v("items", items); v("defaultMode", default_mode);
               v("optional", optional))
  bool operator==(const ConfigMapVolumeSource&) const = default;
};
struct SecretVolumeSource {
  std::string secret_name;
  std::vector<KeyToPath> items;
  std::optional<int32_t> default_mode;
  std::optional<bool> optional;
  KNODE_FIELDS(v("secretName", secret_name); v("items", items); v("defaultMode", default_mode);
               v("optional", optional))
  bool operator==(const SecretVolumeSource&) const = default;
};
struct PersistentVolumeClaimVolumeSource {
  std::string claim_name;
  bool read_only = false;
  KNODE_FIELDS(v("claimName", claim_name); v("readOnly", read_only))
  bool operator==(const PersistentVolumeClaimVolumeSource&) const = default;
};
struct DownwardAPIVolumeFile {
  std::string path;
  std::optional<ObjectFieldSelector> field_ref;
  std::optional<ResourceFieldSelector> resource_field_ref;
  std::optional<int32_t> mode;
  KNODE_FIELDS(v("path", path); v("fieldRef", field_ref);
               v("resourceFieldRef", resource_field_ref); v("mode", mode))
  bool operator==(const DownwardAPIVolumeFile&) const = default;
};
struct DownwardAPIVolumeSource {
  std::vector<DownwardAPIVolumeFile> items;
  std::optional<int32_t> default_mode;
  KNODE_FIELDS(v("items", items); v("defaultMode", default_mode))
  bool operator==(const DownwardAPIVolumeSource&) const = default;
};
struct ServiceAccountTokenProjection {
  std::string audience, path;
  std::optional<int64_t> expiration_seconds;
  KNODE_FIELDS(v("audience", audience); v("expirationSeconds", expiration_seconds);
               v("path", path))
  bool operator==(const ServiceAccountTokenProjection&) const = default;
};
struct ProjectionItems {  // ConfigMapProjection / SecretProjection
  std::string name;
  std::vector<KeyToPath> items;
  std::optional<bool> optional;
  KNODE_FIELDS(v("name", name); v("items", items); v("optional", optional))
  bool operator==(const ProjectionItems&) const = default;
};
// The PEM certificates of one ClusterTrustBundle (by name), or of all a signer's bundles
// that a label selector picks, as one file (GA in 1.37).
struct ClusterTrustBundleProjection {
  std::optional<std::string> name, signer_name;
  std::optional<LabelSelector> label_selector;
  std::optional<bool> optional;
  std::string path;
  KNODE_FIELDS(v("name", name); v("signerName", signer_name); v("labelSelector", label_selector);
               v("optional", optional); v("path", path))
  bool operator==(const ClusterTrustBundleProjection&) const = default;
};
// A key the kubelet generates and a certificate chain for it that a signer issues through a
// PodCertificateRequest (GA in 1.37), written as one credential bundle (key, then chain)
// and/or as separate key and chain files.
struct PodCertificateProjection {
  std::string signer_name, key_type, credential_bundle_path, key_path, certificate_chain_path;
  std::optional<int32_t> max_expiration_seconds;
  StringMap user_annotations;
  std::optional<int64_t> user;
  KNODE_FIELDS(v("signerName", signer_name); v("keyType", key_type);
               v("maxExpirationSeconds", max_expiration_seconds);
               v("credentialBundlePath", credential_bundle_path); v("keyPath", key_path);
               v("certificateChainPath", certificate_chain_path);
               v("userAnnotations", user_annotations); v("user", user))
  bool operator==(const PodCertificateProjection&) const = default;
};
struct VolumeProjection {
  std::optional<ProjectionItems> config_map, secret;
  std::optional<DownwardAPIVolumeSource> downward_api;
  std::optional<ServiceAccountTokenProjection> service_account_token;
  std::optional<ClusterTrustBundleProjection> cluster_trust_bundle;
  std::optional<PodCertificateProjection> pod_certificate;
  KNODE_FIELDS(v("configMap", config_map); v("secret", secret); v("downwardAPI", downward_api);
               v("serviceAccountToken", service_account_token);
               v("clusterTrustBundle", cluster_trust_bundle); v("podCertificate", pod_certificate))
  bool operator==(const VolumeProjection&) const = default;
};
struct ProjectedVolumeSource {
  std::vector<VolumeProjection> sources;
  std::optional<int32_t> default_mode;
  KNODE_FIELDS(v("sources", sources); v("defaultMode", default_mode))
  bool operator==(const ProjectedVolumeSource&) const = default;
};

// An OCI image (or artifact) mounted read-only as a volume (spec.volumes[].image, GA in
// 1.35): the runtime mounts the image's filesystem; the kubelet pulls it first.
struct ImageVolumeSource {
  std::string reference, pull_policy;
  KNODE_FIELDS(v("reference", reference); v("pullPolicy", pull_policy))
  bool operator==(const ImageVolumeSource&) const = default;
};

struct NFSVolumeSource {
  std::string server, path;
  bool read_only = false;
  KNODE_FIELDS(v("server", server); v("path", path); v("readOnly", read_only))
  bool operator==(const NFSVolumeSource&) const = default;
};

struct Volume {
  std::string name;
  std::optional<HostPathVolumeSource> host_path;
  std::optional<EmptyDirVolumeSource> empty_dir;
  std::optional<ConfigMapVolumeSource> config_map;
  std::optional<SecretVolumeSource> secret;
  std::optional<PersistentVolumeClaimVolumeSource> persistent_volume_claim;
  std::optional<DownwardAPIVolumeSource> downward_api;
  std::optional<ProjectedVolumeSource> projected;
  std::optional<ImageVolumeSource> image;
  std::optional<NFSVolumeSource> nfs;
  KNODE_FIELDS(v("name", name); v("hostPath", host_path); v("emptyDir", empty_dir);
               v("configMap", config_map); v("secret", secret);
               v("persistentVolumeClaim", persistent_volume_claim);
               v("downwardAPI", downward_api); v("projected", projected); v("image", image);
               v("nfs", nfs))
  bool operator==(const Volume&) const = default;
};

struct Toleration {
  std::string key, operator_, value, effect;
  std::optional<int64_t> toleration_seconds;
  KNODE_FIELDS(v("key", key); v("operator", operator_); v("value", value); v("effect", effect);
               v("tolerationSeconds", toleration_seconds))
  bool operator==(const Toleration&) const = default;
};
struct HostAlias {
  std::string ip;
  std::vector<std::string> hostnames;
  KNODE_FIELDS(v("ip", ip); v("hostnames", hostnames))
  bool operator==(const HostAlias&) const = default;
};
struct PodDNSConfigOption {
  std::string name;
  std::optional<std::string> value;
  KNODE_FIELDS(v("name", name); v("value", value))
  bool operator==(const PodDNSConfigOption&) const = default;
};
struct PodDNSConfig {
  std::vector<std::string> nameservers, searches;
  std::vector<PodDNSConfigOption> options;
  KNODE_FIELDS(v("nameservers", nameservers); v("searches", searches); v("options", options))
  bool operator==(const PodDNSConfig&) const = default;
};
struct Sysctl {
  std::string name, value;
  KNODE_FIELDS(v("name", name); v("value", value))
  bool operator==(const Sysctl&) const = default;
};
struct PodSecurityContext {
  std::optional<int64_t> run_as_user, run_as_group, fs_group;
  std::optional<bool> run_as_non_root;
  std::vector<int64_t> supplemental_groups;
  std::vector<Sysctl> sysctls;
  KNODE_FIELDS(v("runAsUser", run_as_user); v("runAsGroup", run_as_group);
               v("runAsNonRoot", run_as_non_root); v("fsGroup", fs_group);
               v("supplementalGroups", supplemental_groups); v("sysctls", sysctls))
  bool operator==(const PodSecurityContext&) const = default;
};

struct PodSpec {
  std::vector<Volume> volumes;
  std::vector<Container> init_containers, containers;
  // Added to a running pod through the ephemeralcontainers subresource; run once, never
  // restarted, no ports or probes (kubectl debug).
  std::vector<Container> ephemeral_containers;
  std::string restart_policy;  // defaulted to Always
  std::optional<int64_t> termination_grace_period_seconds;  // defaulted to 30
  std::optional<int64_t> active_deadline_seconds;
  std::string dns_policy;  // defaulted to ClusterFirst
  StringMap node_selector;
  std::string service_account_name, service_account, node_name, hostname, subdomain;
  std::optional<bool> automount_service_account_token, enable_service_links,
      share_process_namespace;
  bool host_network = false, host_pid = false, host_ipc = false;
  std::optional<PodSecurityContext> security_context;
  std::vector<LocalObjectReference> image_pull_secrets;
  std::vector<Toleration> tolerations;
  std::vector<HostAlias> host_aliases;
  std::optional<PodDNSConfig> dns_config;
  std::string priority_class_name, scheduler_name, runtime_class_name;
  std::optional<int32_t> priority;
  KNODE_FIELDS(v("volumes", volumes); v("initContainers", init_containers);
               v("containers", containers); v("ephemeralContainers", ephemeral_containers);
               v("restartPolicy", restart_policy);
               v("terminationGracePeriodSeconds", termination_grace_period_seconds);
               v("activeDeadlineSeconds", active_deadline_seconds);
               v("dnsPolicy", dns_policy); v("nodeSelector", node_selector);
               v("serviceAccountName", service_account_name);
               v("serviceAccount", service_account);
               v("automountServiceAccountToken", automount_service_account_token);
               v("nodeName", node_name); v("hostNetwork", host_network);
               v("hostPID", host_pid); v("hostIPC", host_ipc);
               v("shareProcessNamespace", share_process_namespace);
               v("securityContext", security_context);
               v("imagePullSecrets", image_pull_secrets); v("hostname", hostname);
               v("subdomain", subdomain); v("tolerations", tolerations);
               v("hostAliases", host_aliases); v("dnsConfig", dns_config);
               v("enableServiceLinks", enable_service_links);
               v("priorityClassName", priority_class_name); v("priority", priority);
               v("schedulerName", scheduler_name); v("runtimeClassName", runtime_class_name))
  bool operator==(const PodSpec&) const = default;
};

struct PodCondition {
  std::string type, status, reason, message;
  Time last_probe_time, last_transition_time;
  int64_t observed_generation = 0;  // the pod's metadata.generation the kubelet acted on
  KNODE_FIELDS(v("type", type); v("status", status); v("observedGeneration", observed_generation);
               v("lastProbeTime", last_probe_time);
               v("lastTransitionTime", last_transition_time); v("reason", reason);
               v("message", message))
  bool operator==(const PodCondition&) const = default;
};
struct ContainerStateWaiting {
  std::string reason, message;
  KNODE_FIELDS(v("reason", reason); v("message", message))
  bool operator==(const ContainerStateWaiting&) const = default;
};
struct ContainerStateRunning {
  Time started_at;
  KNODE_FIELDS(v("startedAt", started_at))
  bool operator==(const ContainerStateRunning&) const = default;
};
struct ContainerStateTerminated {
  int32_t exit_code = 0, signal = 0;
  std::string reason, message, container_id;
  Time started_at, finished_at;
  KNODE_FIELDS(v("exitCode", exit_code, kAlways); v("signal", signal); v("reason", reason);
               v("message", message); v("startedAt", started_at);
               v("finishedAt", finished_at); v("containerID", container_id))
  bool operator==(const ContainerStateTerminated&) const = default;
};
struct ContainerState {
  std::optional<ContainerStateWaiting> waiting;
  std::optional<ContainerStateRunning> running;
  std::optional<ContainerStateTerminated> terminated;
  KNODE_FIELDS(v("waiting", waiting); v("running", running); v("terminated", terminated))
  bool operator==(const ContainerState&) const = default;
};
struct ContainerStatus {
  std::string name, image, image_id, container_id;
  ContainerState state, last_state;
  bool ready = false;
  int32_t restart_count = 0;
  std::optional<bool> started;
  // In-place resize: the requests the node allocated to the container, and the requests
  // and limits its cgroup has now.
  ResourceList allocated_resources;
  std::optional<ResourceRequirements> resources;
  KNODE_FIELDS(v("name", name); v("state", state); v("lastState", last_state);
               v("ready", ready, kAlways); v("restartCount", restart_count, kAlways); v("image", image);
               v("imageID", image_id); v("containerID", container_id); v("started", started);
               v("allocatedResources", allocated_resources); v("resources", resources))
  bool operator==(const ContainerStatus&) const = default;
};
struct PodIP {
  std::string ip;
  KNODE_FIELDS(v("ip", ip))
  bool operator==(const PodIP&) const = default;
};
struct PodStatus {
  std::string phase, message, reason, host_ip, pod_ip, qos_class;
  std::vector<PodCondition> conditions;
  std::vector<PodIP> host_ips, pod_ips;
  Time start_time;
  std::vector<ContainerStatus> init_container_statuses, container_statuses, ephemeral_container_statuses;
  // The metadata.generation (spec version) this status reflects; the kubelet sets it.
  int64_t observed_generation = 0;
  KNODE_FIELDS(v("observedGeneration", observed_generation); v("phase", phase);
               v("conditions", conditions); v("message", message);
               v("reason", reason); v("hostIP", host_ip); v("hostIPs", host_ips);
               v("podIP", pod_ip); v("podIPs", pod_ips); v("startTime", start_time);
               v("initContainerStatuses", init_container_statuses);
               v("containerStatuses", container_statuses); v("qosClass", qos_class);
               v("ephemeralContainerStatuses", ephemeral_container_statuses))
  bool operator==(const PodStatus&) const = default;
};

struct Pod {
  static constexpr const char* kKind = "Pod";
  static constexpr const char* kApiVersion = "v1";
  static constexpr bool kNamespaced = true;
  ObjectMeta metadata;
  PodSpec spec;
  PodStatus status;
  KNODE_FIELDS(v("metadata", metadata); v("spec", spec); v("status", status))
  bool operator==(const Pod&) const = default;
};

}  // namespace knode::api
