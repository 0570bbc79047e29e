#include "train_step.h"

#include <c10/core/impl/VirtualGuardImpl.h>
#include <c10/util/Exception.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <iterator>

#include "asr/distributed/device.h"
#include "asr/distributed/flight_recorder.h"
#include "asr/model/ctc.h"
#include "asr/model/precision.h"
#include "asr/model/transfer.h"

namespace asr {

bool is_out_of_memory(const std::exception& e) {
  if (dynamic_cast<const c10::OutOfMemoryError*>(&e)) return true;
  const std::string what = e.what();
  return what.find("out of memory") != std::string::npos || what.find("ALLOC_FAILED") != std::string::npos;
}

namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// "LJ001-0001 (4.2 s), LJ001-0002 (9.8 s)": what did not fit, for the log.
std::string describe_batch(const Batch& b, int sample_rate_guess) {
  std::string out;
  const auto* lens = b.lengths.data_ptr<int64_t>();
  for (size_t i = 0; i < b.ids.size(); ++i)
    out += fmt::format("{}{} ({:.1f} s)", i ? ", " : "", b.ids[i], double(lens[i]) / sample_rate_guess);
  return out;
}

int64_t host_sum(const at::Tensor& lengths) {
  auto l = lengths.to(torch::kCPU, torch::kLong).contiguous();
  int64_t s = 0;
  for (int64_t i = 0; i < l.numel(); ++i) s += l.data_ptr<int64_t>()[i];
  return s;
}

}  // namespace

TrainStep::TrainStep(model::AsrModel model, torch::optim::AdamW& optimizer, StepParts parts)
    : model_(std::move(model)), optimizer_(optimizer), p_(parts), device_(parts.feed.device()) {}

StepRecord TrainStep::run(std::vector<Batch>& micro_batches, int64_t step, double lr, double vq_weight) {
  // Dropout draws depend on (seed, step, rank) only, so a resumed run repeats
  // them exactly without restoring generator state.
  torch::manual_seed(p_.cfg.train.seed * 1000003ull + static_cast<uint64_t>(step) * 7919ull +
                     static_cast<uint64_t>(p_.comm.rank()));
  model_->train();
  if (p_.batch_stats) p_.batch_stats->begin_step();
  last_mark_ns_ = now_ns();
  std::fill(std::begin(phases_), std::end(phases_), 0.0);
  distributed::flight_set_step(step + 1, -1);
  distributed::flight_set_phase(distributed::FlightPhase::forward);
  const auto counts = global_counts(micro_batches);
  Local local;
  run_micro_batches(micro_batches, counts, step, vq_weight, local);
  StepRecord record = update(step, lr, local, counts);
  record.loss = record.ctc + vq_weight * record.vq;
  record.forward_s = phases_[0];
  record.backward_s = phases_[1];
  record.reduce_s = phases_[2];
  record.update_s = phases_[3];
  return record;
}

at::Tensor TrainStep::global_counts(const std::vector<Batch>& micro_batches) {
  // Each rank's share of every micro-batch, from the lengths alone (host
  // arithmetic); one all-reduce before the first forward gives the global
  // counts, which stay on the device: each rank's loss is its sum divided by
  // the GLOBAL count, so the summed gradient is exactly the gradient of the
  // global batch's mean, whatever the world size.
  auto host = torch::empty({4 * static_cast<int64_t>(micro_batches.size())}, torch::kDouble);
  double* v = host.data_ptr<double>();
  for (const auto& b : micro_batches) {
    const auto frames = model_->output_lengths(b.lengths);
    const auto plan = model::plan_ctc(frames, b.targets, b.target_lengths);
    *v++ = static_cast<double>(plan.kept_target_tokens);
    *v++ = static_cast<double>(host_sum(frames));
    *v++ = static_cast<double>(plan.skipped);
    *v++ = b.audio_seconds;
  }
  std::vector<at::Tensor> t{model::to_device(host, p_.comm.device())};
  distributed::FlightNote note("global counts");
  p_.comm.all_reduce_sum(t);
  return model::to_device(t[0], device_);
}

