// The protobuf encoding of the API: the schema covers every field knode's structs read,
// the wire reader turns protobuf's own encoding of a message into the JSON the API server
// writes for it, lists and watch frames read as their JSON counterparts do, and bad
// bytes are errors.
#include "knode/kube/protobuf.h"

#include <gtest/gtest.h>

#include <google/protobuf/descriptor.h>

#include <nlohmann/json.hpp>
#include <set>

#include <google/protobuf/util/json_util.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <mutex>
#include <thread>

#include "common/kube/fake_apiserver.h"
#include "common/kube/proto/core.pb.h"
#include "common/kube/proto/discovery.pb.h"
#include "common/kube/proto/meta.pb.h"
#include "common/kube/proto/options.pb.h"
#include "common/kube/proto/runtime.pb.h"
#include "knode/api/codec.h"
#include "knode/kube/client.h"
#include "knode/kube/informer.h"

namespace knode::kube {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using nlohmann::json;
namespace core = k8s::io::api::core::v1;
namespace discovery = k8s::io::api::discovery::v1;
namespace meta = k8s::io::apimachinery::pkg::apis::meta::v1;

// ---- the schema covers the structs ----

template <typename T>
struct is_vec : std::false_type {};
template <typename T>
struct is_vec<std::vector<T>> : std::true_type {
  using elem = T;
};
template <typename T>
struct is_opt : std::false_type {};
template <typename T>
struct is_opt<std::optional<T>> : std::true_type {
  using elem = T;
};
template <typename T>
struct is_opt<api::Box<T>> : std::true_type {
  using elem = T;
};
template <typename T>
struct is_strmap : std::false_type {};
template <typename T>
struct is_strmap<std::map<std::string, T>> : std::true_type {
  using elem = T;
};
template <typename T, typename = void>
struct has_fields : std::false_type {};
template <typename T>
struct has_fields<T, std::void_t<decltype(std::declval<T&>().fields(std::declval<int&>()))>> : std::true_type {};

// The field a JSON key names in `d`, looking through inline (embedded) fields as JSON does.
const FieldDescriptor* find_key(const Descriptor* d, const std::string& key) {
  if (const FieldDescriptor* f = d->FindFieldByName(key); f && !f->options().GetExtension(knode::kube::inline_)) {
    return f;
  }
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->options().GetExtension(knode::kube::inline_)) {
      if (const FieldDescriptor* g = find_key(f->message_type(), key)) return g;
    }
  }
  return nullptr;
}

struct Coverage {
  std::vector<std::string>* problems;

  template <typename T>
  void structure(const Descriptor* d, const std::string& path) {
    T value;
    Visitor v{this, d, path};
    value.fields(v);
  }

  // A value of C++ type M against the (non-repeated view of the) field f.
  template <typename M>
  void value(const FieldDescriptor* f, const std::string& path) {
    using FD = FieldDescriptor;
    auto problem = [&](const std::string& what) { problems->push_back(path + ": " + what + " (" + f->full_name() + ")"); };
    const std::string msg = f->type() == FD::TYPE_MESSAGE ? f->message_type()->full_name() : "";
    if constexpr (has_fields<M>::value) {
      if (msg.empty()) return problem("a struct in knode, a scalar in the schema");
      structure<M>(f->message_type(), path);
    } else if constexpr (std::is_same_v<M, std::string>) {
      // bytes are base64 strings in JSON, and in knode
      if (f->type() != FD::TYPE_STRING && f->type() != FD::TYPE_BYTES) problem("a string in knode");
    } else if constexpr (std::is_same_v<M, bool>) {
      if (f->type() != FD::TYPE_BOOL) problem("a bool in knode");
    } else if constexpr (std::is_same_v<M, int32_t> || std::is_same_v<M, int64_t>) {
      if (f->type() != FD::TYPE_INT32 && f->type() != FD::TYPE_INT64) problem("an integer in knode");
    } else if constexpr (std::is_same_v<M, api::Quantity>) {
      if (msg != "k8s.io.apimachinery.pkg.api.resource.Quantity") problem("a Quantity in knode");
    } else if constexpr (std::is_same_v<M, api::Time>) {
      if (msg != "k8s.io.apimachinery.pkg.apis.meta.v1.Time") problem("a Time in knode");
    } else if constexpr (std::is_same_v<M, api::IntOrString>) {
      if (msg != "k8s.io.apimachinery.pkg.util.intstr.IntOrString") problem("an IntOrString in knode");
    } else {
      static_assert(sizeof(M) == 0, "a member type this test does not know");
    }
  }

