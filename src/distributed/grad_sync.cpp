#include "asr/distributed/grad_sync.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <chrono>
#include <cstdio>
#include <mutex>

#include "asr/distributed/flight_recorder.h"

namespace asr::distributed {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

at::ScalarType wire_dtype(const at::Tensor& p, bool bf16) {
  return (bf16 && p.scalar_type() == at::kFloat) ? at::kBFloat16 : p.scalar_type();
}

}  // namespace

std::vector<std::vector<size_t>> assign_buckets(const std::vector<at::Tensor>& params, double first_bucket_mb,
                                                double bucket_mb) {
  std::vector<std::vector<size_t>> buckets;
  double limit = first_bucket_mb * 1024 * 1024;
  double bytes = 0;
  for (size_t k = params.size(); k-- > 0;) {
    const auto& p = params[k];
    const double size = double(p.numel()) * double(p.element_size());
    bool fresh = buckets.empty();
    if (!fresh) {
      const auto& head = params[buckets.back().front()];
      // A bucket is one flat buffer: one dtype, one device.
      fresh = head.scalar_type() != p.scalar_type() || head.device() != p.device() || bytes + size > limit;
    }
    if (fresh && !buckets.empty() && !buckets.back().empty()) {
      limit = bucket_mb * 1024 * 1024;
      bytes = 0;
    }
    if (fresh) buckets.emplace_back();
    buckets.back().push_back(k);
    bytes += size;
  }
  return buckets;
}

struct GradientSynchronizer::Impl {
  struct Slot {
    size_t bucket = 0;
    int64_t offset = 0;
    bool ready = false;
  };
  struct Bucket {
    std::vector<size_t> params;
    at::Tensor buffer;
    size_t pending = 0;
    std::unique_ptr<PendingReduce> work;
  };

  Impl(Communicator& comm, std::vector<at::Tensor> params, GradSyncOptions options)
      : comm(comm), params(std::move(params)), options(options) {}

  Communicator& comm;
  std::vector<at::Tensor> params;
  GradSyncOptions options;
  std::vector<std::vector<size_t>> layout;
  std::vector<Slot> slots;
  std::vector<Bucket> buckets;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators;
  std::vector<uintptr_t> hook_keys;
  bool views = false;  // .grad of every parameter is a view into its bucket
  std::vector<at::Tensor> grad_views;  // those views, when `views`

  std::mutex mutex;
  bool sync = false;
  bool sync_pending = false;
  bool in_backward = false;
  size_t next_launch = 0;
  size_t ready_count = 0;
  double scale = 1.0;
  Clock::time_point t_begin, t_ready;
  GradSyncTimings timings;

  // Any real group (a one-rank NCCL or Gloo group too: that is how a single
  // GPU exercises the asynchronous path); only the local communicator has
  // nothing to exchange.
  bool distributed() const { return comm.backend_name() != "local"; }

  at::Tensor slice(size_t i) {
    const Slot& s = slots[i];
    return buckets[s.bucket].buffer.narrow(0, s.offset, params[i].numel()).view(params[i].sizes());
  }

  // Makes every .grad a view of its bucket (zeroed).
  void attach_views() {
    for (auto& b : buckets) b.buffer.zero_();
    if (grad_views.empty())
      for (size_t i = 0; i < params.size(); ++i) grad_views.push_back(slice(i));
    for (size_t i = 0; i < params.size(); ++i) params[i].mutable_grad() = grad_views[i];
  }

  // Caller holds the mutex. `zeros`: contribute zeros instead of the gradient.
  void mark_ready(size_t i, bool zeros) {
    Slot& s = slots[i];
    if (s.ready)
      throw Error(fmt::format("parameter {} produced a gradient twice in one synchronised step; run one backward per "
                              "step, and begin_step(false) for the micro-batches before the last",
                              i));
    const auto& grad = params[i].grad();
    if (grad.defined() && grad.is_sparse())
      throw Error(fmt::format("parameter {} has a sparse gradient, which is not supported", i));
    if (zeros || !grad.defined())
      slice(i).zero_();
    else if (!views || !grad.is_same(grad_views[i]))
      slice(i).copy_(grad);  // copy mode, or a gradient that replaced its view
    // In view mode every .grad is its view again, also where backward made
    // none (that parameter contributes zeros).
    if (views && !params[i].grad().is_same(grad_views[i])) params[i].mutable_grad() = grad_views[i];
    s.ready = true;
    if (++ready_count == params.size()) t_ready = Clock::now();
    --buckets[s.bucket].pending;
  }

