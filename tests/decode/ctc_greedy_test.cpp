#include "asr/decode/ctc_greedy.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "asr/core/error.h"

namespace {

// Log-probs [T, V] whose argmax per frame is `path`, best log-prob log(0.7).
torch::Tensor peaked(const std::vector<int64_t>& path, int64_t vocab) {
  auto p = torch::full({static_cast<int64_t>(path.size()), vocab}, 0.3 / (vocab - 1));
  for (size_t t = 0; t < path.size(); ++t) p[t][path[t]] = 0.7;
  return p.log();
}

TEST(CtcGreedy, CollapseRepeatsThenDropBlanks) {
  EXPECT_EQ(asr::ctc_collapse({0, 3, 3, 0, 3, 5, 5, 0}), (std::vector<int64_t>{3, 3, 5}));
  EXPECT_EQ(asr::ctc_collapse({0, 0, 0}), (std::vector<int64_t>{}));
  EXPECT_EQ(asr::ctc_collapse({2, 2, 2}), (std::vector<int64_t>{2}));
  EXPECT_EQ(asr::ctc_collapse({1, 2, 1}, /*blank=*/1), (std::vector<int64_t>{2}));
}

TEST(CtcGreedy, DecodesAndScoresOnlyTheTrueLength) {
  auto lp = peaked({0, 4, 4, 0, 4, 2, 1, 1}, 6);
  auto r = asr::ctc_greedy_decode(lp, 6);
  EXPECT_EQ(r.ids, (std::vector<int64_t>{4, 4, 2}));
  EXPECT_NEAR(r.score, 6 * std::log(0.7), 1e-5);
  auto full = asr::ctc_greedy_decode(lp);
  EXPECT_EQ(full.ids, (std::vector<int64_t>{4, 4, 2, 1}));
  EXPECT_TRUE(asr::ctc_greedy_decode(lp, 0).ids.empty());
  EXPECT_THROW(asr::ctc_greedy_decode(lp, 9), asr::Error);
  EXPECT_THROW(asr::ctc_greedy_decode(lp.unsqueeze(0), 3), asr::Error);
}

TEST(CtcGreedy, BatchMatchesSingleInBothLayouts) {
  auto a = peaked({1, 1, 0, 2, 3}, 5), b = peaked({3, 0, 3, 4, 4}, 5);
  auto batch = torch::stack({a, b});  // [B, T, V]
  auto lengths = torch::tensor({5, 3}, torch::kLong);
  for (bool time_major : {false, true}) {
    auto input = time_major ? batch.transpose(0, 1).contiguous() : batch;
    auto out = asr::ctc_greedy_decode_batch(input, lengths, 0, time_major);
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[0].ids, asr::ctc_greedy_decode(a, 5).ids);
    EXPECT_EQ(out[1].ids, (std::vector<int64_t>{3, 3}));
    EXPECT_NEAR(out[1].score, asr::ctc_greedy_decode(b, 3).score, 1e-6);
  }
  EXPECT_THROW(asr::ctc_greedy_decode_batch(batch, torch::tensor({5, 6}, torch::kLong)), asr::Error);
  EXPECT_THROW(asr::ctc_greedy_decode_batch(batch, torch::tensor({5}, torch::kLong)), asr::Error);
}

}  // namespace
