#include <gtest/gtest.h>
#include <torch/torch.h>

#include <optional>

#include "asr/distributed/communicator.h"
#include "asr/model/rvq.h"

using namespace asr::model;

namespace {

class RecordingCommunicator : public asr::distributed::Communicator {
 public:
  int rank() const override { return 1; }
  int world_size() const override { return 2; }
  int local_rank() const override { return 1; }
  std::string backend_name() const override { return "recording"; }
  void all_reduce_sum(std::vector<at::Tensor>& t) override {
    ++reduces;
    for (auto& x : t) {
      if (reduce_value) x.fill_(*reduce_value);
      else x.mul_(2);  // as if the other rank held identical data
    }
  }
  void broadcast(std::vector<at::Tensor>& t, int root) override {
    ++broadcasts;
    EXPECT_EQ(root, 0);
    if (broadcast_value) for (auto& x : t) x.fill_(*broadcast_value);
  }
  std::vector<at::Tensor> all_gather(const at::Tensor& t) override {
    ++gathers;
    return {t, t};
  }
  void barrier() override {}
  std::unique_ptr<asr::distributed::Communicator> new_group(const std::string&) override {
    return asr::distributed::make_local_communicator();
  }
  int reduces = 0, broadcasts = 0, gathers = 0;
  std::optional<float> broadcast_value, reduce_value;
};

asr::RvqConfig config(int books, int codes) {
  asr::RvqConfig c;
  c.codebooks = books;
  c.codes = codes;
  c.kmeans_init = false;
  c.dead_code_window = 1000;
  return c;
}

// Four well separated cluster centres in 2-D, and noisy points around them.
at::Tensor centres() { return torch::tensor({{5.f, 5.f}, {-5.f, 5.f}, {5.f, -5.f}, {-5.f, -5.f}}); }
at::Tensor clustered(int per_cluster) {
  auto c = centres().repeat_interleave(per_cluster, 0);
  return c + 0.1 * torch::randn(c.sizes());
}

}  // namespace

TEST(Rvq, EmaMovesCodesTowardAssignedInputs) {
  torch::manual_seed(0);
  auto cfg = config(1, 4);
  cfg.ema = true;
  cfg.ema_decay = 0.5;
  ResidualVQ vq(cfg, 2);
  {
    torch::NoGradGuard ng;
    vq->codebooks()[0].copy_(centres() * 0.5);  // each code nearest to "its" cluster
  }
  auto x = clustered(16).unsqueeze(0);  // [1, 64, 2]
  auto before = (vq->codebooks()[0] - centres()).norm(2, 1);
  vq->forward(x, torch::tensor({64L}), true);
  // Statistics wait for the step to be applied.
  EXPECT_TRUE(torch::equal(vq->codebooks()[0], centres() * 0.5));
  vq->update();
  auto after = (vq->codebooks()[0] - centres()).norm(2, 1);
  EXPECT_TRUE((after < before * 0.75).all().item<bool>()) << before << after;
  // Eval forwards never change codebooks.
  auto snapshot = vq->codebooks().clone();
  vq->forward(x, torch::tensor({64L}), false);
  EXPECT_TRUE(torch::equal(snapshot, vq->codebooks()));
}

TEST(Rvq, PaddingFramesNeverTouchCodebooks) {
  auto run = [](float pad) {
    torch::manual_seed(0);
    auto cfg = config(2, 4);
    cfg.ema = true;
    cfg.kmeans_init = true;
    ResidualVQ vq(cfg, 2);
    auto x = torch::full({2, 40, 2}, pad);
    torch::manual_seed(1);
    x[0].copy_(clustered(10));
    x[1].narrow(0, 0, 20).copy_(clustered(5));
    auto out = vq->forward(x, torch::tensor({40L, 20L}), true);
    vq->update();
    EXPECT_TRUE((out.codes[1].narrow(0, 20, 20) == -1).all().item<bool>());
    return vq->codebooks().clone();
  };
  EXPECT_TRUE(torch::allclose(run(0.0f), run(1e3f)));
}

TEST(Rvq, KmeansInitFindsClusters) {
  torch::manual_seed(2);
  auto cfg = config(2, 4);
  cfg.kmeans_init = true;
  cfg.kmeans_iters = 10;
  ResidualVQ vq(cfg, 2);
  EXPECT_FALSE(vq->initialized());
  auto x = clustered(32).unsqueeze(0);
  auto out = vq->forward(x, torch::tensor({128L}), true);
  vq->update();
  EXPECT_TRUE(vq->initialized());
  // Every centre has a first-stage code next to it, so the quantized output
  // reproduces the inputs closely and all four codes are in use.
  auto d = torch::cdist(centres(), vq->codebooks()[0]).min(1);
  EXPECT_LT(std::get<0>(d).max().item<float>(), 0.5f);
  EXPECT_NEAR(vq->metrics().perplexity[0], 4.0, 0.2);
  EXPECT_LT((out.quantized - x).abs().max().item<float>(), 0.5f);
}

