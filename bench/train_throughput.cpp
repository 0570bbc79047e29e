// Training throughput of the seed-parity architecture on one CPU thread:
// forward + CTC/VQ loss + backward + AdamW on batches of 8 utterances with
// LJSpeech-like lengths (1.5-10 s, mean ~6.5 s), in seconds of audio per
// second of wall time. The seed's PyTorch model and training step at exactly
// this architecture and batch runs at about 29 audio-s/s on one core of this
// machine class (Debian's python3-torch 1.13 with OpenBLAS); target >= 2x.
//
// Usage: train_throughput [--config configs/seed-parity.toml] [--steps N] [--threads N]
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>

#include "asr/model/asr_model.h"
#include "asr/model/ctc.h"
#include "asr/train/config.h"

int main(int argc, char** argv) {
  std::string config_path = "configs/seed-parity.toml";
  int steps = 12, threads = 1, vocab = 256;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--config")) config_path = argv[i + 1];
    else if (!std::strcmp(argv[i], "--steps")) steps = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--vocab")) vocab = std::atoi(argv[i + 1]);
  }
  torch::set_num_threads(threads);
  asr::TrainConfig cfg = asr::load_config(config_path, {"data.dir=\"unused\""});
  cfg.model.vocab_size = vocab;
  torch::manual_seed(1);
  asr::model::AsrModel model(cfg.model);
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(1e-4));
  const int batch = cfg.train.max_batch_utterances > 0 ? cfg.train.max_batch_utterances : 8;

  std::mt19937 rng(7);
  std::uniform_real_distribution<double> seconds(1.5, 10.0);
  auto make_batch = [&](double* audio_seconds) {
    std::vector<int64_t> lens(batch);
    int64_t longest = 0;
    *audio_seconds = 0;
    for (auto& l : lens) {
      l = static_cast<int64_t>(seconds(rng) * cfg.model.sample_rate);
      longest = std::max(longest, l);
      *audio_seconds += double(l) / cfg.model.sample_rate;
    }
    // Random lengths, not length-bucketed: the padded batch the seed trained on.
    auto audio = torch::randn({batch, longest}) * 0.1;
    auto lengths = torch::tensor(lens, torch::kLong);
    // ~14 characters per second of speech, ~3 characters per BPE token.
    auto tlen = (lengths.to(torch::kDouble) / cfg.model.sample_rate * 5).to(torch::kLong).clamp_min(1);
    auto targets = torch::randint(1, vocab, {tlen.sum().item<int64_t>()}, torch::kLong);
    return std::make_tuple(audio, lengths, targets, tlen);
  };

  double total_audio = 0, total_time = 0;
  for (int s = 0; s < steps + 2; ++s) {
    double audio_s;
    auto [audio, lengths, targets, tlen] = make_batch(&audio_s);
    auto t0 = std::chrono::steady_clock::now();
    auto out = model->forward(audio, lengths, true);
    auto ctc = asr::model::ctc_loss_sum(out.log_probs, out.out_lengths, targets, tlen);
    auto loss = ctc.sum / std::max<int64_t>(1, ctc.kept) + out.vq_loss * 0.5;
    opt.zero_grad();
    loss.backward();
    opt.step();
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s >= 2) {  // the first steps include k-means init and allocator warmup
      total_audio += audio_s;
      total_time += dt;
    }
  }
  const double seed_baseline = 29.0;
  double rate = total_audio / total_time;
  std::printf("config %s, %d thread(s), batch %d, %d timed steps\n", config_path.c_str(), threads, batch, steps);
  std::printf("training throughput: %.1f audio-s/s (%.3f s/step)\n", rate, total_time / steps);
  std::printf("vs the seed's PyTorch step (29 audio-s/s, measured on this machine class): %.2fx (target >= 2x)\n",
              rate / seed_baseline);
  return 0;
}
