#include "pod/env.h"

#include <gtest/gtest.h>

#include <map>

#include "kubelet/pod/decode.h"

using namespace knode;
using namespace knode::kubelet;
using knode::kubelet::testing::decode;

namespace {

class FakeLookup : public EnvLookup {
 public:
  std::map<std::string, api::ConfigMap> config_maps;  // "ns/name"
  std::map<std::string, api::Secret> secrets;
  std::vector<api::Service> service_list;
  api::ResourceList allocatable;
  std::vector<std::string> node_ips = {"192.168.1.10"};

  const api::ConfigMap* config_map(const std::string& ns, const std::string& name) const override {
    auto it = config_maps.find(ns + "/" + name);
    return it == config_maps.end() ? nullptr : &it->second;
  }
  const api::Secret* secret(const std::string& ns, const std::string& name) const override {
    auto it = secrets.find(ns + "/" + name);
    return it == secrets.end() ? nullptr : &it->second;
  }
  std::vector<const api::Service*> services(const std::string& ns) const override {
    std::vector<const api::Service*> out;
    for (const auto& s : service_list) {
      if (s.metadata.namespace_ == ns) out.push_back(&s);
    }
    return out;
  }
  api::ResourceList node_allocatable() const override { return allocatable; }
  std::vector<std::string> host_ips() const override { return node_ips; }

  void add_config_map(const std::string& yaml) {
    auto cm = decode<api::ConfigMap>(yaml);
    config_maps[cm.metadata.namespace_ + "/" + cm.metadata.name] = cm;
  }
  void add_secret(const std::string& yaml) {
    auto s = decode<api::Secret>(yaml);
    secrets[s.metadata.namespace_ + "/" + s.metadata.name] = s;
  }
  void add_service(const std::string& ns, const std::string& name, const std::string& ip,
                   std::vector<api::ServicePortSpec> ports) {
    api::Service s;
    s.metadata.namespace_ = ns;
    s.metadata.name = name;
    s.spec.cluster_ip = ip;
    s.spec.ports = std::move(ports);
    service_list.push_back(s);
  }
};

api::ServicePortSpec port(const std::string& name, int32_t number,
                          const std::string& proto = "TCP") {
  api::ServicePortSpec p;
  p.name = name;
  p.port = number;
  p.protocol = proto;
  return p;
}

using Vars = std::vector<std::pair<std::string, std::string>>;

Vars pairs(const std::vector<runtime::KeyValue>& kvs) {
  Vars out;
  for (const auto& kv : kvs) out.emplace_back(kv.key, kv.value);
  return out;
}

std::map<std::string, std::string> as_map(const Environment& env) {
  std::map<std::string, std::string> out;
  for (const auto& kv : env.vars) {
    EXPECT_TRUE(out.emplace(kv.key, kv.value).second) << "duplicate " << kv.key;
  }
  return out;
}

api::Pod web_pod(const std::string& containers) {
  return decode<api::Pod>(R"(apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: shop
  uid: 6f1e2c1a-0000-4000-8000-000000000001
  labels: {app: web, tier: front}
  annotations: {team: "payments \"core\""}
spec:
  nodeName: node-1
  serviceAccountName: web-sa
  containers:
)" + containers);
}

Environment env_ok(const api::Pod& pod, const FakeLookup& lookup,
                   const std::vector<std::string>& pod_ips = {"10.244.1.7"}) {
  auto r = make_environment(pod, pod.spec.containers.at(0), pod_ips, lookup);
  EXPECT_TRUE(r.ok()) << r.error();
  return r.ok() ? *r : Environment{};
}

}  // namespace

TEST(ServiceLinks, EveryServiceOfTheNamespaceWithItsPorts) {
  FakeLookup lookup;
  lookup.add_service("shop", "redis-master", "10.0.0.11",
                     {port("", 6379), port("sentinel", 26379, "UDP")});
  auto vars = pairs(service_link_variables("shop", true, lookup));
  Vars want = {
      {"REDIS_MASTER_SERVICE_HOST", "10.0.0.11"},
      {"REDIS_MASTER_SERVICE_PORT", "6379"},
      {"REDIS_MASTER_SERVICE_PORT_SENTINEL", "26379"},
      {"REDIS_MASTER_PORT", "tcp://10.0.0.11:6379"},
      {"REDIS_MASTER_PORT_6379_TCP", "tcp://10.0.0.11:6379"},
      {"REDIS_MASTER_PORT_6379_TCP_PROTO", "tcp"},
      {"REDIS_MASTER_PORT_6379_TCP_PORT", "6379"},
      {"REDIS_MASTER_PORT_6379_TCP_ADDR", "10.0.0.11"},
      {"REDIS_MASTER_PORT_26379_UDP", "udp://10.0.0.11:26379"},
      {"REDIS_MASTER_PORT_26379_UDP_PROTO", "udp"},
      {"REDIS_MASTER_PORT_26379_UDP_PORT", "26379"},
      {"REDIS_MASTER_PORT_26379_UDP_ADDR", "10.0.0.11"},
  };
  EXPECT_EQ(vars, want);
}

