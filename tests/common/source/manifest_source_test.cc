// The manifest-directory source against a real directory, inotify and io_context.
// Waits are for an event with a deadline (run_until), never a fixed sleep.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>

#include "knode/manifest_source.h"
#include "knode/store.h"

namespace fs = std::filesystem;
using namespace knode;

namespace {

std::string cm(const std::string& name, const std::string& value) {
  return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " + name + "}\ndata: {v: \"" + value + "\"}\n";
}

class Recorder : public EventSink {
 public:
  void on_event(const Event& e) override {
    events.push_back(std::string(to_string(e.type)) + " " + api::key_of(*e.object).name);
    store.on_event(e);
  }
  void on_synced(const std::string&) override { ++synced; }
  std::vector<std::string> events;
  ObjectStore store;
  int synced = 0;
};

std::string value_of(const ObjectStore& s, const std::string& name) {
  auto o = s.get(api::ObjectKey{api::Kind::kConfigMap, "default/" + name});
  if (!o) return "<none>";
  return api::get<api::ConfigMap>(*o).data.at("v");
}

class ManifestDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("knode-manifests-" + std::to_string(::getpid()) + "-" +
                                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  void TearDown() override {
    if (source) source->stop();
    fs::remove_all(dir);
  }
  void write(const std::string& name, const std::string& text) {
    std::ofstream(dir / name) << text;
  }
  void start(bool inotify = true, std::chrono::milliseconds rescan = std::chrono::seconds(20)) {
    source = std::make_unique<ManifestDirSource>(
        io, ManifestDirSource::Options{dir.string(), rescan, inotify});
    ASSERT_TRUE(source->start(rec).ok());
  }
  // Runs the loop until `done` holds, failing after a deadline.
  bool run_until(const std::function<bool()>& done, std::chrono::seconds limit = std::chrono::seconds(5)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      io.restart();
      io.run_for(std::chrono::milliseconds(20));
    }
    return true;
  }

  fs::path dir;
  boost::asio::io_context io;
  Recorder rec;
  std::unique_ptr<ManifestDirSource> source;
};

}  // namespace

TEST_F(ManifestDirTest, InitialLoadThenSynced) {
  write("a.yaml", cm("a", "1") + "---\n" + cm("b", "2"));
  write("c.json", R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"v":"3"}})");
  write("notes.txt", cm("ignored", "x"));
  write(".hidden.yaml", cm("hidden", "x"));
  start();
  EXPECT_EQ(rec.synced, 1);
  EXPECT_EQ(rec.store.size(), 3u);
  EXPECT_EQ(value_of(rec.store, "b"), "2");
  EXPECT_EQ(value_of(rec.store, "c"), "3");
}

TEST_F(ManifestDirTest, CreateModifyDelete) {
  start();
  write("a.yaml", cm("a", "1"));
  ASSERT_TRUE(run_until([&] { return value_of(rec.store, "a") == "1"; }));
  write("a.yaml", cm("a", "2"));
  ASSERT_TRUE(run_until([&] { return value_of(rec.store, "a") == "2"; }));
  fs::remove(dir / "a.yaml");
  ASSERT_TRUE(run_until([&] { return value_of(rec.store, "a") == "<none>"; }));
  EXPECT_EQ(rec.events, (std::vector<std::string>{"ADDED default/a", "MODIFIED default/a", "DELETED default/a"}));
}

TEST_F(ManifestDirTest, AtomicRenameReplacesContents) {
  write("a.yaml", cm("a", "1") + "---\n" + cm("gone", "x"));
  start();
  write(".a.yaml.tmp", cm("a", "2"));
  fs::rename(dir / ".a.yaml.tmp", dir / "a.yaml");
  ASSERT_TRUE(run_until([&] { return value_of(rec.store, "gone") == "<none>"; }));
  EXPECT_EQ(value_of(rec.store, "a"), "2");
}

