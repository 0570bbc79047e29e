#include "asr/train/fault_injection.h"

#include <c10/util/Exception.h>
#include <fmt/format.h>
#include <torch/nn/module.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "asr/core/error.h"

namespace asr {
namespace {

// "STEP:RANK" or, when phases are allowed, "STEP:RANK:PHASE".
template <class Fault>
std::vector<Fault> parse(const char* variable, bool with_phase) {
  const char* value = std::getenv(variable);
  if (!value || !*value) return {};
  Fault f;
  f.variable = variable;
  long long step = -1;
  int rank = -1;
  char phase[16] = {0};
  const int n = std::sscanf(value, "%lld:%d:%15s", &step, &rank, phase);
  const bool ok = n >= 2 && step >= 1 && rank >= 0 && (n == 2 || with_phase);
  if (!ok)
    throw Error(fmt::format("{}='{}' is not STEP:RANK{} (STEP counts from 1, as the log does)", variable, value,
                            with_phase ? "[:forward|backward]" : ""));
  f.step = step;
  f.rank = rank;
  f.phase = n == 3 ? phase : "forward";
  if (f.phase != "forward" && f.phase != "backward")
    throw Error(fmt::format("{}='{}': the phase must be forward or backward", variable, value));
  return {f};
}

// "STEP:RANK:MS".
template <class Fault>
std::vector<Fault> parse_slow(const char* variable) {
  const char* value = std::getenv(variable);
  if (!value || !*value) return {};
  Fault f;
  f.variable = variable;
  long long step = -1, ms = -1;
  char tail = 0;
  if (std::sscanf(value, "%lld:%d:%lld%c", &step, &f.rank, &ms, &tail) != 3 || step < 1 || f.rank < 0 || ms < 0)
    throw Error(fmt::format("{}='{}' is not STEP:RANK:MILLISECONDS (STEP counts from 1, as the log does)", variable,
                            value));
  f.step = step;
  f.milliseconds = ms;
  return {f};
}

}  // namespace

std::unique_ptr<FaultInjector> FaultInjector::from_environment(int rank) {
  auto f = std::make_unique<FaultInjector>();
  f->rank_ = rank;
  f->nan_ = parse<Fault>("ASR_FAULT_NAN", false);
  f->oom_ = parse<Fault>("ASR_FAULT_OOM", true);
  f->diverge_ = parse<Fault>("ASR_FAULT_DIVERGE", false);
  f->slow_ = parse_slow<Fault>("ASR_FAULT_SLOW");
  f->skip_ = parse<Fault>("ASR_FAULT_SKIP_COLLECTIVE", false);
  if (f->nan_.empty() && f->oom_.empty() && f->diverge_.empty() && f->slow_.empty() && f->skip_.empty())
    return nullptr;
  return f;
}

at::Tensor FaultInjector::poison_loss(int64_t step, const at::Tensor& loss) const {
  for (const auto& f : nan_)
    if (hits(f, step)) return loss * std::nan("");
  return loss;
}

void FaultInjector::out_of_memory(int64_t step, StepPhase phase) const {
  const char* name = phase == StepPhase::forward ? "forward" : "backward";
  for (const auto& f : oom_)
    if (hits(f, step) && f.phase == name)
      throw c10::OutOfMemoryError(
          {__func__, __FILE__, static_cast<uint32_t>(__LINE__)},
          fmt::format("CUDA out of memory (injected by ASR_FAULT_OOM at step {} on rank {}, {})", step, rank_, name));
}

void FaultInjector::diverge(int64_t step, torch::nn::Module& model) const {
  for (const auto& f : diverge_)
    if (hits(f, step)) {
      torch::NoGradGuard no_grad;
      model.parameters().front().add_(1e-3);
    }
}

void FaultInjector::slow_down(int64_t step) const {
  for (const auto& f : slow_)
    if (f.rank == rank_ && step >= f.step) std::this_thread::sleep_for(std::chrono::milliseconds(f.milliseconds));
}

bool FaultInjector::skip_collective(int64_t step) const {
  for (const auto& f : skip_)
    if (hits(f, step)) return true;
  return false;
}

std::string FaultInjector::describe() const {
  std::string out;
  for (const auto* list : {&nan_, &oom_, &diverge_, &slow_, &skip_})
    for (const auto& f : *list)
      if (f.rank == rank_) out += fmt::format("{}{} at step {}", out.empty() ? "" : ", ", f.variable, f.step);
  return out;
}

}  // namespace asr
