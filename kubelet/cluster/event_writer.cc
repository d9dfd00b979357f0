#include "cluster/event_writer.h"

#include <cstdio>

#include "knode/log.h"
#include "knode/json_get.h"

namespace knode::kubelet {

using nlohmann::json;

namespace {

constexpr int64_t kNanos = 1000000000;
constexpr int64_t kAggregateWindow = 600 * kNanos;  // 10 minutes
constexpr double kSpamBurst = 25;
constexpr double kSpamRefillPerNano = 1.0 / (300.0 * kNanos);  // one every 5 minutes
constexpr size_t kMaxQueue = 1000;

}  // namespace

EventCorrelator::Decision EventCorrelator::observe(const EventTarget& t, const KubeletEvent& e, api::Time now) {
  Decision d;
  // The spam filter: a token bucket per object.
  auto& b = spam_[t.uid];
  if (b.last.is_set()) {
    b.tokens = std::min(kSpamBurst, b.tokens + static_cast<double>(now.unix_nanos() - b.last.unix_nanos()) * kSpamRefillPerNano);
  }
  b.last = now;
  if (b.tokens < 1) return d;  // kDrop
  b.tokens -= 1;
  const std::string key = t.uid + "|" + t.field_path + "|" + e.type + "|" + e.reason + "|" + e.message;
  auto it = seen_.find(key);
  if (it != seen_.end() && now.unix_nanos() - it->second.last.unix_nanos() < kAggregateWindow) {
    it->second.count++;
    it->second.last = now;
    d.kind = Decision::kUpdate;
  } else {
    char suffix[32];
    std::snprintf(suffix, sizeof suffix, ".%llx", static_cast<unsigned long long>(now.unix_nanos()));
    seen_[key] = Seen{t.name + suffix, 1, now, now};
    it = seen_.find(key);
    d.kind = Decision::kCreate;
  }
  d.name = it->second.name;
  d.count = it->second.count;
  d.first = it->second.first;
  d.last = it->second.last;
  // Forget what is too old to aggregate with (bounded memory).
  if (seen_.size() > 4096) {
    std::erase_if(seen_, [&](const auto& kv) { return now.unix_nanos() - kv.second.last.unix_nanos() >= kAggregateWindow; });
  }
  return d;
}

EventWriter::EventWriter(kube::RestClient& client, std::string node_name)
    : client_(client), node_(std::move(node_name)) {}

EventWriter::~EventWriter() { stop(); }

void EventWriter::start() {
  worker_.start([this] { run(); });
}

void EventWriter::stop() {
  worker_.stop([this] { cancel_.cancel(); });
}

void EventWriter::record(const EventTarget& target, const KubeletEvent& event) {
  {
    std::lock_guard lock(worker_.mutex());
    auto d = correlator_.observe(target, event, api::Time::Now());
    if (d.kind == EventCorrelator::Decision::kDrop || queue_.size() >= kMaxQueue) return;
    queue_.push_back(Item{target, event, d});
  }
  worker_.notify();
}

Status EventWriter::write(const Item& it) {
  const std::string ns = it.target.ns.empty() ? "default" : it.target.ns;
  const std::string base = "/api/v1/namespaces/" + ns + "/events";
  if (it.d.kind == EventCorrelator::Decision::kUpdate) {
    json patch = {{"count", it.d.count}, {"lastTimestamp", it.d.last.str()}};
    auto r = client_.request("PATCH", base + "/" + it.d.name, jget::dump(patch), "application/merge-patch+json", &cancel_);
    if (!r.ok()) return r.status();
    if (r->ok()) return Status::Ok();
    if (r->status != 404) return Status::Error("update event " + it.d.name + ": HTTP " + std::to_string(r->status));
    // Gone (events expire): create it again.
  }
  json involved = {{"kind", "Pod"}, {"apiVersion", "v1"}, {"namespace", ns}, {"name", it.target.name}, {"uid", it.target.uid}};
  if (!it.target.field_path.empty()) involved["fieldPath"] = it.target.field_path;
  json ev = {{"apiVersion", "v1"},
             {"kind", "Event"},
             {"metadata", {{"name", it.d.name}, {"namespace", ns}}},
             {"involvedObject", involved},
             {"reason", it.event.reason},
             {"message", it.event.message},
             {"type", it.event.type},
             {"source", {{"component", "kubelet"}, {"host", node_}}},
             {"reportingComponent", "kubelet"},
             {"reportingInstance", node_},
             {"firstTimestamp", it.d.first.str()},
             {"lastTimestamp", it.d.last.str()},
             {"count", it.d.count}};
  auto r = client_.request("POST", base, jget::dump(ev), "application/json", &cancel_);
  if (!r.ok()) return r.status();
  if (!r->ok() && r->status != 409) {
    return Status::Error("create event " + it.d.name + ": HTTP " + std::to_string(r->status) + ": " + kube::status_message(*r));
  }
  return Status::Ok();
}

void EventWriter::run() {
  for (;;) {
    Item it;
    {
      std::unique_lock lock(worker_.mutex());
      if (!worker_.wait(lock, [this] { return !queue_.empty(); })) return;
      it = std::move(queue_.front());
      queue_.pop_front();
    }
    Status s = write(it);
    if (s.ok()) {
      ++written_;
    } else if (s.error_number() == ECANCELED) {
      return;
    } else {
      // Events are best effort, as upstream's: one failed write is dropped, not retried.
      KLOGV(1, "event not written").kv("reason", it.event.reason).kv("err", s.message());
    }
  }
}

}  // namespace knode::kubelet
