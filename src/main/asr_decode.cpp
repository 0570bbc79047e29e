// asr_decode: transcripts from a checkpoint and audio files or a
// preprocessed dataset split, optionally scored against references.
// Phases, one function each: options -> checkpoint -> inputs and references
// -> LM -> decode -> output and scores -> summary. Decoding, scoring and the
// LM live in src/decode; this file gathers inputs, orders the phases, writes
// the results and maps failures to exit statuses (docs/decoding.md).
#include <CLI/CLI.hpp>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "asr/audio/audio_io.h"
#include "asr/core/atomic_file.h"
#include "asr/core/error.h"
#include "asr/core/file_checks.h"
#include "asr/data/dataset.h"
#include "asr/decode/char_lm.h"
#include "asr/decode/decoder.h"
#include "asr/decode/scoring.h"
#include "asr/text/tokenizer.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Cli {
  std::string checkpoint;
  std::vector<std::string> inputs;
  std::string list, data, split = "val", refs, format = "text", output, report;
  std::string lm_text;
  std::string device = "cpu";
  int lm_order = 6;
  bool no_verify = false;  // skip the CRC-32C of the dataset's shards and tokenizer against its manifest
  asr::DecodeOptions decode;
  std::map<std::string, bool> given;  // flag -> given on the command line (defaults that would be ignored are errors)
};

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Flags that only mean something together with another one: given alone
// they would be silently ignored, so they are usage errors.
void check_flag_combinations(const Cli& c) {
  auto given = [&](const char* flag) { return c.given.count(flag) && c.given.at(flag); };
  const bool files = !c.inputs.empty() || !c.list.empty();
  if (files == !c.data.empty())
    throw asr::Error("give audio files (INPUT... or --list FILE) or --data DIR --split SPLIT, not both and not neither");
  if (!c.data.empty() && !c.refs.empty()) throw asr::Error("--refs is for audio files; --data brings its own references");
  if (!c.report.empty() && c.data.empty() && c.refs.empty()) throw asr::Error("--report needs references (--refs or --data)");
  for (const char* flag : {"--split", "--no-verify"})
    if (given(flag) && c.data.empty()) throw asr::Error(std::string(flag) + " is for --data DIR; leave it out for audio files");
  if (!c.lm_text.empty() && c.decode.beam <= 1) throw asr::Error("--lm-text needs beam search (--beam 2 or more)");
  for (const char* flag : {"--lm-order", "--lm-weight", "--lm-bonus"})
    if (given(flag) && c.lm_text.empty()) throw asr::Error(std::string(flag) + " needs an LM: add --lm-text FILE");
  for (const char* flag : {"--nbest", "--prune"})
    if (given(flag) && c.decode.beam <= 1) throw asr::Error(std::string(flag) + " is for beam search: add --beam N (N >= 2)");
  if (given("--chunk-overlap") && c.decode.chunk_seconds == 0)
    throw asr::Error("--chunk-overlap needs chunking; it means nothing with --chunk-seconds 0");
  if (c.lm_order < 1 || c.lm_order > asr::CharNgramLm::kMaxOrder)
    throw asr::Error("--lm-order " + std::to_string(c.lm_order) + " is out of range: it must be between 1 and " +
                     std::to_string(asr::CharNgramLm::kMaxOrder) + " (LM memory grows with the order; docs/decoding.md)");
}

