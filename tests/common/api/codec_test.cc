#include <cmath>
#include <limits>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "knode/api/codec.h"
#include "knode/api/convert.h"

using namespace knode::api;

namespace {

ManifestContents decode_ok(const std::string& text, const std::string& file = "test.yaml") {
  auto r = decode_manifest(text, file);
  EXPECT_TRUE(r.ok()) << r.error();
  return r.ok() ? *r : ManifestContents{};
}

std::string first_error(const std::string& text, const std::string& file = "test.yaml") {
  auto r = decode_manifest(text, file);
  if (!r.ok()) return r.error();
  if (r->rejected.empty()) return "";
  return r->rejected.front().error;
}

const char* kKubiaService = R"(apiVersion: v1
kind: Service
metadata:
  name: kubia
spec:
  type: NodePort
  selector:
    app: kubia
  sessionAffinity: ClientIP
  ports:
  - name: http
    port: 80
    targetPort: http-web
    nodePort: 30080
  - name: https
    port: 443
    targetPort: 8443
    protocol: TCP
)";

}  // namespace

TEST(Codec, DecodesServiceWithDefaults) {
  auto m = decode_ok(kKubiaService);
  ASSERT_EQ(m.objects.size(), 1u);
  const auto& svc = knode::api::get<Service>(*m.objects[0]);
  EXPECT_EQ(svc.metadata.namespace_, "default");
  EXPECT_EQ(svc.spec.ports.size(), 2u);
  EXPECT_EQ(svc.spec.ports[0].protocol, "TCP");
  EXPECT_FALSE(svc.spec.ports[0].target_port.is_int());
  EXPECT_EQ(svc.spec.ports[0].target_port.str_value(), "http-web");
  EXPECT_EQ(svc.spec.ports[1].target_port.int_value(), 8443);
  EXPECT_EQ(svc.spec.external_traffic_policy, "Cluster");
  ASSERT_TRUE(svc.spec.session_affinity_config);
  EXPECT_EQ(*svc.spec.session_affinity_config->client_ip->timeout_seconds, 10800);
}

TEST(Codec, PortOutOfRangeNamesFileObjectAndField) {
  std::string bad = kKubiaService;
  bad.replace(bad.find("port: 80\n"), 9, "port: 70000\n");
  EXPECT_EQ(first_error(bad, "kubia-svc.yaml"),
            "kubia-svc.yaml: Service default/kubia: spec.ports[0].port: 70000 out of range 1-65535");
}

TEST(Codec, WrongTypeNamesField) {
  std::string bad = kKubiaService;
  bad.replace(bad.find("port: 443"), 9, "port: \"443\"");
  EXPECT_EQ(first_error(bad, "x.yaml"),
            "x.yaml: Service default/kubia: spec.ports[1].port: expected integer, got string");
}

TEST(Codec, BadObjectRejectedOthersKept) {
  std::string text = std::string(kKubiaService) + R"(---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kubia-abc
  namespace: web
  labels: {kubernetes.io/service-name: kubia}
addressType: IPv4
endpoints:
- addresses: ["10.244.1.300"]
ports:
- port: 8080
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {a: "1"}
)";
  auto m = decode_ok(text);
  ASSERT_EQ(m.objects.size(), 2u);
  ASSERT_EQ(m.rejected.size(), 1u);
  EXPECT_EQ(m.rejected[0].error,
            "test.yaml: EndpointSlice web/kubia-abc: endpoints[0].addresses[0]: \"10.244.1.300\" is "
            "not a valid IP address");
  ASSERT_TRUE(m.rejected[0].key);
  EXPECT_EQ(m.rejected[0].key->str(), "EndpointSlice web/kubia-abc");
}

