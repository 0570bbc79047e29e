#include "asr/model/ctc.h"

#include <torch/torch.h>

#include "asr/core/error.h"
#include "asr/model/transfer.h"

namespace asr::model {

int64_t ctc_min_frames(const int64_t* tokens, int64_t length) {
  int64_t need = length;
  for (int64_t i = 1; i < length; ++i) need += tokens[i] == tokens[i - 1] ? 1 : 0;
  return need;
}

CtcPlan plan_ctc(const at::Tensor& out_lengths, const at::Tensor& targets, const at::Tensor& target_lengths) {
  const int64_t b = out_lengths.numel();
  if (target_lengths.numel() != b)
    throw asr::Error("ctc_loss: " + std::to_string(b) + " output lengths but " +
                     std::to_string(target_lengths.numel()) + " target lengths");
  auto olen = out_lengths.to(torch::kCPU, torch::kLong).contiguous();
  auto tlen = target_lengths.to(torch::kCPU, torch::kLong).contiguous();
  auto tg = targets.to(torch::kCPU, torch::kLong).contiguous();
  const int64_t* ol = olen.data_ptr<int64_t>();
  const int64_t* tl = tlen.data_ptr<int64_t>();
  CtcPlan plan;
  plan.batch = b;
  int64_t offset = 0;
  for (int64_t i = 0; i < b; ++i) {
    const int64_t* row = tg.dim() == 2 ? tg.data_ptr<int64_t>() + i * tg.size(1) : tg.data_ptr<int64_t>() + offset;
    if (tg.dim() == 2 && tl[i] > tg.size(1))
      throw asr::Error("ctc_loss: target length " + std::to_string(tl[i]) + " exceeds the padded width " +
                       std::to_string(tg.size(1)));
    offset += tl[i];
    if (ol[i] < ctc_min_frames(row, tl[i]) || ol[i] <= 0) {
      ++plan.skipped;
      continue;
    }
    plan.keep.push_back(i);
    plan.targets.insert(plan.targets.end(), row, row + tl[i]);
    plan.target_lengths.push_back(tl[i]);
    plan.frames.push_back(ol[i]);
    plan.kept_target_tokens += tl[i];
  }
  return plan;
}

at::Tensor ctc_loss_sum(const at::Tensor& log_probs, const CtcPlan& plan, int64_t blank) {
  if (log_probs.size(0) != plan.batch)
    throw asr::Error("ctc_loss: batch of " + std::to_string(log_probs.size(0)) + " log-prob rows but a plan for " +
                     std::to_string(plan.batch));
  for (int64_t f : plan.frames)
    if (f > log_probs.size(1)) throw asr::Error("ctc_loss: an output length exceeds the frames given");
  // Keeps the graph connected (zero gradient) so callers need no special case.
  if (plan.keep.empty()) return log_probs.sum() * 0.0;
  const auto dev = log_probs.device();
  auto lp = static_cast<int64_t>(plan.keep.size()) == plan.batch
                ? log_probs
                : log_probs.index_select(0, to_device(torch::tensor(plan.keep, torch::kLong), dev));
  lp = lp.to(torch::kFloat).transpose(0, 1);  // [T, B', V] float32, as torch::ctc_loss wants
  auto per_utt = torch::ctc_loss(lp, to_device(torch::tensor(plan.targets, torch::kLong), dev), plan.frames,
                                 plan.target_lengths, blank, at::Reduction::None, /*zero_infinity=*/true);
  return per_utt.sum();
}

CtcLoss ctc_loss_sum(const at::Tensor& log_probs, const at::Tensor& out_lengths, const at::Tensor& targets,
                     const at::Tensor& target_lengths, int64_t blank) {
  const CtcPlan plan = plan_ctc(out_lengths, targets, target_lengths);
  CtcLoss out;
  out.sum = ctc_loss_sum(log_probs, plan, blank);
  out.kept = static_cast<int64_t>(plan.keep.size());
  out.skipped = plan.skipped;
  out.kept_target_tokens = plan.kept_target_tokens;
  return out;
}

}  // namespace asr::model
