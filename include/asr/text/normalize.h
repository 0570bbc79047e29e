// Transcript normalization for CTC targets. The rules (docs/data-format.md
// repeats them for people reading shards from Python):
//  1. ASCII letters are lower-cased; digits 0-9 are kept as they are.
//  2. Latin letters with diacritics (U+00C0-U+017F) lose them: "é" -> "e",
//     "Ł" -> "l"; ligatures and special letters spell out: "æ" -> "ae",
//     "œ" -> "oe", "ß" -> "ss", "þ" -> "th", "ĳ" -> "ij". Combining marks
//     (U+0300-U+036F) are dropped, so decomposed "e\u0301" is "e" too.
//  3. A few symbols become words: "&" and, "£" pounds, "$" dollars, "€" euros,
//     "%" percent, "@" at, "+" plus.
//  4. An apostrophe (' ’ ‘) is kept as ' only between two letters or digits
//     ("don't"); elsewhere it is a space.
//  5. Every other character (punctuation, dashes, other scripts, control
//     characters, invalid UTF-8 bytes) becomes a space.
//  6. Runs of spaces collapse to one; leading and trailing spaces go.
// The result only ever holds [a-z0-9' ] and may be empty.
#pragma once
#include <string>
#include <string_view>

namespace asr {

std::string normalize_transcript(std::string_view text);

// Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
bool is_valid_utf8(std::string_view text);

}  // namespace asr
