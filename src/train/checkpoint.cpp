#include "asr/train/checkpoint.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <regex>

#include "asr/core/atomic_file.h"
#include "asr/core/crc32c.h"
#include "asr/core/error.h"

namespace asr {
namespace fs = std::filesystem;

namespace {

// Layout (little-endian): magic[8] version:u32 count:u32 total_size:u64, then
// per section name_len:u32 name data_len:u64 data, then crc32c:u32 of all
// preceding bytes. total_size lets a short file read as "truncated" rather
// than as a generic CRC failure.
constexpr char kMagic[8] = {'A', 'S', 'R', 'C', 'K', 'P', 'T', '\0'};
constexpr size_t kHeaderSize = 8 + 4 + 4 + 8;
constexpr size_t kFooterSize = 4;

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t get_le(const std::string& in, size_t pos, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(in[pos + i])) << (8 * i);
  return v;
}

[[noreturn]] void bad(const std::string& source, const std::string& problem) {
  throw Error("checkpoint " + source + " " + problem);
}

}  // namespace

const std::string& CheckpointData::at(const std::string& name) const {
  auto it = sections.find(name);
  if (it == sections.end()) throw Error("checkpoint has no '" + name + "' section");
  return it->second;
}

std::string encode_checkpoint(const CheckpointData& data) {
  size_t total = kHeaderSize + kFooterSize;
  for (const auto& [name, bytes] : data.sections) total += 4 + name.size() + 8 + bytes.size();
  std::string out;
  out.reserve(total);
  out.append(kMagic, sizeof kMagic);
  put_u32(out, kCheckpointFormatVersion);
  put_u32(out, static_cast<uint32_t>(data.sections.size()));
  put_u64(out, total);
  for (const auto& [name, bytes] : data.sections) {
    put_u32(out, static_cast<uint32_t>(name.size()));
    out += name;
    put_u64(out, bytes.size());
    out += bytes;
  }
  put_u32(out, crc32c(out.data(), out.size()));
  return out;
}

CheckpointData decode_checkpoint(const std::string& in, const std::string& source) {
  if (in.size() < sizeof kMagic || std::memcmp(in.data(), kMagic, sizeof kMagic) != 0)
    bad(source, "is not an asr_ddp checkpoint (wrong magic bytes)");
  if (in.size() < kHeaderSize + kFooterSize)
    bad(source, "is truncated (" + std::to_string(in.size()) + " bytes, shorter than the header)");
  uint32_t version = static_cast<uint32_t>(get_le(in, 8, 4));
  if (version != kCheckpointFormatVersion)
    bad(source, "has format version " + std::to_string(version) + ", but this build reads version " +
                    std::to_string(kCheckpointFormatVersion));
  uint32_t count = static_cast<uint32_t>(get_le(in, 12, 4));
  uint64_t total = get_le(in, 16, 8);
  if (in.size() < total)
    bad(source, "is truncated (" + std::to_string(in.size()) + " of " + std::to_string(total) +
                    " bytes; an interrupted copy?)");
  if (in.size() > total)
    bad(source, "is corrupt (" + std::to_string(in.size() - total) + " unexpected bytes after the end)");
  uint32_t stored = static_cast<uint32_t>(get_le(in, total - kFooterSize, 4));
  uint32_t actual = crc32c(in.data(), total - kFooterSize);
  if (stored != actual)
    bad(source, "is corrupt (CRC-32C " + to_hex32(actual) + " does not match the stored " + to_hex32(stored) + ")");

  CheckpointData data;
  size_t pos = kHeaderSize, end = total - kFooterSize;
  for (uint32_t i = 0; i < count; ++i) {
    if (end - pos < 4) bad(source, "is corrupt (section table overruns the file)");
    uint64_t name_len = get_le(in, pos, 4);
    pos += 4;
    if (end - pos < name_len + 8) bad(source, "is corrupt (section name overruns the file)");
    std::string name = in.substr(pos, name_len);
    pos += name_len;
    uint64_t len = get_le(in, pos, 8);
    pos += 8;
    if (end - pos < len) bad(source, "is corrupt (section '" + name + "' overruns the file)");
    data.sections[name] = in.substr(pos, len);
    pos += len;
  }
  if (pos != end) bad(source, "is corrupt (bytes left after the last section)");
  return data;
}

