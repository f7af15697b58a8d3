#include "idprune/report/studies.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <iomanip>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "idprune/la/error.hpp"

namespace idprune::report {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr double nan = std::numeric_limits<double>::quiet_NaN();

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Columns (of result CSVs) and keys (of benchmark JSON) that say how and where a run was made.
bool is_provenance_key(const std::string& name) {
  static const std::set<std::string> exact = {
      "seed",        "ranks",        "mpi_ranks",   "nprocs",           "processes",   "threads",
      "tbb_threads", "blas_threads", "blas",        "engine",           "model",       "data",
      "date",        "timestamp",    "started",     "finished",         "command",     "host",
      "hostname",    "node",         "job_id",      "compression_size", "repetitions", "reps",
      "cpqr_method", "test_samples", "finished_at", "statistic",        "block_size",  "benchmark"};
  const std::string n = lower(name);
  if (exact.count(n)) return true;
  for (const char* part : {"git", "revision", "version", "blas_core", "openblas", "slurm"})
    if (n.find(part) != std::string::npos) return true;
  return false;
}

// Provenance columns of a CSV: each one's distinct values (at most 4 shown).
void csv_provenance(const CsvTable& csv, Provenance& p) {
  for (std::size_t c = 0; c < csv.header().size(); ++c) {
    if (!is_provenance_key(csv.header()[c])) continue;
    std::vector<std::string> values;
    for (std::size_t r = 0; r < csv.rows(); ++r)
      if (std::find(values.begin(), values.end(), csv.text(r, c)) == values.end()) values.push_back(csv.text(r, c));
    std::string text;
    if (values.size() > 4 && ends_with(csv.header()[c], "_at")) {
      // Timestamps: the range.
      const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
      text = *lo + " .. " + *hi;
    } else {
      for (std::size_t i = 0; i < values.size() && i < 4; ++i) text += (i ? ", " : "") + values[i];
      if (values.size() > 4) text += detail::concat(", ... (", values.size(), " values)");
    }
    if (!values.empty()) p.fields.emplace_back(csv.header()[c], text);
  }
}

// The config.ini of the folder holding `file` (or FILE_STEM.ini next to it), if any.
void config_provenance(const fs::path& file, Provenance& p) {
  for (const fs::path& candidate : {fs::path(file).replace_extension(".ini"), fs::path(file.string() + ".ini"),
                                    file.parent_path() / "config.ini"}) {
    if (candidate != file && fs::is_regular_file(candidate)) {
      std::ifstream in(candidate);
      std::ostringstream os;
      os << in.rdbuf();
      p.config_file = candidate;
      p.config_text = os.str();
      return;
    }
  }
}

std::string json_scalar_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) {
    std::ostringstream os;
    os << std::setprecision(6) << v.get<double>();
    return os.str();
  }
  return v.dump();
}

json read_json(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  require(in.good(), "cannot open '", file.string(), "'");
  try {
    return json::parse(in);
  } catch (const json::parse_error& e) {
    // e.byte is the offset of the error; turn it into a line number.
    std::ifstream again(file, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(again)), std::istreambuf_iterator<char>());
    const auto upto = std::min<std::size_t>(e.byte, text.size());
    const auto line = 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(upto), '\n');
    throw Error(detail::concat(file.string(), ":", line, ": malformed JSON: ", e.what()));
  }
}

// Text of a number for tables (6 significant digits).
std::string num(double v) {
  if (std::isnan(v)) return "";
  std::ostringstream os;
  os << std::setprecision(6) << v;
  return os.str();
}

Table csv_as_table(const CsvTable& csv) {
  Table t;
  t.header = csv.header();
  for (std::size_t r = 0; r < csv.rows(); ++r) {
    std::vector<std::string> row;
    for (std::size_t c = 0; c < csv.header().size(); ++c) row.push_back(csv.text(r, c));
    t.rows.push_back(std::move(row));
  }
  return t;
}

