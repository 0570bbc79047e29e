// CTC prefix beam search over one utterance's [T, V] log-probabilities, with
// optional shallow fusion of a character n-gram LM. Plain arrays, no torch:
// the decoder hands it a CPU float buffer.
//
// Each prefix carries two probabilities (paths ending in blank and in its
// last token), so every alignment of a label sequence counts towards it. A
// hypothesis is ranked by
//     log P_ctc(prefix) + lm_weight * log P_lm(text) + length_bonus * chars(text)
// and, when the search ends, by the same with the LM's end-of-sentence term.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace asr {

class CharNgramLm;
class Tokenizer;

struct LmFusion {
  const CharNgramLm* lm = nullptr;  // not owned; null = no fusion
  double weight = 0.3;
  double length_bonus = 0.5;        // per character; offsets the LM's preference for short text
  // Surface text of each token id (see token_surfaces); required with an LM.
  std::vector<std::string> token_text;
};

struct BeamSearchOptions {
  int beam = 8;            // prefixes kept after each frame
  int nbest = 1;           // hypotheses returned (at most beam + 1)
  double prune = 10.0;     // per frame, tokens more than this many nats below the frame's best are skipped
  int tokens_per_frame = 0;  // most tokens tried per frame; 0 = beam
  int64_t blank = 0;
  LmFusion fusion;
};

struct BeamHypothesis {
  std::vector<int64_t> ids;  // token ids, blanks removed
  double score = 0;          // the ranking score (equals `acoustic` without an LM)
  double acoustic = 0;       // log P_ctc(ids | audio), summed over all alignments the search kept
  double lm = 0;             // log P_lm(text + end of sentence); 0 without an LM
};

// Best first. The greedy (best-path) hypothesis is always among the
// candidates, so the best hypothesis never ranks below greedy decoding's.
// Throws asr::Error for bad options or sizes (e.g. an LM without token_text).
std::vector<BeamHypothesis> ctc_prefix_beam_search(const float* log_probs, int64_t frames, int64_t vocab,
                                                   const BeamSearchOptions& options);

// log P(labels | log_probs) under CTC: the sum over every alignment (the
// forward algorithm), for scoring a given transcript and for tests.
double ctc_sequence_log_prob(const float* log_probs, int64_t frames, int64_t vocab,
                             const std::vector<int64_t>& labels, int64_t blank = 0);

// Each token's text as it appears in a decoded transcript: sentencepiece's
// word-boundary marker becomes a space, and the blank and <unk> are empty.
std::vector<std::string> token_surfaces(const Tokenizer& tokenizer);

}  // namespace asr
