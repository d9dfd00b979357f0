// The Docker backend's JSON mapping, both ways (kubelet/docker/convert.h).
#include "docker/convert.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

#include "labels.h"

namespace knode::docker {
namespace {

namespace rt = knode::runtime;

rt::PodSandboxConfig pod_config() {
  rt::PodSandboxConfig c;
  c.metadata = {"web", "uid-1", "default", 2};
  c.hostname = "web";
  c.log_directory = "/var/log/pods/default_web_uid-1";
  c.dns = {{"10.96.0.10"}, {"default.svc.cluster.local", "svc.cluster.local"}, {"ndots:5"}};
  c.port_mappings = {{rt::Protocol::kTCP, 8080, 30080, ""},
                     {rt::Protocol::kUDP, 53, 5353, "10.0.0.1"}};
  c.labels = {{kubelet::kPodUidLabel, "uid-1"},
              {kubelet::kPodNameLabel, "web"},
              {kubelet::kPodNamespaceLabel, "default"},
              {"app", "web"}};
  c.annotations = {{"note", "hello"}};
  c.cgroup_parent = "/kubepods/besteffort/poduid-1";
  c.sysctls = {{"net.ipv4.ip_unprivileged_port_start", "0"}};
  c.seccomp = rt::SecurityProfile{rt::SecurityProfile::Type::kUnconfined, ""};
  return c;
}

rt::ContainerConfig container_config() {
  rt::ContainerConfig c;
  c.metadata = {"app", 3};
  c.image.image = "127.0.0.1:5000/kubia:1";
  c.command = {"/kubia"};
  c.args = {"--port", "8080"};
  c.working_dir = "/srv";
  c.envs = {{"A", "1"}, {"B", "x=y"}};
  c.mounts = {{"/dev/termination-log", "/var/lib/kubelet/pods/uid-1/containers/app/abc", false,
               false, rt::MountPropagation::kPrivate},
              {"/data", "/var/lib/kubelet/pods/uid-1/volumes/v", true, true,
               rt::MountPropagation::kHostToContainer}};
  c.labels = {{kubelet::kPodUidLabel, "uid-1"}, {kubelet::kContainerNameLabel, "app"}};
  c.annotations = {{kubelet::kRestartCountAnnotation, "3"}};
  c.log_path = "app/3.log";
  c.resources.cpu_shares = 512;
  c.resources.cpu_quota = 50000;
  c.resources.cpu_period = 100000;
  c.resources.memory_limit_in_bytes = 64 << 20;
  c.resources.memory_swap_limit_in_bytes = 64 << 20;
  c.resources.oom_score_adj = -997;
  c.security.run_as_user = 1000;
  c.security.run_as_group = 2000;
  c.security.supplemental_groups = {3000};
  c.security.add_capabilities = {"NET_ADMIN"};
  c.security.drop_capabilities = {"ALL"};
  c.security.readonly_rootfs = true;
  c.security.no_new_privs = true;
  c.security.masked_paths = {"/proc/kcore"};
  c.security.readonly_paths = {"/proc/sys"};
  c.security.seccomp = rt::SecurityProfile{rt::SecurityProfile::Type::kUnconfined, ""};
  return c;
}

TEST(DockerApiVersion, NegotiatesTheLowerOfBothEnds) {
  EXPECT_EQ(*negotiate_api_version({{"ApiVersion", "1.41"}, {"MinAPIVersion", "1.12"}}), "1.41");
  EXPECT_EQ(*negotiate_api_version({{"ApiVersion", "1.45"}, {"MinAPIVersion", "1.24"}}), "1.45");
  // Newer than this client knows: it speaks its own newest, which the daemon accepts.
  EXPECT_EQ(*negotiate_api_version({{"ApiVersion", "1.52"}, {"MinAPIVersion", "1.44"}}),
            kMaxApiVersion);
  EXPECT_EQ(compare_api_versions("1.9", "1.41"), -1);
  EXPECT_EQ(compare_api_versions("1.41", "1.41"), 0);
  EXPECT_EQ(compare_api_versions("2.0", "1.99"), 1);
}

TEST(DockerApiVersion, RefusesDaemonsItCannotSpeakTo) {
  auto old = negotiate_api_version({{"ApiVersion", "1.40"}, {"MinAPIVersion", "1.12"}});
  ASSERT_FALSE(old.ok());
  EXPECT_EQ(old.status().error_number(), ENOTSUP);
  EXPECT_NE(old.error().find("1.40"), std::string::npos) << old.error();
  auto future = negotiate_api_version({{"ApiVersion", "1.60"}, {"MinAPIVersion", "1.50"}});
  ASSERT_FALSE(future.ok());
  EXPECT_EQ(future.status().error_number(), ENOTSUP);
  EXPECT_FALSE(negotiate_api_version(json::object()).ok());
}

TEST(DockerNames, AreDockershimsAndParseBack) {
  rt::PodSandboxMetadata pod{"web", "uid-1", "default", 2};
  EXPECT_EQ(sandbox_name(pod), "k8s_POD_web_default_uid-1_2");
  EXPECT_EQ(container_name({"app", 3}, pod), "k8s_app_web_default_uid-1_3");
  auto s = parse_name("/k8s_POD_web_default_uid-1_2");
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->sandbox);
  EXPECT_EQ(s->pod, pod);
  auto c = parse_name("k8s_app_web_default_uid-1_3_1a2b3c4d");  // with a conflict suffix
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->sandbox);
  EXPECT_EQ(c->container, "app");
  EXPECT_EQ(c->attempt, 3u);
  EXPECT_EQ(c->pod.name, "web");
  EXPECT_EQ(c->pod.ns, "default");
  EXPECT_EQ(c->pod.uid, "uid-1");
  EXPECT_FALSE(parse_name("/nginx"));
  EXPECT_FALSE(parse_name("k8s_app_web_default_uid-1_x"));
  EXPECT_FALSE(parse_name("other_app_web_default_uid-1_3"));
}

