#include "asr/audio/audio_io.h"

#include <gtest/gtest.h>
#include <sndfile.h>

#include <cmath>
#include <fstream>

#include "asr/core/error.h"
#include "test_support.h"

using asr::test::TempDir;

namespace {

std::vector<float> sine(double freq, int rate, size_t n, float amp = 0.5f) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = amp * static_cast<float>(std::sin(2 * M_PI * freq * i / rate));
  return v;
}

// Magnitude of the DFT of `x` at `freq` Hz (a single Goertzel-style bin).
double magnitude_at(const std::vector<float>& x, double freq, int rate) {
  double re = 0, im = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    double ph = 2 * M_PI * freq * i / rate;
    re += x[i] * std::cos(ph);
    im -= x[i] * std::sin(ph);
  }
  return std::hypot(re, im) / x.size();
}

void expect_error_naming(const std::string& path, const std::function<void()>& fn) {
  try {
    fn();
    FAIL() << "expected asr::Error for " << path;
  } catch (const asr::Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(Resample, LengthIsRoundedRatio) {
  const std::pair<int, int> rates[] = {{22050, 16000}, {44100, 16000}, {8000, 16000}, {48000, 16000}, {16000, 22050}};
  for (auto [from, to] : rates)
    for (size_t n : {1ul, 2ul, 7ul, 441ul, 1000ul, 22051ul, 100003ul}) {
      auto out = asr::resample(std::vector<float>(n, 0.1f), from, to);
      EXPECT_EQ(out.size(), static_cast<size_t>(std::llround(static_cast<double>(n) * to / from)))
          << n << " samples " << from << " -> " << to;
    }
}

TEST(Resample, SineKeepsItsFrequency) {
  for (int from : {22050, 44100, 8000}) {
    const double f = 440.0;
    auto out = asr::resample(sine(f, from, from), from, 16000);  // one second
    double at = magnitude_at(out, f, 16000);
    EXPECT_NEAR(at, 0.25, 0.02) << "amplitude 0.5 sine should keep |X(f)| = 0.25 from " << from;
    for (double other : {330.0, 550.0, 880.0}) EXPECT_LT(magnitude_at(out, other, 16000), 0.01) << other;
  }
}

TEST(Resample, RemovesContentAboveNewNyquist) {
  auto out = asr::resample(sine(10000, 44100, 44100), 44100, 16000);
  double energy = 0;
  for (float v : out) energy += v * v;
  EXPECT_LT(std::sqrt(energy / out.size()), 0.01) << "a 10 kHz tone must not alias into 16 kHz audio";
}

TEST(AudioIo, WriteReadRoundTripIsExactAtInt16) {
  TempDir dir;
  auto path = (dir / "a.wav").string();
  auto x = sine(300, 22050, 5000);
  asr::write_wav16(path, x, 22050);
  asr::AudioInfo info;
  auto y = asr::load_audio(path, 0, &info);
  EXPECT_EQ(info.sample_rate, 22050);
  EXPECT_EQ(info.channels, 1);
  ASSERT_EQ(y.size(), x.size());
  auto xi = asr::to_int16(x.data(), x.size());
  auto yi = asr::to_int16(y.data(), y.size());
  EXPECT_EQ(xi, yi);
  auto probe = asr::probe_audio(path);
  EXPECT_EQ(probe.frames, 5000);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1) << "no temp file left";
}

TEST(AudioIo, StereoFloatFileIsDownmixedAndResampled) {
  TempDir dir;
  SF_INFO sfi{};
  sfi.samplerate = 44100;
  sfi.channels = 2;
  sfi.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
  auto path = (dir / "stereo.wav").string();
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &sfi);
  ASSERT_NE(f, nullptr);
  auto left = sine(500, 44100, 44100, 0.6f);
  std::vector<float> inter(2 * left.size());
  for (size_t i = 0; i < left.size(); ++i) {
    inter[2 * i] = left[i];
    inter[2 * i + 1] = 0.2f * left[i];
  }
  sf_writef_float(f, inter.data(), static_cast<sf_count_t>(left.size()));
  sf_close(f);
  asr::AudioInfo info;
  auto y = asr::load_audio(path, 16000, &info);
  EXPECT_EQ(info.channels, 2);
  EXPECT_EQ(info.sample_rate, 44100);
  EXPECT_EQ(y.size(), 16000u);
  EXPECT_NEAR(magnitude_at(y, 500, 16000), 0.4 / 2, 0.02) << "mono = mean of channels = 0.4 * sine";
}

TEST(AudioIo, BadFilesThrowNamingTheFile) {
  TempDir dir;
  auto missing = (dir / "missing.wav").string();
  expect_error_naming(missing, [&] { asr::load_audio(missing, 16000); });
  expect_error_naming(missing, [&] { asr::probe_audio(missing); });

  auto text = (dir / "text.wav").string();
  std::ofstream(text) << "this is not audio at all, just some words";
  expect_error_naming(text, [&] { asr::load_audio(text, 16000); });

  auto empty_file = (dir / "empty.wav").string();
  std::ofstream(empty_file).close();
  expect_error_naming(empty_file, [&] { asr::load_audio(empty_file, 16000); });

  auto zero = (dir / "zero.wav").string();
  asr::write_wav16(zero, {}, 22050);
  expect_error_naming(zero, [&] { asr::load_audio(zero, 16000); });

  expect_error_naming(dir.path().string(), [&] { asr::load_audio(dir.path().string(), 16000); });
}

TEST(AudioIo, Int16ConversionClipsAndRounds) {
  std::vector<float> x = {0.0f, 1.5f, -1.5f, 0.5f, -0.5f, 1.0f / 32768.0f};
  auto q = asr::to_int16(x.data(), x.size());
  EXPECT_EQ(q, (std::vector<int16_t>{0, 32767, -32768, 16384, -16384, 1}));
  auto back = asr::from_int16(q.data(), q.size());
  EXPECT_FLOAT_EQ(back[3], 0.5f);
}
