#include "asr/train/trainer.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <filesystem>
#include <optional>

#include "asr/core/atomic_file.h"
#include "asr/core/error.h"
#include "asr/data/dataset.h"
#include "asr/dist/communicator.h"
#include "asr/dist/grad_sync.h"
#include "asr/dist/signals.h"
#include "asr/model/asr_model.h"
#include "asr/model/ctc.h"
#include "asr/text/tokenizer.h"
#include "asr/train/batch_loader.h"
#include "asr/train/batch_sampler.h"
#include "asr/train/run_logger.h"
#include "asr/train/schedule.h"
#include "asr/train/trainer_state.h"

namespace asr {
namespace fs = std::filesystem;

struct Trainer::State {
  TrainConfig cfg;
  dist::Communicator& comm;
  Dataset train_set;
  std::optional<Dataset> valid_set;
  Tokenizer tokenizer;
  model::AsrModel model{nullptr};
  std::unique_ptr<torch::optim::AdamW> optimizer;
  std::unique_ptr<dist::GradientSynchronizer> sync;
  std::unique_ptr<RunLogger> logger;
  std::unique_ptr<CheckpointManager> checkpoints;  // rank 0 only
  LrSchedule lr;
  VqWeightSchedule vq_weight;
  TrainProgress progress;  // step, sampler position, best CER, counters: what a checkpoint restores
  // Fault injection for tests and drills: ASR_FAULT_NAN="STEP:RANK" makes that
  // rank's loss NaN at that step (docs/operations.md).
  int64_t fault_nan_step = -1;
  int fault_nan_rank = -1;

  State(TrainConfig c, dist::Communicator& m, Dataset train, Tokenizer tok)
      : cfg(std::move(c)), comm(m), train_set(std::move(train)), tokenizer(std::move(tok)) {}

  // Accumulated between log records.
  struct Window {
    double loss = 0, ctc = 0, vq = 0, grad_norm = 0, audio_seconds = 0, wall = 0;
    double grads_ready = 0, allreduce_wait = 0, io_wait = 0;
    int64_t steps = 0, skipped_utterances = 0;
    std::vector<double> perplexity;
  } window;