TEST(Codec, SyntaxErrorFailsWholeFileWithLine) {
  auto r = decode_manifest("apiVersion: v1\nkind: Service\nmetadata: {name: x\n", "s.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().rfind("s.yaml:", 0), 0u) << r.error();
}

TEST(Codec, UnknownFieldsIgnored) {
  auto m = decode_ok("apiVersion: v1\nkind: Namespace\nmetadata: {name: prod, bogus: 1}\nextra: {x: y}\n");
  ASSERT_EQ(m.objects.size(), 1u);
  EXPECT_EQ(knode::api::get<Namespace>(*m.objects[0]).metadata.name, "prod");
  EXPECT_TRUE(knode::api::get<Namespace>(*m.objects[0]).metadata.namespace_.empty());
}

TEST(Codec, UnsupportedKindAndApiVersion) {
  EXPECT_EQ(first_error("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n"),
            "test.yaml: Deployment default/d: kind: unsupported kind \"Deployment\"");
  EXPECT_NE(first_error("apiVersion: v2\nkind: Pod\nmetadata: {name: p}\n").find("apiVersion"),
            std::string::npos);
}

TEST(Codec, JsonAndListAndQuotedScalars) {
  auto m = decode_ok(R"({"apiVersion":"v1","kind":"List","items":[
    {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","labels":{"v":"1.0"}},"data":{"k":"true"}},
    {"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"},"stringData":{"p":"hi"}}]})",
                     "list.json");
  ASSERT_EQ(m.objects.size(), 2u);
  EXPECT_EQ(knode::api::get<ConfigMap>(*m.objects[0]).data.at("k"), "true");
  const auto& sec = knode::api::get<Secret>(*m.objects[1]);
  EXPECT_EQ(sec.data.at("p"), "aGk=");
  EXPECT_EQ(sec.type, "Opaque");
  // In YAML a plain `true` is a boolean, so a string field rejects it, like the API server.
  EXPECT_NE(first_error("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: true}\n")
                .find("data.k: expected string, got boolean"),
            std::string::npos);
  EXPECT_TRUE(first_error("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: 'true'}\n").empty());
}

// Modes are written in octal, and Kubernetes' YAML reader (YAML 1.1) reads a leading zero
// as octal: defaultMode 0400 is 256, not 400.
TEST(Codec, LeadingZeroIntegersAreOctalAsKubectlReadsThem) {
  auto m = decode_ok("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: i}]\n"
                     "  volumes: [{name: v, secret: {secretName: s, defaultMode: 0400}},"
                     " {name: w, configMap: {name: c, defaultMode: 420}}]\n",
                     "modes.yaml");
  const auto& pod = knode::api::get<Pod>(*m.objects.at(0));
  EXPECT_EQ(*pod.spec.volumes.at(0).secret->default_mode, 0400);
  EXPECT_EQ(*pod.spec.volumes.at(1).config_map->default_mode, 420);
}

const char* kPod = R"(apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: shop
  uid: 7f1c
  resourceVersion: "42"
  generation: 3
  creationTimestamp: "2026-11-23T09:00:00Z"
  labels: {app: web}
  annotations: {note: "hi"}
  ownerReferences:
  - {apiVersion: apps/v1, kind: ReplicaSet, name: web-1, uid: abc, controller: true}
spec:
  hostNetwork: false
  dnsPolicy: ClusterFirst
  serviceAccountName: web
  automountServiceAccountToken: false
  hostname: web-0
  subdomain: web
  terminationGracePeriodSeconds: 10
  restartPolicy: OnFailure
  volumes:
  - name: data
    emptyDir: {sizeLimit: 1Gi}
  - name: cfg
    configMap: {name: web-cfg}
  initContainers:
  - name: proxy
    image: envoy:1.30
    restartPolicy: Always
  containers:
  - name: app
    image: registry.local/web:1.2
    command: ["/bin/web"]
    args: ["--port", "8080"]
    workingDir: /srv
    env:
    - {name: A, value: "1"}
    - name: POD_IP
      valueFrom: {fieldRef: {fieldPath: status.podIP}}
    - name: PASS
      valueFrom: {secretKeyRef: {name: s, key: p}}
    envFrom:
    - configMapRef: {name: web-cfg}
    ports:
    - {name: http, containerPort: 8080}
    resources:
      requests: {cpu: 500m, memory: 200m}
      limits: {cpu: "2", memory: 2Gi}
    volumeMounts:
    - {name: data, mountPath: /data}
    livenessProbe:
      httpGet: {port: http}
      initialDelaySeconds: 5
    readinessProbe:
      tcpSocket: {port: 8080}
      periodSeconds: 2
    startupProbe:
      exec: {command: [cat, /tmp/ok]}
      failureThreshold: 30
    lifecycle:
      preStop: {sleep: {seconds: 5}}
)";

