// A Source over a directory of manifests (kubelet's --pod-manifest-path, knode's
// --manifest-dir): any supported kind, one or many per file, .yaml/.yml/.json.
// Watches with inotify and rescans periodically; a file that turns invalid keeps its
// last good objects; an object defined by several files stays while any defines it.
#pragma once

#include <chrono>
#include <map>
#include <set>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "knode/source.h"

namespace knode {

struct FileStamp;  // a file's identity and stamp, as the last read saw it

// On every Pod the source reads: the path of the file that defines it.
inline constexpr char kManifestFileAnnotation[] = "knode.io/manifest-file";

class ManifestDirSource : public Source {
 public:
  struct Options {
    std::string dir;
    std::chrono::milliseconds rescan_period{std::chrono::seconds(20)};
    bool use_inotify = true;
    // Kinds whose objects the source does not keep once its sink has them (the proxy's,
    // when it is their only consumer): a deletion then carries a stub of the object
    // (api::stub_object), a modification no old object, and a file that is read again
    // reports its objects of these kinds again, changed or not.
    std::set<api::Kind> pass_through;
  };

  ManifestDirSource(boost::asio::io_context& io, Options options);
  ~ManifestDirSource() override;

  std::string name() const override { return "manifest-dir:" + options_.dir; }
  Status start(EventSink& sink) override;
  void stop() override;

  // Re-reads every file whose size, mtime, inode or mode changed, and forgets deleted
  // files. A world-writable directory or file is not read (an error says so).
  void rescan();
  // Errors seen on the last read of each file that had one (file -> message).
  const std::map<std::string, std::string>& file_errors() const { return file_errors_; }

 private:
  void arm_timer();
  void arm_inotify();
  // Whether the directory may be read (not world-writable); logs the transitions.
  bool directory_trusted();
  // Re-reads the files inotify named (a change costs what it touches, not a listing
  // and a stat of every file in the directory).
  void refresh(const std::set<std::string>& names);
  // Reads file `f` (stamped `st`) and applies what it defines.
  void read_file_now(const std::string& f, const FileStamp& st);
  // Object `key` as file `f` defines it, read again: for a kind the source does not keep,
  // when the definition in force moves to that file. Null unless the file is as it was
  // last read, without error.
  api::ObjectPtr reread(const std::string& f, const api::ObjectKey& key);
  // apply_file (manifest_dir.cc) for file `f`'s new objects.
  void apply(const std::string& f, std::map<api::ObjectKey, api::ObjectPtr> now);
  struct Impl;
  Options options_;
  std::unique_ptr<Impl> impl_;
  std::map<std::string, std::string> file_errors_;
};

bool is_manifest_file_name(const std::string& name);

}  // namespace knode
