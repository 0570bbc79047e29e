#include "asr/model/packed_frames.h"

#include <torch/torch.h>

namespace asr::model {

PackedFrames pack_frames(const at::Tensor& lengths, int64_t batch, int64_t frames, const at::Device& device) {
  PackedFrames p;
  p.batch = batch;
  p.frames = frames;
  auto lens = lengths.to(torch::kCPU, torch::kLong).clamp(0, frames).contiguous();
  p.lengths.assign(lens.data_ptr<int64_t>(), lens.data_ptr<int64_t>() + lens.numel());
  auto steps = torch::arange(frames, torch::kLong);
  p.rows = (steps.unsqueeze(0) < lens.unsqueeze(1)).reshape({-1}).nonzero().squeeze(1).to(device);
  return p;
}

}  // namespace asr::model