TEST(DockerLabels, CarryAnnotationsAndInternalKeysAndSplitBack) {
  auto labels = docker_labels({{"app", "web"}}, {{"note", "hi"}}, {{kTypeLabel, kTypeSandbox}});
  EXPECT_EQ(labels, (std::map<std::string, std::string>{
                        {"app", "web"}, {"annotation.note", "hi"}, {kTypeLabel, kTypeSandbox}}));
  rt::Labels l, a;
  split_labels(json(labels), &l, &a);
  EXPECT_EQ(l, (rt::Labels{{"app", "web"}}));
  EXPECT_EQ(a, (rt::Labels{{"note", "hi"}}));
}

TEST(DockerLabels, OwnedOnlyWithTypeAndPodUid) {
  EXPECT_TRUE(owned({{kTypeLabel, "container"}, {kubelet::kPodUidLabel, "u"}}));
  EXPECT_TRUE(owned({{kTypeLabel, "podsandbox"}, {kubelet::kPodUidLabel, "u"}}));
  EXPECT_FALSE(owned({{kubelet::kPodUidLabel, "u"}}));
  EXPECT_FALSE(owned({{kTypeLabel, "container"}}));
  EXPECT_FALSE(owned({{kTypeLabel, "volume"}, {kubelet::kPodUidLabel, "u"}}));
  EXPECT_FALSE(owned(nullptr));
}

