#include "asr/train/config.h"

#include <fmt/format.h>

#include <filesystem>

#include "asr/core/atomic_file.h"
#include "asr/core/error.h"

namespace asr {

using namespace config;

namespace {

constexpr double kMaxInt64 = 9.2e18;

Fields run_fields(TrainConfig& c) {
  DataConfig& d = c.data;
  return {
      {"run_dir", &c.run_dir, nonempty(),
       "run directory: config copy, metrics, TensorBoard events, checkpoints, logs "
       "([run-directory.md](run-directory.md)); `--run-dir`"},
      {"data.dir", &d.dir, any(),
       "an `asr_preprocess` output directory ([data-format.md](data-format.md)); must be set here or by `--data`"},
      {"data.train_split", &d.train_split, nonempty(), "split to train on"},
      {"data.valid_split", &d.valid_split, nonempty(), "split evaluated every `eval.every` steps"},
      {"data.loader_threads", &d.loader_threads, within(1, 256),
       "threads that read, resample and augment audio ahead of the step"},
      {"data.tokenizer", &d.tokenizer, one_of({"any", "char", "bpe", "unigram"}),
       "the tokenizer type this recipe is made for (`asr_preprocess --tokenizer`); a dataset preprocessed with "
       "another is refused. `\"any\"` accepts every dataset"},
      {"data.verify_checksums", &d.verify_checksums, any(),
       "compare each shard's and the tokenizer's CRC-32C with `manifest.json` when the dataset is opened "
       "([data-format.md](data-format.md)); false skips only this, not the other checks"},
  };
}

Fields optimizer_fields(TrainConfig& c) {
  OptimConfig& o = c.optim;
  LrSchedule& s = c.schedule;
  VqWeightSchedule& w = c.vq_warmup;
  return {
      {"optim.lr", &o.lr, above(0), "peak learning rate, reached at the end of warmup"},
      {"optim.beta1", &o.beta1, within(0, 1, true), "Adam beta1"},
      {"optim.beta2", &o.beta2, within(0, 1, true), "Adam beta2"},
      {"optim.eps", &o.eps, above(0), "Adam epsilon"},
      {"optim.weight_decay", &o.weight_decay, at_least(0), "decoupled weight decay"},
      {"optim.grad_clip", &o.grad_clip, at_least(0), "global gradient-norm limit; 0 disables clipping"},
      {"optim.accumulate", &o.accumulate, at_least(1), "micro-batches accumulated into one optimizer step"},

      {"schedule.kind", &s.kind, one_of({"cosine", "noam", "constant"}), "shape after warmup"},
      {"schedule.warmup_steps", &s.warmup_steps, within(0, kMaxInt64), "linear warmup from 0 to `optim.lr`"},
      {"schedule.total_steps", &s.total_steps, within(0, kMaxInt64),
       "where cosine reaches its floor; 0 = `train.max_steps`"},
      {"schedule.min_lr_ratio", &s.min_lr_ratio, within(0, 1), "cosine floor as a fraction of `optim.lr`"},

      {"vq_warmup.start", &w.start, at_least(0), "VQ loss weight at step 0 (or at `vq_warmup.bypass_steps`)"},
      {"vq_warmup.end", &w.end, at_least(0), "weight from `vq_warmup.steps` on"},
      {"vq_warmup.steps", &w.steps, within(0, kMaxInt64), "length of the linear ramp"},
      {"vq_warmup.bypass_steps", &w.bypass_steps, within(0, kMaxInt64),
       "steps at the start during which the RVQ passes the encoder output through unquantized (no VQ loss); "
       "k-means then initializes the codebooks on the learned features and the weight ramp starts"},
  };
}

Fields loop_fields(TrainConfig& c) {
  TrainLoopConfig& t = c.train;
  return {
      {"train.max_steps", &t.max_steps, within(1, kMaxInt64), "optimizer steps of the run; `--max-steps`"},
      {"train.max_epochs", &t.max_epochs, within(0, kMaxInt64), "stop after this many epochs; 0 = no limit"},
      {"train.batch_seconds", &t.batch_seconds, above(0),
       "total audio seconds of one **global** batch (all ranks together), so the batch does not change with the "
       "world size"},
      {"train.max_batch_utterances", &t.max_batch_utterances, at_least(0),
       "cap on utterances per global batch; 0 = none"},
      {"train.min_batch_utterances", &t.min_batch_utterances, at_least(1),
       "a global batch closes on `batch_seconds` only once it holds this many utterances (clips longer than the "
       "budget still batch together). Every rank needs one utterance of every batch, so the trainer uses max(this, "
       "world size); global batches are identical for every world size up to this value"},
      {"train.buckets", &t.buckets, within(1, 1000),
       "length buckets: utterances of similar length are batched together (little padding)"},
      {"train.seed", &t.seed, within(0, kMaxInt64), "seed of initialization, shuffling and augmentation; `--seed`"},
      {"train.prefetch", &t.prefetch, within(1, 1000), "batches loaded ahead of the step"},
      {"train.log_every", &t.log_every, at_least(1),
       "steps between training records in `metrics.jsonl` and TensorBoard"},
      {"train.deterministic", &t.deterministic, any(),
       "deterministic kernels, needed for bit-identical resume (set before the process group is built; on a GPU "
       "LibTorch's CTC backward stays nondeterministic)"},
      {"train.device", &t.device, one_of({"auto", "cpu", "cuda"}),
       "where each rank computes: auto = its GPU (local rank modulo the visible GPUs) when the build has CUDA and "
       "the rank sees one, else the CPU; every rank must agree"},
      {"train.precision", &t.precision, one_of({"auto", "fp32", "bf16"}),
       "auto = bf16 on a GPU, fp32 on the CPU; bf16 autocasts convolutions, matmuls and attention, with float32 "
       "weights, optimizer, log-softmax, CTC, norm statistics and RVQ distances ([training.md](training.md))"},
      {"train.tf32", &t.tf32, any(), "TF32 tensor cores for float32 matmuls and convolutions on a GPU"},
      {"train.kernels", &t.kernels, one_of({"auto", "generic"}),
       "auto = the CPU-tuned layers on the CPU and the device-generic ones elsewhere; generic = the GPU path "
       "everywhere (for tests and speed comparisons)"},
      {"train.profile", &t.profile, any(),
       "time forward, backward, all-reduce and update of every step into the metrics, waiting for the device at "
       "each boundary (a diagnostic: slower)"},
  };
}

Fields augment_and_eval_fields(TrainConfig& c) {
  AugmentOptions& a = c.augment;
  EvalConfig& e = c.eval;
  CheckpointConfig& k = c.checkpoint;
  return {
      {"augment.enabled", &a.enabled, any(), "turn augmentation on"},
      {"augment.gain_db", &a.gain_db, within(0, 60), "random gain, uniform in [-gain_db, +gain_db] dB"},
      {"augment.speed_min", &a.speed_min, within(0.25, 4), "lowest speed factor (resampling)"},
      {"augment.speed_max", &a.speed_max, within(0.25, 4), "highest speed factor"},
      {"augment.time_masks", &a.time_masks, within(0, 100), "spans zeroed per utterance"},
      {"augment.time_mask_seconds", &a.time_mask_seconds, within(0, 60), "maximum width of each span"},

      {"eval.every", &e.every, within(0, kMaxInt64),
       "steps between evaluations on `data.valid_split` (there is always one at the end of a run); 0 = only at the "
       "end"},
      {"eval.max_utterances", &e.max_utterances, within(0, kMaxInt64),
       "evaluate only the first N utterances; 0 = all"},
      {"eval.samples", &e.samples, within(0, 1000), "sample predictions written to the log and TensorBoard"},

      {"checkpoint.every", &k.every, within(0, kMaxInt64),
       "steps between checkpoints (one is always written at the end); 0 = only at the end; `--checkpoint-every`"},
      {"checkpoint.keep_last", &k.keep_last, at_least(0), "step checkpoints kept; 0 = keep all"},
      {"checkpoint.keep_best", &k.keep_best, any(),
       "also keep the best by validation CER as `checkpoints/best.ckpt`"},
  };
}

Fields dist_and_log_fields(TrainConfig& c) {
  distributed::DistOptions& d = c.dist;
  LogConfig& l = c.log;
  return {
      {"dist.backend", &d.backend, one_of({"auto", "gloo", "nccl"}),
       "collective backend; auto = NCCL when every rank has a GPU, Gloo otherwise"},
      {"dist.timeout_seconds", &d.timeout_seconds, within(1, 86400),
       "a collective that takes longer fails, naming the rank and operation"},
      {"dist.connect_timeout_seconds", &d.connect_timeout_seconds, within(1, 86400),
       "how long ranks wait for each other at start-up (the whole rendezvous; ranks of a cluster job may start "
       "minutes apart); waiting ranks log the missing ones every 10 s, then fail with exit 4 naming them"},
      {"dist.watchdog_margin_seconds", &d.watchdog_margin_seconds, within(0, 86400),
       "a rank stuck in a collective past `timeout_seconds` plus this margin is ended by the watchdog"},
      {"dist.master_addr", &d.master_addr, any(),
       "rank 0's host; empty = from `MASTER_ADDR`, the Slurm node list, or rank 0's host name under mpirun"},
      {"dist.master_port", &d.master_port, within(0, 65535),
       "rank 0's rendezvous port; 0 = from `MASTER_PORT`, the Slurm job id, or a free port under mpirun"},
      {"dist.bucket_mb", &d.grad.bucket_mb, within(0, 4096, false), "gradient all-reduce bucket size in MiB"},
      {"dist.first_bucket_mb", &d.grad.first_bucket_mb, within(0, 4096, false),
       "size of the first bucket (small, so communication starts early in backward)"},
      {"dist.bf16_allreduce", &d.grad.bf16_compress, any(), "send gradients as bfloat16 (half the traffic)"},
      {"dist.check_collectives", &d.check_collectives, any(),
       "before each collective the ranks compare its sequence number, operation, dtype and size (one small "
       "all-gather); a rank that skipped or added one is an error (exit 4) naming both ranks, instead of a hang"},

      {"log.level", &l.level, one_of({"trace", "debug", "info", "warn", "error"}), "console and log file level"},
      {"log.tensorboard", &l.tensorboard, any(), "write TensorBoard event files into the run directory"},
      {"log.progress", &l.progress, one_of({"auto", "live", "plain"}),
       "live progress line on a terminal (auto), always live, or plain periodic lines"},
  };
}

// Rules that involve more than one key.
void check_consistency(const TrainConfig& c, const FailFn& fail) {
  check_model_consistency(c.model, fail);
  if (c.augment.speed_min > c.augment.speed_max)
    fail("augment.speed_min",
         fmt::format("must not exceed augment.speed_max ({} > {})", c.augment.speed_min, c.augment.speed_max));
}

TrainConfig parse_config(const std::string& text, const std::string& source,
                         const std::vector<std::string>& overrides, const std::vector<std::string>& origins) {
  auto doc = Document::parse(text, source, overrides, origins);
  TrainConfig config;
  doc.read(train_config_fields(config));
  check_consistency(config, [&](const std::string& key, const std::string& problem) { doc.fail(key, problem); });
  return config;
}

}  // namespace

Fields train_config_fields(TrainConfig& c) {
  Fields all = run_fields(c);
  for (Fields part : {model_config_fields(c.model), optimizer_fields(c), loop_fields(c), augment_and_eval_fields(c),
                      dist_and_log_fields(c)})
    all.insert(all.end(), part.begin(), part.end());
  return all;
}

std::vector<SectionDoc> train_config_sections() {
  std::vector<SectionDoc> s = {{"", ""}, {"data", ""}};
  for (const auto& m : model_config_sections()) s.push_back(m);
  std::vector<SectionDoc> rest = {{"optim", "AdamW"},
                                  {"schedule", "learning rate"},
                                  {"vq_warmup", "the seed's VQ loss weight schedule"},
                                  {"train", ""},
                                  {"augment", "waveform augmentation, training only"},
                                  {"eval", ""},
                                  {"checkpoint", ""},
                                  {"dist", "process group and gradient synchronization"},
                                  {"log", ""}};
  s.insert(s.end(), rest.begin(), rest.end());
  return s;
}

TrainConfig load_config(const std::string& path, const std::vector<std::string>& overrides,
                        const std::vector<std::string>& origins) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw Error("config file " + path + " does not exist or is not a file (see configs/ for examples)");
  std::string text;
  try {
    text = read_file(path);
  } catch (const Error& e) {
    throw Error("cannot read config file " + path + ": " + e.what());
  }
  return parse_config(text, path, overrides, origins);
}

TrainConfig config_from_toml_string(const std::string& text, const std::string& source_name,
                                    const std::vector<std::string>& overrides) {
  return parse_config(text, source_name, overrides, {});
}

std::string config_to_toml(const TrainConfig& config) {
  TrainConfig copy = config;
  return "# Effective asr_ddp configuration (every key; see docs/config.md).\n\n" +
         to_toml(train_config_fields(copy));
}

void validate_config(const TrainConfig& config) {
  TrainConfig copy = config;
  check(train_config_fields(copy), "config");
  check_consistency(copy, [](const std::string& key, const std::string& problem) {
    throw Error("config: " + key + ": " + problem);
  });
}

std::vector<std::string> config_keys() {
  TrainConfig scratch;
  return keys(train_config_fields(scratch));
}

std::string config_reference_markdown() {
  TrainConfig defaults;
  return markdown_reference(train_config_fields(defaults), train_config_sections());
}

}  // namespace asr