  template <typename M>
  void member(const FieldDescriptor* f, const std::string& path) {
    if constexpr (is_opt<M>::value) {
      member<typename is_opt<M>::elem>(f, path);
    } else if constexpr (is_vec<M>::value) {
      if (!f->is_repeated() || f->is_map()) {
        problems->push_back(path + ": a list in knode, not in the schema (" + f->full_name() + ")");
        return;
      }
      value<typename is_vec<M>::elem>(f, path + "[]");
    } else if constexpr (is_strmap<M>::value) {
      if (!f->is_map()) {
        problems->push_back(path + ": a map in knode, not in the schema (" + f->full_name() + ")");
        return;
      }
      value<typename is_strmap<M>::elem>(f->message_type()->map_value(), path + "{}");
    } else {
      if (f->is_repeated()) {
        problems->push_back(path + ": repeated in the schema, one value in knode (" + f->full_name() + ")");
        return;
      }
      value<M>(f, path);
    }
  }

  struct Visitor {
    Coverage* c;
    const Descriptor* d;
    std::string path;
    template <typename M>
    void operator()(const char* key, M&, api::Always = {}) {
      const std::string p = path + "." + key;
      const FieldDescriptor* f = find_key(d, key);
      if (!f) {
        c->problems->push_back(p + ": no field " + key + " in " + d->full_name());
        return;
      }
      c->member<M>(f, p);
    }
  };
};

TEST(ProtobufSchema, CoversEveryFieldKnodeReadsOfEveryKindItWatches) {
  std::vector<std::string> problems;
  Coverage c{&problems};
  c.structure<api::Pod>(core::Pod::descriptor(), "Pod");
  c.structure<api::Service>(core::Service::descriptor(), "Service");
  c.structure<api::EndpointSlice>(discovery::EndpointSlice::descriptor(), "EndpointSlice");
  c.structure<api::Node>(core::Node::descriptor(), "Node");
  c.structure<api::ConfigMap>(core::ConfigMap::descriptor(), "ConfigMap");
  c.structure<api::Secret>(core::Secret::descriptor(), "Secret");
  // Keys knode's structs share between two Go types where upstream has the field in only
  // one of them: JSON never carries these either.
  const std::set<std::string> upstream_lacks = {
      "Pod.spec.containers[].targetContainerName: no field targetContainerName in k8s.io.api.core.v1.Container",
      "Pod.spec.initContainers[].targetContainerName: no field targetContainerName in k8s.io.api.core.v1.Container",
      "Pod.spec.volumes[].projected.sources[].downwardAPI.defaultMode: no field defaultMode in "
      "k8s.io.api.core.v1.DownwardAPIProjection",
  };
  for (const auto& p : problems) {
    if (!upstream_lacks.count(p)) ADD_FAILURE() << p;
  }
  EXPECT_GT(problems.size(), 0u) << "the known gaps are reported (the walk reached them)";
}

TEST(ProtobufSchema, KnowsWhichKinds) {
  EXPECT_TRUE(protobuf::supports(api::Kind::kPod));
  EXPECT_TRUE(protobuf::supports(api::Kind::kService));
  EXPECT_TRUE(protobuf::supports(api::Kind::kEndpointSlice));
  EXPECT_TRUE(protobuf::supports(api::Kind::kNode));
  EXPECT_TRUE(protobuf::supports(api::Kind::kConfigMap));
  EXPECT_TRUE(protobuf::supports(api::Kind::kSecret));
  EXPECT_FALSE(protobuf::supports(api::Kind::kEndpoints));
  EXPECT_FALSE(protobuf::supports(api::Kind::kNamespace));
}

// ---- messages as the API server's JSON ----

std::string envelope(const std::string& api_version, const std::string& kind, const std::string& raw) {
  k8s::io::apimachinery::pkg::runtime::Unknown u;
  u.mutable_typemeta()->set_apiversion(api_version);
  u.mutable_typemeta()->set_kind(kind);
  u.set_raw(raw);
  return std::string("k8s\0", 4) + u.SerializeAsString();
}