TEST(ServiceLinks, Ipv6AddressIsBracketedInUrls) {
  FakeLookup lookup;
  lookup.add_service("shop", "db", "fd00::10", {port("pg", 5432)});
  auto vars = as_map(Environment{service_link_variables("shop", true, lookup), {}});
  EXPECT_EQ(vars["DB_PORT"], "tcp://[fd00::10]:5432");
  EXPECT_EQ(vars["DB_SERVICE_HOST"], "fd00::10");
}

TEST(ServiceLinks, HeadlessAndOtherNamespacesAreLeftOut) {
  FakeLookup lookup;
  lookup.add_service("shop", "headless", "None", {port("", 80)});
  lookup.add_service("shop", "pending", "", {port("", 80)});
  lookup.add_service("other", "elsewhere", "10.0.0.9", {port("", 80)});
  EXPECT_TRUE(service_link_variables("shop", true, lookup).empty());
}

TEST(ServiceLinks, KubernetesServiceEvenWithLinksDisabled) {
  FakeLookup lookup;
  lookup.add_service("default", "kubernetes", "10.96.0.1", {port("https", 443)});
  lookup.add_service("shop", "cart", "10.0.0.12", {port("", 80)});
  auto vars = as_map(Environment{service_link_variables("shop", false, lookup), {}});
  EXPECT_EQ(vars["KUBERNETES_SERVICE_HOST"], "10.96.0.1");
  EXPECT_EQ(vars["KUBERNETES_SERVICE_PORT_HTTPS"], "443");
  EXPECT_EQ(vars.count("CART_SERVICE_HOST"), 0u);
  // Other services of "default" are not linked into another namespace.
  lookup.add_service("default", "dns", "10.96.0.10", {port("", 53)});
  EXPECT_EQ(as_map(Environment{service_link_variables("shop", true, lookup), {}})
                .count("DNS_SERVICE_HOST"),
            0u);
}

TEST(ServiceLinks, NamespaceServiceNamedKubernetesWins) {
  FakeLookup lookup;
  lookup.add_service("default", "kubernetes", "10.96.0.1", {port("https", 443)});
  lookup.add_service("shop", "kubernetes", "10.0.0.99", {port("", 8080)});
  auto vars = as_map(Environment{service_link_variables("shop", true, lookup), {}});
  EXPECT_EQ(vars["KUBERNETES_SERVICE_HOST"], "10.0.0.99");
}

TEST(Environment, ServiceLinksThenEnvFromThenEnvInOrder) {
  FakeLookup lookup;
  lookup.add_service("shop", "cart", "10.0.0.12", {port("", 80)});
  lookup.add_config_map(R"(apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
data: {MODE: fast, LEVEL: "3"}
)");
  auto pod = web_pod(R"(  - name: app
    image: web:1
    envFrom:
    - configMapRef: {name: settings}
      prefix: CFG_
    env:
    - {name: ZED, value: last}
    - {name: CFG_MODE, value: slow}
)");
  auto env = env_ok(pod, lookup);
  ASSERT_GE(env.vars.size(), 4u);
  EXPECT_EQ(env.vars.front().key, "CART_SERVICE_HOST");
  Vars all = pairs(env.vars);
  Vars tail(all.end() - 3, all.end());
  // envFrom keys in key order, then env; a redefined name keeps its place and takes the
  // later value.
  EXPECT_EQ(tail, (Vars{{"CFG_LEVEL", "3"}, {"CFG_MODE", "slow"}, {"ZED", "last"}}));
  EXPECT_TRUE(env.warnings.empty());
}

TEST(Environment, EnvOverridesAServiceLinkOfTheSameName) {
  FakeLookup lookup;
  lookup.add_service("shop", "cart", "10.0.0.12", {port("", 80)});
  auto pod = web_pod(R"(  - name: app
    image: web:1
    env: [{name: CART_SERVICE_HOST, value: cart.example}]
)");
  auto vars = as_map(env_ok(pod, lookup));
  EXPECT_EQ(vars["CART_SERVICE_HOST"], "cart.example");
}

