#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <functional>
#include <map>
#include <random>
#include <set>

#include "asr/core/error.h"
#include "asr/decode/char_lm.h"
#include "asr/decode/chunking.h"
#include "asr/decode/ctc_greedy.h"
#include "asr/decode/prefix_beam_search.h"

namespace {

// Random [T, V] log-probabilities; `peak` sharpens them (trained models are peaky).
std::vector<float> random_log_probs(int64_t frames, int64_t vocab, uint64_t seed, double peak = 2.0) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> n(0.0, peak);
  std::vector<float> out(static_cast<size_t>(frames * vocab));
  for (int64_t t = 0; t < frames; ++t) {
    std::vector<double> z(static_cast<size_t>(vocab));
    double m = -1e30;
    for (auto& x : z) m = std::max(m, x = n(rng));
    double s = 0;
    for (double x : z) s += std::exp(x - m);
    for (int64_t v = 0; v < vocab; ++v) out[static_cast<size_t>(t * vocab + v)] = static_cast<float>(z[v] - m - std::log(s));
  }
  return out;
}

asr::CtcGreedyResult greedy(const std::vector<float>& lp, int64_t frames, int64_t vocab) {
  auto t = torch::from_blob(const_cast<float*>(lp.data()), {frames, vocab}, torch::kFloat);
  return asr::ctc_greedy_decode(t);
}

// Every label sequence's exact CTC probability, by summing over all V^T paths.
std::map<std::vector<int64_t>, double> exhaustive(const std::vector<float>& lp, int64_t frames, int64_t vocab) {
  std::map<std::vector<int64_t>, double> prob;
  std::vector<int64_t> path(static_cast<size_t>(frames), 0);
  std::function<void(int64_t, double)> rec = [&](int64_t t, double logp) {
    if (t == frames) {
      prob[asr::ctc_collapse(path)] += std::exp(logp);
      return;
    }
    for (int64_t v = 0; v < vocab; ++v) {
      path[static_cast<size_t>(t)] = v;
      rec(t + 1, logp + lp[static_cast<size_t>(t * vocab + v)]);
    }
  };
  rec(0, 0.0);
  return prob;
}

TEST(CtcSequenceLogProb, MatchesExhaustiveSumAndTorchCtcLoss) {
  const int64_t T = 6, V = 4;
  auto lp = random_log_probs(T, V, 3, 1.0);
  auto all = exhaustive(lp, T, V);
  for (const auto& [labels, p] : all)
    EXPECT_NEAR(asr::ctc_sequence_log_prob(lp.data(), T, V, labels), std::log(p), 1e-4);
  std::vector<int64_t> labels = {1, 1, 2};
  auto t = torch::from_blob(lp.data(), {T, 1, V}, torch::kFloat);
  auto loss = torch::ctc_loss(t, torch::tensor({1, 1, 2}, torch::kLong).view({1, 3}), std::vector<int64_t>{T},
                              std::vector<int64_t>{3}, 0, at::Reduction::Sum);
  EXPECT_NEAR(asr::ctc_sequence_log_prob(lp.data(), T, V, labels), -loss.item<double>(), 1e-4);
  EXPECT_THROW(asr::ctc_sequence_log_prob(lp.data(), T, V, {0}), asr::Error);  // the blank is not a label
}

TEST(PrefixBeamSearch, WideBeamFindsTheMostProbableTranscript) {
  const int64_t T = 6, V = 3;
  for (uint64_t seed = 0; seed < 10; ++seed) {
    auto lp = random_log_probs(T, V, seed, 1.0);  // flat: greedy is often wrong here
    auto all = exhaustive(lp, T, V);
    auto best = std::max_element(all.begin(), all.end(), [](auto& a, auto& b) { return a.second < b.second; });
    asr::BeamSearchOptions o;
    o.beam = 64;
    o.prune = 100;
    o.nbest = 3;
    auto hyps = asr::ctc_prefix_beam_search(lp.data(), T, V, o);
    ASSERT_FALSE(hyps.empty());
    EXPECT_EQ(hyps[0].ids, best->first) << "seed " << seed;
    EXPECT_NEAR(hyps[0].acoustic, std::log(best->second), 1e-4);
    // n-best: distinct, in order, each scored with its exact probability.
    for (size_t i = 1; i < hyps.size(); ++i) {
      EXPECT_LE(hyps[i].score, hyps[i - 1].score);
      EXPECT_NE(hyps[i].ids, hyps[i - 1].ids);
      EXPECT_NEAR(hyps[i].acoustic, std::log(all[hyps[i].ids]), 1e-4);
    }
  }
}

