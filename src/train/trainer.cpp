#include "asr/train/trainer.h"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>

#include "asr/core/atomic_file.h"
#include "asr/core/error.h"
#include "asr/core/file_checks.h"
#include "asr/data/dataset.h"
#include "asr/distributed/communicator.h"
#include "asr/distributed/grad_sync.h"
#include "asr/distributed/root_decision.h"
#include "asr/distributed/signals.h"
#include "asr/distributed/device.h"
#include "asr/distributed/flight_recorder.h"
#include "asr/model/asr_model.h"
#include "asr/model/batch_statistics.h"
#include "asr/model/cpu_convolution_check.h"
#include "asr/model/precision.h"
#include "asr/text/tokenizer.h"
#include "asr/text/tokenizer_compare.h"
#include "asr/train/batch_loader.h"
#include "asr/train/batch_sampler.h"
#include "asr/train/checkpoint_manager.h"
#include "asr/train/device_feed.h"
#include "asr/train/run_setup.h"
#include "asr/train/fault_injection.h"
#include "asr/train/run_logger.h"
#include "asr/train/run_plan.h"
#include "asr/train/schedule.h"
#include "asr/train/straggler_report.h"
#include "asr/train/training_checkpoint.h"
#include "kernel_trace.h"
#include "train_step.h"

namespace asr {
namespace fs = std::filesystem;

// Step records accumulated between two log records.
struct LogWindow {
  double loss = 0, ctc = 0, vq = 0, grad_norm = 0, audio_seconds = 0, wall = 0;
  double grads_ready = 0, allreduce_wait = 0;
  double forward = 0, backward = 0, reduce = 0, update = 0, data_wait = 0;  // seconds, host clock
  int64_t steps = 0, skipped_utterances = 0;

  void add(const StepRecord& r, double seconds, double waited) {
    steps += 1;
    loss += r.loss;
    ctc += r.ctc;
    vq += r.vq;
    grad_norm += r.grad_norm;
    audio_seconds += r.audio_seconds;
    skipped_utterances += r.skipped_utterances;
    grads_ready += r.grads_ready_s;
    allreduce_wait += r.allreduce_wait_s;
    forward += r.forward_s;
    backward += r.backward_s;
    reduce += r.reduce_s;
    update += r.update_s;
    data_wait += waited;
    wall += seconds;
  }
  double audio_per_second() const { return wall > 0 ? audio_seconds / wall : 0.0; }
};

struct Trainer::Impl {
  TrainConfig cfg;
  distributed::Communicator& comm;
  c10::Device device;
  bool bf16 = false;
  std::unique_ptr<DeviceFeed> feed;
  // Batch norm's statistics span every rank: a group of their own, beside
  // the gradient buckets (model/batch_statistics.h).
  std::unique_ptr<distributed::Communicator> stats_group;
  std::unique_ptr<model::BatchStatistics> batch_stats;
  Dataset train_set;
  std::optional<Dataset> valid_set;
  Tokenizer tokenizer;
  model::AsrModel model{nullptr};
  std::unique_ptr<torch::optim::AdamW> optimizer;
  std::unique_ptr<distributed::GradientSynchronizer> sync;
  std::unique_ptr<FaultInjector> faults;  // only when a fault variable is set
  std::unique_ptr<KernelTrace> trace;     // only when ASR_TRACE is set
  // ASR_DUMP_BATCHES=FILE: each micro-batch's utterance indices, a line each
  // (rank 0), so bench/gpu/reference.py can train on the same batches.
  std::unique_ptr<std::ofstream> batch_dump;
  std::unique_ptr<TrainStep> step_runner;
  std::unique_ptr<RunLogger> logger;
  std::unique_ptr<CheckpointManager> checkpoints;  // rank 0 only
  LrSchedule lr;
  TrainProgress progress;  // step, sampler position, best CER, counters: what a checkpoint restores
  LogWindow window;
  StragglerReport stragglers;
  double io_wait = 0;

  Impl(TrainConfig c, distributed::Communicator& m, c10::Device d, Dataset train, Tokenizer tok)
      : cfg(std::move(c)), comm(m), device(d), train_set(std::move(train)), tokenizer(std::move(tok)) {}

