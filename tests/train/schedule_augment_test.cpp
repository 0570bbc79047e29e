#include <gtest/gtest.h>

#include <cmath>

#include "asr/train/augment.h"
#include "asr/train/schedule.h"

namespace asr {

TEST(LrSchedule, CosineWarmsUpPeaksAndDecaysToFloor) {
  LrSchedule s;
  s.kind = "cosine";
  s.peak_lr = 1e-3;
  s.warmup_steps = 100;
  s.total_steps = 1000;
  s.min_lr_ratio = 0.1;
  EXPECT_LT(s.lr_at(0), 2e-5);
  EXPECT_NEAR(s.lr_at(99), 1e-3, 1e-12);
  EXPECT_LT(s.lr_at(500), s.lr_at(200));
  EXPECT_NEAR(s.lr_at(999), 1e-4, 1e-9);
  EXPECT_NEAR(s.lr_at(5000), 1e-4, 1e-9);
}

TEST(LrSchedule, NoamPeaksAtWarmup) {
  LrSchedule s;
  s.kind = "noam";
  s.peak_lr = 2e-3;
  s.warmup_steps = 50;
  EXPECT_NEAR(s.lr_at(49), 2e-3, 1e-12);
  EXPECT_LT(s.lr_at(10), s.lr_at(49));
  EXPECT_LT(s.lr_at(400), s.lr_at(49));
}

TEST(VqWeightSchedule, SeedWarmup) {
  VqWeightSchedule w;  // 10 -> 0.5 over 1000 steps
  EXPECT_DOUBLE_EQ(w.weight_at(0), 10.0);
  EXPECT_NEAR(w.weight_at(500), 5.25, 1e-12);
  EXPECT_DOUBLE_EQ(w.weight_at(1000), 0.5);
  EXPECT_DOUBLE_EQ(w.weight_at(99999), 0.5);
}

TEST(VqWeightSchedule, BypassHasNoVqLossAndDelaysTheRamp) {
  VqWeightSchedule w;
  w.bypass_steps = 300;
  EXPECT_TRUE(w.bypassed(0));
  EXPECT_TRUE(w.bypassed(299));
  EXPECT_FALSE(w.bypassed(300));
  EXPECT_DOUBLE_EQ(w.weight_at(0), 0.0);
  EXPECT_DOUBLE_EQ(w.weight_at(299), 0.0);
  EXPECT_DOUBLE_EQ(w.weight_at(300), 10.0);
  EXPECT_NEAR(w.weight_at(800), 5.25, 1e-12);
  EXPECT_DOUBLE_EQ(w.weight_at(1300), 0.5);
}

TEST(Augment, DeterministicPerUtteranceAndActuallyChangesAudio) {
  std::vector<float> audio(16000);
  for (size_t i = 0; i < audio.size(); ++i) audio[i] = 0.5f * std::sin(0.05f * i);
  AugmentOptions opt;
  opt.enabled = true;
  auto a = augment_waveform(audio, 16000, opt, 1, 2, 3);
  auto b = augment_waveform(audio, 16000, opt, 1, 2, 3);
  auto c = augment_waveform(audio, 16000, opt, 1, 2, 4);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_NE(a, audio);
  EXPECT_GE(a.size(), size_t(16000 / 1.1) - 1);
  EXPECT_LE(a.size(), size_t(16000 / 0.9) + 1);
  opt.enabled = false;
  EXPECT_EQ(augment_waveform(audio, 16000, opt, 1, 2, 3), audio);
}

}  // namespace asr
