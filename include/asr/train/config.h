// The training configuration: one TOML file read into typed structs.
//
// One table of fields (train_config_fields) drives reading, --set overrides,
// validation, the effective TOML written into run directories and
// checkpoints, and the key reference in docs/config.md. Reading is strict: an
// unknown key, a value of the wrong type or out of range is an asr::Error
// naming the key (section.key), the file and line, or the --set override it
// came from. Command-line flags are expressed as overrides
// ("train.max_steps=100"), so they are checked exactly like the file.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "asr/core/config_schema.h"
#include "asr/distributed/options.h"
#include "asr/model/model_config.h"
#include "asr/train/augment.h"
#include "asr/train/evaluator.h"
#include "asr/train/schedule.h"

namespace asr {

struct DataConfig {
  std::string dir;                    // preprocessed corpus (asr_preprocess output); --data
  std::string train_split = "train";
  std::string valid_split = "val";    // asr_preprocess writes train, val and test
  int loader_threads = 2;             // threads decoding/augmenting audio for the prefetcher
  bool verify_checksums = true;       // CRC-32C of shards and tokenizer against the manifest when opened
  // The tokenizer type the recipe is made for ("char", "bpe", "unigram"), or
  // "any": a dataset preprocessed with another is refused before training
  // (a character recipe's frame rate cannot fit BPE's pace and vice versa).
  std::string tokenizer = "any";
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
  std::string device = "auto";    // "auto" (a GPU when there is one), "cpu" or "cuda"
  std::string precision = "auto"; // "auto" (bf16 on a GPU, fp32 on the CPU), "fp32" or "bf16"
  bool tf32 = true;               // TF32 tensor cores for float32 matmuls on a GPU
  std::string kernels = "auto";   // "auto" (CPU-tuned on the CPU) or "generic" (the GPU path everywhere)
  bool profile = false;           // time each phase of the step, synchronizing the device (slower)
};

struct CheckpointConfig {
  int64_t every = 1000;  // steps between checkpoints (and one at the end); 0 = only at the end
  int keep_last = 3;     // 0 = keep all
  bool keep_best = true; // also keep the best by validation CER (checkpoints/best.ckpt)
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
  LrSchedule schedule;          // optim.lr and the model width are filled in by the trainer
  VqWeightSchedule vq_warmup;
  TrainLoopConfig train;
  AugmentOptions augment;
  EvalConfig eval;
  CheckpointConfig checkpoint;
  distributed::DistOptions dist;
  LogConfig log;
};

// Reads `path`, applies `overrides` ("section.key=value", the value parsed as
// TOML, or taken as a plain string when it is not valid TOML), then checks
// every key, type and range. Throws asr::Error on any problem; one about an
// override blames origins[i] when given (the flag it came from), else "--set".
TrainConfig load_config(const std::string& path, const std::vector<std::string>& overrides = {},
                        const std::vector<std::string>& origins = {});

// Parses TOML text (e.g. a checkpoint's "config" section); `source_name`
// stands in for the file name in error messages.
TrainConfig config_from_toml_string(const std::string& text, const std::string& source_name = "<config text>",
                                    const std::vector<std::string>& overrides = {});

// The complete effective config, every key present; config_from_toml_string
// of it gives back an equal config.
std::string config_to_toml(const TrainConfig& config);

// Range and consistency checks for a config built or edited in code.
void validate_config(const TrainConfig& config);

// Every key in "section.key" form, in table order (for docs, tests and --help).
std::vector<std::string> config_keys();

// The fields of `config` (pointers into it) and the headings of their sections.
config::Fields train_config_fields(TrainConfig& config);
std::vector<config::SectionDoc> train_config_sections();

// The key reference of docs/config.md (markdown tables of every key, type,
// default and meaning); a test keeps the document equal to it.
std::string config_reference_markdown();

}  // namespace asr
