#include "asr/model/rvq.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "asr/core/error.h"
#include "asr/distributed/communicator.h"
#include "asr/model/packed_frames.h"

namespace asr::model {

namespace {

// Index of the nearest code for each row: argmin ||r||^2 - 2 r.e + ||e||^2,
// where ||r||^2 is dropped because it does not change the argmin.
at::Tensor nearest_code(const at::Tensor& rows, const at::Tensor& codebook) {
  torch::NoGradGuard no_grad;
  auto e2 = codebook.pow(2).sum(1).unsqueeze(0);
  return at::addmm(e2, rows, codebook.t(), /*beta=*/1, /*alpha=*/-2).argmin(1);
}

double perplexity(const at::Tensor& counts) {
  auto c = counts.to(torch::kDouble);
  const double total = c.sum().item<double>();
  if (total <= 0) return 0.0;
  auto p = c / total;
  auto nz = p.masked_select(p > 0);
  return std::exp(-(nz * nz.log()).sum().item<double>());
}

}  // namespace

ResidualVQImpl::ResidualVQImpl(const RvqConfig& cfg, int64_t dim) : cfg_(cfg), dim_(dim) {
  if (cfg.codebooks < 1 || cfg.codes < 2) {
    throw asr::Error("model.rvq: needs codebooks >= 1 and codes >= 2 (got " +
                     std::to_string(cfg.codebooks) + " x " + std::to_string(cfg.codes) + ")");
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

bool ResidualVQImpl::initialized() const { return state_[0].item<int64_t>() != 0; }

void ResidualVQImpl::all_reduce(std::vector<at::Tensor>& tensors) {
  if (comm_) comm_->all_reduce_sum(tensors);
}

void ResidualVQImpl::broadcast(std::vector<at::Tensor>& tensors) {
  if (comm_) comm_->broadcast(tensors, 0);
}

namespace {

uint64_t mix64(uint64_t x) {  // splitmix64's finalizer: a cheap, well-spread hash
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

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
  for (int64_t j = 0; j < take; ++j) mine[j] = local[j].first;

  // The global choice: the `count` smallest hashes of all ranks together.
  std::vector<int64_t> all;
  if (comm_) {
    for (auto& t : comm_->all_gather(mine.to(comm_->device())))
      for (int64_t v : std::vector<int64_t>(t.to(torch::kCPU).data_ptr<int64_t>(),
                                            t.to(torch::kCPU).data_ptr<int64_t>() + count))
        all.push_back(v);
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
    picked.index_copy_(0, torch::tensor(dst, torch::kLong).to(rows.device()),
                       rows.index_select(0, torch::tensor(src, torch::kLong).to(rows.device())));
  std::vector<at::Tensor> reduce{picked};
  all_reduce(reduce);
  return reduce[0];
}

at::Tensor ResidualVQImpl::kmeans(const at::Tensor& rows, const at::Tensor& row_keys, uint64_t salt) {
  const int64_t k = cfg_.codes;
  auto centroids = sample_rows(rows, row_keys, k, salt).contiguous();  // identical on every rank
  for (int it = 0; it < cfg_.kmeans_iters; ++it) {
    auto assign = nearest_code(rows, centroids);
    auto sums = torch::zeros({k, dim_}, rows.options()).index_add_(0, assign, rows);
    auto counts = at::bincount(assign, {}, k).to(rows.scalar_type());
    std::vector<at::Tensor> stats{sums, counts};
    all_reduce(stats);
    auto used = (stats[1] > 0).unsqueeze(1);
    centroids = torch::where(used, stats[0] / stats[1].clamp_min(1).unsqueeze(1), centroids);
  }
  return centroids;
}

void ResidualVQImpl::kmeans_initialize(const at::Tensor& rows_in, const at::Tensor& row_keys_in) {
  torch::NoGradGuard no_grad;
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
  state_[0].fill_(1);
}

void ResidualVQImpl::restart_dead_codes(const std::vector<at::Tensor>& stage_inputs, const at::Tensor& row_keys) {
  torch::NoGradGuard no_grad;
  auto dead = usage_ < static_cast<double>(cfg_.dead_code_threshold);  // identical on every rank
  last_dead_.copy_(dead.sum(1));
  if (!dead.any().item<bool>()) return;
  // Salted by the restart count and stage: fresh candidates each time, the
  // same on every rank and for every world size.
  const uint64_t restarts = static_cast<uint64_t>(state_[2].item<int64_t>());
  state_[2].add_(1);
  std::vector<at::Tensor> cand;
  for (int64_t n = 0; n < cfg_.codebooks; ++n)
    cand.push_back(sample_rows(stage_inputs[n], row_keys, cfg_.codes, 1000003ull * (restarts + 1) + n));
  std::vector<at::Tensor> packed{torch::stack(cand).contiguous()};
  auto mask = dead.unsqueeze(2);
  codebooks_.copy_(torch::where(mask, packed[0], codebooks_));
  if (cfg_.ema) {
    ema_sum_.copy_(torch::where(mask, packed[0], ema_sum_));
    ema_count_.masked_fill_(dead, 1.0);
  }
}

RvqOutput ResidualVQImpl::forward(const at::Tensor& x, const at::Tensor& lengths, bool update,
                                  const at::Tensor& utterance_keys) {
  const int64_t b = x.size(0), t = x.size(1), d = x.size(2);
  const int64_t nbooks = cfg_.codebooks, k = cfg_.codes;
  auto idx = pack_frames(lengths, b, t, x.device()).rows;
  // Only valid frames are quantized: padding never reaches a codebook.
  auto rows = x.reshape({-1, d}).index_select(0, idx);
  const int64_t m = rows.size(0);
  // A key per valid frame: (utterance key, frame index). Without keys from the
  // caller, (rank, batch position) keeps them unique across ranks.
  at::Tensor row_keys;
  if (update) {
    auto ukeys = utterance_keys.defined()
                     ? utterance_keys.to(torch::kCPU, torch::kLong)
                     : torch::arange(b, torch::kLong) + (comm_ ? int64_t(comm_->rank()) << 40 : int64_t{0});
    row_keys = (ukeys.unsqueeze(1) * (int64_t{1} << 22) + torch::arange(t, torch::kLong).unsqueeze(0))
                   .reshape({-1})
                   .index_select(0, idx.to(torch::kCPU));
  }

  if (update && !initialized()) {
    if (cfg_.kmeans_init) {
      kmeans_initialize(rows, row_keys);
    } else {
      state_[0].fill_(1);
    }
  }

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
      auto commit = torch::mse_loss(z, q.detach());
      loss = loss + cfg_.commitment * commit;
      if (!cfg_.ema) loss = loss + torch::mse_loss(q, z.detach());
    }
    counts.push_back(at::bincount(code, {}, k).to(x.scalar_type()));
    if (update && cfg_.ema) sums.push_back(torch::zeros({k, d}, x.options()).index_add_(0, code, residual));
    if (update) stage_inputs.push_back(residual);
    codes.push_back(code);
    quant = quant + q.detach();
    residual = residual - q.detach();
  }

  RvqOutput out;
  auto count_mat = torch::stack(counts);  // [N, K]
  if (update) {
    torch::NoGradGuard no_grad;
    std::vector<at::Tensor> stats{count_mat};
    if (cfg_.ema) stats.push_back(torch::stack(sums));
    all_reduce(stats);
    count_mat = stats[0];
    usage_.add_(count_mat);
    if (cfg_.ema) {
      const double decay = cfg_.ema_decay, eps = 1e-5;
      ema_count_.mul_(decay).add_(count_mat, 1 - decay);
      ema_sum_.mul_(decay).add_(stats[1], 1 - decay);
      // Laplace smoothing keeps never-assigned codes from dividing by zero.
      auto total = ema_count_.sum(1, true);
      auto smoothed = (ema_count_ + eps) / (total + k * eps) * total;
      codebooks_.copy_(ema_sum_ / smoothed.unsqueeze(2));
    }
    state_[1].add_(1);
    if (state_[1].item<int64_t>() >= cfg_.dead_code_window) {
      restart_dead_codes(stage_inputs, row_keys);
      usage_.zero_();
      state_[1].zero_();
    }
  }
  for (int64_t n = 0; n < nbooks; ++n) {
    out.metrics.perplexity.push_back(perplexity(count_mat[n]));
    out.metrics.dead_codes.push_back(last_dead_[n].item<int64_t>());
  }

  // Straight-through: forward value is the quantized sum, gradient is identity.
  auto st_rows = rows + (quant - rows).detach();
  out.quantized = torch::zeros({b * t, d}, x.options()).index_copy(0, idx, st_rows).view({b, t, d});
  auto code_mat = nbooks > 0 ? torch::stack(codes, 1) : torch::zeros({m, 0}, torch::kLong);
  out.codes = torch::full({b * t, nbooks}, -1, torch::TensorOptions().dtype(torch::kLong).device(x.device()))
                  .index_copy(0, idx, code_mat)
                  .view({b, t, nbooks});
  out.loss = loss;
  return out;
}

}  // namespace asr::model