TEST(Environment, EnvFromKeysNoEnvironmentCanHoldAreSkippedAndReported) {
  FakeLookup lookup;
  api::ConfigMap cm;
  cm.metadata.namespace_ = "shop";
  cm.metadata.name = "odd";
  cm.data = {{"app.name", "web"}, {"1st", "one"}, {"bad=key", "x"}, {"tab\tkey", "y"}};
  lookup.config_maps["shop/odd"] = cm;
  auto pod = web_pod("  - {name: app, image: web:1}\n");
  pod.spec.containers[0].env_from.push_back(api::EnvFromSource{"", api::EnvFromRef{"odd", {}}, {}});
  auto env = env_ok(pod, lookup);
  auto vars = as_map(env);
  // Since upstream relaxed the rule, dotted names and leading digits pass.
  EXPECT_EQ(vars["app.name"], "web");
  EXPECT_EQ(vars["1st"], "one");
  EXPECT_EQ(vars.count("bad=key"), 0u);
  ASSERT_EQ(env.warnings.size(), 1u);
  EXPECT_EQ(env.warnings[0],
            "Keys [bad=key, tab\tkey] from the EnvFrom configMap shop/odd were skipped since they "
            "are considered invalid environment variable names.");
}

TEST(Environment, EnvFromSecretGivesItsBytes) {
  FakeLookup lookup;
  lookup.add_secret(R"(apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: shop}
data: {TOKEN: AP8K}
)");
  auto pod = web_pod(R"(  - name: app
    image: web:1
    envFrom: [{secretRef: {name: creds}}]
)");
  auto vars = as_map(env_ok(pod, lookup));
  EXPECT_EQ(vars["TOKEN"], std::string("\x00\xff\n", 3));
}

TEST(Environment, MissingEnvFromSourceFailsUnlessOptional) {
  FakeLookup lookup;
  auto pod = web_pod(R"(  - name: app
    image: web:1
    envFrom: [{configMapRef: {name: absent, optional: true}}]
)");
  EXPECT_TRUE(make_environment(pod, pod.spec.containers[0], {}, lookup).ok());
  pod.spec.containers[0].env_from[0].config_map_ref->optional = false;
  auto r = make_environment(pod, pod.spec.containers[0], {}, lookup);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), "pod shop/web container app: envFrom: configmap \"absent\" not found");
}

TEST(Environment, ValuesExpandAgainstWhatIsDefinedSoFar) {
  FakeLookup lookup;
  lookup.add_service("shop", "cart", "10.0.0.12", {port("", 80)});
  auto pod = web_pod(R"Y(  - name: app
    image: web:1
    env:
    - {name: HOST, value: db}
    - {name: URL, value: "pg://$(HOST):$(PORT)/x"}
    - {name: PORT, value: "5432"}
    - {name: CART, value: "http://$(CART_SERVICE_HOST)"}
    - {name: LITERAL, value: "$$(HOST) costs $$5 $"}
    - {name: SELF, value: "a$(SELF)"}
)Y");
  auto vars = as_map(env_ok(pod, lookup));
  EXPECT_EQ(vars["URL"], "pg://db:$(PORT)/x");  // PORT comes later: left as written
  EXPECT_EQ(vars["CART"], "http://10.0.0.12");
  EXPECT_EQ(vars["LITERAL"], "$(HOST) costs $5 $");
  EXPECT_EQ(vars["SELF"], "a$(SELF)");
}

TEST(Expand, UpstreamSyntax) {
  auto lookup = [](std::string_view name) -> std::optional<std::string> {
    if (name == "A") return "x";
    if (name == "") return "empty";
    return std::nullopt;
  };
  struct Case {
    const char* in;
    const char* out;
  };
  const Case cases[] = {
      {"$(A)", "x"},
      {"$$(A)", "$(A)"},
      {"$$$(A)", "$x"},
      {"$(B)", "$(B)"},
      {"$(A", "$(A"},
      {"a$", "a$"},
      {"$A", "$A"},
      {"$()", "empty"},
      {"$(A)$(A)", "xx"},
      {"pre$(A)post", "prexpost"},
      {"$(A$(A))", "$(A$(A))"},
      {"", ""},
  };
  for (const auto& c : cases) EXPECT_EQ(expand(c.in, lookup), c.out) << c.in;
}