TEST(DockerSandboxCreate, IsAPauseContainerWithoutNetwork) {
  json b = sandbox_create_body(pod_config(), {"pause:3.10", std::nullopt, {{"max-size", "10m"}}});
  EXPECT_EQ(b["Image"], "pause:3.10");
  EXPECT_EQ(b["Hostname"], "web");
  const json& hc = b["HostConfig"];
  EXPECT_EQ(hc["NetworkMode"], "none");
  EXPECT_EQ(hc["IpcMode"], "shareable");
  EXPECT_FALSE(hc.contains("PidMode"));
  EXPECT_EQ(hc["CgroupParent"], "/kubepods/besteffort/poduid-1");
  EXPECT_EQ(hc["Sysctls"]["net.ipv4.ip_unprivileged_port_start"], "0");
  EXPECT_EQ(hc["Dns"], json({"10.96.0.10"}));
  EXPECT_EQ(hc["DnsSearch"], json({"default.svc.cluster.local", "svc.cluster.local"}));
  EXPECT_EQ(hc["DnsOptions"], json({"ndots:5"}));
  EXPECT_EQ(hc["OomScoreAdj"], -998);
  EXPECT_EQ(hc["SecurityOpt"], json({"seccomp=unconfined"}));
  EXPECT_EQ(hc["LogConfig"], json({{"Type", "json-file"}, {"Config", {{"max-size", "10m"}}}}));
  EXPECT_EQ(hc["RestartPolicy"]["Name"], "no");
  const json& labels = b["Labels"];
  EXPECT_EQ(labels[kTypeLabel], "podsandbox");
  EXPECT_EQ(labels["app"], "web");
  EXPECT_EQ(labels["annotation.note"], "hello");
  json pms = json::parse(labels[kPortMappingsLabel].get<std::string>());
  ASSERT_EQ(pms.size(), 2u);
  EXPECT_EQ(pms[1], json({{"protocol", "UDP"},
                          {"containerPort", 53},
                          {"hostPort", 5353},
                          {"hostIP", "10.0.0.1"}}));
}

TEST(DockerSandboxCreate, HostNetworkAndRestrictedOomScore) {
  auto c = pod_config();
  c.hostname.clear();
  c.namespaces = {rt::NamespaceMode::kNode, rt::NamespaceMode::kNode, rt::NamespaceMode::kNode, ""};
  json b = sandbox_create_body(c, {"pause", int64_t{0}, {}});
  const json& hc = b["HostConfig"];
  EXPECT_EQ(hc["NetworkMode"], "host");
  EXPECT_EQ(hc["UTSMode"], "host");
  EXPECT_EQ(hc["IpcMode"], "host");
  EXPECT_EQ(hc["PidMode"], "host");
  EXPECT_FALSE(hc.contains("Dns"));  // the node's resolv.conf
  EXPECT_FALSE(b.contains("Hostname"));
  EXPECT_EQ(hc["OomScoreAdj"], 0);  // raised to the floor
}

TEST(DockerContainerCreate, JoinsThePauseContainersNamespaces) {
  auto body = container_create_body(
      container_config(), pod_config(),
      {"pause-id", "/var/log/pods/default_web_uid-1/app/3.log", "", std::nullopt, {}});
  ASSERT_TRUE(body.ok()) << body.error();
  const json& hc = (*body)["HostConfig"];
  EXPECT_EQ(hc["NetworkMode"], "container:pause-id");
  EXPECT_EQ(hc["IpcMode"], "container:pause-id");
  EXPECT_FALSE(hc.contains("PidMode"));  // its own PID namespace
  EXPECT_FALSE(hc.contains("UTSMode"));
  EXPECT_EQ(hc["CgroupParent"], "/kubepods/besteffort/poduid-1");

  auto shared = container_config();
  shared.security.namespaces.pid = rt::NamespaceMode::kPod;  // shareProcessNamespace
  EXPECT_EQ(
      (*container_create_body(shared, pod_config(),
                              {"pause-id", "", "", std::nullopt, {}}))["HostConfig"]["PidMode"],
      "container:pause-id");
  auto host = container_config();
  host.security.namespaces = {rt::NamespaceMode::kNode, rt::NamespaceMode::kNode,
                              rt::NamespaceMode::kNode, ""};
  const json hhc = (*container_create_body(host, pod_config(),
                                           {"pause-id", "", "", std::nullopt, {}}))["HostConfig"];
  EXPECT_EQ(hhc["NetworkMode"], "host");
  EXPECT_EQ(hhc["PidMode"], "host");
  EXPECT_EQ(hhc["IpcMode"], "host");
}

