// The kubelet API's serving certificate: made once in the certificate directory, reused,
// made again when it no longer loads; the flags' files used as they are.
#include "server/serving_cert.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "fakes/fake_clock.h"
#include "support/temp_dir.h"

namespace knode::kubelet {
namespace {

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The subjectAltName entries as OpenSSL prints them ("DNS:n1, IP Address:192.168.77.11").
std::string sans_of(const std::string& pem) {
  BIO* b = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* c = PEM_read_bio_X509(b, nullptr, nullptr, nullptr);
  BIO_free(b);
  if (c == nullptr) return "unparsable";
  int i = X509_get_ext_by_NID(c, NID_subject_alt_name, -1);
  BIO* out = BIO_new(BIO_s_mem());
  X509V3_EXT_print(out, X509_get_ext(c, i), 0, 0);
  char* data = nullptr;
  long n = BIO_get_mem_data(out, &data);
  std::string s(data, static_cast<std::size_t>(n));
  BIO_free(out);
  X509_free(c);
  return s;
}

TEST(ServingCertificate, SelfSignedOnceForTheNodesNameAndIps) {
  knode::testing::TempDir dir;
  knode::testing::FakeClock clock;
  const std::string pki = dir.path() + "/pki";
  auto first = load_serving_certificate("", "", pki, "n1", {"192.168.77.11", "10.0.0.5"}, clock);
  ASSERT_TRUE(first.ok()) << first.error();
  EXPECT_TRUE(first->generated);
  EXPECT_EQ(first->cert_path, pki + "/kubelet.crt");
  EXPECT_EQ(first->key_path, pki + "/kubelet.key");
  EXPECT_EQ(read(first->cert_path), first->cert_pem);
  EXPECT_EQ(sans_of(first->cert_pem), "DNS:n1, IP Address:192.168.77.11, IP Address:10.0.0.5");
  struct stat st {};
  ASSERT_EQ(::stat(first->key_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  auto again = load_serving_certificate("", "", pki, "n1", {"192.168.77.11"}, clock);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->generated);
  EXPECT_EQ(again->cert_pem, first->cert_pem);

  std::ofstream(pki + "/kubelet.key") << "garbage";
  auto remade = load_serving_certificate("", "", pki, "n1", {"192.168.77.11"}, clock);
  ASSERT_TRUE(remade.ok());
  EXPECT_TRUE(remade->generated);
  EXPECT_NE(remade->cert_pem, first->cert_pem);
}

TEST(ServingCertificate, TheFlagsFilesAsTheyAre) {
  knode::testing::TempDir dir;
  knode::testing::FakeClock clock;
  std::ofstream(dir.path() + "/c.pem") << "CERT";
  std::ofstream(dir.path() + "/k.pem") << "KEY";
  auto c = load_serving_certificate(dir.path() + "/c.pem", dir.path() + "/k.pem",
                                    dir.path() + "/pki", "n1", {}, clock);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->cert_pem, "CERT");
  EXPECT_EQ(c->key_pem, "KEY");
  EXPECT_FALSE(c->generated);
  auto missing = load_serving_certificate(dir.path() + "/nope.pem", dir.path() + "/k.pem",
                                          dir.path() + "/pki", "n1", {}, clock);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().find("--tls-cert-file"), std::string::npos) << missing.error();
}

}  // namespace
}  // namespace knode::kubelet
