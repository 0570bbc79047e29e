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

// at::conv1d(x, weight, bias, stride, padding) for x [1, C_in, L], whose
// backward runs over chunks of `chunk` output frames. oneDNN's backward of
// the first block's strided conv (64 channels, 32k frames per 6 s
// utterance) ran at half the speed per frame of the same conv on a quarter
// of the frames: the maps outgrow the cache. Chunks keep each piece of input
// and gradient in L2.
at::Tensor conv1d_chunked_backward(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                                   int64_t stride, int64_t padding, int64_t chunk = 512);

}  // namespace asr::model