TEST(DockerContainerCreate, MapsCommandEnvMountsResourcesAndSecurity) {
  auto body = container_create_body(
      container_config(), pod_config(),
      {"pause-id", "/var/log/pods/default_web_uid-1/app/3.log", "", std::nullopt, {}});
  ASSERT_TRUE(body.ok()) << body.error();
  const json& b = *body;
  EXPECT_EQ(b["Image"], "127.0.0.1:5000/kubia:1");
  EXPECT_EQ(b["Entrypoint"], json({"/kubia"}));
  EXPECT_EQ(b["Cmd"], json({"--port", "8080"}));
  EXPECT_EQ(b["WorkingDir"], "/srv");
  EXPECT_EQ(b["Env"], json({"A=1", "B=x=y"}));
  EXPECT_EQ(b["User"], "1000:2000");
  EXPECT_EQ(b["Labels"][kTypeLabel], "container");
  EXPECT_EQ(b["Labels"][kSandboxIdLabel], "pause-id");
  EXPECT_EQ(b["Labels"][kLogPathLabel], "/var/log/pods/default_web_uid-1/app/3.log");
  EXPECT_EQ(b["Labels"]["annotation.io.kubernetes.container.restartCount"], "3");
  const json& hc = b["HostConfig"];
  EXPECT_EQ(hc["Binds"],
            json({"/var/lib/kubelet/pods/uid-1/containers/app/abc:/dev/termination-log",
                  "/var/lib/kubelet/pods/uid-1/volumes/v:/data:ro,Z,rslave"}));
  EXPECT_EQ(hc["CpuShares"], 512);
  EXPECT_EQ(hc["CpuQuota"], 50000);
  EXPECT_EQ(hc["CpuPeriod"], 100000);
  EXPECT_EQ(hc["Memory"], 64 << 20);
  EXPECT_EQ(hc["MemorySwap"], 64 << 20);
  EXPECT_EQ(hc["OomScoreAdj"], -997);
  EXPECT_EQ(hc["CapAdd"], json({"NET_ADMIN"}));
  EXPECT_EQ(hc["CapDrop"], json({"ALL"}));
  EXPECT_EQ(hc["ReadonlyRootfs"], true);
  EXPECT_EQ(hc["GroupAdd"], json({"3000"}));
  EXPECT_EQ(hc["SecurityOpt"], json({"no-new-privileges", "seccomp=unconfined"}));
  EXPECT_EQ(hc["MaskedPaths"], json({"/proc/kcore"}));
  EXPECT_EQ(hc["ReadonlyPaths"], json({"/proc/sys"}));
}

TEST(DockerContainerCreate, KeepsTheImagesEntrypointAndCmdWhenUnset) {
  auto c = container_config();
  c.command.clear();
  c.args.clear();
  c.security = {};
  c.resources = {};
  auto body = container_create_body(c, pod_config(), {"p", "", "", int64_t{0}, {}});
  ASSERT_TRUE(body.ok());
  EXPECT_FALSE(body->contains("Entrypoint"));
  EXPECT_FALSE(body->contains("Cmd"));
  EXPECT_FALSE(body->contains("User"));
  EXPECT_FALSE((*body)["HostConfig"].contains("OomScoreAdj"));
  EXPECT_FALSE((*body)["HostConfig"].contains("Memory"));
  EXPECT_FALSE((*body)["Labels"].contains(kLogPathLabel));
}

