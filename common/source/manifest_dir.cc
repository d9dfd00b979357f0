#include "knode/manifest_source.h"

#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <iterator>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include "knode/api/codec.h"
#include "knode/log.h"

namespace knode {
namespace fs = std::filesystem;

bool is_manifest_file_name(const std::string& name) {
  if (name.empty() || name[0] == '.') return false;  // editors' swap and temp files
  auto ends = [&](const char* ext) {
    size_t n = std::strlen(ext);
    return name.size() > n && name.compare(name.size() - n, n, ext) == 0;
  };
  return ends(".yaml") || ends(".yml") || ends(".json");
}

struct FileStamp {
  ino_t ino = 0;
  off_t size = -1;
  int64_t mtime_ns = -1;
  mode_t mode = 0;  // a chmod makes the file new again (world-writable files are refused)
  bool operator==(const FileStamp&) const = default;
};

struct ManifestDirSource::Impl {
  Impl(boost::asio::io_context& io) : io(io), timer(io), inotify(io) {}

  boost::asio::io_context& io;
  boost::asio::steady_timer timer;
  boost::asio::posix::stream_descriptor inotify;
  int watch = -1;
  std::array<char, 16 * 1024> buf{};
  EventSink* sink = nullptr;
  bool stopped = false;
  bool dir_refused = false;  // the directory is world-writable: nothing in it is read

  // Which objects each file holds now (keys, sorted), and which files define each object
  // (the first file by name is in force). The objects are kept once, in `defs`.
  std::map<std::string, std::vector<api::ObjectKey>> files;
  std::map<std::string, FileStamp> stamps;
  std::map<api::ObjectKey, std::map<std::string, api::ObjectPtr>> defs;  // null: not kept
  std::set<std::string> links;  // manifest names that are symbolic links
};

ManifestDirSource::ManifestDirSource(boost::asio::io_context& io, Options options)
    : options_(std::move(options)), impl_(std::make_unique<Impl>(io)) {}

ManifestDirSource::~ManifestDirSource() { stop(); }

namespace {

bool stamp_of(const std::string& path, FileStamp* out) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  out->ino = st.st_ino;
  out->size = st.st_size;
  out->mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  out->mode = st.st_mode & 07777;
  return true;
}

std::string octal_mode(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

std::string read_file(const std::string& path, bool* ok) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *ok = false;
    return {};
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  *ok = true;
  return ss.str();
}
}  // namespace

