#include "test_servers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <stdexcept>

namespace knode::kubelet::prober::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

bool iequals(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string path_of(const std::string& target) { return target.substr(0, target.find('?')); }

// A socket on 127.0.0.1 with an ephemeral port; throws when the kernel refuses.
int bound_loopback_socket(uint16_t* port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    throw std::runtime_error("bind 127.0.0.1:0 failed");
  }
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return fd;
}

// A throwaway self-signed certificate: the prober must not verify it.
void use_self_signed_certificate(SSL_CTX* ctx) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("knode-prober-test"), -1, -1,
                             0);
  X509_set_issuer_name(cert, name);
  X509_sign(cert, key, EVP_sha256());
  const bool ok = SSL_CTX_use_certificate(ctx, cert) == 1 && SSL_CTX_use_PrivateKey(ctx, key) == 1;
  X509_free(cert);
  EVP_PKEY_free(key);
  if (!ok) throw std::runtime_error("could not make a test certificate");
}

}  // namespace

std::string SeenRequest::header(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return v;
  }
  return "";
}

int SeenRequest::count(const std::string& name) const {
  int n = 0;
  for (const auto& [k, v] : headers) n += iequals(k, name) ? 1 : 0;
  return n;
}

struct TestHttpServer::Impl {
  asio::io_context io;  // never run: the connections use blocking calls
  asio::ssl::context tls{asio::ssl::context::tls_server};
};

TestHttpServer::TestHttpServer(Mode mode) : mode_(mode), impl_(std::make_unique<Impl>()) {
  if (mode_ == Mode::kHttps) use_self_signed_certificate(impl_->tls.native_handle());
  listen_fd_ = bound_loopback_socket(&port_);
  if (::listen(listen_fd_, 64) != 0) throw std::runtime_error("listen failed");
  acceptor_ = std::thread([this] { accept_loop(); });
}

TestHttpServer::~TestHttpServer() {
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);                         // wakes accept()
    for (const int fd : conn_fds_) ::shutdown(fd, SHUT_RDWR);  // wakes blocked reads
  }
  stopped_cv_.notify_all();  // wakes hanging replies
  acceptor_.join();
  for (auto& t : threads_) t.join();
  ::close(listen_fd_);
}

void TestHttpServer::route(const std::string& path, Route route) {
  std::lock_guard lock(mu_);
  routes_[path] = std::move(route);
}

void TestHttpServer::route(const std::string& path, int status, std::string body) {
  route(path, [status, body](const SeenRequest&) {
    Reply r;
    r.status = status;
    r.body = body;
    return r;
  });
}

std::vector<SeenRequest> TestHttpServer::requests() const {
  std::lock_guard lock(mu_);
  return seen_;
}

std::vector<SeenRequest> TestHttpServer::requests(const std::string& path) const {
  std::vector<SeenRequest> out;
  for (auto& r : requests()) {
    if (path_of(r.target) == path) out.push_back(r);
  }
  return out;
}

void TestHttpServer::accept_loop() {
  for (;;) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    std::lock_guard lock(mu_);
    if (stopped_) {
      if (fd >= 0) ::close(fd);
      return;
    }
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;
    }
    conn_fds_.push_back(fd);
    threads_.emplace_back([this, fd] { serve(fd); });
  }
}

namespace {

template <typename Stream>
void answer(Stream& stream, const Reply& reply, const std::function<void()>& hold) {
  beast::error_code ec;
  if (reply.hang) {
    hold();
    return;
  }
  if (reply.hang_after_bytes) {
    std::string raw = "HTTP/1.1 " + std::to_string(reply.status) +
                      " OK\r\nContent-Length: " + std::to_string(reply.body.size()) + "\r\n";
    for (const auto& [k, v] : reply.headers) raw += k + ": " + v + "\r\n";
    raw += "\r\n" + reply.body.substr(0, *reply.hang_after_bytes);
    asio::write(stream, asio::buffer(raw), ec);
    hold();
    return;
  }
  http::response<http::string_body> res;
  res.version(11);
  res.result(static_cast<unsigned>(reply.status));
  for (const auto& [k, v] : reply.headers) res.insert(k, v);
  res.set(http::field::connection, "close");
  res.body() = reply.body;
  res.prepare_payload();
  http::write(stream, res, ec);
}

}  // namespace

void TestHttpServer::serve(int fd) {
  tcp::socket socket(impl_->io);
  socket.assign(tcp::v4(), fd);
  const auto hold = [this] {
    std::unique_lock lock(mu_);
    stopped_cv_.wait(lock, [this] { return stopped_; });
  };
  const auto handle = [&](auto& stream, const std::string& sni) {
    beast::flat_buffer buffer;
    http::request<http::string_body> req;
    beast::error_code ec;
    http::read(stream, buffer, req, ec);
    if (ec) {
      if (ec.category() == http::make_error_code(http::error::bad_method).category()) {
        const std::string bad =
            "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        asio::write(stream, asio::buffer(bad), ec);
      }
      return;
    }
    SeenRequest seen;
    seen.target = std::string(req.target());
    seen.sni = sni;
    for (const auto& f : req)
      seen.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    Route route;
    {
      std::lock_guard lock(mu_);
      seen_.push_back(seen);
      auto it = routes_.find(path_of(seen.target));
      if (it != routes_.end()) route = it->second;
    }
    Reply reply;
    if (route) {
      reply = route(seen);
    } else {
      reply.status = 404;
      reply.body = "no route for " + seen.target;
    }
    answer(stream, reply, hold);
  };

  if (mode_ == Mode::kHttp) {
    handle(socket, "");
  } else {
    asio::ssl::stream<tcp::socket&> tls(socket, impl_->tls);
    beast::error_code ec;
    tls.handshake(asio::ssl::stream_base::server, ec);
    if (!ec) {
      const char* sni = SSL_get_servername(tls.native_handle(), TLSEXT_NAMETYPE_host_name);
      handle(tls, sni != nullptr ? sni : "");
      tls.shutdown(ec);
    }
  }
  std::lock_guard lock(mu_);
  std::erase(conn_fds_, fd);
  beast::error_code ignored;
  socket.close(ignored);
}

TestTcpListener::TestTcpListener(bool fill_backlog) {
  fd_ = bound_loopback_socket(&port_);
  if (::listen(fd_, fill_backlog ? 0 : 16) != 0) throw std::runtime_error("listen failed");
  if (fill_backlog) {
    // A backlog of 0 holds one connection; this one fills it.
    filler_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port_);
    if (::connect(filler_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      throw std::runtime_error("could not fill the backlog");
    }
  }
}

TestTcpListener::~TestTcpListener() {
  if (filler_ >= 0) ::close(filler_);
  ::close(fd_);
}

RefusingPort::RefusingPort() { fd_ = bound_loopback_socket(&port_); }

RefusingPort::~RefusingPort() { ::close(fd_); }

TestHealthServer::TestHealthServer(bool with_health_service) {
  grpc::EnableDefaultHealthCheckService(with_health_service);
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
  builder.RegisterCallbackGenericService(&unimplemented_);
  server_ = builder.BuildAndStart();
  grpc::EnableDefaultHealthCheckService(false);
  if (!server_ || port_ == 0) throw std::runtime_error("could not start the gRPC server");
}

TestHealthServer::~TestHealthServer() {
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
}

void TestHealthServer::set_serving(const std::string& service, bool serving) {
  server_->GetHealthCheckService()->SetServingStatus(service, serving);
}

}  // namespace knode::kubelet::prober::testing
