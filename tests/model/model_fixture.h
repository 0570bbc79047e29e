// A small model configuration shared by the model tests: every layer of the
// real model, sizes that run in milliseconds.
#pragma once
#include <string>

#include "asr/model/model_config.h"

namespace asr::test {

inline ModelConfig small_model_config(const std::string& norm = "group", const std::string& kind = "waveform") {
  ModelConfig c;
  c.vocab_size = 12;
  c.frontend.kind = kind;
  c.frontend.norm = norm;
  c.frontend.norm_groups = 4;
  c.frontend.hidden = 8;
  c.frontend.pool = 3;
  c.frontend.strides = {4, 4, 4, 4};
  c.frontend.kernel = 8;
  c.frontend.n_mels = 16;
  c.frontend.n_fft = 64;
  c.frontend.hop = 32;
  c.encoder.d_model = 16;
  c.encoder.layers = 2;
  c.encoder.heads = 2;
  c.encoder.dropout = 0.1;
  c.rvq.codebooks = 2;
  c.rvq.codes = 16;
  return c;
}

}  // namespace asr::test