core::Pod sample_pod() {
  core::Pod p;
  auto* m = p.mutable_metadata();
  m->set_name("kubia-1");
  m->set_namespace_("default");
  m->set_uid("u-1");
  m->set_resourceversion("42");
  m->mutable_creationtimestamp()->set_seconds(1795000000);  // date -u -d @1795000000
  (*m->mutable_labels())["app"] = "kubia";
  auto* spec = p.mutable_spec();
  spec->set_nodename("n1");
  spec->set_terminationgraceperiodseconds(30);
  auto* c = spec->add_containers();
  c->set_name("kubia");
  c->set_image("kubia:1");
  c->add_command("/bin/kubia");
  c->add_command("--port=8080");
  (*c->mutable_resources()->mutable_limits())["memory"].set_string("64Mi");
  auto* port = c->add_ports();
  port->set_containerport(8080);
  port->set_protocol("TCP");
  auto* probe = c->mutable_readinessprobe();
  probe->mutable_handler()->mutable_httpget()->set_path("/ready");
  probe->mutable_handler()->mutable_httpget()->mutable_port()->set_type(1);
  probe->mutable_handler()->mutable_httpget()->mutable_port()->set_strval("http");
  probe->set_periodseconds(5);
  auto* env = c->add_env();
  env->set_name("CONFIG");
  env->mutable_valuefrom()->mutable_configmapkeyref()->mutable_localobjectreference()->set_name("cfg");
  env->mutable_valuefrom()->mutable_configmapkeyref()->set_key("k");
  auto* vol = spec->add_volumes();
  vol->set_name("data");
  vol->mutable_volumesource()->mutable_emptydir()->set_medium("Memory");
  auto* st = p.mutable_status();
  st->set_phase("Running");
  st->set_podip("10.244.1.5");
  auto* cs = st->add_containerstatuses();
  cs->set_name("kubia");
  cs->set_ready(true);
  cs->set_restartcount(2);
  cs->mutable_state()->mutable_running()->mutable_startedat()->set_seconds(1795000100);
  cs->mutable_laststate()->mutable_terminated()->set_exitcode(-1);
  return p;
}

TEST(ProtobufJson, APodReadsAsTheApiServersJson) {
  auto j = protobuf::object_json(sample_pod().SerializeAsString(), api::Kind::kPod);
  ASSERT_TRUE(j.ok()) << j.status().message();
  const json& o = *j;
  EXPECT_EQ(o["kind"], "Pod");
  EXPECT_EQ(o["apiVersion"], "v1");
  EXPECT_EQ(o["metadata"]["name"], "kubia-1");
  EXPECT_EQ(o["metadata"]["namespace"], "default");
  EXPECT_EQ(o["metadata"]["creationTimestamp"], "2026-11-18T11:06:40Z");
  EXPECT_EQ(o["metadata"]["labels"], json({{"app", "kubia"}}));
  const json& c = o["spec"]["containers"][0];
  EXPECT_EQ(c["command"], json({"/bin/kubia", "--port=8080"}));
  EXPECT_EQ(c["resources"]["limits"]["memory"], "64Mi");  // Quantity
  EXPECT_EQ(c["ports"][0]["containerPort"], 8080);
  EXPECT_EQ(c["readinessProbe"]["httpGet"]["port"], "http");  // ProbeHandler inline; IntOrString
  EXPECT_EQ(c["readinessProbe"]["periodSeconds"], 5);
  EXPECT_EQ(c["env"][0]["valueFrom"]["configMapKeyRef"], json({{"name", "cfg"}, {"key", "k"}}));  // inline name
  EXPECT_EQ(o["spec"]["volumes"][0], json({{"name", "data"}, {"emptyDir", {{"medium", "Memory"}}}}));  // VolumeSource inline
  EXPECT_EQ(o["spec"]["terminationGracePeriodSeconds"], 30);
  EXPECT_EQ(o["status"]["containerStatuses"][0]["state"]["running"]["startedAt"], "2026-11-18T11:08:20Z");
  EXPECT_EQ(o["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"], -1);
  EXPECT_EQ(o["status"]["containerStatuses"][0]["restartCount"], 2);

  // And the typed object equals the one its JSON spelling decodes to.
  auto from_proto = api::decode_object(o, "test");
  ASSERT_TRUE(from_proto.ok()) << from_proto.status().message();
  const api::Pod& pod = api::get<api::Pod>(*from_proto);
  EXPECT_EQ(pod.spec.containers[0].readiness_probe->http_get->port.str(), "http");
  EXPECT_EQ(pod.spec.containers[0].env[0].value_from->config_map_key_ref->name, "cfg");
  EXPECT_EQ(pod.status.container_statuses[0].restart_count, 2);
}

