#include "asr/decode/prefix_beam_search.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "asr/core/error.h"
#include "asr/decode/char_lm.h"
#include "asr/decode/ctc_greedy.h"
#include "asr/text/tokenizer.h"

namespace asr {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

double log_add(double a, double b) {
  if (a == kNegInf) return b;
  if (b == kNegInf) return a;
  return a > b ? a + std::log1p(std::exp(b - a)) : b + std::log1p(std::exp(a - b));
}

// Prefixes live in a trie so that a prefix is one integer, extension is a
// hash lookup, and the LM state of a prefix is computed once when its node
// is created rather than per frame.
struct Node {
  int parent = -1;
  int64_t token = -1;  // last token; -1 at the root
  std::string lm_context;
  double lm = 0;       // LM log-prob of the prefix text (no end of sentence)
  int64_t chars = 0;   // length of the prefix text
};

class PrefixTrie {
 public:
  PrefixTrie(int64_t vocab, const LmFusion& fusion) : vocab_(vocab), fusion_(fusion) {
    Node root;
    root.lm_context.assign(1, CharNgramLm::kBos);
    nodes_.push_back(std::move(root));
  }

  int child(int parent, int64_t token) {
    auto it = index_.find(key(parent, token));
    if (it != index_.end()) return it->second;
    Node n;
    n.parent = parent;
    n.token = token;
    const Node& p = nodes_[static_cast<size_t>(parent)];
    n.lm_context = p.lm_context;
    n.lm = p.lm;
    n.chars = p.chars;
    if (!fusion_.token_text.empty()) {
      std::string_view text = fusion_.token_text[static_cast<size_t>(token)];
      // A transcript never starts with a space (sentencepiece drops it too).
      if (n.chars == 0) text.remove_prefix(std::min(text.size(), text.find_first_not_of(' ')));
      if (fusion_.lm) n.lm += fusion_.lm->extend(n.lm_context, text);
      n.chars += static_cast<int64_t>(text.size());
    }
    const int id = static_cast<int>(nodes_.size());
    nodes_.push_back(std::move(n));
    index_.emplace(key(parent, token), id);
    return id;
  }

  // The node for a whole label sequence, created as needed.
  int find_or_add(const std::vector<int64_t>& ids) {
    int n = 0;
    for (int64_t id : ids) n = child(n, id);
    return n;
  }

  const Node& at(int id) const { return nodes_[static_cast<size_t>(id)]; }
  size_t size() const { return nodes_.size(); }

  // Drops every node that is not a prefix of one of `live` and renumbers the
  // rest (updating `live`). Without it the trie keeps every extension ever
  // tried: beam x candidates nodes per frame, gigabytes for a wide beam or a
  // long input. A parent is always created before its children, so one pass
  // in id order renumbers parents first.
  template <typename Entries>
  void keep_only(Entries& live) {
    std::vector<int> new_id(nodes_.size(), -1);
    for (const auto& e : live)
      for (int n = e.node; n >= 0 && new_id[static_cast<size_t>(n)] == -1; n = nodes_[static_cast<size_t>(n)].parent)
        new_id[static_cast<size_t>(n)] = 0;  // marked
    std::vector<Node> kept;
    index_.clear();
    for (size_t old = 0; old < nodes_.size(); ++old) {
      if (new_id[old] == -1) continue;
      new_id[old] = static_cast<int>(kept.size());
      Node n = std::move(nodes_[old]);
      if (n.parent >= 0) {
        n.parent = new_id[static_cast<size_t>(n.parent)];
        index_.emplace(key(n.parent, n.token), new_id[old]);
      }
      kept.push_back(std::move(n));
    }
    nodes_ = std::move(kept);
    for (auto& e : live) e.node = new_id[static_cast<size_t>(e.node)];
  }

  std::vector<int64_t> labels(int id) const {
    std::vector<int64_t> out;
    for (int n = id; n > 0; n = nodes_[static_cast<size_t>(n)].parent) out.push_back(nodes_[static_cast<size_t>(n)].token);
    std::reverse(out.begin(), out.end());
    return out;
  }

 private:
  uint64_t key(int parent, int64_t token) const {
    return static_cast<uint64_t>(parent) * static_cast<uint64_t>(vocab_) + static_cast<uint64_t>(token);
  }

