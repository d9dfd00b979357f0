#include <gtest/gtest.h>

#include "knode/api/meta.h"

namespace knode::api {
namespace {

bool match(const LabelSelector& s, const StringMap& labels) {
  auto r = selector_matches(s, labels);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() && *r;
}

TEST(LabelSelector, EmptyMatchesEverything) {
  EXPECT_TRUE(match(LabelSelector{}, {}));
  EXPECT_TRUE(match(LabelSelector{}, {{"a", "b"}}));
}

TEST(LabelSelector, MatchLabelsAndExpressionsAllHold) {
  LabelSelector s;
  s.match_labels = {{"app", "web"}};
  s.match_expressions = {{"tier", "In", {"front", "edge"}}, {"canary", "DoesNotExist", {}}};
  EXPECT_TRUE(match(s, {{"app", "web"}, {"tier", "edge"}}));
  EXPECT_FALSE(match(s, {{"app", "web"}, {"tier", "back"}}));
  EXPECT_FALSE(match(s, {{"app", "web"}, {"tier", "edge"}, {"canary", ""}}));
  EXPECT_FALSE(match(s, {{"app", "api"}, {"tier", "edge"}}));
  EXPECT_FALSE(match(s, {{"tier", "edge"}}));
  LabelSelector n;
  n.match_expressions = {{"tier", "NotIn", {"back"}}, {"app", "Exists", {}}};
  EXPECT_TRUE(match(n, {{"app", ""}}));  // NotIn holds for a missing key
  EXPECT_FALSE(match(n, {{"app", "x"}, {"tier", "back"}}));
}

TEST(LabelSelector, InvalidExpressionsAreErrorsNamingThem) {
  LabelSelector s;
  s.match_expressions = {{"a", "In", {}}};
  auto r = selector_matches(s, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("matchExpressions[0].values"), std::string::npos);
  s.match_expressions = {{"a", "Exists", {"x"}}};
  EXPECT_FALSE(selector_matches(s, {}).ok());
  s.match_expressions = {{"a", "Gt", {"1"}}};
  r = selector_matches(s, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("\"Gt\""), std::string::npos);
}

}  // namespace
}  // namespace knode::api
