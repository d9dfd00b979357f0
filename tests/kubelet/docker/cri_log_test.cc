// dockerd's streams decoded, and its log messages in the CRI log format
// (kubelet/docker/stream.h, cri_log.h, log_copier.h's resume_point).
#include "docker/cri_log.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <limits>
#include <filesystem>
#include <fstream>

#include "docker/log_copier.h"
#include "docker/stream.h"
#include "fake_docker_server.h"

namespace knode::docker {
namespace {

using testing::frame;

TEST(DockerTime, ParsesRfc3339AndFormatsLikeContainerd) {
  EXPECT_EQ(*parse_time("2026-12-01T10:00:00Z"), 1796119200LL * 1000000000);
  EXPECT_EQ(*parse_time("2026-12-01T10:00:00.236658499Z"), 1796119200236658499);
  EXPECT_EQ(*parse_time("2026-12-01T10:00:00.5Z"), 1796119200500000000);
  EXPECT_EQ(*parse_time("2026-12-01T12:00:00.5+02:00"), 1796119200500000000);
  EXPECT_EQ(*parse_time("0001-01-01T00:00:00Z"), 0);  // Go's zero time: unset
  EXPECT_FALSE(parse_time("2026-12-01 10:00:00Z").ok());
  EXPECT_FALSE(parse_time("2026-13-01T10:00:00Z").ok());
  EXPECT_FALSE(parse_time("2026-12-01T10:00:00").ok());
  EXPECT_FALSE(parse_time("").ok());
  // Go's zero time with a fraction is still year 1: unset, not an overflow.
  EXPECT_EQ(*parse_time("0001-01-01T00:00:00.5Z"), 0);
  // Beyond int64 nanoseconds (1677-09-21 to 2262-04-11): ERANGE, not a signed overflow.
  for (const char* far : {"0002-01-01T00:00:00Z", "1677-09-21T00:12:43.145224191Z",
                          "2262-04-11T23:47:16.854775808Z", "9999-12-31T23:59:59.999999999Z",
                          "9999-12-31T23:59:59-23:59"}) {
    auto t = parse_time(far);
    ASSERT_FALSE(t.ok()) << far;
    EXPECT_EQ(t.status().error_number(), ERANGE) << far;
  }
  // The edges themselves fit.
  EXPECT_EQ(*parse_time("2262-04-11T23:47:16.854775807Z"), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(*parse_time("1677-09-21T00:12:43.145224192Z"), std::numeric_limits<int64_t>::min());

  EXPECT_EQ(format_time(1796119200236658499), "2026-12-01T10:00:00.236658499Z");
  EXPECT_EQ(format_time(1796119200500000000), "2026-12-01T10:00:00.5Z");
  EXPECT_EQ(format_time(1796119200LL * 1000000000), "2026-12-01T10:00:00Z");
  EXPECT_EQ(format_time(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(since_param(1796119200000000007), "1796119200.000000007");
}

TEST(DockerLogMessage, WholeLinesAreFAndPiecesAreP) {
  auto full = parse_log_message(StreamType::kStdout, "2026-12-01T10:00:00.1Z hello world\n");
  ASSERT_TRUE(full.ok()) << full.error();
  EXPECT_EQ(full->text, "hello world");
  EXPECT_FALSE(full->partial);
  EXPECT_EQ(cri_log_line(*full), "2026-12-01T10:00:00.1Z stdout F hello world\n");
  auto piece = parse_log_message(StreamType::kStderr, "2026-12-01T10:00:00.2Z part of a lo");
  ASSERT_TRUE(piece.ok());
  EXPECT_EQ(cri_log_line(*piece), "2026-12-01T10:00:00.2Z stderr P part of a lo\n");
  auto empty = parse_log_message(StreamType::kStdout, "2026-12-01T10:00:00.3Z \n");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(cri_log_line(*empty), "2026-12-01T10:00:00.3Z stdout F \n");
  EXPECT_FALSE(parse_log_message(StreamType::kStdout, "no time here\n").ok());
}

TEST(DockerStreamDemuxer, JoinsFramesAcrossPiecesAndRefusesRawText) {
  std::string bytes = frame(1, "out\n") + frame(2, "err\n") + frame(1, "");
  StreamDemuxer d;
  std::vector<std::pair<StreamType, std::string>> got;
  auto collect = [&](StreamType t, std::string_view p) {
    got.emplace_back(t, std::string(p));
    return true;
  };
  for (char c : bytes) ASSERT_TRUE(d.feed(std::string_view(&c, 1), collect).ok());
  EXPECT_EQ(got, (std::vector<std::pair<StreamType, std::string>>{{StreamType::kStdout, "out\n"},
                                                                  {StreamType::kStderr, "err\n"},
                                                                  {StreamType::kStdout, ""}}));
  EXPECT_EQ(d.pending(), 0u);
  ASSERT_TRUE(d.feed(frame(1, "cut").substr(0, 9), collect).ok());
  EXPECT_EQ(d.pending(), 9u);  // a frame cut short is held back
  StreamDemuxer raw;
  Status s = raw.feed("2026-12-01T10:00:00Z hello from a tty\n", collect);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.error_number(), EIO);
}

TEST(DockerJsonMessages, SplitsPullProgressAndFindsErrors) {
  JsonMessages m;
  std::vector<nlohmann::json> got;
  auto collect = [&](const nlohmann::json& j) {
    got.push_back(j);
    return Status::Ok();
  };
  ASSERT_TRUE(m.feed("{\"status\":\"Pulling\"}\r\n{\"status\":\"Down", collect).ok());
  ASSERT_TRUE(
      m.feed("loading\"}\r\n{\"errorDetail\":{\"message\":\"denied\"},\"error\":\"denied\"}\r\n",
             collect)
          .ok());
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[1]["status"], "Downloading");
  EXPECT_EQ(progress_error(got[0]), "");
  EXPECT_EQ(progress_error(got[2]), "denied");
  EXPECT_EQ(progress_error({{"errorDetail", {{"message", "only detail"}}}}), "only detail");
  EXPECT_FALSE(m.feed("{not json}\n", collect).ok());
}

struct Written {
  std::string text;
  CriLogConverter::OnLine sink() {
    return [this](const LogEntry&, const std::string& line) {
      text += line;
      return Status::Ok();
    };
  }
};

TEST(CriLogConverter, TurnsFramesIntoCriLinesAcrossPieces) {
  const std::string bytes =
      frame(1, "2026-12-01T10:00:00.100Z one\n") + frame(2, "2026-12-01T10:00:00.2Z two\n") +
      frame(1, "2026-12-01T10:00:00.3Z long li") + frame(1, "2026-12-01T10:00:00.4Z ne\n");
  CriLogConverter c(false, 0);
  Written w;
  for (size_t i = 0; i < bytes.size(); i += 7)
    ASSERT_TRUE(c.feed(bytes.substr(i, 7), w.sink()).ok());
  ASSERT_TRUE(c.finish(w.sink()).ok());
  EXPECT_EQ(w.text,
            "2026-12-01T10:00:00.1Z stdout F one\n"
            "2026-12-01T10:00:00.2Z stderr F two\n"
            "2026-12-01T10:00:00.3Z stdout P long li\n"
            "2026-12-01T10:00:00.4Z stdout F ne\n");
  EXPECT_EQ(c.last_time(), *parse_time("2026-12-01T10:00:00.4Z"));
}

TEST(CriLogConverter, SkipsWhatWasWrittenBeforeAResume) {
  const std::string bytes = frame(1, "2026-12-01T10:00:00.1Z old\n") +
                            frame(1, "2026-12-01T10:00:00.2Z last\n") +
                            frame(1, "2026-12-01T10:00:00.3Z new\n");
  CriLogConverter c(false, *parse_time("2026-12-01T10:00:00.2Z"));
  Written w;
  ASSERT_TRUE(c.feed(bytes, w.sink()).ok());
  EXPECT_EQ(w.text, "2026-12-01T10:00:00.3Z stdout F new\n");
}

TEST(CriLogConverter, TtyLogsAreRawLines) {
  CriLogConverter c(true, 0);
  Written w;
  ASSERT_TRUE(c.feed("2026-12-01T10:00:00.1Z $ ls\r\n2026-12-01T10:00:00.2Z a b", w.sink()).ok());
  ASSERT_TRUE(c.finish(w.sink()).ok());
  EXPECT_EQ(w.text,
            "2026-12-01T10:00:00.1Z stdout F $ ls\r\n2026-12-01T10:00:00.2Z stdout P a b\n");
}

TEST(CriLogConverter, DaemonErrorsInTheStreamFail) {
  CriLogConverter c(false, 0);
  Written w;
  Status s = c.feed(frame(3, "error from daemon in stream: read /x: no such file"), w.sink());
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("no such file"), std::string::npos);
}

TEST(CriLog, LastTimeIsTheLastCompleteLine) {
  EXPECT_EQ(last_cri_time("2026-12-01T10:00:00.1Z stdout F a\n2026-12-01T10:00:00.2Z stdout F b\n"),
            *parse_time("2026-12-01T10:00:00.2Z"));
  // A cut-off last line (a crash mid-write) does not count.
  EXPECT_EQ(last_cri_time("2026-12-01T10:00:00.1Z stdout F a\n2026-12-01T10:00:00.2Z std"),
            *parse_time("2026-12-01T10:00:00.1Z"));
  // A tail read from the middle of a file starts with a piece of a line.
  EXPECT_EQ(last_cri_time("out F tail of something\n2026-12-01T10:00:00.3Z stdout F c\n"),
            *parse_time("2026-12-01T10:00:00.3Z"));
  EXPECT_EQ(last_cri_time(""), std::nullopt);
  EXPECT_EQ(last_cri_time("garbage\n"), std::nullopt);
}

class ResumePoint : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/knode-docker-log-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    log_ = dir_ + "/0.log";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void write(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::trunc) << text;
  }
  std::string dir_, log_;
};

TEST_F(ResumePoint, FromTheLiveLogOrItsNewestRotatedFile) {
  EXPECT_EQ(resume_point(log_), 0);  // nothing yet: from the start
  write(log_ + ".20261201-095000", "2026-12-01T09:50:00Z stdout F older\n");
  write(log_ + ".20261201-100000", "2026-12-01T10:00:00Z stdout F newest rotated\n");
  write(log_ + ".20261201-094000.gz", "not text");
  write(log_, "");  // just rotated: the live file is empty
  EXPECT_EQ(resume_point(log_), *parse_time("2026-12-01T10:00:00Z"));
  write(log_, "2026-12-01T10:00:01Z stdout F live\n");
  EXPECT_EQ(resume_point(log_), *parse_time("2026-12-01T10:00:01Z"));
}

}  // namespace
}  // namespace knode::docker
