// The image manager against the fake runtime: pull policies, waiting reasons and events,
// the pull back-off over the fake clock, credentials in order, serialized pulls.
#include "images/image_manager.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <thread>

#include "fakes/fake_clock.h"
#include "fakes/fake_runtime.h"
#include "pod/image_policy.h"

using namespace knode::kubelet;
using knode::Status;
using knode::testing::FakeClock;
using knode::testing::FakeRuntime;
namespace rt = knode::runtime;
using namespace std::chrono_literals;

namespace {

constexpr const char* kNginx = "127.0.0.1:5000/nginx:1.27";
constexpr const char* kRedis = "127.0.0.1:5000/redis:7";
constexpr const char* kPause = "127.0.0.1:5000/pause:3.10";

knode::api::Pod pod(const std::string& name = "web", const std::string& uid = "uid-web") {
  knode::api::Pod p;
  p.metadata.name = name;
  p.metadata.namespace_ = "shop";
  p.metadata.uid = uid;
  return p;
}

knode::api::Container container(const std::string& image, const std::string& policy) {
  knode::api::Container c;
  c.name = "app";
  c.image = image;
  c.image_pull_policy = policy;
  return c;
}

rt::AuthConfig auth(const std::string& user) {
  rt::AuthConfig a;
  a.username = user;
  a.password = "pw-" + user;
  return a;
}

std::vector<std::string> reasons(const EnsureResult& r) {
  std::vector<std::string> out;
  for (const auto& e : r.events) out.push_back(e.reason);
  return out;
}

class ImageManagerTest : public ::testing::Test {
 protected:
  ImageManagerTest() : rt_(clock_) {
    rt_.add_image(kPause, /*present=*/true);
    rt_.add_image(kNginx);
    rt_.add_image(kRedis);
  }
  EnsureResult ensure(ImageManager& m, const std::string& image, const std::string& policy,
                      const knode::api::Pod& p = pod(),
                      const std::vector<rt::AuthConfig>& creds = {}) {
    return m.ensure_image(p, container(image, policy), creds);
  }

  FakeClock clock_;
  FakeRuntime rt_;
};

}  // namespace

TEST_F(ImageManagerTest, IfNotPresentUsesTheImageOnTheNode) {
  rt_.add_image(kNginx, /*present=*/true, 4096);
  ImageManager m(rt_, clock_);
  EnsureResult r = ensure(m, kNginx, kPullIfNotPresent);
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.image_ref, rt_.image_id(kNginx));
  EXPECT_EQ(rt_.count("PullImage"), 0);
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0], (KubeletEvent{kEventNormal, kEventPulledImage,
                                       "Container image \"127.0.0.1:5000/nginx:1.27\" already "
                                       "present on machine"}));
}

TEST_F(ImageManagerTest, IfNotPresentPullsAMissingImage) {
  rt_.add_image(kNginx, /*present=*/false, 4096);
  ImageManager m(rt_, clock_);
  EnsureResult r = ensure(m, kNginx, kPullIfNotPresent);
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.image_ref, rt_.image_id(kNginx));
  EXPECT_TRUE(rt_.image_present(kNginx));
  EXPECT_EQ(rt_.methods(), (std::vector<std::string>{"ImageStatus", "PullImage", "ImageStatus"}));
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_EQ(r.events[0], (KubeletEvent{kEventNormal, kEventPullingImage,
                                       "Pulling image \"127.0.0.1:5000/nginx:1.27\""}));
  EXPECT_EQ(r.events[1],
            (KubeletEvent{kEventNormal, kEventPulledImage,
                          "Successfully pulled image \"127.0.0.1:5000/nginx:1.27\" in 0s (0s "
                          "including waiting). Image size: 4096 bytes."}));
}

TEST_F(ImageManagerTest, AlwaysPullsEvenWhenPresent) {
  rt_.add_image(kNginx, /*present=*/true);
  ImageManager m(rt_, clock_);
  EXPECT_TRUE(ensure(m, kNginx, kPullAlways).ok());
  EXPECT_EQ(rt_.count("PullImage"), 1);
}

