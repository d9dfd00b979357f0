#include "fake_docker.h"

#include <unistd.h>

#include <cstdio>

#include "docker/cri_log.h"

namespace knode::docker::testing {

namespace {

constexpr char kZeroTime[] = "0001-01-01T00:00:00Z";
constexpr char kNow[] = "2026-12-01T10:00:00.5Z";

std::string hex_id(int n) {
  char buf[65];
  std::snprintf(buf, sizeof buf, "%064x", n);
  return std::string("c0ffee") + std::string(buf).substr(6);
}

// "/v1.41/containers/abc/json" -> ["containers", "abc", "json"] (the version dropped).
std::vector<std::string> segments(const std::string& path) {
  std::vector<std::string> out;
  size_t start = 1;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    out.push_back(
        path.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  if (!out.empty() && out[0].starts_with("v1.")) out.erase(out.begin());
  return out;
}

bool labels_match(const json& labels, const json& filters) {
  if (!filters.contains("label")) return true;
  for (const auto& f : filters["label"]) {
    const std::string s = f.get<std::string>();
    const size_t eq = s.find('=');
    const std::string k = s.substr(0, eq);
    if (!labels.is_object() || !labels.contains(k)) return false;
    if (eq != std::string::npos && labels[k] != s.substr(eq + 1)) return false;
  }
  return true;
}

}  // namespace

FakeDocker::FakeDocker() : server_([this](const FakeRequest& r) { return handle(r); }) {}

FakeDocker::~FakeDocker() {
  {
    std::lock_guard lock(mu_);
    containers_.clear();
  }
  cv_.notify_all();
  server_.stop();
}

void FakeDocker::set_versions(const std::string& api, const std::string& min_api) {
  std::lock_guard lock(mu_);
  api_ = api;
  min_api_ = min_api;
}

void FakeDocker::set_cgroup_driver(const std::string& driver) {
  std::lock_guard lock(mu_);
  driver_ = driver;
}

std::string FakeDocker::image_id(const std::string& ref) const {
  // Stable per reference, so two tags of one image can be made with one ID.
  unsigned h = 5381;
  for (char c : ref) h = h * 33 + static_cast<unsigned char>(c);
  char buf[65];
  std::snprintf(buf, sizeof buf, "%064x", h);
  return std::string("sha256:") + buf;
}

void FakeDocker::add_registry_image(const std::string& ref) {
  std::lock_guard lock(mu_);
  registry_.insert(ref);
}

void FakeDocker::add_image(const std::string& ref) {
  std::lock_guard lock(mu_);
  images_[ref] = image_id(ref);
}

bool FakeDocker::has_image(const std::string& ref) const {
  std::lock_guard lock(mu_);
  return images_.count(ref) != 0;
}

void FakeDocker::fail_next_pull_in_stream(const std::string& message) {
  std::lock_guard lock(mu_);
  pull_error_ = message;
}

json FakeDocker::image_json(const std::string& ref) const {
  std::string id;
  if (auto it = images_.find(ref); it != images_.end()) id = it->second;
  for (const auto& [tag, iid] : images_) {
    if (iid == ref) id = iid;
  }
  if (id.empty()) return nullptr;
  json tags = json::array(), digests = json::array();
  for (const auto& [tag, iid] : images_) {
    if (iid != id) continue;
    tags.push_back(tag);
    digests.push_back(tag.substr(0, tag.rfind(':')) + "@sha256:" + id.substr(7, 16) +
                      std::string(48, '0'));
  }
  return {{"Id", id}, {"RepoTags", tags}, {"RepoDigests", digests}, {"Size", 1000}};
}

std::string FakeDocker::add_foreign_container(const std::string& name, bool running) {
  std::lock_guard lock(mu_);
  const std::string id = hex_id(next_id_++);
  containers_[id] = {
      {"Id", id},
      {"Name", "/" + name},
      {"Created", kNow},
      {"Image", image_id("busybox")},
      {"Config", {{"Image", "busybox"}, {"Labels", {{"owner", "someone-else"}}}, {"Tty", false}}},
      {"HostConfig", {{"NetworkMode", "default"}}},
      {"Mounts", json::array()},
      {"State",
       {{"Status", running ? "running" : "exited"},
        {"Running", running},
        {"Pid", running ? 4242 : 0},
        {"ExitCode", 0},
        {"OOMKilled", false},
        {"Error", ""},
        {"StartedAt", kNow},
        {"FinishedAt", running ? kZeroTime : kNow}}}};
  return id;
}

json FakeDocker::container(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = containers_.find(resolve(id));
  return it == containers_.end() ? json(nullptr) : it->second;
}

bool FakeDocker::exists(const std::string& id) const { return !container(id).is_null(); }

std::vector<std::string> FakeDocker::ids() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [id, c] : containers_) out.push_back(id);
  return out;
}