// Whether a folder holds anything this reader knows (used to decide on scanning sub-folders).
bool is_known_file(const std::string& name) {
  return name == "results.csv" || name == "pareto.csv" || (starts_with(name, "lowrank") && ends_with(name, ".csv")) ||
         (starts_with(name, "bench-cpqr") && ends_with(name, ".json")) ||
         (starts_with(name, "bench-id") && ends_with(name, ".json")) ||
         (starts_with(name, "bench-compress-scale") && ends_with(name, ".json"));
}

// Provenance of a benchmark's JSON: its top-level scalar fields, with every distinct value over the
// files read so far ("a; b" when two files differ).
void add_json_provenance(const json& doc, Provenance& provenance) {
  for (const auto& [key, value] : doc.items()) {
    if (!value.is_primitive()) continue;
    const std::string text = json_scalar_text(value);
    auto it =
        std::find_if(provenance.fields.begin(), provenance.fields.end(), [&](const auto& f) { return f.first == key; });
    if (it == provenance.fields.end()) {
      provenance.fields.emplace_back(key, text);
    } else if (("; " + it->second + ";").find("; " + text + ";") == std::string::npos) {
      it->second += "; " + text;
    }
  }
}
}  // namespace

double loglog_slope(const std::vector<double>& x, const std::vector<double>& y) {
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  int count = 0;
  for (std::size_t i = 0; i < std::min(x.size(), y.size()); ++i) {
    if (!(x[i] > 0.0 && y[i] > 0.0 && std::isfinite(x[i]) && std::isfinite(y[i]))) continue;
    const double lx = std::log(x[i]);
    const double ly = std::log(y[i]);
    sx += lx;
    sy += ly;
    sxx += lx * lx;
    sxy += lx * ly;
    ++count;
  }
  if (count < 2) return nan;
  const double den = count * sxx - sx * sx;
  return den > 0.0 ? (count * sxy - sx * sy) / den : nan;
}

std::vector<std::pair<std::string, std::string>> read_ini(const fs::path& file) {
  std::ifstream in(file);
  require(in.good(), "cannot open '", file.string(), "'");
  std::vector<std::pair<std::string, std::string>> items;
  std::string line;
  while (std::getline(in, line)) {
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#' || line[first] == ';' || line[first] == '[') continue;
    const auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    const auto strip = [](std::string s) {
      const auto a = s.find_first_not_of(" \t\r");
      const auto b = s.find_last_not_of(" \t\r");
      return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
    };
    items.emplace_back(strip(line.substr(0, eq)), strip(line.substr(eq + 1)));
  }
  return items;
}

LowRankStudy read_lowrank(const fs::path& file) {
  LowRankStudy s;
  s.file = file;
  const std::string stem = file.stem().string();
  s.label = stem.substr(std::string("lowrank").size());
  while (!s.label.empty() && (s.label.front() == '-' || s.label.front() == '_')) s.label.erase(0, 1);
  const CsvTable csv = CsvTable::read(file.string());
  s.k = csv.numbers("k");
  s.cpqr_error = csv.numbers("cpqr_error");
  s.svd_error = csv.numbers("svd_error");
  for (std::size_t r = 0; r < csv.rows(); ++r) {
    require(s.k[r] >= 0 && std::floor(s.k[r]) == s.k[r], file.string(), ":", csv.line(r), ": column 'k': '",
            csv.text(r, csv.column("k")), "' is not a non-negative integer");
  }
  if (csv.has("ratio")) (void)csv.numbers("ratio");  // checked, shown as written
  s.table = csv_as_table(csv);
  csv_provenance(csv, s.provenance);
  config_provenance(file, s.provenance);
  return s;
}

