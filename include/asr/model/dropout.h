// Inverted dropout whose CPU mask comes from a counter-based hash seeded by
// one draw from LibTorch's default generator: torch::dropout's CPU mask
// (bernoulli_ without MKL) drew each element through the locked generator
// and cost ~4% of a seed-parity training step. Seeding from the default
// generator keeps masks reproducible from torch::manual_seed (the trainer
// reseeds it every step). Other devices use torch::dropout.
#pragma once
#include <ATen/core/Tensor.h>

namespace asr::model {

// x unchanged when !training or p == 0; p must be in [0, 1).
at::Tensor dropout(const at::Tensor& x, double p, bool training);

}  // namespace asr::model