void FakeDocker::exit_container(const std::string& id, int code, bool oom_killed) {
  {
    std::lock_guard lock(mu_);
    auto& st = containers_.at(resolve(id))["State"];
    st["Status"] = "exited";
    st["Running"] = false;
    st["Pid"] = 0;
    st["ExitCode"] = code;
    st["OOMKilled"] = oom_killed;
    st["FinishedAt"] = "2026-12-01T10:00:07.25Z";
  }
  cv_.notify_all();
}

void FakeDocker::log(const std::string& id, int stream, const std::string& time,
                     const std::string& text) {
  {
    std::lock_guard lock(mu_);
    logs_[resolve(id)].push_back({stream, time, text});
  }
  cv_.notify_all();
}

std::vector<std::vector<std::string>> FakeDocker::exec_commands() const {
  std::lock_guard lock(mu_);
  return exec_commands_;
}

std::string FakeDocker::resolve(const std::string& id_or_name) const {
  if (containers_.count(id_or_name)) return id_or_name;
  for (const auto& [id, c] : containers_) {
    if (c["Name"] == "/" + id_or_name) return id;
  }
  if (id_or_name.size() >= 12) {
    for (const auto& [id, c] : containers_) {
      if (id.starts_with(id_or_name)) return id;
    }
  }
  return "";
}

// ---- the API ----

FakeReply FakeDocker::handle(const FakeRequest& r) {
  auto seg = segments(r.path);
  if (seg.size() == 1 && seg[0] == "version") {
    std::lock_guard lock(mu_);
    return FakeReply::json(
        200,
        json{{"Version", "20.10.24"}, {"ApiVersion", api_}, {"MinAPIVersion", min_api_}}.dump());
  }
  if (seg.empty()) return FakeReply::error(404, "page not found");
  if (seg[0] == "_ping") return {FakeReply::Mode::kWhole, 200, "text/plain", "OK", {}, {}};
  if (seg[0] == "info") {
    std::lock_guard lock(mu_);
    return FakeReply::json(
        200, json{{"CgroupDriver", driver_}, {"DockerRootDir", "/var/lib/docker"}}.dump());
  }
  if (seg[0] == "system" && seg.size() == 2 && seg[1] == "df") {
    return FakeReply::json(200, json{{"LayersSize", 123456}}.dump());
  }
  if (seg[0] == "containers" && seg.size() == 2 && seg[1] == "create") return create_container(r);
  if (seg[0] == "containers" && seg.size() == 2 && seg[1] == "json") return list_containers(r);
  if (seg[0] == "containers" && seg.size() >= 2) {
    return container_call(r, seg[1], seg.size() > 2 ? seg[2] : "");
  }
  if (seg[0] == "exec" && seg.size() == 3) return exec_call(r, seg[1], seg[2]);
  if (seg[0] == "images") {
    if (seg.size() == 2 && seg[1] == "create")
      return image_call(r, r.query.at("fromImage") + ":" + r.query.at("tag"), "create");
    if (seg.size() == 2 && seg[1] == "json" && r.method == "GET") return image_call(r, "", "list");
    // /images/<name with slashes>/json or DELETE /images/<name>
    std::string name = r.path.substr(r.path.find("/images/") + 8);
    std::string verb = r.method == "DELETE" ? "delete" : "inspect";
    if (verb == "inspect") name = name.substr(0, name.size() - 5);  // "/json"
    return image_call(r, name, verb);
  }
  return FakeReply::error(404, "page not found");
}