SweepStudy read_sweep(const fs::path& dir) {
  SweepStudy s;
  s.dir = dir;
  s.file = dir / "results.csv";
  s.csv = CsvTable::read(s.file.string());
  const std::size_t strategy = s.csv.column("strategy");
  (void)s.csv.numbers("test_accuracy");
  (void)s.csv.numbers("params");
  const std::size_t rule = s.csv.has("rule") ? s.csv.column("rule") : SIZE_MAX;
  std::size_t layers = s.csv.has("layers") ? s.csv.column("layers") : SIZE_MAX;
  // Without a `layers` column, the run's config says which layers it compressed.
  std::string config_layers;
  if (layers == SIZE_MAX && fs::is_regular_file(dir / "config.ini"))
    for (const auto& [key, value] : read_ini(dir / "config.ini"))
      if (key == "layers") config_layers = value;
  for (std::size_t r = 0; r < s.csv.rows(); ++r) {
    std::string st = s.csv.text(r, strategy);
    std::string ru = rule == SIZE_MAX ? "" : s.csv.text(r, rule);
    std::string la = layers == SIZE_MAX ? config_layers : s.csv.text(r, layers);
    if (lower(la) == "all") la.clear();
    auto it = std::find_if(s.curves.begin(), s.curves.end(),
                           [&](const SweepCurve& c) { return c.strategy == st && c.rule == ru && c.layers == la; });
    if (it == s.curves.end()) {
      SweepCurve c;
      c.strategy = st;
      c.rule = ru;
      c.layers = la;
      // The per-sweep config `idprune sweep` writes next to config.ini (';' in file names is '_').
      std::string name = "config-" + st + "-" + ru + "-" + (la.empty() ? "all" : la) + ".ini";
      std::replace(name.begin(), name.end(), ';', '_');
      if (fs::is_regular_file(dir / name)) c.config_file = dir / name;
      s.curves.push_back(std::move(c));
      it = s.curves.end() - 1;
    }
    it->rows.push_back(r);
  }
  // Lists are checked here, so that a malformed file fails before any figure is drawn.
  if (s.csv.has("kept_per_layer"))
    for (std::size_t r = 0; r < s.csv.rows(); ++r)
      (void)parse_integer_list(s.csv.text(r, s.csv.column("kept_per_layer")),
                               s.file.string() + ":" + std::to_string(s.csv.line(r)) + ": column 'kept_per_layer'");
  if (s.csv.has("hidden_total")) (void)s.csv.numbers("hidden_total");
  csv_provenance(s.csv, s.provenance);
  config_provenance(s.file, s.provenance);
  return s;
}

ParetoStudy read_pareto(const fs::path& dir) {
  ParetoStudy s;
  s.dir = dir;
  s.file = dir / "pareto.csv";
  s.csv = CsvTable::read(s.file.string());
  (void)s.csv.column("strategy");
  (void)s.csv.numbers("params");
  (void)s.csv.numbers("test_accuracy");
  csv_provenance(s.csv, s.provenance);
  config_provenance(s.file, s.provenance);
  return s;
}

namespace {

// The numbers of a JSON array (null, which is how JSON writes NaN, reads as NaN).
std::vector<double> json_numbers(const json& j, const fs::path& file, const std::string& where) {
  require(j.is_array(), file.string(), ": ", where, ": expected an array of numbers, found ", j.type_name());
  std::vector<double> out;
  for (const json& v : j) {
    require(v.is_number() || v.is_null(), file.string(), ": ", where, ": '", v.dump(), "' is not a number");
    out.push_back(v.is_null() ? nan : v.get<double>());
  }
  return out;
}

const json& json_member(const json& j, const std::string& key, const fs::path& file, const std::string& where) {
  require(j.is_object(), file.string(), ": ", where, ": expected a JSON object, found ", j.type_name());
  const auto it = j.find(key);
  require(it != j.end(), file.string(), ": ", where, ": no key '", key, "'");
  return *it;
}

// Provenance of a benchmark file: its top-level scalar fields.
void json_provenance(const json& doc, Provenance& p) {
  for (const auto& [key, value] : doc.items())
    if (value.is_primitive()) p.fields.emplace_back(key, json_scalar_text(value));
}

}  // namespace

