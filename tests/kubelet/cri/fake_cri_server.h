// An in-process CRI server on a unix socket, for testing the gRPC client: it records each
// request and the deadline it came with, answers with what the test scripted, can fail a
// method with a gRPC status, and can hold a method until the caller gives up. Methods
// without a scripted answer return an empty response; RuntimeConfig, unscripted, answers
// UNIMPLEMENTED, as containerd 1.6 does.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "kubelet/cri/api.grpc.pb.h"

namespace knode::cri::testing {

namespace pb = ::runtime::v1;

class FakeCriServer {
 public:
  // Listens on `socket_path` (absolute); started() says whether it could.
  explicit FakeCriServer(const std::string& socket_path);
  ~FakeCriServer();
  FakeCriServer(const FakeCriServer&) = delete;
  FakeCriServer& operator=(const FakeCriServer&) = delete;

  bool started() const { return server_ != nullptr; }

  // The answer `method` ("Version", "PullImage", ...) gives from now on.
  void respond(const std::string& method, const google::protobuf::Message& response);
  // `method` fails with this status from now on.
  void fail(const std::string& method, grpc::Status status);
  // `method` blocks until its caller cancels (its deadline passes) or release() is called.
  void hold(const std::string& method);
  void release();

  // Method names in the order they arrived.
  std::vector<std::string> calls() const;
  int count(const std::string& method) const;
  // The last request of `method`, as its message type; default-constructed if none came.
  template <typename Request>
  Request last(const std::string& method) const {
    std::lock_guard lock(mu_);
    Request out;
    auto it = requests_.find(method);
    if (it != requests_.end()) out.CopyFrom(*it->second);
    return out;
  }
  // Time left until the last call of `method`'s deadline when it arrived; max() for none.
  std::chrono::milliseconds deadline_left(const std::string& method) const;

  // Used by the services: record, hold, then the scripted outcome. Returns true when the
  // method has a scripted answer or failure (in *status and *response).
  bool handle(const std::string& method, grpc::ServerContext* ctx,
              const google::protobuf::Message& request, google::protobuf::Message* response,
              grpc::Status* status);

 private:
  class Runtime;
  class Images;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> calls_;
  std::map<std::string, std::unique_ptr<google::protobuf::Message>> requests_;
  std::map<std::string, std::unique_ptr<google::protobuf::Message>> responses_;
  std::map<std::string, grpc::Status> failures_;
  std::map<std::string, std::chrono::milliseconds> deadline_left_;
  std::set<std::string> held_;

  std::unique_ptr<Runtime> runtime_;
  std::unique_ptr<Images> images_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace knode::cri::testing
