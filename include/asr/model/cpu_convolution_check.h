// A check of this LibTorch's float32 CPU convolution gradients.
//
// Some LibTorch builds compute wrong input gradients in their oneDNN (mkldnn)
// float32 convolution backward: Debian trixie's LibTorch 2.6 is off by O(1)
// for a plain 8->8 channel, kernel-8 conv1d, while its forward and its
// float64 path are right (found by scripts/check-libtorch2.sh --full). Such a
// build trains nothing and no comparison between two float32 paths notices.
// The check runs one small convolution backward in float32 and in float64
// once per process; when they disagree, oneDNN is switched off for the
// process (LibTorch's native kernels are right) and the result says so; the
// trainer logs that message (the check itself writes nothing: asr_decode's
// standard output is its transcripts).
#pragma once
#include <string>

namespace asr::model {

struct CpuConvolutionCheck {
  double relative_error = 0.0;  // float32 against float64 input gradient
  bool onednn_disabled = false; // the check switched oneDNN off
  std::string message;          // empty when all was well
};

// Runs once per process (later calls return the first result). AsrModel's
// constructor calls it, so every model built on a CPU is covered.
const CpuConvolutionCheck& check_cpu_convolution_gradients();

}  // namespace asr::model
