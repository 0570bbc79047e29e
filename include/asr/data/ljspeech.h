// Reading an LJSpeech-1.1 directory's metadata.csv: `ID|raw|normalized`,
// UTF-8, pipe-delimited, no quoting, audio in wavs/ID.wav. Rows that cannot be
// used are returned as rejects with a reason; nothing is dropped silently
// (only blank lines, which are not rows, are passed over).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace asr {

struct CorpusRow {
  size_t line = 0;         // 1-based line in metadata.csv
  std::string id;
  std::string text;        // the normalized column, as written
  std::string normalized;  // normalize_transcript(text), the CTC target text
  std::string wav_path;
};

struct Reject {
  size_t line = 0;
  std::string id;  // empty when the line has no usable id
  std::string reason;
};

struct CorpusListing {
  std::vector<CorpusRow> rows;
  std::vector<Reject> rejects;
};

// Throws asr::Error when `dir` or its metadata.csv is missing or unreadable.
// Checks each line's shape, UTF-8, id, transcript and duplicate ids (the
// first occurrence wins); does not touch the audio files.
CorpusListing read_ljspeech_metadata(const std::string& dir);

}  // namespace asr