// Events name the files to re-read: renames away from and onto a manifest name, and a
// deletion, each reach the store without a rescan (the periodic one is an hour away).
TEST_F(ManifestDirTest, RenamesAndDeletionsByEventAlone) {
  write("a.yaml", cm("a", "1"));
  write("b.yaml", cm("b", "1"));
  start(true, std::chrono::hours(1));
  fs::rename(dir / "a.yaml", dir / "a.yaml.disabled");
  ASSERT_TRUE(run_until([&] { return value_of(rec.store, "a") == "<none>"; }));
  write("c.txt", cm("c", "1"));
  fs::rename(dir / "c.txt", dir / "c.yaml");
  ASSERT_TRUE(run_until([&] { return value_of(rec.store, "c") == "1"; }));
  fs::remove(dir / "b.yaml");
  ASSERT_TRUE(run_until([&] { return value_of(rec.store, "b") == "<none>"; }));
  fs::rename(dir / "a.yaml.disabled", dir / "a.yaml");
  ASSERT_TRUE(run_until([&] { return value_of(rec.store, "a") == "1"; }));
  EXPECT_EQ(rec.events, (std::vector<std::string>{"ADDED default/a", "ADDED default/b", "DELETED default/a",
                                                  "ADDED default/c", "DELETED default/b", "ADDED default/a"}));
}

// A ConfigMap volume's layout: a.yaml -> ..data/a.yaml, and an update swaps the ..data
// link. Only names that are no manifest move, yet what a.yaml reads changed.
TEST_F(ManifestDirTest, SymlinkSwapLikeAConfigMapVolume) {
  fs::create_directories(dir / "..v1");
  std::ofstream(dir / "..v1" / "a.yaml") << cm("a", "1");
  fs::create_directory_symlink("..v1", dir / "..data");
  fs::create_symlink("..data/a.yaml", dir / "a.yaml");
  start(true, std::chrono::hours(1));
  ASSERT_EQ(value_of(rec.store, "a"), "1");
  fs::create_directories(dir / "..v2");
  std::ofstream(dir / "..v2" / "a.yaml") << cm("a", "2");
  fs::create_directory_symlink("..v2", dir / "..data_tmp");
  fs::rename(dir / "..data_tmp", dir / "..data");
  ASSERT_TRUE(run_until([&] { return value_of(rec.store, "a") == "2"; }));
}

TEST_F(ManifestDirTest, InvalidFileKeepsLastGoodObjects) {
  write("a.yaml", cm("a", "1"));
  start();
  write("a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a\n");  // broken YAML
  ASSERT_TRUE(run_until([&] { return source->file_errors().count("a.yaml") > 0; }));
  EXPECT_EQ(value_of(rec.store, "a"), "1");
  write("a.yaml", cm("a", "3"));
  ASSERT_TRUE(run_until([&] { return value_of(rec.store, "a") == "3"; }));
  EXPECT_EQ(source->file_errors().count("a.yaml"), 0u);
}

