#include "cluster/pod_certificates.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>

#include "cluster/pem.h"
#include "knode/api/base64.h"
#include "knode/openssl_ptr.h"

namespace knode::kubelet {
namespace {

using nlohmann::json;
using ossl::Ptr;

Ptr<X509_REQ> parse_csr(const std::string& der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  return Ptr<X509_REQ>(d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size())));
}

Ptr<EVP_PKEY> parse_key(const std::string& pem) {
  Ptr<BIO> b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return Ptr<EVP_PKEY>(PEM_read_bio_PrivateKey(b.get(), nullptr, nullptr, nullptr));
}

// The stub request is signed by the key (the proof of possession) and names nobody.
void expect_key_matches_csr(const std::string& key_pem, const std::string& csr_der) {
  auto csr = parse_csr(csr_der);
  ASSERT_TRUE(csr);
  auto key = parse_key(key_pem);
  ASSERT_TRUE(key);
  EXPECT_EQ(X509_REQ_verify(csr.get(), X509_REQ_get0_pubkey(csr.get())), 1);
  EXPECT_EQ(EVP_PKEY_eq(key.get(), X509_REQ_get0_pubkey(csr.get())), 1);
  EXPECT_EQ(X509_NAME_entry_count(X509_REQ_get_subject_name(csr.get())), 0);
}

TEST(PodCertificates, EveryKeyTypeSignsItsStubRequest) {
  const std::vector<std::pair<std::string, int>> types = {{"RSA3072", EVP_PKEY_RSA},   {"ECDSAP256", EVP_PKEY_EC},
                                                          {"ECDSAP384", EVP_PKEY_EC},  {"ECDSAP521", EVP_PKEY_EC},
                                                          {"ED25519", EVP_PKEY_ED25519}};
  for (const auto& [type, id] : types) {
    auto k = generate_key_and_stub_csr(type);
    ASSERT_TRUE(k.ok()) << type << ": " << k.status().message();
    EXPECT_EQ(k->key_pem.rfind("-----BEGIN PRIVATE KEY-----\n", 0), 0u) << type << " as PKCS#8";
    expect_key_matches_csr(k->key_pem, k->csr_der);
    EXPECT_EQ(EVP_PKEY_get_base_id(parse_key(k->key_pem).get()), id) << type;
  }
  auto bad = generate_key_and_stub_csr("DSA1024");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().error_number(), EINVAL);
}

api::Pod make_pod() {
  api::Pod p;
  p.metadata.name = "web";
  p.metadata.namespace_ = "shop";
  p.metadata.uid = "pod-uid";
  p.spec.service_account_name = "builder";
  return p;
}

api::PodCertificateProjection projection() {
  api::PodCertificateProjection p;
  p.signer_name = "x.io/spiffe";
  p.key_type = "ECDSAP256";
  p.credential_bundle_path = "bundle.pem";
  p.max_expiration_seconds = 3600;
  p.user_annotations = {{"x.io/path", "/custom"}};
  return p;
}

class FakeApi final : public PodCertificateApi {
 public:
  Result<json> create(const std::string& ns, const json& request) override {
    created.push_back(request);
    json obj = request;
    obj["metadata"]["name"] = "req-" + std::to_string(created.size());
    objects[ns + "/" + obj["metadata"]["name"].get<std::string>()] = obj;
    return obj;
  }
  Result<json> get(const std::string& ns, const std::string& name) override {
    auto it = objects.find(ns + "/" + name);
    if (it == objects.end()) return Status::Error("not found", ENOENT);
    return it->second;
  }
  Result<std::string> service_account_uid(const std::string& ns, const std::string& name) override {
    sa_asked.push_back(ns + "/" + name);
    return std::string("sa-uid");
  }
  Result<std::string> node_uid() override {
    ++node_asked;
    return std::string("node-uid");
  }
  void set_condition(const std::string& name, const std::string& type, json status_extra = json::object()) {
    json& o = objects.at("shop/" + name);
    status_extra["conditions"] = json::array({{{"type", type}, {"status", "True"}, {"reason", "Because"},
                                               {"message", "the signer said so"}}});
    o["status"] = status_extra;
  }
  std::vector<json> created;
  std::map<std::string, json> objects;
  std::vector<std::string> sa_asked;
  int node_asked = 0;
};

