// Levenshtein alignment of token sequences, for CER (characters) and WER
// (whitespace-separated words), with substitution, deletion and insertion
// counts and an alignment printable as an sclite-style report.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace asr {

struct ErrorCounts {
  int64_t sub = 0, del = 0, ins = 0;
  int64_t ref_len = 0;  // tokens in the reference(s)

  int64_t errors() const { return sub + del + ins; }
  // errors / ref_len; an empty reference gives 0 with no errors, 1 otherwise.
  double rate() const;
  ErrorCounts& operator+=(const ErrorCounts& other);
};

enum class EditOp : char { kMatch = '=', kSub = 'S', kDel = 'D', kIns = 'I' };

// One column of an alignment; `ref` is empty for an insertion, `hyp` for a deletion.
struct AlignedPair {
  EditOp op;
  std::string ref, hyp;
};

struct Alignment {
  std::vector<AlignedPair> pairs;
  ErrorCounts counts;
};

// A minimal-cost alignment (all edits cost 1). Among equally cheap
// alignments the choice is deterministic: match/substitution first, then
// deletion, then insertion, scanning from the end.
Alignment align_tokens(const std::vector<std::string>& ref, const std::vector<std::string>& hyp);

// Only the counts, in O(min(len)) memory.
ErrorCounts count_errors(const std::vector<std::string>& ref, const std::vector<std::string>& hyp);

// Characters as UTF-8 code points, with runs of whitespace collapsed to one
// space and leading/trailing whitespace dropped (spaces count in CER).
std::vector<std::string> split_chars(std::string_view text);
// Words separated by any whitespace.
std::vector<std::string> split_words(std::string_view text);

ErrorCounts char_errors(std::string_view ref, std::string_view hyp);
ErrorCounts word_errors(std::string_view ref, std::string_view hyp);

// Three lines in the manner of sclite's pra output, columns padded to equal
// width, "*" filling gaps and errors upper-cased in EVAL:
//   REF:  the cat sat ***
//   HYP:  the bat sat on
//   EVAL:     S       I
std::string format_alignment(const Alignment& alignment);

}  // namespace asr
