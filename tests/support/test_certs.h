// Certificates for TLS tests, made in memory with OpenSSL (ECDSA P-256): a CA, and leaves
// it signs for servers (with IP SANs) and clients (CN and O=, extended key usage
// clientAuth), as a cluster's PKI has them. Also a blocking TLS client over loopback.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace knode::testing {

struct KeyCert {
  std::string key_pem, cert_pem;
};

namespace certs_detail {

inline std::string bio_string(BIO* b) {
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  std::string out(data, static_cast<std::size_t>(n));
  BIO_free(b);
  return out;
}

inline std::string key_pem(EVP_PKEY* k) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(b, k, nullptr, nullptr, 0, nullptr, nullptr);
  return bio_string(b);
}

inline std::string cert_pem(X509* c) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, c);
  return bio_string(b);
}

inline EVP_PKEY* read_key(const std::string& pem) {
  BIO* b = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* k = PEM_read_bio_PrivateKey(b, nullptr, nullptr, nullptr);
  BIO_free(b);
  return k;
}

inline X509* read_cert(const std::string& pem) {
  BIO* b = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* c = PEM_read_bio_X509(b, nullptr, nullptr, nullptr);
  BIO_free(b);
  return c;
}

inline void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) throw std::runtime_error("bad extension " + value);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// Signs a certificate for `key` with (issuer, issuer_key), or self-signed when issuer is null.
inline KeyCert make(const std::string& cn, const std::vector<std::string>& orgs, X509* issuer,
                    EVP_PKEY* issuer_key, bool ca, bool server, bool client,
                    const std::vector<std::string>& ip_sans, int days) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  static long serial = 1000;
  ASN1_INTEGER_set(X509_get_serialNumber(cert), ++serial);
  X509_gmtime_adj(X509_getm_notBefore(cert), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert), static_cast<long>(days) * 86400);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  for (const auto& o : orgs) {
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(o.c_str()), -1, -1, 0);
  }
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* signer = issuer != nullptr ? issuer : cert;
  X509_set_issuer_name(cert, X509_get_subject_name(signer));
  if (ca) {
    add_ext(cert, signer, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(cert, signer, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
  } else {
    add_ext(cert, signer, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(cert, signer, NID_key_usage, "critical,digitalSignature,keyEncipherment");
    std::string eku = server ? "serverAuth" : "";
    if (client) eku += std::string(eku.empty() ? "" : ",") + "clientAuth";
    if (!eku.empty()) add_ext(cert, signer, NID_ext_key_usage, eku);
  }
  if (!ip_sans.empty()) {
    std::string sans;
    for (const auto& ip : ip_sans) sans += (sans.empty() ? "IP:" : ",IP:") + ip;
    add_ext(cert, signer, NID_subject_alt_name, sans);
  }
  X509_sign(cert, issuer_key != nullptr ? issuer_key : key, EVP_sha256());
  KeyCert out{key_pem(key), cert_pem(cert)};
  X509_free(cert);
  EVP_PKEY_free(key);
  return out;
}

}  // namespace certs_detail

inline KeyCert make_ca(const std::string& cn = "test-ca") {
  return certs_detail::make(cn, {}, nullptr, nullptr, true, false, false, {}, 30);
}

// A leaf signed by `ca`: a server certificate for ip_sans, and/or a client certificate.
inline KeyCert issue(const KeyCert& ca, const std::string& cn,
                     const std::vector<std::string>& orgs = {}, bool server = false,
                     bool client = true, const std::vector<std::string>& ip_sans = {},
                     int days = 30) {
  X509* ca_cert = certs_detail::read_cert(ca.cert_pem);
  EVP_PKEY* ca_key = certs_detail::read_key(ca.key_pem);
  KeyCert out = certs_detail::make(cn, orgs, ca_cert, ca_key, false, server, client, ip_sans, days);
  X509_free(ca_cert);
  EVP_PKEY_free(ca_key);
  return out;
}

// A blocking TLS client on 127.0.0.1:port that does not check the server's certificate,
// optionally presenting its own.
class TlsClient {
 public:
  explicit TlsClient(uint16_t port, const KeyCert* client_cert = nullptr) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (client_cert != nullptr) {
      X509* c = certs_detail::read_cert(client_cert->cert_pem);
      EVP_PKEY* k = certs_detail::read_key(client_cert->key_pem);
      SSL_CTX_use_certificate(ctx_, c);
      SSL_CTX_use_PrivateKey(ctx_, k);
      X509_free(c);
      EVP_PKEY_free(k);
    }
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return;
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    connected_ = SSL_connect(ssl_) == 1;
    ERR_clear_error();
  }
  ~TlsClient() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
    SSL_CTX_free(ctx_);
  }
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  bool connected() const { return connected_; }
  // The common name of the certificate the server presented ("" when none).
  std::string server_common_name() const {
    if (!connected_) return "";
    X509* cert = SSL_get1_peer_certificate(ssl_);
    if (cert == nullptr) return "";
    char cn[256] = {0};
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
    X509_free(cert);
    return cn;
  }
  bool send(const std::string& bytes) {
    return connected_ && SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size())) ==
                             static_cast<int>(bytes.size());
  }
  // Reads until `needle` has arrived (kept in the buffer, returned whole), the server
  // closes, or 5 s pass without data.
  std::string read_until(const std::string& needle) {
    char buf[4096];
    while (connected_ && pending_.find(needle) == std::string::npos) {
      int n = SSL_read(ssl_, buf, sizeof buf);
      if (n <= 0) break;
      pending_.append(buf, static_cast<std::size_t>(n));
    }
    ERR_clear_error();
    std::string out;
    out.swap(pending_);
    return out;
  }
  // Everything until the server closes (or the 5 s receive timeout).
  std::string read_all() {
    std::string out;
    char buf[4096];
    while (connected_) {
      int n = SSL_read(ssl_, buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
    ERR_clear_error();
    return out;
  }
  // The response of a "Connection: close" request: status and body (Content-Length bodies).
  std::pair<int, std::string> request(const std::string& raw) {
    if (!send(raw)) return {0, ""};
    std::string all = read_all();
    auto end = all.find("\r\n\r\n");
    if (all.size() < 12 || end == std::string::npos) return {0, all};
    return {std::atoi(all.c_str() + 9), all.substr(end + 4)};
  }

 private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  bool connected_ = false;
  std::string pending_;
};

}  // namespace knode::testing
