// The training configuration: one TOML file read into typed structs.
//
// Every key is documented in docs/config.md. Reading is strict: an unknown
// key, a value of the wrong type or out of range is an asr::Error naming the
// key (section.key), the file and line, or the --set override it came from.
// Command-line flags are best expressed as overrides ("train.max_steps=100"),
// so they are checked exactly like the file.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "asr/model/model_config.h"

namespace asr {

struct DataConfig {
  std::string dir;                    // preprocessed corpus (asr_preprocess output); --data
  std::string train_split = "train";
  std::string valid_split = "val";    // asr_preprocess writes train, val and test
  int loader_threads = 2;             // threads decoding/augmenting audio for the prefetcher
};

struct OptimConfig {
  double lr = 1e-3;           // peak learning rate (after warmup)
  double beta1 = 0.9;
  double beta2 = 0.98;
  double eps = 1e-9;
  double weight_decay = 0.01;
  double grad_clip = 1.0;     // global gradient norm limit; 0 disables clipping
  int accumulate = 1;         // micro-batches summed into one optimizer step
};

struct ScheduleConfig {
  std::string kind = "cosine";  // "cosine", "noam" or "constant"
  int64_t warmup_steps = 1000;
  int64_t total_steps = 0;      // where cosine reaches its floor; 0 = train.max_steps
  double min_lr_ratio = 0.05;   // cosine floor as a fraction of optim.lr
};

// The seed's VQ loss weight: linear from `start` to `end` over `steps`.
struct VqWarmupConfig {
  double start = 10.0;
  double end = 0.5;
  int64_t steps = 1000;
};

struct TrainLoopConfig {
  int64_t max_steps = 100000;
  int64_t max_epochs = 0;         // 0 = no epoch limit
  double batch_seconds = 120.0;   // total audio seconds in one GLOBAL batch (all ranks together)
  int max_batch_utterances = 0;   // 0 = no limit
  int min_batch_utterances = 4;   // smallest global batch; also the largest world size whose batches equal 1 rank's
  int buckets = 8;                // length buckets for batching
  uint64_t seed = 1;
  int prefetch = 4;               // batches loaded ahead of the step
  int log_every = 10;             // steps between metrics records
  bool deterministic = true;      // deterministic kernels; needed for bit-exact resume
};

struct AugmentConfig {
  bool enabled = false;
  double gain_db = 6.0;             // uniform gain in [-gain_db, +gain_db]
  double speed_min = 0.9;
  double speed_max = 1.1;
  int time_masks = 2;
  double time_mask_seconds = 0.2;   // maximum width of each mask
};

struct EvalConfig {
  int64_t every = 1000;        // steps between evaluations (and one at the end); 0 = only at the end
  int64_t max_utterances = 0;  // 0 = the whole validation split
  int samples = 4;             // sample predictions written to the log and TensorBoard
};

struct CheckpointConfig {
  int64_t every = 1000;  // steps between checkpoints (and one at the end); 0 = only at the end
  int keep_last = 3;     // 0 = keep all
  bool keep_best = true; // also keep the best by validation CER (checkpoints/best.ckpt)
};

struct DistConfig {
  std::string backend = "auto";  // "auto" (nccl on GPU, gloo on CPU), "gloo" or "nccl"
  int timeout_seconds = 300;     // a collective that takes longer fails naming the rank
  double bucket_mb = 25.0;       // gradient all-reduce bucket size
  double first_bucket_mb = 1.0;  // smaller first bucket so communication starts early
  bool bf16_allreduce = false;   // compress gradients to bf16 on the wire
};

struct LogConfig {
  std::string level = "info";     // trace, debug, info, warn, error
  bool tensorboard = true;        // write events.out.tfevents.* into the run directory
  std::string progress = "auto";  // "auto" (live line on a terminal), "live" or "plain"
};

struct TrainConfig {
  std::string run_dir = "runs/default";
  DataConfig data;
  ModelConfig model;
  OptimConfig optim;
  ScheduleConfig schedule;
  VqWarmupConfig vq_warmup;
  TrainLoopConfig train;
  AugmentConfig augment;
  EvalConfig eval;
  CheckpointConfig checkpoint;
  DistConfig dist;
  LogConfig log;
};

// Reads `path`, applies `overrides` ("section.key=value", the value parsed as
// TOML, or taken as a plain string when it is not valid TOML), then checks
// every key, type and range. Throws asr::Error on any problem.
TrainConfig load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// Parses TOML text (e.g. a checkpoint's "config" section); `source_name`
// stands in for the file name in error messages.
TrainConfig config_from_toml_string(const std::string& text, const std::string& source_name = "<config text>",
                                    const std::vector<std::string>& overrides = {});

// The complete effective config, every key present; config_from_toml_string
// of it gives back an equal config.
std::string config_to_toml(const TrainConfig& config);

// Range and consistency checks for a config built or edited in code.
void validate_config(const TrainConfig& config);

// Every key in "section.key" form, in file order (for docs, tests and --help).
std::vector<std::string> config_keys();

}  // namespace asr
