// Scoring transcripts against references: corpus CER and WER with
// substitution/deletion/insertion counts, and a per-utterance report in the
// manner of sclite's .pra files. References are normalize_transcript()ed
// (the text space the model is trained in); hypotheses are scored as decoded,
// exactly as the trainer's evaluation scores them.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "asr/text/edit_distance.h"

namespace asr {

// `id<TAB>text` per line; blank lines and lines starting with '#' are
// skipped. Throws asr::Error naming the file and line for a line without a
// tab, an empty id or a repeated id, and asr::DataError before opening
// anything but a regular file (a FIFO would block).
std::map<std::string, std::string> read_reference_tsv(const std::string& path);

struct UtteranceScore {
  std::string id, reference, hypothesis;  // both normalized (normalize_transcript)
  ErrorCounts chars, words;
  Alignment word_alignment;
};

UtteranceScore score_utterance(const std::string& id, const std::string& reference, const std::string& hypothesis);

// Corpus totals, accumulated utterance by utterance.
struct ScoreSummary {
  ErrorCounts chars, words;
  int64_t utterances = 0;
  int64_t sentences_with_errors = 0;

  void add(const UtteranceScore& u);
  // Two lines: "CER 12.50% (S 3 D 1 I 0 / 32 chars)" and the same for WER.
  std::string format() const;
};

// One utterance's block of the report: id, counts, REF/HYP/EVAL lines.
std::string format_utterance_report(const UtteranceScore& u);

}  // namespace asr
