// Residual vector quantizer: N codebooks of K codes, each quantizing what
// the previous ones left over. Nearest codes come from one matmul per stage;
// the output passes gradients straight through to the encoder.
//
// Codebooks learn either from the VQ-VAE codebook loss (the seed's:
// ||sg(z) - e||^2 + commitment * ||z - sg(e)||^2) or, with ema = true, from
// exponential moving averages of assigned inputs (then only the commitment
// term is a loss). They start from k-means on the first training batch and
// codes unused over a window are restarted from batch residuals.
//
// Distributed training: every statistic that changes a codebook (EMA counts
// and sums, k-means sums and counts, usage counts) is summed over ranks, and
// restart vectors come from rank 0, so all ranks hold identical codebooks.
// Collectives happen only in training-mode forwards, the same number on
// every rank. Padded frames never touch a codebook.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <vector>

#include "asr/model/model_config.h"

namespace asr::distributed {
class Communicator;
}

namespace asr::model {

struct RvqMetrics {
  std::vector<double> perplexity;    // per codebook, over this batch's valid frames (all ranks in training)
  std::vector<int64_t> dead_codes;   // per codebook, codes found dead (and restarted) at the latest window check
};

struct RvqOutput {
  at::Tensor quantized;  // [B, T, D]; forward value = sum of codes, gradient = identity to the input
  at::Tensor loss;       // scalar: codebook + commitment terms, summed over stages, mean over valid frames
  at::Tensor codes;      // [B, T, N] int64, -1 on padded frames
  RvqMetrics metrics;
};

class ResidualVQImpl : public torch::nn::Module {
 public:
  ResidualVQImpl(const RvqConfig& cfg, int64_t dim);

  // x: [B, T, D]; lengths: [B] valid frames. update = training step: may
  // initialize, EMA-update and restart codebooks (collectives included).
  // utterance_keys: [B] int64 identifying each utterance across ranks (the
  // trainer passes dataset indices). Candidate vectors for k-means seeding
  // and dead-code restarts are chosen by these keys, so every world size
  // picks the same frames. Undefined = keys made from (rank, batch position).
  RvqOutput forward(const at::Tensor& x, const at::Tensor& lengths, bool update,
                    const at::Tensor& utterance_keys = {});

  // nullptr (the default) = purely local statistics.
  void set_communicator(distributed::Communicator* comm) { comm_ = comm; }

  // [N, K, D]: a parameter, or a buffer in EMA mode.
  at::Tensor codebooks() const { return codebooks_; }
  bool initialized() const;
  // Runs k-means on these valid rows [M, D] now (stage by stage), as the
  // first training batch does when kmeans_init is set.
  void kmeans_initialize(const at::Tensor& rows, const at::Tensor& row_keys = {});

 private:
  void all_reduce(std::vector<at::Tensor>& tensors);
  void broadcast(std::vector<at::Tensor>& tensors);
  // `count` rows chosen by the smallest hashes of (row key, salt) over all
  // ranks, identical on every rank and for every world size.
  at::Tensor sample_rows(const at::Tensor& rows, const at::Tensor& row_keys, int64_t count, uint64_t salt);
  at::Tensor kmeans(const at::Tensor& rows, const at::Tensor& row_keys, uint64_t salt);
  void restart_dead_codes(const std::vector<at::Tensor>& stage_inputs, const at::Tensor& row_keys);

  RvqConfig cfg_;
  int64_t dim_;
  distributed::Communicator* comm_ = nullptr;
  at::Tensor codebooks_;               // [N, K, D]
  at::Tensor ema_count_, ema_sum_;     // [N, K], [N, K, D] (EMA mode)
  at::Tensor usage_;                   // [N, K] assignments in the current window (all ranks)
  at::Tensor state_;                   // [3] int64: initialized, steps in window, restarts so far
  at::Tensor last_dead_;               // [N] int64
};
TORCH_MODULE(ResidualVQ);

}  // namespace asr::model