CpqrBenchStudy read_bench_cpqr(const fs::path& file) {
  CpqrBenchStudy s;
  s.file = file;
  const json doc = read_json(file);
  require(doc.is_object(), file.string(), ": expected a JSON object (idprune bench cpqr --json), found ",
          doc.type_name());
  json_provenance(doc, s.provenance);
  config_provenance(file, s.provenance);
  const json& sweeps = json_member(doc, "sweeps", file, "top level");
  require(sweeps.is_object() && !sweeps.empty(), file.string(), ": sweeps: expected a non-empty object");
  std::vector<std::string> methods;
  for (const auto& [name, js] : sweeps.items()) {
    const std::string where = "sweeps." + name;
    const auto m = json_numbers(json_member(js, "m", file, where), file, where + ".m");
    const auto n = json_numbers(json_member(js, "n", file, where), file, where + ".n");
    require(m.size() == n.size() && !m.empty(), file.string(), ": ", where, ": ", m.size(), " values of m but ",
            n.size(), " of n");
    Scaling sc;
    sc.name = name;
    const bool fixed_n = std::all_of(n.begin(), n.end(), [&](double v) { return v == n.front(); });
    const bool fixed_m = std::all_of(m.begin(), m.end(), [&](double v) { return v == m.front(); });
    std::vector<double> x = m;
    if (name == "m") {
      sc.xlabel = "rows m" + (fixed_n ? " (n = " + num(n.front()) + ")" : std::string());
    } else if (name == "n") {
      x = n;
      sc.xlabel = "columns n" + (fixed_m ? " (m = " + num(m.front()) + ")" : std::string());
    } else {
      sc.xlabel = "matrix size m = n";
    }
    const json& seconds = json_member(js, "seconds", file, where);
    require(seconds.is_object() && !seconds.empty(), file.string(), ": ", where, ".seconds: expected an object of ",
            "per-method arrays");
    const json* slopes = js.contains("slope") && js["slope"].is_object() ? &js["slope"] : nullptr;
    for (const auto& [method, times] : seconds.items()) {
      TimingCurve c;
      c.method = method;
      c.size = x;
      c.seconds = json_numbers(times, file, where + ".seconds." + method);
      require(c.seconds.size() == x.size(), file.string(), ": ", where, ".seconds.", method, ": ", c.seconds.size(),
              " timings for ", x.size(), " sizes");
      c.slope = slopes != nullptr && slopes->contains(method) && (*slopes)[method].is_number()
                    ? (*slopes)[method].get<double>()
                    : loglog_slope(c.size, c.seconds);
      if (std::find(methods.begin(), methods.end(), method) == methods.end()) methods.push_back(method);
      sc.curves.push_back(std::move(c));
    }
    s.scalings.push_back(std::move(sc));
  }
  // Tables: median seconds per shape, slopes per sweep (methods as columns).
  s.table.header = {"sweep", "m", "n"};
  s.slopes.header = {"sweep"};
  for (const auto& method : methods) {
    s.table.header.push_back(method + " (s)");
    s.slopes.header.push_back(method + " slope");
  }
  for (const Scaling& sc : s.scalings) {
    const json& js = sweeps[sc.name];
    const auto m = json_numbers(js["m"], file, "sweeps." + sc.name + ".m");
    const auto n = json_numbers(js["n"], file, "sweeps." + sc.name + ".n");
    std::vector<std::string> slope_row{sc.name};
    for (std::size_t i = 0; i < m.size(); ++i) {
      std::vector<std::string> row{sc.name, num(m[i]), num(n[i])};
      for (const auto& method : methods) {
        const auto c =
            std::find_if(sc.curves.begin(), sc.curves.end(), [&](const TimingCurve& t) { return t.method == method; });
        row.push_back(c == sc.curves.end() ? "" : num(c->seconds[i]));
      }
      s.table.rows.push_back(std::move(row));
    }
    for (const auto& method : methods) {
      const auto c =
          std::find_if(sc.curves.begin(), sc.curves.end(), [&](const TimingCurve& t) { return t.method == method; });
      slope_row.push_back(c == sc.curves.end() ? "" : num(c->slope));
    }
    s.slopes.rows.push_back(std::move(slope_row));
  }
  // Single-size comparisons: any other top-level object with a "seconds" object.
  for (const auto& [key, value] : doc.items()) {
    if (key == "sweeps" || !value.is_object() || !value.contains("seconds") || !value["seconds"].is_object()) continue;
    std::string note = key;
    std::replace(note.begin(), note.end(), '_', ' ');
    if (value.contains("m") && value.contains("n"))
      note += " " + json_scalar_text(value["m"]) + " x " + json_scalar_text(value["n"]);
    if (value.contains("k")) note += ", k = " + json_scalar_text(value["k"]);
    note += ":";
    for (const auto& [method, t] : value["seconds"].items())
      if (t.is_number()) note += " " + method + " " + num(t.get<double>()) + " s,";
    for (const auto& [k, v] : value.items())
      if (k.rfind("ratio", 0) == 0 && v.is_number()) note += " " + k + " = " + num(v.get<double>()) + ",";
    note.back() = '.';
    s.notes.push_back(note);
  }
  return s;
}

