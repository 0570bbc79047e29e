#include "asr/decode/char_lm.h"

#include <array>
#include <cmath>
#include <unordered_map>

#include "asr/core/error.h"
#include "asr/core/file_checks.h"

namespace asr {

// Counts of what followed one context: a 256-slot table would waste memory
// for the long tail of rare contexts, so a short list of (char, count).
struct ContextCounts {
  std::vector<std::pair<char, uint32_t>> next;
  uint64_t total = 0;

  uint32_t count(char c) const {
    for (const auto& [ch, n] : next)
      if (ch == c) return n;
    return 0;
  }
  void add(char c) {
    ++total;
    for (auto& [ch, n] : next)
      if (ch == c) {
        ++n;
        return;
      }
    next.emplace_back(c, 1);
  }
};

struct CharNgramLm::Impl {
  int order = 1;
  double uniform = 0;  // 1 / (alphabet + 1)
  std::unordered_map<std::string, ContextCounts> contexts;  // key: the context characters (may be empty)

  // Witten-Bell, interpolated from the empty context up to the longest one
  // present: P(c|h) = (C(h,c) + T(h) P(c|h')) / (C(h) + T(h)).
  double prob(std::string_view context, char next) const {
    if (context.size() > static_cast<size_t>(order - 1)) context.remove_prefix(context.size() - (order - 1));
    double p = uniform;
    for (size_t k = 0; k <= context.size(); ++k) {
      auto it = contexts.find(std::string(context.substr(context.size() - k)));
      if (it == contexts.end()) break;  // longer contexts were never seen either
      const ContextCounts& c = it->second;
      const double types = static_cast<double>(c.next.size());
      p = (c.count(next) + types * p) / (static_cast<double>(c.total) + types);
    }
    return p;
  }
};

CharNgramLm::CharNgramLm(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CharNgramLm::CharNgramLm(CharNgramLm&&) noexcept = default;
CharNgramLm& CharNgramLm::operator=(CharNgramLm&&) noexcept = default;
CharNgramLm::~CharNgramLm() = default;

CharNgramLm CharNgramLm::train(const std::vector<std::string>& sentences, int order) {
  if (order < 1 || order > kMaxOrder)
    throw Error("--lm-order " + std::to_string(order) + " is out of range: the character LM order must be between 1 and " +
                std::to_string(kMaxOrder) + " (memory grows with the order; docs/decoding.md)");
  auto impl = std::make_unique<Impl>();
  impl->order = order;
  std::array<bool, 256> seen{};
  size_t chars = 0;
  for (const std::string& s : sentences) {
    if (s.empty()) continue;
    std::string padded = std::string(1, kBos) + s + kEos;
    for (size_t i = 1; i < padded.size(); ++i) {
      const char c = padded[i];
      seen[static_cast<unsigned char>(c)] = true;
      ++chars;
      // Contexts of every length up to order-1 that fit after the sentence start.
      for (size_t k = 0; k < static_cast<size_t>(order) && k <= i; ++k) impl->contexts[padded.substr(i - k, k)].add(c);
    }
  }
  if (chars == 0) throw Error("character LM: no training text (every sentence is empty)");
  size_t alphabet = 0;
  for (bool b : seen) alphabet += b;
  impl->uniform = 1.0 / static_cast<double>(alphabet + 1);
  return CharNgramLm(std::move(impl));
}

int CharNgramLm::order() const { return impl_->order; }

double CharNgramLm::log_prob(std::string_view context, char next) const {
  return std::log(impl_->prob(context, next));
}

double CharNgramLm::extend(std::string& context, std::string_view text) const {
  double sum = 0;
  const size_t keep = static_cast<size_t>(impl_->order - 1);
  for (char c : text) {
    sum += std::log(impl_->prob(context, c));
    context.push_back(c);
    if (context.size() > keep) context.erase(0, context.size() - keep);
  }
  return sum;
}

double CharNgramLm::sentence_log_prob(std::string_view sentence) const {
  std::string context(1, kBos);
  double lp = extend(context, sentence);
  return lp + log_prob(context, kEos);
}

double CharNgramLm::perplexity(const std::vector<std::string>& sentences) const {
  double lp = 0;
  size_t n = 0;
  for (const auto& s : sentences) {
    lp += sentence_log_prob(s);
    n += s.size() + 1;
  }
  return n == 0 ? 0.0 : std::exp(-lp / static_cast<double>(n));
}

size_t CharNgramLm::num_contexts() const { return impl_->contexts.size(); }

}  // namespace asr

#include <fstream>
#include <unordered_set>

#include "asr/text/normalize.h"

namespace asr {

LmCorpus read_lm_corpus(const std::string& path, const std::vector<std::string>& exclude_ids,
                        const std::vector<std::string>& exclude_texts) {
  require_regular_input(path, "--lm-text");
  std::ifstream in(path);
  if (!in) throw Error("LM text " + path + ": cannot open the file");
  const std::unordered_set<std::string> exclude(exclude_ids.begin(), exclude_ids.end());
  std::unordered_set<std::string> held_out_texts;
  for (const auto& t : exclude_texts) held_out_texts.insert(normalize_transcript(t));
  LmCorpus corpus;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::string id, text = line;
    if (const size_t bar = line.find('|'); bar != std::string::npos) {
      id = line.substr(0, bar);
      text.clear();
      size_t end = line.size();
      // The last non-empty field: LJSpeech's normalized column, or the raw one when it is blank.
      while (end > bar) {
        const size_t start = line.rfind('|', end - 1) + 1;
        if (start < end) {
          text = line.substr(start, end - start);
          break;
        }
        end = start - 1;
      }
    } else if (const size_t tab = line.find('\t'); tab != std::string::npos) {
      id = line.substr(0, tab);
      text = line.substr(tab + 1);
    }
    if (!id.empty() && exclude.count(id)) {
      ++corpus.excluded;
      continue;
    }
    std::string normalized = normalize_transcript(text);
    if (held_out_texts.count(normalized)) {
      ++corpus.excluded;
      continue;
    }
    if (!normalized.empty()) corpus.sentences.push_back(std::move(normalized));
  }
  if (in.bad()) throw Error("LM text " + path + ": read error");
  if (corpus.sentences.empty())
    throw Error("LM text " + path + ": no transcripts in it (after leaving out " + std::to_string(corpus.excluded) +
                " lines being decoded, by id or text)");
  return corpus;
}

}  // namespace asr