TEST(ProtobufJson, AZeroTimeIsAbsentAndIntOrStringNumbersStayNumbers) {
  core::Service s;
  s.mutable_metadata()->set_name("kubia");
  s.mutable_metadata()->mutable_creationtimestamp();  // Go writes the zero time as an empty message
  auto* port = s.mutable_spec()->add_ports();
  port->set_port(80);
  port->mutable_targetport()->set_intval(8080);
  s.mutable_spec()->add_clusterips("10.96.0.10");
  s.mutable_spec()->add_clusterips("fd00::10");
  auto j = protobuf::object_json(s.SerializeAsString(), api::Kind::kService);
  ASSERT_TRUE(j.ok()) << j.status().message();
  EXPECT_FALSE((*j)["metadata"].contains("creationTimestamp"));
  EXPECT_EQ((*j)["spec"]["ports"][0]["targetPort"], 8080);
  EXPECT_EQ((*j)["spec"]["clusterIPs"], json({"10.96.0.10", "fd00::10"}));
}

TEST(ProtobufJson, EndpointSliceConditionsKeepTheirPresence) {
  discovery::EndpointSlice es;
  es.mutable_metadata()->set_name("kubia-abc");
  es.set_addresstype("IPv4");
  auto* e = es.add_endpoints();
  e->add_addresses("10.244.1.5");
  e->mutable_conditions()->set_ready(false);  // set, and false: not the same as absent
  e->set_nodename("n1");
  auto* e2 = es.add_endpoints();
  e2->add_addresses("10.244.2.5");
  auto* p = es.add_ports();
  p->set_name("http");
  p->set_port(8080);
  auto j = protobuf::object_json(es.SerializeAsString(), api::Kind::kEndpointSlice);
  ASSERT_TRUE(j.ok()) << j.status().message();
  EXPECT_EQ((*j)["apiVersion"], "discovery.k8s.io/v1");
  EXPECT_EQ((*j)["endpoints"][0]["conditions"], json({{"ready", false}}));
  EXPECT_FALSE((*j)["endpoints"][1].contains("conditions"));
  auto o = api::decode_object(*j, "test");
  ASSERT_TRUE(o.ok()) << o.status().message();
  const auto& slice = api::get<api::EndpointSlice>(*o);
  ASSERT_EQ(slice.endpoints.size(), 2u);
  EXPECT_EQ(slice.endpoints[0].conditions.ready, std::optional<bool>(false));
  EXPECT_EQ(slice.endpoints[1].conditions.ready, std::nullopt);
}

TEST(ProtobufJson, TheEpochIsATimeAnEmptyTimeIsNone) {
  core::Service s;
  s.mutable_metadata()->set_name("epoch");
  auto* t = s.mutable_metadata()->mutable_creationtimestamp();
  t->set_seconds(0);  // written, as Go writes the epoch: both fields present
  t->set_nanos(0);
  auto j = protobuf::object_json(s.SerializeAsString(), api::Kind::kService);
  ASSERT_TRUE(j.ok()) << j.status().message();
  // proto2 optional fields set to 0 are still written: the message is not empty.
  EXPECT_EQ((*j)["metadata"]["creationTimestamp"], "1970-01-01T00:00:00Z");
  // Time drops its nanoseconds, as Go's JSON does (even ones out of range).
  t->set_seconds(1795000000);
  t->set_nanos(2000000000);
  j = protobuf::object_json(s.SerializeAsString(), api::Kind::kService);
  ASSERT_TRUE(j.ok()) << j.status().message();
  EXPECT_EQ((*j)["metadata"]["creationTimestamp"], "2026-11-18T11:06:40Z");
}

TEST(ProtobufJson, BytesThatAreNotUtf8ReadAsGoWritesThemInJson) {
  core::Service s;
  s.mutable_metadata()->set_name("bad-utf8");
  (*s.mutable_metadata()->mutable_annotations())["note"] = std::string("a\xff" "b\xc3", 4);
  auto j = protobuf::object_json(s.SerializeAsString(), api::Kind::kService);
  ASSERT_TRUE(j.ok()) << j.status().message();
  EXPECT_EQ((*j)["metadata"]["annotations"]["note"], "a\xEF\xBF\xBD" "b\xEF\xBF\xBD");
  EXPECT_NO_THROW((void)j->dump());
}