TEST(Rvq, DeadCodesAreRestartedFromInputs) {
  torch::manual_seed(3);
  auto cfg = config(1, 8);
  cfg.dead_code_window = 2;
  cfg.dead_code_threshold = 1;
  ResidualVQ vq(cfg, 2);
  {
    torch::NoGradGuard ng;
    vq->codebooks()[0].copy_(torch::tensor({{0.f, 0.f}, {100.f, 100.f}, {101.f, 100.f}, {102.f, 100.f},
                                            {103.f, 100.f}, {104.f, 100.f}, {105.f, 100.f}, {106.f, 100.f}}));
  }
  auto x = (torch::randn({1, 50, 2}) * 0.1);  // every input picks code 0
  vq->forward(x, torch::tensor({50L}), true);
  vq->update();
  EXPECT_EQ(vq->codebooks()[0][1][0].item<float>(), 100.f);  // not yet: window is 2 steps
  vq->forward(x, torch::tensor({50L}), true);
  EXPECT_EQ(vq->codebooks()[0][1][0].item<float>(), 100.f);  // not before the step is applied
  vq->update();
  EXPECT_EQ(vq->metrics().dead_codes[0], 7);
  auto books = vq->codebooks()[0];
  for (int k = 1; k < 8; ++k) {
    // A restarted code is one of this batch's input rows.
    auto dist = (x[0] - books[k]).norm(2, 1).min().item<float>();
    EXPECT_LT(dist, 1e-6) << "code " << k;
  }
}

TEST(Rvq, StatisticsGoThroughTheCommunicator) {
  torch::manual_seed(4);
  auto cfg = config(2, 4);
  cfg.ema = true;
  cfg.kmeans_init = true;
  cfg.kmeans_iters = 3;
  cfg.dead_code_window = 1;
  cfg.dead_code_threshold = 1000000;  // every code is "dead": all restart
  ResidualVQ vq(cfg, 2);
  RecordingCommunicator comm;
  vq->set_communicator(&comm);
  auto x = clustered(8).unsqueeze(0);
  vq->forward(x, torch::tensor({32L}), true);
  vq->update();
  // Per codebook, k-means seeds take one gather of candidate hashes and one
  // reduction of the chosen rows, then kmeans_iters reductions; the step's
  // counts/sums take one; the restart takes a gather and a reduction per
  // codebook. Nothing is broadcast: every rank computes the same choice.
  EXPECT_EQ(comm.reduces, 2 * (1 + 3) + 1 + 2);
  EXPECT_EQ(comm.gathers, 2 + 2);
  EXPECT_EQ(comm.broadcasts, 0);
  comm.reduce_value = 7.0f;
  vq->forward(x, torch::tensor({32L}), true);
  vq->update();
  // The restart vectors are what the collective delivered, on this rank too.
  EXPECT_TRUE((vq->codebooks() == 7.0f).all().item<bool>());
  // Eval mode runs no collectives.
  const int r = comm.reduces, b = comm.broadcasts, g = comm.gathers;
  vq->forward(x, torch::tensor({32L}), false);
  EXPECT_EQ(comm.reduces, r);
  EXPECT_EQ(comm.broadcasts, b);
  EXPECT_EQ(comm.gathers, g);
}

TEST(Rvq, CodebookLossTrainsCodesAndCommitsEncoder) {
  torch::manual_seed(5);
  auto cfg = config(1, 4);
  cfg.commitment = 0.25;
  ResidualVQ vq(cfg, 2);
  auto x = clustered(4).unsqueeze(0).requires_grad_(true);
  auto out = vq->forward(x, torch::tensor({16L}), true);
  (out.loss + out.quantized.sum()).backward();
  ASSERT_TRUE(vq->codebooks().grad().defined());
  EXPECT_GT(vq->codebooks().grad().abs().sum().item<float>(), 0.0f);
  // Straight-through: d(sum quantized)/dx is one, plus the commitment term.
  EXPECT_TRUE(torch::isfinite(x.grad()).all().item<bool>());
  EXPECT_GT((x.grad() - 1).abs().sum().item<float>(), 0.0f);
}

// vq_warmup.bypass_steps: until the codebooks are initialized, evaluation and
// bypassed training pass the features through and touch no statistics and
// no collective; the first unbypassed training step initializes them.
TEST(Rvq, BypassedUntilInitializedPassesFeaturesThrough) {
  torch::manual_seed(6);
  auto cfg = config(2, 4);
  cfg.kmeans_init = true;
  cfg.kmeans_iters = 2;
  ResidualVQ vq(cfg, 2);
  RecordingCommunicator comm;
  vq->set_communicator(&comm);
  auto x = clustered(8).unsqueeze(0);
  auto lengths = torch::tensor({32L});
  const auto before = vq->codebooks().clone();
  for (bool train : {false, true}) {
    SCOPED_TRACE(train ? "bypassed training" : "evaluation");
    vq->set_bypass(train);
    auto out = vq->forward(x, lengths, train);
    EXPECT_TRUE(torch::equal(out.quantized, x));
    EXPECT_EQ(out.loss.item<float>(), 0.0f);
    EXPECT_TRUE((out.codes == -1).all().item<bool>());
    vq->update();
    EXPECT_FALSE(vq->initialized());
  }
  EXPECT_TRUE(torch::equal(vq->codebooks(), before));
  EXPECT_EQ(comm.reduces + comm.gathers + comm.broadcasts, 0);

  vq->set_bypass(false);
  auto out = vq->forward(x, lengths, true);
  EXPECT_TRUE(vq->initialized());
  EXPECT_GT(comm.reduces, 0);  // k-means ran across ranks
  EXPECT_TRUE((out.codes >= 0).all().item<bool>());
  EXPECT_FALSE(torch::equal(out.quantized.detach(), x));
  // Once initialized, a bypass flag no longer matters: the codes are in the path.
  vq->set_bypass(true);
  EXPECT_TRUE((vq->forward(x, lengths, false).codes >= 0).all().item<bool>());
}
