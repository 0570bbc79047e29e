#include "train_step.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>

#include "asr/model/ctc.h"
#include "asr/model/transfer.h"

namespace asr {

using Clock = std::chrono::steady_clock;

TrainStep::TrainStep(model::AsrModel model, torch::optim::AdamW& optimizer, distributed::Communicator& comm,
                     distributed::GradientSynchronizer& sync, const TrainConfig& config, const FaultInjector* faults)
    : model_(std::move(model)), optimizer_(optimizer), comm_(comm), sync_(sync), cfg_(config), faults_(faults) {}

StepRecord TrainStep::run(std::vector<Batch>& micro_batches, int64_t step, double lr, double vq_weight) {
  // Dropout draws depend on (seed, step, rank) only, so a resumed run repeats
  // them exactly without restoring generator state.
  torch::manual_seed(cfg_.train.seed * 1000003ull + static_cast<uint64_t>(step) * 7919ull +
                     static_cast<uint64_t>(comm_.rank()));
  model_->train();
  const auto counts = global_counts(micro_batches);
  Local local;
  const double n = static_cast<double>(micro_batches.size());
  for (size_t m = 0; m < micro_batches.size(); ++m) {
    const bool last = m + 1 == micro_batches.size();
    sync_.begin_step(/*synchronize=*/last);
    auto loss = forward(micro_batches[m], counts[m], step, vq_weight, n, local);
    backward_and_reduce(loss, last);
  }
  StepRecord record = update(step, lr, local);
  record.loss = record.ctc + vq_weight * record.vq;
  for (const auto& c : counts) {
    record.audio_seconds += c.audio_seconds;
    record.skipped_utterances += static_cast<int64_t>(c.skipped);
  }
  return record;
}

std::vector<TrainStep::Counts> TrainStep::global_counts(const std::vector<Batch>& micro_batches) {
  // Each rank's share of every micro-batch, from the lengths alone; one
  // all-reduce before the first forward gives the global counts. Each rank's
  // loss is its sum divided by the GLOBAL count, so the summed gradient is
  // exactly the gradient of the global batch's mean, whatever the world size.
  std::vector<double> sums;
  for (const auto& b : micro_batches) {
    const auto frames = model_->output_lengths(b.lengths);
    const auto plan = model::plan_ctc(frames, b.targets, b.target_lengths);
    sums.insert(sums.end(), {double(plan.kept_target_tokens), double(frames.sum().item<int64_t>()),
                             double(plan.skipped), b.audio_seconds});
  }
  sums = comm_.all_reduce_sum(sums);
  std::vector<Counts> out(micro_batches.size());
  for (size_t m = 0; m < out.size(); ++m) {
    // CTC is normalized per target token (nats/token): comparable across
    // batches whatever their utterance lengths.
    out[m] = {std::max(1.0, sums[4 * m]), std::max(1.0, sums[4 * m + 1]), sums[4 * m + 2], sums[4 * m + 3]};
  }
  return out;
}

at::Tensor TrainStep::forward(Batch& batch, const Counts& counts, int64_t step, double vq_weight,
                              double micro_batches, Local& local) {
  auto out = model_->forward(batch.audio, batch.lengths, /*train=*/true, torch::tensor(batch.indices, torch::kLong));
  const auto plan = model::plan_ctc(out.out_lengths, batch.targets, batch.target_lengths);
  const auto ctc_sum = model::ctc_loss_sum(out.log_probs, plan);
  const double frames = static_cast<double>(out.out_lengths.sum().item<int64_t>());
  auto ctc = ctc_sum / counts.kept_tokens;
  auto vq = out.vq_loss * (frames / counts.frames);
  auto loss = (ctc + vq * vq_weight) / micro_batches;
  if (faults_) loss = faults_->poison_loss(step + 1, loss);

  // This rank's shares of the global losses, summed over micro-batches on the
  // device; the update adds them up across ranks.
  auto add = [](at::Tensor& sum, const at::Tensor& v) { sum = sum.defined() ? sum + v.detach() : v.detach(); };
  add(local.ctc, ctc / micro_batches);
  add(local.vq, vq / micro_batches);
  add(local.nonfinite, torch::logical_not(torch::isfinite(loss.detach())).to(torch::kDouble));
  local.perplexity = out.metrics.perplexity;
  return loss;
}

void TrainStep::backward_and_reduce(const at::Tensor& loss, bool last_micro_batch) {
  loss.backward();
  // After the last micro-batch: wait for the buckets the backward hooks
  // launched (and launch what is left); every rank then holds the sum.
  if (last_micro_batch) sync_.finish_step();
}

StepRecord TrainStep::update(int64_t step, double lr, const Local& local) {
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> grads;
  for (auto& p : model_->parameters())
    if (p.grad().defined()) grads.push_back(p.grad());

  // One all-reduce decides the step on every rank: non-finite values and the
  // loss shares (summed), and any stop signal (one slot per rank). The
  // gradient norm is the same everywhere after the reduction, so it joins
  // afterwards; one read to the host serves the skip decision, clipping and
  // the log.
  const int world = comm_.world_size();
  auto decision = torch::zeros({3 + world}, torch::kDouble);
  decision[3 + comm_.rank()] = double(distributed::local_stop_signal());
  decision = model::to_device(decision, local.ctc.device());
  decision.narrow(0, 0, 3).copy_(torch::stack({local.nonfinite, local.ctc.to(torch::kDouble), local.vq.to(torch::kDouble)}));
  std::vector<at::Tensor> reduce{decision};
  comm_.all_reduce_sum(reduce);
  std::vector<at::Tensor> norms;
  for (auto& g : grads) norms.push_back(g.norm().to(torch::kDouble));
  auto grad_norm = norms.empty() ? torch::zeros({1}, decision.options()) : torch::stack(norms).norm().view({1});
  auto host = torch::cat({reduce[0].to(grad_norm.device()), grad_norm}).to(torch::kCPU);
  const double* v = host.data_ptr<double>();

  StepRecord r;
  r.ctc = v[1];
  r.vq = v[2];
  r.grad_norm = v[3 + world];
  r.nonfinite = v[0] > 0 || !std::isfinite(r.grad_norm);
  for (int rank = 0; rank < world && !r.stop; ++rank)
    if (v[3 + rank] != 0) r.stop = distributed::StopRequest{true, int(v[3 + rank]), rank};
  r.applied = !r.nonfinite;
  if (r.applied) {
    // Global-norm clipping, as torch::nn::utils::clip_grad_norm_ does it.
    const double clip_coef = cfg_.optim.grad_clip / (r.grad_norm + 1e-6);
    if (cfg_.optim.grad_clip > 0 && clip_coef < 1)
      for (auto& g : grads) g.mul_(clip_coef);
    for (auto& group : optimizer_.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    optimizer_.step();
    if (faults_) faults_->diverge(step + 1, *model_);
  } else if (comm_.is_root()) {
    spdlog::warn("step {}: non-finite loss or gradient on some rank; every rank skips it", step + 1);
  }
  optimizer_.zero_grad();
  const auto& timings = sync_.last_timings();
  r.grads_ready_s = timings.ready_s;
  r.allreduce_wait_s = timings.wait_s;
  r.perplexity = local.perplexity;
  return r;
}

}  // namespace asr
