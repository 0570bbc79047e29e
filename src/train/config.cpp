#include "asr/train/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "asr/core/atomic_file.h"
#include "asr/core/error.h"
#include "asr/text/edit_distance.h"
#include "config_fields.h"

namespace asr {
namespace {

using config_detail::Rule;
using config_detail::visit_config;

// Shortest decimal text that reads back as exactly `v` and is a TOML float.
std::string format_double(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (std::isnan(v)) return "nan";
  char buf[64];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  std::string s = buf;
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";
  return s;
}

// For messages: integral values without a fraction ("got 3", not "got 3.0").
std::string format_number(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));
  return format_double(v);
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string describe(const Rule& r) {
  if (!r.choices.empty()) {
    std::string s = "must be one of";
    for (size_t i = 0; i < r.choices.size(); ++i) s += (i ? ", " : " ") + quote(r.choices[i]);
    return s;
  }
  if (r.nonempty) return "must not be empty";
  bool has_lo = std::isfinite(r.lo), has_hi = std::isfinite(r.hi) && r.hi < 9e18;
  if (has_lo && has_hi)
    return "must be in " + std::string(r.lo_open ? "(" : "[") + format_number(r.lo) + ", " + format_number(r.hi) +
           (r.hi_open ? ")" : "]");
  if (has_lo) return std::string("must be ") + (r.lo_open ? "> " : ">= ") + format_number(r.lo);
  if (has_hi) return std::string("must be ") + (r.hi_open ? "< " : "<= ") + format_number(r.hi);
  return "is invalid";
}

bool number_ok(double v, const Rule& r) {
  if (std::isnan(v)) return false;
  if (r.lo_open ? !(v > r.lo) : !(v >= r.lo)) return false;
  if (r.hi_open ? !(v < r.hi) : !(v <= r.hi)) return false;
  return true;
}

// Problem text for `value` against `rule`, or empty when it is fine.
std::string check_value(const std::string& v, const Rule& r) {
  if (!r.choices.empty()) {
    for (const auto& c : r.choices)
      if (c == v) return "";
    return describe(r) + " (got " + quote(v) + ")";
  }
  if (r.nonempty && v.empty()) return describe(r);
  return "";
}
std::string check_value(bool, const Rule&) { return ""; }
template <class T>
std::string check_value(T v, const Rule& r) {
  double d = static_cast<double>(v);
  return number_ok(d, r) ? "" : describe(r) + " (got " + format_number(d) + ")";
}
std::string check_value(const std::vector<int>& v, const Rule& r) {
  if (v.empty()) return "must be a non-empty list";
  for (int x : v)
    if (!number_ok(x, r)) return "every element " + describe(r) + " (got " + std::to_string(x) + ")";
  return "";
}

// Where a key's value came from, for error messages.
class Locator {
 public:
  Locator(std::string source, const toml::table* root, const std::map<std::string, std::string>* overrides)
      : source_(std::move(source)), root_(root), overrides_(overrides) {}

  std::string operator()(const std::string& key, const toml::node* node = nullptr) const {
    if (overrides_) {
      auto it = overrides_->find(key);
      if (it != overrides_->end()) return "--set " + it->second;
    }
    if (!node && root_) node = find(*root_, key);
    if (node && node->source().begin.line > 0)
      return source_ + ":" + std::to_string(node->source().begin.line);
    return source_;
  }

  static const toml::node* find(const toml::table& root, const std::string& key) {
    const toml::table* table = &root;
    size_t start = 0;
    while (true) {
      size_t dot = key.find('.', start);
      const toml::node* node = table->get(key.substr(start, dot == std::string::npos ? dot : dot - start));
      if (!node || dot == std::string::npos) return node;
      table = node->as_table();
      if (!table) return nullptr;
      start = dot + 1;
    }
  }

