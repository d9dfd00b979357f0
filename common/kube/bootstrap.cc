#include "knode/kube/bootstrap.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <functional>
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

constexpr const char* kClientSigner = "kubernetes.io/kube-apiserver-client-kubelet";

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
struct GeneralNamesFree {
  void operator()(GENERAL_NAMES* g) const { GENERAL_NAMES_free(g); }
};
struct ExtsFree {
  void operator()(STACK_OF(X509_EXTENSION) * e) const { sk_X509_EXTENSION_pop_free(e, X509_EXTENSION_free); }
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

// Asks for a certificate for csr from signer and waits for it.
// `pause` sleeps between polls and returns false to give up (knode stopping); none: sleep.
Result<std::string> request_certificate(RestClient& client, const std::string& node, const KeyAndCsr& kc,
                                        std::chrono::seconds timeout, const std::string& signer = kClientSigner,
                                        const std::vector<std::string>& usages = {"digital signature", "client auth"},
                                        const std::function<bool(std::chrono::milliseconds)>& sleeper = {}) {
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, "%08x", static_cast<unsigned>(std::random_device{}()));
  const std::string name = "node-csr-" + node + "-" + suffix;
  json csr = {{"apiVersion", "certificates.k8s.io/v1"},
              {"kind", "CertificateSigningRequest"},
              {"metadata", {{"name", name}}},
              {"spec",
               {{"request", api::base64_encode(kc.csr_pem)},
                {"signerName", signer},
                {"usages", usages}}}};
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
    // Polling the API server, bounded by the deadline.
    if (sleeper) {
      if (!sleeper(pause)) return Status::Error(what + ": stopped while waiting for it", ECANCELED);
    } else {
      std::this_thread::sleep_for(pause);
    }
    pause = std::min(pause * 2, std::chrono::milliseconds(2000));
  }
  return Status::Error(what + ": not signed within " + std::to_string(timeout.count()) +
                           (signer == kClientSigner
                                ? "s (is the controller-manager's csrapproving controller approving node client CSRs?)"
                                : "s (serving certificates are approved by an administrator: kubectl certificate approve " +
                                      name + ")"),
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

Result<KeyAndCsr> make_node_csr(const std::string& node_name) { return make_node_csr(node_name, {}, {}); }

Result<KeyAndCsr> make_node_csr(const std::string& node_name, const std::vector<std::string>& dns_names,
                                const std::vector<std::string>& ips) {
  std::unique_ptr<EVP_PKEY, KeyFree> key(EVP_EC_gen("P-256"));
  if (!key) return Status::Error("generate an EC P-256 key", EIO);
  std::unique_ptr<X509_REQ, ReqFree> req(X509_REQ_new());
  X509_REQ_set_version(req.get(), 0);
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  const std::string cn = "system:node:" + node_name;
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>("system:nodes"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_REQ_set_pubkey(req.get(), key.get());
  if (!dns_names.empty() || !ips.empty()) {
    // subjectAltName, the only extension the kubelet-serving signer allows.
    std::unique_ptr<GENERAL_NAMES, GeneralNamesFree> sans(sk_GENERAL_NAME_new_null());
    auto add = [&](int type, const std::string& value) -> Status {
      GENERAL_NAME* gn = nullptr;
      if (type == GEN_DNS) {
        gn = GENERAL_NAME_new();
        ASN1_IA5STRING* str = ASN1_IA5STRING_new();
        if (gn == nullptr || str == nullptr || ASN1_STRING_set(str, value.data(), static_cast<int>(value.size())) != 1) {
          GENERAL_NAME_free(gn);
          ASN1_IA5STRING_free(str);
          return Status::Error("subjectAltName DNS:" + value, EINVAL);
        }
        GENERAL_NAME_set0_value(gn, GEN_DNS, str);
      } else {
        ASN1_OCTET_STRING* ip = a2i_IPADDRESS(value.c_str());
        if (ip == nullptr) return Status::Error("subjectAltName IP:" + value + ": not an IP address", EINVAL);
        gn = GENERAL_NAME_new();
        if (gn == nullptr) {
          ASN1_OCTET_STRING_free(ip);
          return Status::Error("subjectAltName", ENOMEM);
        }
        GENERAL_NAME_set0_value(gn, GEN_IPADD, ip);
      }
      sk_GENERAL_NAME_push(sans.get(), gn);
      return Status::Ok();
    };
    for (const auto& d : dns_names) {
      if (Status st = add(GEN_DNS, d); !st.ok()) return st;
    }
    for (const auto& ip : ips) {
      if (Status st = add(GEN_IPADD, ip); !st.ok()) return st;
    }
    std::unique_ptr<STACK_OF(X509_EXTENSION), ExtsFree> exts(sk_X509_EXTENSION_new_null());
    X509_EXTENSION* ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, sans.get());
    if (ext == nullptr) return Status::Error("encode subjectAltName", EIO);
    sk_X509_EXTENSION_push(exts.get(), ext);
    if (X509_REQ_add_extensions(req.get(), exts.get()) != 1) return Status::Error("add subjectAltName to the CSR", EIO);
  }
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
  // Upstream's: a random point between 70% and 90% of the certificate's life (or the
  // fixed fraction given), drawn once per certificate.
  std::chrono::system_clock::time_point drawn_for{};
  double f = 0;
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
      if (f == 0 || drawn_for != info->not_after) {
        f = fraction_ > 0 ? fraction_ : std::uniform_real_distribution<double>(0.7, 0.9)(rng);
        drawn_for = info->not_after;
      }
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

// ---- the kubelet's serving certificate ----

std::string serving_pem_path(const std::string& cert_dir) { return cert_dir + "/kubelet-server-current.pem"; }

ServingCertManager::ServingCertManager(RestClient& client, Options o, OnCertificate on_cert)
    : client_(client), o_(std::move(o)), on_cert_(std::move(on_cert)) {}

ServingCertManager::~ServingCertManager() { stop(); }

std::optional<std::string> ServingCertManager::current(const std::string& cert_dir) {
  std::ifstream in(serving_pem_path(cert_dir), std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  auto info = parse_certificate(ss.str());
  const auto now = std::chrono::system_clock::now();
  if (!info.ok() || now < info->not_before || now >= info->not_after) return std::nullopt;
  if (ss.str().find("PRIVATE KEY-----") == std::string::npos) return std::nullopt;
  return ss.str();
}

void ServingCertManager::start() {
  worker_.start([this] { run(); });
}

void ServingCertManager::stop() { worker_.stop(); }

void ServingCertManager::run() {
  std::mt19937 rng(std::random_device{}());
  // The certificate served now (from the file at start, or issued), and when to renew it:
  // a random point between 70% and 90% of its life, drawn once per certificate.
  std::string pem;
  std::chrono::system_clock::time_point renew_at{};
  auto adopt = [&](std::string p) {
    auto info = parse_certificate(p);
    if (!info.ok()) return false;
    const double f = o_.fraction > 0 ? o_.fraction : std::uniform_real_distribution<double>(0.7, 0.9)(rng);
    const auto life = info->not_after - info->not_before;
    renew_at = info->not_before + std::chrono::duration_cast<std::chrono::system_clock::duration>(life * f);
    pem = std::move(p);
    on_cert_(pem);
    return true;
  };
  if (auto kept = current(o_.cert_dir)) adopt(std::move(*kept));
  // Between two requests that did not give a certificate: 30 s, doubling to an hour (a
  // denied request is not asked again every 30 s).
  auto backoff = std::chrono::seconds(30);
  auto sleeper = [this](std::chrono::milliseconds d) { return worker_.wait(d); };
  for (;;) {
    const auto now = std::chrono::system_clock::now();
    if (!pem.empty() && now < renew_at) {
      if (!worker_.wait(std::min<std::chrono::system_clock::duration>(renew_at - now, std::chrono::minutes(10)))) return;
      continue;
    }
    auto kc = make_node_csr(o_.node_name, o_.dns_names, o_.ips);
    if (kc.ok()) {
      KLOG(INFO, "asking for a serving certificate signed by the cluster's CA (kubernetes.io/kubelet-serving); an "
                 "administrator approves it: kubectl certificate approve")
          .kv("node", o_.node_name);
      auto cert = request_certificate(client_, o_.node_name, *kc, o_.timeout, "kubernetes.io/kubelet-serving",
                                      {"digital signature", "server auth"}, sleeper);
      if (cert.ok()) {
        std::string issued = *cert + kc->key_pem;
        std::error_code ec;
        std::filesystem::create_directories(o_.cert_dir, ec);
        Status s = write_file(serving_pem_path(o_.cert_dir), issued,
                              std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
        if (!s.ok()) KLOG(WARNING, "cannot keep the serving certificate for restarts").kv("err", s.message());
        if (adopt(std::move(issued))) {
          ++issued_;
          backoff = std::chrono::seconds(30);
          KLOG(INFO, "serving certificate issued").kv("file", serving_pem_path(o_.cert_dir))
              .kv("renewAt", std::to_string(std::chrono::system_clock::to_time_t(renew_at)));
          continue;
        }
        KLOG(WARNING, "the signer's answer is no certificate; asking again later");
      } else if (cert.status().error_number() == ECANCELED) {
        return;
      } else {
        KLOG(WARNING, "no serving certificate yet; asking again later")
            .kv("err", cert.status().message())
            .kv("inSeconds", backoff.count());
      }
    } else {
      KLOG(WARNING, "cannot make a serving certificate request").kv("err", kc.status().message());
    }
    if (!worker_.wait(backoff)) return;
    backoff = std::min<std::chrono::seconds>(backoff * 2, std::chrono::hours(1));
  }
}

}  // namespace knode::kube
