#include "pod/env.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "knode/api/base64.h"
#include "knode/net.h"
#include "knode/ascii.h"
#include "pod/resources.h"

namespace knode::kubelet {
namespace {

constexpr char kMasterServiceNamespace[] = "default";
constexpr char kMasterServiceName[] = "kubernetes";

// Variables in definition order: the first definition fixes a name's place, a later one
// replaces its value, so no name appears twice.
class VarList {
 public:
  void set(const std::string& name, std::string value) {
    auto it = index_.find(name);
    if (it != index_.end()) {
      vars_[it->second].value = std::move(value);
      return;
    }
    index_.emplace(name, vars_.size());
    vars_.push_back({name, std::move(value)});
  }
  const std::string* find(std::string_view name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &vars_[it->second].value;
  }
  const std::vector<runtime::KeyValue>& vars() const { return vars_; }

 private:
  std::vector<runtime::KeyValue> vars_;
  std::map<std::string, size_t, std::less<>> index_;
};

std::string env_name_of(std::string_view s) {
  std::string out(s);
  for (char& ch : out) ch = ch == '-' ? '_' : static_cast<char>(std::toupper(ch));
  return out;
}

std::string join_host_port(const std::string& host, int32_t port) {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

bool cluster_ip_set(const api::Service& s) {
  return !s.spec.cluster_ip.empty() && s.spec.cluster_ip != "None";
}

// Docker's link variables, which the first port also gets without its number.
void append_link_variables(const api::Service& s, const std::string& prefix,
                           std::vector<runtime::KeyValue>& out) {
  const std::string& ip = s.spec.cluster_ip;
  for (size_t i = 0; i < s.spec.ports.size(); ++i) {
    const auto& sp = s.spec.ports[i];
    std::string proto = sp.protocol.empty() ? "TCP" : sp.protocol;
    std::string url = ascii_lower(proto) + "://" + join_host_port(ip, sp.port);
    if (i == 0) out.push_back({prefix + "_PORT", url});
    std::string port_prefix =
        prefix + "_PORT_" + std::to_string(sp.port) + "_" + env_name_of(proto);
    out.push_back({port_prefix, url});
    out.push_back({port_prefix + "_PROTO", ascii_lower(proto)});
    out.push_back({port_prefix + "_PORT", std::to_string(sp.port)});
    out.push_back({port_prefix + "_ADDR", ip});
  }
}

void append_service_variables(const api::Service& s, std::vector<runtime::KeyValue>& out) {
  std::string prefix = env_name_of(s.metadata.name);
  out.push_back({prefix + "_SERVICE_HOST", s.spec.cluster_ip});
  std::string port_name = prefix + "_SERVICE_PORT";
  out.push_back({port_name, std::to_string(s.spec.ports.front().port)});
  for (const auto& sp : s.spec.ports) {
    if (!sp.name.empty())
      out.push_back({port_name + "_" + env_name_of(sp.name), std::to_string(sp.port)});
  }
  append_link_variables(s, prefix, out);
}

std::string go_quote(const std::string& s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (unsigned char ch : s) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += static_cast<char>(ch);
    } else if (ch == '\n') {
      out += "\\n";
    } else if (ch == '\t') {
      out += "\\t";
    } else if (ch < 0x20 || ch == 0x7f) {
      out += "\\x";
      out += kHex[ch >> 4];
      out += kHex[ch & 15];
    } else {
      out += static_cast<char>(ch);
    }
  }
  return out + "\"";
}

// The whole map as the downward API prints it: sorted `key="value"` lines.
std::string format_map(const api::StringMap& m) {
  std::string out;
  for (const auto& [k, v] : m) out += k + "=" + go_quote(v) + "\n";
  if (!out.empty()) out.pop_back();
  return out;
}

// "metadata.labels['app']" -> ("metadata.labels", "app").
bool split_subscript(const std::string& path, std::string* base, std::string* key) {
  if (path.size() < 2 || path.compare(path.size() - 2, 2, "']") != 0) return false;
  std::string s = path.substr(0, path.size() - 2);
  auto open = s.find("['");
  if (open == std::string::npos || open == 0) return false;
  *base = s.substr(0, open);
  *key = s.substr(open + 2);
  return true;
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

Result<std::string> host_ip_value(const EnvLookup& lookup, bool all) {
  auto ips = lookup.host_ips();
  if (ips.empty()) return Status::Error("host IP unknown; known addresses: []");
  return all ? join(ips, ",") : ips.front();
}

Result<std::string> metadata_value(const api::ObjectMeta& m, const std::string& path) {
  std::string base, key;
  if (split_subscript(path, &base, &key)) {
    if (base == "metadata.annotations")
      return m.annotations.count(key) ? m.annotations.at(key) : "";
    if (base == "metadata.labels") return m.labels.count(key) ? m.labels.at(key) : "";
    return Status::Error("field label does not support subscript: " + path);
  }
  if (path == "metadata.annotations") return format_map(m.annotations);
  if (path == "metadata.labels") return format_map(m.labels);
  if (path == "metadata.name") return m.name;
  if (path == "metadata.namespace") return m.namespace_;
  if (path == "metadata.uid") return m.uid;
  return Status::Error("unsupported fieldPath: " + path);
}

// podFieldSelectorRuntimeValue; pod_ips are already in reporting order.
Result<std::string> field_ref_value(const api::ObjectFieldSelector& fs, const api::Pod& pod,
                                    const std::vector<std::string>& pod_ips,
                                    const EnvLookup& lookup) {
  if (!fs.api_version.empty() && fs.api_version != "v1") {
    return Status::Error("unsupported pod version: " + fs.api_version);
  }
  std::string path = fs.field_path == "spec.host" ? "spec.nodeName" : fs.field_path;
  if (path == "spec.nodeName") return pod.spec.node_name;
  if (path == "spec.serviceAccountName") return pod.spec.service_account_name;
  if (path == "status.hostIP") return host_ip_value(lookup, false);
  if (path == "status.hostIPs") return host_ip_value(lookup, true);
  if (path == "status.podIP") return pod_ips.empty() ? std::string() : pod_ips.front();
  if (path == "status.podIPs") return join(pod_ips, ",");
  return metadata_value(pod.metadata, path);
}

const api::Container* find_container(const api::Pod& pod, const std::string& name) {
  for (const auto* list : {&pod.spec.containers, &pod.spec.init_containers}) {
    for (const auto& c : *list) {
      if (c.name == name) return &c;
    }
  }
  return nullptr;
}

int64_t ceil_div(int64_t a, int64_t b) { return a / b + (a % b != 0 && a > 0 ? 1 : 0); }

// A limit the container does not set is the node's allocatable, as the downward API
// reports it (MergeContainerResourceLimits).
api::Quantity limit_or_allocatable(const api::Container& c, const std::string& resource,
                                   const api::ResourceList& allocatable) {
  auto it = c.resources.limits.find(resource);
  if (it != c.resources.limits.end() && it->second.milli_value() != 0) return it->second;
  bool mergeable = resource == "cpu" || resource == "memory" || resource == "ephemeral-storage";
  auto a = allocatable.find(resource);
  if (mergeable && a != allocatable.end()) return a->second;
  return it != c.resources.limits.end() ? it->second : api::Quantity();
}

Result<std::string> resource_ref_value(const api::ResourceFieldSelector& fs, const api::Pod& pod,
                                       const api::Container& self,
                                       const api::ResourceList& allocatable) {
  const api::Container* c = &self;
  if (!fs.container_name.empty()) c = find_container(pod, fs.container_name);
  if (c == nullptr) return Status::Error("container " + fs.container_name + " not found");
  auto dot = fs.resource.find('.');
  std::string kind = fs.resource.substr(0, dot == std::string::npos ? 0 : dot);
  std::string name = dot == std::string::npos ? "" : fs.resource.substr(dot + 1);
  bool known = name == "cpu" || name == "memory" || name == "ephemeral-storage" ||
               name.rfind("hugepages-", 0) == 0;
  if ((kind != "limits" && kind != "requests") || !known) {
    return Status::Error("unsupported container resource : " + fs.resource);
  }
  api::Quantity q;
  if (kind == "limits") {
    q = limit_or_allocatable(*c, name, allocatable);
  } else {
    auto requests = effective_requests(*c);
    if (requests.count(name)) q = requests.at(name);
  }
  api::Quantity divisor = fs.divisor.milli_value() == 0 ? *api::Quantity::Parse("1") : fs.divisor;
  if (name == "cpu") return std::to_string(ceil_div(q.milli_value(), divisor.milli_value()));
  if (divisor.value() == 0) return Status::Error("divisor " + divisor.str() + " is below one unit");
  return std::to_string(ceil_div(q.value(), divisor.value()));
}

class EnvBuilder {
 public:
  EnvBuilder(const api::Pod& pod, const api::Container& c, const std::vector<std::string>& pod_ips,
             const EnvLookup& lookup)
      : pod_(pod), c_(c), lookup_(lookup), pod_ips_(sort_pod_ips(pod_ips, lookup.host_ips())) {}

  Result<Environment> build() {
    bool links = pod_.spec.enable_service_links.value_or(true);
    for (auto& kv : service_link_variables(pod_.metadata.namespace_, links, lookup_)) {
      services_.emplace(kv.key, kv.value);
      service_order_.push_back(std::move(kv));
    }
    for (const auto& from : c_.env_from) {
      if (Status s = add_env_from(from); !s.ok()) return s.Wrap(where());
    }
    for (const auto& var : c_.env) {
      auto value = value_of(var);
      if (!value.ok()) return value.status().Wrap(where() + ": env " + var.name);
      if (*value) tmp_.set(var.name, std::move(**value));
    }
    return assemble();
  }

 private:
  std::string where() const {
    return "pod " + pod_.metadata.namespace_ + "/" + pod_.metadata.name + " container " + c_.name;
  }

  Environment assemble() {
    Environment env;
    for (auto& kv : service_order_) {
      if (tmp_.find(kv.key) == nullptr) env.vars.push_back(std::move(kv));
    }
    env.vars.insert(env.vars.end(), tmp_.vars().begin(), tmp_.vars().end());
    env.warnings = std::move(warnings_);
    return env;
  }

  // Missing and optional: nullptr and no error.
  template <typename T>
  Result<const T*> fetch(const T* found, const char* kind, const std::string& name, bool optional) {
    if (found != nullptr || optional) return found;
    return Status::Error(std::string(kind) + " \"" + name + "\" not found", ENOENT);
  }

  void add_keys(const api::StringMap& data, const std::string& prefix, bool is_secret,
                const std::string& source, Status* error) {
    std::vector<std::string> invalid;
    for (const auto& [key, raw] : data) {
      std::string name = prefix + key;
      if (!is_env_var_name(name)) {
        invalid.push_back(name);
        continue;
      }
      if (!is_secret) {
        tmp_.set(name, raw);
      } else if (auto bytes = api::base64_decode(raw)) {
        tmp_.set(name, std::move(*bytes));
      } else {
        *error = Status::Error(source + ": key " + key + " is not valid base64");
        return;
      }
    }
    if (!invalid.empty()) {
      warnings_.push_back("Keys [" + join(invalid, ", ") + "] from the EnvFrom " + source +
                          " were skipped since they are considered invalid environment "
                          "variable names.");
    }
  }

  Status add_env_from(const api::EnvFromSource& from) {
    const std::string& ns = pod_.metadata.namespace_;
    Status error;
    if (from.config_map_ref) {
      const auto& ref = *from.config_map_ref;
      auto cm = fetch(lookup_.config_map(ns, ref.name), "configmap", ref.name,
                      ref.optional.value_or(false));
      if (!cm.ok()) return cm.status().Wrap("envFrom");
      if (*cm)
        add_keys((*cm)->data, from.prefix, false, "configMap " + ns + "/" + ref.name, &error);
    } else if (from.secret_ref) {
      const auto& ref = *from.secret_ref;
      auto s =
          fetch(lookup_.secret(ns, ref.name), "secret", ref.name, ref.optional.value_or(false));
      if (!s.ok()) return s.status().Wrap("envFrom");
      if (*s) add_keys((*s)->data, from.prefix, true, "secret " + ns + "/" + ref.name, &error);
    }
    return error;
  }

  Result<std::optional<std::string>> key_ref_value(const api::KeySelector& ref, bool is_secret) {
    const std::string& ns = pod_.metadata.namespace_;
    bool optional = ref.optional.value_or(false);
    const char* kind = is_secret ? "Secret" : "ConfigMap";
    const api::StringMap* data = nullptr;
    if (is_secret) {
      auto s = fetch(lookup_.secret(ns, ref.name), "secret", ref.name, optional);
      if (!s.ok()) return s.status();
      if (*s) data = &(*s)->data;
    } else {
      auto cm = fetch(lookup_.config_map(ns, ref.name), "configmap", ref.name, optional);
      if (!cm.ok()) return cm.status();
      if (*cm) data = &(*cm)->data;
    }
    if (data == nullptr) return std::optional<std::string>();
    auto it = data->find(ref.key);
    if (it == data->end()) {
      if (optional) return std::optional<std::string>();
      return Status::Error(
          "couldn't find key " + ref.key + " in " + kind + " " + ns + "/" + ref.name, ENOENT);
    }
    if (!is_secret) return std::optional<std::string>(it->second);
    auto bytes = api::base64_decode(it->second);
    if (!bytes)
      return Status::Error("key " + ref.key + " in Secret " + ns + "/" + ref.name +
                           " is not valid base64");
    return std::optional<std::string>(std::move(*bytes));
  }

  // nullopt: an optional source that is missing, so the variable is left out.
  Result<std::optional<std::string>> value_of(const api::EnvVar& var) {
    using Value = std::optional<std::string>;
    if (!var.value.empty() || !var.value_from) {
      return Value(expand(var.value, [this](std::string_view name) -> Value {
        if (const auto* v = tmp_.find(name)) return *v;
        auto it = services_.find(name);
        return it == services_.end() ? Value() : Value(it->second);
      }));
    }
    const auto& from = *var.value_from;
    if (from.field_ref) return to_value(field_ref_value(*from.field_ref, pod_, pod_ips_, lookup_));
    if (from.resource_field_ref) {
      return to_value(
          resource_ref_value(*from.resource_field_ref, pod_, c_, lookup_.node_allocatable()));
    }
    if (from.config_map_key_ref) return key_ref_value(*from.config_map_key_ref, false);
    if (from.secret_key_ref) return key_ref_value(*from.secret_key_ref, true);
    return Value(std::string());
  }

  static Result<std::optional<std::string>> to_value(Result<std::string> r) {
    if (!r.ok()) return r.status();
    return std::optional<std::string>(std::move(*r));
  }

  const api::Pod& pod_;
  const api::Container& c_;
  const EnvLookup& lookup_;
  std::vector<std::string> pod_ips_;
  std::map<std::string, std::string, std::less<>> services_;
  std::vector<runtime::KeyValue> service_order_;
  VarList tmp_;
  std::vector<std::string> warnings_;
};

}  // namespace

bool is_env_var_name(std::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char ch) { return ch >= 0x20 && ch <= 0x7e && ch != '='; });
}