  bool run_step(std::vector<Batch>& micro_batches);
  void log_window();
  EvalResult evaluate();
  void save_checkpoint(const char* reason, std::optional<double> cer);
  void after_step(bool last);
};

namespace {

TrainConfig prepare_run_dir(TrainConfig cfg, const dist::Communicator& comm) {
  if (cfg.data.dir.empty())
    throw Error("no dataset given: set data.dir in the config or pass --data DIR (an asr_preprocess output)");
  if (comm.is_root()) fs::create_directories(fs::path(cfg.run_dir) / "checkpoints");
  return cfg;
}

Tokenizer open_tokenizer(const Dataset& train) { return Tokenizer::from_file(train.tokenizer_path()); }

// Parameters then buffers (batch-norm statistics, codebooks kept as buffers):
// everything that must be identical on every rank.
std::vector<at::Tensor> model_state_tensors(torch::nn::Module& module) {
  auto tensors = module.parameters();
  for (auto& b : module.buffers()) tensors.push_back(b);
  return tensors;
}

}  // namespace

Trainer::Trainer(TrainConfig config, dist::Communicator& comm) {
  config = prepare_run_dir(std::move(config), comm);
  // Every rank opens the same dataset read-only; Dataset::open verifies the
  // manifest's format version and names any missing shard.
  Dataset train = Dataset::open(config.data.dir, config.data.train_split);
  Tokenizer tokenizer = open_tokenizer(train);
  s_ = std::make_unique<State>(std::move(config), comm, std::move(train), std::move(tokenizer));
  auto& cfg = s_->cfg;
  if (!cfg.data.valid_split.empty()) {
    try {
      s_->valid_set = Dataset::open(cfg.data.dir, cfg.data.valid_split);
    } catch (const Error& e) {
      spdlog::warn("no validation split '{}' ({}): evaluation is skipped", cfg.data.valid_split, e.what());
    }
  }

  cfg.model.vocab_size = s_->tokenizer.vocab_size();
  cfg.model.sample_rate = s_->train_set.sample_rate();
  if (cfg.train.deterministic) at::globalContext().setDeterministicAlgorithms(true, /*warn_only=*/true);
  torch::manual_seed(cfg.train.seed);
  if (const char* fault = std::getenv("ASR_FAULT_NAN")) {
    long long step = -1;
    int fault_rank = -1;
    if (std::sscanf(fault, "%lld:%d", &step, &fault_rank) != 2)
      throw Error(std::string("ASR_FAULT_NAN='") + fault + "' is not STEP:RANK");
    s_->fault_nan_step = step;
    s_->fault_nan_rank = fault_rank;
  }
  s_->model = model::AsrModel(cfg.model);
  s_->model->set_communicator(&comm);

  // Rank 0's initial parameters and buffers everywhere, with a shape check.
  dist::broadcast_parameters_and_buffers(comm, model_state_tensors(*s_->model));

  auto adamw = torch::optim::AdamWOptions(cfg.optim.lr)
                   .betas({cfg.optim.beta1, cfg.optim.beta2})
                   .eps(cfg.optim.eps)
                   .weight_decay(cfg.optim.weight_decay);
  s_->optimizer = std::make_unique<torch::optim::AdamW>(s_->model->parameters(), adamw);

  dist::GradSyncOptions sync_options;
  sync_options.bucket_mb = cfg.dist.bucket_mb;
  sync_options.first_bucket_mb = cfg.dist.first_bucket_mb;
  sync_options.bf16_compress = cfg.dist.bf16_allreduce;
  s_->sync = std::make_unique<dist::GradientSynchronizer>(comm, s_->model->parameters(), sync_options);

  s_->lr.kind = cfg.schedule.kind;
  s_->lr.peak_lr = cfg.optim.lr;
  s_->lr.warmup_steps = cfg.schedule.warmup_steps;
  s_->lr.total_steps = cfg.schedule.total_steps > 0 ? cfg.schedule.total_steps : cfg.train.max_steps;
  s_->lr.min_lr_ratio = cfg.schedule.min_lr_ratio;
  s_->lr.d_model = cfg.model.encoder.d_model;
  s_->vq_weight = {cfg.vq_warmup.start, cfg.vq_warmup.end, cfg.vq_warmup.steps};
  if (comm.is_root())
    s_->checkpoints = std::make_unique<CheckpointManager>(cfg.run_dir, cfg.checkpoint.keep_last, cfg.checkpoint.keep_best);

  if (comm.is_root()) {
    spdlog::info("model: {} parameters, vocabulary {} (blank 0), frontend {} ({} frames per second of audio)",
                 model::count_parameters(*s_->model), cfg.model.vocab_size, cfg.model.frontend.kind,
                 s_->model->frontend().output_length(cfg.model.sample_rate));
    double hours = 0;
    for (size_t i = 0; i < s_->train_set.size(); ++i) hours += s_->train_set.duration(i) / 3600;
    spdlog::info("data: {} train utterances ({:.2f} h){}", s_->train_set.size(), hours,
                 s_->valid_set ? fmt::format(", {} validation", s_->valid_set->size()) : std::string());
  }
}

Trainer::~Trainer() = default;

int64_t Trainer::step() const { return s_->progress.step; }

void Trainer::resume(const std::string& what) {
  auto& s = *s_;
  // Rank 0 decides and reads: every rank resumes from the same bytes, and
  // the file is read once, not once per rank.
  std::string chosen;
  if (s.comm.is_root()) {
    if (what == "auto") {
      if (auto latest = find_latest_valid(s.cfg.run_dir)) chosen = latest->string();
    } else {
      if (!fs::is_regular_file(what))
        throw Error("--resume " + what + ": no such checkpoint file (use 'auto' or a path to a .ckpt file)");
      chosen = what;
    }
  }
  s.comm.broadcast_bytes(chosen);
  if (chosen.empty()) {
    if (s.comm.is_root()) spdlog::info("no checkpoint in {}: starting from scratch", s.cfg.run_dir);
    return;
  }
  std::string bytes;
  if (s.comm.is_root()) bytes = read_file(chosen);
  s.comm.broadcast_bytes(bytes);
  s.progress = restore_checkpoint(decode_checkpoint(bytes, chosen), chosen, s.cfg, *s.model, *s.optimizer);
  if (s.comm.is_root())
    spdlog::info("resumed from {} at step {} (epoch {}, batch {})", chosen, s.progress.step,
                 s.progress.position.epoch, s.progress.position.batch);
}

EvalResult Trainer::evaluate() { return s_->evaluate(); }

int Trainer::train() {
  auto& s = *s_;
  auto& cfg = s.cfg;
  dist::install_stop_signal_handlers();
  const int world = s.comm.world_size();
  const int accumulate = std::max(1, cfg.optim.accumulate);

  std::vector<int64_t> lengths(s.train_set.size());
  for (size_t i = 0; i < lengths.size(); ++i) lengths[i] = s.train_set.num_samples(i);
  BatchSamplerOptions so;
  so.batch_seconds = cfg.train.batch_seconds;
  so.max_batch_utterances = cfg.train.max_batch_utterances;
  // Every rank needs an utterance of every global batch. The minimum is a
  // setting, not the world size, so batches do not change with the world size.
  so.min_batch_utterances = std::max(cfg.train.min_batch_utterances, world);
  if (world > cfg.train.min_batch_utterances && s.comm.is_root())
    spdlog::warn("{} ranks > train.min_batch_utterances ({}): global batches differ from a smaller world's "
                 "where a batch would hold fewer utterances than ranks",
                 world, cfg.train.min_batch_utterances);
  so.buckets = cfg.train.buckets;
  so.seed = cfg.train.seed;
  BatchSampler sampler(std::move(lengths), s.train_set.sample_rate(), so);

  s.logger = std::make_unique<RunLogger>(cfg.run_dir, s.comm.is_root(), cfg.log.tensorboard, cfg.log.progress,
                                         cfg.train.max_steps, s.progress.step);
  AugmentOptions augment{cfg.augment.enabled,   cfg.augment.gain_db,    cfg.augment.speed_min,
                         cfg.augment.speed_max, cfg.augment.time_masks, cfg.augment.time_mask_seconds};

  while (s.progress.step < cfg.train.max_steps &&
         (cfg.train.max_epochs == 0 || s.progress.position.epoch < cfg.train.max_epochs)) {
    const int64_t epoch = s.progress.position.epoch;
    auto batches = sampler.epoch_batches(epoch);
    // Whole optimizer steps only: a tail shorter than `accumulate` is dropped
    // identically on every rank.
    const int64_t usable = static_cast<int64_t>(batches.size()) / accumulate * accumulate;
    std::vector<BatchLoader::Job> jobs;
    int64_t step = s.progress.step;
    for (int64_t b = s.progress.position.batch; b < usable && step < cfg.train.max_steps; ++b) {
      jobs.push_back({BatchSampler::shard_for_rank(batches[static_cast<size_t>(b)], s.comm.rank(), world), epoch, step});
      if ((b + 1) % accumulate == 0) ++step;
    }
    BatchLoader loader(s.train_set, std::move(jobs), augment, cfg.train.seed, cfg.train.prefetch,
                       cfg.data.loader_threads);
    for (;;) {
      std::vector<Batch> micro;
      while (static_cast<int>(micro.size()) < accumulate) {
        auto b = loader.next();
        if (!b) break;
        micro.push_back(std::move(*b));
      }
      if (static_cast<int>(micro.size()) < accumulate) break;
      s.window.io_wait = loader.wait_seconds();
      s.run_step(micro);
      s.progress.position.batch += accumulate;
      bool last = s.progress.step >= cfg.train.max_steps;
      if (auto stop = dist::stop_requested_anywhere(s.comm)) {
        if (s.comm.is_root())
          spdlog::warn("stop requested ({}): checkpointing at step {}", stop.describe(), s.progress.step);
        s.log_window();  // the steps since the last record are not lost
        s.save_checkpoint("preempted", std::nullopt);
        s.logger->finish();
        return kExitPreempted;
      }
      s.after_step(last);
      if (last) break;
    }
    if (s.progress.step >= cfg.train.max_steps) break;
    s.progress.position.epoch += 1;
    s.progress.position.batch = 0;
  }

  // The end of every run: a final evaluation and checkpoint (unless the last
  // step already made them).
  if (s.progress.last_eval_step != s.progress.step) {
    auto r = s.evaluate();
    s.save_checkpoint("final", s.valid_set ? std::optional<double>(r.cer()) : std::nullopt);
  } else if (s.progress.last_checkpoint_step != s.progress.step) {
    s.save_checkpoint("final", std::nullopt);
  }
  s.logger->finish();
  return kExitOk;
}

bool Trainer::State::run_step(std::vector<Batch>& micro_batches) {
  auto t0 = std::chrono::steady_clock::now();
  const int64_t step = progress.step;
  const double vq_w = vq_weight.weight_at(step);
  // Dropout draws depend on (seed, step, rank) only, so a resumed run repeats
  // them exactly without restoring generator state.
  torch::manual_seed(cfg.train.seed * 1000003ull + static_cast<uint64_t>(step) * 7919ull +
                     static_cast<uint64_t>(comm.rank()));
  model->train();

  const size_t n_micro = micro_batches.size();
  double loss_sum = 0, ctc_sum = 0, vq_sum = 0;
  bool local_nonfinite = false;
  std::vector<double> perplexity;
  for (size_t m = 0; m < n_micro; ++m) {
    Batch& batch = micro_batches[m];
    const bool last_micro = m + 1 == n_micro;
    sync->begin_step(/*synchronize=*/last_micro);
    auto out = model->forward(batch.audio, batch.lengths, /*train=*/true, torch::tensor(batch.indices, torch::kLong));
    auto ctc = model::ctc_loss_sum(out.log_probs, out.out_lengths, batch.targets, batch.target_lengths);
    const double frames = static_cast<double>(out.out_lengths.sum().item<int64_t>());
    // Global counts first: each rank's loss is its sum divided by the GLOBAL
    // count, so the all-reduced (summed) gradient is exactly the gradient of
    // the global batch's mean loss, whatever the world size.
    // CTC is normalized per target token (nats/token): comparable across
    // batches whatever their utterance lengths.
    auto totals = comm.all_reduce_sum(std::vector<double>{double(ctc.kept_target_tokens), frames, double(ctc.skipped),
                                                           ctc.sum.item<double>(), out.vq_loss.item<double>() * frames,
                                                           batch.audio_seconds});
    const double kept = std::max(1.0, totals[0]), all_frames = std::max(1.0, totals[1]);
    auto loss = ctc.sum / kept + out.vq_loss * (vq_w * frames / all_frames);
    loss = loss / static_cast<double>(n_micro);
    if (step + 1 == fault_nan_step && comm.rank() == fault_nan_rank) loss = loss * std::nan("");
    local_nonfinite |= !std::isfinite(loss.item<double>());
    loss.backward();
    ctc_sum += totals[3] / kept / n_micro;
    vq_sum += totals[4] / all_frames / n_micro;
    window.skipped_utterances += static_cast<int64_t>(totals[2]);
    window.audio_seconds += totals[5];
    perplexity = out.metrics.perplexity;
  }
  sync->finish_step();
  const auto& sync_stats = sync->last_timings();
  loss_sum = ctc_sum + vq_w * vq_sum;

  // After the all-reduce every rank holds the same gradients, so the norm is
  // the same everywhere; the flag still goes round so a NaN loss seen on one
  // rank only makes every rank skip together. One norm (one device sync)
  // serves both the skip decision and clipping.
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> grads;
  for (auto& p : model->parameters())
    if (p.grad().defined()) grads.push_back(p.grad());
  std::vector<at::Tensor> norms;
  for (auto& g : grads) norms.push_back(g.norm());
  const double grad_norm = norms.empty() ? 0.0 : torch::stack(norms).norm().item<double>();
  bool skip = comm.any_rank(local_nonfinite || !std::isfinite(grad_norm));
  if (skip) {
    progress.skipped_steps += 1;
    if (comm.is_root())
      spdlog::warn("step {}: non-finite loss or gradient on some rank; every rank skips it", step + 1);
  } else {
    // Global-norm clipping, as torch::nn::utils::clip_grad_norm_ does it.
    const double clip_coef = cfg.optim.grad_clip / (grad_norm + 1e-6);
    if (cfg.optim.grad_clip > 0 && clip_coef < 1)
      for (auto& g : grads) g.mul_(clip_coef);
    const double lr_now = lr.lr_at(step);
    for (auto& group : optimizer->param_groups())
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr_now);
    optimizer->step();
  }
  optimizer->zero_grad();
  progress.step += 1;