 private:
  std::string source_;
  const toml::table* root_;
  const std::map<std::string, std::string>* overrides_;
};

[[noreturn]] void fail(const std::string& where, const std::string& key, const std::string& problem) {
  throw Error(where + ": " + key + ": " + problem);
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

class Reader {
 public:
  Reader(const toml::table& root, const Locator& where) : root_(root), where_(where) {}

  template <class T>
  void operator()(const std::string& key, T& value, const Rule& rule) {
    const toml::node* node = Locator::find(root_, key);
    if (!node) return;
    T parsed = value;
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      // Range first, on the value as written, so a huge number is reported as such.
      if (!node->is_integer())
        fail(where_(key, node), key, std::string("expected an integer, got ") + type_name(*node));
      int64_t v = node->as_integer()->get();
      std::string problem = check_value(v, rule);
      if (problem.empty() && (v < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
                              (v > 0 && static_cast<uint64_t>(v) > static_cast<uint64_t>(std::numeric_limits<T>::max()))))
        problem = "must be in [" + std::to_string(std::numeric_limits<T>::min()) + ", " +
                  std::to_string(std::numeric_limits<T>::max()) + "] (got " + std::to_string(v) + ")";
      if (!problem.empty()) fail(where_(key, node), key, problem);
      value = static_cast<T>(v);
      return;
    } else {
      if (!read(*node, parsed))
        fail(where_(key, node), key, std::string("expected ") + expected(parsed) + ", got " + type_name(*node));
    }
    std::string problem = check_value(parsed, rule);
    if (!problem.empty()) fail(where_(key, node), key, problem);
    value = parsed;
  }

 private:
  static const char* expected(const std::string&) { return "a string"; }
  static const char* expected(bool) { return "a boolean (true or false)"; }
  static const char* expected(double) { return "a number"; }
  static const char* expected(const std::vector<int>&) { return "an array of integers"; }

  static bool read(const toml::node& n, std::string& out) {
    if (auto v = n.value_exact<std::string>()) return out = *v, true;
    return false;
  }
  static bool read(const toml::node& n, bool& out) {
    if (auto v = n.value_exact<bool>()) return out = *v, true;
    return false;
  }
  static bool read(const toml::node& n, double& out) {
    if (n.is_floating_point()) return out = n.as_floating_point()->get(), true;
    if (n.is_integer()) return out = static_cast<double>(n.as_integer()->get()), true;
    return false;
  }
  static bool read(const toml::node& n, std::vector<int>& out) {
    const toml::array* a = n.as_array();
    if (!a) return false;
    std::vector<int> values;
    for (const toml::node& e : *a) {
      if (!e.is_integer()) return false;
      int64_t x = e.as_integer()->get();
      // Clamped, so the element check reports it as out of range.
      values.push_back(static_cast<int>(std::clamp<int64_t>(x, INT32_MIN, INT32_MAX)));
    }
    out = std::move(values);
    return true;
  }

  const toml::table& root_;
  const Locator& where_;
};

class Writer {
 public:
  template <class T>
  void operator()(const std::string& key, T& value, const Rule&) {
    size_t dot = key.rfind('.');
    std::string section = dot == std::string::npos ? "" : key.substr(0, dot);
    std::string name = dot == std::string::npos ? key : key.substr(dot + 1);
    if (section != section_) {
      out_ << "\n[" << section << "]\n";
      section_ = section;
    }
    out_ << name << " = " << format(value) << "\n";
  }
  std::string str() const { return out_.str(); }

 private:
  static std::string format(const std::string& v) { return quote(v); }
  static std::string format(bool v) { return v ? "true" : "false"; }
  static std::string format(double v) { return format_double(v); }
  static std::string format(const std::vector<int>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
    return s + "]";
  }
  template <class T>
  static std::string format(T v) { return std::to_string(v); }

  std::ostringstream out_;
  std::string section_;
};

class Checker {
 public:
  explicit Checker(const Locator& where) : where_(where) {}
  template <class T>
  void operator()(const std::string& key, T& value, const Rule& rule) {
    std::string problem = check_value(value, rule);
    if (!problem.empty()) fail(where_(key), key, problem);
  }