// Applies a file's new contents: recomputes the effective object of every key the file
// defined before or defines now, and emits what changed. In `now`, a null object keeps
// the file's previous definition of its key (its new one was rejected), for a kind the
// source does not keep.
static void apply_file(auto& impl, const std::set<api::Kind>& pass_through, const std::string& file,
                       std::map<api::ObjectKey, api::ObjectPtr> now, const std::function<api::ObjectPtr(const std::string&, const api::ObjectKey&)>& reread) {
  std::vector<api::ObjectKey> before;
  if (auto f = impl.files.find(file); f != impl.files.end()) before = std::move(f->second);
  std::vector<api::ObjectKey> now_keys;
  now_keys.reserve(now.size());
  for (const auto& [k, o] : now) now_keys.push_back(k);
  std::vector<api::ObjectKey> keys;
  std::set_union(before.begin(), before.end(), now_keys.begin(), now_keys.end(), std::back_inserter(keys));
  for (const auto& key : keys) {
    const bool keep = !pass_through.contains(key.kind);
    auto d = impl.defs.find(key);
    // The definition in force until now (the first file by name), and its file.
    std::optional<std::string> had_file;
    api::ObjectPtr had;
    if (d != impl.defs.end()) {
      had_file = d->second.begin()->first;
      had = d->second.begin()->second;
    }
    auto it = now.find(key);
    if (it != now.end()) {
      if (d == impl.defs.end()) d = impl.defs.emplace(key, std::map<std::string, api::ObjectPtr>{}).first;
      if (keep || it->second) d->second[file] = keep ? it->second : nullptr;
      else d->second.try_emplace(file, nullptr);  // rejected anew: the earlier definition stays
    } else if (d != impl.defs.end()) {
      d->second.erase(file);
    }
    std::optional<std::string> want_file;
    if (d != impl.defs.end() && !d->second.empty()) want_file = d->second.begin()->first;
    api::ObjectPtr want = want_file ? d->second.begin()->second : nullptr;
    if (d != impl.defs.end() && d->second.empty()) impl.defs.erase(d);
    if (!want_file && !had_file) continue;
    if (!keep) {
      // Nothing kept to compare with: a definition in force from this file is reported
      // again; one from another file only when it became the one in force.
      if (!want_file) {
        impl.sink->on_event(Event{EventType::kDeleted, std::make_shared<const api::Object>(api::stub_object(key, "")), nullptr});
        continue;
      }
      if (*want_file == file) {
        want = it != now.end() ? it->second : nullptr;
        if (!want) continue;  // its new version was rejected: the one in force stays
      } else {
        if (had_file == want_file) continue;
        want = reread(*want_file, key);
        if (!want) {
          // That file's definition is not at hand as it was last read (nothing of these
          // kinds is kept): none is in force until the file is read again.
          KLOG(ERROR, "object in force from a file changed, refused or invalid since it was read; removed until it is read again")
              .kv("object", key.str())
              .kv("file", *want_file);
          impl.sink->on_event(Event{EventType::kDeleted, std::make_shared<const api::Object>(api::stub_object(key, "")), nullptr});
          continue;
        }
      }
      impl.sink->on_event(Event{had_file ? EventType::kModified : EventType::kAdded, want, nullptr});
      continue;
    }
    if (!want) {
      impl.sink->on_event(Event{EventType::kDeleted, had, nullptr});
    } else if (!had) {
      impl.sink->on_event(Event{EventType::kAdded, want, nullptr});
    } else if (!(*had == *want)) {
      impl.sink->on_event(Event{EventType::kModified, want, had});
    }
  }
  if (now_keys.empty()) {
    impl.files.erase(file);
  } else {
    impl.files[file] = std::move(now_keys);
  }
}

Status ManifestDirSource::start(EventSink& sink) {
  impl_->sink = &sink;
  impl_->stopped = false;
  if (options_.use_inotify) {
    int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) return Status::FromErrno("inotify_init1", errno);
    impl_->inotify.assign(fd);
  }
  rescan();
  sink.on_synced(name());
  arm_timer();
  if (impl_->inotify.is_open()) arm_inotify();
  return Status::Ok();
}

void ManifestDirSource::arm_timer() {
  impl_->timer.expires_after(options_.rescan_period);
  impl_->timer.async_wait([this](const boost::system::error_code& ec) {
    if (ec || impl_->stopped) return;
    rescan();
    arm_timer();
  });
}

void ManifestDirSource::arm_inotify() {
  auto& impl = *impl_;
  impl.inotify.async_read_some(
      boost::asio::buffer(impl.buf), [this](const boost::system::error_code& ec, size_t n) {
        auto& impl = *impl_;
        if (ec || impl.stopped) return;
        // Files named by an event are re-read even when their stamp looks unchanged
        // (mtime is coarse; two quick same-size writes can share one). Only they are:
        // the whole directory is listed again only when the events cannot say what
        // changed (a lost watch, an overflowed queue), concern the directory itself, or
        // name another file while some manifest is a symbolic link (a ConfigMap-style
        // `..data` swap changes what the links read; other names cannot).
        bool whole = false;
        std::set<std::string> names;
        for (size_t off = 0; off + sizeof(inotify_event) <= n;) {
          const auto* ev = reinterpret_cast<const inotify_event*>(impl.buf.data() + off);
          if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) impl.watch = -1;
          if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_Q_OVERFLOW)) whole = true;
          if (ev->len > 0) {
            std::string name(ev->name, strnlen(ev->name, ev->len));
            if (is_manifest_file_name(name)) {
              names.insert(std::move(name));
            } else if (!impl.links.empty()) {
              whole = true;
            }
          } else {
            whole = true;  // about the directory itself (a chmod of it, say)
          }
          off += sizeof(inotify_event) + ev->len;
        }
        if (whole) {
          for (const auto& f : names) {
            auto it = impl.stamps.find(f);
            if (it != impl.stamps.end()) it->second.size = -2;  // re-read, whatever its stamp says
          }
          rescan();
        } else if (!names.empty()) {
          refresh(names);
        }
        arm_inotify();
      });
}

