#include "asr/decode/ctc_greedy.h"

#include <ATen/ATen.h>

#include "asr/core/error.h"

namespace asr {

std::vector<int64_t> ctc_collapse(const std::vector<int64_t>& frame_ids, int64_t blank) {
  std::vector<int64_t> out;
  int64_t prev = -1;
  for (int64_t id : frame_ids) {
    if (id != prev && id != blank) out.push_back(id);
    prev = id;
  }
  return out;
}

namespace {

// Decodes rows of precomputed per-frame maxima ([T] values and [T] ids).
CtcGreedyResult decode_path(const float* best, const int64_t* ids, int64_t length, int64_t blank) {
  CtcGreedyResult r;
  int64_t prev = -1;
  for (int64_t t = 0; t < length; ++t) {
    r.score += best[t];
    if (ids[t] != prev && ids[t] != blank) r.ids.push_back(ids[t]);
    prev = ids[t];
  }
  return r;
}

}  // namespace

CtcGreedyResult ctc_greedy_decode(const at::Tensor& log_probs, int64_t length, int64_t blank) {
  if (log_probs.dim() != 2)
    throw Error("ctc_greedy_decode expects [T, V] log-probabilities, got " + std::to_string(log_probs.dim()) +
                " dimensions");
  const int64_t frames = log_probs.size(0);
  if (length < 0) length = frames;
  if (length > frames)
    throw Error("ctc_greedy_decode: length " + std::to_string(length) + " exceeds the " + std::to_string(frames) +
                " frames given");
  if (length == 0) return {};
  auto [best, ids] = log_probs.narrow(0, 0, length).to(at::kCPU, at::kFloat).max(1);
  best = best.contiguous();
  ids = ids.contiguous();
  return decode_path(best.data_ptr<float>(), ids.data_ptr<int64_t>(), length, blank);
}

std::vector<CtcGreedyResult> ctc_greedy_decode_batch(const at::Tensor& log_probs, const at::Tensor& lengths,
                                                     int64_t blank, bool time_major) {
  if (log_probs.dim() != 3)
    throw Error("ctc_greedy_decode_batch expects 3-D log-probabilities, got " + std::to_string(log_probs.dim()) +
                " dimensions");
  at::Tensor x = time_major ? log_probs.transpose(0, 1) : log_probs;
  const int64_t batch = x.size(0), frames = x.size(1);
  at::Tensor lens = lengths.to(at::kCPU, at::kLong).contiguous();
  if (lens.dim() != 1 || lens.size(0) != batch)
    throw Error("ctc_greedy_decode_batch: lengths must be [" + std::to_string(batch) + "]");
  auto [best, ids] = x.to(at::kCPU, at::kFloat).max(2);
  best = best.contiguous();
  ids = ids.contiguous();
  const int64_t* len = lens.data_ptr<int64_t>();
  std::vector<CtcGreedyResult> out;
  out.reserve(batch);
  for (int64_t b = 0; b < batch; ++b) {
    if (len[b] < 0 || len[b] > frames)
      throw Error("ctc_greedy_decode_batch: length " + std::to_string(len[b]) + " of item " + std::to_string(b) +
                  " is outside [0, " + std::to_string(frames) + "]");
    out.push_back(decode_path(best.data_ptr<float>() + b * frames, ids.data_ptr<int64_t>() + b * frames, len[b], blank));
  }
  return out;
}

}  // namespace asr
