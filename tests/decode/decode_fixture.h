// Checkpoints for decoder tests, built in the test the way asr_ddp writes
// them (model from a config, tokenizer bytes, effective TOML), with
// untrained weights: the tests check plumbing and invariants, not accuracy.
#pragma once
#include <torch/torch.h>

#include <filesystem>
#include <string>
#include <vector>

#include "asr/model/asr_model.h"
#include "asr/text/tokenizer.h"
#include "asr/core/checkpoint_file.h"
#include "asr/model/module_state.h"
#include "asr/train/config.h"
#include "test_support.h"

namespace asr::test {

inline const std::vector<std::string>& decode_sentences() {
  static const std::vector<std::string> s = {
      "the quick brown fox jumps over the lazy dog", "printing in the only sense with which we are at present concerned",
      "in being comparatively modern the art was soon perfected", "it's the earliest book printed with movable types",
      "forty two line bible of about fourteen fifty five", "and it is worth mention in passing that as an example",
      "the invention of movable metal letters in the middle of the century"};
  return s;
}

// The sections asr_ddp writes, for `config` (configs/tiny.toml unless given)
// and `tokenizer_bytes` (trained on decode_sentences() unless given).
inline CheckpointData make_test_checkpoint(uint64_t seed = 1, const std::string& config_file = "configs/tiny.toml",
                                           std::string tokenizer_bytes = "") {
  TrainConfig cfg = load_config((source_dir() / config_file).string());
  if (tokenizer_bytes.empty()) {
    TokenizerTrainOptions to;
    to.vocab_size = 60;
    tokenizer_bytes = train_tokenizer(decode_sentences(), to).model_bytes();
  }
  Tokenizer tok = Tokenizer::from_bytes(tokenizer_bytes);
  cfg.model.vocab_size = tok.vocab_size();
  torch::manual_seed(seed);
  model::AsrModel m(cfg.model);
  CheckpointData data;
  data.sections["model"] = module_to_bytes(*m);
  data.sections["config"] = config_to_toml(cfg);
  data.sections["tokenizer"] = tokenizer_bytes;
  data.sections["state"] = "{\"step\": 7}";
  return data;
}

inline std::filesystem::path write_test_checkpoint(const std::filesystem::path& path, uint64_t seed = 1,
                                                   const std::string& config_file = "configs/tiny.toml",
                                                   const std::string& tokenizer_bytes = "") {
  save_checkpoint(path, make_test_checkpoint(seed, config_file, tokenizer_bytes));
  return path;
}

// A few seconds of something speech-like enough to drive the model: a
// chirp with a syllable-rate envelope, different for each `variant`.
inline std::vector<float> test_signal(int rate, double seconds, int variant = 0) {
  std::vector<float> v(static_cast<size_t>(seconds * rate));
  double phase = 0;
  for (size_t k = 0; k < v.size(); ++k) {
    const double t = static_cast<double>(k) / rate;
    const double f = 150.0 + 40.0 * variant + 300.0 * (0.5 + 0.5 * std::sin(2 * M_PI * 0.7 * t));
    phase += 2 * M_PI * f / rate;
    const double env = 0.5 + 0.5 * std::sin(2 * M_PI * (3.0 + 0.5 * variant) * t);
    v[k] = static_cast<float>(0.4 * env * std::sin(phase));
  }
  return v;
}

}  // namespace asr::test
