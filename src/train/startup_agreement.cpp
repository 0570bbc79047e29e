#include "asr/train/startup_agreement.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "asr/core/crc32c.h"
#include "asr/core/error.h"
#include "asr/distributed/communicator.h"
#include "asr/train/config.h"

namespace asr {
namespace {

// Keys that change nothing that crosses ranks: a rank may log more than another.
const std::set<std::string> kPerRankKeys = {"log.level", "log.progress"};

// How many differing ranks have their config keys spelled out (one
// broadcast each); the others are only counted.
constexpr size_t kRanksSpelledOut = 3;

enum Item { kConfig = 0, kManifest = 1, kBinary = 2, kItems = 3 };

// CRC-32C of a file's bytes; 0 when it cannot be read (a missing manifest
// is the dataset's to report, with its own message).
uint32_t file_crc(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return 0;
  uint32_t crc = 0;
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), std::streamsize(buffer.size()));
    crc = crc32c_extend(crc, buffer.data(), size_t(in.gcount()));
  }
  return crc;
}

std::string canonical_text(const std::map<std::string, std::string>& config) {
  std::string text;
  for (const auto& [key, value] : config) text += key + " = " + value + "\n";
  return text;
}

std::string manifest_path(const TrainConfig& config) { return config.data.dir + "/manifest.json"; }

std::string crc_text(int64_t crc) { return crc == 0 ? "missing" : "CRC-32C " + to_hex32(uint32_t(crc)); }

// Ranks whose item differs from rank 0's.
std::vector<int> ranks_differing(const std::vector<at::Tensor>& all, Item item) {
  std::vector<int> ranks;
  const int64_t root = all[0][item].item<int64_t>();
  for (size_t r = 1; r < all.size(); ++r)
    if (all[r][item].item<int64_t>() != root) ranks.push_back(int(r));
  return ranks;
}

// Rank 0's canonical config goes to every rank; each differing rank (the
// first few) then tells every rank which of its keys differ.
std::string config_problem(distributed::Communicator& comm, const std::vector<int>& ranks, const std::string& mine) {
  std::string rank0 = mine;
  comm.broadcast_bytes(rank0, 0);
  std::string text;
  for (size_t i = 0; i < ranks.size() && i < kRanksSpelledOut; ++i) {
    std::string part = comm.rank() == ranks[i]
                           ? describe_config_difference(ranks[i], comparable_config(mine), comparable_config(rank0))
                           : "";
    comm.broadcast_bytes(part, ranks[i]);
    text += (text.empty() ? "" : "; ") + part;
  }
  if (ranks.size() > kRanksSpelledOut)
    text += fmt::format("; and {} more rank(s) differ", ranks.size() - kRanksSpelledOut);
  return text + ". Start every rank with the same config file and --set flags";
}

std::string checksum_problem(const std::vector<at::Tensor>& all, const std::vector<int>& ranks, Item item,
                             const std::string& what, const std::string& fix) {
  std::string list;
  for (size_t i = 0; i < ranks.size() && i < 4; ++i)
    list += fmt::format(", {} on rank {}", crc_text(all[size_t(ranks[i])][item].item<int64_t>()), ranks[i]);
  return fmt::format("{} differs from rank 0's ({} on rank 0{}{}): {}", what, crc_text(all[0][item].item<int64_t>()),
                     list, ranks.size() > 4 ? ", ..." : "", fix);
}

}  // namespace

std::map<std::string, std::string> comparable_config(const std::string& toml_text) {
  std::map<std::string, std::string> out;
  std::istringstream in(toml_text);
  std::string line, section;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line.front() == '[' && line.back() == ']') {
      section = line.substr(1, line.size() - 2) + ".";
      continue;
    }
    const auto eq = line.find(" = ");
    if (eq == std::string::npos) continue;
    const std::string key = section + line.substr(0, eq);
    if (!kPerRankKeys.count(key)) out[key] = line.substr(eq + 3);
  }
  return out;
}

std::string describe_config_difference(int rank, const std::map<std::string, std::string>& mine,
                                       const std::map<std::string, std::string>& rank0, size_t limit) {
  std::set<std::string> keys;
  for (const auto& kv : mine) keys.insert(kv.first);
  for (const auto& kv : rank0) keys.insert(kv.first);
  std::vector<std::string> parts;
  for (const auto& key : keys) {
    const auto a = mine.find(key), b = rank0.find(key);
    const std::string here = a == mine.end() ? "no such key" : a->second;
    const std::string there = b == rank0.end() ? "no such key" : b->second;
    if (here != there) parts.push_back(fmt::format("rank {} has {} = {}, rank 0 has {}", rank, key, here, there));
  }
  std::string text;
  for (size_t i = 0; i < parts.size() && i < limit; ++i) text += (i ? ", " : "") + parts[i];
  if (parts.size() > limit) text += fmt::format(" (and {} more keys)", parts.size() - limit);
  return text;
}

void check_startup_agreement(const TrainConfig& config, distributed::Communicator& comm) {
  if (comm.world_size() == 1) return;
  const std::string canonical = canonical_text(comparable_config(config_to_toml(config)));
  // The executable itself stands for the build: any rebuild of any source
  // changes it, and ranks started from one shared binary always agree.
  const std::vector<int64_t> mine = {crc32c(canonical.data(), canonical.size()), file_crc(manifest_path(config)),
                                     file_crc("/proc/self/exe")};
  const auto all = comm.all_gather(at::tensor(mine, at::kLong));
  std::vector<std::string> problems;
  if (auto ranks = ranks_differing(all, kConfig); !ranks.empty())
    problems.push_back(config_problem(comm, ranks, canonical));
  if (auto ranks = ranks_differing(all, kManifest); !ranks.empty())
    problems.push_back(checksum_problem(all, ranks, kManifest, "the dataset manifest " + manifest_path(config),
                                        "every rank must read the same preprocessed dataset"));
  if (auto ranks = ranks_differing(all, kBinary); !ranks.empty())
    problems.push_back(checksum_problem(all, ranks, kBinary, "the asr_ddp executable",
                                        "start every rank from the same build (one shared binary)"));
  if (problems.empty()) return;
  std::string text = "the ranks do not run the same job: ";
  for (size_t i = 0; i < problems.size(); ++i) text += (i ? "; " : "") + problems[i];
  throw Error(text);
}

}  // namespace asr
