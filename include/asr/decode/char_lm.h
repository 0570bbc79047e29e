// A character n-gram language model for shallow fusion in CTC beam search.
//
// Trained in memory from normalized transcripts (normalize_transcript output,
// which is ASCII: [a-z0-9' ]), so a "character" is a byte. Probabilities use
// interpolated Witten-Bell smoothing down to a uniform distribution over the
// characters seen in training plus one for anything unseen, so every string
// gets a finite score. Training on a whole corpus takes well under a second,
// which is why models are rebuilt rather than stored.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace asr {

class CharNgramLm {
 public:
  static constexpr char kBos = '\x02';  // start of sentence (never predicted)
  static constexpr char kEos = '\n';    // end of sentence

  // Memory and training time grow with the order (every position of the
  // text adds one context per order): on LJSpeech's 1.2M characters order 6
  // takes ~6 s and ~200 MB, order 10 ~16 s and ~400 MB, order 24 over 2 GB,
  // and past ~10 almost every context is seen once, so the model only
  // memorizes its text.
  static constexpr int kMaxOrder = 10;

  // `order` in [1, kMaxOrder] is the n of the n-gram (contexts of up to
  // order-1 characters). Throws asr::Error for another order or no text.
  static CharNgramLm train(const std::vector<std::string>& sentences, int order);

  CharNgramLm(CharNgramLm&&) noexcept;
  CharNgramLm& operator=(CharNgramLm&&) noexcept;
  ~CharNgramLm();

  int order() const;
  // Natural-log probability of `next` after `context` (only its last
  // order-1 characters matter; start a sentence with a context of kBos).
  double log_prob(std::string_view context, char next) const;
  // Scores `text` character by character after `context`, which is updated
  // in place and trimmed to the last order-1 characters. Returns the sum.
  double extend(std::string& context, std::string_view text) const;
  // log P(sentence + EOS | BOS).
  double sentence_log_prob(std::string_view sentence) const;
  // Per-character perplexity (EOS included) over `sentences`.
  double perplexity(const std::vector<std::string>& sentences) const;

  size_t num_contexts() const;

  struct Impl;  // opaque

 private:
  explicit CharNgramLm(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace asr

namespace asr {

// Transcripts for training a CharNgramLm from a text file, normalized. Each
// line is LJSpeech's metadata.csv form (id|raw|normalized: the last
// non-empty field is used), `id<TAB>text`, or plain text without an id.
// Lines whose id is in `exclude_ids`, or whose normalized text equals one of
// `exclude_texts` (normalized here), are dropped, so that references being
// scored never train the LM, not even as a repeat under another id (a
// synthetic corpus speaks some sentences twice); `excluded` receives their number. Throws
// asr::Error naming the file when it cannot be read or yields no text, and
// asr::DataError before opening anything but a regular file (a FIFO would block).
struct LmCorpus {
  std::vector<std::string> sentences;
  size_t excluded = 0;
};
LmCorpus read_lm_corpus(const std::string& path, const std::vector<std::string>& exclude_ids,
                        const std::vector<std::string>& exclude_texts = {});

}  // namespace asr
