#include "asr/text/normalize.h"

#include <gtest/gtest.h>

using asr::normalize_transcript;

TEST(Normalize, LowercasesAndDropsPunctuation) {
  EXPECT_EQ(normalize_transcript("Printing, in the ONLY sense; \"quoted\" (text)!"),
            "printing in the only sense quoted text");
  EXPECT_EQ(normalize_transcript("well-known -- dashes\u2014and/slashes"), "well known dashes and slashes");
  EXPECT_EQ(normalize_transcript("  spaces \t\t everywhere  "), "spaces everywhere");
}

TEST(Normalize, AccentsLigaturesAndSymbols) {
  EXPECT_EQ(normalize_transcript("Café NAÏVE façade Łódź"), "cafe naive facade lodz");
  EXPECT_EQ(normalize_transcript("e\u0301te\u0301"), "ete") << "combining accents vanish";
  EXPECT_EQ(normalize_transcript("Æsop's Œuvre Straße Þing"), "aesop's oeuvre strasse thing");
  EXPECT_EQ(normalize_transcript("£5 & $3, 10% @home +1 €2"), "pounds 5 and dollars 3 10 percent at home plus 1 euros 2");
}

TEST(Normalize, ApostrophesOnlyInsideWords) {
  EXPECT_EQ(normalize_transcript("don't 'quoted' rock'n'roll it\u2019s"), "don't quoted rock'n'roll it's");
  EXPECT_EQ(normalize_transcript("the boys' toys"), "the boys toys");
}

TEST(Normalize, OtherScriptsAndInvalidBytesBecomeSpaces) {
  EXPECT_EQ(normalize_transcript("abc \xD0\x9F\xD1\x80\xD0\xB8 def"), "abc def");
  EXPECT_EQ(normalize_transcript("ab\xFF" "cd"), "ab cd");
  EXPECT_EQ(normalize_transcript("...!!!"), "");
}

TEST(Normalize, OutputAlphabetIsClosed) {
  std::string all;
  for (int c = 1; c < 128; ++c) all += static_cast<char>(c);
  all += "\u00e9\u00df\u0153\u20ac\u00a3\u4e2d";
  for (char c : normalize_transcript(all))
    EXPECT_TRUE((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '\'' || c == ' ') << int(c);
}

TEST(Utf8, Validation) {
  EXPECT_TRUE(asr::is_valid_utf8("plain ascii"));
  EXPECT_TRUE(asr::is_valid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));
  EXPECT_FALSE(asr::is_valid_utf8("bad \xFF byte"));
  EXPECT_FALSE(asr::is_valid_utf8("truncated \xC3"));
  EXPECT_FALSE(asr::is_valid_utf8("overlong \xC0\xAF"));
  EXPECT_FALSE(asr::is_valid_utf8("surrogate \xED\xA0\x80"));
  EXPECT_FALSE(asr::is_valid_utf8("too big \xF4\x90\x80\x80"));
  EXPECT_FALSE(asr::is_valid_utf8("latin1 caf\xE9"));
}
