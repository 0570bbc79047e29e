#include "asr/model/batch_statistics.h"

#include <ATen/ATen.h>

#include "asr/distributed/communicator.h"

namespace asr::model {

void BatchStatistics::sum(at::Tensor& values) {
  if (!comm_) return;
  std::vector<at::Tensor> t{values};
  comm_->all_reduce_sum(t);
  ++done_;
}

void BatchStatistics::complete_with_zeros(const std::vector<int64_t>& sizes) {
  if (!comm_) return;
  for (size_t i = static_cast<size_t>(done_); i < sizes.size(); ++i) {
    auto zeros = at::zeros({sizes[i]}, at::TensorOptions().dtype(at::kDouble).device(comm_->device()));
    sum(zeros);
  }
}

}  // namespace asr::model
