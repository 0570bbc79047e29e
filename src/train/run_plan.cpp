#include "asr/train/run_plan.h"
#include "asr/train/run_setup.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "asr/core/error.h"
#include "asr/data/dataset.h"
#include "asr/model/asr_model.h"
#include "asr/model/ctc.h"
#include "asr/model/frontend.h"

namespace asr {

BatchSamplerOptions batch_sampler_options(const TrainConfig& cfg, int world_size) {
  BatchSamplerOptions so;
  so.batch_seconds = cfg.train.batch_seconds;
  so.max_batch_utterances = cfg.train.max_batch_utterances;
  so.min_batch_utterances = std::max(cfg.train.min_batch_utterances, world_size);
  so.buckets = cfg.train.buckets;
  so.seed = cfg.train.seed;
  return so;
}

namespace {

// min / median / max of a list, as text.
std::string spread(std::vector<double> v, const char* format) {
  if (v.empty()) return "-";
  std::sort(v.begin(), v.end());
  auto f = [&](double x) { return fmt::format(fmt::runtime(format), x); };
  return f(v.front()) + " / " + f(v[v.size() / 2]) + " / " + f(v.back());
}

// Activation bytes kept for backward by one micro-batch of `utterances`
// padded to `max_samples`: the frontend's maps (about 8 per block at the
// block's input rate) and the encoder's (about 12 + 2 ff_mult d_model-wide
// tensors per frame per layer, plus two heads x T x T score tensors): the
// accounting of docs/training.md's memory paragraph, not a measurement.
double activation_bytes(const ModelConfig& m, int64_t utterances, int64_t max_samples, int64_t frames, bool bf16) {
  const double u = static_cast<double>(utterances);
  double frontend = 0;
  const int hidden = m.frontend.hidden > 0 ? m.frontend.hidden : m.encoder.d_model / 2;
  if (m.frontend.kind == "waveform") {
    double rate = static_cast<double>(max_samples) / m.frontend.pool;
    for (int stride : m.frontend.strides) {
      frontend += rate * hidden * 8 * 4;  // norms keep float32 even under autocast
      rate /= stride;
    }
  } else {
    frontend = static_cast<double>(max_samples) / m.frontend.hop * (m.frontend.n_mels + 4.0 * m.encoder.d_model) * 4;
  }
  const double width = bf16 ? 2 : 4, f = static_cast<double>(frames);
  const double encoder = m.encoder.layers * (f * m.encoder.d_model * (12 + 2 * m.encoder.ff_mult) * width +
                                             2.0 * m.encoder.heads * f * f * 4);
  return u * (frontend + encoder);
}

struct Tally {
  std::vector<double> audio, utterances, activation;
  double fed = 0, real = 0;  // samples fed (padded) and real
  int64_t empty_shares = 0, shares = 0;
};

// One rank's share of one micro-batch.
void add_share(Tally& t, const Dataset& data, const std::vector<int64_t>& share, const ModelConfig& m,
               const model::Frontend& frontend, bool bf16) {
  ++t.shares;
  if (share.empty()) {
    ++t.empty_shares;
    return;
  }
  int64_t longest = 0, total = 0;
  for (int64_t i : share) {
    longest = std::max(longest, data.num_samples(static_cast<size_t>(i)));
    total += data.num_samples(static_cast<size_t>(i));
  }
  t.fed += static_cast<double>(longest) * static_cast<double>(share.size());
  t.real += static_cast<double>(total);
  t.activation.push_back(activation_bytes(m, static_cast<int64_t>(share.size()), longest,
                                          frontend.output_length(longest), bf16));
}

// Utterances CTC cannot align: fewer frames than their tokens need (exact,
// with the blanks between repeats, read from the dataset only when close).
int64_t count_unalignable(const Dataset& data, const model::Frontend& frontend, std::vector<double>* tokens_per_s) {
  int64_t n = 0;
  for (size_t i = 0; i < data.size(); ++i) {
    const int64_t frames = frontend.output_length(data.num_samples(i));
    const auto tokens = static_cast<int64_t>(data.num_tokens(i));
    tokens_per_s->push_back(static_cast<double>(tokens) / data.duration(i));
    if (tokens > frames) {
      ++n;
    } else if (2 * tokens > frames) {
      const auto ids = data.get(i).tokens;
      const std::vector<int64_t> wide(ids.begin(), ids.end());
      n += frames < model::ctc_min_frames(wide.data(), static_cast<int64_t>(wide.size())) ? 1 : 0;
    }
  }
  return n;
}

// What the plan reads, fixed once.
struct PlanInputs {
  TrainConfig cfg;
  int world;
  const Dataset& data;
  std::shared_ptr<model::Frontend> frontend;
  bool gpu, bf16;
  int accumulate;
};

// Facts of the split alone (no batching).
struct SplitFacts {
  double hours = 0, longest = 0, budget = 0;
  int64_t over_budget = 0, unalignable = 0;
  std::vector<double> tokens_per_s;
};

SplitFacts split_facts(const PlanInputs& in) {
  SplitFacts f;
  f.budget = in.cfg.train.batch_seconds / in.world;
  for (size_t i = 0; i < in.data.size(); ++i) {
    f.hours += in.data.duration(i) / 3600;
    f.longest = std::max(f.longest, in.data.duration(i));
    f.over_budget += in.data.duration(i) > f.budget ? 1 : 0;
  }
  f.unalignable = count_unalignable(in.data, *in.frontend, &f.tokens_per_s);
  return f;
}

// Every rank's share of every step of epoch 0.
Tally tally_epoch(const PlanInputs& in, const std::vector<std::vector<int64_t>>& batches, size_t steps) {
  Tally tally;
  for (size_t s = 0; s < steps; ++s)
    for (int r = 0; r < in.world; ++r) {
      double audio = 0, utterances = 0;
      for (int a = 0; a < in.accumulate; ++a) {
        const auto share = BatchSampler::shard_for_rank(batches[s * in.accumulate + a], r, in.world);
        add_share(tally, in.data, share, in.cfg.model, *in.frontend, in.bf16);
        for (int64_t i : share) audio += in.data.duration(static_cast<size_t>(i));
        utterances += static_cast<double>(share.size());
      }
      tally.audio.push_back(audio);
      tally.utterances.push_back(utterances);
    }
  return tally;
}

std::string describe_plan(const PlanInputs& in, const SplitFacts& f, const Tally& t, size_t steps, size_t batches) {
  const auto& cfg = in.cfg;
  const double peak = t.activation.empty() ? 0 : *std::max_element(t.activation.begin(), t.activation.end());
  const double params = static_cast<double>(model::count_parameters(*model::AsrModel(cfg.model)));
  std::string out = fmt::format("plan: {} ranks, dataset {} (split {}: {} utterances, {:.2f} h)\n", in.world,
                                cfg.data.dir, cfg.data.train_split, in.data.size(), f.hours);
  out += fmt::format("  steps per epoch: {} ({} global batches, {} micro-batch(es) per step), the same on every rank\n",
                     steps, batches, in.accumulate);
  out += fmt::format("  per rank per step: audio {} s, utterances {} (min / median / max)\n",
                     spread(t.audio, "{:.1f}"), spread(t.utterances, "{:.0f}"));
  out += fmt::format("  padding: {:.1f}% of the samples fed are padding\n",
                     t.fed > 0 ? 100 * (1 - t.real / t.fed) : 0.0);
  out += fmt::format("  longest utterance: {:.1f} s; per-rank budget {:.1f} s (train.batch_seconds {} / {} ranks)\n",
                     f.longest, f.budget, cfg.train.batch_seconds, in.world);
  out += fmt::format("  CTC: {:.1f} encoder frames per second of audio; tokens per second {} (min / median / max); "
                     "{} utterance(s) have too few frames for their tokens and will be skipped\n",
                     static_cast<double>(in.frontend->output_length(in.data.sample_rate())),
                     spread(f.tokens_per_s, "{:.1f}"), f.unalignable);
  out += fmt::format("  memory per rank (estimate, {} {}): activations of the largest micro-batch {:.2f} GiB; "
                     "{:.1f} M parameters with gradients and AdamW state {:.2f} GiB\n",
                     in.gpu ? "GPU" : "CPU", in.bf16 ? "bf16" : "fp32", peak / (1 << 30), params / 1e6,
                     params * 16 / (1 << 30));
  if (in.world > cfg.train.min_batch_utterances)
    out += fmt::format("  note: {} ranks > train.min_batch_utterances ({}): global batches differ from a smaller "
                       "world's, so losses will not match a run on fewer ranks\n",
                       in.world, cfg.train.min_batch_utterances);
  return out;
}

void add_problems(const PlanInputs& in, const SplitFacts& f, const Tally& t, size_t steps, size_t batches,
                  std::vector<std::string>& problems) {
  if (steps == 0 && batches > 0)
    problems.push_back(fmt::format("the training split gives {} global batch(es), fewer than optim.accumulate ({}): "
                                   "no step can run; lower train.batch_seconds or optim.accumulate",
                                   batches, in.accumulate));
  if (t.empty_shares > 0)
    problems.push_back(fmt::format("{} of {} per-rank micro-batches are empty (global batches with fewer utterances "
                                   "than ranks); raise train.min_batch_utterances or use fewer ranks",
                                   t.empty_shares, t.shares));
  if (f.over_budget > 0)
    problems.push_back(fmt::format("{} clip(s) are longer than the per-rank budget of {:.1f} s (the longest {:.1f} s); "
                                   "raise train.batch_seconds, use fewer ranks, or drop them with asr_preprocess "
                                   "--max-duration",
                                   f.over_budget, f.budget, f.longest));
}

}  // namespace

RunPlan plan_run(const TrainConfig& config, int world) {
  if (world < 1) throw Error("--world-size must be at least 1 (got " + std::to_string(world) + ")");
  if (config.data.dir.empty()) throw Error("--plan needs the dataset: set data.dir or pass --data DIR");
  const Dataset data = Dataset::open(config.data.dir, config.data.train_split);
  check_dataset_matches_config(config, data);
  PlanInputs in{config, world, data, nullptr, config.train.device != "cpu", false, std::max(1, config.optim.accumulate)};
  in.cfg.model.sample_rate = data.sample_rate();
  in.cfg.model.vocab_size = data.vocab_size();
  in.frontend = model::make_frontend(in.cfg.model);
  in.bf16 = config.train.precision == "bf16" || (config.train.precision == "auto" && in.gpu);

  RunPlan plan;
  std::vector<std::vector<int64_t>> batches;
  if (static_cast<size_t>(world) > data.size()) {
    plan.problems.push_back(fmt::format("{} ranks but only {} training utterances: every rank needs one utterance of "
                                        "every batch; use fewer ranks or more data",
                                        world, data.size()));
  } else {
    std::vector<int64_t> lengths(data.size());
    for (size_t i = 0; i < data.size(); ++i) lengths[i] = data.num_samples(i);
    batches = BatchSampler(lengths, data.sample_rate(), batch_sampler_options(in.cfg, world)).epoch_batches(0);
  }
  const size_t steps = batches.size() / static_cast<size_t>(in.accumulate);
  const SplitFacts facts = split_facts(in);
  const Tally tally = tally_epoch(in, batches, steps);
  plan.report = describe_plan(in, facts, tally, steps, batches.size());
  add_problems(in, facts, tally, steps, batches.size(), plan.problems);
  return plan;
}

}  // namespace asr
