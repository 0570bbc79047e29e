#include "asr/text/normalize.h"

#include <cstdint>
#include <vector>

namespace asr {
namespace {

// Decodes one code point at text[i], advancing i. Returns -1 for an invalid
// sequence (and advances one byte so the caller can carry on).
int32_t next_code_point(std::string_view text, size_t& i) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  unsigned char c = s[i];
  if (c < 0x80) {
    ++i;
    return c;
  }
  int len;
  int32_t cp;
  int32_t min;
  if ((c & 0xE0) == 0xC0) {
    len = 2, cp = c & 0x1F, min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3, cp = c & 0x0F, min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4, cp = c & 0x07, min = 0x10000;
  } else {
    ++i;
    return -1;
  }
  if (i + len > n) {
    ++i;
    return -1;
  }
  for (int k = 1; k < len; ++k) {
    unsigned char cc = s[i + k];
    if ((cc & 0xC0) != 0x80) {
      ++i;
      return -1;
    }
    cp = (cp << 6) | (cc & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    ++i;
    return -1;
  }
  i += len;
  return cp;
}

// U+00C0-U+00FF without diacritics; "" marks characters that are not letters
// (multiplication and division signs) and become spaces.
const char* const kLatin1[64] = {
    "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",
    "d", "n", "o", "o", "o", "o", "o", "",  "o", "u", "u", "u", "u", "y", "th", "ss",
    "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",
    "d", "n", "o", "o", "o", "o", "o", "",  "o", "u", "u", "u", "u", "y", "th", "y"};

// U+0100-U+017F base letters; '*' marks the two-letter ligatures handled apart.
constexpr char kLatinExtA[] =
    "aaaaaa" "cccccccc" "dddd" "eeeeeeeeee" "gggggggg" "hhhh" "iiiiiiiiii" "**" "jj" "kkk"
    "llllllllll" "nnnnnnnnn" "oooooo" "**" "rrrrrr" "ssssssss" "tttttt" "uuuuuuuuuuuu" "ww" "yyy"
    "zzzzzz" "s";
static_assert(sizeof(kLatinExtA) == 129, "one letter per code point U+0100-U+017F");

bool is_apostrophe(int32_t cp) { return cp == '\'' || cp == 0x2019 || cp == 0x2018; }

// Maps one code point to its normalized spelling; " " for separators, "" for
// characters that vanish (combining marks).
std::string map_code_point(int32_t cp) {
  if (cp >= 'A' && cp <= 'Z') return std::string(1, static_cast<char>(cp - 'A' + 'a'));
  if ((cp >= 'a' && cp <= 'z') || (cp >= '0' && cp <= '9')) return std::string(1, static_cast<char>(cp));
  if (cp >= 0xC0 && cp <= 0xFF) {
    const char* m = kLatin1[cp - 0xC0];
    return *m ? std::string(m) : std::string(" ");
  }
  if (cp >= 0x100 && cp <= 0x17F) {
    if (cp == 0x132 || cp == 0x133) return "ij";
    if (cp == 0x152 || cp == 0x153) return "oe";
    return std::string(1, kLatinExtA[cp - 0x100]);
  }
  if (cp >= 0x300 && cp <= 0x36F) return "";
  switch (cp) {
    case '&': return " and ";
    case 0xA3: return " pounds ";
    case '$': return " dollars ";
    case 0x20AC: return " euros ";
    case '%': return " percent ";
    case '@': return " at ";
    case '+': return " plus ";
    default: return " ";
  }
}

bool is_word_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

}  // namespace

bool is_valid_utf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size())
    if (next_code_point(text, i) < 0) return false;
  return true;
}

std::string normalize_transcript(std::string_view text) {
  // First pass maps characters, keeping apostrophes as a marker; the second
  // decides about each apostrophe once both neighbours are known.
  std::string mapped;
  mapped.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    int32_t cp = next_code_point(text, i);
    if (cp < 0) {
      mapped += ' ';
    } else if (is_apostrophe(cp)) {
      mapped += '\'';
    } else {
      mapped += map_code_point(cp);
    }
  }
  std::string out;
  out.reserve(mapped.size());
  for (size_t k = 0; k < mapped.size(); ++k) {
    char c = mapped[k];
    if (c == '\'') {
      bool inside = k > 0 && k + 1 < mapped.size() && is_word_char(mapped[k - 1]) && is_word_char(mapped[k + 1]);
      c = inside ? '\'' : ' ';
    }
    if (c == ' ') {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += c;
    }
  }
  if (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace asr
