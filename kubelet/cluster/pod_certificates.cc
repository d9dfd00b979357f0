#include "cluster/pod_certificates.h"

#include <openssl/pem.h>

#include "cluster/pem.h"
#include "knode/api/base64.h"
#include "knode/json_get.h"
#include "knode/log.h"
#include "knode/openssl_errors.h"
#include "knode/openssl_ptr.h"

namespace knode::kubelet {

using nlohmann::json;
using ossl::Ptr;

namespace {

constexpr char kPcrPath[] = "/apis/certificates.k8s.io/v1/namespaces/";

std::string http_error(const std::string& what, const kube::Response& r) {
  return what + ": HTTP " + std::to_string(r.status) + ": " + kube::status_message(r);
}

// One condition of the request's status that is True: {type, reason, message}.
std::optional<json> true_condition(const json& pcr, const std::string& type) {
  for (const auto& c : jget::array(jget::member(pcr, "status"), "conditions")) {
    if (c.is_object() && jget::str(c, "type") == type && jget::str(c, "status") == "True") return c;
  }
  return std::nullopt;
}

class RestApi final : public PodCertificateApi {
 public:
  RestApi(kube::RestClient& client, std::string node) : client_(client), node_(std::move(node)) {}

  Result<json> create(const std::string& ns, const json& request) override {
    const std::string what = "create a PodCertificateRequest in " + ns;
    auto r = client_.request("POST", kPcrPath + ns + "/podcertificaterequests", jget::dump(request), "application/json");
    if (!r.ok()) return r.status().Wrap(what);
    if (!r->ok()) return Status::Error(http_error(what, *r), r->status == 403 ? EPERM : EIO);
    return parse(r->body, what);
  }
  Result<json> get(const std::string& ns, const std::string& name) override {
    const std::string what = "PodCertificateRequest " + ns + "/" + name;
    auto r = client_.get(kPcrPath + ns + "/podcertificaterequests/" + name);
    if (!r.ok()) return r.status().Wrap(what);
    if (r->status == 404) return Status::Error(what + " not found", ENOENT);
    if (!r->ok()) return Status::Error(http_error(what, *r), EIO);
    return parse(r->body, what);
  }
  Result<std::string> service_account_uid(const std::string& ns, const std::string& name) override {
    const std::string what = "ServiceAccount " + ns + "/" + name;
    auto r = client_.get("/api/v1/namespaces/" + ns + "/serviceaccounts/" + name);
    if (!r.ok()) return r.status().Wrap(what);
    if (!r->ok()) return Status::Error(http_error(what, *r), r->status == 404 ? ENOENT : EIO);
    return uid_of(r->body, what);
  }
  Result<std::string> node_uid() override {
    const std::string what = "Node " + node_;
    auto r = client_.get("/api/v1/nodes/" + node_);
    if (!r.ok()) return r.status().Wrap(what);
    if (!r->ok()) return Status::Error(http_error(what, *r), EIO);
    return uid_of(r->body, what);
  }

 private:
  static Result<json> parse(const std::string& body, const std::string& what) {
    json j = json::parse(body, nullptr, false);
    if (!j.is_object()) return Status::Error(what + ": the answer is not a JSON object", EIO);
    return j;
  }
  static Result<std::string> uid_of(const std::string& body, const std::string& what) {
    auto j = parse(body, what);
    if (!j.ok()) return j.status();
    std::string uid = jget::str(jget::member(*j, "metadata"), "uid");
    if (uid.empty()) return Status::Error(what + " has no metadata.uid", EIO);
    return uid;
  }

