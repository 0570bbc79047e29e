#include "asr/core/config_schema.h"

// Header-only, with std::to_chars for floats (GCC 11+ has it; toml++ does not
// assume so): the shortest text that reads back exactly ("1.1", not
// "1.1000000000000001"). See CMakeLists.txt.
#define TOML_HEADER_ONLY 1
#define TOML_FLOAT_CHARCONV 1
#include <toml++/toml.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>
#include <type_traits>

#include "asr/core/error.h"
#include "asr/core/suggest.h"

namespace asr::config {

Rule any() { return {}; }
Rule at_least(double lo) {
  Rule r;
  r.lo = lo;
  return r;
}
Rule above(double lo) {
  Rule r;
  r.lo = lo;
  r.lo_open = true;
  return r;
}
Rule within(double lo, double hi, bool hi_open) {
  Rule r;
  r.lo = lo;
  r.hi = hi;
  r.hi_open = hi_open;
  return r;
}
Rule one_of(std::vector<std::string> choices) {
  Rule r;
  r.choices = std::move(choices);
  return r;
}
Rule nonempty() {
  Rule r;
  r.nonempty = true;
  return r;
}

namespace {

// TOML as toml++ writes it, with "double-quoted" strings (the docs' style)
// and nested tables unindented.
std::string format_toml(const toml::node& node) {
  std::ostringstream os;
  os << toml::toml_formatter(node, toml::toml_formatter::default_flags & ~toml::format_flags::allow_literal_strings &
                                       ~toml::format_flags::indentation);
  return os.str();
}

// Integral values without a fraction ("got 3", not "got 3.0"), others as
// TOML writes them.
std::string format_number(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));
  std::ostringstream os;
  os << toml::value<double>(v);
  return os.str();
}

bool has_upper_bound(const Rule& r) { return std::isfinite(r.hi) && r.hi < 9e18; }

bool number_ok(double v, const Rule& r) {
  if (std::isnan(v)) return false;
  if (r.lo_open ? !(v > r.lo) : !(v >= r.lo)) return false;
  if (r.hi_open ? !(v < r.hi) : !(v <= r.hi)) return false;
  return true;
}

// Problem text for a value against its rule, or "" when it is fine.
std::string check_value(const std::string& v, const Rule& r) {
  if (!r.choices.empty()) {
    if (std::find(r.choices.begin(), r.choices.end(), v) != r.choices.end()) return "";
    std::string hint = closest_match(v, r.choices, 2);
    return describe(r) + " (got " + toml_quote(v) + (hint.empty() ? "" : "; did you mean " + toml_quote(hint) + "?") +
           ")";
  }
  if (r.nonempty && v.empty()) return describe(r);
  return "";
}
std::string check_value(bool, const Rule&) { return ""; }
template <class T>
std::string check_value(T v, const Rule& r) {
  const double d = static_cast<double>(v);
  // No key means anything by inf or nan; an open range end is not an invitation.
  if (!std::isfinite(d)) return "must be a finite number, " + describe(r) + " (got " + format_number(d) + ")";
  return number_ok(d, r) ? "" : describe(r) + " (got " + format_number(d) + ")";
}
std::string check_value(const std::vector<int>& v, const Rule& r) {
  if (v.empty()) return "must be a non-empty list";
  for (int x : v)
    if (!number_ok(x, r)) return "every element " + describe(r) + " (got " + std::to_string(x) + ")";
  return "";
}

std::string check_field(const Field& f) {
  return std::visit([&](auto* p) { return check_value(*p, f.rule); }, f.value);
}

const char* type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "a date/time";
  }
}

const toml::node* find_node(const toml::table& root, const std::string& key) {
  const toml::table* table = &root;
  size_t start = 0;
  while (true) {
    const size_t dot = key.find('.', start);
    const toml::node* node = table->get(key.substr(start, dot == std::string::npos ? dot : dot - start));
    if (!node || dot == std::string::npos) return node;
    table = node->as_table();
    if (!table) return nullptr;
    start = dot + 1;
  }
}

// Converting one TOML node into a field's C++ type. Each returns the problem
// text, or "" when the value was stored.
std::string expected(const char* what, const toml::node& n) { return std::string("expected ") + what + ", got " + type_name(n); }

