#include "asr/train/straggler_report.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace asr {
namespace {

std::vector<RankTimes> ranks_with(double rank1_forward) {
  std::vector<RankTimes> ranks(4, RankTimes{0.010, 0.100, 0.200, 0.050, 0.020});
  ranks[1].forward = rank1_forward;
  return ranks;
}

TEST(StragglerReport, NamesTheSlowRankAfterThreeWindowsInARow) {
  StragglerReport report;
  EXPECT_EQ(report.observe(10, ranks_with(0.200)), "");  // 30% slower: one window
  EXPECT_EQ(report.observe(20, ranks_with(0.200)), "");
  const std::string warning = report.observe(30, ranks_with(0.200));
  EXPECT_NE(warning.find("rank 1 is 30% slower than the median of the other ranks for 3 log windows (step 30)"),
            std::string::npos)
      << warning;
  EXPECT_NE(warning.find("forward 200 ms"), std::string::npos) << warning;
  EXPECT_EQ(report.observe(40, ranks_with(0.200)), "");  // not every window
}

TEST(StragglerReport, ABreakOrASmallDifferenceResetsTheCount) {
  StragglerReport report;
  report.observe(10, ranks_with(0.200));
  report.observe(20, ranks_with(0.200));
  EXPECT_EQ(report.observe(30, ranks_with(0.140)), "");  // 12%: under the threshold
  EXPECT_EQ(report.observe(40, ranks_with(0.200)), "");
  EXPECT_EQ(report.observe(50, ranks_with(0.200)), "");
  EXPECT_NE(report.observe(60, ranks_with(0.200)), "");
}

TEST(StragglerReport, TwoRanksCompareWithTheOtherRankNotTheirMean) {
  std::vector<RankTimes> two(2, RankTimes{0, 0.100, 0, 0, 0});
  two[0].forward = 0.130;
  const auto [slowest, excess] = slowest_rank(two);
  EXPECT_EQ(slowest, 0);
  EXPECT_NEAR(excess, 0.30, 1e-9);
  EXPECT_EQ(slowest_rank({RankTimes{}}).first, -1);
}

TEST(StragglerReport, RecordHoldsEveryRanksPhasesInMilliseconds) {
  const auto rec = StragglerReport::record(7, ranks_with(0.300));
  EXPECT_EQ(rec.at("kind"), "stragglers");
  EXPECT_EQ(rec.at("step"), 7);
  EXPECT_EQ(rec.at("slowest"), 1);
  ASSERT_EQ(rec.at("forward_ms").size(), 4u);
  EXPECT_DOUBLE_EQ(rec.at("forward_ms")[1].get<double>(), 300.0);
  EXPECT_DOUBLE_EQ(rec.at("allreduce_wait_ms")[0].get<double>(), 50.0);
}

}  // namespace
}  // namespace asr