// 1. Options. Returns nullopt after --help or a flag CLI11 rejects.
std::optional<Cli> parse_cli(int argc, char** argv, int* exit_code) {
  Cli c;
  CLI::App app{"Transcribe audio with an asr_ddp checkpoint: greedy or beam-search CTC decoding, text or JSONL\n"
               "output, CER/WER against references. Summary (files, audio seconds, wall time, RTF) on stderr.\n"
               "See docs/decoding.md (ranges of every option, exit statuses).",
               "asr_decode"};
  // Paths, each of which must be non-empty when given.
  std::vector<std::pair<CLI::Option*, const std::string*>> paths;
  auto path = [&](const char* name, std::string& value, const std::string& help) {
    CLI::Option* o = app.add_option(name, value, help);
    paths.emplace_back(o, &value);
    return o;
  };
  path("--checkpoint", c.checkpoint, "checkpoint file written by asr_ddp (e.g. RUN/checkpoints/best.ckpt)")->required();
  app.add_option("inputs", c.inputs, "audio files (anything libsndfile reads; any rate and channel count)");
  path("--list", c.list, "file with one audio path per line ('#' comments and blank lines skipped)");
  path("--data", c.data, "preprocessed dataset directory (asr_preprocess output); decodes --split and scores it");
  app.add_option("--split", c.split, "split of --data to decode")->check(CLI::IsMember({"train", "val", "test"}));
  app.add_flag("--no-verify", c.no_verify,
               "with --data: skip the CRC-32C check of the shards and tokenizer against manifest.json "
               "(docs/data-format.md)");
  path("--refs", c.refs, "references to score against: id<TAB>text per line (id = file name without extension)");
  app.add_option("--beam", c.decode.beam,
                 "beam width, 1-" + std::to_string(asr::kMaxBeam) + "; 1 = greedy (best path)")->capture_default_str();
  app.add_option("--nbest", c.decode.nbest, "hypotheses per input in JSONL output with --beam, 1 to beam+1 (default: min(beam, 5))");
  app.add_option("--prune", c.decode.prune, "beam search: skip tokens this many nats below each frame's best (0-1000]")
      ->capture_default_str();
  path("--lm-text", c.lm_text,
       "train a character n-gram LM for shallow fusion (beam search) from these transcripts: metadata.csv, "
       "id<TAB>text or one per line; ids being decoded are left out");
  app.add_option("--lm-order", c.lm_order,
                 "n-gram order of the character LM, 1-" + std::to_string(asr::CharNgramLm::kMaxOrder))->capture_default_str();
  app.add_option("--lm-weight", c.decode.fusion.weight, "LM weight in the beam score, 0-10")->capture_default_str();
  app.add_option("--lm-bonus", c.decode.fusion.length_bonus, "score bonus per character with an LM, -10 to 10")
      ->capture_default_str();
  app.add_option("--format", c.format, "output: text (id<TAB>transcript) or jsonl")
      ->check(CLI::IsMember({"text", "jsonl"}))->capture_default_str();
  path("-o,--output", c.output, "write transcripts to this regular file (atomically) instead of stdout");
  path("--report", c.report, "write a per-utterance error report (sclite-like) to this regular file");
  app.add_option("--threads", c.decode.threads, "worker threads, 1-256 (each runs the model single-threaded; 1 on a GPU)")
      ->capture_default_str();
  app.add_option("--device", c.device, "where the model runs: cpu, cuda or cuda:N (batches on the GPU)")
      ->capture_default_str();
  app.add_option("--batch", c.decode.batch, "inputs per forward pass, 1-1024")->capture_default_str();
  app.add_option("--chunk-seconds", c.decode.chunk_seconds,
                 "decode longer inputs in overlapping chunks of 1-120 s; 0 = never")->capture_default_str();
  app.add_option("--chunk-overlap", c.decode.chunk_overlap_seconds, "overlap between chunks, seconds (under half a chunk)")
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    *exit_code = app.exit(e);
    return std::nullopt;
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    *exit_code = asr::kExitUsage;
    return std::nullopt;
  }
  for (const auto& [option, value] : paths)
    if (option->count() > 0 && value->empty())
      throw asr::Error(option->get_name() + " needs a path, got an empty string");
  for (const char* flag : {"--split", "--no-verify", "--nbest", "--prune", "--lm-order", "--lm-weight", "--lm-bonus",
                           "--chunk-overlap"})
    c.given[flag] = app.get_option(flag)->count() > 0;
  if (!c.given["--nbest"]) c.decode.nbest = std::min(c.decode.beam, 5);
  check_flag_combinations(c);
  asr::validate_decode_options(c.decode);
  return c;
}

// 3a. Audio files: named on the command line and/or in --list.
std::vector<std::string> gather_paths(const Cli& c) {
  std::vector<std::string> paths = c.inputs;
  if (!c.list.empty()) {
    std::ifstream in(c.list);
    if (!in) throw asr::Error("--list " + c.list + ": cannot open the file");
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty() || line[0] == '#') continue;
      paths.push_back(line);
    }
    if (in.bad()) throw asr::DataError("--list " + c.list + ": read error");
  }
  return paths;
}

std::vector<asr::DecodeInput> file_inputs(const std::vector<std::string>& paths, int rate) {
  std::vector<asr::DecodeInput> inputs;
  for (const std::string& path : paths) {
    asr::DecodeInput in;
    in.id = fs::path(path).stem().string();
    try {
      asr::require_regular_input(path, "audio input");  // a FIFO or device would block the worker forever
      in.seconds = asr::probe_audio(path).duration();
      in.load = [path, rate] { return asr::load_audio(path, rate); };
    } catch (const std::exception& e) {
      // Reported (and counted as failed) in input order with the rest.
      std::string why = e.what();
      in.load = [why]() -> std::vector<float> { throw asr::Error(why); };
    }
    inputs.push_back(std::move(in));
  }
  return inputs;
}