  kube::RestClient& client_;
  std::string node_;
};

}  // namespace

std::unique_ptr<PodCertificateApi> rest_pod_certificate_api(kube::RestClient& client, std::string node_name) {
  return std::make_unique<RestApi>(client, std::move(node_name));
}

Result<KeyAndStubCsr> generate_key_and_stub_csr(const std::string& key_type) {
  Ptr<EVP_PKEY> key;
  const EVP_MD* md = EVP_sha256();  // as Go's x509.CreateCertificateRequest picks them
  if (key_type == "RSA3072" || key_type == "RSA4096") {
    key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(key_type == "RSA3072" ? 3072 : 4096)));
  } else if (key_type == "ECDSAP256") {
    key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  } else if (key_type == "ECDSAP384") {
    key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"));
    md = EVP_sha384();
  } else if (key_type == "ECDSAP521") {
    key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-521"));
    md = EVP_sha512();
  } else if (key_type == "ED25519") {
    key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
    md = nullptr;  // Ed25519 signs the message itself
  } else {
    return Status::Error("unknown key type \"" + key_type + "\"", EINVAL);
  }
  if (!key) return Status::Error("generate a " + key_type + " key: " + openssl_errors(), EIO);
  Ptr<X509_REQ> req(X509_REQ_new());
  if (!req || X509_REQ_set_version(req.get(), 0) != 1 || X509_REQ_set_pubkey(req.get(), key.get()) != 1 ||
      X509_REQ_sign(req.get(), key.get(), md) <= 0) {
    return Status::Error("sign the stub PKCS#10 request: " + openssl_errors(), EIO);
  }
  unsigned char* der = nullptr;
  int n = i2d_X509_REQ(req.get(), &der);
  if (n <= 0) return Status::Error("encode the stub PKCS#10 request: " + openssl_errors(), EIO);
  KeyAndStubCsr out;
  out.csr_der.assign(reinterpret_cast<const char*>(der), static_cast<size_t>(n));
  OPENSSL_free(der);
  Ptr<BIO> kb(BIO_new(BIO_s_mem()));
  if (!kb || PEM_write_bio_PrivateKey(kb.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return Status::Error("PEM-encode the key: " + openssl_errors(), EIO);
  }
  out.key_pem = ossl::bio_text(kb.get());
  return out;
}

json pod_certificate_request(const api::Pod& pod, const std::string& service_account_uid, const std::string& node_name,
                             const std::string& node_uid, const api::PodCertificateProjection& p,
                             const std::string& csr_der) {
  json spec = {{"signerName", p.signer_name},
               {"podName", pod.metadata.name},
               {"podUID", pod.metadata.uid},
               {"serviceAccountName", pod.spec.service_account_name},
               {"serviceAccountUID", service_account_uid},
               {"nodeName", node_name},
               {"nodeUID", node_uid},
               {"stubPKCS10Request", api::base64_encode(csr_der)}};
  if (p.max_expiration_seconds) spec["maxExpirationSeconds"] = *p.max_expiration_seconds;
  if (!p.user_annotations.empty()) spec["unverifiedUserAnnotations"] = p.user_annotations;
  return {{"apiVersion", "certificates.k8s.io/v1"},
          {"kind", "PodCertificateRequest"},
          {"metadata",
           {{"namespace", pod.metadata.namespace_},
            {"generateName", "req-"},
            {"ownerReferences",
             json::array({{{"apiVersion", "v1"}, {"kind", "Pod"}, {"name", pod.metadata.name}, {"uid", pod.metadata.uid}}})}}},
          {"spec", spec}};
}

PodCertificateManager::PodCertificateManager(PodCertificateApi& api, std::string node_name, Now now)
    : api_(api), node_name_(std::move(node_name)), now_(std::move(now)) {}

Result<PodCertificateManager::Pending> PodCertificateManager::request(const api::Pod& pod,
                                                                      const api::PodCertificateProjection& p) {
  std::string node_uid;
  {
    std::lock_guard lock(mu_);
    node_uid = node_uid_;
  }
  if (node_uid.empty()) {
    auto uid = api_.node_uid();
    if (!uid.ok()) return uid.status();
    node_uid = *uid;
    std::lock_guard lock(mu_);
    node_uid_ = node_uid;
  }
  auto sa_uid = api_.service_account_uid(pod.metadata.namespace_, pod.spec.service_account_name);
  if (!sa_uid.ok()) return sa_uid.status();
  auto key = generate_key_and_stub_csr(p.key_type);
  if (!key.ok()) return key.status().Wrap("keyType");
  auto created = api_.create(pod.metadata.namespace_,
                             pod_certificate_request(pod, *sa_uid, node_name_, node_uid, p, key->csr_der));
  if (!created.ok()) return created.status();
  std::string name = jget::str(jget::member(*created, "metadata"), "name");
  if (name.empty()) return Status::Error("the created PodCertificateRequest has no name", EIO);
  KLOG(INFO, "pod certificate requested").kv("pod", pod.metadata.namespace_ + "/" + pod.metadata.name)
      .kv("request", name).kv("signer", p.signer_name).kv("keyType", p.key_type);
  return Pending{name, key->key_pem};
}