  window.steps += 1;
  window.loss += loss_sum;
  window.ctc += ctc_sum;
  window.vq += vq_sum;
  window.grad_norm += grad_norm;
  window.grads_ready += sync_stats.ready_s;
  window.allreduce_wait += sync_stats.wait_s;
  window.wall += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  window.perplexity = perplexity;
  return !skip;
}

void Trainer::State::log_window() {
  if (window.steps == 0) return;
  const double n = static_cast<double>(window.steps);
  nlohmann::json rec = {
      {"step", progress.step},
      {"epoch", progress.position.epoch},
      {"loss", window.loss / n},
      {"ctc_loss", window.ctc / n},
      {"vq_loss", window.vq / n},
      {"lr", lr.lr_at(progress.step - 1)},
      {"grad_norm", window.grad_norm / n},
      {"audio_sec_per_s", window.wall > 0 ? window.audio_seconds / window.wall : 0.0},
      {"skipped_steps", progress.skipped_steps},
      {"skipped_utterances", window.skipped_utterances},
      {"vq_weight", vq_weight.weight_at(progress.step - 1)},
  };
  logger->log_train(rec, window.perplexity);
  // The straggler report: every rank, into its own log file.
  spdlog::debug("rank {} step {}: grads ready {:.1f} ms/step, all-reduce wait {:.1f} ms/step, io wait {:.1f} s total",
                comm.rank(), progress.step, 1000 * window.grads_ready / n, 1000 * window.allreduce_wait / n,
                window.io_wait);
  window = Window{};
}