TEST(DockerContainerCreate, RestrictsOomScoreAndRefusesColonsInMounts) {
  auto c = container_config();
  auto body = container_create_body(c, pod_config(), {"p", "", "", int64_t{0}, {}});
  EXPECT_EQ((*body)["HostConfig"].value("OomScoreAdj", 0), 0);
  c.mounts = {{"/a:b", "/host", false, false, rt::MountPropagation::kPrivate}};
  auto bad = container_create_body(c, pod_config(), {"p", "", "", std::nullopt, {}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().error_number(), EINVAL);
}

// A resize's POST /containers/{id}/update: the new shares, quota (-1 removes it), period
// and memory, swap equal to memory when none is given.
TEST(DockerContainerUpdate, ResizeBodyCarriesTheNewLimits) {
  rt::LinuxResources r;
  r.cpu_shares = 512;
  r.cpu_quota = 50000;
  r.cpu_period = 100000;
  r.memory_limit_in_bytes = 128LL << 20;
  json body = update_resources_body(r);
  EXPECT_EQ(body["CpuShares"], 512);
  EXPECT_EQ(body["CpuQuota"], 50000);
  EXPECT_EQ(body["CpuPeriod"], 100000);
  EXPECT_EQ(body["Memory"], 128LL << 20);
  EXPECT_EQ(body["MemorySwap"], 128LL << 20);
  r.cpu_quota = 0;
  r.memory_limit_in_bytes = 0;
  body = update_resources_body(r);
  EXPECT_EQ(body["CpuQuota"], -1);
  EXPECT_FALSE(body.contains("Memory"));
}

// Image volumes need the Engine's image mounts (API 1.48), beyond what this client speaks:
// a clear refusal naming the image, never a bind of an empty host path.
TEST(DockerContainerCreate, RefusesImageVolumeMounts) {
  auto c = container_config();
  c.mounts = {rt::Mount{.container_path = "/volume", .readonly = true, .image = {"sha256:kitten", {}}}};
  auto bad = container_create_body(c, pod_config(), {"p", "", "", std::nullopt, {}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().error_number(), ENOTSUP);
  EXPECT_NE(bad.status().message().find("sha256:kitten"), std::string::npos) << bad.status().message();
}

TEST(DockerContainerCreate, LocalhostSeccompProfileIsPassedAsJson) {
  auto c = container_config();
  c.security.seccomp = rt::SecurityProfile{rt::SecurityProfile::Type::kLocalhost, "/p.json"};
  auto body = container_create_body(
      c, pod_config(), {"p", "", R"({"defaultAction":"SCMP_ACT_ALLOW"})", std::nullopt, {}});
  ASSERT_TRUE(body.ok());
  EXPECT_EQ((*body)["HostConfig"]["SecurityOpt"][1],
            R"(seccomp={"defaultAction":"SCMP_ACT_ALLOW"})");
  EXPECT_FALSE(container_create_body(c, pod_config(), {"p", "", "", std::nullopt, {}}).ok());
}

json list_item(const std::string& name, const std::string& state) {
  return {{"Id", "abc123"},
          {"Names", {"/" + name}},
          {"Image", "127.0.0.1:5000/kubia:1"},
          {"ImageID", "sha256:feed"},
          {"State", state},
          {"Created", 1796119200},
          {"Labels",
           {{kTypeLabel, "container"},
            {kSandboxIdLabel, "pause-id"},
            {kubelet::kPodUidLabel, "uid-1"},
            {"annotation.x", "y"},
            {kLogPathLabel, "/l"}}}};
}

TEST(DockerList, ReadsSandboxesAndContainers) {
  auto c = container_from_list(list_item("k8s_app_web_default_uid-1_3", "running"));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->id, "abc123");
  EXPECT_EQ(c->pod_sandbox_id, "pause-id");
  EXPECT_EQ(c->metadata, (rt::ContainerMetadata{"app", 3}));
  EXPECT_EQ(c->state, rt::ContainerState::kRunning);
  EXPECT_EQ(c->image.image, "127.0.0.1:5000/kubia:1");
  EXPECT_EQ(c->image_ref, "sha256:feed");
  EXPECT_EQ(c->created_at, 1796119200LL * 1000000000);
  EXPECT_EQ(c->labels, (rt::Labels{{kubelet::kPodUidLabel, "uid-1"}}));
  EXPECT_EQ(c->annotations, (rt::Labels{{"x", "y"}}));
  EXPECT_FALSE(sandbox_from_list(list_item("k8s_app_web_default_uid-1_3", "running")));

  auto s = sandbox_from_list(list_item("k8s_POD_web_default_uid-1_2", "exited"));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->metadata, (rt::PodSandboxMetadata{"web", "uid-1", "default", 2}));
  EXPECT_EQ(s->state, rt::SandboxState::kNotReady);
  EXPECT_EQ(sandbox_from_list(list_item("k8s_POD_web_default_uid-1_2", "running"))->state,
            rt::SandboxState::kReady);
  EXPECT_FALSE(container_from_list(list_item("k8s_POD_web_default_uid-1_2", "running")));
  EXPECT_FALSE(container_from_list(list_item("my-nginx", "running")));
}

TEST(DockerList, States) {
  EXPECT_EQ(state_from_list("created"), rt::ContainerState::kCreated);
  EXPECT_EQ(state_from_list("running"), rt::ContainerState::kRunning);
  EXPECT_EQ(state_from_list("paused"), rt::ContainerState::kRunning);
  EXPECT_EQ(state_from_list("restarting"), rt::ContainerState::kRunning);
  EXPECT_EQ(state_from_list("exited"), rt::ContainerState::kExited);
  EXPECT_EQ(state_from_list("dead"), rt::ContainerState::kExited);
  EXPECT_EQ(state_from_list("removing"), rt::ContainerState::kUnknown);
}

