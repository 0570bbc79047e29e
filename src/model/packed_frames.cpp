#include "asr/model/packed_frames.h"

#include <torch/torch.h>

#include "asr/model/transfer.h"

namespace asr::model {

PackedFrames pack_frames(const at::Tensor& lengths, int64_t batch, int64_t frames, const at::Device& device) {
  PackedFrames p;
  p.batch = batch;
  p.frames = frames;
  auto lens = lengths.to(torch::kCPU, torch::kLong).clamp(0, frames).contiguous();
  p.lengths.assign(lens.data_ptr<int64_t>(), lens.data_ptr<int64_t>() + lens.numel());
  int64_t total = 0;
  for (int64_t n : p.lengths) total += n;
  p.host_rows = torch::empty({total}, torch::kLong);
  int64_t* out = p.host_rows.data_ptr<int64_t>();
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < p.lengths[static_cast<size_t>(b)]; ++t) *out++ = b * frames + t;
  p.rows = to_device(p.host_rows, device);
  return p;
}

}  // namespace asr::model