void read_bench_id(const fs::path& file, IdBenchStudy& study) {
  const json doc = read_json(file);
  require(doc.is_object(), file.string(), ": expected a JSON object (idprune bench id --json), found ",
          doc.type_name());
  const json& ranks = json_member(doc, "ranks", file, "top level");
  require(ranks.is_number() && ranks.get<double>() >= 1, file.string(), ": ranks: '", ranks.dump(),
          "' is not a number >= 1");
  const json& results = json_member(doc, "results", file, "top level");
  require(results.is_array(), file.string(), ": results: expected an array, found ", results.type_name());
  std::string size;
  if (doc.contains("rows") && doc.contains("cols"))
    size = json_scalar_text(doc["rows"]) + " x " + json_scalar_text(doc["cols"]);
  if (study.table.header.empty())
    study.table.header = {"ranks", "matrix",   "engine",      "median seconds",
                          "rank",  "ID error", "error ratio", "bytes sent per rank"};
  for (std::size_t i = 0; i < results.size(); ++i) {
    const json& r = results[i];
    const std::string where = "results[" + std::to_string(i) + "]";
    require(r.is_object(), file.string(), ": ", where, ": expected an object");
    std::string matrix = r.contains("kind") ? json_scalar_text(r["kind"]) : std::string();
    if (!size.empty()) matrix += (matrix.empty() ? "" : " ") + size;
    for (const char* group : {"reference", "engines"}) {
      if (!r.contains(group)) continue;
      const json& list = r[group];
      require(list.is_array(), file.string(), ": ", where, ".", group, ": expected an array");
      for (std::size_t j = 0; j < list.size(); ++j) {
        const std::string w = where + "." + group + "[" + std::to_string(j) + "]";
        const json& e = list[j];
        const json& engine = json_member(e, "engine", file, w);
        const json& seconds = json_member(e, "median_seconds", file, w);
        require(engine.is_string(), file.string(), ": ", w, ".engine: expected a string");
        require(seconds.is_number(), file.string(), ": ", w, ".median_seconds: '", seconds.dump(), "' is not a number");
        EngineTiming t;
        t.engine = engine.get<std::string>();
        t.matrix = matrix;
        t.ranks = ranks.get<double>();
        t.seconds = seconds.get<double>();
        study.timings.push_back(t);
        const auto field = [&](const char* key) { return e.contains(key) ? json_scalar_text(e[key]) : std::string(); };
        study.table.rows.push_back({num(t.ranks), matrix, t.engine, num(t.seconds), field("rank"), field("id_error"),
                                    field("error_ratio"), field("bytes_sent_max_per_rank")});
      }
    }
  }
  study.files.push_back(file);
  add_json_provenance(doc, study.provenance);
}

