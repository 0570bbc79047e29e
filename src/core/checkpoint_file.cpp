#include "asr/core/checkpoint_file.h"

#include <cstring>

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
  throw DataError("checkpoint " + source + " " + problem);
}

}  // namespace

const std::string& CheckpointData::at(const std::string& name) const {
  auto it = sections.find(name);
  if (it == sections.end()) throw DataError("checkpoint has no '" + name + "' section");
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

}  // namespace asr
