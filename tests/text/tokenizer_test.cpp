#include "asr/text/tokenizer.h"

#include <gtest/gtest.h>

#include <fstream>

#include "asr/core/error.h"
#include "asr/text/normalize.h"
#include "test_support.h"

namespace {

std::vector<std::string> corpus() {
  const char* lines[] = {
      "Printing, in the only sense with which we are at present concerned, differs from most",
      "in being comparatively modern.",
      "For although the Chinese took impressions from wood blocks engraved in relief",
      "the invention of movable metal letters in the middle of the fifteenth century",
      "may justly be considered as the invention of the art of printing.",
      "And it is worth mention in passing that, as an example of fine typography,",
      "the earliest book printed with movable types, the Gutenberg, or forty two line Bible",
  };
  std::vector<std::string> out;
  for (int rep = 0; rep < 20; ++rep)
    for (const char* l : lines) out.push_back(asr::normalize_transcript(l));
  return out;
}

}  // namespace

TEST(Tokenizer, EveryTypeFollowsTheBlankConventionAndRoundTrips) {
  for (const char* type : {"bpe", "unigram", "char"}) {
    asr::Tokenizer tok = asr::train_tokenizer(corpus(), {type, 60});
    EXPECT_EQ(tok.blank_id(), 0);
    EXPECT_EQ(tok.id_to_piece(0), "<blank>") << type;
    EXPECT_EQ(tok.id_to_piece(1), "<unk>") << type;
    EXPECT_LE(tok.vocab_size(), std::string(type) == "char" ? 1000 : 60) << type;
    for (const std::string& s : corpus()) {
      auto ids = tok.encode(s);
      ASSERT_FALSE(ids.empty());
      for (int id : ids) {
        EXPECT_GT(id, 0) << "encode must never emit the blank";
        EXPECT_LT(id, tok.vocab_size());
      }
      EXPECT_EQ(tok.decode(ids), s) << type;
    }
  }
}

TEST(Tokenizer, DecodeSkipsBlanksAndBytesRoundTrip) {
  asr::Tokenizer tok = asr::train_tokenizer(corpus(), {"bpe", 80});
  auto ids = tok.encode("the art of printing");
  std::vector<int> with_blanks = {0};
  for (int id : ids) with_blanks.insert(with_blanks.end(), {id, 0});
  EXPECT_EQ(tok.decode(with_blanks), "the art of printing");
  asr::Tokenizer copy = asr::Tokenizer::from_bytes(tok.model_bytes());
  EXPECT_EQ(copy.encode("the art of printing"), ids);
  EXPECT_EQ(copy.vocab_size(), tok.vocab_size());
}

TEST(Tokenizer, TrainingIsDeterministic) {
  auto a = asr::train_tokenizer(corpus(), {"bpe", 70});
  auto b = asr::train_tokenizer(corpus(), {"bpe", 70});
  EXPECT_EQ(a.model_bytes(), b.model_bytes());
}

TEST(Tokenizer, FileErrorsNameTheFile) {
  asr::test::TempDir dir;
  auto bad = (dir / "bad.model").string();
  std::ofstream(bad) << "not a sentencepiece model";
  for (const std::string& path : {bad, (dir / "missing.model").string()}) {
    try {
      asr::Tokenizer::from_file(path);
      FAIL() << "expected an error for " << path;
    } catch (const asr::Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(asr::train_tokenizer({}, {}), asr::Error);
  EXPECT_THROW(asr::train_tokenizer(corpus(), {"wordpiece", 50}), asr::Error);
}

// A vocabulary one piece short of the text's characters is an error for every
// type (a char model used to map the characters left out to <unk> silently);
// exactly enough gives a model that spells all of the training text.
TEST(Tokenizer, VocabularyMustHoldEveryCharacterOfTheTrainingText) {
  const std::vector<std::string> text = {"abc abd", "zebra caf\xC3\xA9", "quiz 42"};
  const int required = asr::required_vocab_size(text);
  EXPECT_EQ(required, 14 + 3) << "a b c d z e r f \xC3\xA9 q u i 4 2 + word boundary, <blank>, <unk>";
  for (const char* type : {"char", "bpe", "unigram"}) {
    try {
      asr::train_tokenizer(text, {type, required - 1, "--vocab-size"});
      FAIL() << type << ": a vocabulary without room for every character must be refused";
    } catch (const asr::Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("--vocab-size " + std::to_string(required - 1) + " is too small"), std::string::npos) << m;
      EXPECT_NE(m.find("use " + std::to_string(required) + " or more"), std::string::npos) << m;
    }
    asr::Tokenizer tok = asr::train_tokenizer(text, {type, required, "--vocab-size"});
    for (const std::string& s : text)
      for (int id : tok.encode(s)) EXPECT_NE(id, 1) << type << ": '" << s << "' has an <unk> piece";
  }
}