Result<PodCredential> PodCertificateManager::credential(const api::Pod& pod, const std::string& volume, size_t index,
                                                        const api::PodCertificateProjection& p) {
  const Key key{pod.metadata.uid, volume, index};
  Record rec;
  {
    std::lock_guard lock(mu_);
    if (auto it = records_.find(key); it != records_.end()) rec = it->second;
  }
  const std::string ns = pod.metadata.namespace_;
  if (rec.pending) {
    const std::string what = "PodCertificateRequest " + ns + "/" + rec.pending->name;
    auto pcr = api_.get(ns, rec.pending->name);
    if (pcr.ok()) {
      if (true_condition(*pcr, "Issued")) {
        const json& status = jget::member(*pcr, "status");
        auto chain = clean_certificate_chain(jget::str(status, "certificateChain"));
        if (!chain.ok() || chain->empty()) {
          rec.final_error = what + ": the issued certificateChain is not PEM";
        } else {
          Issued issued{rec.pending->key_pem, *chain, std::nullopt};
          if (auto t = api::Time::Parse(jget::str(status, "beginRefreshAt"))) {
            issued.begin_refresh_at = std::chrono::system_clock::time_point(std::chrono::nanoseconds(t->unix_nanos()));
          }
          rec.current = std::move(issued);
          KLOG(INFO, "pod certificate issued").kv("pod", ns + "/" + pod.metadata.name).kv("request", rec.pending->name);
        }
        rec.pending.reset();
      } else {
        for (const char* type : {"Denied", "Failed"}) {
          if (auto c = true_condition(*pcr, type)) {
            std::string why = what + ": " + type + ": " + jget::str(*c, "reason") + ": " + jget::str(*c, "message");
            KLOG(WARNING, "pod certificate not issued").kv("pod", ns + "/" + pod.metadata.name).kv("err", why);
            rec.pending.reset();
            if (!rec.current) rec.final_error = why;
            break;
          }
        }
      }
    } else if (pcr.status().error_number() == ENOENT) {
      rec.pending.reset();  // gone (deleted by someone): ask again
    }
  }
  const bool refresh_due = rec.current && rec.current->begin_refresh_at && now_() >= *rec.current->begin_refresh_at;
  Status asked = Status::Ok();
  if (rec.final_error.empty() && !rec.pending && (!rec.current || refresh_due)) {
    auto pending = request(pod, p);
    if (pending.ok()) {
      rec.pending = std::move(*pending);
    } else {
      asked = pending.status();
    }
  }
  {
    std::lock_guard lock(mu_);
    records_[key] = rec;
  }
  if (rec.current) return PodCredential{rec.current->key_pem, rec.current->chain_pem};
  if (!rec.final_error.empty()) return Status::Error(rec.final_error, EPERM);
  if (!asked.ok()) return asked;
  return Status::Error("waiting for PodCertificateRequest " + ns + "/" + rec.pending->name + " to be issued by " +
                           p.signer_name,
                       EAGAIN);
}

void PodCertificateManager::forget(const std::string& pod_uid) {
  std::lock_guard lock(mu_);
  std::erase_if(records_, [&](const auto& kv) { return std::get<0>(kv.first) == pod_uid; });
}

size_t PodCertificateManager::tracked() const {
  std::lock_guard lock(mu_);
  return records_.size();
}

}  // namespace knode::kubelet
