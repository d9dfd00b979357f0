// A model of dockerd behind FakeDockerServer: containers, execs, images and logs in
// memory, answering the Engine API calls the Docker backend makes the way dockerd 20.10
// does (status codes, JSON shapes, chunked pulls and logs, hijacked exec). Tests drive it
// through DockerRuntime and poke at its state (a container exits, writes a log line, an
// image is in the registry) to check what the backend makes of it.
//
// Exec commands are interpreted, not run: ["echo", words...] prints the words on stdout
// and exits 0; ["fail"] prints "boom" on stderr and exits 3; ["hang"] never ends.
// Starting a container whose entrypoint is "/missing" fails as dockerd does when the
// executable is not there.
#pragma once

#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "fake_docker_server.h"

namespace knode::docker::testing {

using nlohmann::json;

class FakeDocker {
 public:
  FakeDocker();
  ~FakeDocker();

  std::string endpoint() const { return server_.endpoint(); }
  FakeDockerServer& server() { return server_; }

  // Daemon settings.
  void set_versions(const std::string& api, const std::string& min_api);
  void set_cgroup_driver(const std::string& driver);

  // Images: what the registry holds (pullable) and what is present.
  void add_registry_image(const std::string& ref);
  void add_image(const std::string& ref);
  bool has_image(const std::string& ref) const;
  // The next pull fails inside its 200 answer with this error message.
  void fail_next_pull_in_stream(const std::string& message);

  // A container made by someone else (no labels knode uses): returns its ID.
  std::string add_foreign_container(const std::string& name, bool running);
  json container(const std::string& id) const;  // its inspect JSON (null when gone)
  bool exists(const std::string& id) const;
  std::vector<std::string> ids() const;
  // The container's main process ends.
  void exit_container(const std::string& id, int code, bool oom_killed = false);
  // A log message: "time text" lands in the container's json-file.
  void log(const std::string& id, int stream, const std::string& time, const std::string& text);

  // Exec starts seen (exec ID -> command).
  std::vector<std::vector<std::string>> exec_commands() const;

 private:
  FakeReply handle(const FakeRequest& r);
  FakeReply create_container(const FakeRequest& r);
  FakeReply list_containers(const FakeRequest& r);
  FakeReply container_call(const FakeRequest& r, const std::string& id, const std::string& verb);
  FakeReply exec_call(const FakeRequest& r, const std::string& id, const std::string& verb);
  FakeReply image_call(const FakeRequest& r, const std::string& name, const std::string& verb);
  FakeReply logs(const FakeRequest& r, const std::string& id);
  std::string resolve(const std::string& id_or_name) const;  // guarded by mu_
  json image_json(const std::string& ref) const;             // guarded by mu_
  std::string image_id(const std::string& ref) const;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string api_ = "1.41", min_api_ = "1.12", driver_ = "cgroupfs";
  std::set<std::string> registry_;
  std::map<std::string, std::string> images_;  // tag -> ID
  std::string pull_error_;
  std::map<std::string, json> containers_;
  struct LogLine {
    int stream;
    std::string time, text;
  };
  std::map<std::string, std::vector<LogLine>> logs_;
  struct Exec {
    std::string container;
    std::vector<std::string> cmd;
    bool running = false;
    json exit_code;
  };
  std::map<std::string, Exec> execs_;
  std::vector<std::vector<std::string>> exec_commands_;
  int next_id_ = 1;
  FakeDockerServer server_;  // last: stopped first, while the model still exists
};

}  // namespace knode::docker::testing
