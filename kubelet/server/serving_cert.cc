#include "server/serving_cert.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <memory>

#include "knode/file.h"
#include "knode/log.h"
#include "knode/openssl_errors.h"
#include "knode/openssl_ptr.h"
#include "knode/net.h"

namespace knode::kubelet {
namespace {

using ossl::bio_text;
using ossl::Ptr;

Status write_file(const std::string& path, const std::string& data, mode_t mode) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Status::FromErrno("write " + tmp, errno);
  ssize_t n = ::write(fd, data.data(), data.size());
  int err = errno;
  ::fchmod(fd, mode);
  ::close(fd);
  if (n != static_cast<ssize_t>(data.size()))
    return Status::FromErrno("write " + tmp, n < 0 ? err : EIO);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Status::FromErrno("rename " + tmp, errno);
  return Status::Ok();
}

// The pair is usable: both parse, the key is the certificate's, and it has not expired.
bool usable(const std::string& cert_pem, const std::string& key_pem, Clock::SystemTime now) {
  Ptr<BIO> cb(BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())));
  Ptr<X509> cert(PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr));
  Ptr<BIO> kb(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  Ptr<EVP_PKEY> key(PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr));
  const bool ok = cert && key && X509_check_private_key(cert.get(), key.get()) == 1 && [&] {
    time_t t = std::chrono::system_clock::to_time_t(now);
    return X509_cmp_time(X509_get0_notAfter(cert.get()), &t) > 0;
  }();
  ERR_clear_error();
  return ok;
}

Status add_extension(X509* cert, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  Ptr<X509_EXTENSION> ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return Status::Error("certificate extension " + value + ": " + openssl_errors(), EINVAL);
  }
  return Status::Ok();
}

}  // namespace

Result<std::pair<std::string, std::string>> make_self_signed_serving_certificate(
    const std::string& node_name, const std::vector<std::string>& ips, Clock::SystemTime now) {
  Ptr<EVP_PKEY> key(EVP_EC_gen("P-256"));
  if (!key) return Status::Error("generate a key: " + openssl_errors(), EIO);
  Ptr<X509> cert(X509_new());
  const long long unix_now =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set_int64(X509_get_serialNumber(cert.get()), unix_now);
  // Valid from an hour before, as upstream's, against clocks a little apart.
  ASN1_TIME_set(X509_getm_notBefore(cert.get()), static_cast<time_t>(unix_now - 3600));
  ASN1_TIME_set(X509_getm_notAfter(cert.get()), static_cast<time_t>(unix_now + 365LL * 24 * 3600));
  X509_set_pubkey(cert.get(), key.get());
  const std::string cn = node_name + "@" + std::to_string(unix_now);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  std::string sans;
  if (net::IPAddress::Parse(node_name)) {
    sans = "IP:" + node_name;
  } else {
    sans = "DNS:" + node_name;
  }
  for (const auto& ip : ips) {
    if (net::IPAddress::Parse(ip) && ip != node_name) sans += ",IP:" + ip;
  }
  for (auto [nid, value] : {std::pair<int, std::string>{NID_basic_constraints, "critical,CA:FALSE"},
                            {NID_key_usage, "critical,digitalSignature,keyEncipherment"},
                            {NID_ext_key_usage, "serverAuth"},
                            {NID_subject_key_identifier, "hash"},
                            {NID_subject_alt_name, sans}}) {
    if (Status s = add_extension(cert.get(), nid, value); !s.ok()) return s;
  }
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0)
    return Status::Error("sign: " + openssl_errors(), EIO);
  Ptr<BIO> cb(BIO_new(BIO_s_mem())), kb(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(cb.get(), cert.get());
  PEM_write_bio_PrivateKey(kb.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  return std::make_pair(bio_text(cb.get()), bio_text(kb.get()));
}

Result<ServingCertificate> load_serving_certificate(
    const std::string& cert_file, const std::string& key_file, const std::string& cert_dir,
    const std::string& node_name, const std::vector<std::string>& node_ips, const Clock& clock) {
  ServingCertificate out;
  if (!cert_file.empty() || !key_file.empty()) {
    if (cert_file.empty() || key_file.empty()) {
      return Status::Error("--tls-cert-file and --tls-private-key-file go together", EINVAL);
    }
    auto c = read_file(cert_file);
    if (!c.ok()) return c.status().Wrap("--tls-cert-file");
    auto k = read_file(key_file);
    if (!k.ok()) return k.status().Wrap("--tls-private-key-file");
    out.cert_pem = std::move(*c);
    out.key_pem = std::move(*k);
    out.cert_path = cert_file;
    out.key_path = key_file;
    return out;
  }
  out.cert_path = cert_dir + "/kubelet.crt";
  out.key_path = cert_dir + "/kubelet.key";
  auto c = read_file(out.cert_path);
  auto k = read_file(out.key_path);
  if (c.ok() && k.ok() && usable(*c, *k, clock.system_now())) {
    out.cert_pem = std::move(*c);
    out.key_pem = std::move(*k);
    return out;
  }
  std::error_code ec;
  std::filesystem::create_directories(cert_dir, ec);
  if (ec) return Status::Error("create " + cert_dir + ": " + ec.message(), ec.value());
  auto made = make_self_signed_serving_certificate(node_name, node_ips, clock.system_now());
  if (!made.ok()) return made.status().Wrap("self-signed serving certificate");
  if (Status s = write_file(out.key_path, made->second, 0600); !s.ok()) return s;
  if (Status s = write_file(out.cert_path, made->first, 0644); !s.ok()) return s;
  out.cert_pem = std::move(made->first);
  out.key_pem = std::move(made->second);
  out.generated = true;
  KLOG(INFO, "kubelet API: made a self-signed serving certificate")
      .kv("cert", out.cert_path)
      .kv("node", node_name);
  return out;
}

}  // namespace knode::kubelet
