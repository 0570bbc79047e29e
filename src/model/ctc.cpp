#include "asr/model/ctc.h"

#include <torch/torch.h>

#include "asr/core/error.h"

namespace asr::model {

int64_t ctc_min_frames(const int64_t* tokens, int64_t length) {
  int64_t need = length;
  for (int64_t i = 1; i < length; ++i) need += tokens[i] == tokens[i - 1] ? 1 : 0;
  return need;
}

CtcLoss ctc_loss_sum(const at::Tensor& log_probs, const at::Tensor& out_lengths, const at::Tensor& targets,
                 const at::Tensor& target_lengths, int64_t blank) {
  const int64_t b = log_probs.size(0);
  if (out_lengths.numel() != b || target_lengths.numel() != b) {
    throw asr::Error("ctc_loss: batch of " + std::to_string(b) + " log-prob rows but " +
                     std::to_string(out_lengths.numel()) + " output lengths and " +
                     std::to_string(target_lengths.numel()) + " target lengths");
  }
  auto olen = out_lengths.to(torch::kCPU).to(torch::kLong).contiguous();
  auto tlen = target_lengths.to(torch::kCPU).to(torch::kLong).contiguous();
  auto tg = targets.to(torch::kCPU).to(torch::kLong).contiguous();
  const int64_t* ol = olen.data_ptr<int64_t>();
  const int64_t* tl = tlen.data_ptr<int64_t>();

  // Flatten the kept targets into one 1-D tensor (accepted by every backend).
  std::vector<int64_t> keep, flat, kept_tlen, kept_olen;
  int64_t offset = 0;
  CtcLoss out;
  for (int64_t i = 0; i < b; ++i) {
    const int64_t* row = tg.dim() == 2 ? tg.data_ptr<int64_t>() + i * tg.size(1) : tg.data_ptr<int64_t>() + offset;
    if (tg.dim() == 2 && tl[i] > tg.size(1)) {
      throw asr::Error("ctc_loss: target length " + std::to_string(tl[i]) + " exceeds the padded width " +
                       std::to_string(tg.size(1)));
    }
    offset += tl[i];
    if (ol[i] > log_probs.size(1)) throw asr::Error("ctc_loss: an output length exceeds the frames given");
    if (ol[i] < ctc_min_frames(row, tl[i]) || ol[i] <= 0) {
      ++out.skipped;
      continue;
    }
    keep.push_back(i);
    flat.insert(flat.end(), row, row + tl[i]);
    kept_tlen.push_back(tl[i]);
    kept_olen.push_back(ol[i]);
    out.kept_target_tokens += tl[i];
  }
  out.kept = static_cast<int64_t>(keep.size());
  if (keep.empty()) {
    // Keeps the graph connected (zero gradient) so callers need no special case.
    out.sum = log_probs.sum() * 0.0;
    return out;
  }
  auto dev = log_probs.device();
  auto lp = out.kept == b ? log_probs : log_probs.index_select(0, torch::tensor(keep, torch::kLong).to(dev));
  lp = lp.transpose(0, 1);  // [T, B', V], as torch::ctc_loss wants
  auto per_utt = torch::ctc_loss(lp, torch::tensor(flat, torch::kLong).to(dev), kept_olen, kept_tlen, blank,
                                 at::Reduction::None, /*zero_infinity=*/true);
  out.sum = per_utt.sum();
  return out;
}

}  // namespace asr::model