FakeReply FakeDocker::create_container(const FakeRequest& r) {
  json body = json::parse(r.body);
  std::lock_guard lock(mu_);
  const std::string name = r.query.count("name") ? r.query.at("name") : "";
  for (const auto& [id, c] : containers_) {
    if (c["Name"] == "/" + name) {
      return FakeReply::error(409, "Conflict. The container name \"/" + name +
                                       "\" is already in use by container \"" + id + "\".");
    }
  }
  const std::string image = body.value("Image", "");
  json img = image_json(image);
  if (img.is_null()) return FakeReply::error(404, "No such image: " + image);
  const std::string id = hex_id(next_id_++);
  json config = body;
  config.erase("HostConfig");
  if (!config.contains("Labels")) config["Labels"] = json::object();
  if (!config.contains("Tty")) config["Tty"] = false;
  json mounts = json::array();
  for (const auto& b : body["HostConfig"].value("Binds", json::array())) {
    const std::string s = b.get<std::string>();
    const size_t c1 = s.find(':');
    const size_t c2 = s.find(':', c1 + 1);
    const std::string opts = c2 == std::string::npos ? "" : s.substr(c2 + 1);
    mounts.push_back(
        {{"Type", "bind"},
         {"Source", s.substr(0, c1)},
         {"Destination",
          s.substr(c1 + 1, c2 == std::string::npos ? std::string::npos : c2 - c1 - 1)},
         {"Mode", opts},
         {"RW", opts.find("ro") == std::string::npos},
         {"Propagation", opts.find("rslave") != std::string::npos ? "rslave" : "rprivate"}});
  }
  containers_[id] = {{"Id", id},
                     {"Name", "/" + name},
                     {"Created", kNow},
                     {"Image", img["Id"]},
                     {"Config", config},
                     {"HostConfig", body["HostConfig"]},
                     {"Mounts", mounts},
                     {"ResolvConfPath", ""},
                     {"State",
                      {{"Status", "created"},
                       {"Running", false},
                       {"Pid", 0},
                       {"ExitCode", 0},
                       {"OOMKilled", false},
                       {"Error", ""},
                       {"StartedAt", kZeroTime},
                       {"FinishedAt", kZeroTime}}}};
  return FakeReply::json(201, json{{"Id", id}, {"Warnings", json::array()}}.dump());
}

FakeReply FakeDocker::list_containers(const FakeRequest& r) {
  json filters = r.query.count("filters") ? json::parse(r.query.at("filters")) : json::object();
  std::lock_guard lock(mu_);
  json out = json::array();
  for (const auto& [id, c] : containers_) {
    if (!labels_match(c["Config"]["Labels"], filters)) continue;
    out.push_back({{"Id", id},
                   {"Names", {c["Name"]}},
                   {"Image", c["Config"].value("Image", "")},
                   {"ImageID", c["Image"]},
                   {"State", c["State"]["Status"]},
                   {"Created", 1796119200},
                   {"Labels", c["Config"]["Labels"]}});
  }
  return FakeReply::json(200, out.dump());
}