std::string read_value(const toml::node& n, std::string* out) {
  if (auto v = n.value_exact<std::string>()) return *out = *v, "";
  return expected("a string", n);
}
std::string read_value(const toml::node& n, bool* out) {
  if (auto v = n.value_exact<bool>()) return *out = *v, "";
  return expected("a boolean (true or false)", n);
}
std::string read_value(const toml::node& n, double* out) {
  if (n.is_floating_point()) return *out = n.as_floating_point()->get(), "";
  if (n.is_integer()) return *out = static_cast<double>(n.as_integer()->get()), "";
  return expected("a number", n);
}
std::string read_value(const toml::node& n, std::vector<int>* out) {
  const toml::array* a = n.as_array();
  if (!a) return expected("an array of integers", n);
  std::vector<int> values;
  for (const toml::node& e : *a) {
    if (!e.is_integer()) return expected("an array of integers", n);
    // Clamped, so the element check reports it as out of range.
    values.push_back(static_cast<int>(std::clamp<int64_t>(e.as_integer()->get(), INT32_MIN, INT32_MAX)));
  }
  *out = std::move(values);
  return "";
}

// Integers: the range rule first, on the value as written, so a huge
// number is reported against the documented range, then the C++ type's limits.
template <class T>
std::string read_integer(const toml::node& n, T* out, const Rule& rule) {
  if (!n.is_integer()) return expected("an integer", n);
  const int64_t v = n.as_integer()->get();
  if (std::string problem = check_value(v, rule); !problem.empty()) return problem;
  if (v < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
      (v > 0 && static_cast<uint64_t>(v) > static_cast<uint64_t>(std::numeric_limits<T>::max())))
    return "must be in [" + std::to_string(std::numeric_limits<T>::min()) + ", " +
           std::to_string(std::numeric_limits<T>::max()) + "] (got " + std::to_string(v) + ")";
  *out = static_cast<T>(v);
  return "";
}

template <class T>
std::string read_value(const toml::node& n, T* out, const Rule& rule) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    return read_integer(n, out, rule);
  } else {
    T value = *out;
    std::string problem = read_value(n, &value);
    if (problem.empty()) problem = check_value(value, rule);
    if (problem.empty()) *out = std::move(value);
    return problem;
  }
}

// A field's value as a toml++ node, for writing.
template <class T>
void insert_value(toml::table& table, const std::string& name, const T* v) {
  if constexpr (std::is_same_v<T, std::vector<int>>) {
    toml::array a;
    for (int x : *v) a.push_back(int64_t{x});
    table.insert_or_assign(name, std::move(a));
  } else if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    table.insert_or_assign(name, static_cast<int64_t>(*v));
  } else {
    table.insert_or_assign(name, *v);
  }
}

toml::table& subtable(toml::table& root, const std::string& path) {
  toml::table* t = &root;
  size_t start = 0;
  for (size_t dot = path.find('.'); dot != std::string::npos; dot = path.find('.', start)) {
    const std::string part = path.substr(start, dot - start);
    if (!t->get(part)) t->insert(part, toml::table{});
    t = t->get(part)->as_table();
    start = dot + 1;
  }
  return *t;
}

std::string section_of(const std::string& key) {
  const size_t dot = key.rfind('.');
  return dot == std::string::npos ? "" : key.substr(0, dot);
}

std::string leaf_of(const std::string& key) { return key.substr(key.rfind('.') + 1); }

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

}  // namespace

std::string describe(const Rule& r) {
  if (!r.choices.empty()) {
    std::string s = "must be one of";
    for (size_t i = 0; i < r.choices.size(); ++i) s += (i ? ", " : " ") + toml_quote(r.choices[i]);
    return s;
  }
  if (r.nonempty) return "must not be empty";
  const bool has_lo = std::isfinite(r.lo), has_hi = has_upper_bound(r);
  if (has_lo && has_hi)
    return "must be in " + std::string(r.lo_open ? "(" : "[") + format_number(r.lo) + ", " + format_number(r.hi) +
           (r.hi_open ? ")" : "]");
  if (has_lo) return std::string("must be ") + (r.lo_open ? "> " : ">= ") + format_number(r.lo);
  if (has_hi) return std::string("must be ") + (r.hi_open ? "< " : "<= ") + format_number(r.hi);
  return "is invalid";
}

std::string toml_quote(const std::string& text) { return format_toml(toml::value<std::string>(text)); }

std::string toml_value(const FieldRef& value) {
  toml::table t;
  std::visit([&](auto* p) { insert_value(t, "v", p); }, value);
  return format_toml(*t.get("v"));
}

// ---------------------------------------------------------------- Document