TEST(PrefixBeamSearch, NeverScoresBelowGreedyPath) {
  for (int beam : {1, 2, 4, 8}) {
    for (uint64_t seed = 0; seed < 25; ++seed) {
      const int64_t T = 40, V = 12;
      auto lp = random_log_probs(T, V, seed * 31 + beam, 1.5);
      auto g = greedy(lp, T, V);
      asr::BeamSearchOptions o;
      o.beam = beam;
      o.prune = 8;
      auto hyps = asr::ctc_prefix_beam_search(lp.data(), T, V, o);
      EXPECT_GE(hyps[0].score, g.score - 1e-4) << "beam " << beam << " seed " << seed;
      // The score is the transcript's true CTC probability, or the part of it the beam kept.
      EXPECT_LE(hyps[0].acoustic, asr::ctc_sequence_log_prob(lp.data(), T, V, hyps[0].ids) + 1e-4);
    }
  }
}

TEST(PrefixBeamSearch, PeakyPosteriorsGiveTheGreedyTranscript) {
  // When every frame is confident, all widths agree with best-path decoding.
  const int64_t T = 30, V = 8;
  std::mt19937_64 rng(5);
  for (uint64_t seed = 0; seed < 10; ++seed) {
    std::vector<float> lp(static_cast<size_t>(T * V), std::log(0.1f / (V - 1)));
    for (int64_t t = 0; t < T; ++t) lp[static_cast<size_t>(t * V + static_cast<int64_t>(rng() % V))] = std::log(0.9f);
    auto g = greedy(lp, T, V);
    for (int beam : {1, 4, 16}) {
      asr::BeamSearchOptions o;
      o.beam = beam;
      EXPECT_EQ(asr::ctc_prefix_beam_search(lp.data(), T, V, o)[0].ids, g.ids);
    }
  }
}

TEST(PrefixBeamSearch, RejectsBadOptions) {
  auto lp = random_log_probs(3, 4, 1);
  asr::BeamSearchOptions o;
  o.beam = 0;
  EXPECT_THROW(asr::ctc_prefix_beam_search(lp.data(), 3, 4, o), asr::Error);
  o = {};
  o.blank = 4;
  EXPECT_THROW(asr::ctc_prefix_beam_search(lp.data(), 3, 4, o), asr::Error);
  auto lm = asr::CharNgramLm::train({"ab"}, 2);
  o = {};
  o.fusion.lm = &lm;  // no token text
  EXPECT_THROW(asr::ctc_prefix_beam_search(lp.data(), 3, 4, o), asr::Error);
  o.fusion.token_text = {"", "a", "b", " "};
  EXPECT_NO_THROW(asr::ctc_prefix_beam_search(lp.data(), 3, 4, o));
  EXPECT_TRUE(asr::ctc_prefix_beam_search(lp.data(), 0, 4, asr::BeamSearchOptions{})[0].ids.empty());
}

// A wide beam over many frames of a flat posterior creates far more prefixes
// than it keeps, so the search prunes its prefix trie to the beam's prefixes
// many times (after 2^16 nodes, then whenever it doubles). Renumbering must
// keep every prefix intact: each hypothesis' acoustic score sums only the
// alignments the beam kept, so it can never exceed the exact CTC probability
// of its labels. A trie whose parents were renumbered wrongly returns other
// label sequences, whose exact probability is far lower.
TEST(PrefixBeamSearch, PrunedPrefixTrieKeepsHypothesesIntact) {
  const int64_t T = 400, V = 30;
  auto lp = random_log_probs(T, V, 11, /*peak=*/0.7);
  asr::BeamSearchOptions o;
  o.beam = 64;  // ~64 x 29 new prefixes per frame: the trie is pruned every ~40 frames
  o.nbest = 8;
  auto hyps = asr::ctc_prefix_beam_search(lp.data(), T, V, o);
  ASSERT_EQ(hyps.size(), 8u);
  std::set<std::vector<int64_t>> distinct;
  for (const auto& h : hyps) {
    for (int64_t id : h.ids) ASSERT_TRUE(id > 0 && id < V);
    const double exact = asr::ctc_sequence_log_prob(lp.data(), T, V, h.ids);
    EXPECT_LE(h.acoustic, exact + 1e-6 * std::abs(exact));
    distinct.insert(h.ids);
  }
  EXPECT_EQ(distinct.size(), hyps.size());
  EXPECT_GE(hyps[0].score, asr::ctc_sequence_log_prob(lp.data(), T, V, greedy(lp, T, V).ids) - 1e-6);
}