FakeReply FakeDocker::container_call(const FakeRequest& r, const std::string& ref,
                                     const std::string& verb) {
  if (verb == "logs") return logs(r, ref);
  std::unique_lock lock(mu_);
  const std::string id = resolve(ref);
  if (id.empty()) return FakeReply::error(404, "No such container: " + ref);
  json& c = containers_[id];
  json& st = c["State"];
  if (r.method == "GET" && verb == "json") {
    json out = c;
    if (r.query.count("size")) out["SizeRw"] = 4096;
    return FakeReply::json(200, out.dump());
  }
  if (r.method == "POST" && verb == "start") {
    if (st["Running"].get<bool>()) return FakeReply::none(304);
    const json& ep = c["Config"].value("Entrypoint", json::array());
    if (!ep.empty() && ep[0] == "/missing") {
      st["Status"] = "created";
      st["ExitCode"] = 127;
      st["Error"] =
          "OCI runtime create failed: exec: \"/missing\": stat /missing: no such file or directory";
      return FakeReply::error(500, st["Error"].get<std::string>());
    }
    st["Status"] = "running";
    st["Running"] = true;
    // The test process stands in for the container's: /proc/<pid>/ns/net exists.
    st["Pid"] = static_cast<int>(::getpid());
    st["StartedAt"] = "2026-12-01T10:00:01.125Z";
    return FakeReply::none(204);
  }
  if (r.method == "POST" && verb == "stop") {
    if (!st["Running"].get<bool>()) return FakeReply::none(304);
    st["Status"] = "exited";
    st["Running"] = false;
    st["Pid"] = 0;
    st["ExitCode"] = 0;
    st["FinishedAt"] = "2026-12-01T10:00:09Z";
    c["StoppedWith"] = r.query.count("t") ? r.query.at("t") : "";
    lock.unlock();
    cv_.notify_all();
    return FakeReply::none(204);
  }
  if (r.method == "DELETE" && verb.empty()) {
    if (st["Running"].get<bool>() && r.query.count("force") == 0) {
      return FakeReply::error(409, "You cannot remove a running container " + id);
    }
    containers_.erase(id);
    logs_.erase(id);
    lock.unlock();
    cv_.notify_all();
    return FakeReply::none(204);
  }
  if (r.method == "POST" && verb == "exec") {
    if (!st["Running"].get<bool>())
      return FakeReply::error(409, "Container " + id + " is not running");
    json body = json::parse(r.body);
    const std::string eid = "e" + hex_id(next_id_++).substr(1);
    execs_[eid] = {id, body["Cmd"].get<std::vector<std::string>>(), false, nullptr};
    return FakeReply::json(201, json{{"Id", eid}}.dump());
  }
  if (r.method == "GET" && verb == "stats") {
    return FakeReply::json(
        200, json{{"read", "2026-12-01T10:00:05Z"},
                  {"cpu_stats", {{"cpu_usage", {{"total_usage", 5000000}}}}},
                  {"memory_stats", {{"usage", 9000}, {"stats", {{"total_inactive_file", 1000}}}}}}
                 .dump());
  }
  return FakeReply::error(404, "page not found");
}

FakeReply FakeDocker::exec_call(const FakeRequest& r, const std::string& eid,
                                const std::string& verb) {
  std::lock_guard lock(mu_);
  auto it = execs_.find(eid);
  if (it == execs_.end()) return FakeReply::error(404, "No such exec instance: " + eid);
  Exec& e = it->second;
  if (r.method == "GET" && verb == "json") {
    return FakeReply::json(
        200, json{{"Running", e.running}, {"ExitCode", e.exit_code}, {"Pid", 0}}.dump());
  }
  if (r.method != "POST" || verb != "start") return FakeReply::error(404, "page not found");
  exec_commands_.push_back(e.cmd);
  FakeReply reply;
  reply.mode = FakeReply::Mode::kHijack;
  reply.status = 101;
  reply.content_type = "application/vnd.docker.raw-stream";
  if (e.cmd[0] == "echo") {
    std::string words;
    for (size_t i = 1; i < e.cmd.size(); ++i) words += (i > 1 ? " " : "") + e.cmd[i];
    // Split mid-frame: the client must join pieces.
    std::string f = frame(1, words + "\n");
    reply.pieces = {f.substr(0, 5), f.substr(5)};
    e.exit_code = 0;
  } else if (e.cmd[0] == "fail") {
    reply.pieces = {frame(2, "boom\n")};
    e.exit_code = 3;
  } else if (e.cmd[0] == "hang") {
    e.running = true;
    reply.stream = [](StreamWriter& w) {
      while (!w.wait_closed(std::chrono::seconds(60))) {
      }
    };
  }
  return reply;
}