static std::string join_names(const std::set<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

struct Document::Impl {
  std::string source;
  toml::table root;
  std::map<std::string, std::string> overrides;  // key -> what set it: "--set SPEC" or a flag

  std::string where(const std::string& key, const toml::node* node = nullptr) const {
    if (auto it = overrides.find(key); it != overrides.end()) return it->second;
    // A section that only an override created ("--set optm.lr=1" -> "optm").
    for (const auto& [set_key, spec] : overrides)
      if (set_key.rfind(key + ".", 0) == 0 && !(node && node->source().begin.line > 0)) return spec;
    if (!node) node = find_node(root, key);
    if (node && node->source().begin.line > 0) return source + ":" + std::to_string(node->source().begin.line);
    return source;
  }
  [[noreturn]] void fail(const std::string& key, const std::string& problem, const toml::node* node = nullptr) const {
    throw Error(where(key, node) + ": " + key + ": " + problem);
  }
  void apply_override(const std::string& spec, const std::string& origin);
  void reject_unknown(const toml::table& table, const std::string& prefix, const Fields& fields,
                      const std::set<std::string>& keys, const std::set<std::string>& sections,
                      const std::string& only_section) const;
};

void Document::Impl::apply_override(const std::string& spec, const std::string& origin) {
  const size_t eq = spec.find('=');
  if (eq == std::string::npos || eq == 0)
    throw Error(origin + ": expected section.key=value (e.g. --set optim.lr=3e-4)");
  const std::string key = trim(spec.substr(0, eq)), text = trim(spec.substr(eq + 1));
  if (key.empty() || key.front() == '.' || key.back() == '.' || key.find("..") != std::string::npos)
    throw Error(origin + ": '" + key + "' is not a key of the form section.key");

  // The value as TOML when it parses as one, else as a plain string, so
  // `--set schedule.kind=noam` needs no shell quoting.
  toml::table parsed;
  bool is_toml = false;
  try {
    const std::string doc = "v = " + text;
    parsed = toml::parse(std::string_view(doc), std::string_view("--set"));
    is_toml = parsed.size() == 1 && parsed.get("v");
  } catch (const toml::parse_error&) {
  }
  toml::table* table = &root;
  size_t start = 0;
  for (size_t dot = key.find('.'); dot != std::string::npos; dot = key.find('.', start)) {
    const std::string part = key.substr(start, dot - start);
    toml::node* node = table->get(part);
    if (!node) node = &table->insert(part, toml::table{}).first->second;
    table = node->as_table();
    if (!table) throw Error(origin + ": " + key.substr(0, dot) + " is a value, not a section");
    start = dot + 1;
  }
  const std::string leaf = key.substr(start);
  if (is_toml)
    table->insert_or_assign(leaf, std::move(*parsed.get("v")));
  else
    table->insert_or_assign(leaf, text);
  overrides[key] = origin;
}

void Document::Impl::reject_unknown(const toml::table& table, const std::string& prefix, const Fields& fields,
                                    const std::set<std::string>& keys, const std::set<std::string>& sections,
                                    const std::string& only_section) const {
  for (const auto& [k, node] : table) {
    const std::string path = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (keys.count(path)) continue;
    const bool in_scope = only_section.empty() || path == only_section || path.rfind(only_section + ".", 0) == 0;
    if (!in_scope) continue;
    if (node.is_table() && sections.count(path)) {
      reject_unknown(*node.as_table(), path, fields, keys, sections, only_section);
      continue;
    }
    if (sections.count(path)) fail(path, "is a section, not a value", &node);
    if (node.is_table()) {
      const std::string near = closest_match(path, std::vector<std::string>(sections.begin(), sections.end()));
      fail(path, "unknown section" + (near.empty() ? "; the sections are " + join_names(sections)
                                                   : "; did you mean [" + near + "]?"),
           &node);
    }
    // Same name in another section first ("train.lr" -> "optim.lr"), then the nearest spelling.
    std::string hint;
    for (const auto& f : fields)
      if (hint.empty() && leaf_of(f.key) == leaf_of(path)) hint = f.key;
    if (hint.empty()) hint = closest_match(path, std::vector<std::string>(keys.begin(), keys.end()));
    fail(path, "unknown key" + (hint.empty() ? std::string() : "; did you mean " + hint + "?"), &node);
  }
}

Document::Document(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Document::Document(Document&&) noexcept = default;
Document& Document::operator=(Document&&) noexcept = default;
Document::~Document() = default;

Document Document::parse(const std::string& text, const std::string& source, const std::vector<std::string>& overrides,
                         const std::vector<std::string>& origins) {
  auto impl = std::make_unique<Impl>();
  impl->source = source;
  try {
    impl->root = toml::parse(std::string_view(text), std::string_view(source));
  } catch (const toml::parse_error& e) {
    throw Error(source + ":" + std::to_string(e.source().begin.line) + ":" + std::to_string(e.source().begin.column) +
                ": TOML syntax error: " + std::string(e.description()));
  }
  for (size_t i = 0; i < overrides.size(); ++i)
    impl->apply_override(overrides[i], i < origins.size() ? origins[i] : "--set " + overrides[i]);
  return Document(std::move(impl));
}

void Document::read(const Fields& fields, const std::string& only_section) const {
  std::set<std::string> keys, sections;
  for (const auto& f : fields) {
    keys.insert(f.key);
    for (size_t dot = f.key.find('.'); dot != std::string::npos; dot = f.key.find('.', dot + 1))
      sections.insert(f.key.substr(0, dot));
  }
  impl_->reject_unknown(impl_->root, "", fields, keys, sections, only_section);
  for (const auto& f : fields) {
    const toml::node* node = find_node(impl_->root, f.key);
    if (!node) continue;
    std::visit(
        [&](auto* target) {
          // The field keeps its value unless the new one is valid.
          const std::string problem = read_value(*node, target, f.rule);
          if (!problem.empty()) impl_->fail(f.key, problem, node);
        },
        f.value);
  }
}

std::string Document::where(const std::string& key) const { return impl_->where(key); }

void Document::fail(const std::string& key, const std::string& problem) const { impl_->fail(key, problem); }

// ---------------------------------------------------------------- fields

void check(const Fields& fields, const std::string& source) {
  for (const auto& f : fields) {
    const std::string problem = check_field(f);
    if (!problem.empty()) throw Error(source + ": " + f.key + ": " + problem);
  }
}

std::string to_toml(const Fields& fields) {
  toml::table root;
  for (const auto& f : fields) {
    toml::table& t = subtable(root, f.key);
    std::visit([&](auto* p) { insert_value(t, leaf_of(f.key), p); }, f.value);
  }
  return format_toml(root) + "\n";
}

std::vector<std::string> keys(const Fields& fields) {
  std::vector<std::string> out;
  for (const auto& f : fields) out.push_back(f.key);
  return out;
}

namespace {

// The "type" column: the value's kind and its range or choices.
std::string type_text(const Field& f) {
  const Rule& r = f.rule;
  std::string range;
  const bool has_lo = std::isfinite(r.lo), has_hi = has_upper_bound(r);
  if (has_lo && has_hi && !r.lo_open && !r.hi_open)
    range = format_number(r.lo) + "-" + format_number(r.hi);
  else if (has_lo && has_hi)
    range = std::string(r.lo_open ? "(" : "[") + format_number(r.lo) + ", " + format_number(r.hi) + (r.hi_open ? ")" : "]");
  else if (has_lo)
    range = std::string(r.lo_open ? "> " : ">= ") + format_number(r.lo);
  else if (has_hi)
    range = std::string(r.hi_open ? "< " : "<= ") + format_number(r.hi);
  return std::visit(
      [&](auto* p) -> std::string {
        using T = std::remove_pointer_t<decltype(p)>;
        if constexpr (std::is_same_v<T, bool>) {
          return "bool";
        } else if constexpr (std::is_same_v<T, std::string>) {
          if (r.choices.empty()) return "string";
          std::string s;
          for (size_t i = 0; i < r.choices.size(); ++i) s += (i ? " \\| `" : "`") + toml_quote(r.choices[i]) + "`";
          return s;
        } else if constexpr (std::is_same_v<T, std::vector<int>>) {
          return range.empty() ? "int list" : "int list, each " + range;
        } else {
          const std::string kind = std::is_same_v<T, double> ? "float" : "int";
          return range.empty() ? kind : kind + ", " + range;
        }
      },
      f.value);
}

}  // namespace

std::string markdown_reference(const Fields& fields, const std::vector<SectionDoc>& sections) {
  for (const auto& f : fields)
    if (std::none_of(sections.begin(), sections.end(), [&](const SectionDoc& d) { return d.name == section_of(f.key); }))
      throw Error("config reference: the section of " + f.key + " has no heading");
  std::string out;
  for (size_t s = 0; s < sections.size(); ++s) {
    const SectionDoc& sec = sections[s];
    out += s ? "\n" : "";
    out += sec.name.empty() ? "### Top level" : "### `[" + sec.name + "]`";
    out += sec.note.empty() ? "\n\n" : " (" + sec.note + ")\n\n";
    out += "| key | type | default | meaning |\n|-----|------|---------|---------|\n";
    for (const auto& f : fields)
      if (section_of(f.key) == sec.name)
        out += "| `" + f.key + "` | " + type_text(f) + " | `" + toml_value(f.value) + "` | " + f.doc + " |\n";
  }
  return out;
}

}  // namespace asr::config
