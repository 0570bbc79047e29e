// Convolutions of the waveform frontend that oneDNN runs poorly on one core,
// rewritten with the same parameters and the same results up to rounding.
#pragma once
#include <ATen/core/Tensor.h>

namespace asr::model {

// A stride-1 conv from a single input channel (the first block reads the
// pooled waveform) as one GEMM over the sample windows: oneDNN managed
// ~9 GFLOP/s on it. x: [1, 1, L] (already padded); weight: [C, 1, K].
// Returns [1, C, L - K + 1].
at::Tensor conv1d_one_input_channel(const at::Tensor& x, const at::Tensor& weight);

// A 1x1 strided conv (the residual projections) as a strided slice and one
// GEMM, without oneDNN's per-call layout reorders. x: [1, C_in, L];
// weight: [C_out, C_in, 1]; bias: [C_out] or undefined.
// Returns [1, C_out, ceil(L / stride)].
at::Tensor conv1d_pointwise(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, int64_t stride);

// at::conv1d of x [1, C_in, L] zero-padded by pad_left / pad_right, computed
// over chunks of `chunk` output frames (short maps: the smallest power of
// two that holds them), forward and backward. Two costs of one call per
// utterance on CPU go away: every utterance length was a new shape, so
// oneDNN generated new kernels and layout reorders for each conv of each
// utterance (~10% of a seed-parity step); and the first block's 32k-frame
// maps outgrew the cache, halving the speed of its backward. The last chunk
// is padded to full width, so every call has one of a few shapes.
at::Tensor conv1d_chunked(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, int64_t stride,
                          int64_t pad_left, int64_t pad_right, int64_t chunk = 512);

}  // namespace asr::model
