// "Did you mean ...?" for names a user can misspell (config keys, choices).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace asr {

// Byte-wise edit distance (insertions, deletions, substitutions cost 1).
int64_t levenshtein(std::string_view a, std::string_view b);

// The candidate closest to `name` within `max_distance` edits, or "" when
// none is that close. Ties go to the earlier candidate.
std::string closest_match(std::string_view name, const std::vector<std::string>& candidates,
                          int64_t max_distance = 3);

}  // namespace asr
