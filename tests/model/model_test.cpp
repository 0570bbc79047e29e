#include <gtest/gtest.h>
#include <torch/torch.h>

#include <random>

#include "asr/core/error.h"
#include "asr/distributed/communicator.h"
#include "asr/model/asr_model.h"
#include "asr/model/ctc.h"
#include "asr/model/encoder.h"
#include "asr/model/frontend.h"
#include "asr/model/rvq.h"
#include "model_fixture.h"

using namespace asr::model;

namespace {

asr::ModelConfig small_config(const std::string& norm = "group", const std::string& kind = "waveform") {
  return asr::test::small_model_config(norm, kind);
}

// The conv arithmetic written out independently of the frontend code.
int64_t expected_waveform_frames(int64_t n, const asr::FrontendConfig& f) {
  n = n / f.pool;
  for (int s : f.strides) {
    const int64_t pad = std::max(0, (f.kernel - s) / 2);
    const int64_t num = n + 2 * pad - f.kernel;
    n = num < 0 ? 0 : num / s + 1;
  }
  return n;
}


}  // namespace

TEST(Frontend, WaveformOutputLengthsFollowConvArithmetic) {
  auto cfg = small_config();
  WaveformFrontend fe(cfg.frontend, cfg.encoder.d_model);
  std::mt19937 rng(3);
  std::vector<int64_t> lens;
  for (int64_t n = 0; n < 3000; ++n) lens.push_back(n);
  for (int i = 0; i < 500; ++i) lens.push_back(std::uniform_int_distribution<int64_t>(3000, 400000)(rng));
  auto got = fe.output_lengths(torch::tensor(lens, torch::kLong));
  for (size_t i = 0; i < lens.size(); ++i) {
    ASSERT_EQ(got[i].item<int64_t>(), expected_waveform_frames(lens[i], cfg.frontend)) << "samples " << lens[i];
  }
  // And the real forward yields exactly that many frames.
  torch::NoGradGuard ng;
  fe.eval();
  for (int64_t n : {0L, 700L, 767L, 768L, 2000L, 4321L, 9999L}) {
    auto out = fe.forward(torch::randn({1, n}), torch::tensor({n}, torch::kLong));
    EXPECT_EQ(out.features.size(1), expected_waveform_frames(n, cfg.frontend)) << n;
    EXPECT_EQ(out.lengths[0].item<int64_t>(), expected_waveform_frames(n, cfg.frontend));
  }
}

TEST(Frontend, LogMelOutputLengthsMatchForward) {
  auto cfg = small_config("group", "logmel");
  LogMelFrontend fe(cfg.frontend, cfg.sample_rate, cfg.encoder.d_model);
  torch::NoGradGuard ng;
  fe.eval();
  for (int64_t n : {1L, 31L, 32L, 33L, 500L, 1601L, 5000L}) {
    auto out = fe.forward(torch::randn({1, n}), torch::tensor({n}, torch::kLong));
    int64_t f = n / 32 + 1;  // centred frames with zero padding of n_fft/2
    for (int s : cfg.frontend.subsample_strides) f = (f - 1) / s + 1;
    EXPECT_EQ(out.lengths[0].item<int64_t>(), f) << n;
    EXPECT_EQ(out.features.size(1), f) << n;
  }
}

TEST(Frontend, UnknownKindOrNormIsAnError) {
  auto cfg = small_config();
  cfg.frontend.kind = "mfcc";
  EXPECT_THROW(make_frontend(cfg), asr::Error);
  cfg = small_config("instance");
  EXPECT_THROW(make_frontend(cfg), asr::Error);
  cfg = small_config();
  cfg.frontend.norm_groups = 3;  // does not divide 8 channels
  EXPECT_THROW(make_frontend(cfg), asr::Error);
}

// An utterance's outputs must not depend on its batch-mates or padding.
// `extras` adds the frontend's output layer norm and the encoder's
// convolution module, whose depthwise kernel spans many frames.
class PaddingInvariance : public ::testing::TestWithParam<std::tuple<std::string, std::string, bool>> {};

