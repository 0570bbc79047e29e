// Every size of the model, as a plain struct (no torch), and its [model]
// config fields: the training config embeds them, checkpoints store them as
// TOML, and the decoder rebuilds the model from a checkpoint's [model]
// section alone. Defaults are the documented defaults of configs/base.toml.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "asr/core/config_schema.h"

namespace asr {

struct FrontendConfig {
  std::string kind = "waveform";  // "waveform" (the seed's) or "logmel"
  // waveform: average pool, then one residual downsampling block per stride.
  int pool = 3;
  std::vector<int> strides = {4, 4, 4, 4};
  int kernel = 8;
  int hidden = 0;  // channels inside the blocks; 0 = d_model / 2
  // logmel: STFT features then conv subsampling to the same frame rate.
  int n_mels = 80;
  int n_fft = 400;
  int hop = 160;
  std::vector<int> subsample_strides = {2, 2, 2};
  std::string norm = "group";  // "batch", "group", "layer" (all ignore padding)
  int norm_groups = 8;
  // Layer norm over d_model on every output frame, so the encoder's input has
  // unit scale whatever the convolutions' initialization (docs/training.md).
  bool output_norm = false;
};

struct EncoderConfig {
  int d_model = 256;
  int layers = 8;
  int heads = 4;
  int ff_mult = 4;
  double dropout = 0.1;
  // Dropout on attention weights, apart from `dropout` (residual and
  // feed-forward paths): it costs a random draw per [B, H, T, T] score,
  // about 5% of a CPU training step, so it is off unless asked for.
  double attention_dropout = 0.0;
  bool pre_ln = true;
  // A convolution module in every layer (Conformer-style, after attention):
  // pointwise conv + GLU, depthwise conv of this width over each utterance's
  // frames, layer norm, SiLU, pointwise conv. 0 = none (the seed's plain
  // Transformer layer).
  int conv_kernel = 0;
};

struct RvqConfig {
  bool enabled = true;
  int codebooks = 4;
  int codes = 1024;
  double commitment = 0.25;
  bool ema = false;           // EMA codebook updates instead of the codebook loss
  double ema_decay = 0.99;
  bool kmeans_init = true;    // initialize codebooks from the first batch
  int kmeans_iters = 10;
  int dead_code_threshold = 2;  // a code used fewer times than this in a window is restarted
  int dead_code_window = 100;   // steps between dead-code checks
};

struct ModelConfig {
  int sample_rate = 16000;
  int vocab_size = 0;  // from the tokenizer; CTC blank is id 0 (see docs/data-format.md)
  FrontendConfig frontend;
  EncoderConfig encoder;
  RvqConfig rvq;
};

// The [model] keys bound to `m`, named under `prefix` ("model." in a
// training config), with ranges and docs.
config::Fields model_config_fields(ModelConfig& m, const std::string& prefix = "model.");
std::vector<config::SectionDoc> model_config_sections(const std::string& prefix = "model.");

// Rules that span several keys; calls `fail(key, problem)` for the first broken one.
using FailFn = std::function<void(const std::string& key, const std::string& problem)>;
void check_model_consistency(const ModelConfig& m, const FailFn& fail, const std::string& prefix = "model.");

// The [model] section of a whole config text (e.g. a checkpoint's "config"
// section); other sections are ignored. Throws asr::Error naming `source`.
ModelConfig model_config_from_toml(const std::string& text, const std::string& source);
// The [model] section alone, as TOML.
std::string model_config_to_toml(const ModelConfig& m);

}  // namespace asr
