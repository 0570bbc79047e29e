// Training throughput of the seed-parity architecture on one thread. Not a
// timed CI test (DISABLED_); run by hand:
//   test_model --gtest_also_run_disabled_tests --gtest_filter='*Throughput*'
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <ctime>
#include <cstdlib>

#include "asr/model/asr_model.h"
#include "asr/model/ctc.h"

namespace {

// CPU time of this thread: on a shared machine wall time also counts other
// processes' turns on the core.
double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

asr::ModelConfig seed_parity(const std::string& norm) {
  asr::ModelConfig c;
  c.vocab_size = 256;
  c.encoder.d_model = 128;
  c.encoder.layers = 6;
  c.encoder.heads = 4;
  c.encoder.ff_mult = 4;
  c.rvq.codebooks = 4;
  c.rvq.codes = 1024;
  c.rvq.commitment = 0.25;
  c.frontend.pool = 3;
  c.frontend.strides = {4, 4, 4, 4};
  c.frontend.kernel = 8;
  c.frontend.hidden = 64;
  c.frontend.norm = norm;
  return c;
}

void run(const std::string& norm, bool sorted) {
  torch::set_num_threads(1);
  torch::manual_seed(0);
  asr::model::AsrModel model(seed_parity(norm));
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(1e-4));
  const int batch = 8, steps = std::getenv("ASR_BENCH_STEPS") ? std::atoi(std::getenv("ASR_BENCH_STEPS")) : 4;
  // LJSpeech-like clip lengths: 1..10 s, mean about 6.6 s.
  auto secs = (torch::randn({(steps + 1) * batch}) * 2.0 + 6.6).clamp(1.2, 10.1);
  if (sorted) secs = std::get<0>(secs.sort());
  double audio = 0, elapsed = 0, cpu = 0, fe = 0;
  for (int s = 0; s <= steps; ++s) {
    auto len = (secs.narrow(0, s * batch, batch) * 16000).to(torch::kLong);
    const int64_t tmax = len.max().item<int64_t>();
    auto wav = torch::randn({batch, tmax}) * 0.1;
    auto tl = torch::full({batch}, 60, torch::kLong);
    auto targets = torch::randint(1, 256, {batch, 60}, torch::kLong);
    const double c0 = cpu_seconds();
    (void)c0;
    {
      torch::NoGradGuard ng;  // frontend forward alone, for the breakdown
      const double f0 = cpu_seconds();
      model->frontend().forward(wav, len);
      if (s > 0) fe += cpu_seconds() - f0;
    }
    const double c1 = cpu_seconds();
    auto t0 = std::chrono::steady_clock::now();
    auto out = model->forward(wav, len, true);
    auto ctc = asr::model::ctc_loss_sum(out.log_probs, out.out_lengths, targets, tl);
    auto loss = ctc.sum / std::max<int64_t>(1, ctc.kept) + out.vq_loss;
    opt.zero_grad();
    loss.backward();
    opt.step();
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s > 0) {  // step 0 runs k-means and warms allocators
      elapsed += dt;
      cpu += cpu_seconds() - c1;
      audio += len.sum().item<double>() / 16000.0;
    }
  }
  std::printf("norm=%s %s: %.1f audio-s/s wall, %.1f per CPU-second (%.2f CPU-s/step, of which frontend "
              "forward %.2f; mkldnn %d)\n",
              norm.c_str(), sorted ? "length-sorted" : "random-order", audio / elapsed, audio / cpu, cpu / steps,
              fe / steps,
              static_cast<int>(at::globalContext().userEnabledMkldnn()));
}

}  // namespace

TEST(ModelBench, DISABLED_SeedParityThroughput) {
  for (const char* norm : {"group", "batch", "layer"}) {
    run(norm, false);
  }
  run("group", true);
}
