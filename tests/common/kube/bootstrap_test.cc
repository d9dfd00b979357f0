// The node's certificate requests: the serving CSR's subject and subjectAltNames (what
// the kubelet-serving signer checks), and the serving certificate kept on disk.
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "knode/kube/bootstrap.h"
#include "support/temp_dir.h"
#include "support/test_certs.h"

namespace knode::kube {
namespace {

struct Csr {
  std::string subject;
  std::set<std::string> sans;
  bool has_extensions = false;
};

Csr read_csr(const std::string& pem) {
  Csr out;
  BIO* b = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509_REQ* req = PEM_read_bio_X509_REQ(b, nullptr, nullptr, nullptr);
  BIO_free(b);
  if (req == nullptr) return out;
  char buf[512];
  X509_NAME_oneline(X509_REQ_get_subject_name(req), buf, sizeof buf);
  out.subject = buf;
  STACK_OF(X509_EXTENSION)* exts = X509_REQ_get_extensions(req);
  out.has_extensions = exts != nullptr && sk_X509_EXTENSION_num(exts) > 0;
  if (exts != nullptr) {
    auto* names = static_cast<GENERAL_NAMES*>(X509V3_get_d2i(exts, NID_subject_alt_name, nullptr, nullptr));
    for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, i);
      if (gn->type == GEN_DNS) {
        out.sans.insert("DNS:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(gn->d.dNSName)),
                                             static_cast<size_t>(ASN1_STRING_length(gn->d.dNSName))));
      } else if (gn->type == GEN_IPADD) {
        const unsigned char* p = ASN1_STRING_get0_data(gn->d.iPAddress);
        const int n = ASN1_STRING_length(gn->d.iPAddress);
        std::string ip;
        if (n == 4) {
          ip = std::to_string(p[0]) + "." + std::to_string(p[1]) + "." + std::to_string(p[2]) + "." + std::to_string(p[3]);
        } else {
          ip = "v6:" + std::to_string(n);
        }
        out.sans.insert("IP:" + ip);
      }
    }
    GENERAL_NAMES_free(names);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  }
  X509_REQ_free(req);
  return out;
}

TEST(NodeCsr, ServingRequestCarriesTheNodesNamesAndAddresses) {
  auto kc = make_node_csr("n1", {"n1"}, {"192.168.77.11", "fd00::11"});
  ASSERT_TRUE(kc.ok()) << kc.status().message();
  const Csr csr = read_csr(kc->csr_pem);
  EXPECT_EQ(csr.subject, "/O=system:nodes/CN=system:node:n1");
  EXPECT_EQ(csr.sans, (std::set<std::string>{"DNS:n1", "IP:192.168.77.11", "IP:v6:16"}));
  EXPECT_NE(kc->key_pem.find("PRIVATE KEY-----"), std::string::npos);

  // The client request has no extensions at all (the client signer refuses SANs).
  auto client = make_node_csr("n1");
  ASSERT_TRUE(client.ok());
  const Csr c = read_csr(client->csr_pem);
  EXPECT_EQ(c.subject, "/O=system:nodes/CN=system:node:n1");
  EXPECT_FALSE(c.has_extensions);

  EXPECT_FALSE(make_node_csr("n1", {}, {"not-an-ip"}).ok());
}

TEST(ServingCertManager, KeepsOnlyAValidCertificateWithItsKey) {
  knode::testing::TempDir dir;
  EXPECT_FALSE(ServingCertManager::current(dir.path()).has_value()) << "no file";
  auto ca = knode::testing::make_ca("cluster-signing");
  auto cert = knode::testing::issue(ca, "system:node:n1", {"system:nodes"}, /*server=*/true, /*client=*/false);
  {
    std::ofstream(serving_pem_path(dir.path())) << cert.cert_pem;  // no key
  }
  EXPECT_FALSE(ServingCertManager::current(dir.path()).has_value()) << "a certificate without its key";
  {
    std::ofstream(serving_pem_path(dir.path())) << cert.cert_pem << cert.key_pem;
  }
  auto kept = ServingCertManager::current(dir.path());
  ASSERT_TRUE(kept.has_value());
  EXPECT_EQ(*kept, cert.cert_pem + cert.key_pem);
}

}  // namespace
}  // namespace knode::kube
