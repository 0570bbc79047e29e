#include "asr/model/dropout.h"

#include <torch/torch.h>

#include <cstdint>

#include "asr/core/error.h"

namespace asr::model {

namespace {

// splitmix64's finalizer: a strong 64-bit mix of a counter.
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// A float mask of 0 and 1/(1-p), each element kept with probability 1 - p
// (to 2^-32).
at::Tensor dropout_mask(const at::Tensor& like, double p) {
  // Two 31-bit draws make the seed; one draw pair per call keeps the
  // generator's stream easy to reason about.
  auto draws = torch::randint(0, int64_t{1} << 31, {2}, torch::kLong);
  const uint64_t seed = (static_cast<uint64_t>(draws[0].item<int64_t>()) << 31) ^
                        static_cast<uint64_t>(draws[1].item<int64_t>());
  auto mask = torch::empty(like.sizes(), like.options().dtype(torch::kFloat).memory_format(at::MemoryFormat::Contiguous));
  float* out = mask.data_ptr<float>();
  const int64_t n = mask.numel();
  const uint32_t threshold = static_cast<uint32_t>(p * 4294967296.0);
  const float scale = static_cast<float>(1.0 / (1.0 - p));
  const uint64_t base = mix64(seed);
  int64_t i = 0;
  for (; i + 1 < n; i += 2) {
    const uint64_t r = mix64(base + static_cast<uint64_t>(i));
    out[i] = static_cast<uint32_t>(r) >= threshold ? scale : 0.0f;
    out[i + 1] = static_cast<uint32_t>(r >> 32) >= threshold ? scale : 0.0f;
  }
  if (i < n) out[i] = static_cast<uint32_t>(mix64(base + static_cast<uint64_t>(i))) >= threshold ? scale : 0.0f;
  return like.scalar_type() == torch::kFloat ? mask : mask.to(like.scalar_type());
}

}  // namespace

at::Tensor dropout(const at::Tensor& x, double p, bool training) {
  if (p < 0 || p >= 1) throw asr::Error("dropout: probability must be in [0, 1), got " + std::to_string(p));
  if (!training || p == 0 || x.numel() == 0) return x;
  if (!x.device().is_cpu()) return torch::dropout(x, p, true);
  return x * dropout_mask(x, p);
}

}  // namespace asr::model
