// The device-generic layers (whole padded batch, masks, no host
// synchronization: what a GPU runs) against the CPU-tuned ones (every
// utterance at its own length), on the CPU: same outputs, same gradients,
// same batch statistics. And bfloat16 autocast against float32.
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "asr/model/asr_model.h"
#include "asr/model/ctc.h"
#include "asr/model/precision.h"
#include "model_fixture.h"

using namespace asr::model;

namespace {

asr::ModelConfig config(const std::string& norm, const std::string& kind) {
  auto c = asr::test::small_model_config(norm, kind);
  c.encoder.dropout = 0.0;  // the paths draw dropout masks differently
  c.rvq.enabled = false;    // a nearest-code flip from 1e-7 noise is not a kernel bug
  return c;
}

// max |a - b| / max |b|: one number for a whole tensor.
double relative_error(const at::Tensor& a, const at::Tensor& b) {
  const double scale = b.abs().max().item<double>();
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>() / std::max(scale, 1e-12);
}

struct Outcome {
  at::Tensor log_probs, out_lengths;
  std::vector<at::Tensor> grads, buffers;
};

// A forward and backward of a batch whose padding holds garbage, through a
// loss that only sees valid frames (as CTC does). Inputs are made on the CPU
// and moved to `device`; results come back to the CPU.
Outcome run(AsrModel& model, bool train, const c10::Device& device = c10::Device(c10::kCPU)) {
  torch::manual_seed(11);
  auto wave = torch::randn({3, 12000}) * 3.0;
  auto lengths = torch::tensor({12000L, 5000L, 9001L});
  auto weights_cpu = torch::randn({3, 1000, 12});
  auto out = model->forward(wave.to(device), lengths, train);
  auto weights = weights_cpu.narrow(1, 0, out.log_probs.size(1)).to(device);
  auto frames = torch::arange(out.log_probs.size(1)).unsqueeze(0) < out.out_lengths.unsqueeze(1);
  auto loss = (out.log_probs * weights * frames.unsqueeze(2).to(device)).sum() + out.vq_loss;
  Outcome r{out.log_probs.detach().to(torch::kCPU), out.out_lengths};
  if (train) {
    loss.backward();
    for (auto& p : model->parameters()) r.grads.push_back(p.grad().to(torch::kCPU));
    model->apply_step_statistics();
  }
  for (auto& b : model->buffers()) r.buffers.push_back(b.to(torch::kCPU));
  return r;
}

AsrModel build(const asr::ModelConfig& cfg, KernelPath path) {
  torch::manual_seed(5);
  AsrModel m(cfg);
  m->set_kernel_path(path);
  return m;
}

}  // namespace

class KernelPaths : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(KernelPaths, GenericPathMatchesCpuPath) {
  const auto [norm, kind] = GetParam();
  const auto cfg = config(norm, kind);
  for (bool train : {true, false}) {
    SCOPED_TRACE(train ? "training" : "evaluation");
    auto cpu = build(cfg, KernelPath::automatic), generic = build(cfg, KernelPath::generic);
    const Outcome a = run(cpu, train), b = run(generic, train);
    ASSERT_TRUE(torch::equal(a.out_lengths, b.out_lengths));
    // Only valid frames are compared: padding is never read downstream.
    for (int64_t i = 0; i < 3; ++i) {
      const int64_t t = a.out_lengths[i].item<int64_t>();
      EXPECT_LE(relative_error(b.log_probs[i].narrow(0, 0, t), a.log_probs[i].narrow(0, 0, t)), 1e-4) << i;
    }
    ASSERT_EQ(a.grads.size(), b.grads.size());
    for (size_t i = 0; i < a.grads.size(); ++i) EXPECT_LE(relative_error(b.grads[i], a.grads[i]), 1e-4) << i;
    ASSERT_EQ(a.buffers.size(), b.buffers.size());
    for (size_t i = 0; i < a.buffers.size(); ++i) EXPECT_LE(relative_error(b.buffers[i], a.buffers[i]), 1e-5) << i;
  }
}

INSTANTIATE_TEST_SUITE_P(NormsAndFrontends, KernelPaths,
                         ::testing::Combine(::testing::Values("group", "layer", "batch"),
                                            ::testing::Values("waveform", "logmel")));

TEST(KernelPaths, GenericPathDiffersWhenItShould) {
  // The comparison above can fail: different weights give different outputs.
  const auto cfg = config("group", "waveform");
  auto a = build(cfg, KernelPath::automatic);
  torch::manual_seed(6);
  AsrModel b(cfg);
  b->set_kernel_path(KernelPath::generic);
  EXPECT_GT(relative_error(run(b, false).log_probs, run(a, false).log_probs), 1e-3);
}

TEST(Precision, Bf16AutocastFollowsFloat32) {
  for (const char* kind : {"waveform", "logmel"}) {
    SCOPED_TRACE(kind);
    // No RVQ: bf16 noise upstream can flip a nearest code, a jump no
    // tolerance describes (its distances run in float32 either way).
    auto cfg = config("group", kind);
    auto fp32 = build(cfg, KernelPath::generic);
    auto bf16 = build(cfg, KernelPath::generic);
    torch::NoGradGuard no_grad;
    const Outcome ref = run(fp32, false);
    Outcome low;
    {
      AutocastGuard autocast(c10::DeviceType::CPU, at::kBFloat16, true);
      low = run(bf16, false);
      EXPECT_TRUE(autocast_enabled(c10::DeviceType::CPU));
    }
    EXPECT_FALSE(autocast_enabled(c10::DeviceType::CPU));
    // log-softmax comes out in float32, whatever ran in bfloat16 before it.
    EXPECT_EQ(low.log_probs.scalar_type(), at::kFloat);
    const double err = relative_error(low.log_probs, ref.log_probs);
    EXPECT_LE(err, 1e-2);
    EXPECT_GT(err, 0.0) << "bfloat16 did not take effect";
  }
}

// On a GPU (skipped elsewhere): the CUDA model against the CPU model, float32
// with TF32 off to 1e-4, bf16 autocast to 1e-2 (what bench/gpu/check.sh reports).
TEST(Cuda, MatchesTheCpuInFloat32AndBf16) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no GPU visible";
  const c10::Device gpu(c10::kCUDA, 0);
  set_tf32(false);
  for (const char* norm : {"group", "batch"}) {
    SCOPED_TRACE(norm);
    const auto cfg = config(norm, "waveform");
    auto cpu = build(cfg, KernelPath::automatic), cuda = build(cfg, KernelPath::automatic);
    cuda->to(gpu);
    const Outcome a = run(cpu, true), b = run(cuda, true, gpu);
    for (int64_t i = 0; i < 3; ++i) {
      const int64_t t = a.out_lengths[i].item<int64_t>();
      EXPECT_LE(relative_error(b.log_probs[i].narrow(0, 0, t), a.log_probs[i].narrow(0, 0, t)), 1e-4) << i;
    }
    for (size_t i = 0; i < a.grads.size(); ++i) EXPECT_LE(relative_error(b.grads[i], a.grads[i]), 1e-4) << i;
    auto low = build(cfg, KernelPath::automatic);
    low->to(gpu);
    Outcome c;
    {
      AutocastGuard autocast(c10::DeviceType::CUDA, at::kBFloat16, true);
      c = run(low, false, gpu);
    }
    const Outcome ref = run(cpu, false);
    EXPECT_LE(relative_error(c.log_probs, ref.log_probs), 1e-2);
  }
  set_tf32(true);
}