TEST(PrefixBeamSearch, LanguageModelBreaksAcousticTies) {
  // Tokens: 1 = "a", 2 = "b". Two confident frames, each "a" or "b" equally
  // likely: the acoustics cannot choose, an LM that has only seen "ab" can.
  const int64_t V = 3;
  std::vector<float> lp = {std::log(0.02f), std::log(0.49f), std::log(0.49f),
                           std::log(0.02f), std::log(0.49f), std::log(0.49f)};
  auto lm = asr::CharNgramLm::train({"ab", "ab", "ab"}, 3);
  asr::BeamSearchOptions o;
  o.beam = 8;
  o.nbest = 4;
  o.fusion.lm = &lm;
  o.fusion.weight = 1.0;
  o.fusion.length_bonus = 0.0;
  o.fusion.token_text = {"", "a", "b"};
  auto hyps = asr::ctc_prefix_beam_search(lp.data(), 2, V, o);
  EXPECT_EQ(hyps[0].ids, (std::vector<int64_t>{1, 2}));
  EXPECT_NEAR(hyps[0].lm, lm.sentence_log_prob("ab"), 1e-9);
  EXPECT_NEAR(hyps[0].score, hyps[0].acoustic + hyps[0].lm, 1e-9);
  o.fusion.token_text = {"", "b", "a"};  // swap the spellings: the LM now wants tokens 2, 1
  EXPECT_EQ(asr::ctc_prefix_beam_search(lp.data(), 2, V, o)[0].ids, (std::vector<int64_t>{2, 1}));
}

TEST(CharNgramLm, IsADistributionAndPrefersItsDomain) {
  std::vector<std::string> train = {"the cat sat on the mat", "the dog sat on the log", "a cat and a dog"};
  for (int order : {1, 2, 3, 5}) {
    auto lm = asr::CharNgramLm::train(train, order);
    for (std::string ctx : {std::string(1, asr::CharNgramLm::kBos), std::string("\x02th"), std::string("at"), std::string("zq")}) {
      // Seen characters plus the unseen-character share sum to one.
      std::string alphabet = "thecasonmdglt \n";
      std::sort(alphabet.begin(), alphabet.end());
      alphabet.erase(std::unique(alphabet.begin(), alphabet.end()), alphabet.end());
      double sum = std::exp(lm.log_prob(ctx, '#'));  // any unseen character
      for (char c : alphabet) sum += std::exp(lm.log_prob(ctx, c));
      EXPECT_NEAR(sum, 1.0, 1e-9) << "order " << order << " context '" << ctx << "'";
    }
  }
  auto lm3 = asr::CharNgramLm::train(train, 3), lm1 = asr::CharNgramLm::train(train, 1);
  EXPECT_LT(lm3.perplexity(train), lm1.perplexity(train));
  EXPECT_GT(lm3.sentence_log_prob("the cat sat"), lm3.sentence_log_prob("tsa hte tac"));
  EXPECT_THROW(asr::CharNgramLm::train(train, 0), asr::Error);
  EXPECT_THROW(asr::CharNgramLm::train({"", ""}, 3), asr::Error);
}

TEST(Chunking, KeptFramesTileTheInputExactly) {
  const int64_t hop = 768;
  for (int64_t samples : {int64_t{1000}, int64_t{16000 * 20}, int64_t{16000 * 20 + 1}, int64_t{16000 * 61 + 333}}) {
    auto plans = asr::plan_chunks(samples, 16000 * 20, 16000 * 2, hop);
    if (samples <= 16000 * 20) {
      ASSERT_EQ(plans.size(), 1u);
      EXPECT_EQ(plans[0].end, samples);
      continue;
    }
    ASSERT_GT(plans.size(), 1u);
    const int64_t total_frames = samples / hop;  // frames on the hop grid
    int64_t next = 0;                            // the next global frame not yet covered
    for (size_t k = 0; k < plans.size(); ++k) {
      const auto& p = plans[k];
      EXPECT_EQ(p.begin % hop, 0);
      EXPECT_LE(p.end - p.begin, 16000 * 20);
      const int64_t offset = p.begin / hop;
      const int64_t len = (p.end - p.begin) / hop;
      const int64_t keep_end = p.keep_end < 0 ? len : p.keep_end;
      EXPECT_EQ(offset + p.keep_begin, next) << "chunk " << k;
      EXPECT_LT(p.keep_begin, keep_end);
      EXPECT_LE(keep_end, len);
      next = offset + keep_end;
    }
    EXPECT_EQ(plans.back().end, samples);
    EXPECT_EQ(next, total_frames);
  }
  EXPECT_EQ(asr::plan_chunks(5000000, 0, 0, hop).size(), 1u);  // 0 = never chunk
  EXPECT_THROW(asr::plan_chunks(5000000, 16000, 8000, hop), asr::Error);
}

}  // namespace
