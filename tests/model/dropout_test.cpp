#include "asr/model/dropout.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "asr/core/error.h"

namespace am = asr::model;

TEST(Dropout, KeepsOneMinusPAndRescales) {
  torch::manual_seed(4);
  auto x = torch::ones({1000, 1001});
  auto y = am::dropout(x, 0.3, true);
  auto kept = (y != 0).to(torch::kDouble).mean().item<double>();
  EXPECT_NEAR(kept, 0.7, 0.003);  // ~1e6 draws: the standard error is 5e-4
  auto values = std::get<0>(at::_unique(y));
  ASSERT_EQ(values.numel(), 2);
  EXPECT_FLOAT_EQ(values[1].item<float>(), static_cast<float>(1 / 0.7));
  // Neighbouring elements are not correlated (the two halves of one hash).
  auto flat = (y.flatten() != 0).to(torch::kDouble);
  auto both = (flat.narrow(0, 0, flat.numel() - 1) * flat.narrow(0, 1, flat.numel() - 1)).mean().item<double>();
  EXPECT_NEAR(both, 0.49, 0.003);
}

TEST(Dropout, ReproducibleFromTheSeedAndDifferentPerCall) {
  auto x = torch::randn({64, 33});
  torch::manual_seed(11);
  auto a1 = am::dropout(x, 0.5, true), a2 = am::dropout(x, 0.5, true);
  torch::manual_seed(11);
  auto b1 = am::dropout(x, 0.5, true);
  EXPECT_TRUE(torch::equal(a1, b1));
  EXPECT_FALSE(torch::equal(a1, a2));
}

TEST(Dropout, GradientIsTheMaskAndEvalIsIdentity) {
  torch::manual_seed(2);
  auto x = torch::randn({10, 20}).requires_grad_();
  auto y = am::dropout(x, 0.25, true);
  y.sum().backward();
  EXPECT_TRUE(torch::allclose(x.grad() * x, y));
  EXPECT_TRUE(am::dropout(x, 0.25, false).is_same(x));
  EXPECT_THROW(am::dropout(x, 1.0, true), asr::Error);
}