  // Caller holds the mutex. Strict index order keeps every rank's sequence
  // of collectives identical whatever order autograd finishes gradients in.
  void launch_ready() {
    while (next_launch < buckets.size() && buckets[next_launch].pending == 0) {
      char note[48];  // the flight recorder names the bucket a hang is in
      std::snprintf(note, sizeof(note), "gradient bucket %zu", next_launch);
      FlightNote flight_note(note);
      auto& b = buckets[next_launch++];
      std::vector<at::Tensor> tensors{b.buffer};
      b.work = comm.all_reduce_sum_async(tensors);
      if (in_backward) ++timings.buckets_in_backward;
    }
  }

  void on_gradient(size_t i) {
    if (!sync || !options.overlap) return;
    at::NoGradGuard no_grad;
    std::lock_guard<std::mutex> lock(mutex);
    mark_ready(i, /*zeros=*/false);
    launch_ready();
  }

  void finish(bool zeros);

  void reset() {
    for (auto& s : slots) s.ready = false;
    for (auto& b : buckets) {
      b.pending = b.params.size();
      b.work.reset();
    }
    next_launch = 0;
    ready_count = 0;
    sync_pending = false;
    in_backward = false;
  }
};

namespace {

// Runs after a parameter's AccumulateGrad node, i.e. once its .grad holds the
// gradient of this backward (summed over every use of the parameter).
class GradReadyHook : public torch::autograd::FunctionPostHook {
 public:
  GradReadyHook(GradientSynchronizer::Impl* impl, size_t index) : impl_(impl), index_(index) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list& /*inputs*/) override {
    impl_->on_gradient(index_);
    return outputs;
  }

 private:
  GradientSynchronizer::Impl* impl_;
  size_t index_;
};

}  // namespace

GradientSynchronizer::GradientSynchronizer(Communicator& comm, std::vector<at::Tensor> params,
                                           GradSyncOptions options)
    : impl_(std::make_unique<Impl>(comm, std::move(params), options)) {
  auto& im = *impl_;
  if (!(options.bucket_mb > 0) || !(options.first_bucket_mb > 0))
    throw Error(fmt::format("gradient bucket sizes must be positive (bucket_mb {}, first_bucket_mb {})",
                            options.bucket_mb, options.first_bucket_mb));
  for (size_t i = 0; i < im.params.size(); ++i)
    if (!im.params[i].defined() || !im.params[i].requires_grad() || !im.params[i].is_leaf())
      throw Error(fmt::format("parameter {} given to GradientSynchronizer is not a leaf tensor requiring grad", i));
  im.layout = assign_buckets(im.params, options.first_bucket_mb, options.bucket_mb);
  if (!im.distributed()) return;  // one rank: nothing to exchange
  if (options.bf16_compress && !comm.supports_bfloat16()) {
    if (comm.rank() == 0)
      spdlog::warn("gradient bf16 compression requested but the {} backend of this LibTorch cannot reduce bfloat16; "
                 "sending float32",
                 comm.backend_name());
    im.options.bf16_compress = false;
  }

  im.slots.resize(im.params.size());
  for (size_t b = 0; b < im.layout.size(); ++b) {
    Impl::Bucket bucket;
    bucket.params = im.layout[b];
    int64_t offset = 0;
    for (size_t i : bucket.params) {
      im.slots[i].bucket = b;
      im.slots[i].offset = offset;
      offset += im.params[i].numel();
    }
    const auto& head = im.params[bucket.params.front()];
    bucket.buffer = at::zeros({offset}, head.options().dtype(wire_dtype(head, im.options.bf16_compress))
                                            .device(comm.device())
                                            .requires_grad(false));
    bucket.pending = bucket.params.size();
    im.buckets.push_back(std::move(bucket));
  }
  // Views when the gradients can live in the buckets themselves: same device
  // and type as the wire.
  im.views = true;
  for (const auto& p : im.params)
    im.views = im.views && p.device() == comm.device() && wire_dtype(p, im.options.bf16_compress) == p.scalar_type();
  if (im.views) im.attach_views();
  if (options.overlap) {
    for (size_t i = 0; i < im.params.size(); ++i) {
      auto acc = torch::autograd::impl::grad_accumulator(im.params[i]);
      if (!acc) throw Error(fmt::format("parameter {} has no gradient accumulator (not a leaf?)", i));
      im.hook_keys.push_back(acc->add_post_hook(std::make_unique<GradReadyHook>(impl_.get(), i)));
      im.accumulators.push_back(std::move(acc));
    }
  }
}

