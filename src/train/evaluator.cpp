#include "asr/train/evaluator.h"

#include <torch/torch.h>

#include <chrono>

#include "asr/data/dataset.h"
#include "asr/decode/ctc_greedy.h"
#include "asr/distributed/communicator.h"
#include "asr/model/asr_model.h"
#include "asr/model/transfer.h"
#include "asr/text/normalize.h"
#include "asr/text/tokenizer.h"
#include "asr/train/batch_loader.h"
#include "asr/train/batch_sampler.h"

namespace asr {
namespace {

// Evaluation batches: the split in length order, cut by padded seconds.
// No shuffling, so the cut depends only on the split and the options.
std::vector<std::vector<int64_t>> eval_batches(const Dataset& dataset, const EvalConfig& options,
                                               double batch_seconds) {
  size_t n = dataset.size();
  if (options.max_utterances > 0) n = std::min<size_t>(n, static_cast<size_t>(options.max_utterances));
  std::vector<int64_t> lengths(n);
  for (size_t i = 0; i < n; ++i) lengths[i] = dataset.num_samples(i);
  BatchSamplerOptions so;
  so.batch_seconds = batch_seconds;
  so.shuffle = false;
  so.buckets = 1;
  return BatchSampler(lengths, dataset.sample_rate(), so).epoch_batches(0);
}

}  // namespace

EvalResult evaluate_split(model::AsrModelImpl& model, const Dataset& dataset, const Tokenizer& tokenizer,
                          distributed::Communicator& comm, const EvalConfig& options, double batch_seconds) {
  auto start = std::chrono::steady_clock::now();
  EvalResult result;
  if (dataset.size() == 0) return result;
  torch::NoGradGuard no_grad;
  bool was_training = model.is_training();
  model.eval();

  auto batches = eval_batches(dataset, options, batch_seconds);
  const auto device = model.parameters().front().device();
  const int rank = comm.rank(), world = comm.world_size();
  std::vector<EvalSample> samples;
  for (size_t b = static_cast<size_t>(rank); b < batches.size(); b += static_cast<size_t>(world)) {
    Batch batch = load_batch(dataset, batches[b], AugmentOptions{}, 0, 0);
    auto out = model.forward(model::to_device(batch.audio, device), batch.lengths, /*train=*/false);
    auto lengths = out.out_lengths;
    auto log_probs = out.log_probs.to(torch::kCPU, torch::kFloat);
    auto decoded = ctc_greedy_decode_batch(log_probs, lengths, tokenizer.blank_id());
    for (int64_t k = 0; k < batch.size(); ++k) {
      const auto& ids = decoded[static_cast<size_t>(k)].ids;
      // Normalized as asr_decode scores it: <unk> pieces (" ⁇ ") are not characters.
      std::string hyp = normalize_transcript(tokenizer.decode(std::vector<int>(ids.begin(), ids.end())));
      const std::string& ref = batch.texts[static_cast<size_t>(k)];
      result.chars += char_errors(ref, hyp);
      result.words += word_errors(ref, hyp);
      result.utterances += 1;
      result.audio_seconds += static_cast<double>(batch.lengths[k].item<int64_t>()) / dataset.sample_rate();
      if (static_cast<int>(samples.size()) < options.samples)
        samples.push_back({batch.ids[static_cast<size_t>(k)], ref, hyp});
    }
  }

  // Integer counts travel as doubles: exact below 2^53.
  std::vector<double> sums = {double(result.chars.sub), double(result.chars.del),   double(result.chars.ins),
                              double(result.chars.ref_len), double(result.words.sub), double(result.words.del),
                              double(result.words.ins), double(result.words.ref_len), double(result.utterances),
                              result.audio_seconds};
  sums = comm.all_reduce_sum(sums);
  result.chars = {int64_t(sums[0]), int64_t(sums[1]), int64_t(sums[2]), int64_t(sums[3])};
  result.words = {int64_t(sums[4]), int64_t(sums[5]), int64_t(sums[6]), int64_t(sums[7])};
  result.utterances = int64_t(sums[8]);
  result.audio_seconds = sums[9];
  result.samples = std::move(samples);
  result.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (was_training) model.train();
  return result;
}

}  // namespace asr
