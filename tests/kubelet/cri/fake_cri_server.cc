#include "fake_cri_server.h"

namespace knode::cri::testing {

using std::chrono::milliseconds;

// Every method records and answers through FakeCriServer::handle.
#define KNODE_FAKE_CRI_METHOD(Method)                                                   \
  grpc::Status Method(grpc::ServerContext* ctx, const pb::Method##Request* req,        \
                      pb::Method##Response* resp) override {                            \
    grpc::Status status;                                                                \
    server_.handle(#Method, ctx, *req, resp, &status);                                  \
    return status;                                                                      \
  }

class FakeCriServer::Runtime final : public pb::RuntimeService::Service {
 public:
  explicit Runtime(FakeCriServer& server) : server_(server) {}

  KNODE_FAKE_CRI_METHOD(Version)
  KNODE_FAKE_CRI_METHOD(Status)
  KNODE_FAKE_CRI_METHOD(RunPodSandbox)
  KNODE_FAKE_CRI_METHOD(StopPodSandbox)
  KNODE_FAKE_CRI_METHOD(RemovePodSandbox)
  KNODE_FAKE_CRI_METHOD(PodSandboxStatus)
  KNODE_FAKE_CRI_METHOD(ListPodSandbox)
  KNODE_FAKE_CRI_METHOD(CreateContainer)
  KNODE_FAKE_CRI_METHOD(StartContainer)
  KNODE_FAKE_CRI_METHOD(StopContainer)
  KNODE_FAKE_CRI_METHOD(RemoveContainer)
  KNODE_FAKE_CRI_METHOD(ListContainers)
  KNODE_FAKE_CRI_METHOD(ContainerStatus)
  KNODE_FAKE_CRI_METHOD(ReopenContainerLog)
  KNODE_FAKE_CRI_METHOD(ExecSync)
  KNODE_FAKE_CRI_METHOD(ContainerStats)
  KNODE_FAKE_CRI_METHOD(Exec)
  KNODE_FAKE_CRI_METHOD(Attach)
  KNODE_FAKE_CRI_METHOD(PortForward)

  // Unscripted, the generated base answers UNIMPLEMENTED, as a runtime without it does.
  grpc::Status RuntimeConfig(grpc::ServerContext* ctx, const pb::RuntimeConfigRequest* req,
                             pb::RuntimeConfigResponse* resp) override {
    grpc::Status status;
    if (server_.handle("RuntimeConfig", ctx, *req, resp, &status)) return status;
    return pb::RuntimeService::Service::RuntimeConfig(ctx, req, resp);
  }

 private:
  FakeCriServer& server_;
};

class FakeCriServer::Images final : public pb::ImageService::Service {
 public:
  explicit Images(FakeCriServer& server) : server_(server) {}

  KNODE_FAKE_CRI_METHOD(ListImages)
  KNODE_FAKE_CRI_METHOD(ImageStatus)
  KNODE_FAKE_CRI_METHOD(PullImage)
  KNODE_FAKE_CRI_METHOD(RemoveImage)
  KNODE_FAKE_CRI_METHOD(ImageFsInfo)

 private:
  FakeCriServer& server_;
};

#undef KNODE_FAKE_CRI_METHOD

FakeCriServer::FakeCriServer(const std::string& socket_path)
    : runtime_(std::make_unique<Runtime>(*this)), images_(std::make_unique<Images>(*this)) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix://" + socket_path, grpc::InsecureServerCredentials());
  builder.RegisterService(runtime_.get());
  builder.RegisterService(images_.get());
  server_ = builder.BuildAndStart();
}

FakeCriServer::~FakeCriServer() {
  release();
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

void FakeCriServer::respond(const std::string& method, const google::protobuf::Message& response) {
  std::lock_guard lock(mu_);
  auto& slot = responses_[method];
  slot.reset(response.New());
  slot->CopyFrom(response);
}

void FakeCriServer::fail(const std::string& method, grpc::Status status) {
  std::lock_guard lock(mu_);
  failures_[method] = std::move(status);
}

void FakeCriServer::hold(const std::string& method) {
  std::lock_guard lock(mu_);
  held_.insert(method);
}

void FakeCriServer::release() {
  {
    std::lock_guard lock(mu_);
    held_.clear();
  }
  cv_.notify_all();
}

std::vector<std::string> FakeCriServer::calls() const {
  std::lock_guard lock(mu_);
  return calls_;
}

int FakeCriServer::count(const std::string& method) const {
  std::lock_guard lock(mu_);
  int n = 0;
  for (const auto& c : calls_) n += c == method;
  return n;
}

milliseconds FakeCriServer::deadline_left(const std::string& method) const {
  std::lock_guard lock(mu_);
  auto it = deadline_left_.find(method);
  return it == deadline_left_.end() ? milliseconds::max() : it->second;
}

bool FakeCriServer::handle(const std::string& method, grpc::ServerContext* ctx,
                           const google::protobuf::Message& request,
                           google::protobuf::Message* response, grpc::Status* status) {
  std::unique_lock lock(mu_);
  calls_.push_back(method);
  auto& slot = requests_[method];
  slot.reset(request.New());
  slot->CopyFrom(request);
  const auto deadline = ctx->deadline();
  deadline_left_[method] =
      deadline == std::chrono::system_clock::time_point::max()
          ? milliseconds::max()
          : std::chrono::duration_cast<milliseconds>(deadline - std::chrono::system_clock::now());

  // A held method waits for release() or for its caller to give up; the server sees the
  // latter only as a cancelled context, so check that between short waits.
  while (held_.count(method) != 0 && !ctx->IsCancelled()) {
    cv_.wait_for(lock, milliseconds(10));
  }
  if (ctx->IsCancelled()) {
    *status = grpc::Status(grpc::StatusCode::CANCELLED, "the caller gave up");
    return true;
  }
  if (auto it = failures_.find(method); it != failures_.end()) {
    *status = it->second;
    return true;
  }
  *status = grpc::Status::OK;
  if (auto it = responses_.find(method); it != responses_.end()) {
    response->CopyFrom(*it->second);
    return true;
  }
  return false;
}

}  // namespace knode::cri::testing
