// The boundary between the tokenizer and libsentencepiece.
//
// Debian's libsentencepiece embeds its own copy of protobuf 3.14 and exports
// those symbols, while LibTorch uses the system protobuf 3.21: linked into
// one process they interpose on each other and crash at start-up. So the
// sentencepiece code lives in a separate module (asr_sentencepiece.so) that
// tokenizer.cpp opens with RTLD_LOCAL | RTLD_DEEPBIND: its protobuf binds to
// its own copy and never enters the global symbol scope. Only this small
// interface crosses the boundary; no exception does.
#pragma once
#include <string>
#include <unordered_map>
#include <vector>

namespace asr::spm {

class Processor {
 public:
  virtual ~Processor() = default;
  // Each returns false and fills `error` instead of throwing.
  virtual bool encode(const std::string& text, std::vector<int>* ids, std::string* error) const = 0;
  virtual bool decode(const std::vector<int>& ids, std::string* text, std::string* error) const = 0;
  virtual std::string id_to_piece(int id) const = 0;
  virtual int piece_size() const = 0;
  virtual int pad_id() const = 0;
  virtual int unk_id() const = 0;
  virtual int bos_id() const = 0;
  virtual int eos_id() const = 0;
};

struct Api {
  int version;  // kApiVersion of the module; checked on load
  // A processor for serialized model bytes, or nullptr with `error` set.
  Processor* (*load)(const std::string& model_bytes, std::string* error);
  // Trains on `sentences` with sentencepiece's named arguments; the
  // serialized model goes to `model`. False with `error` on failure.
  bool (*train)(const std::vector<std::string>& sentences, const std::unordered_map<std::string, std::string>& args,
                std::string* model, std::string* error);
};

constexpr int kApiVersion = 1;
constexpr const char* kEntryPoint = "asr_spm_api";

}  // namespace asr::spm