// 3b. A dataset split: audio already at the corpus rate, resampled if the
// model differs. The reference text arrives with the audio (get() returns
// both), so each loader also stores its utterance's reference.
std::vector<asr::DecodeInput> dataset_inputs(const asr::Dataset& ds, int rate, std::vector<std::string>* refs) {
  refs->assign(ds.size(), std::string());
  std::vector<asr::DecodeInput> inputs;
  for (size_t i = 0; i < ds.size(); ++i) {
    asr::DecodeInput in;
    in.id = ds.id(i);
    in.seconds = ds.duration(i);
    in.load = [&ds, i, rate, refs] {
      auto u = ds.get(i);
      (*refs)[i] = u.normalized;  // one writer per slot
      return ds.sample_rate() == rate ? std::move(u.audio) : asr::resample(u.audio, ds.sample_rate(), rate);
    };
    inputs.push_back(std::move(in));
  }
  return inputs;
}

nlohmann::json to_json(const asr::Transcript& t, const asr::UtteranceScore* score, bool beam) {
  nlohmann::json j;
  j["id"] = t.id;
  if (!t.ok()) {
    j["error"] = t.error;
    return j;
  }
  j["text"] = t.text;
  j["score"] = t.score;
  j["seconds"] = t.audio_seconds;
  if (t.chunks > 1) j["chunks"] = t.chunks;
  if (beam) {
    j["nbest"] = nlohmann::json::array();
    for (const auto& h : t.nbest) {
      nlohmann::json hj{{"text", h.text}, {"score", h.score}, {"acoustic", h.acoustic}};
      if (h.lm != 0) hj["lm"] = h.lm;
      j["nbest"].push_back(hj);
    }
  }
  if (score) {
    auto counts = [](const asr::ErrorCounts& c) {
      return nlohmann::json{{"sub", c.sub}, {"del", c.del}, {"ins", c.ins}, {"ref", c.ref_len}};
    };
    j["ref"] = score->reference;
    j["cer"] = score->chars.rate();
    j["wer"] = score->words.rate();
    j["char_errors"] = counts(score->chars);
    j["word_errors"] = counts(score->words);
  }
  return j;
}

// Input files named by flags, checked before anything is loaded: a missing
// one is a usage error, anything but a regular file (a FIFO would block the
// read forever, a device never end) a data error. The checkpoint has its own
// checks in load_checkpoint_model, audio files theirs per input.
void check_input_files(const Cli& c) {
  for (const auto& [flag, path] : {std::pair<const char*, const std::string&>{"--list", c.list},
                                   {"--lm-text", c.lm_text}, {"--refs", c.refs}}) {
    if (path.empty()) continue;
    std::error_code ec;
    if (!fs::exists(path, ec)) throw asr::Error(std::string(flag) + " " + path + ": no such file; check the path");
    asr::require_regular_input(path, flag);
  }
}

// Every file the run reads, for the check that no output overwrites one.
std::vector<fs::path> files_read(const Cli& c, const std::vector<std::string>& audio) {
  std::vector<fs::path> files(audio.begin(), audio.end());
  for (const std::string* p : {&c.checkpoint, &c.list, &c.lm_text, &c.refs})
    if (!p->empty()) files.emplace_back(*p);
  std::error_code ec;
  if (!c.data.empty() && fs::is_directory(c.data, ec))
    for (const auto& entry : fs::directory_iterator(c.data, ec)) files.push_back(entry.path());
  return files;
}

// -o and --report: regular files (written atomically: a temporary file is
// renamed over the path) in an existing directory, never an input and never
// each other. Checked before decoding, so a bad path does not cost a run.
void check_output(const std::string& path, const char* flag, const std::vector<fs::path>& inputs) {
  if (path.empty()) return;
  const std::string type = asr::describe_file_type(path);
  if (type != "missing" && type != "a regular file")
    throw asr::Error(std::string(flag) + " " + path + " is " + type +
                     ", not a regular file; outputs are written atomically (a temporary file renamed over the path), "
                     "so give a file path" +
                     (std::string(flag) == "-o" ? ", or leave out -o and redirect standard output (e.g. '> " + path + "')"
                                                : ""));
  const fs::path parent = fs::path(path).parent_path().empty() ? fs::path(".") : fs::path(path).parent_path();
  std::error_code ec;
  if (!fs::is_directory(parent, ec))
    throw asr::Error(std::string(flag) + " " + path + ": the directory " + parent.string() +
                     " does not exist; create it first");
  asr::require_writable_output(path, flag, inputs);
}