TEST_F(ImageManagerTest, NeverWaitsForAMissingImageWithoutPulling) {
  ImageManager m(rt_, clock_);
  EnsureResult r = ensure(m, kNginx, kPullNever);
  EXPECT_EQ(r.reason, kErrImageNeverPull);
  EXPECT_EQ(
      r.message,
      "Container image \"127.0.0.1:5000/nginx:1.27\" is not present with pull policy of Never");
  EXPECT_TRUE(r.image_ref.empty());
  EXPECT_EQ(rt_.count("PullImage"), 0);
  EXPECT_EQ(reasons(r), (std::vector<std::string>{kEventErrImageNeverPull}));
  EXPECT_EQ(r.events[0].type, kEventWarning);

  rt_.add_image(kNginx, /*present=*/true);
  EXPECT_TRUE(ensure(m, kNginx, kPullNever).ok());
}

TEST_F(ImageManagerTest, EmptyPolicyIsTheApiServersDefault) {
  // Untagged: ":latest" is asked for, and pulled every time (Always).
  rt_.add_image("127.0.0.1:5000/busybox:latest", /*present=*/true);
  ImageManager m(rt_, clock_);
  EXPECT_TRUE(ensure(m, "127.0.0.1:5000/busybox", "").ok());
  EXPECT_EQ(rt_.count("PullImage"), 1);
  EXPECT_EQ(rt_.calls()[1], (FakeRuntime::Call{"PullImage", "127.0.0.1:5000/busybox:latest"}));
  // Tagged: IfNotPresent.
  rt_.add_image(kRedis, /*present=*/true);
  EXPECT_TRUE(ensure(m, kRedis, "").ok());
  EXPECT_EQ(rt_.count("PullImage"), 1);
}

TEST_F(ImageManagerTest, InvalidImageNameAsksTheRuntimeNothing) {
  ImageManager m(rt_, clock_);
  EnsureResult r = ensure(m, "127.0.0.1:5000/Nginx:1", kPullIfNotPresent);
  EXPECT_EQ(r.reason, kInvalidImageName);
  EXPECT_EQ(r.message.rfind("Failed to apply default image tag \"127.0.0.1:5000/Nginx:1\": ", 0),
            0u)
      << r.message;
  EXPECT_TRUE(rt_.calls().empty());
  EXPECT_EQ(reasons(r), (std::vector<std::string>{kEventFailedToInspectImage}));
}

TEST_F(ImageManagerTest, FailedInspectionIsImageInspectError) {
  rt_.fail_next("ImageStatus", Status::Error("CRI ImageStatus: Unavailable: down", ECONNREFUSED));
  ImageManager m(rt_, clock_);
  EnsureResult r = ensure(m, kNginx, kPullIfNotPresent);
  EXPECT_EQ(r.reason, kImageInspectError);
  EXPECT_EQ(r.message,
            "Failed to inspect image \"127.0.0.1:5000/nginx:1.27\": CRI ImageStatus: Unavailable: "
            "down");
  EXPECT_EQ(rt_.count("PullImage"), 0);
}

TEST_F(ImageManagerTest, FailedPullIsErrImagePullThenBacksOffDoublingTo300s) {
  rt_.set_pull_error(kNginx, Status::Error("CRI PullImage: NotFound: manifest unknown", ENOENT));
  ImageManager m(rt_, clock_);
  EnsureResult r = ensure(m, kNginx, kPullIfNotPresent);
  EXPECT_EQ(r.reason, kErrImagePull);
  EXPECT_EQ(r.message, "CRI PullImage: NotFound: manifest unknown");
  EXPECT_EQ(reasons(r), (std::vector<std::string>{kEventPullingImage, kEventFailedToPullImage}));
  EXPECT_EQ(r.events[1].message,
            "Failed to pull image \"127.0.0.1:5000/nginx:1.27\": CRI PullImage: NotFound: "
            "manifest unknown");
  ASSERT_EQ(rt_.count("PullImage"), 1);

  // Each failure doubles the wait: 10 s, 20 s, 40 s, ... up to 300 s.
  int pulls = 1;
  for (auto delay : {10s, 20s, 40s, 80s, 160s, 300s, 300s}) {
    clock_.advance(delay - 1s);
    EnsureResult waiting = ensure(m, kNginx, kPullIfNotPresent);
    EXPECT_EQ(waiting.reason, kImagePullBackOff) << "delay " << delay.count();
    EXPECT_EQ(waiting.message, "Back-off pulling image \"127.0.0.1:5000/nginx:1.27\"");
    EXPECT_EQ(reasons(waiting), (std::vector<std::string>{kEventBackOffPullImage}));
    EXPECT_EQ(rt_.count("PullImage"), pulls);
    clock_.advance(1s);
    EXPECT_EQ(ensure(m, kNginx, kPullIfNotPresent).reason, kErrImagePull) << delay.count();
    EXPECT_EQ(rt_.count("PullImage"), ++pulls);
  }

  // The registry answers again: the next attempt after the back-off pulls.
  rt_.set_pull_error(kNginx, Status::Ok());
  clock_.advance(300s);
  EXPECT_TRUE(ensure(m, kNginx, kPullIfNotPresent).ok());
}

