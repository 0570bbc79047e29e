#include "asr/data/ljspeech.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <unordered_map>

#include "asr/core/error.h"
#include "asr/core/file_checks.h"
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

// The input's shape, checked by type before anything is opened.
void require_corpus_layout(const fs::path& dir, const fs::path& meta) {
  if (std::error_code ec; !fs::is_directory(dir, ec))
    throw Error("input " + dir.string() + " is " + describe_file_type(dir) +
                ", not a directory; give --input an LJSpeech-1.1 folder (metadata.csv and wavs/)");
  require_regular_input(meta, "metadata file");
  const fs::path wavs = dir / "wavs";
  if (std::error_code ec; !fs::is_directory(wavs, ec))
    throw DataError("input " + dir.string() + " has no wavs/ directory (" + wavs.string() + " is " +
                    describe_file_type(wavs) + "); the audio must be in wavs/ID.wav");
}

}  // namespace

AudioLookup locate_audio(const std::string& wavs_dir, const std::string& id) {
  const std::string base = (fs::path(wavs_dir) / id).string();
  for (const char* ext : kAudioExtensions) {
    const fs::path path = base + ext;
    if (std::error_code ec; !fs::exists(path, ec)) continue;
    try {
      require_regular_input(path, "audio file");
    } catch (const Error& e) {
      return AudioLookup{"", "not a regular file", e.what()};
    }
    return AudioLookup{path.string(), "", ""};
  }
  const size_t n = std::size(kAudioExtensions);
  std::string tried = base + kAudioExtensions[0];
  for (size_t i = 1; i < n; ++i) tried += std::string(i + 1 == n ? " or " : ", ") + kAudioExtensions[i];
  return AudioLookup{"", "missing audio", "audio not found: no " + tried};
}

CorpusListing read_ljspeech_metadata(const std::string& dir) {
  const fs::path meta = fs::path(dir) / "metadata.csv";
  require_corpus_layout(dir, meta);
  std::ifstream in(meta, std::ios::binary);
  if (!in) throw DataError(meta.string() + " is unreadable (expected ID|raw|normalized lines)");

  CorpusListing out;
  std::unordered_map<std::string, size_t> first_line;
  std::string line;
  size_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (lineno == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // UTF-8 byte-order mark
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    auto reject = [&](std::string id, std::string kind, std::string reason) {
      out.rejects.push_back(Reject{lineno, std::move(id), std::move(reason), std::move(kind)});
    };
    if (!is_valid_utf8(line)) {
      reject("", "invalid UTF-8", "invalid UTF-8");
      continue;
    }
    std::vector<std::string> f = split_pipes(line);
    if (f.size() != 3) {
      reject(f.size() > 1 ? f[0] : "", "malformed line",
             "malformed line: expected 3 fields ID|raw|normalized, found " + std::to_string(f.size()));
      continue;
    }
    const std::string& id = f[0];
    if (std::string p = id_problem(id); !p.empty()) {
      reject("", "bad id", p);
      continue;
    }
    if (auto it = first_line.find(id); it != first_line.end()) {
      reject(id, "duplicate id", "duplicate id (first seen on line " + std::to_string(it->second) + ")");
      continue;
    }
    first_line.emplace(id, lineno);
    const std::string& text = f[2];
    if (text.find_first_not_of(" \t") == std::string::npos) {
      reject(id, "empty transcript", "empty transcript");
      continue;
    }
    std::string norm = normalize_transcript(text);
    if (norm.empty()) {
      reject(id, "no text after normalization", "transcript has no letters or digits after normalization");
      continue;
    }
    CorpusRow row;
    row.line = lineno;
    row.id = id;
    row.text = text;
    row.normalized = std::move(norm);
    row.audio_path = (fs::path(dir) / "wavs" / (id + ".wav")).string();
    out.rows.push_back(std::move(row));
  }
  if (in.bad()) throw DataError("error while reading " + meta.string());
  return out;
}

}  // namespace asr