void check_outputs(const Cli& c, const std::vector<std::string>& audio) {
  const auto inputs = files_read(c, audio);
  check_output(c.output, "-o", inputs);
  check_output(c.report, "--report", inputs);
  std::error_code ec;
  if (!c.output.empty() && !c.report.empty() &&
      fs::weakly_canonical(c.output, ec) == fs::weakly_canonical(c.report, ec))
    throw asr::Error("-o and --report both name " + c.output + "; give them different files");
}

// Standard output that cannot take the transcripts (a full disk, /dev/full,
// a closed pipe) is an error: the run's results would be lost.
void write_stdout(const std::string& text) {
  errno = 0;
  std::cout << text << std::flush;
  if (!std::cout)
    throw asr::DataError(std::string("cannot write the transcripts to standard output") +
                         (errno ? std::string(": ") + std::strerror(errno) : std::string()) +
                         "; free space where it goes, or write them to a file with -o FILE");
}

// 2. Checkpoint: the model, its tokenizer and sample rate.
asr::Decoder load_decoder(const Cli& c) {
  auto t_load = Clock::now();
  asr::Decoder decoder = asr::Decoder::from_checkpoint(c.checkpoint, c.device);
  std::fprintf(stderr, "asr_decode: %s: %.2fM parameters, %d tokens, %d Hz, on %s%s (loaded in %.2f s)\n",
               c.checkpoint.c_str(), decoder.num_parameters() / 1e6, decoder.tokenizer().vocab_size(),
               decoder.sample_rate(), decoder.device().c_str(),
               decoder.step() >= 0 ? (", step " + std::to_string(decoder.step())).c_str() : "",
               seconds_since(t_load));
  return decoder;
}

// What is decoded, and what it is scored against.
struct Work {
  std::vector<asr::DecodeInput> inputs;
  std::map<std::string, std::string> refs;      // id -> reference (files with --refs)
  std::unique_ptr<asr::Dataset> dataset;        // --data
  std::vector<std::string> dataset_refs;        // filled as the dataset's inputs load
  bool scoring = false;
};

// 3-4. Inputs and references.
Work gather_work(const Cli& c, int rate, const std::vector<std::string>& paths) {
  Work w;
  if (!c.data.empty()) {
    w.dataset = std::make_unique<asr::Dataset>(asr::Dataset::open(c.data, c.split, !c.no_verify));
    w.inputs = dataset_inputs(*w.dataset, rate, &w.dataset_refs);
  } else {
    w.inputs = file_inputs(paths, rate);
    if (!c.refs.empty()) w.refs = asr::read_reference_tsv(c.refs);
  }
  if (w.inputs.empty()) throw asr::Error("nothing to decode: no inputs given (or the split is empty)");
  w.scoring = !c.data.empty() || !c.refs.empty();
  return w;
}

// 5. Optional character LM, never trained on what is being scored.
std::optional<asr::CharNgramLm> train_lm(const Cli& c, const Work& w) {
  if (c.lm_text.empty()) return std::nullopt;
  std::vector<std::string> exclude, exclude_texts;
  for (const auto& in : w.inputs) exclude.push_back(in.id);
  for (size_t i = 0; w.dataset && i < w.dataset->size(); ++i) exclude_texts.push_back(w.dataset->normalized(i));
  for (const auto& [id, text] : w.refs) {
    exclude.push_back(id);
    exclude_texts.push_back(text);
  }
  auto corpus = asr::read_lm_corpus(c.lm_text, exclude, exclude_texts);
  auto lm = asr::CharNgramLm::train(corpus.sentences, c.lm_order);
  std::fprintf(stderr, "asr_decode: character %d-gram LM from %zu transcripts of %s (%zu left out: being decoded, by id or text)\n",
               c.lm_order, corpus.sentences.size(), c.lm_text.c_str(), corpus.excluded);
  return lm;
}

// Counts of one run, for the summary line and the exit status.
struct Tally {
  asr::ScoreSummary scores;
  int64_t decoded = 0, failed = 0, missing_refs = 0;
  double audio_seconds = 0;
};