TEST(Codec, PodRoundTripsThroughJson) {
  auto m = decode_ok(kPod);
  ASSERT_EQ(m.objects.size(), 1u);
  const auto& pod = knode::api::get<Pod>(*m.objects[0]);
  const auto& c = pod.spec.containers[0];
  EXPECT_EQ(c.image_pull_policy, "IfNotPresent");
  EXPECT_EQ(c.liveness_probe->timeout_seconds, 1);
  EXPECT_EQ(c.liveness_probe->period_seconds, 10);
  EXPECT_EQ(c.liveness_probe->http_get->path, "/");
  EXPECT_EQ(c.readiness_probe->period_seconds, 2);
  EXPECT_EQ(c.resources.requests.at("memory").value(), 1);
  EXPECT_EQ(c.resources.requests.at("cpu").milli_value(), 500);
  EXPECT_EQ(*pod.spec.init_containers[0].restart_policy, "Always");
  EXPECT_EQ(pod.metadata.creation_timestamp.str(), "2026-11-23T09:00:00Z");
  EXPECT_TRUE(*pod.metadata.owner_references[0].controller);

  std::string json = encode_json(*m.objects[0]);
  auto again = decode_manifest(json, "roundtrip.json");
  ASSERT_TRUE(again.ok()) << again.error();
  ASSERT_EQ(again->objects.size(), 1u) << (again->rejected.empty() ? "" : again->rejected[0].error);
  EXPECT_TRUE(*again->objects[0] == *m.objects[0]) << json;
  EXPECT_EQ(encode_json(*again->objects[0]), json);
}

TEST(Codec, ProbeMinimumsAndHandlers) {
  std::string bad = kPod;
  bad.replace(bad.find("periodSeconds: 2"), 16, "periodSeconds: -1");
  EXPECT_NE(first_error(bad).find("spec.containers[0].readinessProbe.periodSeconds: must be greater than or equal to 1"),
            std::string::npos)
      << first_error(bad);
  std::string two = kPod;
  two.replace(two.find("tcpSocket: {port: 8080}"), 23, "tcpSocket: {port: 8080}\n      exec: {command: [x]}");
  EXPECT_NE(first_error(two).find("may not specify more than 1 handler type"), std::string::npos);
  std::string liveness = kPod;
  liveness.replace(liveness.find("initialDelaySeconds: 5"), 22, "successThreshold: 2");
  EXPECT_NE(first_error(liveness).find("livenessProbe.successThreshold: must be 1"), std::string::npos);
}

TEST(Codec, PodMountOfMissingVolume) {
  std::string bad = kPod;
  bad.replace(bad.find("{name: data, mountPath"), 11, "{name: nope");
  EXPECT_NE(first_error(bad).find("volumeMounts[0].name: volume \"nope\" not found"), std::string::npos)
      << first_error(bad);
}