TEST(Environment, FieldRefsReadThePodAndTheNode) {
  FakeLookup lookup;
  lookup.node_ips = {"192.168.1.10", "fd00::10"};
  auto pod = web_pod(R"(  - name: app
    image: web:1
    env:
    - {name: NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: NS, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
    - {name: UID, valueFrom: {fieldRef: {fieldPath: metadata.uid}}}
    - {name: APP, valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}}
    - {name: NOLABEL, valueFrom: {fieldRef: {fieldPath: "metadata.labels['none']"}}}
    - {name: TEAM, valueFrom: {fieldRef: {fieldPath: "metadata.annotations['team']"}}}
    - {name: NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
    - {name: SA, valueFrom: {fieldRef: {fieldPath: spec.serviceAccountName}}}
    - {name: HOST_IP, valueFrom: {fieldRef: {fieldPath: status.hostIP}}}
    - {name: HOST_IPS, valueFrom: {fieldRef: {fieldPath: status.hostIPs}}}
    - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: POD_IPS, valueFrom: {fieldRef: {fieldPath: status.podIPs}}}
)");
  auto vars = as_map(env_ok(pod, lookup, {"fd00:244::7", "10.244.1.7", "10.244.9.9"}));
  EXPECT_EQ(vars["NAME"], "web");
  EXPECT_EQ(vars["NS"], "shop");
  EXPECT_EQ(vars["UID"], "6f1e2c1a-0000-4000-8000-000000000001");
  EXPECT_EQ(vars["APP"], "web");
  EXPECT_EQ(vars["NOLABEL"], "");
  EXPECT_EQ(vars["TEAM"], "payments \"core\"");
  EXPECT_EQ(vars["NODE"], "node-1");
  EXPECT_EQ(vars["SA"], "web-sa");
  EXPECT_EQ(vars["HOST_IP"], "192.168.1.10");
  EXPECT_EQ(vars["HOST_IPS"], "192.168.1.10,fd00::10");
  // The node's primary family first, one address per family.
  EXPECT_EQ(vars["POD_IP"], "10.244.1.7");
  EXPECT_EQ(vars["POD_IPS"], "10.244.1.7,fd00:244::7");
}

TEST(Environment, WholeLabelMapIsPrintedSortedAndQuoted) {
  FakeLookup lookup;
  auto pod = web_pod(R"(  - name: app
    image: web:1
    env: [{name: ALL, valueFrom: {fieldRef: {fieldPath: metadata.annotations}}}]
)");
  pod.metadata.annotations["b"] = "two\nlines";
  auto vars = as_map(env_ok(pod, lookup));
  EXPECT_EQ(vars["ALL"], "b=\"two\\nlines\"\nteam=\"payments \\\"core\\\"\"");
}

TEST(Environment, HostIpUnknownIsAnError) {
  FakeLookup lookup;
  lookup.node_ips.clear();
  auto pod = web_pod(R"(  - name: app
    image: web:1
    env: [{name: H, valueFrom: {fieldRef: {fieldPath: status.hostIP}}}]
)");
  auto r = make_environment(pod, pod.spec.containers[0], {}, lookup);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("env H: host IP unknown"), std::string::npos) << r.error();
}

TEST(Environment, ResourceFieldRefsRoundUpByTheDivisor) {
  FakeLookup lookup;
  lookup.allocatable = {{"cpu", *api::Quantity::Parse("4")},
                        {"memory", *api::Quantity::Parse("8Gi")}};
  auto pod = web_pod(R"(  - name: app
    image: web:1
    resources:
      requests: {cpu: 250m, memory: 100Mi}
      limits: {cpu: 1500m}
    env:
    - {name: CPU_LIMIT, valueFrom: {resourceFieldRef: {resource: limits.cpu}}}
    - {name: CPU_LIMIT_M, valueFrom: {resourceFieldRef: {resource: limits.cpu, divisor: 1m}}}
    - {name: CPU_REQ, valueFrom: {resourceFieldRef: {resource: requests.cpu}}}
    - {name: MEM_REQ_MI, valueFrom: {resourceFieldRef: {resource: requests.memory, divisor: 1Mi}}}
    - {name: MEM_REQ_GI, valueFrom: {resourceFieldRef: {resource: requests.memory, divisor: 1Gi}}}
    - {name: MEM_LIMIT, valueFrom: {resourceFieldRef: {resource: limits.memory}}}
    - {name: SIDE_CPU, valueFrom: {resourceFieldRef: {containerName: side, resource: requests.cpu, divisor: 1m}}}
    - {name: EPH_REQ, valueFrom: {resourceFieldRef: {resource: requests.ephemeral-storage}}}
  - name: side
    image: side:1
    resources: {limits: {cpu: 200m, memory: 64Mi}}
)");
  auto vars = as_map(env_ok(pod, lookup));
  EXPECT_EQ(vars["CPU_LIMIT"], "2");  // 1.5 cores rounded up
  EXPECT_EQ(vars["CPU_LIMIT_M"], "1500");
  EXPECT_EQ(vars["CPU_REQ"], "1");  // 250m rounded up to one core
  EXPECT_EQ(vars["MEM_REQ_MI"], "100");
  EXPECT_EQ(vars["MEM_REQ_GI"], "1");
  EXPECT_EQ(vars["MEM_LIMIT"], std::to_string(8LL << 30));  // no limit: the node's allocatable
  EXPECT_EQ(vars["SIDE_CPU"], "200");  // no request: the request defaults to the limit
  EXPECT_EQ(vars["EPH_REQ"], "0");
}