TEST_P(PaddingInvariance, AloneEqualsPaddedInBatch) {
  auto [norm, kind, extras] = GetParam();
  torch::manual_seed(1);
  auto cfg = small_config(norm, kind);
  if (extras) {
    cfg.frontend.output_norm = true;
    cfg.encoder.conv_kernel = 7;
  }
  cfg.rvq.enabled = false;  // a code flip from 1e-7 noise would not be a padding bug
  AsrModel model(cfg);
  if (norm == "batch") {  // give the running statistics non-trivial values
    auto w = torch::randn({2, 9000});
    model->forward(w, torch::tensor({9000L, 6000L}), true);
    model->apply_step_statistics();
  }
  torch::NoGradGuard ng;
  const int64_t n = 5000;
  auto utt = torch::randn({n});
  auto alone = model->forward(utt.unsqueeze(0), torch::tensor({n}), false);
  auto batch = torch::randn({3, 12000}) * 3.0;  // garbage in the padding, too
  batch[1].narrow(0, 0, n).copy_(utt);
  auto padded = model->forward(batch, torch::tensor({12000L, n, 9000L}), false);
  const int64_t t = alone.out_lengths[0].item<int64_t>();
  ASSERT_GT(t, 0);
  ASSERT_EQ(padded.out_lengths[1].item<int64_t>(), t);
  auto a = alone.log_probs[0].narrow(0, 0, t);
  auto p = padded.log_probs[1].narrow(0, 0, t);
  EXPECT_LT((a - p).abs().max().item<float>(), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Norms, PaddingInvariance,
                         ::testing::Combine(::testing::Values("group", "layer", "batch"),
                                            ::testing::Values("waveform", "logmel"), ::testing::Bool()));

TEST(MaskedNorm, BatchStatisticsIgnorePadding) {
  torch::manual_seed(2);
  auto cfg = small_config("batch");
  cfg.rvq.enabled = false;
  auto run = [&](float pad_value) {
    torch::manual_seed(5);
    AsrModel m(cfg);
    auto w = torch::full({2, 8000}, pad_value);
    torch::manual_seed(6);
    w[0].copy_(torch::randn({8000}));
    w[1].narrow(0, 0, 4000).copy_(torch::randn({4000}));
    m->forward(w, torch::tensor({8000L, 4000L}), true);
    m->apply_step_statistics();
    for (const auto& b : m->named_buffers()) {
      if (b.key().find("running_mean") != std::string::npos) return b.value().clone();
    }
    return at::Tensor();
  };
  auto a = run(0.0f), b = run(100.0f);
  ASSERT_TRUE(a.defined());
  EXPECT_GT(a.abs().sum().item<float>(), 0.0f);
  EXPECT_TRUE(torch::allclose(a, b));
}

// The fused per-utterance batch norm (+ ReLU) must equal native
// training-mode batch norm over all frames laid end to end: outputs, every
// gradient and the running statistics. float runs the CPU kernels, double
// the composite fallback that other devices use.
class PooledBatchNorm : public ::testing::TestWithParam<std::tuple<bool, at::ScalarType>> {};

TEST_P(PooledBatchNorm, EqualsNativeBatchNormOverConcatenatedFrames) {
  const auto [relu, dtype] = GetParam();
  torch::manual_seed(3);
  const int64_t c = 6;
  const auto opts = torch::TensorOptions().dtype(dtype);
  std::vector<at::Tensor> xs;
  for (int64_t len : {37L, 5L, 1L, 600L}) xs.push_back((torch::randn({1, c, len}, opts) * 2 + 0.5).requires_grad_());
  MaskedNorm ours(NormKind::batch, c, 1);
  torch::nn::BatchNorm1d ref{torch::nn::BatchNorm1dOptions(c)};
  ours->to(dtype);
  ref->to(dtype);
  {
    torch::NoGradGuard ng;
    auto w = torch::rand({c}, opts) + 0.5, b = torch::randn({c}, opts);
    for (const auto& params : {ours->named_parameters(), ref->named_parameters()}) {
      params["weight"].copy_(w);
      params["bias"].copy_(b);
    }
  }
  auto ys = ours->forward(xs, relu);
  ours->apply_pending_statistics();
  auto cat_in = torch::cat(xs, 2).detach().requires_grad_();
  auto cat_out = ref->forward(cat_in);
  if (relu) cat_out = torch::relu(cat_out);
  auto upstream = torch::randn_like(cat_out);
  torch::cat(ys, 2).mul(upstream).sum().backward();
  cat_out.mul(upstream).sum().backward();
  EXPECT_TRUE(torch::allclose(torch::cat(ys, 2), cat_out, 1e-5, 1e-5));
  std::vector<at::Tensor> grads;
  for (const auto& x : xs) grads.push_back(x.grad());
  EXPECT_TRUE(torch::allclose(torch::cat(grads, 2), cat_in.grad(), 1e-4, 1e-5));
  for (const char* name : {"weight", "bias"}) {
    EXPECT_TRUE(torch::allclose(ours->named_parameters()[name].grad(), ref->named_parameters()[name].grad(), 1e-4,
                                1e-4))
        << name;
  }
  for (const char* name : {"running_mean", "running_var"}) {
    EXPECT_TRUE(torch::allclose(ours->named_buffers()[name], ref->named_buffers()[name], 1e-5, 1e-6)) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(ReluAndDtype, PooledBatchNorm,
                         ::testing::Combine(::testing::Bool(), ::testing::Values(at::kFloat, at::kDouble)));

TEST(Model, ShapesAndNormalizedLogProbs) {
  auto cfg = small_config();
  AsrModel model(cfg);
  auto out = model->forward(torch::randn({3, 16000}), torch::tensor({16000L, 9000L, 800L}), true);
  const int64_t t = expected_waveform_frames(16000, cfg.frontend);
  EXPECT_EQ(out.log_probs.sizes(), (std::vector<int64_t>{3, t, cfg.vocab_size}));
  EXPECT_EQ(out.out_lengths[1].item<int64_t>(), expected_waveform_frames(9000, cfg.frontend));
  EXPECT_EQ(out.out_lengths[2].item<int64_t>(), expected_waveform_frames(800, cfg.frontend));
  EXPECT_TRUE(torch::allclose(out.log_probs.exp().sum(-1), torch::ones({3, t}), 1e-4, 1e-4));
  model->apply_step_statistics();
  EXPECT_EQ(model->rvq_metrics().perplexity.size(), 2u);
  EXPECT_EQ(model->rvq_metrics().dead_codes.size(), 2u);
  EXPECT_EQ(out.vq_loss.dim(), 0);
  EXPECT_GT(count_parameters(*model), 0);
  cfg.vocab_size = 0;
  EXPECT_THROW(AsrModel{cfg}, asr::Error);
}

TEST(Model, GradientsReachFrontendThroughStraightThrough) {
  auto cfg = small_config();
  torch::manual_seed(4);
  AsrModel model(cfg);
  auto out = model->forward(torch::randn({2, 20000}), torch::tensor({20000L, 15000L}), true);
  auto targets = torch::tensor({{1L, 2L, 3L}, {4L, 5L, 0L}});
  auto ctc = ctc_loss_sum(out.log_probs, out.out_lengths, targets, torch::tensor({3L, 2L}));
  ASSERT_EQ(ctc.kept, 2);
  ctc.sum.backward();  // CTC only: the frontend gets gradient solely through the STE
  for (const auto& p : model->frontend().named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_TRUE(torch::isfinite(p.value().grad()).all().item<bool>()) << p.key();
  }
  auto g = model->frontend().named_parameters()["block0_conv.weight"].grad();
  EXPECT_GT(g.abs().sum().item<float>(), 0.0f);
}

TEST(Ctc, SkipsUnalignableUtterancesWithoutNaN) {
  torch::manual_seed(0);
  auto logits = torch::randn({3, 6, 5}, torch::requires_grad());
  auto lp = torch::log_softmax(logits, -1);
  // Utterance 0 fits, 1 needs 3 frames for "2 2" but has 2, 2 is longer than its output.
  auto targets = torch::tensor({{1L, 2L, 3L, 0L}, {2L, 2L, 0L, 0L}, {1L, 2L, 3L, 4L}});
  auto tlen = torch::tensor({3L, 2L, 4L});
  auto olen = torch::tensor({6L, 2L, 3L});
  auto r = ctc_loss_sum(lp, olen, targets, tlen);
  EXPECT_EQ(r.kept, 1);
  EXPECT_EQ(r.skipped, 2);
  EXPECT_EQ(r.kept_target_tokens, 3);
  auto ref = torch::ctc_loss(lp.narrow(0, 0, 1).transpose(0, 1), targets.narrow(0, 0, 1), torch::tensor({6L}),
                             torch::tensor({3L}), 0, at::Reduction::Sum);
  EXPECT_NEAR(r.sum.item<double>(), ref.item<double>(), 1e-4);
  r.sum.backward();
  ASSERT_TRUE(logits.grad().defined());
  EXPECT_TRUE(torch::isfinite(logits.grad()).all().item<bool>());
  // Skipped utterances get no gradient at all.
  EXPECT_EQ(logits.grad().narrow(0, 1, 2).abs().sum().item<float>(), 0.0f);
  // A repeat fits once there is room for the separating blank.
  auto r2 = ctc_loss_sum(lp, torch::tensor({6L, 3L, 5L}), targets, tlen);
  EXPECT_EQ(r2.kept, 3);
  EXPECT_TRUE(std::isfinite(r2.sum.item<double>()));
  // Nothing alignable: zero loss that still backpropagates.
  auto r3 = ctc_loss_sum(lp, torch::tensor({1L, 1L, 1L}), targets, tlen);
  EXPECT_EQ(r3.kept, 0);
  EXPECT_EQ(r3.sum.item<double>(), 0.0);
}

TEST(Ctc, TrueOutputLengthsMatter) {
  // The loss of a padded batch equals the loss of each utterance alone.
  torch::manual_seed(1);
  auto lp = torch::log_softmax(torch::randn({2, 10, 6}), -1);
  auto targets = torch::tensor({{1L, 2L}, {3L, 4L}});
  auto both = ctc_loss_sum(lp, torch::tensor({10L, 4L}), targets, torch::tensor({2L, 2L}));
  auto second = ctc_loss_sum(lp.narrow(0, 1, 1).narrow(1, 0, 4), torch::tensor({4L}), targets.narrow(0, 1, 1),
                         torch::tensor({2L}));
  auto first = ctc_loss_sum(lp.narrow(0, 0, 1), torch::tensor({10L}), targets.narrow(0, 0, 1), torch::tensor({2L}));
  EXPECT_NEAR(both.sum.item<double>(), first.sum.item<double>() + second.sum.item<double>(), 1e-4);
}


// The CPU path (each utterance alone) and the accelerator path (one padded
// batch with a key mask) of attention must agree, values and gradients.
TEST(Encoder, PerUtteranceAttentionEqualsPaddedAttention) {
  torch::manual_seed(8);
  const int64_t heads = 4, d = 16, b = 4, t = 11;
  auto packed = pack_frames(torch::tensor({11L, 0L, 5L, 1L}), b, t, torch::kCPU);
  ASSERT_EQ(packed.rows.numel(), 17);
  auto qkv = torch::randn({17, 3 * d});
  auto run = [&](auto attend) {
    auto in = qkv.clone().requires_grad_();
    auto out = attend(in, packed, heads, 0.0, true);
    torch::manual_seed(1);
    out.mul(torch::randn_like(out)).sum().backward();
    return std::make_pair(out.detach(), in.grad());
  };
  auto [each, each_grad] = run(attend_each_utterance);
  auto [padded, padded_grad] = run(attend_padded);
  ASSERT_EQ(each.sizes(), (std::vector<int64_t>{17, d}));
  EXPECT_TRUE(torch::allclose(each, padded, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(each_grad, padded_grad, 1e-5, 1e-6));
}

// The convolution module sees each utterance's own frames only: a change to
// one frame reaches its neighbours within kernel/2 and nothing else, not the
// other utterance packed next to it.
TEST(Encoder, ConvModuleMixesOnlyNearbyFramesOfOneUtterance) {
  torch::manual_seed(9);
  const int64_t d = 8, kernel = 5;
  ConvModule conv(d, kernel);
  auto packed = pack_frames(torch::tensor({12L, 7L}), 2, 12, torch::kCPU);
  ASSERT_EQ(packed.rows.numel(), 19);
  torch::NoGradGuard ng;
  auto x = torch::randn({19, d});
  auto base = conv->forward(x, packed);
  auto changed_input = x.clone();
  changed_input[6] += 5.0;  // frame 6 of the first utterance
  auto changed = (conv->forward(changed_input, packed) - base).abs().amax(1) > 1e-6;
  for (int64_t row = 0; row < 19; ++row) {
    const bool near = row < 12 && std::abs(row - 6) <= kernel / 2;
    EXPECT_EQ(changed[row].item<bool>(), near) << "packed row " << row;
  }
  EXPECT_THROW(ConvModule(d, 0), asr::Error);
}