// 7-8. Transcripts in input order, with scores where references exist;
// returns the counts and writes the output and the report.
Tally write_results(const Cli& c, const std::vector<asr::Transcript>& results, const Work& w, bool beam) {
  std::ostringstream out, report;
  Tally tally;
  for (const auto& t : results) {
    std::optional<asr::UtteranceScore> score;
    if (!t.ok()) {
      ++tally.failed;
    } else {
      ++tally.decoded;
      tally.audio_seconds += t.audio_seconds;
      auto ref = w.scoring ? w.refs.find(t.id) : w.refs.end();
      if (w.scoring && ref == w.refs.end()) ++tally.missing_refs;
      if (ref != w.refs.end()) {
        score = asr::score_utterance(t.id, ref->second, t.text);
        tally.scores.add(*score);
        report << asr::format_utterance_report(*score) << "\n";
      }
    }
    if (c.format == "jsonl")
      out << to_json(t, score ? &*score : nullptr, beam).dump() << "\n";
    else if (t.ok())
      out << t.id << "\t" << t.text << "\n";
  }
  if (c.output.empty())
    write_stdout(out.str());
  else
    asr::write_file_atomic(c.output, out.str());
  if (!c.report.empty()) asr::write_file_atomic(c.report, report.str());
  return tally;
}

// 9. Summary on stderr.
void print_summary(const Tally& tally, const Work& w, double wall, const asr::DecodeOptions& options, bool lm) {
  if (w.scoring) {
    if (tally.missing_refs > 0)
      std::fprintf(stderr, "asr_decode: warning: %lld decoded inputs have no reference and are not scored\n",
                   static_cast<long long>(tally.missing_refs));
    std::fprintf(stderr, "%s\n", tally.scores.format().c_str());
  }
  const std::string search = options.beam > 1 ? "beam " + std::to_string(options.beam) + (lm ? " + LM" : "") : "greedy";
  std::fprintf(stderr,
               "asr_decode: %lld files decoded, %lld failed, %.2f s of audio, wall %.3f s, RTF %.4f (%s, %d thread%s)\n",
               static_cast<long long>(tally.decoded), static_cast<long long>(tally.failed), tally.audio_seconds, wall,
               tally.audio_seconds > 0 ? wall / tally.audio_seconds : 0.0, search.c_str(), options.threads,
               options.threads == 1 ? "" : "s");
}

int run(const Cli& c) {
  check_input_files(c);
  const std::vector<std::string> audio = c.data.empty() ? gather_paths(c) : std::vector<std::string>{};
  check_outputs(c, audio);
  asr::Decoder decoder = load_decoder(c);
  Work work = gather_work(c, decoder.sample_rate(), audio);
  asr::DecodeOptions options = c.decode;
  auto lm = train_lm(c, work);
  if (lm) options.fusion.lm = &*lm;

  // 6. Decode; a bad input is named as soon as it fails.
  auto t_decode = Clock::now();
  auto results = decoder.decode(work.inputs, options, [&](const asr::Transcript& t) {
    if (!t.ok()) std::fprintf(stderr, "asr_decode: cannot decode '%s': %s\n", t.id.c_str(), t.error.c_str());
  });
  const double wall = seconds_since(t_decode);
  for (size_t i = 0; i < work.dataset_refs.size(); ++i)
    if (results[i].ok()) work.refs[work.inputs[i].id] = work.dataset_refs[i];

  const Tally tally = write_results(c, results, work, options.beam > 1);
  print_summary(tally, work, wall, options, lm.has_value());
  return tally.failed > 0 ? asr::kExitData : asr::kExitOk;
}

// The final flush and close of standard output, checked: a write that
// failed in the stdio buffer, or a close that fails (NFS), shows only here.
// Returns the exit status; a failure already reported keeps its status.
int close_stdout(int status) {
  errno = 0;
  std::cout.flush();
  bool ok = std::cout.good() && std::fflush(stdout) == 0 && !std::ferror(stdout);
  int err = errno;
  // The stdio buffer is empty now, so the flush at exit writes nothing to the closed descriptor.
  if (ok && ::close(STDOUT_FILENO) != 0 && errno != EBADF) {
    ok = false;
    err = errno;
  }
  if (ok || status != asr::kExitOk) return status;
  std::fprintf(stderr, "asr_decode: error: cannot write to standard output%s%s; free space where it goes, or write "
               "the transcripts to a file with -o FILE\n", err ? ": " : "", err ? std::strerror(err) : "");
  return asr::kExitData;
}

int run_main(int argc, char** argv) {
  try {
    int exit_code = asr::kExitOk;
    auto cli = parse_cli(argc, argv, &exit_code);
    if (!cli) return exit_code;
    return run(*cli);
  } catch (const std::exception& e) {
    const int code = asr::exit_code_for(e);
    std::fprintf(stderr, "asr_decode: %s%s\n", code == asr::kExitFailure ? "unexpected failure: " : "error: ", e.what());
    return code;
  }
}

}  // namespace

int main(int argc, char** argv) { return close_stdout(run_main(argc, argv)); }
