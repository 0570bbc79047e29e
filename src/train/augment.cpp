#include "asr/train/augment.h"

#include <algorithm>
#include <cmath>
#include <random>

namespace asr {

std::vector<float> augment_waveform(const std::vector<float>& audio, int sample_rate, const AugmentOptions& options,
                                    uint64_t seed, int64_t epoch, int64_t utterance) {
  if (!options.enabled || audio.empty()) return audio;
  std::seed_seq seq{seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(utterance), uint64_t{0xa06}};
  std::mt19937_64 rng(seq);
  auto uniform = [&rng](double lo, double hi) {
    return lo + (hi - lo) * (static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0));
  };

  // Speed: linear-interpolation resampling. Cheap, and the pitch shift it
  // brings is part of the intended perturbation (as in Kaldi's speed perturb).
  double speed = uniform(options.speed_min, options.speed_max);
  std::vector<float> out;
  if (std::abs(speed - 1.0) > 1e-6) {
    size_t n = static_cast<size_t>(std::max(1.0, std::floor(audio.size() / speed)));
    out.resize(n);
    for (size_t i = 0; i < n; ++i) {
      double pos = i * speed;
      size_t k = static_cast<size_t>(pos);
      double frac = pos - k;
      float a = audio[std::min(k, audio.size() - 1)];
      float b = audio[std::min(k + 1, audio.size() - 1)];
      out[i] = static_cast<float>(a + (b - a) * frac);
    }
  } else {
    out = audio;
  }

  float gain = static_cast<float>(std::pow(10.0, uniform(-options.gain_db, options.gain_db) / 20.0));
  for (float& x : out) x = std::clamp(x * gain, -1.0f, 1.0f);

  size_t max_width = static_cast<size_t>(options.time_mask_seconds * sample_rate);
  for (int m = 0; m < options.time_masks && max_width > 0 && out.size() > max_width; ++m) {
    size_t width = static_cast<size_t>(uniform(0, static_cast<double>(max_width)));
    size_t start = static_cast<size_t>(uniform(0, static_cast<double>(out.size() - width)));
    std::fill(out.begin() + start, out.begin() + start + width, 0.0f);
  }
  return out;
}

}  // namespace asr
