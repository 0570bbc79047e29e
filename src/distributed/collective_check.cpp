#include "collective_check.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <cstring>

namespace asr::distributed {
namespace {

// Blocking and asynchronous all-reduces match each other inside c10d, so
// only the name before any " (...)" counts.
constexpr const char* kOps[] = {"?", "all_reduce", "broadcast", "all_gather", "barrier"};

int64_t op_code(const char* op) {
  for (int64_t i = 1; i < int64_t(std::size(kOps)); ++i) {
    const size_t n = std::strlen(kOps[i]);
    if (std::strncmp(op, kOps[i], n) == 0 && (op[n] == 0 || op[n] == ' ')) return i;
  }
  return 0;
}

const char* scalar_name(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return "float32";
    case at::kDouble: return "float64";
    case at::kBFloat16: return "bfloat16";
    case at::kHalf: return "float16";
    case at::kLong: return "int64";
    case at::kInt: return "int32";
    case at::kByte: return "uint8";
    case at::kBool: return "bool";
    default: return "other";
  }
}

}  // namespace

const char* flight_dtype_name(const at::Tensor& payload) {
  return payload.defined() ? scalar_name(payload.scalar_type()) : "-";
}

at::Tensor collective_fingerprint(const FlightCollective& c, const at::Tensor& payload) {
  auto fp = at::empty({5}, at::kLong);
  auto* v = fp.data_ptr<int64_t>();
  v[0] = int64_t(c.seq);
  v[1] = op_code(c.op);
  v[2] = payload.defined() ? int64_t(payload.scalar_type()) : -1;
  v[3] = c.numel;
  v[4] = payload.defined() ? payload.dim() : 0;
  return fp;
}

std::string describe_fingerprint(const at::Tensor& fingerprint) {
  const auto cpu = fingerprint.to(at::kCPU).contiguous();
  const auto* v = cpu.data_ptr<int64_t>();
  const int64_t op = v[1] >= 0 && v[1] < int64_t(std::size(kOps)) ? v[1] : 0;
  const char* dtype = v[2] < 0 ? "-" : scalar_name(static_cast<at::ScalarType>(v[2]));
  return fmt::format("{} #{} {}[{}] ({} dims)", kOps[op], v[0], dtype, v[3], v[4]);
}

std::string fingerprint_mismatch(int rank, const std::vector<at::Tensor>& gathered) {
  const auto mine = gathered[size_t(rank)].to(at::kCPU);
  for (size_t r = 0; r < gathered.size(); ++r) {
    if (int(r) == rank || at::equal(gathered[r].to(at::kCPU), mine)) continue;
    return fmt::format("rank {} is about to run {} but rank {} runs {}", rank, describe_fingerprint(mine), r,
                       describe_fingerprint(gathered[r]));
  }
  return "";
}

}  // namespace asr::distributed
