#include "cluster/pod_writer.h"

#include "knode/api/codec.h"
#include "knode/json_get.h"
#include "knode/kube/informer.h"
#include "knode/log.h"
#include "pod/static_pod.h"

namespace knode::kubelet {

using nlohmann::json;

PodWriter::PodWriter(kube::RestClient& client, std::string node_name)
    : client_(client), node_name_(std::move(node_name)) {}

PodWriter::~PodWriter() { stop(); }

void PodWriter::start() {
  worker_.start([this] { run(); });
}

void PodWriter::stop() {
  worker_.stop([this] { cancel_.cancel(); });
}

void PodWriter::enqueue(Op op) {
  {
    std::lock_guard lock(worker_.mutex());
    if (op.kind == Op::kStatus) {
      // The latest status replaces one still waiting for the same pod.
      for (auto& q : queue_) {
        if (q.kind == Op::kStatus && q.ns == op.ns && q.name == op.name) {
          op.again = op.again || q.again;
          q = std::move(op);
          return;
        }
      }
    }
    queue_.push_back(std::move(op));
  }
  worker_.notify();
}

void PodWriter::status(const api::Pod& pod) {
  json j = api::to_json(api::Object(pod));
  // A static pod's status goes to its mirror, whose UID the API server chose.
  enqueue(Op{Op::kStatus, pod.metadata.namespace_, pod.metadata.name, is_static_pod(pod) ? "" : pod.metadata.uid,
             j["status"]});
}

void PodWriter::restate(const api::Pod& pod) {
  json j = api::to_json(api::Object(pod));
  Op op{Op::kStatus, pod.metadata.namespace_, pod.metadata.name, is_static_pod(pod) ? "" : pod.metadata.uid,
        j["status"]};
  op.again = true;
  enqueue(std::move(op));
}

void PodWriter::terminated(const api::Pod& pod) {
  enqueue(Op{Op::kDelete, pod.metadata.namespace_, pod.metadata.name, pod.metadata.uid, {}});
}

void PodWriter::mirror(const api::Pod& static_pod) {
  enqueue(Op{Op::kMirror, static_pod.metadata.namespace_, static_pod.metadata.name, "",
             api::to_json(api::Object(static_pod))});
}

void PodWriter::unmirror(const api::Pod& static_pod) {
  enqueue(Op{Op::kUnmirror, static_pod.metadata.namespace_, static_pod.metadata.name, "", {}});
}

std::string PodWriter::node_uid() {
  if (!node_uid_.empty()) return node_uid_;
  auto r = client_.request("GET", kube::object_path(api::Kind::kNode, "", node_name_), "", "application/json", &cancel_);
  if (r.ok() && r->ok()) {
    json n = json::parse(r->body, nullptr, false);
    node_uid_ = jget::str(jget::member(n, "metadata"), "uid");
  }
  return node_uid_;
}

namespace {

Status http_error(const std::string& what, const kube::Response& r) {
  return Status::Error(what + ": HTTP " + std::to_string(r.status) + ": " + kube::status_message(r), r.status);
}

}  // namespace

Status PodWriter::write_status(const Op& op) {
  const std::string key = op.ns + "/" + op.name;
  if (op.uid.empty()) unwritten_mirror_status_.erase(key);
  if (!op.again && written_.count(key) && written_[key] == op.body) return Status::Ok();
  json patch = {{"status", op.body}};
  if (!op.uid.empty()) patch["metadata"] = {{"uid", op.uid}};
  const std::string what = "update the status of pod " + key;
  auto r = client_.request("PATCH", kube::object_path(api::Kind::kPod, op.ns, op.name) + "/status", jget::dump(patch),
                           "application/merge-patch+json", &cancel_);
  if (!r.ok()) return r.status().Wrap(what);
  if (r->status == 404 && op.uid.empty()) {
    // A static pod's mirror not created yet: written once it is.
    unwritten_mirror_status_[key] = op;
    return Status::Ok();
  }
  if (r->status == 404 || r->status == 409) {
    // Gone, or another pod of that name (the UID precondition): nothing to update.
    KLOGV(1, "pod status not written").kv("pod", key).kv("status", r->status).kv("err", kube::status_message(*r));
    return Status::Ok();
  }
  if (!r->ok()) return http_error(what, *r);
  written_[key] = op.body;
  ++writes_;
  return Status::Ok();
}

Status PodWriter::delete_pod(const std::string& ns, const std::string& name, const std::string& uid, bool grace0) {
  json opts = {{"apiVersion", "v1"}, {"kind", "DeleteOptions"}};
  if (grace0) opts["gracePeriodSeconds"] = 0;
  if (!uid.empty()) opts["preconditions"] = {{"uid", uid}};
  const std::string what = "delete pod " + ns + "/" + name;
  auto r = client_.request("DELETE", kube::object_path(api::Kind::kPod, ns, name), jget::dump(opts), "application/json",
                           &cancel_);
  if (!r.ok()) return r.status().Wrap(what);
  if (r->status == 404 || r->status == 409) {  // gone already, or another pod now
    written_.erase(ns + "/" + name);
    return Status::Ok();
  }
  if (!r->ok()) return http_error(what, *r);
  written_.erase(ns + "/" + name);
  ++writes_;
  return Status::Ok();
}

Status PodWriter::create_mirror(const Op& op) {
  const std::string key = op.ns + "/" + op.name;
  const std::string what = "create the mirror pod " + key;
  auto decoded = api::decode_object(op.body, "static pod");
  if (!decoded.ok()) return decoded.status().Wrap(what);
  const std::string uid = node_uid();
  if (uid.empty()) return Status::Error(what + ": the Node's UID is not known yet", EAGAIN);
  api::Pod mirror = make_mirror_pod(api::get<api::Pod>(*decoded), node_name_, uid);
  const std::string hash = mirror.metadata.annotations[kConfigMirrorAnnotation];
  // An existing mirror of another version of the static pod goes first.
  auto cur = client_.request("GET", kube::object_path(api::Kind::kPod, op.ns, op.name), "", "application/json", &cancel_);
  if (!cur.ok()) return cur.status().Wrap(what);
  if (cur->ok()) {
    json existing = json::parse(cur->body, nullptr, false);
    const json& meta = jget::member(existing, "metadata");
    const std::string existing_hash = jget::str(jget::member(meta, "annotations"), kConfigMirrorAnnotation);
    if (existing_hash == hash && !meta.contains("deletionTimestamp")) {
      return Status::Ok();
    }
    if (Status s = delete_pod(op.ns, op.name, jget::str(meta, "uid"), true); !s.ok()) return s;
  }
  mirror.status = {};
  json body = api::to_json(api::Object(mirror));
  body["metadata"].erase("uid");
  body["metadata"].erase("resourceVersion");
  body.erase("status");
  auto r = client_.request("POST", kube::collection_path(api::Kind::kPod, op.ns), jget::dump(body), "application/json",
                           &cancel_);
  if (!r.ok()) return r.status().Wrap(what);
  if (r->status == 409) return Status::Error(what + ": a pod of that name exists", EAGAIN);
  if (!r->ok()) return http_error(what, *r);
  written_.erase(key);  // the new mirror has no status yet
  KLOG(INFO, "mirror pod created").kv("pod", key);
  ++writes_;
  if (auto it = unwritten_mirror_status_.find(key); it != unwritten_mirror_status_.end()) {
    Op st = it->second;
    unwritten_mirror_status_.erase(it);
    enqueue(std::move(st));
  } else {
    // Its status as the kubelet knows it now arrives with the next change; ask for it.
    KLOGV(2, "mirror pod created without a status yet").kv("pod", key);
  }
  return Status::Ok();
}

Status PodWriter::apply(const Op& op) {
  switch (op.kind) {
    case Op::kStatus:
      return write_status(op);
    case Op::kDelete:
      return delete_pod(op.ns, op.name, op.uid, true);
    case Op::kMirror:
      return create_mirror(op);
    case Op::kUnmirror:
      return delete_pod(op.ns, op.name, "", true);
  }
  return Status::Ok();
}

void PodWriter::run() {
  auto backoff = std::chrono::milliseconds(200);
  for (;;) {
    Op op;
    {
      std::unique_lock lock(worker_.mutex());
      if (!worker_.wait(lock, [this] { return !queue_.empty(); })) return;
      op = queue_.front();
      queue_.pop_front();
    }
    Status s = apply(op);
    if (s.ok()) {
      backoff = std::chrono::milliseconds(200);
      continue;
    }
    if (s.error_number() == ECANCELED) return;
    KLOG(WARNING, "API write failed; retrying").kv("err", s.message()).kv("retryIn", std::to_string(backoff.count()) + "ms");
    {
      std::unique_lock lock(worker_.mutex());
      // Retried first, unless a newer status for that pod is waiting.
      bool newer = false;
      for (const auto& q : queue_) newer |= q.kind == Op::kStatus && op.kind == Op::kStatus && q.ns == op.ns && q.name == op.name;
      if (!newer) queue_.push_front(op);
      if (!worker_.wait(lock, backoff)) return;
    }
    backoff = std::min(backoff * 2, std::chrono::milliseconds(10000));
  }
}

}  // namespace knode::kubelet
