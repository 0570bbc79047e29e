#include "asr/text/edit_distance.h"

#include <gtest/gtest.h>

#include <random>

#include "asr/core/suggest.h"

namespace {

using asr::EditOp;
using asr::ErrorCounts;

std::vector<std::string> chars(const std::string& s) { return asr::split_chars(s); }

TEST(EditDistance, HandCheckedCounts) {
  // kitten -> sitting: k->s, e->i, +g.
  ErrorCounts c = asr::char_errors("kitten", "sitting");
  EXPECT_EQ(c.sub, 2);
  EXPECT_EQ(c.del, 0);
  EXPECT_EQ(c.ins, 1);
  EXPECT_EQ(c.ref_len, 6);
  EXPECT_DOUBLE_EQ(c.rate(), 3.0 / 6.0);

  ErrorCounts w = asr::word_errors("the cat sat on the mat", "the cat sat the hat");
  EXPECT_EQ(w.sub, 1);  // mat -> hat
  EXPECT_EQ(w.del, 1);  // on
  EXPECT_EQ(w.ins, 0);
  EXPECT_EQ(w.ref_len, 6);

  EXPECT_EQ(asr::word_errors("a b", "").del, 2);
  EXPECT_EQ(asr::word_errors("", "x y z").ins, 3);
  EXPECT_DOUBLE_EQ(asr::word_errors("", "").rate(), 0.0);
  EXPECT_DOUBLE_EQ(asr::word_errors("", "x").rate(), 1.0);
  EXPECT_EQ(asr::char_errors("same", "same").errors(), 0);
}

TEST(EditDistance, TokenizationCollapsesWhitespaceAndKeepsUtf8) {
  EXPECT_EQ(chars("  a  b\tc "), (std::vector<std::string>{"a", " ", "b", " ", "c"}));
  EXPECT_EQ(chars("né"), (std::vector<std::string>{"n", "é"}));
  EXPECT_EQ(asr::split_words(" one  two\nthree "), (std::vector<std::string>{"one", "two", "three"}));
  // One accented letter wrong is one character error, not two bytes.
  EXPECT_EQ(asr::char_errors("café", "cafe").errors(), 1);
}

TEST(EditDistance, AccumulatesAcrossUtterances) {
  ErrorCounts total;
  total += asr::word_errors("a b c", "a x c");
  total += asr::word_errors("d e", "d e f");
  EXPECT_EQ(total.sub, 1);
  EXPECT_EQ(total.ins, 1);
  EXPECT_EQ(total.ref_len, 5);
  EXPECT_DOUBLE_EQ(total.rate(), 2.0 / 5.0);
}

TEST(EditDistance, AlignmentAgreesWithCountsOnRandomStrings) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    auto random_tokens = [&] {
      std::vector<std::string> t(rng() % 9);
      for (auto& s : t) s = std::string(1, static_cast<char>('a' + rng() % 3));
      return t;
    };
    auto ref = random_tokens(), hyp = random_tokens();
    asr::Alignment a = asr::align_tokens(ref, hyp);
    ErrorCounts c = asr::count_errors(ref, hyp);
    EXPECT_EQ(a.counts.sub, c.sub);
    EXPECT_EQ(a.counts.del, c.del);
    EXPECT_EQ(a.counts.ins, c.ins);
    // The alignment reproduces both sequences and its ops match the counts.
    std::vector<std::string> r, h;
    int64_t s = 0, d = 0, i = 0;
    for (const auto& p : a.pairs) {
      if (!p.ref.empty()) r.push_back(p.ref);
      if (!p.hyp.empty()) h.push_back(p.hyp);
      s += p.op == EditOp::kSub, d += p.op == EditOp::kDel, i += p.op == EditOp::kIns;
      if (p.op == EditOp::kMatch) EXPECT_EQ(p.ref, p.hyp);
    }
    EXPECT_EQ(r, ref);
    EXPECT_EQ(h, hyp);
    EXPECT_EQ(s, c.sub);
    EXPECT_EQ(d, c.del);
    EXPECT_EQ(i, c.ins);
    // Minimal: equals the plain edit distance of the joined strings.
    std::string rs, hs;
    for (auto& x : ref) rs += x;
    for (auto& x : hyp) hs += x;
    EXPECT_EQ(c.errors(), asr::levenshtein(rs, hs));
  }
}

TEST(EditDistance, SclitePrint) {
  asr::Alignment a = asr::align_tokens(asr::split_words("the cat sat"), asr::split_words("the bat sat on"));
  EXPECT_EQ(asr::format_alignment(a),
            "REF:  the CAT sat **\n"
            "HYP:  the BAT sat on\n"
            "EVAL:     S       I\n");
}

TEST(EditDistance, Levenshtein) {
  EXPECT_EQ(asr::levenshtein("optim.lrr", "optim.lr"), 1);
  EXPECT_EQ(asr::levenshtein("", "abc"), 3);
  EXPECT_EQ(asr::levenshtein("flaw", "lawn"), 2);
}

}  // namespace
