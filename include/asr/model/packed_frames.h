// The valid frames of a padded batch, for the parts of the model that only
// compute on real frames (encoder layers, RVQ).
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <vector>

namespace asr::model {

// The valid frames of a padded [B, T, D] batch as rows of a [N, D] tensor:
// utterance after utterance, each in time order.
struct PackedFrames {
  std::vector<int64_t> lengths;  // valid frames per utterance, summing to N
  at::Tensor rows;               // [N] int64 index of each valid frame in the flattened [B * T], on the device
  at::Tensor host_rows;          // the same on the CPU (for keys and counts computed on the host)
  int64_t count() const { return host_rows.numel(); }
  int64_t batch = 0, frames = 0;  // B and T
};

// `lengths` [B] valid frames; on the CPU it costs no device synchronization
// (the index reaches the device with a non-blocking copy).
PackedFrames pack_frames(const at::Tensor& lengths, int64_t batch, int64_t frames, const at::Device& device);

}  // namespace asr::model