void ManifestDirSource::stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  impl_->timer.cancel();
  boost::system::error_code ec;
  if (impl_->inotify.is_open()) impl_->inotify.close(ec);
}

void ManifestDirSource::rescan() {
  auto& impl = *impl_;
  if (impl.stopped) return;
  const std::string& dir = options_.dir;

  // (Re-)arm the watch: the directory may appear, vanish or be replaced.
  if (impl.inotify.is_open() && impl.watch < 0) {
    impl.watch = ::inotify_add_watch(impl.inotify.native_handle(), dir.c_str(),
                                     IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
                                         IN_CREATE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR);
    if (impl.watch < 0) {
      KLOG(WARNING, "cannot watch manifest directory; will rescan")
          .kv("dir", dir).kv("err", std::strerror(errno));
    }
  }

  if (!directory_trusted()) return;

  std::set<std::string> present;
  std::error_code ec;
  std::set<std::string> links;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string fname = it->path().filename().string();
    if (!is_manifest_file_name(fname)) continue;
    std::error_code lec;
    if (it->is_symlink(lec)) links.insert(fname);
    present.insert(std::move(fname));
  }
  if (!ec) impl.links = std::move(links);
  if (ec && ec != std::errc::no_such_file_or_directory) {
    KLOG(WARNING, "cannot list manifest directory").kv("dir", dir).kv("err", ec.message());
    // Keep everything as it is: a transient listing error must not delete objects.
    present.clear();
    for (const auto& [f, s] : impl.stamps) present.insert(f);
  }
  // Forget files that are gone.
  std::vector<std::string> gone;
  for (const auto& [f, s] : impl.stamps) {
    if (!present.count(f)) gone.push_back(f);
  }
  for (const auto& f : gone) {
    impl.stamps.erase(f);
    file_errors_.erase(f);
    apply(f, {});
  }
  for (const auto& f : present) {
    FileStamp st;
    if (!stamp_of(dir + "/" + f, &st)) continue;
    auto it = impl.stamps.find(f);
    if (it != impl.stamps.end() && it->second == st) continue;
    read_file_now(f, st);
  }
}

bool ManifestDirSource::directory_trusted() {
  auto& impl = *impl_;
  const std::string& dir = options_.dir;
  // knode runs what this directory says as root: if anyone may write it, nothing in it is
  // trusted. What was read before stays in force (as for a listing error) until the
  // directory is fixed.
  struct stat dst;
  if (::stat(dir.c_str(), &dst) == 0 && (dst.st_mode & S_IWOTH)) {
    if (!impl.dir_refused) {
      KLOG(ERROR, "manifest directory is world-writable: refusing to read it (chmod o-w)")
          .kv("dir", dir).kv("mode", octal_mode(dst.st_mode));
    }
    impl.dir_refused = true;
    return false;
  }
  if (impl.dir_refused) KLOG(INFO, "manifest directory no longer world-writable; reading it").kv("dir", dir);
  impl.dir_refused = false;
  return true;
}

void ManifestDirSource::refresh(const std::set<std::string>& names) {
  auto& impl = *impl_;
  if (impl.stopped) return;
  const bool was_refused = impl.dir_refused;
  if (!directory_trusted()) return;
  if (was_refused) {
    // Trusted again: what happened meanwhile is only known from a listing.
    rescan();
    return;
  }
  for (const auto& f : names) {
    const std::string path = options_.dir + "/" + f;
    struct stat link;
    const bool exists = ::lstat(path.c_str(), &link) == 0;
    const int lstat_errno = exists ? 0 : errno;
    if (exists && S_ISLNK(link.st_mode)) {
      impl.links.insert(f);
    } else {
      impl.links.erase(f);
    }
    FileStamp st;
    if (stamp_of(path, &st)) {
      read_file_now(f, st);
      continue;
    }
    if (lstat_errno == ENOENT && impl.stamps.erase(f)) {
      // Gone (deleted or renamed away): what it defined goes.
      file_errors_.erase(f);
      apply(f, {});
    }
  }
}

