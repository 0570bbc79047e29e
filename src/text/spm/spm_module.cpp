// The only translation unit that includes sentencepiece; built as the
// runtime-loaded module asr_sentencepiece.so (see spm_api.h for why).
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include "spm_api.h"

namespace {

class SpmProcessor : public asr::spm::Processor {
 public:
  bool load(const std::string& bytes, std::string* error) {
    auto status = sp_.LoadFromSerializedProto(bytes);
    if (!status.ok()) *error = status.ToString();
    return status.ok();
  }
  bool encode(const std::string& text, std::vector<int>* ids, std::string* error) const override {
    auto status = sp_.Encode(text, ids);
    if (!status.ok()) *error = status.ToString();
    return status.ok();
  }
  bool decode(const std::vector<int>& ids, std::string* text, std::string* error) const override {
    auto status = sp_.Decode(ids, text);
    if (!status.ok()) *error = status.ToString();
    return status.ok();
  }
  std::string id_to_piece(int id) const override { return sp_.IdToPiece(id); }
  int piece_size() const override { return sp_.GetPieceSize(); }
  int pad_id() const override { return sp_.pad_id(); }
  int unk_id() const override { return sp_.unk_id(); }
  int bos_id() const override { return sp_.bos_id(); }
  int eos_id() const override { return sp_.eos_id(); }

 private:
  sentencepiece::SentencePieceProcessor sp_;
};

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

asr::spm::Processor* load(const std::string& bytes, std::string* error) {
  try {
    auto p = new SpmProcessor();
    if (p->load(bytes, error)) return p;
    delete p;
  } catch (const std::exception& e) {
    *error = e.what();
  }
  return nullptr;
}

bool train(const std::vector<std::string>& sentences, const std::unordered_map<std::string, std::string>& args,
           std::string* model, std::string* error) {
  try {
    VectorIterator it(sentences);
    auto status = sentencepiece::SentencePieceTrainer::Train(args, &it, model);
    if (!status.ok()) *error = status.ToString();
    return status.ok();
  } catch (const std::exception& e) {
    *error = e.what();
    return false;
  }
}

const asr::spm::Api kApi{asr::spm::kApiVersion, &load, &train};

}  // namespace

extern "C" __attribute__((visibility("default"))) const asr::spm::Api* asr_spm_api() { return &kApi; }