TEST(PodCertificates, TheRequestNamesThePodItsAccountTheNodeAndTheStub) {
  auto k = generate_key_and_stub_csr("ED25519");
  ASSERT_TRUE(k.ok());
  json r = pod_certificate_request(make_pod(), "sa-uid", "n1", "node-uid", projection(), k->csr_der);
  EXPECT_EQ(r["apiVersion"], "certificates.k8s.io/v1");
  EXPECT_EQ(r["metadata"]["namespace"], "shop");
  EXPECT_EQ(r["metadata"]["ownerReferences"][0]["uid"], "pod-uid");
  const json& s = r["spec"];
  EXPECT_EQ(s["signerName"], "x.io/spiffe");
  EXPECT_EQ(s["podName"], "web");
  EXPECT_EQ(s["podUID"], "pod-uid");
  EXPECT_EQ(s["serviceAccountName"], "builder");
  EXPECT_EQ(s["serviceAccountUID"], "sa-uid");
  EXPECT_EQ(s["nodeName"], "n1");
  EXPECT_EQ(s["nodeUID"], "node-uid");
  EXPECT_EQ(s["maxExpirationSeconds"], 3600);
  EXPECT_EQ(s["unverifiedUserAnnotations"]["x.io/path"], "/custom");
  EXPECT_EQ(api::base64_decode(s["stubPKCS10Request"].get<std::string>()), k->csr_der);
}

TEST(PodCertificates, WaitsForTheSignerThenServesKeyAndCleanChainAndRefreshes) {
  FakeApi api;
  auto now = std::chrono::system_clock::from_time_t(1'800'000'000);
  PodCertificateManager m(api, "n1", [&] { return now; });
  const auto pod = make_pod();
  auto r = m.credential(pod, "tls", 0, projection());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().error_number(), EAGAIN);
  EXPECT_NE(r.status().message().find("shop/req-1"), std::string::npos) << r.status().message();
  ASSERT_EQ(api.created.size(), 1u);
  EXPECT_EQ(api.sa_asked, std::vector<std::string>{"shop/builder"});
  // still pending: asked again, no second request
  EXPECT_EQ(m.credential(pod, "tls", 0, projection()).status().error_number(), EAGAIN);
  EXPECT_EQ(api.created.size(), 1u);

  const std::string leaf = pem_certificate("leaf-der"), ca = pem_certificate("ca-der");
  api.set_condition("req-1", "Issued",
                    {{"certificateChain", "junk\n" + leaf + "between\n" + ca}, {"beginRefreshAt", "2027-06-01T00:00:00Z"}});
  r = m.credential(pod, "tls", 0, projection());
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->chain_pem, leaf + ca);
  auto csr1 = api::base64_decode(api.created[0]["spec"]["stubPKCS10Request"].get<std::string>());
  expect_key_matches_csr(r->key_pem, *csr1);
  const std::string first_key = r->key_pem;

  // before beginRefreshAt (2027-06-01; now is 2027-01-15) nothing is asked; after, a new key is requested
  // while the first still serves
  EXPECT_EQ(m.credential(pod, "tls", 0, projection())->key_pem, first_key);
  EXPECT_EQ(api.created.size(), 1u);
  now = std::chrono::system_clock::from_time_t(1'800'000'000 + 86400 * 365);
  EXPECT_EQ(m.credential(pod, "tls", 0, projection())->key_pem, first_key);
  ASSERT_EQ(api.created.size(), 2u);
  api.set_condition("req-2", "Issued", {{"certificateChain", leaf}});
  r = m.credential(pod, "tls", 0, projection());
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->key_pem, first_key);
  expect_key_matches_csr(r->key_pem, *api::base64_decode(api.created[1]["spec"]["stubPKCS10Request"].get<std::string>()));
  EXPECT_EQ(api.node_asked, 1) << "the node's UID is asked once";

  // another source of the pod is its own request; forget() drops both
  EXPECT_EQ(m.credential(pod, "tls", 1, projection()).status().error_number(), EAGAIN);
  EXPECT_EQ(m.tracked(), 2u);
  m.forget("pod-uid");
  EXPECT_EQ(m.tracked(), 0u);
}

TEST(PodCertificates, ADeniedRequestIsFinal) {
  FakeApi api;
  PodCertificateManager m(api, "n1");
  const auto pod = make_pod();
  ASSERT_EQ(m.credential(pod, "tls", 0, projection()).status().error_number(), EAGAIN);
  api.set_condition("req-1", "Denied");
  for (int i = 0; i < 2; ++i) {
    auto r = m.credential(pod, "tls", 0, projection());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().error_number(), EPERM);
    EXPECT_EQ(r.status().message(), "PodCertificateRequest shop/req-1: Denied: Because: the signer said so");
  }
  EXPECT_EQ(api.created.size(), 1u);
}

}  // namespace
}  // namespace knode::kubelet