void read_bench_compress_scale(const fs::path& file, CompressScaleStudy& study) {
  const json doc = read_json(file);
  require(doc.is_object(), file.string(), ": expected a JSON object (idprune bench compress-scale --json), found ",
          doc.type_name());
  const auto positive = [&](const json& j, const std::string& key, const std::string& where) {
    const json& v = json_member(j, key, file, where);
    require(v.is_number() && v.get<double>() > 0, file.string(), ": ", where, ".", key, ": '", v.dump(),
            "' is not a number > 0");
    return v.get<double>();
  };
  const json& benchmark = json_member(doc, "benchmark", file, "top level");
  require(benchmark == "compress-scale", file.string(), ": benchmark is ", benchmark.dump(),
          ", expected \"compress-scale\" (the output of idprune bench compress-scale --json)");
  CompressScaleCurve c;
  c.file = file;
  c.ranks = positive(doc, "ranks", "top level");
  c.threads = positive(doc, "threads", "top level");
  c.gemm_gflops_per_rank = positive(doc, "gemm_gflops_per_rank", "top level");
  const json& runs = json_member(doc, "runs", file, "top level");
  require(runs.is_array() && !runs.empty(), file.string(), ": runs: expected a non-empty array, found ",
          runs.is_array() ? std::string("an empty one") : std::string(runs.type_name()));
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const std::string where = "runs[" + std::to_string(i) + "]";
    const json& r = runs[i];
    CompressScaleRun run;
    run.rows = positive(r, "rows", where);
    run.seconds = positive(r, "seconds", where);
    run.gflop = positive(r, "gflop", where);
    run.bound_seconds = positive(r, "bound_seconds", where);
    run.ratio = r.contains("ratio") ? positive(r, "ratio", where) : run.seconds / run.bound_seconds;
    run.peak_rss_bytes = positive(r, "peak_rss_bytes", where);
    for (auto [key, field] : {std::pair{"activation_seconds", &run.activation_seconds},
                              std::pair{"factorization_seconds", &run.factorization_seconds}}) {
      const json& v = json_member(r, key, file, where);
      require(v.is_number() && v.get<double>() >= 0, file.string(), ": ", where, ".", key, ": '", v.dump(),
              "' is not a number >= 0");
      *field = v.get<double>();
    }
    if (r.contains("streamed")) {
      require(r["streamed"].is_boolean(), file.string(), ": ", where, ".streamed: expected true or false");
      run.streamed = r["streamed"].get<bool>();
    }
    c.runs.push_back(run);
  }
  study.curves.push_back(std::move(c));
  study.files.push_back(file);
  add_json_provenance(doc, study.provenance);
}