void ManifestDirSource::apply(const std::string& f, std::map<api::ObjectKey, api::ObjectPtr> now) {
  apply_file(*impl_, options_.pass_through, f, std::move(now),
             [this](const std::string& file, const api::ObjectKey& key) { return reread(file, key); });
}

// Only a file read without error whose stamp has not moved since: its objects on disk
// are those in force (the last definition of a key in the file, as read_file_now takes).
api::ObjectPtr ManifestDirSource::reread(const std::string& f, const api::ObjectKey& key) {
  auto& impl = *impl_;
  FileStamp now;
  auto last = impl.stamps.find(f);
  if (file_errors_.count(f) || last == impl.stamps.end() || !stamp_of(options_.dir + "/" + f, &now) ||
      !(now == last->second) || (now.mode & S_IWOTH)) {
    return nullptr;
  }
  bool ok;
  std::string data = read_file(options_.dir + "/" + f, &ok);
  if (!ok) return nullptr;
  auto decoded = api::decode_manifest(data, f);
  if (!decoded.ok()) return nullptr;
  api::ObjectPtr out;
  for (auto& obj : decoded->objects) {
    if (api::key_of(*obj) == key) out = obj;
  }
  return out;
}

void ManifestDirSource::read_file_now(const std::string& f, const FileStamp& st) {
  auto& impl = *impl_;
  const std::string& dir = options_.dir;
  {
    impl.stamps[f] = st;
    if (st.mode & S_IWOTH) {
      // As an unreadable file: its last good objects stay in force.
      std::string err = "manifest file " + dir + "/" + f + " is world-writable (mode " + octal_mode(st.mode) +
                        "): refused; chmod o-w to use it";
      KLOG(ERROR, "refused world-writable manifest file; keeping its last good objects").kv("err", err);
      file_errors_[f] = err;
      return;
    }
    bool ok;
    std::string data = read_file(dir + "/" + f, &ok);
    if (!ok) return;
    auto decoded = api::decode_manifest(data, f);
    if (!decoded.ok()) {
      // The whole file is unreadable: its last good objects stay in force.
      KLOG(ERROR, "invalid manifest file; keeping its last good objects").kv("err", decoded.error());
      file_errors_[f] = decoded.error();
      return;
    }
    std::map<api::ObjectKey, api::ObjectPtr> now;
    for (auto& obj : decoded->objects) {
      if (const auto* pod = api::get_if<api::Pod>(obj.get())) {
        // Static pods are identified by their file too (kubelet/pod/static_pod.h).
        api::Pod copy = *pod;
        copy.metadata.annotations[kManifestFileAnnotation] = dir + "/" + f;
        obj = std::make_shared<const api::Object>(std::move(copy));
      }
      auto key = api::key_of(*obj);
      if (now.count(key)) KLOG(WARNING, "object defined twice in one file").kv("file", f).kv("object", key.str());
      now[key] = obj;
    }
    std::string errors;
    for (const auto& r : decoded->rejected) {
      KLOG(ERROR, "rejected object").kv("err", r.error);
      errors += (errors.empty() ? "" : "; ") + r.error;
      // A bad version of an object keeps its last good version (this file's), as the API
      // server would.
      if (r.key && !now.count(*r.key)) {
        if (auto d = impl.defs.find(*r.key); d != impl.defs.end()) {
          if (auto old = d->second.find(f); old != d->second.end()) now[*r.key] = old->second;
        }
      }
    }
    if (errors.empty()) {
      file_errors_.erase(f);
    } else {
      file_errors_[f] = errors;
    }
    apply(f, std::move(now));
  }
}

}  // namespace knode