  int64_t vocab_;
  const LmFusion& fusion_;
  std::vector<Node> nodes_;
  std::unordered_map<uint64_t, int> index_;
};

struct Entry {
  int node = 0;
  double pb = kNegInf, pnb = kNegInf;
  double total() const { return log_add(pb, pnb); }
};

void check_options(int64_t frames, int64_t vocab, const BeamSearchOptions& o) {
  if (frames < 0 || vocab < 1) throw Error("ctc_prefix_beam_search: bad sizes [" + std::to_string(frames) + ", " +
                                           std::to_string(vocab) + "]");
  if (o.beam < 1) throw Error("beam width must be at least 1, got " + std::to_string(o.beam));
  if (o.nbest < 1) throw Error("n-best must be at least 1, got " + std::to_string(o.nbest));
  if (!(o.prune > 0)) throw Error("beam pruning threshold must be positive (nats below the frame's best)");
  if (o.blank < 0 || o.blank >= vocab) throw Error("blank id " + std::to_string(o.blank) + " is outside the vocabulary");
  if (o.fusion.lm && static_cast<int64_t>(o.fusion.token_text.size()) != vocab)
    throw Error("LM fusion needs the text of all " + std::to_string(vocab) + " tokens, got " +
                std::to_string(o.fusion.token_text.size()));
}

// One search over one utterance's posteriors, frame by frame: pick the
// frame's candidate tokens, extend every prefix of the beam with them, keep
// the best `beam`; at the end, rank with the LM's end of sentence.
class PrefixBeamSearch {
 public:
  PrefixBeamSearch(const float* log_probs, int64_t frames, int64_t vocab, const BeamSearchOptions& options)
      : log_probs_(log_probs), frames_(frames), vocab_(vocab), o_(options), trie_(vocab, options.fusion),
        lm_weight_(options.fusion.lm ? options.fusion.weight : 0.0),
        bonus_(options.fusion.lm ? options.fusion.length_bonus : 0.0),
        per_frame_(static_cast<size_t>(options.tokens_per_frame > 0 ? options.tokens_per_frame : options.beam)),
        order_(static_cast<size_t>(vocab)) {
    greedy_path_.reserve(static_cast<size_t>(frames));
  }

  std::vector<BeamHypothesis> run() {
    for (int64_t t = 0; t < frames_; ++t) {
      const float* lp = log_probs_ + t * vocab_;
      choose_candidates(lp);
      extend(lp);
      prune();
    }
    return finish();
  }

 private:
  double rank_score(const Entry& e) const {
    const Node& n = trie_.at(e.node);
    return e.total() + lm_weight_ * n.lm + bonus_ * static_cast<double>(n.chars);
  }

  // Candidate tokens: the best few of this frame, within `prune` of the best.
  void choose_candidates(const float* lp) {
    for (int64_t v = 0; v < vocab_; ++v) order_[static_cast<size_t>(v)] = v;
    const size_t k = std::min(per_frame_ + 1, order_.size());  // +1: the blank may take a slot
    std::partial_sort(order_.begin(), order_.begin() + static_cast<std::ptrdiff_t>(k), order_.end(),
                      [&](int64_t a, int64_t b) { return lp[a] > lp[b] || (lp[a] == lp[b] && a < b); });
    greedy_path_.push_back(order_[0]);
    const double floor = lp[order_[0]] - o_.prune;
    candidates_.clear();
    for (size_t i = 0; i < k && candidates_.size() < per_frame_; ++i)
      if (order_[i] != o_.blank && lp[order_[i]] >= floor) candidates_.push_back(order_[i]);
  }

  // This frame's accumulator of a node, cleared on first use in the frame.
  Entry& slot(int node) {
    Entry& e = acc_[static_cast<size_t>(node)];
    if (e.node != node + 1) {  // node + 1 marks "in use this frame" (0 = never used)
      e = Entry{node + 1, kNegInf, kNegInf};
      touched_.push_back(node);
    }
    return e;
  }

  // Every prefix of the beam, kept (blank or its last token again) or
  // extended by a candidate; the sums land in acc_.
  void extend(const float* lp) {
    touched_.clear();
    // Sized up front for every node this frame can create, so references stay valid.
    const size_t needed = trie_.size() + beam_.size() * candidates_.size() + 1;
    if (acc_.size() < needed) acc_.resize(needed * 2);
    for (const Entry& e : beam_) {
      const double total = e.total();
      const int64_t last = trie_.at(e.node).token;
      Entry& self = slot(e.node);
      self.pb = log_add(self.pb, total + lp[o_.blank]);
      // Staying on the last token keeps the prefix, whether or not it is a candidate.
      if (last >= 0) self.pnb = log_add(self.pnb, e.pnb + lp[last]);
      for (int64_t c : candidates_) {
        // A repeated token needs a blank in between to start a new label.
        const double from = c == last ? e.pb : total;
        if (from == kNegInf) continue;
        Entry& next = slot(trie_.child(e.node, c));
        next.pnb = log_add(next.pnb, from + lp[c]);
      }
    }
  }

  void prune() {
    beam_.clear();
    for (int node : touched_) {
      Entry e = acc_[static_cast<size_t>(node)];
      acc_[static_cast<size_t>(node)].node = 0;
      e.node = node;
      beam_.push_back(e);
    }
    const size_t keep = std::min(beam_.size(), static_cast<size_t>(o_.beam));
    std::partial_sort(beam_.begin(), beam_.begin() + static_cast<std::ptrdiff_t>(keep), beam_.end(),
                      [&](const Entry& a, const Entry& b) { return rank_score(a) > rank_score(b); });
    beam_.resize(keep);
    // Amortized: compact when the trie has doubled since it last held only the beam's prefixes.
    if (trie_.size() > 2 * compacted_size_ + kMinCompaction) {
      trie_.keep_only(beam_);
      compacted_size_ = trie_.size();
    }
  }

