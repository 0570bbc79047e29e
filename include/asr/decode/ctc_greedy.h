// Greedy (best-path) CTC decoding: the most likely label per frame, repeats
// collapsed, blanks dropped.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace asr {

struct CtcGreedyResult {
  std::vector<int64_t> ids;  // token ids, blanks removed
  double score = 0;          // sum over the frames of the best log-probability
};

// Collapses a frame-level label path: repeats merged, then `blank` dropped
// (so "a a blank a" gives "a a").
std::vector<int64_t> ctc_collapse(const std::vector<int64_t>& frame_ids, int64_t blank = 0);

// `log_probs` is [T, V]; only the first `length` frames are decoded
// (length < 0 means all T). Throws asr::Error on a bad shape or length.
CtcGreedyResult ctc_greedy_decode(const at::Tensor& log_probs, int64_t length = -1, int64_t blank = 0);

// A padded batch: [B, T, V] (or [T, B, V] when `time_major`), with `lengths`
// [B] the true frame counts. One argmax over the whole batch.
std::vector<CtcGreedyResult> ctc_greedy_decode_batch(const at::Tensor& log_probs, const at::Tensor& lengths,
                                                     int64_t blank = 0, bool time_major = false);

}  // namespace asr