void TrainStep::run_micro_batches(std::vector<Batch>& micro_batches, const at::Tensor& counts, int64_t step,
                                  double vq_weight, Local& local) {
  const size_t n = micro_batches.size();
  for (size_t m = 0; m < n; ++m) {
    const bool last = m + 1 == n;
    p_.sync.begin_step(/*synchronize=*/last);
    distributed::flight_set_step(step + 1, static_cast<int>(m));
    distributed::flight_set_utterances(micro_batches[m].ids);
    distributed::flight_set_phase(distributed::FlightPhase::forward);
    try {
      auto loss = forward(micro_batches[m], counts.narrow(0, 4 * static_cast<int64_t>(m), 4), step, vq_weight,
                          static_cast<double>(n), local);
      backward_and_reduce(loss, last);
    } catch (const std::exception& e) {
      if (!is_out_of_memory(e)) throw;
      // This rank drops the step; the others learn it from the decision in
      // update() and drop it too. Until then it takes part in everything they run.
      local.oom = true;
      local.oom_detail = describe_batch(micro_batches[m], p_.cfg.model.sample_rate);
      const std::string what = e.what();
      spdlog::warn("rank {}: out of memory at step {} (micro-batch {} of {}): {}; the utterances: {}",
                   p_.comm.rank(), step + 1, m + 1, n, what.substr(0, what.find('\n')), local.oom_detail);
      join_remaining_collectives(m, n);
      return;
    }
  }
}

at::Tensor TrainStep::forward(Batch& batch, const at::Tensor& counts, int64_t step, double vq_weight,
                              double micro_batches, Local& local) {
  if (p_.faults) {
    p_.faults->slow_down(step + 1);
    p_.faults->out_of_memory(step + 1, StepPhase::forward);
  }
  p_.feed.ready(batch);
  model::AutocastGuard autocast(device_.type(), at::kBFloat16, p_.bf16);
  auto out = model_->forward(batch.device_audio, batch.lengths, /*train=*/true,
                             torch::tensor(batch.indices, torch::kLong));
  const auto plan = model::plan_ctc(out.out_lengths, batch.targets, batch.target_lengths);
  const auto ctc_sum = model::ctc_loss_sum(out.log_probs, plan);
  const double frames = static_cast<double>(host_sum(out.out_lengths));
  // Divided by the global counts, which never leave the device.
  auto ctc = ctc_sum / counts[0].clamp_min(1.0).to(ctc_sum.scalar_type());
  auto vq = out.vq_loss * (frames / counts[1].clamp_min(1.0)).to(out.vq_loss.scalar_type());
  auto loss = (ctc + vq * vq_weight) / micro_batches;
  if (p_.faults) {
    loss = p_.faults->poison_loss(step + 1, loss);
    // A backward out-of-memory fault strikes between the encoder's and the
    // frontend's gradients, with some buckets already launched.
    const auto* faults = p_.faults;
    out.encoded.register_hook([faults, step](const at::Tensor& g) {
      faults->out_of_memory(step + 1, StepPhase::backward);
      return g;
    });
  }
  // This rank's shares of the global losses, summed over micro-batches on the
  // device; the update adds them up across ranks.
  auto add = [](at::Tensor& sum, const at::Tensor& v) {
    sum = sum.defined() ? sum + v.detach().to(torch::kDouble) : v.detach().to(torch::kDouble);
  };
  add(local.ctc, ctc / micro_batches);
  add(local.vq, vq / micro_batches);
  add(local.nonfinite, torch::logical_not(torch::isfinite(loss.detach())));
  profile_mark(0);
  return loss;
}

void TrainStep::backward_and_reduce(const at::Tensor& loss, bool last_micro_batch) {
  distributed::flight_set_phase(distributed::FlightPhase::backward);
  loss.backward();
  profile_mark(1);
  // After the last micro-batch: wait for the buckets the backward hooks
  // launched (and launch what is left); every rank then holds the sum.
  if (last_micro_batch) p_.sync.finish_step();
  profile_mark(2);
}

void TrainStep::join_remaining_collectives(size_t micro_batches_done, size_t micro_batches) {
  distributed::release_cached_memory(device_);
  // Batch norm's cross-rank sums the others still make in this step's
  // forwards and backwards, in their order.
  if (p_.batch_stats && p_.batch_stats->synchronized()) {
    std::vector<int64_t> sizes;
    for (size_t m = 0; m < micro_batches; ++m)
      for (int64_t s : model_->batch_statistics_sizes()) sizes.push_back(s);
    p_.batch_stats->complete_with_zeros(sizes);
  }
  // Every gradient bucket not launched yet, with zeros.
  if (micro_batches_done + 1 < micro_batches) p_.sync.begin_step(/*synchronize=*/true);
  p_.sync.finish_step_with_zeros();
}