 private:
  const Locator& where_;
};

struct KeyLister {
  std::vector<std::string> keys;
  template <class T>
  void operator()(const std::string& key, T&, const Rule&) { keys.push_back(key); }
};

// Rules that involve more than one key.
void check_consistency(const TrainConfig& c, const Locator& where) {
  if (c.model.encoder.d_model % c.model.encoder.heads != 0)
    fail(where("model.encoder.heads"), "model.encoder.heads",
         "must divide model.encoder.d_model (" + std::to_string(c.model.encoder.d_model) + " is not a multiple of " +
             std::to_string(c.model.encoder.heads) + ")");
  if (c.augment.speed_min > c.augment.speed_max)
    fail(where("augment.speed_min"), "augment.speed_min",
         "must not exceed augment.speed_max (" + format_number(c.augment.speed_min) + " > " +
             format_number(c.augment.speed_max) + ")");
}

std::string suggestion(const std::string& key, const std::vector<std::string>& known) {
  // Same last component in another section first ("train.lr" -> "optim.lr"),
  // then the nearest spelling.
  std::string leaf = key.substr(key.rfind('.') + 1);
  for (const auto& k : known)
    if (k.substr(k.rfind('.') + 1) == leaf) return "; did you mean " + k + "?";
  int64_t best = 4;
  std::string best_key;
  for (const auto& k : known) {
    int64_t d = levenshtein(key, k);
    if (d < best) best = d, best_key = k;
  }
  return best_key.empty() ? "" : "; did you mean " + best_key + "?";
}

void reject_unknown(const toml::table& table, const std::string& prefix, const std::set<std::string>& keys,
                    const std::set<std::string>& sections, const std::vector<std::string>& known,
                    const Locator& where) {
  for (const auto& [k, node] : table) {
    std::string path = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (keys.count(path)) continue;
    if (node.is_table() && sections.count(path)) {
      reject_unknown(*node.as_table(), path, keys, sections, known, where);
      continue;
    }
    std::string what = sections.count(path) ? "is a section, not a value" : "unknown key" + suggestion(path, known);
    fail(where(path, &node), path, what);
  }
}

// Sets `key` in `root` to the TOML value of `text` (or the plain string).
void apply_override(toml::table& root, const std::string& spec, std::map<std::string, std::string>& origin) {
  size_t eq = spec.find('=');
  if (eq == std::string::npos || eq == 0)
    throw Error("--set " + spec + ": expected section.key=value (e.g. --set optim.lr=3e-4)");
  auto trim = [](std::string s) {
    size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
  };
  std::string key = trim(spec.substr(0, eq)), text = trim(spec.substr(eq + 1));
  if (key.empty() || key.front() == '.' || key.back() == '.' || key.find("..") != std::string::npos)
    throw Error("--set " + spec + ": '" + key + "' is not a key of the form section.key");

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
    std::string part = key.substr(start, dot - start);
    toml::node* node = table->get(part);
    if (!node) node = &table->insert(part, toml::table{}).first->second;
    table = node->as_table();
    if (!table) throw Error("--set " + spec + ": " + key.substr(0, dot) + " is a value, not a section");
    start = dot + 1;
  }
  std::string leaf = key.substr(start);
  if (is_toml)
    table->insert_or_assign(leaf, std::move(*parsed.get("v")));
  else
    table->insert_or_assign(leaf, text);
  origin[key] = spec;
}

TrainConfig parse_config(const std::string& text, const std::string& source,
                         const std::vector<std::string>& overrides) {
  toml::table root;
  try {
    root = toml::parse(std::string_view(text), std::string_view(source));
  } catch (const toml::parse_error& e) {
    throw Error(source + ":" + std::to_string(e.source().begin.line) + ":" + std::to_string(e.source().begin.column) +
                ": TOML syntax error: " + std::string(e.description()));
  }
  std::map<std::string, std::string> origin;
  for (const auto& spec : overrides) apply_override(root, spec, origin);
  Locator where(source, &root, &origin);

  std::vector<std::string> known = config_keys();
  std::set<std::string> keys(known.begin(), known.end()), sections;
  for (const auto& k : known)
    for (size_t dot = k.find('.'); dot != std::string::npos; dot = k.find('.', dot + 1)) sections.insert(k.substr(0, dot));
  reject_unknown(root, "", keys, sections, known, where);

  TrainConfig config;
  Reader reader(root, where);
  visit_config(config, reader);
  check_consistency(config, where);
  return config;
}

}  // namespace

TrainConfig load_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw Error("config file " + path + " does not exist or is not a file (see configs/ for examples)");
  std::string text;
  try {
    text = read_file(path);
  } catch (const Error& e) {
    throw Error("cannot read config file " + path + ": " + e.what());
  }
  return parse_config(text, path, overrides);
}

TrainConfig config_from_toml_string(const std::string& text, const std::string& source_name,
                                    const std::vector<std::string>& overrides) {
  return parse_config(text, source_name, overrides);
}

std::string config_to_toml(const TrainConfig& config) {
  TrainConfig copy = config;
  Writer writer;
  visit_config(copy, writer);
  return "# Effective asr_ddp configuration (every key; see docs/config.md).\n" + writer.str();
}

void validate_config(const TrainConfig& config) {
  TrainConfig copy = config;
  Locator where("config", nullptr, nullptr);
  Checker checker(where);
  visit_config(copy, checker);
  check_consistency(copy, where);
}

std::vector<std::string> config_keys() {
  TrainConfig scratch;
  KeyLister lister;
  visit_config(scratch, lister);
  return lister.keys;
}

}  // namespace asr