TEST(Environment, KeyRefsTakeOneKeyAndMayBeOptional) {
  FakeLookup lookup;
  lookup.add_config_map(R"(apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
data: {mode: fast}
)");
  lookup.add_secret(R"(apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: shop}
stringData: {password: hunter2}
)");
  auto pod = web_pod(R"(  - name: app
    image: web:1
    env:
    - {name: MODE, valueFrom: {configMapKeyRef: {name: settings, key: mode}}}
    - {name: PASS, valueFrom: {secretKeyRef: {name: creds, key: password}}}
    - {name: GONE_KEY, valueFrom: {configMapKeyRef: {name: settings, key: nope, optional: true}}}
    - {name: GONE_MAP, valueFrom: {secretKeyRef: {name: absent, key: k, optional: true}}}
)");
  auto vars = as_map(env_ok(pod, lookup));
  EXPECT_EQ(vars["MODE"], "fast");
  EXPECT_EQ(vars["PASS"], "hunter2");
  EXPECT_EQ(vars.count("GONE_KEY"), 0u);
  EXPECT_EQ(vars.count("GONE_MAP"), 0u);
}

TEST(Environment, MissingRequiredKeyNamesPodContainerVariableAndKey) {
  FakeLookup lookup;
  lookup.add_config_map(R"(apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
data: {mode: fast}
)");
  auto pod = web_pod(R"(  - name: app
    image: web:1
    env: [{name: LEVEL, valueFrom: {configMapKeyRef: {name: settings, key: level}}}]
)");
  auto r = make_environment(pod, pod.spec.containers[0], {}, lookup);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(
      r.error(),
      "pod shop/web container app: env LEVEL: couldn't find key level in ConfigMap shop/settings");
  pod.spec.containers[0].env[0].value_from->config_map_key_ref.reset();
  pod.spec.containers[0].env[0].value_from->secret_key_ref = api::KeySelector{"creds", "pw", {}};
  r = make_environment(pod, pod.spec.containers[0], {}, lookup);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), "pod shop/web container app: env LEVEL: secret \"creds\" not found");
}

TEST(Environment, UnsupportedFieldPathIsAnError) {
  FakeLookup lookup;
  auto pod = web_pod("  - {name: app, image: web:1}\n");
  api::EnvVar v;
  v.name = "PHASE";
  v.value_from = api::EnvVarSource{api::ObjectFieldSelector{"v1", "status.phase"}, {}, {}, {}};
  pod.spec.containers[0].env.push_back(v);
  auto r = make_environment(pod, pod.spec.containers[0], {}, lookup);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(),
            "pod shop/web container app: env PHASE: unsupported fieldPath: status.phase");
}

TEST(ExpandCommand, CommandAndArgsUseTheFinalEnvironment) {
  api::Container c;
  c.command = {"/bin/sh", "-c", "echo $(GREETING) $$(GREETING)"};
  c.args = {"--name=$(NAME)", "--missing=$(NOPE)"};
  auto line = expand_command(c, {{"GREETING", "hi"}, {"NAME", "web"}});
  EXPECT_EQ(line.command, (std::vector<std::string>{"/bin/sh", "-c", "echo hi $(GREETING)"}));
  EXPECT_EQ(line.args, (std::vector<std::string>{"--name=web", "--missing=$(NOPE)"}));
}

TEST(SortPodIps, NodeFamilyFirstOnePerFamily) {
  EXPECT_EQ(sort_pod_ips({"fd00::1", "10.0.0.1", "10.0.0.2"}, {"10.1.1.1"}),
            (std::vector<std::string>{"10.0.0.1", "fd00::1"}));
  EXPECT_EQ(sort_pod_ips({"10.0.0.1", "fd00::1"}, {"fd00::99"}),
            (std::vector<std::string>{"fd00::1", "10.0.0.1"}));
  EXPECT_EQ(sort_pod_ips({"10.0.0.1", "junk"}, {}), (std::vector<std::string>{"10.0.0.1"}));
}
