#include "asr/decode/decoder.h"

#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <numeric>
#include <regex>
#include <sstream>

#include "asr/core/error.h"
#include "asr/core/thread_pool.h"
#include "asr/decode/checkpoint_model.h"
#include "asr/decode/chunking.h"
#include "asr/decode/ctc_greedy.h"
#include "asr/distributed/device.h"
#include "asr/model/transfer.h"

namespace asr {

struct Decoder::Impl {
  mutable CheckpointModel ckpt;  // forward() is non-const in torch, though eval mode changes nothing
  int64_t hop = 1;
  c10::Device device{c10::kCPU};

  // Pieces of one batch's inputs, forwarded `batch` at a time; the kept
  // frames of each piece are appended to its input's posterior matrix.
  void forward_pieces(std::vector<std::vector<float>*>& audio, std::vector<std::vector<float>>& posteriors,
                      std::vector<int>& chunks, const DecodeOptions& o) const {
    const int64_t vocab = ckpt.tokenizer->vocab_size();
    const int64_t rate = ckpt.model_config.sample_rate;
    struct Piece {
      size_t input;
      ChunkPlan plan;
    };
    std::vector<Piece> pieces;
    for (size_t i = 0; i < audio.size(); ++i) {
      if (!audio[i]) continue;
      auto plans = plan_chunks(static_cast<int64_t>(audio[i]->size()), std::llround(o.chunk_seconds * rate),
                               std::llround(o.chunk_overlap_seconds * rate), hop);
      chunks[i] = static_cast<int>(plans.size());
      for (const auto& p : plans)
        // Too short for even one output frame: nothing to forward (the transcript is empty).
        if (ckpt.model->frontend().output_length(p.end - p.begin) > 0) pieces.push_back({i, p});
    }
    // Pieces stay in input order, and an input's chunks in time order, so
    // appending kept frames stitches them correctly.
    for (size_t start = 0; start < pieces.size(); start += static_cast<size_t>(o.batch)) {
      const size_t end = std::min(pieces.size(), start + static_cast<size_t>(o.batch));
      int64_t longest = 0;
      for (size_t k = start; k < end; ++k) longest = std::max(longest, pieces[k].plan.end - pieces[k].plan.begin);
      auto wave = torch::zeros({static_cast<int64_t>(end - start), std::max<int64_t>(longest, 1)});
      auto lengths = torch::empty({static_cast<int64_t>(end - start)}, torch::kLong);
      for (size_t k = start; k < end; ++k) {
        const auto& p = pieces[k];
        const int64_t n = p.plan.end - p.plan.begin;
        std::memcpy(wave[static_cast<int64_t>(k - start)].data_ptr<float>(), audio[p.input]->data() + p.plan.begin,
                    static_cast<size_t>(n) * sizeof(float));
        lengths[static_cast<int64_t>(k - start)] = n;
      }
      auto out = ckpt.model->forward(model::to_device(wave, device), lengths, /*train=*/false);
      auto lp = out.log_probs.to(torch::kCPU, torch::kFloat).contiguous();
      auto frames = out.out_lengths.to(torch::kCPU, torch::kLong).contiguous();
      const int64_t t_max = lp.size(1);
      for (size_t k = start; k < end; ++k) {
        const auto& p = pieces[k];
        const int64_t row = static_cast<int64_t>(k - start);
        const int64_t n = frames[row].item<int64_t>();
        const int64_t from = std::min(p.plan.keep_begin, n);
        const int64_t to = p.plan.keep_end < 0 ? n : std::min(p.plan.keep_end, n);
        const float* base = lp.data_ptr<float>() + row * t_max * vocab;
        auto& dst = posteriors[p.input];
        dst.insert(dst.end(), base + from * vocab, base + to * vocab);
      }
    }
  }

  Transcript search(const std::vector<float>& posterior, const DecodeOptions& o) const {
    const int64_t vocab = ckpt.tokenizer->vocab_size();
    const int64_t frames = static_cast<int64_t>(posterior.size()) / vocab;
    Transcript t;
    if (o.beam <= 1) {
      // Beam 1 is best-path decoding: the same function the trainer's evaluation uses.
      auto lp = torch::from_blob(const_cast<float*>(posterior.data()), {frames, vocab}, torch::kFloat);
      auto r = ctc_greedy_decode(lp, frames, ckpt.tokenizer->blank_id());
      t.text = ckpt.tokenizer->decode(std::vector<int>(r.ids.begin(), r.ids.end()));
      t.score = r.score;
      return t;
    }
    BeamSearchOptions bo;
    bo.beam = o.beam;
    bo.nbest = o.nbest;
    bo.prune = o.prune;
    bo.blank = ckpt.tokenizer->blank_id();
    bo.fusion = o.fusion;
    auto hyps = ctc_prefix_beam_search(posterior.data(), frames, vocab, bo);
    for (const auto& h : hyps)
      t.nbest.push_back({ckpt.tokenizer->decode(std::vector<int>(h.ids.begin(), h.ids.end())), h.score, h.acoustic, h.lm});
    t.text = t.nbest.front().text;
    t.score = t.nbest.front().score;
    return t;
  }

