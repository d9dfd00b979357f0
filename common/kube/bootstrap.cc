#include "knode/kube/bootstrap.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "knode/api/base64.h"
#include "knode/json_get.h"
#include "knode/log.h"

namespace knode::kube {

using nlohmann::json;

namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct ReqFree {
  void operator()(X509_REQ* r) const { X509_REQ_free(r); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

std::string bio_string(BIO* b) {
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  return std::string(data, static_cast<size_t>(n));
}

std::chrono::system_clock::time_point to_time(const ASN1_TIME* t) {
  struct tm tm {};
  ASN1_TIME_to_tm(t, &tm);
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

Status write_file(const std::string& path, const std::string& data, std::filesystem::perms mode) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return Status::FromErrno("write " + tmp, errno);
    out << data;
    if (!out.flush()) return Status::FromErrno("write " + tmp, errno);
  }
  std::error_code ec;
  std::filesystem::permissions(tmp, mode, ec);
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Status::Error("rename " + tmp + ": " + ec.message(), ec.value());
  return Status::Ok();
}

// Asks for a certificate for csr and waits for it.
Result<std::string> request_certificate(RestClient& client, const std::string& node, const KeyAndCsr& kc,
                                        std::chrono::seconds timeout) {
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, "%08x", static_cast<unsigned>(std::random_device{}()));
  const std::string name = "node-csr-" + node + "-" + suffix;
  json csr = {{"apiVersion", "certificates.k8s.io/v1"},
              {"kind", "CertificateSigningRequest"},
              {"metadata", {{"name", name}}},
              {"spec",
               {{"request", api::base64_encode(kc.csr_pem)},
                {"signerName", "kubernetes.io/kube-apiserver-client-kubelet"},
                {"usages", json::array({"digital signature", "client auth"})}}}};
  const std::string path = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
  const std::string what = "certificate signing request " + name;
  auto r = client.request("POST", path, jget::dump(csr));
  if (!r.ok()) return r.status().Wrap(what);
  if (!r->ok()) {
    return Status::Error(what + ": HTTP " + std::to_string(r->status) + ": " + status_message(*r), EACCES);
  }
  KLOG(INFO, "certificate signing request created; waiting for its approval").kv("csr", name);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::milliseconds(200);
  while (std::chrono::steady_clock::now() < deadline) {
    auto g = client.request("GET", path + "/" + name);
    if (g.ok() && g->ok()) {
      json j = json::parse(g->body, nullptr, false);
      // The answer is read without exceptions: a malformed one is "not signed yet".
      const json& st = jget::member(j, "status");
      for (const auto& c : jget::array(st, "conditions")) {
        const std::string type = jget::str(c, "type");
        if ((type == "Denied" || type == "Failed") && jget::str(c, "status") == "True") {
          return Status::Error(what + ": " + type + ": " + jget::str(c, "message", jget::str(c, "reason")), EACCES);
        }
      }
      if (const std::string cert = jget::str(st, "certificate"); !cert.empty()) {
        auto pem = api::base64_decode(cert);
        if (!pem) return Status::Error(what + ": the certificate is not base64", EIO);
        return *pem;
      }
    }
    std::this_thread::sleep_for(pause);  // polling the API server, bounded by the deadline
    pause = std::min(pause * 2, std::chrono::milliseconds(2000));
  }
  return Status::Error(what + ": not signed within " + std::to_string(timeout.count()) +
                           "s (is the controller-manager's csrapproving controller approving node client CSRs?)",
                       ETIMEDOUT);
}

}  // namespace

std::string current_pem_path(const std::string& cert_dir) { return cert_dir + "/kubelet-client-current.pem"; }

Result<CertInfo> parse_certificate(const std::string& pem) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  std::unique_ptr<X509, X509Free> x(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!x) return Status::Error("no PEM certificate", EINVAL);
  CertInfo info;
  info.not_before = to_time(X509_get0_notBefore(x.get()));
  info.not_after = to_time(X509_get0_notAfter(x.get()));
  char cn[256] = {0};
  X509_NAME_get_text_by_NID(X509_get_subject_name(x.get()), NID_commonName, cn, sizeof cn);
  info.common_name = cn;
  return info;
}

