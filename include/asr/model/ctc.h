// CTC loss with true lengths. An utterance CTC cannot align (fewer output
// frames than its target needs: its length plus one blank between each pair
// of repeated tokens) is left out of the loss and counted, so the loss is
// never inf or NaN.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace asr::model {

struct CtcLoss {
  // Sum over the kept utterances of each one's negative log-likelihood
  // (nats per utterance, not divided by anything). Differentiable. The
  // trainer divides by the all-reduced `kept` count of the global batch, so
  // every rank's gradient carries the same weight per utterance.
  at::Tensor sum;
  int64_t kept = 0;
  int64_t skipped = 0;
  int64_t kept_target_tokens = 0;  // for a per-token normalization if preferred
};

// Which utterances of a batch CTC can align, decided on the host from the
// lengths alone, before any forward pass: the trainer knows the global
// counts it normalizes by without waiting for the model.
struct CtcPlan {
  std::vector<int64_t> keep;                     // batch rows kept
  std::vector<int64_t> targets;                  // their targets, concatenated
  std::vector<int64_t> frames, target_lengths;   // per kept row
  int64_t batch = 0, skipped = 0, kept_target_tokens = 0;
};

// out_lengths: [B] int64 output frames (on the CPU: frontend output_lengths
// of the input lengths); targets: [B, S] int64 padded (any pad value) or 1-D
// concatenated; target_lengths: [B] int64.
CtcPlan plan_ctc(const at::Tensor& out_lengths, const at::Tensor& targets, const at::Tensor& target_lengths);

// The summed loss of the plan's kept rows. log_probs: [B, T, V] log-softmax
// output (computed in float32); blank id 0 by default (docs/data-format.md).
at::Tensor ctc_loss_sum(const at::Tensor& log_probs, const CtcPlan& plan, int64_t blank = 0);

// Both steps at once.
CtcLoss ctc_loss_sum(const at::Tensor& log_probs, const at::Tensor& out_lengths, const at::Tensor& targets,
                     const at::Tensor& target_lengths, int64_t blank = 0);

// Output frames CTC needs for this target: its length plus its adjacent repeats.
int64_t ctc_min_frames(const int64_t* tokens, int64_t length);

}  // namespace asr::model