void save_checkpoint(const fs::path& path, const CheckpointData& data) {
  write_file_atomic(path, encode_checkpoint(data));
}

CheckpointData load_checkpoint(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error("checkpoint " + path.string() + " does not exist");
  if (!fs::is_regular_file(path, ec)) throw Error("checkpoint " + path.string() + " is not a regular file");
  return decode_checkpoint(read_file(path), path.string());
}

std::vector<std::pair<int64_t, fs::path>> list_checkpoints(const fs::path& run_dir) {
  std::vector<std::pair<int64_t, fs::path>> out;
  fs::path dir = run_dir / "checkpoints";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  static const std::regex pattern("step-([0-9]+)\\.ckpt");
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::smatch m;
    std::string name = entry.path().filename().string();
    if (entry.is_regular_file() && std::regex_match(name, m, pattern))
      out.emplace_back(std::stoll(m[1].str()), entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<fs::path> find_latest_valid(const fs::path& run_dir) {
  auto all = list_checkpoints(run_dir);
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    try {
      load_checkpoint(it->second);
      return it->second;
    } catch (const Error& e) {
      spdlog::warn("skipping checkpoint: {}", e.what());
    }
  }
  return std::nullopt;
}

CheckpointManager::CheckpointManager(fs::path run_dir, int keep_last, bool keep_best)
    : dir_(run_dir / "checkpoints"), keep_last_(keep_last), keep_best_(keep_best) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw Error("cannot create checkpoint directory " + dir_.string() + ": " + ec.message());
  // Temporary files of an interrupted save are never valid; clear them.
  for (const auto& entry : fs::directory_iterator(dir_)) {
    std::string name = entry.path().filename().string();
    if (name.size() > 1 && name[0] == '.' && name.find(".tmp.") != std::string::npos) fs::remove(entry.path(), ec);
  }
  fs::path best_json = dir_ / "best.json";
  if (keep_best_ && fs::exists(best_json, ec)) {
    try {
      auto j = nlohmann::json::parse(read_file(best_json));
      best_metric_ = j.at("metric").get<double>();
      best_step_ = j.at("step").get<int64_t>();
    } catch (const std::exception& e) {
      spdlog::warn("ignoring unreadable {}: {}", best_json.string(), e.what());
    }
  }
}

fs::path CheckpointManager::path_for(const fs::path& run_dir, int64_t step) {
  char name[64];
  std::snprintf(name, sizeof name, "step-%09lld.ckpt", static_cast<long long>(step));
  return run_dir / "checkpoints" / name;
}

fs::path CheckpointManager::save(int64_t step, const CheckpointData& data, std::optional<double> metric) {
  fs::path path = dir_ / path_for("", step).filename();
  save_checkpoint(path, data);
  if (keep_best_ && metric && (!best_metric_ || *metric < *best_metric_)) {
    // A hard link costs no space while the step file exists and keeps the
    // best alive after retention deletes it; copy where links are refused.
    fs::path best = dir_ / "best.ckpt", tmp = temp_path_for(best);
    std::error_code ec;
    fs::remove(tmp, ec);
    fs::create_hard_link(path, tmp, ec);
    if (ec) {
      fs::copy_file(path, tmp, fs::copy_options::overwrite_existing);
      fsync_path(tmp);
    }
    rename_durable(tmp, best);
    best_metric_ = *metric;
    best_step_ = step;
    nlohmann::json j = {{"step", step}, {"metric", *metric}, {"file", path.filename().string()}};
    write_file_atomic(dir_ / "best.json", j.dump() + "\n");
  }
  prune();
  return path;
}

void CheckpointManager::prune() {
  if (keep_last_ <= 0) return;
  auto all = list_checkpoints(dir_.parent_path());
  if (all.size() <= static_cast<size_t>(keep_last_)) return;
  for (size_t i = 0; i + keep_last_ < all.size(); ++i) {
    std::error_code ec;
    fs::remove(all[i].second, ec);
    if (ec) spdlog::warn("cannot remove old checkpoint {}: {}", all[i].second.string(), ec.message());
  }
}

}  // namespace asr