std::vector<std::string> sort_pod_ips(const std::vector<std::string>& pod_ips,
                                      const std::vector<std::string>& host_ips) {
  int primary = 4;
  if (!host_ips.empty()) {
    auto node = net::IPAddress::Parse(host_ips.front());
    if (node && node->is_v6()) primary = 6;
  }
  std::vector<std::string> out;
  for (int family : {primary, primary == 4 ? 6 : 4}) {
    for (const auto& s : pod_ips) {
      auto ip = net::IPAddress::Parse(s);
      if (ip && ip->family() == family) {
        out.push_back(ip->str());
        break;
      }
    }
  }
  return out;
}

std::vector<runtime::KeyValue> service_link_variables(const std::string& ns,
                                                      bool enable_service_links,
                                                      const EnvLookup& lookup) {
  // The master service of "default" is always linked; the pod's own namespace only when
  // enableServiceLinks is on, and a same-named service there wins.
  std::map<std::string, const api::Service*> chosen;
  for (const auto* s : lookup.services(kMasterServiceNamespace)) {
    if (s->metadata.name == kMasterServiceName && cluster_ip_set(*s))
      chosen.emplace(s->metadata.name, s);
  }
  if (enable_service_links) {
    for (const auto* s : lookup.services(ns)) {
      bool master = ns == kMasterServiceNamespace && s->metadata.name == kMasterServiceName;
      if (!master && cluster_ip_set(*s)) chosen[s->metadata.name] = s;
    }
  }
  std::vector<runtime::KeyValue> out;
  for (const auto& [name, s] : chosen) {
    if (!s->spec.ports.empty()) append_service_variables(*s, out);
  }
  return out;
}