json inspect(const json& state) {
  return {{"Id", "abc123"},
          {"Name", "/k8s_app_web_default_uid-1_3"},
          {"Created", "2026-12-01T10:00:00.5Z"},
          {"Image", "sha256:feed"},
          {"Config", {{"Image", "sha256:feed"}, {"Labels", list_item("", "")["Labels"]}}},
          {"Mounts",
           {{{"Type", "bind"},
             {"Source", "/h"},
             {"Destination", "/c"},
             {"Mode", "ro,Z"},
             {"RW", false},
             {"Propagation", "rslave"}},
            {{"Type", "volume"}, {"Source", "/v"}, {"Destination", "/anon"}, {"RW", true}}}},
          {"State", state}};
}

json state(const std::string& status, int code, const std::string& finished, bool oom = false,
           const std::string& error = "") {
  return {{"Status", status},      {"Running", status == "running"},
          {"ExitCode", code},      {"OOMKilled", oom},
          {"Error", error},        {"StartedAt", "2026-12-01T10:00:01Z"},
          {"FinishedAt", finished}};
}

TEST(DockerContainerStatus, RunningCarriesStartAndMounts) {
  json image = {{"Id", "sha256:feed"},
                {"RepoTags", {"127.0.0.1:5000/kubia:1"}},
                {"RepoDigests", {"127.0.0.1:5000/kubia@sha256:291722"}}};
  auto s =
      container_status_from_inspect(inspect(state("running", 0, "0001-01-01T00:00:00Z")), image);
  ASSERT_TRUE(s.ok()) << s.error();
  EXPECT_EQ(s->state, rt::ContainerState::kRunning);
  EXPECT_EQ(s->metadata, (rt::ContainerMetadata{"app", 3}));
  EXPECT_EQ(s->created_at, 1796119200500000000);
  EXPECT_EQ(s->started_at, 1796119201000000000);
  EXPECT_EQ(s->finished_at, 0);
  EXPECT_EQ(s->reason, "");
  EXPECT_EQ(s->image.image, "127.0.0.1:5000/kubia:1");  // the tag, not the ID it was created from
  EXPECT_EQ(s->image_ref, "127.0.0.1:5000/kubia@sha256:291722");
  EXPECT_EQ(s->log_path, "/l");
  EXPECT_EQ(s->labels, (rt::Labels{{kubelet::kPodUidLabel, "uid-1"}}));
  ASSERT_EQ(s->mounts.size(), 1u);  // binds only
  EXPECT_EQ(s->mounts[0],
            (rt::Mount{"/c", "/h", true, true, rt::MountPropagation::kHostToContainer}));
  // Without the image: the ID.
  EXPECT_EQ(container_status_from_inspect(inspect(state("running", 0, "")), nullptr)->image_ref,
            "sha256:feed");
}

TEST(DockerContainerStatus, ExitReasonsAreCris) {
  const std::string done = "2026-12-01T10:00:07.25Z";
  auto completed = *container_status_from_inspect(inspect(state("exited", 0, done)), nullptr);
  EXPECT_EQ(completed.state, rt::ContainerState::kExited);
  EXPECT_EQ(completed.reason, "Completed");
  EXPECT_EQ(completed.finished_at, 1796119207250000000);
  auto error = *container_status_from_inspect(inspect(state("exited", 2, done)), nullptr);
  EXPECT_EQ(error.reason, "Error");
  EXPECT_EQ(error.exit_code, 2);
  // OOMKilled wins, even over a zero exit code.
  EXPECT_EQ(
      container_status_from_inspect(inspect(state("exited", 137, done, true)), nullptr)->reason,
      "OOMKilled");
  EXPECT_EQ(container_status_from_inspect(inspect(state("exited", 0, done, true)), nullptr)->reason,
            "OOMKilled");
  // Never ran: dockerd could not start it.
  auto start_error =
      *container_status_from_inspect(inspect(state("created", 127, "0001-01-01T00:00:00Z", false,
                                                   "exec: \"/missing\": no such file")),
                                     nullptr);
  EXPECT_EQ(start_error.state, rt::ContainerState::kExited);
  EXPECT_EQ(start_error.reason, "StartError");
  EXPECT_EQ(start_error.exit_code, 127);
  EXPECT_EQ(start_error.message, "exec: \"/missing\": no such file");
  EXPECT_EQ(start_error.finished_at, start_error.created_at);
  auto created =
      *container_status_from_inspect(inspect(state("created", 0, "0001-01-01T00:00:00Z")), nullptr);
  EXPECT_EQ(created.state, rt::ContainerState::kCreated);
  EXPECT_EQ(created.reason, "");
}

