#include <grpcpp/grpcpp.h>

#include <boost/asio/ip/address.hpp>

#include "kubelet/prober/health.grpc.pb.h"
#include "prober/probes.h"
#include "prober/text.h"

namespace knode::kubelet::prober {

namespace {

namespace health = ::grpc::health::v1;

// grpc-go's names of status codes, as upstream's messages print them.
const char* go_code_name(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "Canceled";
    case grpc::StatusCode::UNKNOWN:
      return "Unknown";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "InvalidArgument";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DeadlineExceeded";
    case grpc::StatusCode::NOT_FOUND:
      return "NotFound";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "AlreadyExists";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PermissionDenied";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "ResourceExhausted";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FailedPrecondition";
    case grpc::StatusCode::ABORTED:
      return "Aborted";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OutOfRange";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "Unimplemented";
    case grpc::StatusCode::INTERNAL:
      return "Internal";
    case grpc::StatusCode::UNAVAILABLE:
      return "Unavailable";
    case grpc::StatusCode::DATA_LOSS:
      return "DataLoss";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "Unauthenticated";
    default:
      return "Unknown";
  }
}

// A gRPC target that needs no resolver for an address: "ipv4:10.0.0.1:80", "ipv6:[::1]:80".
std::string channel_target(const std::string& host, int port) {
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(host, ec);
  if (ec) return "dns:///" + join_host_port(host, port);
  return (address.is_v4() ? "ipv4:" : "ipv6:") + join_host_port(host, port);
}

}  // namespace

ProbeOutcome grpc_probe(const std::string& host, int port, const std::string& service,
                        std::chrono::seconds timeout, const std::string& user_agent) {
  ProbeOutcome out;
  out.result = ProbeResult::kFailure;
  const std::string addr = join_host_port(host, port);
  const auto deadline = std::chrono::system_clock::now() + timeout;

  grpc::ChannelArguments args;
  args.SetUserAgentPrefix(user_agent);
  // One connection of its own per probe, as upstream dials one; no retries, no service
  // config lookups.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  args.SetInt(GRPC_ARG_SERVICE_CONFIG_DISABLE_RESOLUTION, 1);
  auto channel = grpc::CreateCustomChannel(channel_target(host, port),
                                           grpc::InsecureChannelCredentials(), args);
  // Upstream dials with WithBlock: until connected or the timeout passes.
  if (!channel->WaitForConnected(deadline)) {
    out.output = "timeout: failed to connect service " + go_quote(addr) + " within " +
                 go_duration(timeout) + ": context deadline exceeded";
    return out;
  }

  auto stub = health::Health::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(deadline);
  health::HealthCheckRequest req;
  req.set_service(service);
  health::HealthCheckResponse resp;
  const grpc::Status s = stub->Check(&ctx, req, &resp);
  if (!s.ok()) {
    switch (s.error_code()) {
      case grpc::StatusCode::UNIMPLEMENTED:
        out.output =
            "error: this server does not implement the grpc health protocol "
            "(grpc.health.v1.Health): " +
            s.error_message();
        break;
      case grpc::StatusCode::DEADLINE_EXCEEDED:
        out.output = "timeout: health rpc did not complete within " + go_duration(timeout);
        break;
      default:
        out.output = std::string("error: health rpc probe failed: rpc error: code = ") +
                     go_code_name(s.error_code()) + " desc = " + s.error_message();
    }
    return out;
  }
  if (resp.status() != health::HealthCheckResponse::SERVING) {
    std::string name = health::HealthCheckResponse::ServingStatus_Name(resp.status());
    if (name.empty()) name = std::to_string(resp.status());  // a value this side lacks
    out.output = "service unhealthy (responded with " + go_quote(name) + ")";
    return out;
  }
  out.result = ProbeResult::kSuccess;
  out.output = "service healthy";
  return out;
}

}  // namespace knode::kubelet::prober
