// dist.check_collectives: before each collective the ranks all-gather a
// fingerprint of what they are about to run (sequence number, operation,
// dtype, element count, dimensions), so a rank that skipped or added a
// collective is an error naming both ranks instead of a hang or a sum of
// unrelated buffers. Costs one small all-gather per collective
// (bench/flight_recorder_cost.cpp); off by default.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "asr/distributed/flight_recorder.h"

namespace asr::distributed {

// int64 [5] on the CPU.
at::Tensor collective_fingerprint(const FlightCollective& c, const at::Tensor& payload);
// e.g. "all_reduce #12 float64[7]".
std::string describe_fingerprint(const at::Tensor& fingerprint);
// "" when every rank's fingerprint equals this rank's; otherwise the first
// rank that differs, named with both fingerprints.
std::string fingerprint_mismatch(int rank, const std::vector<at::Tensor>& gathered);
// The dtype's name for records, "-" for none.
const char* flight_dtype_name(const at::Tensor& payload);

}  // namespace asr::distributed
