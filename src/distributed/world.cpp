#include "asr/distributed/world.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "asr/core/error.h"

namespace asr::distributed {

std::string describe_ranks(std::vector<int> ranks) {
  std::sort(ranks.begin(), ranks.end());
  std::string out;
  for (size_t i = 0; i < ranks.size();) {
    size_t j = i;
    while (j + 1 < ranks.size() && ranks[j + 1] == ranks[j] + 1) ++j;
    out += out.empty() ? "" : ", ";
    out += j > i ? fmt::format("{}-{}", ranks[i], ranks[j]) : std::to_string(ranks[i]);
    i = j + 1;
  }
  return out;
}

std::string encode_report(const DeviceReport& r) {
  return (r.problem.empty() ? "ok\n" : "problem\n") + r.backend + "\n" + r.kind + "\n" + r.identity + "\n" + r.problem;
}

DeviceReport decode_report(int rank, const std::string& text) {
  DeviceReport r;
  r.rank = rank;
  std::vector<std::string> fields;
  size_t start = 0;
  for (int k = 0; k < 4; ++k) {
    const size_t nl = text.find('\n', start);
    if (nl == std::string::npos) break;
    fields.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  if (fields.size() != 4 || (fields[0] != "ok" && fields[0] != "problem")) {
    r.problem = "an unreadable report '" + text + "' (a different build?)";
    return r;
  }
  r.backend = fields[1];
  r.kind = fields[2];
  r.identity = fields[3];
  if (fields[0] == "problem") r.problem = text.substr(start);
  return r;
}

namespace {

void fail_on_problems(const std::vector<DeviceReport>& reports) {
  std::string text;
  std::vector<int> ranks;
  for (const auto& r : reports)
    if (!r.problem.empty()) {
      ranks.push_back(r.rank);
      text += fmt::format("; rank {}: {}", r.rank, r.problem);
    }
  if (!ranks.empty())
    throw Error(fmt::format("rank(s) {} cannot take part as configured{}", describe_ranks(ranks), text));
}

void fail_on_mixed_backends(const std::vector<DeviceReport>& reports) {
  std::map<std::string, std::vector<int>> by_backend;
  for (const auto& r : reports) by_backend[r.backend].push_back(r.rank);
  if (by_backend.size() < 2) return;
  std::string text;
  for (const auto& [backend, ranks] : by_backend)
    text += fmt::format("{}rank(s) {} \"{}\"", text.empty() ? "" : ", ", describe_ranks(ranks), backend);
  throw Error("the ranks ask for different dist.backend settings: " + text + "; give every rank the same config");
}

void fail_on_mixed_devices(const std::vector<DeviceReport>& reports) {
  std::map<std::string, std::vector<int>> by_kind;
  for (const auto& r : reports) by_kind[r.kind].push_back(r.rank);
  if (by_kind.size() < 2) return;
  throw Error(fmt::format("mixed world: rank(s) {} compute on CUDA, rank(s) {} on the CPU; give every rank a GPU, "
                          "or set train.device = \"cpu\" everywhere",
                          describe_ranks(by_kind["cuda"]), describe_ranks(by_kind["cpu"])));
}

// Ranks whose identity (host and GPU) another rank shares.
std::vector<int> sharing_a_gpu(const std::vector<DeviceReport>& reports) {
  std::map<std::string, std::vector<int>> by_gpu;
  for (const auto& r : reports) by_gpu[r.identity].push_back(r.rank);
  std::vector<int> shared;
  for (const auto& [gpu, ranks] : by_gpu)
    if (ranks.size() > 1) shared.insert(shared.end(), ranks.begin(), ranks.end());
  return shared;
}

}  // namespace

WorldDecision decide_world(const std::vector<DeviceReport>& reports) {
  fail_on_problems(reports);
  fail_on_mixed_backends(reports);
  fail_on_mixed_devices(reports);
  const std::string requested = reports.empty() ? "auto" : reports.front().backend;
  const bool cuda = !reports.empty() && reports.front().kind == "cuda";
  WorldDecision d;
  if (requested == "gloo" || !cuda) {
    if (requested == "nccl")
      throw Error("dist.backend = \"nccl\" but every rank computes on the CPU; use \"gloo\" or \"auto\"");
    d.backend = "gloo";
    return d;
  }
  const auto shared = sharing_a_gpu(reports);
  if (shared.empty()) {
    d.backend = "nccl";
    return d;
  }
  if (requested == "nccl")
    throw Error(fmt::format("dist.backend = \"nccl\" but rank(s) {} share a GPU, which NCCL refuses; give each rank "
                            "its own GPU, or use dist.backend = \"gloo\"",
                            describe_ranks(shared)));
  d.backend = "gloo";
  d.warning = fmt::format("rank(s) {} share a GPU, which NCCL refuses: collectives run over Gloo (through the CPU)",
                          describe_ranks(shared));
  return d;
}

}  // namespace asr::distributed