GradientSynchronizer::~GradientSynchronizer() {
  auto& im = *impl_;
  for (size_t k = 0; k < im.accumulators.size(); ++k) im.accumulators[k]->del_post_hook(im.hook_keys[k]);
}

void GradientSynchronizer::begin_step(bool synchronize) {
  auto& im = *impl_;
  std::lock_guard<std::mutex> lock(im.mutex);
  if (im.sync_pending)
    throw Error("GradientSynchronizer::begin_step called again before finish_step of the synchronised step");
  im.sync = synchronize;
  im.t_begin = Clock::now();
  im.timings = GradSyncTimings{};
  if (synchronize) {
    im.reset();
    im.sync_pending = true;
    im.in_backward = true;
  }
}

void GradientSynchronizer::set_scale(double scale) { impl_->scale = scale; }

void GradientSynchronizer::finish_step() { impl_->finish(/*zeros=*/false); }

void GradientSynchronizer::finish_step_with_zeros() { impl_->finish(/*zeros=*/true); }

void GradientSynchronizer::Impl::finish(bool zeros) {
  at::NoGradGuard no_grad;
  const auto t_finish = Clock::now();
  if (!sync_pending) {
    if (sync) throw Error("GradientSynchronizer::finish_step called twice for one step");
    return;  // an accumulation micro-batch: nothing to do
  }
  sync = false;
  if (!distributed()) {
    for (auto& p : params) {
      auto& grad = p.mutable_grad();
      if (!grad.defined() || zeros) grad = at::zeros_like(p);
      if (scale != 1.0) grad.mul_(scale);
    }
    timings.ready_s = seconds_between(t_begin, t_finish);
    sync_pending = false;
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex);
    in_backward = false;
    timings.ready_s = seconds_between(t_begin, ready_count == params.size() ? t_ready : t_finish);
    for (size_t i = 0; i < params.size(); ++i)
      if (!slots[i].ready) mark_ready(i, zeros);
    try {
      launch_ready();
    } catch (...) {
      reset();
      throw;
    }
  }
  const auto t_wait = Clock::now();
  try {
    for (auto& b : buckets) b.work->wait();
  } catch (...) {
    reset();
    throw;
  }
  timings.wait_s = seconds_between(t_wait, Clock::now());
  if (views) {
    if (scale != 1.0)
      for (auto& b : buckets) b.buffer.mul_(scale);
  } else {
    for (size_t i = 0; i < params.size(); ++i) {
      auto& grad = params[i].mutable_grad();
      if (!grad.defined()) grad = at::empty_like(params[i]);
      grad.copy_(slice(i));
      if (scale != 1.0) grad.mul_(scale);
    }
  }
  reset();
}

void GradientSynchronizer::zero_grad() {
  auto& im = *impl_;
  at::NoGradGuard no_grad;
  if (im.views) {
    im.attach_views();  // zeroes the buckets, and restores any view replaced since
    return;
  }
  for (auto& p : im.params)
    if (p.grad().defined()) p.mutable_grad().zero_();
}

bool GradientSynchronizer::gradients_are_bucket_views() const { return impl_->views; }

const GradSyncTimings& GradientSynchronizer::last_timings() const { return impl_->timings; }

const std::vector<std::vector<size_t>>& GradientSynchronizer::buckets() const { return impl_->layout; }

}  // namespace asr::distributed
