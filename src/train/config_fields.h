// The single list of config keys, their fields and their valid ranges,
// walked by the reader, the writer, the validator and config_keys(). Private
// to src/train: adding a key here is all it takes (plus docs/config.md).
#pragma once
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "asr/train/config.h"

namespace asr::config_detail {

// What values a key accepts. Numbers: [lo, hi] with optional open ends.
// Strings: one of `choices` when given, non-empty when `nonempty`.
// Integer lists: non-empty, each element checked against [lo, hi].
struct Rule {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool lo_open = false, hi_open = false;
  std::vector<std::string> choices;
  bool nonempty = false;
};

inline Rule any() { return {}; }
inline Rule at_least(double lo) {
  Rule r;
  r.lo = lo;
  return r;
}
inline Rule above(double lo) {
  Rule r;
  r.lo = lo;
  r.lo_open = true;
  return r;
}
inline Rule within(double lo, double hi, bool hi_open = false) {
  Rule r;
  r.lo = lo;
  r.hi = hi;
  r.hi_open = hi_open;
  return r;
}
inline Rule one_of(std::vector<std::string> choices) {
  Rule r;
  r.choices = std::move(choices);
  return r;
}
inline Rule nonempty() {
  Rule r;
  r.nonempty = true;
  return r;
}

// Calls v(key, field, rule) for every key, in the order they are written.
template <class Visitor>
void visit_config(TrainConfig& c, Visitor& v) {
  constexpr double kMaxInt64 = 9.2e18;
  v("run_dir", c.run_dir, nonempty());

  v("data.dir", c.data.dir, any());
  v("data.train_split", c.data.train_split, nonempty());
  v("data.valid_split", c.data.valid_split, nonempty());
  v("data.loader_threads", c.data.loader_threads, within(1, 256));

  ModelConfig& m = c.model;
  v("model.sample_rate", m.sample_rate, within(1000, 384000));
  v("model.vocab_size", m.vocab_size, at_least(0));
  v("model.frontend.kind", m.frontend.kind, one_of({"waveform", "logmel"}));
  v("model.frontend.pool", m.frontend.pool, at_least(1));
  v("model.frontend.strides", m.frontend.strides, at_least(1));
  v("model.frontend.kernel", m.frontend.kernel, at_least(1));
  v("model.frontend.hidden", m.frontend.hidden, at_least(0));
  v("model.frontend.n_mels", m.frontend.n_mels, at_least(1));
  v("model.frontend.n_fft", m.frontend.n_fft, at_least(16));
  v("model.frontend.hop", m.frontend.hop, at_least(1));
  v("model.frontend.subsample_strides", m.frontend.subsample_strides, at_least(1));
  v("model.frontend.norm", m.frontend.norm, one_of({"batch", "group", "layer"}));
  v("model.frontend.norm_groups", m.frontend.norm_groups, at_least(1));
  v("model.encoder.d_model", m.encoder.d_model, at_least(1));
  v("model.encoder.layers", m.encoder.layers, at_least(1));
  v("model.encoder.heads", m.encoder.heads, at_least(1));
  v("model.encoder.ff_mult", m.encoder.ff_mult, at_least(1));
  v("model.encoder.dropout", m.encoder.dropout, within(0, 1, true));
  v("model.encoder.pre_ln", m.encoder.pre_ln, any());
  v("model.rvq.enabled", m.rvq.enabled, any());
  v("model.rvq.codebooks", m.rvq.codebooks, at_least(1));
  v("model.rvq.codes", m.rvq.codes, at_least(2));
  v("model.rvq.commitment", m.rvq.commitment, at_least(0));
  v("model.rvq.ema", m.rvq.ema, any());
  v("model.rvq.ema_decay", m.rvq.ema_decay, within(0, 1, true));
  v("model.rvq.kmeans_init", m.rvq.kmeans_init, any());
  v("model.rvq.kmeans_iters", m.rvq.kmeans_iters, at_least(0));
  v("model.rvq.dead_code_threshold", m.rvq.dead_code_threshold, at_least(0));
  v("model.rvq.dead_code_window", m.rvq.dead_code_window, at_least(1));

  v("optim.lr", c.optim.lr, above(0));
  v("optim.beta1", c.optim.beta1, within(0, 1, true));
  v("optim.beta2", c.optim.beta2, within(0, 1, true));
  v("optim.eps", c.optim.eps, above(0));
  v("optim.weight_decay", c.optim.weight_decay, at_least(0));
  v("optim.grad_clip", c.optim.grad_clip, at_least(0));
  v("optim.accumulate", c.optim.accumulate, at_least(1));

  v("schedule.kind", c.schedule.kind, one_of({"cosine", "noam", "constant"}));
  v("schedule.warmup_steps", c.schedule.warmup_steps, within(0, kMaxInt64));
  v("schedule.total_steps", c.schedule.total_steps, within(0, kMaxInt64));
  v("schedule.min_lr_ratio", c.schedule.min_lr_ratio, within(0, 1));

  v("vq_warmup.start", c.vq_warmup.start, at_least(0));
  v("vq_warmup.end", c.vq_warmup.end, at_least(0));
  v("vq_warmup.steps", c.vq_warmup.steps, within(0, kMaxInt64));

  v("train.max_steps", c.train.max_steps, within(1, kMaxInt64));
  v("train.max_epochs", c.train.max_epochs, within(0, kMaxInt64));
  v("train.batch_seconds", c.train.batch_seconds, above(0));
  v("train.max_batch_utterances", c.train.max_batch_utterances, at_least(0));
  v("train.min_batch_utterances", c.train.min_batch_utterances, at_least(1));
  v("train.buckets", c.train.buckets, within(1, 1000));
  v("train.seed", c.train.seed, within(0, kMaxInt64));
  v("train.prefetch", c.train.prefetch, within(1, 1000));
  v("train.log_every", c.train.log_every, at_least(1));
  v("train.deterministic", c.train.deterministic, any());

  v("augment.enabled", c.augment.enabled, any());
  v("augment.gain_db", c.augment.gain_db, within(0, 60));
  v("augment.speed_min", c.augment.speed_min, within(0.25, 4));
  v("augment.speed_max", c.augment.speed_max, within(0.25, 4));
  v("augment.time_masks", c.augment.time_masks, within(0, 100));
  v("augment.time_mask_seconds", c.augment.time_mask_seconds, within(0, 60));

  v("eval.every", c.eval.every, within(0, kMaxInt64));
  v("eval.max_utterances", c.eval.max_utterances, within(0, kMaxInt64));
  v("eval.samples", c.eval.samples, within(0, 1000));

  v("checkpoint.every", c.checkpoint.every, within(0, kMaxInt64));
  v("checkpoint.keep_last", c.checkpoint.keep_last, at_least(0));
  v("checkpoint.keep_best", c.checkpoint.keep_best, any());

  v("dist.backend", c.dist.backend, one_of({"auto", "gloo", "nccl"}));
  v("dist.timeout_seconds", c.dist.timeout_seconds, within(1, 86400));
  v("dist.bucket_mb", c.dist.bucket_mb, within(0, 4096, false));
  v("dist.first_bucket_mb", c.dist.first_bucket_mb, within(0, 4096, false));
  v("dist.bf16_allreduce", c.dist.bf16_allreduce, any());

  v("log.level", c.log.level, one_of({"trace", "debug", "info", "warn", "error"}));
  v("log.tensorboard", c.log.tensorboard, any());
  v("log.progress", c.log.progress, one_of({"auto", "live", "plain"}));
}

}  // namespace asr::config_detail