TEST_F(ImageManagerTest, BackOffIsPerPodAndImage) {
  rt_.set_pull_error(kNginx, Status::Error("unauthorized", EACCES));
  ImageManager m(rt_, clock_);
  EXPECT_EQ(ensure(m, kNginx, kPullIfNotPresent, pod("a", "uid-a")).reason, kErrImagePull);
  EXPECT_EQ(ensure(m, kNginx, kPullIfNotPresent, pod("a", "uid-a")).reason, kImagePullBackOff);
  // Another pod, or another image of the same pod, is not held back.
  EXPECT_EQ(ensure(m, kNginx, kPullIfNotPresent, pod("b", "uid-b")).reason, kErrImagePull);
  EXPECT_TRUE(ensure(m, kRedis, kPullIfNotPresent, pod("a", "uid-a")).ok());
  EXPECT_EQ(rt_.count("PullImage"), 3);
}

TEST_F(ImageManagerTest, PresentImageIsUsedEvenDuringBackOff) {
  rt_.set_pull_error(kNginx, Status::Error("unauthorized", EACCES));
  ImageManager m(rt_, clock_);
  EXPECT_EQ(ensure(m, kNginx, kPullIfNotPresent).reason, kErrImagePull);
  rt_.add_image(kNginx, /*present=*/true);  // someone else brought it
  EXPECT_TRUE(ensure(m, kNginx, kPullIfNotPresent).ok());
}

TEST_F(ImageManagerTest, NoCredentialsPullsAnonymously) {
  ImageManager m(rt_, clock_);
  EXPECT_TRUE(ensure(m, kNginx, kPullIfNotPresent).ok());
  EXPECT_EQ(rt_.pull_auths(), (std::vector<std::optional<rt::AuthConfig>>{std::nullopt}));
}

TEST_F(ImageManagerTest, CredentialsAreTriedInOrderUntilOnePulls) {
  rt_.fail_next("PullImage", Status::Error("CRI PullImage: Unknown: 401 Unauthorized", EIO));
  ImageManager m(rt_, clock_);
  EnsureResult r = ensure(m, kNginx, kPullIfNotPresent, pod(), {auth("a"), auth("b"), auth("c")});
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(rt_.pull_auths(), (std::vector<std::optional<rt::AuthConfig>>{auth("a"), auth("b")}));
}

TEST_F(ImageManagerTest, EveryCredentialFailingIsOneErrorAndNoAnonymousPull) {
  rt_.fail_next("PullImage", Status::Error("401 for a", EIO));
  rt_.fail_next("PullImage", Status::Error("401 for b", EIO));
  ImageManager m(rt_, clock_);
  EnsureResult r = ensure(m, kNginx, kPullIfNotPresent, pod(), {auth("a"), auth("b")});
  EXPECT_EQ(r.reason, kErrImagePull);
  EXPECT_EQ(r.message, "[401 for a, 401 for b]");
  EXPECT_EQ(rt_.pull_auths(), (std::vector<std::optional<rt::AuthConfig>>{auth("a"), auth("b")}));
}