TEST_F(ManifestDirTest, InvalidObjectKeepsItsLastGoodVersionOnly) {
  write("a.yaml", cm("a", "1") + "---\n" + cm("b", "1"));
  start();
  // b turns invalid (bad key), a changes: a moves on, b keeps its last good version.
  write("a.yaml", cm("a", "2") + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\ndata: {\"bad key\": x}\n");
  ASSERT_TRUE(run_until([&] { return value_of(rec.store, "a") == "2"; }));
  EXPECT_EQ(value_of(rec.store, "b"), "1");
  EXPECT_NE(source->file_errors().at("a.yaml").find("ConfigMap default/b"), std::string::npos);
}

TEST_F(ManifestDirTest, DeletingOneFileKeepsObjectsOtherFilesDefine) {
  write("a.yaml", cm("shared", "from-a"));
  write("b.yaml", cm("shared", "from-b") + "---\n" + cm("only-b", "x"));
  start();
  EXPECT_EQ(value_of(rec.store, "shared"), "from-a");
  fs::remove(dir / "a.yaml");
  ASSERT_TRUE(run_until([&] { return value_of(rec.store, "shared") == "from-b"; }));
  fs::remove(dir / "b.yaml");
  ASSERT_TRUE(run_until([&] { return rec.store.size() == 0; }));
}

// A kind the source passes through (the proxy's, with no kubelet) is not kept: what the
// sink drops is freed. The source still says what is in force: a rejected new version
// keeps the old one (no event), and when the file in force goes, another file's
// definition is read again and reported; a deletion names the object by a stub.
TEST_F(ManifestDirTest, PassThroughKindsAreNotKeptAndStillFollowed) {
  struct Latest : EventSink {
    std::map<std::string, std::string> values;  // name -> data.v
    std::vector<std::weak_ptr<const api::Object>> seen;
    void on_event(const Event& e) override {
      auto name = api::key_of(*e.object).name;
      seen.push_back(e.object);
      EXPECT_EQ(e.old, nullptr);
      if (e.type == EventType::kDeleted) {
        values.erase(name);
      } else {
        values[name] = api::get<api::ConfigMap>(*e.object).data.at("v");
      }
    }
    void on_synced(const std::string&) override {}
    bool none_alive() const {
      return std::all_of(seen.begin(), seen.end(), [](const auto& w) { return w.expired(); });
    }
  } sink;
  write("a.yaml", cm("shared", "from-a"));
  write("b.yaml", cm("shared", "from-b") + "---\n" + cm("only-b", "x"));
  ManifestDirSource::Options o{dir.string(), std::chrono::seconds(20), true};
  o.pass_through = {api::Kind::kConfigMap};
  source = std::make_unique<ManifestDirSource>(io, o);
  ASSERT_TRUE(source->start(sink).ok());
  using Values = std::map<std::string, std::string>;
  EXPECT_EQ(sink.values, (Values{{"default/shared", "from-a"}, {"default/only-b", "x"}}));
  EXPECT_TRUE(sink.none_alive());

  write("a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shared}\ndata: {\"bad key\": x}\n");
  ASSERT_TRUE(run_until([&] { return source->file_errors().count("a.yaml") > 0; }));
  EXPECT_EQ(sink.values.at("default/shared"), "from-a");
  write("a.yaml", cm("shared", "a2"));
  ASSERT_TRUE(run_until([&] { return sink.values.at("default/shared") == "a2"; }));
  fs::remove(dir / "a.yaml");
  ASSERT_TRUE(run_until([&] { return sink.values.at("default/shared") == "from-b"; }));
  fs::remove(dir / "b.yaml");
  ASSERT_TRUE(run_until([&] { return sink.values.empty(); }));
  EXPECT_TRUE(sink.none_alive());
}

// When the definition in force moves to a file the source refused since (world-writable
// here), what that file now says is not taken (the source kept nothing of it): the object
// is removed until the file is fixed and read again.
TEST_F(ManifestDirTest, PassThroughNeverTakesARefusedFilesContent) {
  struct Latest : EventSink {
    std::map<std::string, std::string> values;
    void on_event(const Event& e) override {
      auto name = api::key_of(*e.object).name;
      if (e.type == EventType::kDeleted) {
        values.erase(name);
      } else {
        values[name] = api::get<api::ConfigMap>(*e.object).data.at("v");
      }
    }
    void on_synced(const std::string&) override {}
  } sink;
  write("a.yaml", cm("shared", "from-a"));
  write("b.yaml", cm("shared", "from-b"));
  ManifestDirSource::Options o{dir.string(), std::chrono::seconds(20), true};
  o.pass_through = {api::Kind::kConfigMap};
  source = std::make_unique<ManifestDirSource>(io, o);
  ASSERT_TRUE(source->start(sink).ok());
  ASSERT_EQ(sink.values.at("default/shared"), "from-a");
  fs::permissions(dir / "b.yaml", fs::perms::others_write, fs::perm_options::add);
  write("b.yaml", cm("shared", "tampered"));
  ASSERT_TRUE(run_until([&] { return source->file_errors().count("b.yaml") > 0; }));
  fs::remove(dir / "a.yaml");
  ASSERT_TRUE(run_until([&] { return sink.values.count("default/shared") == 0; }));
  fs::permissions(dir / "b.yaml", fs::perms::others_write, fs::perm_options::remove);
  ASSERT_TRUE(run_until([&] { return sink.values.count("default/shared") == 1; }));
  EXPECT_EQ(sink.values.at("default/shared"), "tampered");  // trusted again, and read again
}

TEST_F(ManifestDirTest, PeriodicRescanWithoutInotify) {
  start(/*inotify=*/false, std::chrono::milliseconds(50));
  write("a.yaml", cm("a", "1"));
  ASSERT_TRUE(run_until([&] { return value_of(rec.store, "a") == "1"; }));
  fs::remove(dir / "a.yaml");
  ASSERT_TRUE(run_until([&] { return rec.store.size() == 0; }));
}

TEST_F(ManifestDirTest, MissingDirectoryAppearsLater) {
  fs::remove_all(dir);
  start(true, std::chrono::milliseconds(50));
  EXPECT_EQ(rec.synced, 1);
  fs::create_directories(dir);
  write("a.yaml", cm("a", "1"));
  ASSERT_TRUE(run_until([&] { return value_of(rec.store, "a") == "1"; }));
}

TEST_F(ManifestDirTest, UnchangedRescanEmitsNothing) {
  write("a.yaml", cm("a", "1"));
  start();
  size_t n = rec.events.size();
  source->rescan();
  // Touching the file re-reads it, but identical objects emit no MODIFIED.
  write("a.yaml", cm("a", "1"));
  source->rescan();
  EXPECT_EQ(rec.events.size(), n);
}

// knode runs what the directory says as root: a file anyone may write is refused (its last
// good objects stay), and read again once it is fixed.
TEST_F(ManifestDirTest, WorldWritableFileIsRefusedUntilFixed) {
  write("a.yaml", cm("a", "1"));
  write("b.yaml", cm("b", "1"));
  fs::permissions(dir / "b.yaml", static_cast<fs::perms>(0646), fs::perm_options::replace);
  start();
  EXPECT_EQ(value_of(rec.store, "a"), "1");
  EXPECT_EQ(value_of(rec.store, "b"), "<none>");
  ASSERT_TRUE(source->file_errors().count("b.yaml"));
  EXPECT_NE(source->file_errors().at("b.yaml").find("world-writable (mode 0646)"), std::string::npos)
      << source->file_errors().at("b.yaml");

  // A new version written world-writable is not read; the last good one stays.
  write("a.yaml", cm("a", "2"));
  fs::permissions(dir / "a.yaml", fs::perms::others_write, fs::perm_options::add);
  ASSERT_TRUE(run_until([&] { return source->file_errors().count("a.yaml") > 0; }));
  EXPECT_EQ(value_of(rec.store, "a"), "1");

  // chmod o-w alone (an attribute change) is enough for both to be read.
  fs::permissions(dir / "a.yaml", fs::perms::others_write, fs::perm_options::remove);
  fs::permissions(dir / "b.yaml", fs::perms::others_write, fs::perm_options::remove);
  ASSERT_TRUE(run_until([&] { return value_of(rec.store, "a") == "2" && value_of(rec.store, "b") == "1"; }));
  EXPECT_TRUE(source->file_errors().empty());
}

TEST_F(ManifestDirTest, WorldWritableDirectoryIsNotRead) {
  write("a.yaml", cm("a", "1"));
  fs::permissions(dir, fs::perms::others_write, fs::perm_options::add);
  start();
  EXPECT_EQ(rec.synced, 1);
  EXPECT_EQ(value_of(rec.store, "a"), "<none>");
  EXPECT_TRUE(rec.events.empty());

  fs::permissions(dir, fs::perms::others_write, fs::perm_options::remove);
  ASSERT_TRUE(run_until([&] { return value_of(rec.store, "a") == "1"; }));

  // Made world-writable again: what was read stays, changes are not read.
  fs::permissions(dir, fs::perms::others_write, fs::perm_options::add);
  write("a.yaml", cm("a", "2"));
  source->rescan();
  EXPECT_EQ(value_of(rec.store, "a"), "1");
}