Result<KeyAndCsr> make_node_csr(const std::string& node_name) {
  std::unique_ptr<EVP_PKEY, KeyFree> key(EVP_EC_gen("P-256"));
  if (!key) return Status::Error("generate an EC P-256 key", EIO);
  std::unique_ptr<X509_REQ, ReqFree> req(X509_REQ_new());
  X509_REQ_set_version(req.get(), 0);
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  const std::string cn = "system:node:" + node_name;
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>("system:nodes"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_REQ_set_pubkey(req.get(), key.get());
  if (X509_REQ_sign(req.get(), key.get(), EVP_sha256()) <= 0) return Status::Error("sign the CSR", EIO);
  std::unique_ptr<BIO, BioFree> kb(BIO_new(BIO_s_mem())), rb(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(kb.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  PEM_write_bio_X509_REQ(rb.get(), req.get());
  return KeyAndCsr{bio_string(kb.get()), bio_string(rb.get())};
}

bool has_valid_client_certificate(const std::string& kubeconfig) {
  auto kc = load_kubeconfig(kubeconfig);
  if (!kc.ok() || kc->client_cert_pem.empty()) return false;
  auto info = parse_certificate(kc->client_cert_pem);
  const auto now = std::chrono::system_clock::now();
  return info.ok() && info->not_before <= now && now < info->not_after;
}

Status bootstrap_client_certificate(const BootstrapOptions& o) {
  auto boot = load_kubeconfig(o.bootstrap_kubeconfig);
  if (!boot.ok()) return boot.status().Wrap("--bootstrap-kubeconfig");
  auto client = RestClient::create(*boot);
  if (!client.ok()) return client.status().Wrap("--bootstrap-kubeconfig");
  std::error_code ec;
  std::filesystem::create_directories(o.cert_dir, ec);
  if (ec) return Status::Error("--cert-dir " + o.cert_dir + ": " + ec.message(), ec.value());
  auto kc = make_node_csr(o.node_name);
  if (!kc.ok()) return kc.status();
  auto cert = request_certificate(**client, o.node_name, *kc, o.timeout);
  if (!cert.ok()) return cert.status().Wrap("TLS bootstrap");
  const std::string pem_path = current_pem_path(o.cert_dir);
  if (Status s = write_file(pem_path, *cert + kc->key_pem, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
      !s.ok()) {
    return s;
  }
  json cluster = {{"server", boot->server}};
  if (!boot->ca_pem.empty()) cluster["certificate-authority-data"] = api::base64_encode(boot->ca_pem);
  if (!boot->tls_server_name.empty()) cluster["tls-server-name"] = boot->tls_server_name;
  // JSON is YAML: the kubeconfig the node uses from now on.
  json cfg = {{"apiVersion", "v1"},
              {"kind", "Config"},
              {"clusters", json::array({{{"name", "default-cluster"}, {"cluster", cluster}}})},
              {"users", json::array({{{"name", "default-auth"},
                                      {"user", {{"client-certificate", pem_path}, {"client-key", pem_path}}}}})},
              {"contexts", json::array({{{"name", "default-context"},
                                         {"context", {{"cluster", "default-cluster"}, {"user", "default-auth"}}}}})},
              {"current-context", "default-context"}};
  if (Status s = write_file(o.kubeconfig, jget::dump(cfg, 2), std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
      !s.ok()) {
    return s;
  }
  auto info = parse_certificate(*cert);
  KLOG(INFO, "client certificate bootstrapped").kv("cn", info.ok() ? info->common_name : "?").kv("file", pem_path)
      .kv("kubeconfig", o.kubeconfig);
  return Status::Ok();
}

Result<CertInfo> renew_client_certificate(RestClient& client, const std::string& node_name, const std::string& cert_dir,
                                          std::chrono::seconds timeout) {
  auto kc = make_node_csr(node_name);
  if (!kc.ok()) return kc.status();
  auto cert = request_certificate(client, node_name, *kc, timeout);
  if (!cert.ok()) return cert.status().Wrap("renew the client certificate");
  auto info = parse_certificate(*cert);
  if (!info.ok()) return info.status();
  if (Status s = write_file(current_pem_path(cert_dir), *cert + kc->key_pem,
                            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
      !s.ok()) {
    return s;
  }
  return *info;
}

// ---- rotation ----

CertRotator::CertRotator(RestClient& client, std::string node_name, std::string cert_dir, double fraction)
    : client_(client), node_(std::move(node_name)), cert_dir_(std::move(cert_dir)), fraction_(fraction) {}

CertRotator::~CertRotator() { stop(); }

void CertRotator::start() {
  worker_.start([this] { run(); });
}

void CertRotator::stop() { worker_.stop(); }

void CertRotator::run() {
  std::mt19937 rng(std::random_device{}());
  for (;;) {
    std::string pem;
    {
      std::ifstream in(current_pem_path(cert_dir_), std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      pem = ss.str();
    }
    auto info = parse_certificate(pem);
    auto wait_for = std::chrono::system_clock::duration(std::chrono::minutes(1));
    if (info.ok()) {
      // Upstream's: a random point between 70% and 90% of the certificate's life (or
      // the fixed fraction given).
      double f = fraction_ > 0 ? fraction_ : std::uniform_real_distribution<double>(0.7, 0.9)(rng);
      auto life = info->not_after - info->not_before;
      auto when = info->not_before + std::chrono::duration_cast<std::chrono::system_clock::duration>(life * f);
      auto now = std::chrono::system_clock::now();
      if (now >= when) {
        auto renewed = renew_client_certificate(client_, node_, cert_dir_, std::chrono::minutes(5));
        if (renewed.ok()) {
          std::ifstream in(current_pem_path(cert_dir_), std::ios::binary);
          std::stringstream ss;
          ss << in.rdbuf();
          Status s = client_.reload_client_certificate(ss.str(), ss.str());
          if (s.ok()) {
            ++rotations_;
            KLOG(INFO, "client certificate rotated").kv("notAfter", std::to_string(std::chrono::system_clock::to_time_t(renewed->not_after)));
            continue;
          }
          KLOG(WARNING, "cannot use the renewed client certificate").kv("err", s.message());
        } else {
          KLOG(WARNING, "cannot renew the client certificate; retrying").kv("err", renewed.status().message());
        }
        wait_for = std::chrono::seconds(30);
      } else {
        wait_for = std::min<std::chrono::system_clock::duration>(when - now, std::chrono::minutes(10));
      }
    }
    if (!worker_.wait(wait_for)) return;
  }
}

}  // namespace knode::kube
