#include "asr/text/tokenizer_compare.h"

#include <fmt/format.h>

#include <algorithm>

#include "asr/core/crc32c.h"
#include "asr/text/tokenizer.h"

namespace asr {

namespace {

uint32_t checksum(const std::string& bytes) { return crc32c(bytes.data(), bytes.size()); }

std::string first_piece_difference(const Tokenizer& a, const std::string& a_name, const Tokenizer& b,
                                   const std::string& b_name) {
  const int n = std::min(a.vocab_size(), b.vocab_size());
  for (int id = 0; id < n; ++id)
    if (a.id_to_piece(id) != b.id_to_piece(id))
      return fmt::format("token id {} is '{}' in {} and '{}' in {}", id, a.id_to_piece(id), a_name, b.id_to_piece(id),
                         b_name);
  return "";
}

}  // namespace

std::string describe_tokenizer_difference(const std::string& a_bytes, const std::string& a_name,
                                          const std::string& b_bytes, const std::string& b_name) {
  if (a_bytes == b_bytes) return "";
  const Tokenizer a = Tokenizer::from_bytes(a_bytes), b = Tokenizer::from_bytes(b_bytes);
  std::string what;
  if (a.vocab_size() != b.vocab_size())
    what = fmt::format("{} has {} pieces, {} {}", a_name, a.vocab_size(), b_name, b.vocab_size());
  else
    what = first_piece_difference(a, a_name, b, b_name);
  if (what.empty()) what = "both have the same pieces but different model settings (normalization or scoring)";
  return what + fmt::format(" (CRC-32C {:08x} vs {:08x})", checksum(a_bytes), checksum(b_bytes));
}

}  // namespace asr
