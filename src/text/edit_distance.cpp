#include "asr/text/edit_distance.h"

#include <algorithm>
#include <cctype>

namespace asr {

double ErrorCounts::rate() const {
  if (ref_len == 0) return errors() == 0 ? 0.0 : 1.0;
  return static_cast<double>(errors()) / static_cast<double>(ref_len);
}

ErrorCounts& ErrorCounts::operator+=(const ErrorCounts& other) {
  sub += other.sub;
  del += other.del;
  ins += other.ins;
  ref_len += other.ref_len;
  return *this;
}

Alignment align_tokens(const std::vector<std::string>& ref, const std::vector<std::string>& hyp) {
  const size_t n = ref.size(), m = hyp.size();
  // Full table: utterances are short, and the backtrace needs it.
  std::vector<int64_t> d((n + 1) * (m + 1));
  auto at = [&](size_t i, size_t j) -> int64_t& { return d[i * (m + 1) + j]; };
  for (size_t i = 0; i <= n; ++i) at(i, 0) = static_cast<int64_t>(i);
  for (size_t j = 0; j <= m; ++j) at(0, j) = static_cast<int64_t>(j);
  for (size_t i = 1; i <= n; ++i)
    for (size_t j = 1; j <= m; ++j) {
      int64_t diag = at(i - 1, j - 1) + (ref[i - 1] == hyp[j - 1] ? 0 : 1);
      at(i, j) = std::min({diag, at(i - 1, j) + 1, at(i, j - 1) + 1});
    }

  Alignment out;
  out.counts.ref_len = static_cast<int64_t>(n);
  size_t i = n, j = m;
  while (i > 0 || j > 0) {
    if (i > 0 && j > 0 && at(i, j) == at(i - 1, j - 1) + (ref[i - 1] == hyp[j - 1] ? 0 : 1)) {
      bool same = ref[i - 1] == hyp[j - 1];
      out.pairs.push_back({same ? EditOp::kMatch : EditOp::kSub, ref[i - 1], hyp[j - 1]});
      if (!same) ++out.counts.sub;
      --i, --j;
    } else if (i > 0 && at(i, j) == at(i - 1, j) + 1) {
      out.pairs.push_back({EditOp::kDel, ref[i - 1], ""});
      ++out.counts.del;
      --i;
    } else {
      out.pairs.push_back({EditOp::kIns, "", hyp[j - 1]});
      ++out.counts.ins;
      --j;
    }
  }
  std::reverse(out.pairs.begin(), out.pairs.end());
  return out;
}

ErrorCounts count_errors(const std::vector<std::string>& ref, const std::vector<std::string>& hyp) {
  // Two rows of (cost, sub, del, ins); ties resolved as in align_tokens's
  // preference so both functions report the same split of the errors.
  struct Cell {
    int64_t cost, sub, del, ins;
  };
  const size_t n = ref.size(), m = hyp.size();
  std::vector<Cell> prev(m + 1), cur(m + 1);
  for (size_t j = 0; j <= m; ++j) prev[j] = {static_cast<int64_t>(j), 0, 0, static_cast<int64_t>(j)};
  for (size_t i = 1; i <= n; ++i) {
    cur[0] = {static_cast<int64_t>(i), 0, static_cast<int64_t>(i), 0};
    for (size_t j = 1; j <= m; ++j) {
      const bool same = ref[i - 1] == hyp[j - 1];
      Cell diag = prev[j - 1];
      diag.cost += same ? 0 : 1;
      diag.sub += same ? 0 : 1;
      Cell del = prev[j];
      ++del.cost, ++del.del;
      Cell ins = cur[j - 1];
      ++ins.cost, ++ins.ins;
      cur[j] = diag;
      if (del.cost < cur[j].cost) cur[j] = del;
      if (ins.cost < cur[j].cost) cur[j] = ins;
    }
    std::swap(prev, cur);
  }
  ErrorCounts counts;
  counts.sub = prev[m].sub;
  counts.del = prev[m].del;
  counts.ins = prev[m].ins;
  counts.ref_len = static_cast<int64_t>(n);
  return counts;
}

namespace {

bool is_space(unsigned char c) { return std::isspace(c) != 0; }

// Length of the UTF-8 sequence starting with `lead`; invalid bytes count as one.
size_t utf8_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead >> 5) == 0x6) return 2;
  if ((lead >> 4) == 0xE) return 3;
  if ((lead >> 3) == 0x1E) return 4;
  return 1;
}

}  // namespace

std::vector<std::string> split_chars(std::string_view text) {
  std::vector<std::string> out;
  bool pending_space = false;
  for (size_t i = 0; i < text.size();) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (is_space(c)) {
      pending_space = !out.empty();
      ++i;
      continue;
    }
    if (pending_space) out.emplace_back(" ");
    pending_space = false;
    size_t len = std::min(utf8_length(c), text.size() - i);
    out.emplace_back(text.substr(i, len));
    i += len;
  }
  return out;
}

std::vector<std::string> split_words(std::string_view text) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_space(static_cast<unsigned char>(text[i]))) ++i;
    size_t start = i;
    while (i < text.size() && !is_space(static_cast<unsigned char>(text[i]))) ++i;
    if (i > start) out.emplace_back(text.substr(start, i - start));
  }
  return out;
}

ErrorCounts char_errors(std::string_view ref, std::string_view hyp) {
  return count_errors(split_chars(ref), split_chars(hyp));
}

ErrorCounts word_errors(std::string_view ref, std::string_view hyp) {
  return count_errors(split_words(ref), split_words(hyp));
}

namespace {

size_t display_width(const std::string& s) {
  size_t w = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++w;
  return w;
}

std::string upper_ascii(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::string format_alignment(const Alignment& alignment) {
  std::string ref_line = "REF: ", hyp_line = "HYP: ", eval_line = "EVAL:";
  for (const AlignedPair& p : alignment.pairs) {
    std::string r = p.ref, h = p.hyp;
    if (p.op == EditOp::kSub) r = upper_ascii(r), h = upper_ascii(h);
    size_t width = std::max<size_t>({display_width(p.ref), display_width(p.hyp), 1});
    if (r.empty()) r = std::string(width, '*');
    if (h.empty()) h = std::string(width, '*');
    std::string e = p.op == EditOp::kMatch ? "" : std::string(1, static_cast<char>(p.op));
    auto pad = [&](std::string& line, const std::string& cell) {
      line += ' ';
      line += cell;
      line.append(width - display_width(cell), ' ');
    };
    pad(ref_line, r);
    pad(hyp_line, h);
    pad(eval_line, e);
  }
  auto rtrim = [](std::string s) {
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
  };
  return rtrim(ref_line) + "\n" + rtrim(hyp_line) + "\n" + rtrim(eval_line) + "\n";
}

}  // namespace asr
