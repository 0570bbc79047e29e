#include "kernel_trace.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/csrc/autograd/profiler_kineto.h>

#include <cstdio>
#include <cstdlib>
#include <set>

#include "asr/core/error.h"

namespace asr {
namespace {

namespace prof = torch::autograd::profiler;
using torch::profiler::impl::ActivityType;
using torch::profiler::impl::ProfilerConfig;
using torch::profiler::impl::ProfilerState;

std::set<ActivityType> activities() { return {ActivityType::CPU, ActivityType::CUDA}; }

}  // namespace

std::unique_ptr<KernelTrace> KernelTrace::from_environment(int rank) {
  const char* value = std::getenv("ASR_TRACE");
  if (!value || !*value) return nullptr;
  const std::string spec = value;
  const auto second = spec.rfind(':'), first = second == std::string::npos ? second : spec.rfind(':', second - 1);
  long long from = 0, count = 0;
  if (first == std::string::npos || std::sscanf(spec.c_str() + first + 1, "%lld:%lld", &from, &count) != 2 ||
      from < 1 || count < 1 || first == 0)
    throw Error("ASR_TRACE='" + spec + "' is not FILE:FIRST_STEP:STEPS (steps from 1)");
  auto t = std::unique_ptr<KernelTrace>(new KernelTrace());
  t->path_ = spec.substr(0, first) + (rank > 0 ? fmt::format(".rank{}", rank) : "");
  t->first_ = from;
  t->last_ = from + count - 1;
  return t;
}

KernelTrace::~KernelTrace() {
  if (active_) prof::disableProfiler();
}

void KernelTrace::before_step(int64_t step) {
  if (step != first_ || active_) return;
  const ProfilerConfig config(ProfilerState::KINETO);
  prof::prepareProfiler(config, activities());
  prof::enableProfiler(config, activities());
  active_ = true;
}

void KernelTrace::after_step(int64_t step) {
  if (!active_ || step != last_) return;
  auto result = prof::disableProfiler();
  active_ = false;
  result->save(path_);
  spdlog::info("profiler trace of steps {}-{} written to {}", first_, last_, path_);
}

}  // namespace asr
