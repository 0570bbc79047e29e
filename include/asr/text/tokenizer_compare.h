// Whether two serialized tokenizers map ids to the same pieces, and if not,
// where they first differ, in words a user can act on.
#pragma once
#include <string>

namespace asr {

// "" when `a` and `b` are the same model; otherwise the first real difference:
// the piece counts, the first id whose piece differs, or (same pieces,
// different bytes) the settings, always with both models' CRC-32C. The names
// ("the checkpoint's") say which is which.
std::string describe_tokenizer_difference(const std::string& a_bytes, const std::string& a_name,
                                          const std::string& b_bytes, const std::string& b_name);

}  // namespace asr