StepRecord TrainStep::update(int64_t step, double lr, const Local& local, const at::Tensor& counts) {
  torch::NoGradGuard no_grad;
  distributed::flight_set_phase(distributed::FlightPhase::optimizer);
  {
    distributed::FlightNote note("codebook statistics");
    model_->reduce_step_statistics();
  }
  const int world = p_.comm.world_size();
  const auto f64 = torch::TensorOptions().dtype(torch::kDouble);
  // One all-reduce decides the step on every rank: out of memory, non-finite
  // values and the loss shares (summed), any stop signal (one slot per rank).
  auto flags = torch::zeros({1 + world}, f64);
  flags.data_ptr<double>()[0] = local.oom ? 1.0 : 0.0;
  flags.data_ptr<double>()[1 + p_.comm.rank()] = double(distributed::local_stop_signal());
  auto zero = torch::zeros({}, f64.device(device_));
  auto measured = torch::stack({local.nonfinite.defined() ? local.nonfinite.to(torch::kDouble) : zero,
                                local.ctc.defined() ? local.ctc : zero, local.vq.defined() ? local.vq : zero});
  std::vector<at::Tensor> decision{torch::cat({model::to_device(flags, device_), measured})};
  reduce_decision(decision, step);
  // The gradient norm is the same everywhere after the reduction.
  std::vector<at::Tensor> grads, norms;
  for (auto& p : model_->parameters())
    if (p.grad().defined()) grads.push_back(p.grad()), norms.push_back(p.grad().norm().to(torch::kDouble));
  auto grad_norm = norms.empty() ? torch::zeros({1}, f64.device(device_)) : torch::stack(norms).norm().view({1});
  // The one host read of the step.
  const auto host = p_.comm.read_to_host(torch::cat({decision[0].to(device_), grad_norm, counts}), "step decision");
  const double* v = host.data_ptr<double>();

  StepRecord r;
  const double* measured_sum = v + 1 + world;
  r.nonfinite = measured_sum[0] > 0;
  r.ctc = measured_sum[1];
  r.vq = measured_sum[2];
  r.grad_norm = v[4 + world];
  r.nonfinite = r.nonfinite || !std::isfinite(r.grad_norm);
  for (int rank = 0; rank < world && !r.stop; ++rank)
    if (v[1 + rank] != 0) r.stop = distributed::StopRequest{true, int(v[1 + rank]), rank};
  const double* c = v + 5 + world;
  for (int64_t m = 0; m < counts.numel() / 4; ++m) {
    r.skipped_utterances += static_cast<int64_t>(c[4 * m + 2]);
    r.audio_seconds += c[4 * m + 3];
  }
  r.oom_ranks = static_cast<int>(v[0]);
  if (r.oom_ranks > 0) {
    if (p_.comm.is_root())
      spdlog::warn("step {}: out of memory on {} rank(s) (their logs name the utterances); every rank skips it",
                   step + 1, static_cast<int>(v[0]));
  } else if (r.nonfinite && p_.comm.is_root()) {
    spdlog::warn("step {}: non-finite loss or gradient on some rank; every rank skips it", step + 1);
  }
  r.applied = v[0] == 0 && !r.nonfinite;
  if (r.applied)
    apply(r, step, lr);
  else
    model_->discard_step_statistics();
  p_.sync.zero_grad();
  profile_mark(3);
  const auto& timings = p_.sync.last_timings();
  r.grads_ready_s = timings.ready_s;
  r.allreduce_wait_s = timings.wait_s;
  return r;
}

void TrainStep::reduce_decision(std::vector<at::Tensor>& decision, int64_t step) {
  distributed::FlightNote note("step decision");
  if (p_.faults && p_.faults->skip_collective(step + 1)) {
    spdlog::warn("rank {}: ASR_FAULT_SKIP_COLLECTIVE: skipping the step decision's all-reduce at step {}",
                 p_.comm.rank(), step + 1);
    return;
  }
  p_.comm.all_reduce_sum(decision);
}

void TrainStep::apply(StepRecord& r, int64_t step, double lr) {
  // Global-norm clipping, as torch::nn::utils::clip_grad_norm_ does it.
  const double clip_coef = p_.cfg.optim.grad_clip / (r.grad_norm + 1e-6);
  if (p_.cfg.optim.grad_clip > 0 && clip_coef < 1)
    for (auto& p : model_->parameters())
      if (p.grad().defined()) p.mutable_grad().mul_(clip_coef);
  for (auto& group : optimizer_.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
  optimizer_.step();
  model_->apply_step_statistics();
  if (p_.faults) p_.faults->diverge(step + 1, *model_);
}

void TrainStep::profile_mark(int phase) {
  // Host time always (the straggler report compares ranks by it); waiting
  // for the device first, so a phase's GPU work is charged to it, only with
  // train.profile, since that stalls the pipeline.
  if (p_.cfg.train.profile && !device_.is_cpu()) {
    // Wait for the device so the phase's time is its own.
    c10::impl::VirtualGuardImpl impl(device_.type());
    impl.synchronizeStream(impl.getStream(device_));
  }
  const int64_t t = now_ns();
  phases_[phase] += double(t - last_mark_ns_) * 1e-9;
  last_mark_ns_ = t;
}

}  // namespace asr
