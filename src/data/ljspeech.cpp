#include "asr/data/ljspeech.h"

#include <filesystem>
#include <fstream>
#include <unordered_map>

#include "asr/core/error.h"
#include "asr/text/normalize.h"

namespace asr {
namespace fs = std::filesystem;
namespace {

std::vector<std::string> split_pipes(const std::string& line) {
  std::vector<std::string> fields;
  size_t start = 0;
  while (true) {
    size_t bar = line.find('|', start);
    fields.push_back(line.substr(start, bar == std::string::npos ? std::string::npos : bar - start));
    if (bar == std::string::npos) break;
    start = bar + 1;
  }
  return fields;
}

// Ids become file names, so they must not be able to leave wavs/.
std::string id_problem(const std::string& id) {
  if (id.empty()) return "empty id";
  if (id == "." || id == ".." || id.find('/') != std::string::npos || id.find('\\') != std::string::npos)
    return "id '" + id + "' is not a plain file name";
  for (unsigned char c : id)
    if (c < 0x20 || c == 0x7f || c == ' ') return "id contains spaces or control characters";
  return "";
}

}  // namespace

CorpusListing read_ljspeech_metadata(const std::string& dir) {
  if (!fs::is_directory(dir)) throw Error("input " + dir + " is not a directory (expected an LJSpeech-1.1 folder)");
  fs::path meta = fs::path(dir) / "metadata.csv";
  std::ifstream in(meta, std::ios::binary);
  if (!in) throw DataError(meta.string() + " is missing or unreadable (expected ID|raw|normalized lines)");

  CorpusListing out;
  std::unordered_map<std::string, size_t> first_line;
  std::string line;
  size_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (lineno == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // UTF-8 byte-order mark
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    auto reject = [&](std::string id, std::string reason) {
      out.rejects.push_back(Reject{lineno, std::move(id), std::move(reason)});
    };
    if (!is_valid_utf8(line)) {
      reject("", "invalid UTF-8");
      continue;
    }
    std::vector<std::string> f = split_pipes(line);
    if (f.size() != 3) {
      reject(f.size() > 1 ? f[0] : "", "malformed line: expected 3 fields ID|raw|normalized, found " +
                                           std::to_string(f.size()));
      continue;
    }
    const std::string& id = f[0];
    if (std::string p = id_problem(id); !p.empty()) {
      reject("", p);
      continue;
    }
    if (auto it = first_line.find(id); it != first_line.end()) {
      reject(id, "duplicate id (first seen on line " + std::to_string(it->second) + ")");
      continue;
    }
    first_line.emplace(id, lineno);
    const std::string& text = f[2];
    if (text.find_first_not_of(" \t") == std::string::npos) {
      reject(id, "empty transcript");
      continue;
    }
    std::string norm = normalize_transcript(text);
    if (norm.empty()) {
      reject(id, "transcript has no letters or digits after normalization");
      continue;
    }
    CorpusRow row;
    row.line = lineno;
    row.id = id;
    row.text = text;
    row.normalized = std::move(norm);
    row.wav_path = (fs::path(dir) / "wavs" / (id + ".wav")).string();
    out.rows.push_back(std::move(row));
  }
  if (in.bad()) throw DataError("error while reading " + meta.string());
  return out;
}

}  // namespace asr