  BeamHypothesis hypothesis(int node, double acoustic) const {
    const Node& n = trie_.at(node);
    BeamHypothesis h;
    h.ids = trie_.labels(node);
    h.acoustic = acoustic;
    if (o_.fusion.lm) h.lm = n.lm + o_.fusion.lm->log_prob(n.lm_context, CharNgramLm::kEos);
    h.score = acoustic + lm_weight_ * h.lm + bonus_ * static_cast<double>(n.chars);
    return h;
  }

  // Final ranking adds the LM's end of sentence. The greedy hypothesis joins
  // with its exact CTC probability (never below its best path's).
  std::vector<BeamHypothesis> finish() {
    const std::vector<int64_t> greedy_ids = ctc_collapse(greedy_path_, o_.blank);
    const int greedy_node = trie_.find_or_add(greedy_ids);
    const double greedy_acoustic = ctc_sequence_log_prob(log_probs_, frames_, vocab_, greedy_ids, o_.blank);
    std::vector<BeamHypothesis> out;
    bool have_greedy = false;
    for (const Entry& e : beam_) {
      const bool greedy = e.node == greedy_node;
      have_greedy |= greedy;
      out.push_back(hypothesis(e.node, greedy ? std::max(e.total(), greedy_acoustic) : e.total()));
    }
    if (!have_greedy) out.push_back(hypothesis(greedy_node, greedy_acoustic));
    std::stable_sort(out.begin(), out.end(),
                     [](const BeamHypothesis& a, const BeamHypothesis& b) { return a.score > b.score; });
    if (out.size() > static_cast<size_t>(o_.nbest)) out.resize(static_cast<size_t>(o_.nbest));
    return out;
  }

  const float* log_probs_;
  int64_t frames_, vocab_;
  const BeamSearchOptions& o_;
  PrefixTrie trie_;
  double lm_weight_, bonus_;
  size_t per_frame_;
  std::vector<Entry> beam_ = {Entry{0, 0.0, kNegInf}};
  static constexpr size_t kMinCompaction = 1 << 16;  // nodes; below this the trie is small anyway
  size_t compacted_size_ = 0;
  std::vector<Entry> acc_;  // indexed by node id
  std::vector<int> touched_;
  std::vector<int64_t> order_, candidates_, greedy_path_;
};

}  // namespace

std::vector<BeamHypothesis> ctc_prefix_beam_search(const float* log_probs, int64_t frames, int64_t vocab,
                                                   const BeamSearchOptions& options) {
  check_options(frames, vocab, options);
  return PrefixBeamSearch(log_probs, frames, vocab, options).run();
}

double ctc_sequence_log_prob(const float* log_probs, int64_t frames, int64_t vocab, const std::vector<int64_t>& labels,
                             int64_t blank) {
  for (int64_t id : labels)
    if (id < 0 || id >= vocab || id == blank) throw Error("ctc_sequence_log_prob: label " + std::to_string(id) + " is not a token");
  // Extended sequence: blank, l1, blank, l2, ..., blank.
  const size_t s_len = 2 * labels.size() + 1;
  auto label_at = [&](size_t s) { return s % 2 == 0 ? blank : labels[s / 2]; };
  if (frames == 0) return labels.empty() ? 0.0 : kNegInf;
  std::vector<double> alpha(s_len, kNegInf), next(s_len);
  alpha[0] = log_probs[blank];
  if (s_len > 1) alpha[1] = log_probs[label_at(1)];
  for (int64_t t = 1; t < frames; ++t) {
    const float* lp = log_probs + t * vocab;
    for (size_t s = 0; s < s_len; ++s) {
      double a = alpha[s];
      if (s >= 1) a = log_add(a, alpha[s - 1]);
      if (s >= 2 && label_at(s) != blank && label_at(s) != label_at(s - 2)) a = log_add(a, alpha[s - 2]);
      next[s] = a == kNegInf ? kNegInf : a + lp[label_at(s)];
    }
    alpha.swap(next);
  }
  return s_len > 1 ? log_add(alpha[s_len - 1], alpha[s_len - 2]) : alpha[0];
}

std::vector<std::string> token_surfaces(const Tokenizer& tokenizer) {
  static const std::string kMarker = "\xE2\x96\x81";  // U+2581, sentencepiece's word boundary
  std::vector<std::string> out(static_cast<size_t>(tokenizer.vocab_size()));
  for (int id = 0; id < tokenizer.vocab_size(); ++id) {
    if (id == tokenizer.blank_id() || id == 1) continue;  // blank and <unk> have no text
    std::string piece = tokenizer.id_to_piece(id);
    for (size_t p = piece.find(kMarker); p != std::string::npos; p = piece.find(kMarker, p + 1)) piece.replace(p, kMarker.size(), " ");
    out[static_cast<size_t>(id)] = std::move(piece);
  }
  return out;
}

}  // namespace asr