EvalResult Trainer::State::evaluate() {
  EvalResult r;
  progress.last_eval_step = progress.step;
  if (!valid_set) return r;
  EvalOptions eo;
  eo.batch_seconds = cfg.train.batch_seconds;
  eo.max_utterances = cfg.eval.max_utterances;
  eo.samples = cfg.eval.samples;
  r = evaluate_split(*model, *valid_set, tokenizer, comm, eo);
  if (logger) logger->log_eval(progress.step, cfg.data.valid_split, r);
  return r;
}

void Trainer::State::save_checkpoint(const char* reason, std::optional<double> cer) {
  // Cheap desync detector: all ranks must hold the same parameters.
  dist::check_parameters_agree(comm, model_state_tensors(*model));
  if (cer && (!progress.best_cer || *cer < *progress.best_cer)) progress.best_cer = *cer;
  if (comm.is_root()) {
    auto path = checkpoints->save(progress.step, make_checkpoint(progress, cfg, tokenizer.model_bytes(), *model, *optimizer), cer);
    spdlog::info("checkpoint ({}): {}", reason, path.string());
  }
  progress.last_checkpoint_step = progress.step;
  // Nobody runs ahead (or exits) before the file is complete.
  comm.barrier();
}

void Trainer::State::after_step(bool last) {
  const int64_t step = progress.step;
  if (logger && window.steps > 0)
    logger->progress(step, fmt::format("loss {:.3f} lr {:.2e} {:.1f} audio-s/s", window.loss / window.steps,
                                       lr.lr_at(step - 1), window.wall > 0 ? window.audio_seconds / window.wall : 0.0));
  if (last || (cfg.train.log_every > 0 && step % cfg.train.log_every == 0)) log_window();
  std::optional<double> cer;
  if (last || (cfg.eval.every > 0 && step % cfg.eval.every == 0)) {
    auto r = evaluate();
    if (valid_set) cer = r.cer();
  }
  if (last || (cfg.checkpoint.every > 0 && step % cfg.checkpoint.every == 0)) save_checkpoint("periodic", cer);
}

}  // namespace asr
