#include "asr/decode/scoring.h"

#include <fmt/format.h>

#include <fstream>

#include "asr/core/error.h"
#include "asr/core/file_checks.h"
#include "asr/text/normalize.h"

namespace asr {

std::map<std::string, std::string> read_reference_tsv(const std::string& path) {
  require_regular_input(path, "--refs");
  std::ifstream in(path);
  if (!in) throw Error("references " + path + ": cannot open the file");
  std::map<std::string, std::string> refs;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    const size_t tab = line.find('\t');
    const std::string where = "references " + path + " line " + std::to_string(n);
    if (tab == std::string::npos) throw Error(where + ": expected 'id<TAB>text'");
    std::string id = line.substr(0, tab);
    if (id.empty()) throw Error(where + ": empty utterance id");
    if (!refs.emplace(id, line.substr(tab + 1)).second) throw Error(where + ": utterance id '" + id + "' appears twice");
  }
  if (in.bad()) throw Error("references " + path + ": read error");
  return refs;
}

UtteranceScore score_utterance(const std::string& id, const std::string& reference, const std::string& hypothesis) {
  UtteranceScore u;
  u.id = id;
  // Both sides normalized alike (training evaluation does the same): a
  // hypothesis's <unk> pieces (" ⁇ ") and stray spaces are not characters a
  // reference can hold.
  u.reference = normalize_transcript(reference);
  u.hypothesis = normalize_transcript(hypothesis);
  u.chars = char_errors(u.reference, u.hypothesis);
  u.word_alignment = align_tokens(split_words(u.reference), split_words(u.hypothesis));
  u.words = u.word_alignment.counts;
  return u;
}

void ScoreSummary::add(const UtteranceScore& u) {
  chars += u.chars;
  words += u.words;
  ++utterances;
  if (u.words.errors() > 0 || u.chars.errors() > 0) ++sentences_with_errors;
}

namespace {
std::string line(const char* name, const ErrorCounts& c, const char* unit) {
  return fmt::format("{} {:.2f}% (S {} D {} I {} / {} {})", name, 100.0 * c.rate(), c.sub, c.del, c.ins, c.ref_len, unit);
}
}  // namespace

std::string ScoreSummary::format() const {
  return line("CER", chars, "chars") + "\n" + line("WER", words, "words") + fmt::format(
      "\n{} utterances, {} with errors", utterances, sentences_with_errors);
}

std::string format_utterance_report(const UtteranceScore& u) {
  const ErrorCounts& w = u.words;
  const int64_t correct = w.ref_len - w.sub - w.del;
  return fmt::format("id: ({})\nScores: (#C #S #D #I) {} {} {} {}\nCER: {:.2f}% ({} char errors / {})\n{}\n", u.id,
                     correct, w.sub, w.del, w.ins, 100.0 * u.chars.rate(), u.chars.errors(), u.chars.ref_len,
                     format_alignment(u.word_alignment));
}

}  // namespace asr
