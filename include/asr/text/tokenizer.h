// A sentencepiece model behind a small interface (sentencepiece's headers stay
// out of this one).
//
// CTC convention, shared with the model and the decoder: every model trained
// here has pad_id 0 with the piece "<blank>", used as the CTC blank, unk_id 1
// ("<unk>"), and no BOS/EOS. So the model's output size is vocab_size() and the
// blank is index blank_id() == 0; encode() never emits 0.
#pragma once
#include <memory>
#include <string>
#include <vector>

namespace asr {

class Tokenizer {
 public:
  // Throws asr::Error naming the file when it is missing or not a model, or
  // when the model breaks the blank convention above.
  static Tokenizer from_file(const std::string& path);
  static Tokenizer from_bytes(std::string model_bytes);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Thread-safe (const); text should already be normalize_transcript()ed.
  std::vector<int> encode(const std::string& text) const;
  std::string decode(const std::vector<int>& ids) const;
  std::string id_to_piece(int id) const;

  int vocab_size() const;
  int blank_id() const { return 0; }
  int unk_id() const { return 1; }
  // The serialized model (what tokenizer.model holds); checkpoints embed it.
  const std::string& model_bytes() const;

 struct Impl;  // opaque; public only so the implementation's helpers can build one

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct TokenizerTrainOptions {
  std::string model_type = "bpe";  // bpe, unigram or char
  int vocab_size = 256;            // an upper bound: small corpora may give fewer pieces
  std::string vocab_size_name = "the vocabulary size";  // how errors name vocab_size ("--vocab-size")
};

// The pieces a model needs before any merge: <blank>, <unk>, and one per
// distinct character of `sentences` (a space counts as sentencepiece's
// word-boundary piece, which every model has).
int required_vocab_size(const std::vector<std::string>& sentences);

// Trains on `sentences` (normalized text) in memory. Deterministic for the
// same input and options. Throws asr::Error for a bad model type, when there
// is no text to learn from, and when vocab_size < required_vocab_size (a char
// model would otherwise map the characters left out to <unk> silently).
Tokenizer train_tokenizer(const std::vector<std::string>& sentences, const TokenizerTrainOptions& options);

}  // namespace asr
