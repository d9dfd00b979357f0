#include <gtest/gtest.h>

#include <cstdint>

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

// Found by fuzz_api_values: year 1 (Go's zero time) overflowed int64 nanoseconds, which is
// undefined behaviour; a time knode cannot hold (before 1677, after 2262) is refused.
TEST(Time, OutsideInt64NanosecondsIsRefused) {
  EXPECT_FALSE(Time::Parse("0001-01-01T00:00:00Z"));
  EXPECT_FALSE(Time::Parse("1677-09-21T00:12:43Z"));
  EXPECT_TRUE(Time::Parse("1677-09-21T00:12:44Z"));
  EXPECT_TRUE(Time::Parse("2262-04-11T23:47:16Z"));
  EXPECT_FALSE(Time::Parse("2262-04-11T23:47:17Z"));
  EXPECT_FALSE(Time::Parse("9999-12-31T23:59:59.999999999Z"));
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

// Found by fuzz_api_values: a sum in floating point read "2.000000003s" (what "3ns2s"
// prints as) back as 2.000000002 s, and "." made std::stold throw. Parsed in integers now,
// as Go does.
TEST(Duration, ParsesExactlyAsGo) {
  auto d = Duration::Parse("3ns2s");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->nanos(), 2000000003);
  EXPECT_EQ(d->str(), "2.000000003s");
  EXPECT_EQ(Duration::Parse(d->str())->nanos(), 2000000003);
  EXPECT_EQ(Duration::Parse(".5s")->nanos(), 500000000);
  EXPECT_EQ(Duration::Parse("1.s")->nanos(), 1000000000);
  EXPECT_EQ(Duration::Parse("-1.5h")->nanos(), -5400 * int64_t{1000000000});
  EXPECT_EQ(Duration::Parse("1.0000000001s")->nanos(), 1000000000);  // below a nanosecond: cut
  EXPECT_EQ(Duration::Parse("2562047h47m16.854775807s")->nanos(), INT64_MAX);
  EXPECT_FALSE(Duration::Parse("2562047h47m16.854775808s"));
  EXPECT_EQ(Duration::Parse("-2562047h47m16.854775808s")->nanos(), INT64_MIN);
  EXPECT_FALSE(Duration::Parse("."));
  EXPECT_FALSE(Duration::Parse(".s"));
  EXPECT_FALSE(Duration::Parse("1.2.3s"));
  EXPECT_FALSE(Duration::Parse("-"));
}

// Found by fuzz_api_values: "8901234567813E" (exa) with 13 digits multiplied past an
// int128 before the size check; it is refused as too large.
TEST(Quantity, HugeMantissaTimesLargeSuffixIsTooLarge) {
  std::string err;
  EXPECT_FALSE(Quantity::Parse("08901234567813E", &err));
  EXPECT_NE(err.find("too large"), std::string::npos) << err;
  EXPECT_FALSE(Quantity::Parse("123456789012345678901234567890E"));
  EXPECT_TRUE(Quantity::Parse("8E"));
}