FakeReply FakeDocker::logs(const FakeRequest& r, const std::string& ref) {
  std::string id;
  {
    std::lock_guard lock(mu_);
    id = resolve(ref);
    if (id.empty()) return FakeReply::error(404, "No such container: " + ref);
  }
  const bool follow = r.query.count("follow") && r.query.at("follow") == "1";
  int64_t since_ns = 0;
  if (r.query.count("since")) {
    const std::string s = r.query.at("since");
    const size_t dot = s.find('.');
    since_ns = std::stoll(s.substr(0, dot)) * 1'000'000'000 +
               (dot == std::string::npos ? 0 : std::stoll(s.substr(dot + 1)));
  }
  FakeReply reply;
  reply.mode = FakeReply::Mode::kChunked;
  reply.content_type = "application/vnd.docker.raw-stream";
  reply.stream = [this, id, follow, since_ns](StreamWriter& w) {
    size_t sent = 0;
    for (;;) {
      std::vector<LogLine> lines;
      bool running = false;
      {
        std::unique_lock lock(mu_);
        auto it = containers_.find(id);
        running = it != containers_.end() && it->second["State"]["Running"].get<bool>();
        auto& all = logs_[id];
        lines.assign(all.begin() + static_cast<long>(sent), all.end());
        sent = all.size();
      }
      for (const auto& l : lines) {
        if (since_ns > 0 && parse_time(l.time).value() < since_ns)
          continue;  // dockerd: since is inclusive
        if (!w.write(frame(l.stream, l.time + " " + l.text))) return;
      }
      if (!follow || !running) return;
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(200), [&] {
        auto it = containers_.find(id);
        return it == containers_.end() || !it->second["State"]["Running"].get<bool>() ||
               logs_[id].size() != sent;
      });
      if (w.wait_closed(std::chrono::milliseconds(0))) return;
    }
  };
  return reply;
}

FakeReply FakeDocker::image_call(const FakeRequest& /*r*/, const std::string& name,
                                 const std::string& verb) {
  std::lock_guard lock(mu_);
  if (verb == "list") {
    json out = json::array();
    std::set<std::string> done;
    for (const auto& [tag, id] : images_) {
      if (done.insert(id).second) out.push_back(image_json(tag));
    }
    return FakeReply::json(200, out.dump());
  }
  if (verb == "inspect") {
    json j = image_json(name);
    return j.is_null() ? FakeReply::error(404, "No such image: " + name)
                       : FakeReply::json(200, j.dump());
  }
  if (verb == "delete") {
    if (images_.erase(name) == 0) {
      bool any = false;
      for (auto it = images_.begin(); it != images_.end();) {
        if (it->second == name) {
          it = images_.erase(it);
          any = true;
        } else {
          ++it;
        }
      }
      if (!any) return FakeReply::error(404, "No such image: " + name);
    }
    return FakeReply::json(200, json::array({{{"Untagged", name}}}).dump());
  }
  // create: a pull
  if (!registry_.count(name)) {
    return FakeReply::error(
        404, "manifest for " + name + " not found: manifest unknown: manifest unknown");
  }
  FakeReply reply;
  reply.mode = FakeReply::Mode::kChunked;
  reply.pieces = {"{\"status\":\"Pulling from " + name + "\"}\r\n{\"status\":\"Downl",
                  "oading\",\"id\":\"abc\"}\r\n"};
  if (!pull_error_.empty()) {
    reply.pieces.push_back(
        json{{"errorDetail", {{"message", pull_error_}}}, {"error", pull_error_}}.dump() + "\r\n");
    pull_error_.clear();
  } else {
    images_[name] = image_id(name);
    reply.pieces.push_back("{\"status\":\"Status: Downloaded newer image for " + name + "\"}\r\n");
  }
  return reply;
}

}  // namespace knode::docker::testing