std::string expand(std::string_view input, const EnvMapping& lookup) {
  std::string out;
  size_t checkpoint = 0;
  for (size_t cursor = 0; cursor < input.size(); ++cursor) {
    if (input[cursor] != '$' || cursor + 1 >= input.size()) continue;
    out.append(input.substr(checkpoint, cursor - checkpoint));
    std::string_view rest = input.substr(cursor + 1);
    size_t advance = 1;
    if (rest[0] == '$') {
      out += '$';
    } else if (rest[0] == '(') {
      size_t close = rest.find(')');
      if (close == std::string_view::npos) {
        out += "$(";  // an unterminated reference stays as written
      } else {
        std::string_view name = rest.substr(1, close - 1);
        auto value = lookup(name);
        out += value ? *value : "$(" + std::string(name) + ")";
        advance = close + 1;
      }
    } else {
      out += '$';
      out += rest[0];
    }
    cursor += advance;
    checkpoint = cursor + 1;
  }
  out.append(input.substr(std::min(checkpoint, input.size())));
  return out;
}

CommandLine expand_command(const api::Container& container,
                           const std::vector<runtime::KeyValue>& env) {
  std::map<std::string, std::string, std::less<>> vars;
  for (const auto& kv : env) vars[kv.key] = kv.value;
  auto lookup = [&vars](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(name);
    return it == vars.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
  CommandLine out;
  for (const auto& s : container.command) out.command.push_back(expand(s, lookup));
  for (const auto& s : container.args) out.args.push_back(expand(s, lookup));
  return out;
}

Result<std::string> pod_metadata_field(const api::Pod& pod, const std::string& field_path) {
  return metadata_value(pod.metadata, field_path);
}

Result<std::string> container_resource_field(const api::Pod& pod,
                                             const api::ResourceFieldSelector& selector,
                                             const api::ResourceList& node_allocatable) {
  const api::Container* c = find_container(pod, selector.container_name);
  if (c == nullptr) return Status::Error("container " + selector.container_name + " not found");
  return resource_ref_value(selector, pod, *c, node_allocatable);
}

Result<Environment> make_environment(const api::Pod& pod, const api::Container& container,
                                     const std::vector<std::string>& pod_ips,
                                     const EnvLookup& lookup) {
  return EnvBuilder(pod, container, pod_ips, lookup).build();
}

}  // namespace knode::kubelet
