// kube-proxy as one piece the daemon composes: the mode (selected with fallback), the
// proxier following the object store, and its HTTP endpoints (/healthz and /livez on
// --healthz-bind-address, /metrics and /proxyMode on --metrics-bind-address).
#pragma once

#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "knode/clock.h"
#include "knode/config.h"
#include "knode/metrics.h"
#include "knode/status.h"
#include "knode/store.h"

namespace knode::proxy {

class ProxyServer {
 public:
  virtual ~ProxyServer() = default;
  // Subscribes to the store; `ready` runs once, after the first successful sync.
  virtual void start(std::function<void()> ready) = 0;
  // Waits for an in-flight sync; kernel state is left in place.
  virtual void stop() = 0;

  virtual const std::string& mode() const = 0;  // in effect: "iptables", "ipvs" or "nftables"
  virtual bool has_synced() const = 0;
  virtual bool healthy() const = 0;
  virtual size_t service_port_count() const = 0;
  // ("proxyHealthz", "http://0.0.0.0:10256/healthz"), ... for the ready line.
  virtual std::vector<std::pair<std::string, std::string>> endpoint_urls() const = 0;
};

// Checks what the configuration asks against what knode can program, touching nothing:
// the error names the flag ("--cluster-cidr: ... is IPv6 ...").
[[nodiscard]] Status check_config(const config::ProxyConfig& config);

// Selects the mode and binds the endpoints; an error names what could not be done.
Result<std::unique_ptr<ProxyServer>> make_proxy_server(boost::asio::io_context& io, ObjectStore& store,
                                                       const config::ProxyConfig& config,
                                                       const std::string& node_name, metrics::Registry& metrics,
                                                       const Clock& clock = RealClock::instance());

// Removes what every mode ever created (iptables chains; IPVS services, ipsets and
// kube-ipvs0 where the kernel has them). Idempotent.
[[nodiscard]] Status cleanup(const config::ProxyConfig& config);

}  // namespace knode::proxy
