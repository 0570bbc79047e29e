#include "asr/text/tokenizer.h"

#include <dlfcn.h>
#include <unistd.h>

#include <filesystem>
#include <mutex>
#include <set>
#include <unordered_map>

#include "asr/core/atomic_file.h"
#include "asr/core/error.h"
#include "spm/spm_api.h"

namespace asr {

namespace {

// Where asr_sentencepiece.so may be: $ASR_SPM_MODULE, beside the running
// executable (and ../lib/ for installed layouts), then the build tree.
std::vector<std::string> module_candidates() {
  std::vector<std::string> out;
  if (const char* env = std::getenv("ASR_SPM_MODULE"); env && *env) out.push_back(env);
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    out.push_back((exe.parent_path() / "asr_sentencepiece.so").string());
    out.push_back((exe.parent_path() / ".." / "lib" / "asr_sentencepiece.so").string());
    out.push_back((exe.parent_path() / ".." / "asr_sentencepiece.so").string());
  }
#ifdef ASR_SPM_MODULE_PATH
  out.push_back(ASR_SPM_MODULE_PATH);
#endif
  return out;
}

const spm::Api& spm_api() {
  static const spm::Api* api = nullptr;
  static std::string failure;
  static std::once_flag once;
  std::call_once(once, [] {
    std::string tried;
    for (const auto& path : module_candidates()) {
      if (!std::filesystem::exists(path)) {
        tried += "\n  " + path + " (absent)";
        continue;
      }
      // RTLD_DEEPBIND: the module's protobuf binds to its own copy, not to LibTorch's (spm_api.h).
      void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
      if (!handle) {
        tried += "\n  " + path + " (" + dlerror() + ")";
        continue;
      }
      auto entry = reinterpret_cast<const spm::Api* (*)()>(dlsym(handle, spm::kEntryPoint));
      if (!entry || entry()->version != spm::kApiVersion) {
        tried += "\n  " + path + " (not a matching asr_sentencepiece module)";
        continue;
      }
      api = entry();
      return;
    }
    failure = "cannot load the sentencepiece module asr_sentencepiece.so; looked at:" + tried +
              "\nset ASR_SPM_MODULE to its path or rebuild the project";
  });
  if (!api) throw Error(failure);
  return *api;
}

}  // namespace

struct Tokenizer::Impl {
  std::unique_ptr<spm::Processor> sp;
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
    throw DataError("cannot read tokenizer " + path + ": " + e.what());
  }
  return Tokenizer(load_model(std::move(bytes), "tokenizer " + path));
}

namespace {

std::unique_ptr<Tokenizer::Impl> load_model(std::string bytes, const std::string& what) {
  auto impl = std::make_unique<Tokenizer::Impl>();
  std::string error;
  impl->sp.reset(spm_api().load(bytes, &error));
  if (!impl->sp) throw DataError(what + " is not a sentencepiece model: " + error);
  if (impl->sp->pad_id() != 0 || impl->sp->unk_id() != 1 || impl->sp->bos_id() >= 0 || impl->sp->eos_id() >= 0)
    throw DataError(what + " does not follow the CTC convention (pad/blank id 0, unk id 1, no bos/eos); "
                "train it with asr_preprocess");
  impl->bytes = std::move(bytes);
  return impl;
}

}  // namespace

std::vector<int> Tokenizer::encode(const std::string& text) const {
  std::vector<int> ids;
  std::string error;
  if (!impl_->sp->encode(text, &ids, &error)) throw Error("tokenizer cannot encode text: " + error);
  return ids;
}

std::string Tokenizer::decode(const std::vector<int>& ids) const {
  std::vector<int> kept;
  kept.reserve(ids.size());
  const int n = vocab_size();
  for (int id : ids)
    if (id > 0 && id < n) kept.push_back(id);  // blanks and out-of-range ids carry no text
  std::string text;
  std::string error;
  if (!impl_->sp->decode(kept, &text, &error)) throw Error("tokenizer cannot decode ids: " + error);
  return text;
}

std::string Tokenizer::id_to_piece(int id) const {
  if (id < 0 || id >= vocab_size()) return "";
  return impl_->sp->id_to_piece(id);
}

int Tokenizer::vocab_size() const { return impl_->sp->piece_size(); }
const std::string& Tokenizer::model_bytes() const { return impl_->bytes; }

namespace {

// Pieces every model has beside the characters: the word boundary, <blank>, <unk>.
constexpr int kFixedPieces = 3;

// Distinct UTF-8 characters (code points, by their bytes), spaces left out.
std::set<std::string> distinct_characters(const std::vector<std::string>& sentences) {
  std::set<std::string> chars;
  for (const std::string& s : sentences)
    for (size_t i = 0; i < s.size();) {
      const auto lead = static_cast<unsigned char>(s[i]);
      const size_t len = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
      if (lead != ' ') chars.insert(s.substr(i, len));
      i += len;
    }
  return chars;
}

void require_vocab_holds_characters(const std::vector<std::string>& sentences, const TokenizerTrainOptions& o) {
  const std::set<std::string> chars = distinct_characters(sentences);
  const int required = static_cast<int>(chars.size()) + kFixedPieces;
  if (o.vocab_size >= required) return;
  std::string listed;
  for (const auto& c : chars) listed += c;
  throw Error(o.vocab_size_name + " " + std::to_string(o.vocab_size) + " is too small: the training text has " +
              std::to_string(chars.size()) + " distinct characters (" + listed +
              ") and the tokenizer needs a piece for each, for the word boundary, <blank> and <unk>; use " +
              std::to_string(required) + " or more (characters left out would all become <unk>)");
}

}  // namespace

int required_vocab_size(const std::vector<std::string>& sentences) {
  return static_cast<int>(distinct_characters(sentences).size()) + kFixedPieces;
}

Tokenizer train_tokenizer(const std::vector<std::string>& sentences, const TokenizerTrainOptions& options) {
  const std::string& type = options.model_type;
  if (type != "bpe" && type != "unigram" && type != "char")
    throw Error("unknown tokenizer type '" + type + "': use bpe, unigram or char");
  bool any = false;
  for (const auto& s : sentences) any = any || !s.empty();
  if (!any) throw Error("no transcript text to train the tokenizer on");
  require_vocab_holds_characters(sentences, options);

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
  std::string model, error;
  if (!spm_api().train(sentences, args, &model, &error)) throw Error("tokenizer training failed: " + error);
  return Tokenizer::from_bytes(std::move(model));
}

}  // namespace asr
