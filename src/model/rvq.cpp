#include "asr/model/rvq.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "asr/core/error.h"
#include "asr/distributed/communicator.h"
#include "asr/model/packed_frames.h"
#include "asr/model/precision.h"
#include "asr/model/transfer.h"

namespace asr::model {

namespace {

// Index of the nearest code for each row: argmin ||r||^2 - 2 r.e + ||e||^2,
// where ||r||^2 is dropped because it does not change the argmin.
at::Tensor nearest_code(const at::Tensor& rows, const at::Tensor& codebook) {
  torch::NoGradGuard no_grad;
  auto e2 = codebook.pow(2).sum(1).unsqueeze(0);
  return at::addmm(e2, rows, codebook.t(), /*beta=*/1, /*alpha=*/-2).argmin(1);
}

// How many rows each code got, as floats. Accumulating ones is exact in any
// order, so this is deterministic on every device, and unlike bincount it
// never reads the data's maximum back to the host.
at::Tensor count_codes(const at::Tensor& codes, int64_t k, const at::TensorOptions& opts) {
  return torch::zeros({k}, opts).index_put_({codes}, torch::ones({codes.size(0)}, opts), /*accumulate=*/true);
}

// Sum of the rows assigned to each code: [k, D].
at::Tensor sum_by_code(const at::Tensor& codes, const at::Tensor& rows, int64_t k) {
  return torch::zeros({k, rows.size(1)}, rows.options()).index_put_({codes}, rows, /*accumulate=*/true);
}

double perplexity(const at::Tensor& counts) {
  auto c = counts.to(torch::kCPU, torch::kDouble);
  const double total = c.sum().item<double>();
  if (total <= 0) return 0.0;
  auto p = c / total;
  auto nz = p.masked_select(p > 0);
  return std::exp(-(nz * nz.log()).sum().item<double>());
}

uint64_t mix64(uint64_t x) {  // splitmix64's finalizer: a cheap, well-spread hash
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

enum Counter { kInitialized = 0, kStepsInWindow = 1, kRestarts = 2 };

}  // namespace

ResidualVQImpl::ResidualVQImpl(const RvqConfig& cfg, int64_t dim) : cfg_(cfg), dim_(dim) {
  if (cfg.codebooks < 1 || cfg.codes < 2) {
    throw asr::Error("model.rvq: needs codebooks >= 1 and codes >= 2 (got " + std::to_string(cfg.codebooks) + " x " +
                     std::to_string(cfg.codes) + ")");
  }
  if (cfg.ema && (cfg.ema_decay <= 0 || cfg.ema_decay >= 1)) {
    throw asr::Error("model.rvq.ema_decay: must be in (0, 1), got " + std::to_string(cfg.ema_decay));
  }
  if (cfg.commitment < 0) throw asr::Error("model.rvq.commitment: must be >= 0");
  if (cfg.kmeans_iters < 1) throw asr::Error("model.rvq.kmeans_iters: must be >= 1");
  if (cfg.dead_code_window < 1) throw asr::Error("model.rvq.dead_code_window: must be >= 1");
  const int64_t n = cfg.codebooks, k = cfg.codes;
  auto init = torch::empty({n, k, dim}).uniform_(-1.0 / k, 1.0 / k);
  if (cfg.ema) {
    codebooks_ = register_buffer("codebooks", init);
    ema_count_ = register_buffer("ema_count", torch::ones({n, k}));
    ema_sum_ = register_buffer("ema_sum", init.clone());
  } else {
    codebooks_ = register_parameter("codebooks", init);
  }
  usage_ = register_buffer("usage", torch::zeros({n, k}));
  state_ = register_buffer("state", torch::zeros({3}, torch::kLong));
  last_dead_ = register_buffer("last_dead", torch::zeros({n}, torch::kLong));
}

void ResidualVQImpl::to(torch::Device device, torch::Dtype dtype, bool non_blocking) {
  torch::nn::Module::to(device, dtype, non_blocking);
  keep_counters_on_cpu();
}

void ResidualVQImpl::to(torch::Device device, bool non_blocking) {
  torch::nn::Module::to(device, non_blocking);
  keep_counters_on_cpu();
}

void ResidualVQImpl::keep_counters_on_cpu() {
  // set_data keeps the registered buffer and this member one tensor.
  if (!state_.device().is_cpu()) state_.set_data(state_.to(torch::kCPU));
}

bool ResidualVQImpl::initialized() const { return state_.data_ptr<int64_t>()[kInitialized] != 0; }

void ResidualVQImpl::all_reduce(std::vector<at::Tensor>& tensors) {
  if (comm_) comm_->all_reduce_sum(tensors);
}

void ResidualVQImpl::broadcast(std::vector<at::Tensor>& tensors) {
  if (comm_) comm_->broadcast(tensors, 0);
}

at::Tensor ResidualVQImpl::sample_rows(const at::Tensor& rows, const at::Tensor& row_keys, int64_t count,
                                       uint64_t salt) {
  torch::NoGradGuard no_grad;
  const int64_t m = rows.size(0);
  // Local candidates: this rank's `count` smallest hashes (INT64_MAX pads).
  auto keys = row_keys.to(torch::kCPU).contiguous();
  const int64_t* kp = keys.data_ptr<int64_t>();
  std::vector<std::pair<int64_t, int64_t>> local(static_cast<size_t>(m));
  for (int64_t r = 0; r < m; ++r)
    local[r] = {static_cast<int64_t>(mix64(static_cast<uint64_t>(kp[r]) ^ mix64(salt)) >> 1), r};
  const int64_t take = std::min(m, count);
  std::partial_sort(local.begin(), local.begin() + take, local.end());
  auto mine = torch::full({count}, std::numeric_limits<int64_t>::max(), torch::kLong);
  for (int64_t j = 0; j < take; ++j) mine.data_ptr<int64_t>()[j] = local[j].first;

  // The global choice: the `count` smallest hashes of all ranks together.
  std::vector<int64_t> all;
  if (comm_) {
    for (auto& t : comm_->all_gather(mine.to(comm_->device()))) {
      auto host = t.to(torch::kCPU).contiguous();  // a host read, every dead_code_window steps
      all.insert(all.end(), host.data_ptr<int64_t>(), host.data_ptr<int64_t>() + count);
    }
  } else {
    all.assign(mine.data_ptr<int64_t>(), mine.data_ptr<int64_t>() + count);
  }
  all.erase(std::remove(all.begin(), all.end(), std::numeric_limits<int64_t>::max()), all.end());
  std::sort(all.begin(), all.end());
  if (all.empty()) {
    // No valid frame anywhere: small random codes, made identical by rank 0.
    std::vector<at::Tensor> fallback{torch::randn({count, dim_}, codebooks_.options()) * 0.01};
    broadcast(fallback);
    return fallback[0];
  }
  all.resize(std::min<size_t>(all.size(), static_cast<size_t>(count)));

  // Each chosen row is filled in by its owner; the sum gives every rank all of
  // them. With fewer frames than `count`, the chosen rows repeat in order.
  std::unordered_map<int64_t, int64_t> owned;
  for (int64_t j = 0; j < take; ++j) owned.emplace(local[j].first, local[j].second);
  auto picked = torch::zeros({count, dim_}, rows.options());
  std::vector<int64_t> dst, src;
  for (int64_t j = 0; j < count; ++j) {
    auto it = owned.find(all[static_cast<size_t>(j) % all.size()]);
    if (it != owned.end()) dst.push_back(j), src.push_back(it->second);
  }
  if (!dst.empty())
    picked.index_copy_(0, to_device(torch::tensor(dst, torch::kLong), rows.device()),
                       rows.index_select(0, to_device(torch::tensor(src, torch::kLong), rows.device())));
  std::vector<at::Tensor> reduce{picked};
  all_reduce(reduce);
  return reduce[0];
}

at::Tensor ResidualVQImpl::kmeans(const at::Tensor& rows, const at::Tensor& row_keys, uint64_t salt) {
  const int64_t k = cfg_.codes;
  auto centroids = sample_rows(rows, row_keys, k, salt).contiguous();  // identical on every rank
  for (int it = 0; it < cfg_.kmeans_iters; ++it) {
    auto assign = nearest_code(rows, centroids);
    std::vector<at::Tensor> stats{sum_by_code(assign, rows, k), count_codes(assign, k, rows.options())};
    all_reduce(stats);
    auto used = (stats[1] > 0).unsqueeze(1);
    centroids = torch::where(used, stats[0] / stats[1].clamp_min(1).unsqueeze(1), centroids);
  }
  return centroids;
}

void ResidualVQImpl::kmeans_initialize(const at::Tensor& rows_in, const at::Tensor& row_keys_in) {
  torch::NoGradGuard no_grad;
  AutocastDisabled float32;
  auto residual = rows_in.detach().to(codebooks_.scalar_type());
  auto row_keys = row_keys_in.defined()
                      ? row_keys_in
                      : torch::arange(rows_in.size(0), torch::kLong) + (comm_ ? int64_t(comm_->rank()) << 40 : 0);
  for (int64_t n = 0; n < cfg_.codebooks; ++n) {
    auto c = kmeans(residual, row_keys, static_cast<uint64_t>(n));
    codebooks_[n].copy_(c);
    if (cfg_.ema) {
      ema_sum_[n].copy_(c);
      ema_count_[n].fill_(1.0);
    }
    residual = residual - c.index_select(0, nearest_code(residual, c));
  }
  state_.data_ptr<int64_t>()[kInitialized] = 1;
}

void ResidualVQImpl::restart_dead_codes(const std::vector<at::Tensor>& stage_inputs, const at::Tensor& row_keys) {
  torch::NoGradGuard no_grad;
  // Identical on every rank. Candidates are drawn whether or not a code is
  // dead (the where() below keeps live codes), so deciding costs no host read.
  auto dead = usage_ < static_cast<double>(cfg_.dead_code_threshold);
  last_dead_.copy_(dead.sum(1));
  // Salted by the restart count and stage: fresh candidates each time, the
  // same on every rank and for every world size.
  int64_t& restarts = state_.data_ptr<int64_t>()[kRestarts];
  const uint64_t salt_base = 1000003ull * static_cast<uint64_t>(restarts + 1);
  restarts += 1;
  std::vector<at::Tensor> cand;
  for (int64_t n = 0; n < cfg_.codebooks; ++n) {
    const auto& inputs = n < static_cast<int64_t>(stage_inputs.size())
                             ? stage_inputs[static_cast<size_t>(n)]
                             : torch::zeros({0, dim_}, codebooks_.options());
    cand.push_back(sample_rows(inputs, row_keys, cfg_.codes, salt_base + static_cast<uint64_t>(n)));
  }
  auto packed = torch::stack(cand);
  auto mask = dead.unsqueeze(2);
  codebooks_.copy_(torch::where(mask, packed, codebooks_));
  if (cfg_.ema) {
    ema_sum_.copy_(torch::where(mask, packed, ema_sum_));
    ema_count_.masked_fill_(dead, 1.0);
  }
}

at::Tensor ResidualVQImpl::row_keys_for(const at::Tensor& utterance_keys, const at::Tensor& lengths, int64_t batch,
                                        int64_t frames) const {
  // A key per valid frame: (utterance key, frame index), on the host. Without
  // keys from the caller, (rank, batch position) keeps them unique across ranks.
  auto ukeys = utterance_keys.defined()
                   ? utterance_keys.to(torch::kCPU, torch::kLong).contiguous()
                   : torch::arange(batch, torch::kLong) + (comm_ ? int64_t(comm_->rank()) << 40 : int64_t{0});
  auto lens = lengths.to(torch::kCPU, torch::kLong).contiguous();
  std::vector<int64_t> keys;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < std::min(frames, lens.data_ptr<int64_t>()[b]); ++t)
      keys.push_back(ukeys.data_ptr<int64_t>()[b] * (int64_t{1} << 22) + t);
  return torch::tensor(keys, torch::kLong);
}

RvqOutput ResidualVQImpl::forward(const at::Tensor& x_in, const at::Tensor& lengths, bool train,
                                  const at::Tensor& utterance_keys) {
  AutocastDisabled float32;  // distances and statistics in float32
  const int64_t b = x_in.size(0), t = x_in.size(1), d = x_in.size(2);
  const int64_t nbooks = cfg_.codebooks, k = cfg_.codes;
  auto x = x_in.to(codebooks_.scalar_type());
  if (!initialized() && (!train || bypass_)) return pass_through(x);
  const auto packed = pack_frames(lengths, b, t, x.device());
  // Only valid frames are quantized: padding never reaches a codebook.
  auto rows = x.reshape({-1, d}).index_select(0, packed.rows);
  const int64_t m = packed.count();
  at::Tensor row_keys;
  if (train) row_keys = row_keys_for(utterance_keys, lengths, b, t);
  if (train && !initialized()) {
    if (cfg_.kmeans_init)
      kmeans_initialize(rows, row_keys);
    else
      state_.data_ptr<int64_t>()[kInitialized] = 1;
  }
  // Stage inputs are kept only for the step that closes a dead-code window.
  const bool restart_due = train && state_.data_ptr<int64_t>()[kStepsInWindow] + 1 >= cfg_.dead_code_window;

  auto residual = rows.detach();
  at::Tensor quant = torch::zeros_like(residual);
  at::Tensor loss = torch::zeros({}, x.options());
  std::vector<at::Tensor> codes, counts, sums, stage_inputs;
  for (int64_t n = 0; n < nbooks; ++n) {
    auto book = codebooks_[n];
    auto code = nearest_code(residual, book.detach());
    auto q = book.index_select(0, code);  // differentiable w.r.t. the codebook (loss mode)
    // The residual entering stage n is the encoder output minus earlier
    // (detached) codes, so the commitment term of every stage reaches x.
    auto z = n == 0 ? rows : rows - quant;
    if (m > 0) {
      loss = loss + cfg_.commitment * torch::mse_loss(z, q.detach());
      if (!cfg_.ema) loss = loss + torch::mse_loss(q, z.detach());
    }
    if (train) {
      torch::NoGradGuard no_grad;
      counts.push_back(count_codes(code, k, x.options()));
      if (cfg_.ema) sums.push_back(sum_by_code(code, residual, k));
      if (restart_due) stage_inputs.push_back(residual);
    }
    codes.push_back(code);
    quant = quant + q.detach();
    residual = residual - q.detach();
  }
  if (train) pending_ = Pending{torch::stack(counts), cfg_.ema ? torch::stack(sums) : at::Tensor(),
                                std::move(stage_inputs), row_keys, false};

  RvqOutput out;
  // Straight-through: forward value is the quantized sum, gradient is identity.
  auto st_rows = rows + (quant - rows).detach();
  out.quantized = torch::zeros({b * t, d}, x.options()).index_copy(0, packed.rows, st_rows).view({b, t, d});
  auto code_mat = nbooks > 0 ? torch::stack(codes, 1) : torch::zeros({m, 0}, torch::kLong);
  out.codes = torch::full({b * t, nbooks}, -1, torch::TensorOptions().dtype(torch::kLong).device(x.device()))
                  .index_copy(0, packed.rows, code_mat)
                  .view({b, t, nbooks});
  out.loss = loss;
  return out;
}

RvqOutput ResidualVQImpl::pass_through(const at::Tensor& x) const {
  RvqOutput out;
  out.quantized = x;
  out.loss = torch::zeros({}, x.options());
  out.codes = torch::full({x.size(0), x.size(1), cfg_.codebooks}, -1,
                          torch::TensorOptions().dtype(torch::kLong).device(x.device()));
  return out;
}

void ResidualVQImpl::reduce_statistics() {
  // Codebooks not initialized yet (bypassed) have nothing to reduce, on any
  // rank: they are initialized on every rank at the same step.
  if (!initialized()) return;
  torch::NoGradGuard no_grad;
  const auto opts = codebooks_.options().requires_grad(false);
  // A rank without pending statistics (it dropped the step) contributes zeros.
  if (!pending_.counts.defined()) pending_.counts = torch::zeros({cfg_.codebooks, cfg_.codes}, opts);
  std::vector<at::Tensor> stats{pending_.counts};
  if (cfg_.ema) {
    if (!pending_.sums.defined()) pending_.sums = torch::zeros({cfg_.codebooks, cfg_.codes, dim_}, opts);
    stats.push_back(pending_.sums);
  }
  all_reduce(stats);
  pending_.counts = stats[0];
  if (cfg_.ema) pending_.sums = stats[1];
  pending_.reduced = true;
}

void ResidualVQImpl::apply_statistics() {
  if (!pending_.counts.defined() || !initialized()) return;
  torch::NoGradGuard no_grad;
  usage_.add_(pending_.counts);
  last_counts_ = pending_.counts;
  if (cfg_.ema) {
    const double decay = cfg_.ema_decay, eps = 1e-5;
    ema_count_.mul_(decay).add_(pending_.counts, 1 - decay);
    ema_sum_.mul_(decay).add_(pending_.sums, 1 - decay);
    // Laplace smoothing keeps never-assigned codes from dividing by zero.
    auto total = ema_count_.sum(1, true);
    auto smoothed = (ema_count_ + eps) / (total + cfg_.codes * eps) * total;
    codebooks_.copy_(ema_sum_ / smoothed.unsqueeze(2));
  }
  int64_t& steps = state_.data_ptr<int64_t>()[kStepsInWindow];
  steps += 1;
  if (steps >= cfg_.dead_code_window) {
    restart_dead_codes(pending_.stage_inputs, pending_.row_keys);
    usage_.zero_();
    steps = 0;
  }
  pending_ = Pending{};
}

void ResidualVQImpl::discard_statistics() { pending_ = Pending{}; }

RvqMetrics ResidualVQImpl::metrics() const {
  RvqMetrics m;
  auto dead = last_dead_.to(torch::kCPU).contiguous();
  for (int64_t n = 0; n < cfg_.codebooks; ++n) {
    m.perplexity.push_back(last_counts_.defined() ? perplexity(last_counts_[n]) : 0.0);
    m.dead_codes.push_back(dead.data_ptr<int64_t>()[n]);
  }
  return m;
}

}  // namespace asr::model
