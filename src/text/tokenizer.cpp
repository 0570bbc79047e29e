#include "asr/text/tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <unordered_map>

#include "asr/core/atomic_file.h"
#include "asr/core/error.h"

namespace asr {

struct Tokenizer::Impl {
  sentencepiece::SentencePieceProcessor sp;
  std::string bytes;
};

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

namespace {

std::unique_ptr<Tokenizer::Impl> load_model(std::string bytes, const std::string& what);

}  // namespace

Tokenizer Tokenizer::from_bytes(std::string model_bytes) {
  return Tokenizer(load_model(std::move(model_bytes), "tokenizer model"));
}

Tokenizer Tokenizer::from_file(const std::string& path) {
  std::string bytes;
  try {
    bytes = read_file(path);
  } catch (const Error& e) {
    throw Error("cannot read tokenizer " + path + ": " + e.what());
  }
  return Tokenizer(load_model(std::move(bytes), "tokenizer " + path));
}

namespace {

std::unique_ptr<Tokenizer::Impl> load_model(std::string bytes, const std::string& what) {
  auto impl = std::make_unique<Tokenizer::Impl>();
  auto status = impl->sp.LoadFromSerializedProto(bytes);
  if (!status.ok()) throw Error(what + " is not a sentencepiece model: " + status.ToString());
  if (impl->sp.pad_id() != 0 || impl->sp.unk_id() != 1 || impl->sp.bos_id() >= 0 || impl->sp.eos_id() >= 0)
    throw Error(what + " does not follow the CTC convention (pad/blank id 0, unk id 1, no bos/eos); "
                "train it with asr_preprocess");
  impl->bytes = std::move(bytes);
  return impl;
}

class VectorIterator : public sentencepiece::SentenceIterator {
 public:
  explicit VectorIterator(const std::vector<std::string>& v) : v_(v) {}
  bool done() const override { return i_ >= v_.size(); }
  void Next() override { ++i_; }
  const std::string& value() const override { return v_[i_]; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  const std::vector<std::string>& v_;
  size_t i_ = 0;
};

}  // namespace

std::vector<int> Tokenizer::encode(const std::string& text) const {
  std::vector<int> ids;
  auto status = impl_->sp.Encode(text, &ids);
  if (!status.ok()) throw Error("tokenizer cannot encode text: " + status.ToString());
  return ids;
}

std::string Tokenizer::decode(const std::vector<int>& ids) const {
  std::vector<int> kept;
  kept.reserve(ids.size());
  const int n = vocab_size();
  for (int id : ids)
    if (id > 0 && id < n) kept.push_back(id);  // blanks and out-of-range ids carry no text
  std::string text;
  auto status = impl_->sp.Decode(kept, &text);
  if (!status.ok()) throw Error("tokenizer cannot decode ids: " + status.ToString());
  return text;
}

std::string Tokenizer::id_to_piece(int id) const {
  if (id < 0 || id >= vocab_size()) return "";
  return impl_->sp.IdToPiece(id);
}

int Tokenizer::vocab_size() const { return impl_->sp.GetPieceSize(); }
const std::string& Tokenizer::model_bytes() const { return impl_->bytes; }

Tokenizer train_tokenizer(const std::vector<std::string>& sentences, const TokenizerTrainOptions& options) {
  const std::string& type = options.model_type;
  if (type != "bpe" && type != "unigram" && type != "char")
    throw Error("unknown tokenizer type '" + type + "': use bpe, unigram or char");
  if (options.vocab_size < 3) throw Error("tokenizer vocabulary size must be at least 3");
  bool any = false;
  for (const auto& s : sentences) any = any || !s.empty();
  if (!any) throw Error("no transcript text to train the tokenizer on");

  std::unordered_map<std::string, std::string> args{
      {"model_type", type},
      {"vocab_size", std::to_string(options.vocab_size)},
      // Small corpora cannot always fill the requested vocabulary; take what they give.
      {"hard_vocab_limit", "false"},
      {"character_coverage", "1.0"},
      {"normalization_rule_name", "identity"},
      {"pad_id", "0"},
      {"pad_piece", "<blank>"},
      {"unk_id", "1"},
      {"bos_id", "-1"},
      {"eos_id", "-1"},
      {"input_sentence_size", "0"},
      {"shuffle_input_sentence", "false"},
      // The model file records the trainer's settings, thread count included;
      // a fixed count keeps tokenizer.model byte-identical whatever --threads is.
      {"num_threads", "1"},
      {"minloglevel", "2"},
  };
  VectorIterator it(sentences);
  std::string model;
  auto status = sentencepiece::SentencePieceTrainer::Train(args, &it, &model);
  if (!status.ok()) throw Error("tokenizer training failed: " + status.ToString());
  return Tokenizer::from_bytes(std::move(model));
}

}  // namespace asr