TEST(Codec, ServiceValidationRules) {
  auto svc = [](const std::string& spec) {
    return first_error("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n" + spec);
  };
  EXPECT_EQ(svc("  ports: [{port: 80, protocol: ICMP}]\n"),
            "test.yaml: Service default/s: spec.ports[0].protocol: unsupported value \"ICMP\": "
            "supported values: \"TCP\", \"UDP\", \"SCTP\"");
  EXPECT_NE(svc("  ports: [{port: 0}]\n").find("spec.ports[0].port: 0 out of range 1-65535"), std::string::npos);
  EXPECT_NE(svc("  clusterIP: 10.96.0.300\n  ports: [{port: 80}]\n").find("spec.clusterIP"), std::string::npos);
  EXPECT_NE(svc("  ports: [{port: 80}, {port: 81}]\n").find("spec.ports[0].name: required"), std::string::npos);
  EXPECT_NE(svc("  type: LoadBalancer\n  loadBalancerSourceRanges: [10.0.0.0/33]\n  ports: [{port: 80}]\n")
                .find("spec.loadBalancerSourceRanges[0]"),
            std::string::npos);
  EXPECT_NE(svc("  ports: [{port: 80, targetPort: Not_A_Name}]\n").find("spec.ports[0].targetPort"),
            std::string::npos);
  EXPECT_TRUE(svc("  type: ExternalName\n  externalName: db.example.com\n").empty());
  EXPECT_TRUE(svc("  clusterIP: None\n  selector: {app: x}\n").empty());
  EXPECT_NE(first_error("apiVersion: v1\nkind: Service\nmetadata: {name: Bad_Name}\nspec: {ports: [{port: 80}]}\n")
                .find("metadata.name"),
            std::string::npos);
}

// Names that are RFC 1123 subdomains: 253 characters in all, with no limit on one part, as
// upstream (a conformance test names a pod with 70 characters and no dot).
TEST(Codec, APodNameIsASubdomainOfUpTo253CharactersWithNoLimitPerPart) {
  auto pod = [](const std::string& name) {
    return first_error("apiVersion: v1\nkind: Pod\nmetadata: {name: " + name +
                       "}\nspec: {containers: [{name: c, image: i}]}\n");
  };
  const std::string seventy = "pod-update-activedeadlineseconds-50c679f4-539b-475e-b186-f264cc573f11";
  ASSERT_GT(seventy.size(), 63u);
  EXPECT_EQ(pod(seventy), "");
  EXPECT_EQ(pod("a." + seventy), "");
  EXPECT_EQ(pod(std::string(253, 'a')), "");
  EXPECT_NE(pod(std::string(254, 'a')).find("metadata.name"), std::string::npos);
  EXPECT_NE(pod("a..b").find("metadata.name"), std::string::npos);
  EXPECT_NE(pod("-a").find("metadata.name"), std::string::npos);
}

TEST(Codec, EndpointsConvertToSlices) {
  auto m = decode_ok(R"(apiVersion: v1
kind: Endpoints
metadata: {name: ext, namespace: web}
subsets:
- addresses: [{ip: 10.0.0.1, nodeName: n1}, {ip: 10.0.0.2}]
  notReadyAddresses: [{ip: 10.0.0.3}]
  ports: [{name: http, port: 8080}]
)");
  ASSERT_EQ(m.objects.size(), 1u);
  auto slices = endpoints_to_slices(knode::api::get<Endpoints>(*m.objects[0]));
  ASSERT_EQ(slices.size(), 1u);
  const auto& s = slices[0];
  EXPECT_EQ(s.metadata.labels.at("kubernetes.io/service-name"), "ext");
  EXPECT_EQ(s.metadata.namespace_, "web");
  ASSERT_EQ(s.endpoints.size(), 3u);
  EXPECT_TRUE(*s.endpoints[0].conditions.ready);
  EXPECT_EQ(*s.endpoints[0].node_name, "n1");
  EXPECT_FALSE(*s.endpoints[2].conditions.ready);
  EXPECT_EQ(*s.ports[0].port, 8080);
  EXPECT_EQ(*s.ports[0].protocol, "TCP");
}