TEST(DockerSandboxStatus, FromThePauseContainer) {
  json j = inspect(state("running", 0, ""));
  j["Name"] = "/k8s_POD_web_default_uid-1_2";
  j["HostConfig"] = {{"NetworkMode", "none"}, {"IpcMode", "shareable"}};
  auto s = sandbox_status_from_inspect(j, {"10.88.0.5", "fd00::5"});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->metadata, (rt::PodSandboxMetadata{"web", "uid-1", "default", 2}));
  EXPECT_EQ(s->state, rt::SandboxState::kReady);
  EXPECT_EQ(s->ip, "10.88.0.5");
  EXPECT_EQ(s->additional_ips, std::vector<std::string>{"fd00::5"});
  EXPECT_EQ(s->namespaces.network, rt::NamespaceMode::kPod);
  j["State"] = state("exited", 0, "2026-12-01T10:00:07Z");
  j["HostConfig"]["NetworkMode"] = "host";
  auto stopped = sandbox_status_from_inspect(j, {"10.88.0.5"});
  EXPECT_EQ(stopped->state, rt::SandboxState::kNotReady);
  EXPECT_EQ(stopped->ip, "");  // a stopped sandbox has no address
  EXPECT_EQ(stopped->namespaces.network, rt::NamespaceMode::kNode);
}

TEST(DockerImages, FromJsonWithoutNoneTags) {
  auto img = image_from_json({{"Id", "sha256:1"},
                              {"RepoTags", {"<none>:<none>"}},
                              {"RepoDigests", {"<none>@<none>"}},
                              {"Size", 42}});
  EXPECT_EQ(img, (rt::Image{"sha256:1", {}, {}, 42, false}));
  EXPECT_EQ(image_ref_of({{"Id", "sha256:1"}, {"RepoDigests", json::array()}}), "sha256:1");
}

TEST(DockerImages, PullParamsAndAuth) {
  EXPECT_EQ(pull_params("127.0.0.1:5000/kubia:1"),
            (std::pair<std::string, std::string>{"127.0.0.1:5000/kubia", "1"}));
  EXPECT_EQ(pull_params("127.0.0.1:5000/kubia"),
            (std::pair<std::string, std::string>{"127.0.0.1:5000/kubia", "latest"}));
  EXPECT_EQ(pull_params("busybox"), (std::pair<std::string, std::string>{"busybox", "latest"}));
  EXPECT_EQ(pull_params("r/busybox@sha256:abc"),
            (std::pair<std::string, std::string>{"r/busybox", "sha256:abc"}));
  EXPECT_EQ(base64("any carnal pleas", false), "YW55IGNhcm5hbCBwbGVhcw==");
  EXPECT_EQ(base64("\xfb\xff", true), "-_8=");
  EXPECT_EQ(registry_auth({"u", "p", "", "127.0.0.1:5000", "", ""}),
            base64(R"({"password":"p","serveraddress":"127.0.0.1:5000","username":"u"})", true));
}

TEST(DockerStats, WorkingSetIsUsageWithoutInactiveFiles) {
  json v1 = {{"read", "2026-12-01T10:00:05Z"},
             {"cpu_stats", {{"cpu_usage", {{"total_usage", 5000000}}}}},
             {"memory_stats", {{"usage", 9000}, {"stats", {{"total_inactive_file", 1000}}}}}};
  auto s = stats_from_json("abc", v1, 4096);
  EXPECT_EQ(s, (rt::ContainerStats{"abc", 1796119205000000000, 5000000, 8000, 4096}));
  json v2 = {{"memory_stats", {{"usage", 500}, {"stats", {{"inactive_file", 900}}}}}};
  EXPECT_EQ(stats_from_json("abc", v2, 0).memory_working_set_bytes, 0u);
}

