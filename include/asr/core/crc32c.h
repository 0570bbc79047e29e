// CRC-32C (Castagnoli), used for shard checksums in the manifest and for the
// masked CRCs of TensorBoard's TFRecord framing.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace asr {

// Extends `crc` (0 to start) with `size` bytes.
uint32_t crc32c_extend(uint32_t crc, const void* data, size_t size);
inline uint32_t crc32c(const void* data, size_t size) { return crc32c_extend(0, data, size); }

// TFRecord's masking: rotate right by 15 and add a constant.
inline uint32_t crc32c_mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

// CRC-32C of a whole file, as 8 lowercase hex digits; throws asr::Error naming the file.
std::string crc32c_file_hex(const std::string& path);
std::string to_hex32(uint32_t value);

}  // namespace asr
