// Residual vector quantizer: N codebooks of K codes, each quantizing what
// the previous ones left over. Nearest codes come from one matmul per stage
// (in float32, whatever the autocast precision); the output passes
// gradients straight through to the encoder.
//
// Codebooks learn either from the VQ-VAE codebook loss (the seed's:
// ||sg(z) - e||^2 + commitment * ||z - sg(e)||^2) or, with ema = true, from
// exponential moving averages of assigned inputs (then only the commitment
// term is a loss). They start from k-means on a training batch and codes
// unused over a window are restarted from batch residuals.
//
// A training step touches codebook statistics in three calls, so that a step
// every rank skips (non-finite loss, out of memory) leaves them unchanged:
//   forward(train)        this rank's usage counts and EMA sums, kept pending
//   reduce_statistics()   summed over ranks (one all-reduce, on the device)
//   apply_statistics()    EMA update, usage window, dead-code restarts
//   or discard_statistics()
// The training forward itself runs no collective (but for k-means when the
// codebooks are not initialized yet; the trainer initializes them before the
// first step). Restart vectors are chosen by utterance keys across ranks, so
// all ranks hold identical codebooks, for every world size. Padded frames
// never touch a codebook. No host synchronization outside k-means and the
// restarts (every dead_code_window steps).
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
  std::vector<double> perplexity;    // per codebook, over the last applied step's valid frames (all ranks)
  std::vector<int64_t> dead_codes;   // per codebook, codes found dead (and restarted) at the latest window check
};

struct RvqOutput {
  at::Tensor quantized;  // [B, T, D]; forward value = sum of codes, gradient = identity to the input
  at::Tensor loss;       // scalar: codebook + commitment terms, summed over stages, mean over valid frames
  at::Tensor codes;      // [B, T, N] int64, -1 on padded frames
};

class ResidualVQImpl : public torch::nn::Module {
 public:
  ResidualVQImpl(const RvqConfig& cfg, int64_t dim);

  // x: [B, T, D]; lengths: [B] valid frames (on the CPU). train = training
  // step: keeps this rank's statistics pending (see above).
  // utterance_keys: [B] int64 (CPU) identifying each utterance across ranks
  // (the trainer passes dataset indices). Candidate vectors for k-means
  // seeding and dead-code restarts are chosen by these keys, so every world
  // size picks the same frames. Undefined = keys made from (rank, batch position).
  RvqOutput forward(const at::Tensor& x, const at::Tensor& lengths, bool train,
                    const at::Tensor& utterance_keys = {});

  void reduce_statistics();   // every rank, once per training step; zeros where none are pending
  void apply_statistics();
  void discard_statistics();
  // reduce then apply: what a training step does when it is not skipped.
  void update() {
    reduce_statistics();
    apply_statistics();
  }

  // Until the codebooks are initialized, an evaluation forward passes its
  // input through unquantized (no loss, codes -1), and so does a training
  // forward while bypassed: the trainer bypasses the RVQ for the first
  // vq_warmup.bypass_steps steps, so that the encoder learns features before
  // k-means initializes the codebooks on them. Unbypassed, a training forward
  // initializes uninitialized codebooks itself (k-means or as they are).
  void set_bypass(bool bypass) { bypass_ = bypass; }

  // nullptr (the default) = purely local statistics.
  void set_communicator(distributed::Communicator* comm) { comm_ = comm; }

  // [N, K, D]: a parameter, or a buffer in EMA mode.
  at::Tensor codebooks() const { return codebooks_; }
  bool initialized() const;
  // Runs k-means on these valid rows [M, D] now (stage by stage), with
  // collectives; the trainer calls it on a first batch's encoder output.
  void kmeans_initialize(const at::Tensor& rows, const at::Tensor& row_keys = {});
  // Reads the last applied step's statistics (a host read: for logs).
  RvqMetrics metrics() const;

  // The step counters stay on the CPU whatever the device (reading them
  // every step must not synchronize with a GPU).
  void to(torch::Device device, torch::Dtype dtype, bool non_blocking = false) override;
  void to(torch::Device device, bool non_blocking = false) override;

 private:
  void all_reduce(std::vector<at::Tensor>& tensors);
  void broadcast(std::vector<at::Tensor>& tensors);
  // `count` rows chosen by the smallest hashes of (row key, salt) over all
  // ranks, identical on every rank and for every world size.
  at::Tensor sample_rows(const at::Tensor& rows, const at::Tensor& row_keys, int64_t count, uint64_t salt);
  at::Tensor kmeans(const at::Tensor& rows, const at::Tensor& row_keys, uint64_t salt);
  void restart_dead_codes(const std::vector<at::Tensor>& stage_inputs, const at::Tensor& row_keys);
  at::Tensor row_keys_for(const at::Tensor& utterance_keys, const at::Tensor& lengths, int64_t batch,
                          int64_t frames) const;
  void keep_counters_on_cpu();
  RvqOutput pass_through(const at::Tensor& x) const;

  RvqConfig cfg_;
  int64_t dim_;
  distributed::Communicator* comm_ = nullptr;
  bool bypass_ = false;
  at::Tensor codebooks_;               // [N, K, D]
  at::Tensor ema_count_, ema_sum_;     // [N, K], [N, K, D] (EMA mode)
  at::Tensor usage_;                   // [N, K] assignments in the current window (all ranks)
  at::Tensor state_;                   // [3] int64 on the CPU: initialized, steps in window, restarts so far
  at::Tensor last_dead_;               // [N] int64
  at::Tensor last_counts_;             // [N, K] of the last applied step (for metrics), not saved

  // A training forward's statistics until the step is applied or discarded.
  struct Pending {
    at::Tensor counts;                      // [N, K] float
    at::Tensor sums;                        // [N, K, D] float (EMA mode)
    std::vector<at::Tensor> stage_inputs;   // [M, D] per codebook, kept when a restart is due
    at::Tensor row_keys;
    bool reduced = false;
  };
  Pending pending_;
};
TORCH_MODULE(ResidualVQ);

}  // namespace asr::model