// dockerd writes integers, but what it answers is outside input: a float out of int64's
// range (1e300, infinity, NaN) converted to an integer is undefined behaviour (UBSan
// reports it), as is Created * 1e9 overflowing. Such numbers read as 0 (unknown).
TEST(DockerNumbers, FloatsAndHugeNumbersReadAsZero) {
  const double kInf = std::numeric_limits<double>::infinity();
  const double kNaN = std::numeric_limits<double>::quiet_NaN();
  auto created = [](const json& v) {
    json item = list_item("k8s_app_web_default_uid-1_3", "running");
    item["Created"] = v;
    auto c = container_from_list(item);
    return c ? c->created_at : -1;
  };
  EXPECT_EQ(created(1796119200), 1796119200LL * 1000000000);
  EXPECT_EQ(created(1796119200.75), 1796119200LL * 1000000000) << "a float in range truncates";
  for (const json& v : {json(1e300), json(-1e300), json(kInf), json(-kInf), json(kNaN),
                        json(9223372036854775808.0), json(std::numeric_limits<uint64_t>::max()),
                        json(int64_t{10'000'000'000}), json(std::numeric_limits<int64_t>::min()),
                        json("1796119200"), json(true)}) {
    EXPECT_EQ(created(v), 0) << v.dump();
  }
  json sandbox = list_item("k8s_POD_web_default_uid-1_2", "running");
  sandbox["Created"] = 1e300;
  ASSERT_TRUE(sandbox_from_list(sandbox));
  EXPECT_EQ(sandbox_from_list(sandbox)->created_at, 0);

  json st = state("exited", 0, "2026-12-01T10:00:07Z");
  st["ExitCode"] = 1e300;
  auto s = container_status_from_inspect(inspect(st), nullptr);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->exit_code, 0);
  st["ExitCode"] = 3.0;
  EXPECT_EQ(container_status_from_inspect(inspect(st), nullptr)->exit_code, 3);

  EXPECT_EQ(image_from_json({{"Id", "sha256:1"}, {"Size", 1e300}}).size, 0u);
  EXPECT_EQ(image_from_json({{"Id", "sha256:1"}, {"Size", -5}}).size, 0u);
  EXPECT_EQ(image_from_json({{"Id", "sha256:1"}, {"Size", 42.9}}).size, 42u);
  EXPECT_EQ(image_from_json({{"Id", "sha256:1"}, {"Size", std::numeric_limits<uint64_t>::max()}}).size,
            0u);

  json huge = {{"cpu_stats", {{"cpu_usage", {{"total_usage", 1e300}}}}},
               {"memory_stats", {{"usage", kInf}, {"stats", {{"total_inactive_file", -1e300}}}}}};
  EXPECT_EQ(stats_from_json("abc", huge, 0), (rt::ContainerStats{"abc", 0, 0, 0, 0}));
  // A negative inactive count is 0: usage - inactive cannot overflow.
  json negative = {{"memory_stats",
                    {{"usage", std::numeric_limits<int64_t>::max()},
                     {"stats", {{"total_inactive_file", std::numeric_limits<int64_t>::min()}}}}}};
  EXPECT_EQ(stats_from_json("abc", negative, 0).memory_working_set_bytes,
            static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
}

// Times beyond int64 nanoseconds (the years 1677 to 2262) read as 0 (unset), not as a
// signed overflow.
TEST(DockerNumbers, TimesOutOfRangeReadAsZero) {
  json st = state("exited", 1, "9999-12-31T23:59:59.999999999Z");
  st["StartedAt"] = "0002-01-01T00:00:00.5Z";
  json in = inspect(st);
  in["Created"] = "1000-01-01T00:00:00Z";
  auto s = container_status_from_inspect(in, nullptr);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->created_at, 0);
  EXPECT_EQ(s->finished_at, 0);
  EXPECT_EQ(s->reason, "StartError") << "no finish time: it never ran, as far as knode can tell";
}

}  // namespace
}  // namespace knode::docker