TEST(Codec, NodeAndEndpointSliceRoundTrip) {
  auto m = decode_ok(R"(apiVersion: v1
kind: Node
metadata: {name: node-1, labels: {kubernetes.io/hostname: node-1}}
spec: {podCIDR: 10.244.1.0/24, podCIDRs: [10.244.1.0/24]}
status:
  capacity: {cpu: "2", memory: 24Gi, pods: "110"}
  addresses: [{type: InternalIP, address: 192.168.1.10}]
  daemonEndpoints: {kubeletEndpoint: {Port: 10250}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-x, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints:
- addresses: [10.244.1.5]
  conditions: {ready: false, serving: true, terminating: true}
  nodeName: node-1
  zone: a
  hints: {forZones: [{name: a}]}
ports: [{name: http, port: 8080, protocol: TCP}]
)");
  ASSERT_EQ(m.objects.size(), 2u);
  for (const auto& o : m.objects) {
    auto again = decode_manifest(encode_json(*o), "rt.json");
    ASSERT_TRUE(again.ok());
    ASSERT_EQ(again->objects.size(), 1u);
    EXPECT_TRUE(*again->objects[0] == *o) << encode_json(*o);
  }
  const auto& es = knode::api::get<EndpointSlice>(*m.objects[1]);
  EXPECT_FALSE(*es.endpoints[0].conditions.ready);
  EXPECT_TRUE(*es.endpoints[0].conditions.terminating);
  EXPECT_EQ(knode::api::get<Node>(*m.objects[0]).status.daemon_endpoints.kubelet_endpoint.port, 10250);
}

// Found by fuzz_api_manifest_yaml: a YAML string that is not UTF-8 made encode_json throw
// (nlohmann refuses to write invalid UTF-8), which ended the daemon. Bytes that are not
// UTF-8 read as U+FFFD, as Go's encoding/json (and so the API server) reads them.
TEST(Codec, BytesThatAreNotUtf8ReadAsReplacementCharacters) {
  const std::string text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, annotations: {note: a\xff}}\n"
                           "data:\n  k: v\xc4x \xe2\x82\xac \xed\xa0\x80 \xf0\x9f\x98\x80\n";
  auto m = decode_ok(text);
  ASSERT_EQ(m.objects.size(), 1u) << (m.rejected.empty() ? "" : m.rejected.front().error);
  const auto& cm = knode::api::get<ConfigMap>(*m.objects.front());
  ASSERT_EQ(cm.data.size(), 1u);
  // A lone lead byte, and a surrogate's three bytes, are replaced; a euro sign and an
  // emoji are kept.
  EXPECT_EQ(cm.data.begin()->second,
            "v\xEF\xBF\xBDx \xE2\x82\xAC \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD \xF0\x9F\x98\x80");
  EXPECT_EQ(cm.metadata.annotations.at("note"), "a\xEF\xBF\xBD");
  const std::string json = encode_json(*m.objects.front(), -1);
  auto again = decode_ok(json, "again.json");
  ASSERT_EQ(again.objects.size(), 1u);
  EXPECT_TRUE(*again.objects.front() == *m.objects.front());
}

// The YAML reader (libyaml events to JSON): scalars by style and tag, aliases, several
// documents, and the bounds that keep hostile input from taking the loop.
TEST(YamlDocuments, ScalarsByStyleAndTag) {
  auto r = yaml_documents("a: 80\nb: '80'\nc: true\nd: ~\ne: !!str 7\nf: !!int 7\ng: |\n  x\nh: 1.5\n", "t.yaml");
  ASSERT_TRUE(r.ok()) << r.error();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0], nlohmann::json::parse(R"({"a":80,"b":"80","c":true,"d":null,"e":"7","f":7,"g":"x\n","h":1.5})"));
}