TEST(ProtobufJson, SecretBytesAreBase64AsInJson) {
  core::Secret sec;
  sec.mutable_metadata()->set_name("s");
  sec.mutable_metadata()->set_namespace_("default");
  (*sec.mutable_data())["key"] = std::string("\x00\xffhi", 4);
  sec.set_type("Opaque");
  auto j = protobuf::object_json(sec.SerializeAsString(), api::Kind::kSecret);
  ASSERT_TRUE(j.ok()) << j.status().message();
  EXPECT_EQ((*j)["data"]["key"], "AP9oaQ==");
  auto o = api::decode_object(*j, "test");
  ASSERT_TRUE(o.ok()) << o.status().message();
  auto from_json = api::decode_object(json{{"apiVersion", "v1"}, {"kind", "Secret"},
                                           {"metadata", {{"name", "s"}, {"namespace", "default"}}},
                                           {"type", "Opaque"}, {"data", {{"key", "AP9oaQ=="}}}}, "test");
  ASSERT_TRUE(from_json.ok()) << from_json.status().message();
  EXPECT_EQ(*o, *from_json);
}

TEST(ProtobufJson, AMessageFieldSeenTwiceMerges) {
  core::Service a, b;
  a.mutable_spec()->set_clusterip("10.96.0.10");
  b.mutable_spec()->set_type("NodePort");
  auto j = protobuf::object_json(a.SerializeAsString() + b.SerializeAsString(), api::Kind::kService);
  ASSERT_TRUE(j.ok()) << j.status().message();
  EXPECT_EQ((*j)["spec"]["clusterIP"], "10.96.0.10");
  EXPECT_EQ((*j)["spec"]["type"], "NodePort");
}

TEST(ProtobufJson, PackedRepeatedScalarsRead) {
  // Kubernetes writes repeated scalars unpacked (proto2); a packed field reads the same.
  core::PodSecurityContext sc;
  sc.add_supplementalgroups(1000);
  sc.add_supplementalgroups(2000);
  std::string unpacked = sc.SerializeAsString();
  // supplementalGroups as one packed run: tag (field, wire type 2), length, varints.
  const int number = core::PodSecurityContext::descriptor()->FindFieldByName("supplementalGroups")->number();
  std::string varints = "\xe8\x07\xd0\x0f";  // 1000, 2000
  std::string packed;
  packed += static_cast<char>(number << 3 | 2);
  packed += static_cast<char>(varints.size());
  packed += varints;
  auto a = protobuf::message_json(unpacked, "k8s.io.api.core.v1.PodSecurityContext");
  auto b = protobuf::message_json(packed, "k8s.io.api.core.v1.PodSecurityContext");
  ASSERT_TRUE(a.ok()) << a.status().message();
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ((*a)["supplementalGroups"], json({1000, 2000}));
  EXPECT_EQ(*a, *b);
}

