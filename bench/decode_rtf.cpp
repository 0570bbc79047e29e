// Real-time factor of asr_decode's decoder on CPU: configs/tiny.toml and
// configs/base.toml models (untrained weights: speed does not depend on
// them), greedy and beam 8, one worker thread, then throughput with two.
//
//   build/decode_rtf [--seconds S] [--configs tiny,base]
//
// RTF = decoding wall time / audio seconds (audio load excluded: the inputs
// are in memory). Targets from issue 5: greedy <= 0.01 and beam 8 <= 0.05
// for base on one thread.
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <unistd.h>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "asr/decode/decoder.h"
#include "asr/model/asr_model.h"
#include "asr/text/tokenizer.h"
#include "asr/core/checkpoint_file.h"
#include "asr/model/module_state.h"
#include "asr/train/config.h"

#ifndef ASR_SOURCE_DIR
#define ASR_SOURCE_DIR "."
#endif

namespace {

namespace fs = std::filesystem;

std::vector<std::string> sentences() {
  return {"printing in the only sense with which we are at present concerned differs from most if not from all the arts",
          "and crafts represented in the exhibition in being comparatively modern",
          "for although the chinese took impressions from wood blocks engraved in relief for centuries before",
          "the woodcutters of the netherlands by a similar process produced the block books",
          "which were the immediate predecessors of the true printed book"};
}

fs::path write_checkpoint(const std::string& config, const fs::path& dir) {
  const std::string src = std::getenv("ASR_SOURCE_DIR") ? std::getenv("ASR_SOURCE_DIR") : ASR_SOURCE_DIR;
  asr::TrainConfig cfg = asr::load_config(src + "/configs/" + config + ".toml");
  asr::TokenizerTrainOptions to;
  to.vocab_size = 256;
  auto tok = asr::train_tokenizer(sentences(), to);
  cfg.model.vocab_size = tok.vocab_size();
  torch::manual_seed(1);
  asr::model::AsrModel m(cfg.model);
  asr::CheckpointData d;
  d.sections["model"] = asr::module_to_bytes(*m);
  d.sections["config"] = asr::config_to_toml(cfg);
  d.sections["tokenizer"] = tok.model_bytes();
  fs::path path = dir / (config + ".ckpt");
  asr::save_checkpoint(path, d);
  return path;
}

// LJSpeech-like lengths (2-10 s) of a chirp with a syllable-rate envelope.
std::vector<std::vector<float>> make_audio(double total_seconds, int rate) {
  std::vector<std::vector<float>> clips;
  double sum = 0;
  for (int i = 0; sum < total_seconds; ++i) {
    const double sec = 2.0 + (i * 37 % 80) / 10.0;
    std::vector<float> v(static_cast<size_t>(sec * rate));
    double phase = 0;
    for (size_t k = 0; k < v.size(); ++k) {
      const double t = static_cast<double>(k) / rate;
      phase += 2 * M_PI * (180.0 + 250.0 * (0.5 + 0.5 * std::sin(2 * M_PI * 0.9 * t + i))) / rate;
      v[k] = static_cast<float>(0.3 * (0.5 + 0.5 * std::sin(2 * M_PI * 4.0 * t)) * std::sin(phase));
    }
    clips.push_back(std::move(v));
    sum += sec;
  }
  return clips;
}

struct Figure {
  double audio = 0, wall = 0;
};

Figure measure(const asr::Decoder& d, const std::vector<std::vector<float>>& clips, const asr::DecodeOptions& o) {
  std::vector<asr::DecodeInput> inputs;
  Figure f;
  for (size_t i = 0; i < clips.size(); ++i) {
    const auto* clip = &clips[i];
    inputs.push_back({"c" + std::to_string(i), static_cast<double>(clip->size()) / d.sample_rate(), [clip] { return *clip; }});
    f.audio += inputs.back().seconds;
  }
  auto start = std::chrono::steady_clock::now();
  auto r = d.decode(inputs, o);
  f.wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (const auto& t : r)
    if (!t.ok()) std::fprintf(stderr, "decode_rtf: %s failed: %s\n", t.id.c_str(), t.error.c_str());
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 120;
  std::string configs = "tiny,base";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--seconds")) seconds = std::stod(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--configs")) configs = argv[i + 1];
  }
  const fs::path dir = fs::temp_directory_path() / ("decode_rtf." + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::printf("%-6s %-8s %7s %5s %9s %9s %8s %10s\n", "config", "search", "threads", "batch", "audio_s", "wall_s", "RTF",
              "x realtime");
  std::stringstream list(configs);
  for (std::string config; std::getline(list, config, ',');) {
    auto decoder = asr::Decoder::from_checkpoint(write_checkpoint(config, dir).string());
    auto clips = make_audio(seconds, decoder.sample_rate());
    // Warm-up: first-call allocations and lazy initialization are not decoding time.
    asr::DecodeOptions warm;
    warm.batch = 2;
    measure(decoder, {clips[0], clips[1]}, warm);
    struct Case {
      const char* search;
      int beam, threads;
    };
    for (const Case& c : {Case{"greedy", 1, 1}, Case{"beam8", 8, 1}, Case{"greedy", 1, 2}, Case{"beam8", 8, 2}}) {
      asr::DecodeOptions o;
      o.beam = c.beam;
      o.threads = c.threads;
      o.batch = 8;
      auto f = measure(decoder, clips, o);
      std::printf("%-6s %-8s %7d %5d %9.1f %9.3f %8.4f %10.1f\n", config.c_str(), c.search, c.threads, o.batch, f.audio,
                  f.wall, f.wall / f.audio, f.audio / f.wall);
      std::fflush(stdout);
    }
  }
  fs::remove_all(dir);
  return 0;
}