  // Loads, forwards and searches one batch of inputs; failures stay per input.
  void run_batch(const std::vector<DecodeInput>& inputs, const std::vector<size_t>& idx, const DecodeOptions& o,
                 std::vector<Transcript>& results) const {
    std::vector<std::vector<float>> audio(idx.size());
    std::vector<std::vector<float>*> present(idx.size(), nullptr);
    for (size_t k = 0; k < idx.size(); ++k) {
      Transcript& t = results[idx[k]];
      t.id = inputs[idx[k]].id;
      try {
        if (!inputs[idx[k]].load) throw Error("nothing to load");
        audio[k] = inputs[idx[k]].load();
        if (audio[k].empty()) throw Error("no audio samples");
        present[k] = &audio[k];
        t.audio_seconds = static_cast<double>(audio[k].size()) / ckpt.model_config.sample_rate;
      } catch (const std::exception& e) {
        t.error = e.what();
      }
    }
    std::vector<std::vector<float>> posteriors(idx.size());
    std::vector<int> chunks(idx.size(), 0);
    forward_pieces(present, posteriors, chunks, o);
    for (size_t k = 0; k < idx.size(); ++k) {
      if (!present[k]) continue;
      Transcript& t = results[idx[k]];
      Transcript s = search(posteriors[k], o);
      t.text = std::move(s.text);
      t.score = s.score;
      t.nbest = std::move(s.nbest);
      t.chunks = chunks[k];
    }
  }
};

namespace {

std::string number(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

// "--beam 100000 is out of range: it must be between 1 and 256 (...)".
void require_range(const char* flag, double value, double lo, double hi, const std::string& note = "") {
  if (std::isfinite(value) && value >= lo && value <= hi) return;
  throw Error(std::string(flag) + " " + number(value) + " is out of range: it must be " +
              (std::isfinite(value) ? "" : "a finite number ") + "between " + number(lo) + " and " + number(hi) +
              (note.empty() ? "" : " (" + note + ")"));
}

}  // namespace

void validate_decode_options(const DecodeOptions& o) {
  require_range("--beam", o.beam, 1, kMaxBeam,
                "1 = greedy; beam search costs time and memory with the square of the width, see docs/decoding.md");
  require_range("--nbest", o.nbest, 1, o.beam > 1 ? o.beam + 1 : 1,
                "greedy decoding has one hypothesis, beam search at most --beam + 1: the beam and the greedy path");
  if (!(std::isfinite(o.prune) && o.prune > 0 && o.prune <= kMaxPrune))
    throw Error("--prune " + number(o.prune) + " is out of range: it must be " +
                (std::isfinite(o.prune) ? "" : "a finite number ") + "above 0 and at most " + number(kMaxPrune) +
                " (nats below each frame's best token)");
  require_range("--threads", o.threads, 1, kMaxThreads);
  require_range("--batch", o.batch, 1, kMaxBatch);
  if (o.chunk_seconds != 0)
    require_range("--chunk-seconds", o.chunk_seconds, kMinChunkSeconds, kMaxChunkSeconds, "or 0 = never chunk");
  const double overlap_max = o.chunk_seconds > 0 ? o.chunk_seconds / 2 : kMaxChunkSeconds / 2;
  require_range("--chunk-overlap", o.chunk_overlap_seconds, 0, overlap_max, "less than half of --chunk-seconds");
  if (o.chunk_seconds > 0 && 2 * o.chunk_overlap_seconds >= o.chunk_seconds)
    throw Error("--chunk-overlap " + number(o.chunk_overlap_seconds) + " must be less than half of --chunk-seconds " +
                number(o.chunk_seconds));
  require_range("--lm-weight", o.fusion.weight, 0, kMaxLmWeight);
  require_range("--lm-bonus", o.fusion.length_bonus, -kMaxLmBonus, kMaxLmBonus);
}

Decoder::Decoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Decoder::Decoder(Decoder&&) noexcept = default;
Decoder& Decoder::operator=(Decoder&&) noexcept = default;
Decoder::~Decoder() = default;

namespace {

c10::Device parse_device(const std::string& name) {
  if (name == "cpu") return c10::Device(c10::kCPU);
  // Checked here: c10::Device would throw its own error (with a stack trace) for "cuda:x".
  static const std::regex kCuda("cuda(:[0-9]{1,4})?");
  if (!std::regex_match(name, kCuda)) throw Error("--device " + name + ": unknown device; use cpu, cuda or cuda:N");
  if (!distributed::cuda_built())
    throw Error("--device " + name + ": this build's LibTorch has no CUDA; use --device cpu (docs/building.md)");
  const int gpus = distributed::visible_gpus();
  if (gpus == 0) throw Error("--device " + name + ": no GPU is visible to this process; use --device cpu");
  c10::Device d(name);  // "cuda" or "cuda:N"
  if (d.has_index() && d.index() >= gpus)
    throw Error("--device " + name + ": only " + std::to_string(gpus) + " GPU(s) visible");
  return d.has_index() ? d : c10::Device(c10::kCUDA, 0);
}

}  // namespace

Decoder Decoder::from_checkpoint(const std::string& path, const std::string& device) {
  auto impl = std::make_unique<Impl>();
  impl->device = parse_device(device);
  impl->ckpt = load_checkpoint_model(path);
  impl->ckpt.model->to(impl->device);
  impl->hop = impl->ckpt.model->frontend().samples_per_frame();
  return Decoder(std::move(impl));
}

std::string Decoder::device() const { return impl_->device.str(); }

int Decoder::sample_rate() const { return impl_->ckpt.model_config.sample_rate; }
const Tokenizer& Decoder::tokenizer() const { return *impl_->ckpt.tokenizer; }
const ModelConfig& Decoder::model_config() const { return impl_->ckpt.model_config; }
int64_t Decoder::samples_per_frame() const { return impl_->hop; }
int64_t Decoder::step() const { return impl_->ckpt.step; }
int64_t Decoder::num_parameters() const { return model::count_parameters(*impl_->ckpt.model); }

std::vector<Transcript> Decoder::decode(const std::vector<DecodeInput>& inputs, const DecodeOptions& options,
                                        const std::function<void(const Transcript&)>& on_done) const {
  validate_decode_options(options);
  DecodeOptions o = options;
  if (o.fusion.lm && o.fusion.token_text.empty()) o.fusion.token_text = token_surfaces(tokenizer());
  std::vector<Transcript> results(inputs.size());

  // Longest first: similar lengths share a batch (little padding), and the
  // slowest batches start early so threads finish together.
  std::vector<size_t> order(inputs.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return inputs[a].seconds > inputs[b].seconds; });
  std::vector<std::vector<size_t>> batches;
  for (size_t i = 0; i < order.size(); i += static_cast<size_t>(o.batch))
    batches.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(i),
                         order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), i + static_cast<size_t>(o.batch))));

  // Each batch runs its torch ops single-threaded: for models this size,
  // workers over batches use the cores better than one threaded forward.
  std::mutex done_mutex;
  auto decode_batch = [&](size_t b) {
    at::set_num_threads(1);
    c10::InferenceMode inference;
    impl_->run_batch(inputs, batches[b], o, results);
    if (on_done) {
      std::lock_guard<std::mutex> lock(done_mutex);
      for (size_t i : batches[b]) on_done(results[i]);
    }
  };
  // A GPU runs one batch at a time, fed by one worker.
  const size_t threads = impl_->device.is_cpu()
                             ? std::min<size_t>(static_cast<size_t>(o.threads), std::max<size_t>(batches.size(), 1))
                             : 1;
  if (threads <= 1) {
    // On the caller's thread; its own torch thread setting survives the call.
    struct RestoreThreads {
      int saved = at::get_num_threads();
      ~RestoreThreads() { at::set_num_threads(saved); }
    } restore;
    for (size_t b = 0; b < batches.size(); ++b) decode_batch(b);
  } else {
    // A failure that is not one input's (those stay inside run_batch) stops
    // the remaining batches and is rethrown here.
    ThreadPool pool(threads);
    pool.parallel_for(0, batches.size(), decode_batch);
  }
  return results;
}

Transcript Decoder::decode_audio(const std::vector<float>& audio, const DecodeOptions& options, const std::string& id) const {
  DecodeOptions o = options;
  o.threads = 1;
  auto results = decode({DecodeInput{id, static_cast<double>(audio.size()) / sample_rate(), [&] { return audio; }}}, o);
  if (!results[0].ok()) throw Error(id + ": " + results[0].error);
  return results[0];
}

}  // namespace asr
