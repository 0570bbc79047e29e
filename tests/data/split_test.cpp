#include "asr/data/split.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "asr/core/error.h"

TEST(Split, LastUtterancesAreValThenTest) {
  auto s = asr::assign_splits(13100, 250, 250);
  EXPECT_EQ(std::count(s.begin(), s.end(), "train"), 12600);
  EXPECT_EQ(s[12599], "train");
  EXPECT_EQ(s[12600], "val");
  EXPECT_EQ(s[12849], "val");
  EXPECT_EQ(s[12850], "test");
  EXPECT_EQ(s.back(), "test");
  EXPECT_THROW(asr::assign_splits(10, 5, 5), asr::Error);
  auto none = asr::assign_splits(3, 0, 0);
  EXPECT_EQ(std::count(none.begin(), none.end(), "train"), 3);
}

TEST(Shards, BalancedByDurationAndCoverEverythingOnce) {
  std::vector<double> d;
  for (int i = 0; i < 1000; ++i) d.push_back(1.0 + (i * 7919 % 101) / 10.0);
  auto bins = asr::balance_shards(d, 4);
  ASSERT_EQ(bins.size(), 4u);
  std::vector<size_t> all;
  double lo = 1e30, hi = 0;
  for (const auto& b : bins) {
    EXPECT_TRUE(std::is_sorted(b.begin(), b.end()));
    double sum = 0;
    for (size_t i : b) sum += d[i];
    lo = std::min(lo, sum), hi = std::max(hi, sum);
    all.insert(all.end(), b.begin(), b.end());
  }
  std::sort(all.begin(), all.end());
  std::vector<size_t> want(d.size());
  std::iota(want.begin(), want.end(), 0);
  EXPECT_EQ(all, want);
  EXPECT_LT(hi - lo, 11.1) << "greedy longest-first keeps bins within one item of each other";
  EXPECT_EQ(asr::balance_shards({1.0, 2.0}, 8).size(), 2u) << "no empty shards";
}