std::vector<PublishedPoint> read_published(const fs::path& file) {
  const CsvTable csv = CsvTable::read(file.string());
  const std::size_t method = csv.column("method"), source = csv.column("source"), axis = csv.column("axis"),
                    x = csv.column("x"), accuracy = csv.column("accuracy");
  const auto optional = [&](const char* name) { return csv.has(name) ? csv.column(name) : SIZE_MAX; };
  const std::size_t cite = optional("cite"), model = optional("model"), dataset = optional("dataset"),
                    original = optional("original_accuracy"), finetuned = optional("finetuned");
  std::vector<PublishedPoint> points;
  for (std::size_t r = 0; r < csv.rows(); ++r) {
    const std::string at = file.string() + ":" + std::to_string(csv.line(r)) + ": ";
    PublishedPoint p;
    p.file = file;
    p.method = csv.text(r, method);
    p.source = csv.text(r, source);
    require(!p.method.empty() && !p.source.empty(), at,
            "every published point needs a method and its source (the citation)");
    p.cite = cite == SIZE_MAX || csv.text(r, cite).empty() ? p.source : csv.text(r, cite);
    if (model != SIZE_MAX) p.model = csv.text(r, model);
    if (dataset != SIZE_MAX) p.dataset = csv.text(r, dataset);
    p.axis = csv.text(r, axis);
    require(p.axis == "params_fraction" || p.axis == "hidden_kept_fraction" || p.axis == "hidden_pruned_fraction", at,
            "column 'axis': '", p.axis, "' is not params_fraction, hidden_kept_fraction or hidden_pruned_fraction");
    p.x = csv.number(r, x);
    require(p.x >= 0.0 && p.x <= 1.0, at, "column 'x': ", csv.text(r, x), " is outside [0, 1] (a fraction)");
    if (p.axis == "hidden_pruned_fraction") {
      p.axis = "hidden_kept_fraction";
      p.x = 1.0 - p.x;
    }
    p.accuracy = csv.number(r, accuracy);
    require(p.accuracy >= 0.0 && p.accuracy <= 100.0, at, "column 'accuracy': ", csv.text(r, accuracy),
            " is outside [0, 100] (percent)");
    p.original_accuracy = nan;
    if (original != SIZE_MAX && !csv.text(r, original).empty()) {
      p.original_accuracy = csv.number(r, original);
      require(p.original_accuracy >= 0.0 && p.original_accuracy <= 100.0, at,
              "column 'original_accuracy': ", csv.text(r, original), " is outside [0, 100] (percent)");
    }
    if (finetuned != SIZE_MAX) {
      const std::string f = lower(csv.text(r, finetuned));
      require(f.empty() || f == "yes" || f == "no" || f == "true" || f == "false", at, "column 'finetuned': '",
              csv.text(r, finetuned), "' is not yes or no");
      p.finetuned = f == "yes" || f == "true";
    }
    points.push_back(std::move(p));
  }
  require(!points.empty(), file.string(), ": no published points (a header and at least one row are needed)");
  return points;
}

Results scan_results(const std::vector<fs::path>& dirs) {
  Results res;
  std::vector<fs::path> folders;
  for (const fs::path& d : dirs) {
    require(fs::is_directory(d), "report: result folder '", d.string(), "' does not exist or is not a folder");
    if (fs::exists(d / report_marker)) continue;
    folders.push_back(d);
    std::vector<fs::path> subs;
    for (const auto& e : fs::directory_iterator(d))
      if (e.is_directory() && !fs::exists(e.path() / report_marker) && e.path().filename().string().front() != '.')
        subs.push_back(e.path());
    std::sort(subs.begin(), subs.end());
    folders.insert(folders.end(), subs.begin(), subs.end());
  }
  for (const fs::path& dir : folders) {
    // The same folder given twice (or as a parent and itself) is read once.
    const fs::path canon = fs::weakly_canonical(dir);
    if (std::any_of(res.scanned.begin(), res.scanned.end(),
                    [&](const fs::path& p) { return fs::weakly_canonical(p) == canon; }))
      continue;
    res.scanned.push_back(dir);
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file() && is_known_file(e.path().filename().string())) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) {
      const std::string name = f.filename().string();
      res.files.push_back(f);
      if (name == "results.csv") {
        res.sweeps.push_back(read_sweep(dir));
      } else if (name == "pareto.csv") {
        res.pareto.push_back(read_pareto(dir));
      } else if (starts_with(name, "lowrank")) {
        res.lowrank.push_back(read_lowrank(f));
      } else if (starts_with(name, "bench-cpqr")) {
        res.cpqr_bench.push_back(read_bench_cpqr(f));
      } else if (starts_with(name, "bench-id")) {
        read_bench_id(f, res.id_bench);
      } else if (starts_with(name, "bench-compress-scale")) {
        read_bench_compress_scale(f, res.compress_scale);
      }
    }
  }
  return res;
}

}  // namespace idprune::report