TEST(ProtobufJson, BadBytesAreErrorsNotCrashes) {
  const std::string good = sample_pod().SerializeAsString();
  // Every prefix of a valid message: either it reads (cut at a field boundary) or it is
  // an error; never a crash.
  int errors = 0;
  for (size_t n = 0; n < good.size(); ++n) {
    auto j = protobuf::object_json(good.substr(0, n), api::Kind::kPod);
    if (!j.ok()) ++errors;
  }
  EXPECT_GT(errors, 0);
  EXPECT_FALSE(protobuf::object_json(std::string("\x0a\x7f", 2), api::Kind::kPod).ok());  // length past the end
  // Field 127, unknown to Pod, so the reader skips it by its wire type: a varint of 11
  // bytes, a group (wire type 3), a fixed64 cut short. Each an error.
  EXPECT_FALSE(protobuf::object_json(std::string("\xf8\x07\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 13),
                                     api::Kind::kPod).ok());
  EXPECT_FALSE(protobuf::object_json(std::string("\xfb\x07", 2), api::Kind::kPod).ok());
  EXPECT_FALSE(protobuf::object_json(std::string("\xf9\x07\x01\x02", 4), api::Kind::kPod).ok());
  // The same field skipped when well formed: the rest of the Pod reads.
  EXPECT_TRUE(protobuf::object_json(std::string("\xf8\x07\x05", 3) + good, api::Kind::kPod).ok());
  // A time knode's Time cannot hold (past 2262) is an error, not an overflow.
  core::Service far;
  far.mutable_metadata()->set_name("far");
  far.mutable_metadata()->mutable_creationtimestamp()->set_seconds(253402300799);
  EXPECT_FALSE(protobuf::object_json(far.SerializeAsString(), api::Kind::kService).ok());
  // metadata (field 1) written as a varint: the wrong wire type for a message.
  EXPECT_FALSE(protobuf::object_json(std::string("\x08\x01", 2), api::Kind::kPod).ok());
}

TEST(ProtobufEnvelope, ReadsTheMagicAndTheUnknown) {
  const std::string body = envelope("v1", "PodList", "abc");
  auto e = protobuf::unwrap(body);
  ASSERT_TRUE(e.ok()) << e.status().message();
  EXPECT_EQ(e->api_version, "v1");
  EXPECT_EQ(e->kind, "PodList");
  EXPECT_EQ(e->raw, "abc");
  EXPECT_FALSE(protobuf::unwrap("{\"kind\":\"PodList\"}").ok());
  EXPECT_FALSE(protobuf::unwrap("").ok());
  k8s::io::apimachinery::pkg::runtime::Unknown gz;
  gz.set_raw("x");
  gz.set_contentencoding("gzip");
  EXPECT_FALSE(protobuf::unwrap(std::string("k8s\0", 4) + gz.SerializeAsString()).ok());
  EXPECT_TRUE(protobuf::is_protobuf("application/vnd.kubernetes.protobuf"));
  EXPECT_TRUE(protobuf::is_protobuf("application/vnd.kubernetes.protobuf;stream=watch"));
  EXPECT_FALSE(protobuf::is_protobuf("application/vnd.kubernetes.protobufx"));
  EXPECT_FALSE(protobuf::is_protobuf("application/json"));
}

// ---- lists and watch frames, against their JSON counterparts ----

TEST(ProtobufList, APageGivesItsVersionTokenAndItemsAsSingleObjectsRead) {
  core::PodList list;
  list.mutable_metadata()->set_resourceversion("77");
  list.mutable_metadata()->set_continue_("next-page");
  *list.add_items() = sample_pod();
  core::Pod second = sample_pod();
  second.mutable_metadata()->set_name("kubia-2");
  *list.add_items() = second;
  core::Pod bad = sample_pod();
  bad.mutable_metadata()->set_name("");  // no name: the codec refuses it
  *list.add_items() = bad;
  auto page = parse_list_page_protobuf(envelope("v1", "PodList", list.SerializeAsString()), api::Kind::kPod);
  ASSERT_TRUE(page.ok()) << page.status().message();
  EXPECT_EQ(page->resource_version, "77");
  EXPECT_EQ(page->continue_token, "next-page");
  ASSERT_EQ(page->items.size(), 2u);
  EXPECT_EQ(page->bad.size(), 1u);
  EXPECT_EQ(api::meta_of(*page->items[1]).name, "kubia-2");

  // The items are the objects they are alone: the same JSON (the reader's own; that it is
  // the API server's JSON is APodReadsAsTheApiServersJson's and the cluster tier's to say)
  // through the JSON list path decodes equal.
  json items = json::array();
  for (const auto& p : {sample_pod(), second}) {
    auto j = protobuf::object_json(p.SerializeAsString(), api::Kind::kPod);
    ASSERT_TRUE(j.ok());
    items.push_back(*j);
  }
  json body = {{"kind", "PodList"}, {"apiVersion", "v1"}, {"metadata", {{"resourceVersion", "77"}}}, {"items", items}};
  auto jpage = parse_list_page(body.dump(), api::Kind::kPod);
  ASSERT_TRUE(jpage.ok());
  ASSERT_EQ(jpage->items.size(), 2u);
  EXPECT_EQ(*jpage->items[0], *page->items[0]);
  EXPECT_EQ(*jpage->items[1], *page->items[1]);

  // A list of another kind is refused.
  EXPECT_FALSE(parse_list_page_protobuf(envelope("v1", "ServiceList", list.SerializeAsString()), api::Kind::kPod).ok());
}

std::string watch_frame(const std::string& type, const std::string& object_body) {
  meta::WatchEvent ev;
  ev.set_type(type);
  ev.mutable_object()->set_raw(object_body);
  return ev.SerializeAsString();
}

TEST(ProtobufWatch, FramesReadAsWatchLines) {
  core::Service s;
  s.mutable_metadata()->set_name("kubia");
  s.mutable_metadata()->set_namespace_("default");
  s.mutable_metadata()->set_resourceversion("90");
  s.mutable_spec()->set_clusterip("10.96.0.10");
  s.mutable_spec()->add_ports()->set_port(80);

  auto w = parse_watch_frame(watch_frame("MODIFIED", envelope("v1", "Service", s.SerializeAsString())), api::Kind::kService);
  ASSERT_EQ(w.type, WatchLine::Type::kEvent) << w.message;
  EXPECT_EQ(w.event, EventType::kModified);
  EXPECT_EQ(w.resource_version, "90");
  EXPECT_EQ(api::get<api::Service>(*w.object).spec.cluster_ip, "10.96.0.10");

  core::Service mark;
  mark.mutable_metadata()->set_resourceversion("95");
  w = parse_watch_frame(watch_frame("BOOKMARK", envelope("v1", "Service", mark.SerializeAsString())), api::Kind::kService);
  EXPECT_EQ(w.type, WatchLine::Type::kBookmark);
  EXPECT_EQ(w.resource_version, "95");

  meta::Status gone;
  gone.set_code(410);
  gone.set_message("too old resource version: 5 (90)");
  w = parse_watch_frame(watch_frame("ERROR", envelope("v1", "Status", gone.SerializeAsString())), api::Kind::kService);
  EXPECT_EQ(w.type, WatchLine::Type::kError);
  EXPECT_EQ(w.code, 410);
  EXPECT_EQ(w.message, "too old resource version: 5 (90)");

  // An object that does not read: a bad object, and the informer still moves past its
  // version (read from the bytes as far as they go).
  std::string cut = s.SerializeAsString();
  cut += "\x12\x7f";  // spec (2), 127 bytes that are not there
  w = parse_watch_frame(watch_frame("ADDED", envelope("v1", "Service", cut)), api::Kind::kService);
  EXPECT_EQ(w.type, WatchLine::Type::kBadObject);
  EXPECT_EQ(w.resource_version, "90");
  // An object of another kind is not read as this one.
  w = parse_watch_frame(watch_frame("ADDED", envelope("v1", "Pod", s.SerializeAsString())), api::Kind::kService);
  EXPECT_EQ(w.type, WatchLine::Type::kBadObject);
  EXPECT_NE(w.message.find("got a Pod"), std::string::npos) << w.message;
  w = parse_watch_frame(std::string("\x0a\x05" "ADD"), api::Kind::kService);
  EXPECT_EQ(w.type, WatchLine::Type::kMalformed);
}

TEST(ProtobufWatch, FramesSplitWhateverThePieces) {
  std::vector<std::string> frames = {"a", std::string(300, 'b'), "", "cc"};
  std::string stream;
  for (const auto& f : frames) {
    const auto n = static_cast<uint32_t>(f.size());
    stream += static_cast<char>(n >> 24);
    stream += static_cast<char>(n >> 16);
    stream += static_cast<char>(n >> 8);
    stream += static_cast<char>(n);
    stream += f;
  }
  for (size_t piece : {1, 3, 7, 1000}) {
    FrameSplitter split;
    std::vector<std::string> got;
    for (size_t at = 0; at < stream.size(); at += piece) {
      auto fed = split.feed(std::string_view(stream).substr(at, piece), [&](std::string_view f) {
        got.emplace_back(f);
        return true;
      });
      ASSERT_EQ(fed, FrameSplitter::Fed::kMore);
    }
    EXPECT_EQ(got, frames) << "piece " << piece;
    EXPECT_EQ(split.pending(), 0u);
  }
  FrameSplitter small(16);
  EXPECT_EQ(small.feed(std::string("\0\0\0\x20", 4), [](std::string_view) { return true; }), FrameSplitter::Fed::kTooLong);
  FrameSplitter stop;
  int calls = 0;
  EXPECT_EQ(stop.feed(stream, [&](std::string_view) { return ++calls < 2; }), FrameSplitter::Fed::kStopped);
  EXPECT_EQ(calls, 2);
}

TEST(ProtobufStatus, ErrorBodiesGiveTheirMessage) {
  meta::Status st;
  st.set_code(403);
  st.set_message("pods is forbidden: User \"x\" cannot list resource \"pods\"");
  Response r{403, "application/vnd.kubernetes.protobuf", envelope("v1", "Status", st.SerializeAsString())};
  EXPECT_EQ(status_message(r), st.message());
  // Bytes that are no Status: the HTTP status, not binary in a log line.
  Response garbage{500, "application/vnd.kubernetes.protobuf", std::string("k8s\0\x01\x02", 6)};
  EXPECT_EQ(status_message(garbage), "HTTP 500");
}

// ---- an informer against a server that answers protobuf ----

// JSON objects to protobuf through protobuf's own JSON reader (the test's Services use
// only fields whose JSON is protobuf's JSON mapping too).
template <typename M>
M from_json(const json& j) {
  M m;
  google::protobuf::util::JsonParseOptions o;
  o.ignore_unknown_fields = true;  // kind, apiVersion
  auto st = google::protobuf::util::JsonStringToMessage(j.dump(), &m, o);
  EXPECT_TRUE(st.ok()) << st.ToString() << " " << j.dump();
  return m;
}

std::string encode_list(const json& list) {
  core::ServiceList l;
  l.mutable_metadata()->set_resourceversion(list["metadata"].value("resourceVersion", ""));
  l.mutable_metadata()->set_continue_(list["metadata"].value("continue", ""));
  for (const auto& item : list["items"]) *l.add_items() = from_json<core::Service>(item);
  return envelope("v1", "ServiceList", l.SerializeAsString());
}

std::string encode_event(const json& ev) {
  const json& o = ev["object"];
  std::string object = o.value("kind", "") == "Status"
                           ? envelope("v1", "Status", from_json<meta::Status>(o).SerializeAsString())
                           : envelope("v1", "Service", from_json<core::Service>(o).SerializeAsString());
  return watch_frame(ev["type"], object);
}

json service_json(const std::string& name, int rv, const std::string& ip = "10.96.0.10") {
  return json{{"kind", "Service"},
              {"apiVersion", "v1"},
              {"metadata", {{"name", name}, {"namespace", "default"}, {"resourceVersion", std::to_string(rv)}}},
              {"spec", {{"clusterIP", ip}, {"ports", json::array({{{"port", 80}, {"protocol", "TCP"}}})}}}};
}

TEST(ProtobufInformer, ListsAndWatchesInProtobufAndRelistsAfter410) {
  testing::FakeApiServer server;
  server.answer_protobuf(encode_list, encode_event);
  std::vector<json> objs;
  for (int i = 0; i < 5; ++i) objs.push_back(service_json("s" + std::to_string(i), 10 + i));
  server.set_objects(objs, 20);
  KubeConfig c;
  c.server = server.url();
  c.source = "test";
  auto client = RestClient::create(c, ClientOptions{.qps = 0});
  ASSERT_TRUE(client.ok()) << client.status().message();

  std::mutex mu;
  std::vector<Event> got;
  InformerOptions options;
  options.page_size = 2;
  options.backoff_initial = std::chrono::milliseconds(20);
  Informer inf(**client, {api::Kind::kService}, [&](std::vector<Event> b, bool) {
    std::lock_guard lock(mu);
    for (auto& e : b) got.push_back(std::move(e));
  }, options);
  auto count = [&] {
    std::lock_guard lock(mu);
    return got.size();
  };
  auto wait_for = [&](size_t n) {
    for (int i = 0; i < 500 && count() < n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return count() >= n;
  };
  inf.start();
  ASSERT_TRUE(wait_for(5));
  ASSERT_TRUE(server.wait_watching());
  EXPECT_EQ(server.count("limit=2"), 3);  // 5 in pages of 2: the continue token came through

  server.push({{"type", "MODIFIED"}, {"object", service_json("s1", 21, "10.96.0.99")}}, 21);
  server.push({{"type", "DELETED"}, {"object", service_json("s2", 22)}}, 22);
  ASSERT_TRUE(wait_for(7));
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(got[5].type, EventType::kModified);
    EXPECT_EQ(api::get<api::Service>(*got[5].object).spec.cluster_ip, "10.96.0.99");
    EXPECT_EQ(got[6].type, EventType::kDeleted);
    EXPECT_EQ(api::meta_of(*got[6].object).name, "s2");
  }
  EXPECT_EQ(inf.resource_version(), "22");

  // The watch dropped and its version expired: a protobuf ERROR 410, then a relist that
  // changes only what changed (s3's new address).
  objs = {service_json("s0", 10), service_json("s1", 21, "10.96.0.99"), service_json("s3", 30, "10.96.0.33"),
          service_json("s4", 14)};
  server.set_objects(objs, 30);
  server.expire_below(30);
  server.drop_watches();
  ASSERT_TRUE(wait_for(8));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // nothing more should come
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(got.size(), 8u);
    EXPECT_EQ(got[7].type, EventType::kModified);
    EXPECT_EQ(api::meta_of(*got[7].object).name, "s3");
  }
  EXPECT_EQ(inf.stats().gone, 1u);
  EXPECT_EQ(inf.stats().bad_objects, 0u);
  inf.stop();
  EXPECT_GE(server.protobuf_answers(), 6);  // 3 + 2 pages, 2 watches at least
}

}  // namespace
}  // namespace knode::kube
