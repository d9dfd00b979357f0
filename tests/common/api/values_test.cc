#include <gtest/gtest.h>

#include "knode/api/values.h"

using knode::api::Duration;
using knode::api::IntOrString;
using knode::api::Quantity;
using knode::api::Time;

TEST(Quantity, ParsesSuffixes) {
  EXPECT_EQ(Quantity::Parse("500m")->milli_value(), 500);
  EXPECT_EQ(Quantity::Parse("2")->milli_value(), 2000);
  EXPECT_EQ(Quantity::Parse("2Gi")->value(), 2LL << 30);
  EXPECT_EQ(Quantity::Parse("1000Mi")->value(), 1000LL << 20);
  EXPECT_EQ(Quantity::Parse("1k")->value(), 1000);
  EXPECT_EQ(Quantity::Parse("1.5Gi")->value(), 3LL << 29);
  EXPECT_EQ(Quantity::Parse("1e3")->value(), 1000);
  EXPECT_EQ(Quantity::Parse("100n")->milli_value(), 1);  // rounds up
  EXPECT_EQ(Quantity::Parse("1Ei")->value(), 1LL << 60);
  EXPECT_EQ(Quantity::Parse("-1")->value(), -1);
}

TEST(Quantity, OddMilliMemoryRoundsUpToAByte) {
  auto q = Quantity::Parse("200m");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->value(), 1);
  EXPECT_EQ(q->milli_value(), 200);
  EXPECT_EQ(q->str(), "200m");
}

TEST(Quantity, RejectsGarbageWithReason) {
  std::string err;
  EXPECT_FALSE(Quantity::Parse("12XB", &err));
  EXPECT_NE(err.find("unknown suffix"), std::string::npos) << err;
  EXPECT_FALSE(Quantity::Parse("Gi", &err));
  EXPECT_FALSE(Quantity::Parse("", &err));
  EXPECT_FALSE(Quantity::Parse("1.2.3", &err));
}

TEST(Quantity, EqualityIsByValue) {
  EXPECT_EQ(*Quantity::Parse("1Ki"), *Quantity::Parse("1024"));
  EXPECT_FALSE(*Quantity::Parse("1k") == *Quantity::Parse("1Ki"));
}

TEST(IntOrString, HoldsEither) {
  auto i = IntOrString::Int(8080);
  auto s = IntOrString::String("http");
  EXPECT_TRUE(i.is_int());
  EXPECT_EQ(i.str(), "8080");
  EXPECT_FALSE(s.is_int());
  EXPECT_EQ(s.str_value(), "http");
  EXPECT_FALSE(i == s);
  EXPECT_TRUE(IntOrString().empty());
}

TEST(Time, ParsesRfc3339AndPrintsUtc) {
  auto t = Time::Parse("2026-11-23T09:04:56Z");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->unix_seconds(), 1795424696);
  EXPECT_EQ(t->str(), "2026-11-23T09:04:56Z");
  auto off = Time::Parse("2026-11-23T10:04:56.25+01:00");
  ASSERT_TRUE(off);
  EXPECT_EQ(off->unix_seconds(), 1795424696);
  EXPECT_EQ(off->str(), "2026-11-23T09:04:56.25Z");
  EXPECT_FALSE(Time::Parse("2026-11-23 09:04"));
  EXPECT_FALSE(Time::Parse("2026-13-01T00:00:00Z"));
  EXPECT_FALSE(Time::Parse("2026-11-23T09:04:56"));  // no zone
}

TEST(Duration, ParsesGoDurations) {
  EXPECT_EQ(Duration::Parse("30s")->millis(), 30000);
  EXPECT_EQ(Duration::Parse("1m30s")->millis(), 90000);
  EXPECT_EQ(Duration::Parse("500ms")->millis(), 500);
  EXPECT_EQ(Duration::Parse("1h")->millis(), 3600000);
  EXPECT_EQ(Duration::Parse("0")->nanos(), 0);
  EXPECT_EQ(Duration::Parse("1.5s")->millis(), 1500);
  EXPECT_FALSE(Duration::Parse("30"));
  EXPECT_FALSE(Duration::Parse("5x"));
  EXPECT_EQ(Duration::Parse("90s")->str(), "1m30s");
  EXPECT_EQ(Duration::Parse("250ms")->str(), "250ms");
}
