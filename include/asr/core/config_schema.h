// A config as data: a list of fields, each a "section.key" name bound to a
// member of a plain struct, with its valid range and one line of docs. The
// same list drives reading TOML (file and --set overrides), validation,
// writing the effective TOML, the list of keys and the reference tables in
// docs/config.md, so none of them can drift from the others.
//
// Modules describe their own structs (model_config_fields in model, the
// training config in train); this file only knows fields and TOML. toml++
// stays inside config_schema.cpp.
#pragma once
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <variant>
#include <vector>

namespace asr::config {

// What values a key accepts. Numbers: [lo, hi] with optional open ends.
// Strings: one of `choices` when given, non-empty when `nonempty`.
// Integer lists: non-empty, each element checked against [lo, hi].
struct Rule {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool lo_open = false, hi_open = false;
  std::vector<std::string> choices;
  bool nonempty = false;
};

Rule any();
Rule at_least(double lo);
Rule above(double lo);
Rule within(double lo, double hi, bool hi_open = false);
Rule one_of(std::vector<std::string> choices);
Rule nonempty();

using FieldRef =
    std::variant<bool*, int*, int64_t*, uint64_t*, double*, std::string*, std::vector<int>*>;

struct Field {
  std::string key;  // "section.key" (or "key" at the top level)
  FieldRef value;   // the member it reads and writes
  Rule rule;
  std::string doc;  // the "meaning" column of docs/config.md
};
using Fields = std::vector<Field>;

// A heading of the reference: a section name and a note after it, e.g.
// {"optim", "AdamW"} -> ### `[optim]` (AdamW).
struct SectionDoc {
  std::string name;
  std::string note;
};

// A TOML text with --set overrides applied, remembering where every key came
// from so that errors read "FILE:LINE: key: problem" or "--set spec: key: problem".
class Document {
 public:
  // Throws asr::Error for a syntax error (FILE:LINE:COL) or a malformed override.
  // Overrides are "section.key=value": the value is parsed as TOML, or taken
  // as a plain string when it is not valid TOML. Errors blame "--set SPEC",
  // or origins[i] when given (a flag such as "--max-steps -1" that became
  // overrides[i]).
  static Document parse(const std::string& text, const std::string& source,
                        const std::vector<std::string>& overrides = {},
                        const std::vector<std::string>& origins = {});
  Document(Document&&) noexcept;
  Document& operator=(Document&&) noexcept;
  ~Document();

  // Reads every field present, checking type and range. Keys the fields do
  // not know are an error with a suggestion, except, when `only_section` is
  // given, keys outside that section (e.g. reading [model] of a whole file).
  void read(const Fields& fields, const std::string& only_section = "") const;

  // "FILE:LINE" or "--set spec" for a key, for errors raised after reading.
  std::string where(const std::string& key) const;
  [[noreturn]] void fail(const std::string& key, const std::string& problem) const;

 private:
  struct Impl;
  explicit Document(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Range checks of values set in code; `source` names the config in errors.
void check(const Fields& fields, const std::string& source);

// Every field as TOML (toml++'s writer; floats read back bit-exactly).
std::string to_toml(const Fields& fields);

std::vector<std::string> keys(const Fields& fields);

// A value as TOML text: "3", "1.5", "\"text\"", "[4, 4]", "true".
std::string toml_value(const FieldRef& value);
// A string as a TOML string literal, quotes and escapes included.
std::string toml_quote(const std::string& text);

// Markdown tables (key, type, default, meaning) grouped by section, headings
// from `sections` in their order; the defaults are the fields' current values.
std::string markdown_reference(const Fields& fields, const std::vector<SectionDoc>& sections);

// The "problem" text for a number or choice against a rule, or "" when fine.
std::string describe(const Rule& rule);

}  // namespace asr::config