  void build_model();
  void build_optimizer();
  void initialize_codebooks(std::vector<Batch>& first);
  void log_start() const;
  BatchSampler make_sampler() const;
  std::vector<BatchLoader::Job> epoch_jobs(const BatchSampler& sampler) const;
  // Trains through the rest of the current epoch; returns kExitPreempted
  // after a stop signal, else kExitOk.
  int train_epoch(const BatchSampler& sampler);
  // Returns a stop request that reached any rank during the step.
  distributed::StopRequest run_step(std::vector<Batch>& micro_batches, double data_wait);
  void log_window();
  std::vector<RankTimes> gather_rank_figures(nlohmann::json& record);
  EvalResult evaluate();
  void save_checkpoint(const char* reason, std::optional<double> cer);
  void after_step(bool last);
  int stop(const distributed::StopRequest& request);
};

namespace {

Dataset open_train_split(const TrainConfig& cfg) {
  if (cfg.data.dir.empty())
    throw Error("no dataset given: set data.dir in the config or pass --data DIR (an asr_preprocess output)");
  // Every rank opens the same dataset read-only; Dataset::open checks it
  // against its manifest (and the checksums unless data.verify_checksums = false).
  Dataset data = Dataset::open(cfg.data.dir, cfg.data.train_split, cfg.data.verify_checksums);
  check_dataset_matches_config(cfg, data);
  return data;
}

// Parameters then buffers (batch-norm statistics, codebooks kept as buffers):
// everything that must be identical on every rank.
std::vector<at::Tensor> model_state_tensors(torch::nn::Module& module) {
  auto tensors = module.parameters();
  for (auto& b : module.buffers()) tensors.push_back(b);
  return tensors;
}

// The validation split, or none (with a warning: evaluation is skipped) when
// it is missing or empty; an empty split's "CER 0%" would pin best.ckpt.
std::optional<Dataset> open_validation_split(const TrainConfig& cfg) {
  try {
    Dataset valid = Dataset::open(cfg.data.dir, cfg.data.valid_split, cfg.data.verify_checksums);
    if (valid.size() > 0) return valid;
    spdlog::warn("validation split '{}' of {} has no utterances: evaluation is skipped and best.ckpt is not kept; "
                 "preprocess with --val N to get one",
                 cfg.data.valid_split, cfg.data.dir);
  } catch (const DataError&) {
    throw;  // a damaged split is an error, not a reason to train without evaluation
  } catch (const Error& e) {
    spdlog::warn("no validation split '{}' ({}): evaluation is skipped", cfg.data.valid_split, e.what());
  }
  return std::nullopt;
}

// The checkpoint `--resume what` names (rank 0), or "" for a fresh run.
std::string choose_checkpoint_to_resume(const std::string& what, const std::string& run_dir, bool allow_fresh_start) {
  if (what != "auto") {
    require_regular_input(what, "--resume checkpoint");
    return what;
  }
  const ResumeChoice choice = choose_resume_checkpoint(run_dir, allow_fresh_start);
  if (!choice.path) {
    spdlog::info("{}", choice.note);
    return "";
  }
  if (choice.note != "newest valid checkpoint") spdlog::warn("--resume auto: {}", choice.note);
  return choice.path->string();
}

// A model's output ids mean the pieces of the tokenizer it was trained with:
// resuming over a dataset tokenized differently would train garbage.
void check_same_tokenizer(const CheckpointData& data, const std::string& source, const Tokenizer& dataset_tokenizer,
                          const std::string& dataset_tokenizer_path) {
  if (!data.has("tokenizer")) return;
  const std::string difference = describe_tokenizer_difference(data.at("tokenizer"), "the checkpoint's",
                                                               dataset_tokenizer.model_bytes(), "the dataset's");
  if (!difference.empty())
    throw DataError(source + " was trained with another tokenizer than the dataset's " + dataset_tokenizer_path +
                    ": " + difference +
                    ". Resume with the dataset it was trained on, or start a new run directory for this dataset");
}

}  // namespace

Trainer::Trainer(TrainConfig config, distributed::Communicator& comm, c10::Device device) {
  Dataset train = open_train_split(config);
  Tokenizer tokenizer = Tokenizer::from_file(train.tokenizer_path());
  s_ = std::make_unique<Impl>(std::move(config), comm, device, std::move(train), std::move(tokenizer));
  auto& s = *s_;
  if (comm.is_root()) fs::create_directories(fs::path(s.cfg.run_dir) / "checkpoints");
  if (!s.cfg.data.valid_split.empty()) {
    s.valid_set = open_validation_split(s.cfg);
  }
  s.faults = FaultInjector::from_environment(comm.rank());
  s.trace = KernelTrace::from_environment(comm.rank());
  if (const char* dump = std::getenv("ASR_DUMP_BATCHES"); dump && *dump && comm.is_root())
    s.batch_dump = std::make_unique<std::ofstream>(dump, std::ios::app);
  if (s.faults) spdlog::warn("fault injection armed on rank {}: {}", comm.rank(), s.faults->describe());
  s.build_model();
  s.build_optimizer();
  s.feed = std::make_unique<DeviceFeed>(device);
  StepParts parts{comm, *s.sync, s.cfg, *s.feed, s.batch_stats.get(), s.faults.get(), s.bf16};
  s.step_runner = std::make_unique<TrainStep>(s.model, *s.optimizer, parts);
  s.lr = s.cfg.schedule.for_run(s.cfg.optim.lr, s.cfg.train.max_steps);
  if (comm.is_root())
    s.checkpoints =
        std::make_unique<CheckpointManager>(s.cfg.run_dir, s.cfg.checkpoint.keep_last, s.cfg.checkpoint.keep_best);
  s.log_start();
}

void Trainer::Impl::build_model() {
  cfg.model.vocab_size = tokenizer.vocab_size();
  cfg.model.sample_rate = train_set.sample_rate();
  apply_numerics(cfg, device);
  bf16 = cfg.train.precision == "bf16" || (cfg.train.precision == "auto" && !device.is_cpu());
  torch::manual_seed(cfg.train.seed);
  model = model::AsrModel(cfg.model);
  // The device first: the optimizer and the gradient hooks must see the
  // parameters where they will live.
  model->to(device);
  model->set_kernel_path(cfg.train.kernels == "generic" ? model::KernelPath::generic : model::KernelPath::automatic);
  model->set_communicator(&comm);
  if (cfg.model.frontend.norm == "batch" && comm.world_size() > 1) stats_group = comm.new_group("batch-norm");
  batch_stats = std::make_unique<model::BatchStatistics>(stats_group.get());
  model->set_batch_statistics(batch_stats.get());
  // Rank 0's initial parameters and buffers everywhere, with a shape check.
  distributed::broadcast_parameters_and_buffers(comm, model_state_tensors(*model));
}

void Trainer::Impl::build_optimizer() {
  auto adamw = torch::optim::AdamWOptions(cfg.optim.lr)
                   .betas({cfg.optim.beta1, cfg.optim.beta2})
                   .eps(cfg.optim.eps)
                   .weight_decay(cfg.optim.weight_decay);
  optimizer = std::make_unique<torch::optim::AdamW>(model->parameters(), adamw);
  // Last: the synchronizer hooks the parameters' gradient accumulators.
  sync = std::make_unique<distributed::GradientSynchronizer>(comm, model->parameters(), cfg.dist.grad);
}

void Trainer::Impl::log_start() const {
  if (!comm.is_root()) return;
  spdlog::info("model: {} parameters, vocabulary {} (blank 0), frontend {} ({} frames per second of audio)",
               model::count_parameters(*model), cfg.model.vocab_size, cfg.model.frontend.kind,
               model->frontend().output_length(cfg.model.sample_rate));
  spdlog::info("compute: {} in {}{}, {} kernels{}", device.str(), bf16 ? "bf16 autocast" : "fp32",
               !device.is_cpu() && cfg.train.tf32 && !bf16 ? " (TF32 matmuls)" : "",
               cfg.train.kernels == "generic" || !device.is_cpu() ? "device-generic" : "CPU-tuned",
               batch_stats->synchronized() ? ", batch norm synchronized over all ranks" : "");
  if (const auto& conv = model::check_cpu_convolution_gradients(); !conv.message.empty()) spdlog::warn("{}", conv.message);
  double hours = 0;
  for (size_t i = 0; i < train_set.size(); ++i) hours += train_set.duration(i) / 3600;
  spdlog::info("data: {} train utterances ({:.2f} h){}", train_set.size(), hours,
               valid_set ? fmt::format(", {} validation", valid_set->size()) : std::string());
}

Trainer::~Trainer() = default;

int64_t Trainer::step() const { return s_->progress.step; }

bool Trainer::resume(const std::string& what, bool allow_fresh_start) {
  auto& s = *s_;
  // Rank 0 decides and reads: every rank resumes from the same bytes, and
  // the file is read once, not once per rank. Its errors reach every rank.
  std::string chosen, bytes;
  distributed::run_on_root_and_share_errors(s.comm, [&] {
    chosen = choose_checkpoint_to_resume(what, s.cfg.run_dir, allow_fresh_start);
    if (!chosen.empty()) bytes = read_file(chosen);
  });
  s.comm.broadcast_bytes(chosen);
  if (chosen.empty()) return false;
  s.comm.broadcast_bytes(bytes);
  const auto data = decode_checkpoint(bytes, chosen);
  check_same_tokenizer(data, chosen, s.tokenizer, s.train_set.tokenizer_path());
  s.progress = restore_checkpoint(data, chosen, s.cfg, *s.model, *s.optimizer);
  if (s.comm.is_root())
    spdlog::info("resumed from {} at step {} (epoch {}, batch {})", chosen, s.progress.step,
                 s.progress.position.epoch, s.progress.position.batch);
  return true;
}

EvalResult Trainer::evaluate() { return s_->evaluate(); }

int Trainer::train() {
  auto& s = *s_;
  distributed::install_stop_signal_handlers();
  const BatchSampler sampler = s.make_sampler();
  s.logger = std::make_unique<RunLogger>(s.cfg.run_dir, s.comm.is_root(), s.cfg.log.tensorboard, s.cfg.log.progress,
                                         s.cfg.train.max_steps, s.progress.step);
  const auto& limit = s.cfg.train;
  while (s.progress.step < limit.max_steps && (limit.max_epochs == 0 || s.progress.position.epoch < limit.max_epochs)) {
    if (s.train_epoch(sampler) == kExitPreempted) return kExitPreempted;
    if (s.progress.step >= limit.max_steps) break;
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

BatchSampler Trainer::Impl::make_sampler() const {
  std::vector<int64_t> lengths(train_set.size());
  for (size_t i = 0; i < lengths.size(); ++i) lengths[i] = train_set.num_samples(i);
  const int world = comm.world_size();
  // The minimum batch is a setting, not the world size, so batches do not
  // change with the world size up to that setting.
  const BatchSamplerOptions so = batch_sampler_options(cfg, world);
  if (world > cfg.train.min_batch_utterances && comm.is_root())
    spdlog::warn("{} ranks > train.min_batch_utterances ({}): global batches differ from a smaller world's "
                 "where a batch would hold fewer utterances than ranks",
                 world, cfg.train.min_batch_utterances);
  return BatchSampler(std::move(lengths), train_set.sample_rate(), so);
}

std::vector<BatchLoader::Job> Trainer::Impl::epoch_jobs(const BatchSampler& sampler) const {
  const int64_t epoch = progress.position.epoch;
  const int accumulate = std::max(1, cfg.optim.accumulate);
  auto batches = sampler.epoch_batches(epoch);
  // Whole optimizer steps only: a tail shorter than `accumulate` is dropped
  // identically on every rank.
  const int64_t usable = static_cast<int64_t>(batches.size()) / accumulate * accumulate;
  std::vector<BatchLoader::Job> jobs;
  int64_t step = progress.step;
  for (int64_t b = progress.position.batch; b < usable && step < cfg.train.max_steps; ++b) {
    jobs.push_back({BatchSampler::shard_for_rank(batches[static_cast<size_t>(b)], comm.rank(), comm.world_size()),
                    epoch, step});
    if ((b + 1) % accumulate == 0) ++step;
  }
  return jobs;
}

int Trainer::Impl::train_epoch(const BatchSampler& sampler) {
  const size_t accumulate = static_cast<size_t>(std::max(1, cfg.optim.accumulate));
  BatchLoader loader(train_set, epoch_jobs(sampler), cfg.augment, cfg.train.seed, cfg.train.prefetch,
                     cfg.data.loader_threads, feed.get());
  for (;;) {
    std::vector<Batch> micro;
    distributed::flight_set_phase(distributed::FlightPhase::data);
    while (micro.size() < accumulate) {
      auto b = loader.next();
      if (!b) break;
      micro.push_back(std::move(*b));
    }
    if (micro.size() < accumulate) return kExitOk;
    if (batch_dump)
      for (const auto& b : micro) *batch_dump << fmt::format("{}\n", fmt::join(b.indices, " ")) << std::flush;
    const double waited = loader.wait_seconds() - io_wait;
    io_wait = loader.wait_seconds();
    initialize_codebooks(micro);
    const auto stop_request = run_step(micro, waited);
    progress.position.batch += static_cast<int64_t>(accumulate);
    if (stop_request) return stop(stop_request);
    const bool last = progress.step >= cfg.train.max_steps;
    after_step(last);
    if (last) return kExitOk;
  }
}

void Trainer::Impl::initialize_codebooks(std::vector<Batch>& first) {
  // Once per run, on every rank at the same step (the first one after
  // vq_warmup.bypass_steps): k-means on the encoder output of this step's
  // first micro-batch (collectives inside). Until then the RVQ is bypassed.
  auto& rvq = model->rvq();
  if (!rvq) return;
  rvq->set_bypass(cfg.vq_warmup.bypassed(progress.step));
  if (rvq->initialized() || cfg.vq_warmup.bypassed(progress.step)) return;
  Batch& b = first.front();
  distributed::flight_set_step(progress.step + 1, 0);
  distributed::flight_set_utterances(b.ids);
  distributed::flight_set_phase(distributed::FlightPhase::forward);
  distributed::FlightNote note("codebook initialization");
  feed->ready(b);
  model::AutocastGuard autocast(device.type(), at::kBFloat16, bf16);
  model->initialize_codebooks(b.device_audio, b.lengths, torch::tensor(b.indices, torch::kLong));
}

distributed::StopRequest Trainer::Impl::run_step(std::vector<Batch>& micro_batches, double data_wait) {
  const auto start = std::chrono::steady_clock::now();
  const int64_t step = progress.step;
  if (trace) trace->before_step(step + 1);
  StepRecord r = step_runner->run(micro_batches, step, lr.lr_at(step), cfg.vq_warmup.weight_at(step));
  if (trace) trace->after_step(step + 1);
  progress.step += 1;
  if (!r.applied) progress.skipped_steps += 1;
  if (r.oom_ranks > 0) progress.oom_skipped_steps += 1;
  window.add(r, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), data_wait);
  return r.stop;
}

int Trainer::Impl::stop(const distributed::StopRequest& request) {
  if (comm.is_root()) spdlog::warn("stop requested ({}): checkpointing at step {}", request.describe(), progress.step);
  log_window();  // the steps since the last record are not lost
  save_checkpoint("preempted", std::nullopt);
  logger->finish();
  return kExitPreempted;
}

// Every rank's peak memory and step-time breakdown since the last record, in
// one small all-gather at log intervals: device memory on a GPU, resident
// memory on the CPU; the times are means per step on the host clock.
std::vector<RankTimes> Trainer::Impl::gather_rank_figures(nlohmann::json& rec) {
  const auto mine = distributed::memory_stats(device);
  distributed::reset_peak_memory(device);
  distributed::flight_set_phase(distributed::FlightPhase::logging);
  distributed::FlightNote note("memory and step-time figures");
  const double n = static_cast<double>(window.steps);
  const std::vector<double> own = {double(mine.peak_allocated), double(mine.peak_reserved), window.data_wait / n,
                                   window.forward / n, window.backward / n, window.reduce / n, window.update / n};
  const auto all = comm.all_gather(torch::tensor(own, torch::kDouble).to(comm.device()));
  std::vector<int64_t> allocated, reserved;
  std::vector<RankTimes> times;
  for (const auto& t : all) {
    auto host = comm.read_to_host(t, "memory and step-time figures");
    const double* v = host.data_ptr<double>();
    allocated.push_back(static_cast<int64_t>(v[0]));
    reserved.push_back(static_cast<int64_t>(v[1]));
    times.push_back(RankTimes{v[2], v[3], v[4], v[5], v[6]});
  }
  rec["peak_allocated_bytes"] = allocated;
  rec["peak_reserved_bytes"] = reserved;
  return times;
}

void Trainer::Impl::log_window() {
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
      {"audio_sec_per_s", window.audio_per_second()},
      {"skipped_steps", progress.skipped_steps},
      {"oom_skipped", progress.oom_skipped_steps},
      {"skipped_utterances", window.skipped_utterances},
      {"vq_weight", cfg.vq_warmup.weight_at(progress.step - 1)},
  };
  const auto times = gather_rank_figures(rec);
  if (cfg.train.profile)
    rec["time_per_step"] = {{"data_wait", window.data_wait / n}, {"forward", window.forward / n},
                            {"backward", window.backward / n}, {"allreduce_wait", window.reduce / n},
                            {"update", window.update / n}};
  logger->log_train(rec, model->rvq_metrics().perplexity);
  logger->log_stragglers(StragglerReport::record(progress.step, times));
  if (const auto warning = stragglers.observe(progress.step, times); !warning.empty() && comm.is_root())
    spdlog::warn("{}", warning);
  // The straggler report: every rank, into its own log file.
  spdlog::debug("rank {} step {}: grads ready {:.1f} ms/step, all-reduce wait {:.1f} ms/step, io wait {:.1f} s total",
                comm.rank(), progress.step, 1000 * window.grads_ready / n, 1000 * window.allreduce_wait / n, io_wait);
  window = LogWindow{};
}

EvalResult Trainer::Impl::evaluate() {
  EvalResult r;
  progress.last_eval_step = progress.step;
  if (!valid_set) return r;
  distributed::flight_set_phase(distributed::FlightPhase::evaluation);
  model::AutocastGuard autocast(device.type(), at::kBFloat16, bf16);
  r = evaluate_split(*model, *valid_set, tokenizer, comm, cfg.eval, cfg.train.batch_seconds);
  if (logger) logger->log_eval(progress.step, cfg.data.valid_split, r);
  return r;
}

void Trainer::Impl::save_checkpoint(const char* reason, std::optional<double> cer) {
  distributed::flight_set_phase(distributed::FlightPhase::checkpoint);
  // Cheap desync detector: all ranks must hold the same parameters.
  distributed::check_parameters_agree(comm, model_state_tensors(*model));
  if (cer && (!progress.best_cer || *cer < *progress.best_cer)) progress.best_cer = *cer;
  if (comm.is_root()) {
    auto data = make_checkpoint(progress, cfg, tokenizer.model_bytes(), *model, *optimizer);
    spdlog::info("checkpoint ({}): {}", reason, checkpoints->save(progress.step, data, cer).string());
  }
  progress.last_checkpoint_step = progress.step;
  // Nobody runs ahead (or exits) before the file is complete.
  distributed::FlightNote note("checkpoint written");
  comm.barrier();
}

void Trainer::Impl::after_step(bool last) {
  const int64_t step = progress.step;
  if (logger && window.steps > 0)
    logger->progress(step, fmt::format("loss {:.3f} lr {:.2e} {:.1f} audio-s/s", window.loss / window.steps,
                                       lr.lr_at(step - 1), window.audio_per_second()));
  if (last || (cfg.train.log_every > 0 && step % cfg.train.log_every == 0)) log_window();
  std::optional<double> cer;
  if (last || (cfg.eval.every > 0 && step % cfg.eval.every == 0)) {
    auto r = evaluate();
    if (valid_set) cer = r.cer();
  }
  if (last || (cfg.checkpoint.every > 0 && step % cfg.checkpoint.every == 0)) save_checkpoint("periodic", cer);
}

}  // namespace asr
