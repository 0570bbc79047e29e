// Ways to damage a preprocessed directory the way users and disks do, for
// the tests that the Dataset (tests/data) and the binaries (tests/decode)
// catch each one: a flipped byte, a hand-edited manifest, a token id written
// outside the vocabulary, a FIFO where a file should be.
#pragma once
#include <fcntl.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "asr/core/crc32c.h"

namespace asr::test {

inline void flip_byte(const std::filesystem::path& file, std::streamoff offset) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(offset);
  char c = 0;
  f.read(&c, 1);
  c ^= 0x10;
  f.seekp(offset);
  f.write(&c, 1);
  if (!f) throw std::runtime_error("cannot flip a byte of " + file.string());
}

// The file offset of a shard's first audio sample: a byte flipped there
// damages audio only, which a reader without checksums cannot notice.
inline std::streamoff audio_byte_offset(const std::filesystem::path& shard) {
  const hid_t file = H5Fopen(shard.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  const hid_t ds = H5Dopen2(file, "audio", H5P_DEFAULT);
  const hsize_t first[1] = {0};
  hsize_t size = 0;
  haddr_t addr = HADDR_UNDEF;
  unsigned mask = 0;
  const herr_t rc = H5Dget_chunk_info_by_coord(ds, first, &mask, &addr, &size);
  H5Dclose(ds);
  H5Fclose(file);
  if (rc < 0 || addr == HADDR_UNDEF) throw std::runtime_error("no audio chunk in " + shard.string());
  return static_cast<std::streamoff>(addr);
}

inline nlohmann::json read_manifest(const std::filesystem::path& dir) {
  std::ifstream in(dir / "manifest.json");
  return nlohmann::json::parse(in);
}

inline void write_manifest(const std::filesystem::path& dir, const nlohmann::json& m) {
  std::ofstream(dir / "manifest.json", std::ios::trunc) << m.dump(2);
}

// Edits the manifest with `edit` (a hand edit).
inline void edit_manifest(const std::filesystem::path& dir, const std::function<void(nlohmann::json&)>& edit) {
  auto m = read_manifest(dir);
  edit(m);
  write_manifest(dir, m);
}

// Records `file`'s current CRC-32C and size in the manifest, as if it had
// been written that way: only the checks after the checksum can then notice.
inline void refresh_checksum(const std::filesystem::path& dir, const std::string& file) {
  edit_manifest(dir, [&](nlohmann::json& m) {
    for (auto& [name, split] : m["splits"].items())
      for (auto& s : split["shards"])
        if (s["file"] == file) {
          s["crc32c"] = crc32c_file_hex((dir / file).string());
          s["bytes"] = std::filesystem::file_size(dir / file);
        }
  });
}

// Overwrites token `index` of a shard's concatenated token ids, in place.
inline void write_token(const std::filesystem::path& shard, size_t index, int32_t id) {
  const hid_t file = H5Fopen(shard.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  if (file < 0) throw std::runtime_error("cannot open " + shard.string());
  const hid_t ds = H5Dopen2(file, "tokens", H5P_DEFAULT);
  const hid_t space = H5Dget_space(ds);
  std::vector<int32_t> tokens(static_cast<size_t>(H5Sget_simple_extent_npoints(space)));
  herr_t rc = H5Dread(ds, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, tokens.data());
  tokens.at(index) = id;
  rc |= H5Dwrite(ds, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, tokens.data());
  H5Sclose(space);
  H5Dclose(ds);
  rc |= H5Fclose(file);
  if (rc < 0) throw std::runtime_error("cannot rewrite the tokens of " + shard.string());
}

// Replaces `file` with a FIFO. While alive, keeps opening the FIFO's writing
// end (without blocking) and closing it again, so a reader that wrongly
// opened the FIFO sees end-of-file after `grace` instead of hanging the test:
// the test then fails on the error message rather than never ending.
class FifoInPlaceOf {
 public:
  explicit FifoInPlaceOf(const std::filesystem::path& file, std::chrono::milliseconds grace = std::chrono::seconds(3))
      : path_(file) {
    std::filesystem::remove(file);
    if (::mkfifo(file.c_str(), 0644) != 0) throw std::runtime_error("mkfifo " + file.string());
    unblocker_ = std::thread([this, grace] {
      const auto start = std::chrono::steady_clock::now();
      while (!done_) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        if (std::chrono::steady_clock::now() - start < grace) continue;
        const int fd = ::open(path_.c_str(), O_WRONLY | O_NONBLOCK);
        if (fd >= 0) ::close(fd);
      }
    });
  }
  ~FifoInPlaceOf() {
    done_ = true;
    unblocker_.join();
  }

 private:
  std::filesystem::path path_;
  std::atomic<bool> done_{false};
  std::thread unblocker_;
};

}  // namespace asr::test