// Plain scalars resolve as YAML 1.2's core schema with YAML 1.1's octals, as
// Kubernetes' reader takes them; numbers beyond int64 or a double stay strings.
TEST(YamlDocuments, PlainScalarsResolveToNumbersOnlyWhenTheyFit) {
  auto r = yaml_documents(
      "a: 0400\nb: -0400\nc: +12\nd: 0x1F\ne: 0o17\nf: 08\ng: 0\nh: -9223372036854775808\n"
      "i: 9223372036854775808\nj: 0xffffffffffffffff\nk: .5\nl: 1.\nm: 1e3\nn: -1.5E-2\n"
      "o: 1e-400\np: 1e999\nq: -.inf\nr: 1e\ns: 0x\nt: +-1\nu: 1_000\nv: 0o8\nw: .\nx: 12abc\n",
      "n.yaml");
  ASSERT_TRUE(r.ok()) << r.error();
  const auto& d = (*r)[0];
  EXPECT_EQ(d["a"], 256);
  EXPECT_EQ(d["b"], -256);
  EXPECT_EQ(d["c"], 12);
  EXPECT_EQ(d["d"], 31);
  EXPECT_EQ(d["e"], 15);
  EXPECT_EQ(d["f"], 8);
  EXPECT_EQ(d["g"], 0);
  EXPECT_EQ(d["h"].get<int64_t>(), std::numeric_limits<int64_t>::min());
  EXPECT_TRUE(d["i"].is_number_float()) << d["i"];  // past int64: a float, as Go's reader
  EXPECT_EQ(d["j"], "0xffffffffffffffff");
  EXPECT_EQ(d["k"], 0.5);
  EXPECT_EQ(d["l"], 1.0);
  EXPECT_EQ(d["m"], 1000.0);
  EXPECT_EQ(d["n"], -0.015);
  // Below a double's range: 0, as Go reads it; above: not a number (this threw once, and
  // the exception ended the daemon).
  EXPECT_EQ(d["o"], 0.0);
  EXPECT_EQ(d["p"], "1e999");
  EXPECT_TRUE(std::isinf(d["q"].get<double>()));
  for (const char* k : {"r", "s", "t", "u", "v", "w", "x"}) EXPECT_TRUE(d[k].is_string()) << k << ": " << d[k];
}

// A JSON manifest with a number beyond a double's range is refused with its file name;
// nlohmann's parser threw out_of_range for it, past the reader, and the daemon ended
// (found by the long fuzz run).
TEST(Codec, JsonNumberOverflowIsAnErrorNotAnException) {
  auto m = decode_manifest(R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","generation":89.8e888}})",
                           "big.json");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().rfind("big.json: ", 0), 0u) << m.error();
  EXPECT_NE(m.error().find("number overflow"), std::string::npos) << m.error();
}

TEST(YamlDocuments, AliasesExpandAndDocumentsAreSeparate) {
  auto r = yaml_documents("a: &x {k: v}\nb: *x\n---\n---\nc: 1\n", "t.yaml");
  ASSERT_TRUE(r.ok()) << r.error();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0]["b"], (*r)[0]["a"]);
  EXPECT_TRUE((*r)[1].is_null());
  // An anchor of one document is unknown in the next.
  auto bad = yaml_documents("a: &x 1\n---\nb: *x\n", "t.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().rfind("t.yaml:3:4: unknown anchor", 0), 0u) << bad.error();
}

TEST(YamlDocuments, BoundsAndErrorsNameTheFileLineAndColumn) {
  // Forty levels of aliases that each double the last: 2^40 values, refused at 256K.
  std::string bomb = "a0: &a0 [x, x]\n";
  for (int i = 1; i <= 40; ++i) {
    bomb += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [*a" + std::to_string(i - 1) + ", *a" +
            std::to_string(i - 1) + "]\n";
  }
  auto r = yaml_documents(bomb, "bomb.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("aliases expand to more than 262144 values"), std::string::npos) << r.error();
  auto deep = yaml_documents(std::string(600, '[') + std::string(600, ']'), "deep.yaml");
  ASSERT_FALSE(deep.ok());
  EXPECT_NE(deep.error().find("nested more than 512 levels deep"), std::string::npos) << deep.error();
  auto key = yaml_documents("? [a]\n: 1\n", "key.yaml");
  ASSERT_FALSE(key.ok());
  EXPECT_NE(key.error().find("a mapping key must be a scalar"), std::string::npos) << key.error();
  auto syntax = yaml_documents("a: {b: 1\n", "s.yaml");
  ASSERT_FALSE(syntax.ok());
  EXPECT_EQ(syntax.error().rfind("s.yaml:2:1: ", 0), 0u) << syntax.error();
  // Bytes that are not UTF-8 read as U+FFFD, as Go's encoding/json reads them.
  auto bytes = yaml_documents("a: \"x\xff\"\n", "u.yaml");
  ASSERT_TRUE(bytes.ok()) << bytes.error();
  EXPECT_EQ((*bytes)[0]["a"], "x\xEF\xBF\xBD");
}