TEST_F(ImageManagerTest, PullsAreSerializedWithoutHoldingBackPresentImages) {
  rt_.add_image(kPause, /*present=*/true);
  rt_.hold_pulls(kNginx);
  ImageManager m(rt_, clock_);
  EnsureResult first, second;
  std::thread a([&] { first = ensure(m, kNginx, kPullIfNotPresent, pod("a", "uid-a")); });
  ASSERT_TRUE(rt_.wait_for_calls("PullImage", 1));
  std::thread b([&] { second = ensure(m, kRedis, kPullIfNotPresent, pod("b", "uid-b")); });
  // b waits for its turn behind a's pull...
  for (auto deadline = std::chrono::steady_clock::now() + 10s;
       m.waiting_pulls() != 1 && std::chrono::steady_clock::now() < deadline;) {
    std::this_thread::yield();
  }
  EXPECT_EQ(m.waiting_pulls(), 1u);
  // ...while a container whose image is there does not wait at all.
  EXPECT_TRUE(ensure(m, kPause, kPullIfNotPresent, pod("c", "uid-c")).ok());
  EXPECT_EQ(rt_.count("PullImage"), 1);

  rt_.release_pulls(kNginx);
  a.join();
  b.join();
  EXPECT_TRUE(first.ok()) << first.message;
  EXPECT_TRUE(second.ok()) << second.message;
  std::vector<std::string> pulled;
  for (const auto& c : rt_.calls()) {
    if (c.method == "PullImage") pulled.push_back(c.object);
  }
  EXPECT_EQ(pulled, (std::vector<std::string>{kNginx, kRedis}));
  EXPECT_EQ(m.waiting_pulls(), 0u);
}

TEST_F(ImageManagerTest, ParallelPullsDoNotWaitForEachOther) {
  rt_.hold_pulls(kNginx);
  ImageManagerOptions options;
  options.serialize_image_pulls = false;
  ImageManager m(rt_, clock_, options);
  EnsureResult first;
  std::thread a([&] { first = ensure(m, kNginx, kPullIfNotPresent, pod("a", "uid-a")); });
  ASSERT_TRUE(rt_.wait_for_calls("PullImage", 1));
  // Completes while the first pull is still held.
  EXPECT_TRUE(ensure(m, kRedis, kPullIfNotPresent, pod("b", "uid-b")).ok());
  rt_.release_pulls(kNginx);
  a.join();
  EXPECT_TRUE(first.ok());
}

TEST_F(ImageManagerTest, RegistryQpsLimitsABurstOfPulls) {
  ImageManagerOptions options;
  options.registry_pull_qps = 5;
  options.registry_burst = 2;
  ImageManager m(rt_, clock_, options);
  EXPECT_TRUE(ensure(m, kNginx, kPullAlways, pod("a", "uid-a")).ok());
  EXPECT_TRUE(ensure(m, kNginx, kPullAlways, pod("b", "uid-b")).ok());
  EnsureResult third = ensure(m, kNginx, kPullAlways, pod("c", "uid-c"));
  EXPECT_EQ(third.reason, kErrImagePull);
  EXPECT_EQ(third.message, "pull QPS exceeded");
  EXPECT_EQ(rt_.count("PullImage"), 2);
  // One token comes back every 200 ms at 5 QPS.
  clock_.advance(200ms);
  EXPECT_TRUE(ensure(m, kNginx, kPullAlways, pod("d", "uid-d")).ok());
}

TEST(ImageManagerText, GoDurations) {
  EXPECT_EQ(go_duration_ms(0ms), "0s");
  EXPECT_EQ(go_duration_ms(850ms), "850ms");
  EXPECT_EQ(go_duration_ms(1500ms), "1.5s");
  EXPECT_EQ(go_duration_ms(2000ms), "2s");
  EXPECT_EQ(go_duration_ms(123004ms), "2m3.004s");
  EXPECT_EQ(go_duration_ms(3600000ms), "1h0m0s");
}

TEST(ImageManagerText, AggregateErrors) {
  EXPECT_EQ(aggregate_errors({"a"}), "a");
  EXPECT_EQ(aggregate_errors({"a", "a"}), "a");
  EXPECT_EQ(aggregate_errors({"a", "b", "a"}), "[a, b]");
}
