#include "idprune/compress/pareto_files.hpp"

#include <cmath>
#include <filesystem>
#include <iomanip>
#include <limits>
#include <sstream>

#include "idprune/compress/results.hpp"
#include "idprune/io/file.hpp"
#include "idprune/io/lock.hpp"
#include "idprune/la/error.hpp"

namespace idprune::compress {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

constexpr const char* kRecords = "pareto-strategies.jsonl";

/// The validation descent's path of `strategy`, and the name idprune gave that file before the
/// search was named for what it does (folders written then are still resumed).
std::string path_file(const std::string& strategy) { return "descent-path-" + strategy + ".csv"; }
std::string legacy_path_file(const std::string& strategy) { return "joint-path-" + strategy + ".csv"; }

/// JSON has no NaN or infinity (nlohmann writes null): read null back as NaN.
double number(const json& v) { return v.is_null() ? std::numeric_limits<double>::quiet_NaN() : v.get<double>(); }

std::string join(const std::vector<index_t>& v) {
  std::string s;
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ";" : "") + std::to_string(v[i]);
  return s;
}

json scores_json(const Scores& v) {
  return json{{"accuracy", v.accuracy()},
              {"cross_entropy", v.cross_entropy()},
              {"agreement", v.agreement()},
              {"correct", v.correct},
              {"agree", v.agree},
              {"samples", v.samples},
              {"loss", v.loss}};
}

Scores scores_from(const json& j) {
  Scores v;
  v.correct = j.at("correct").get<std::int64_t>();
  v.samples = j.at("samples").get<std::int64_t>();
  const auto n = static_cast<double>(v.samples);
  // Records written before the sums were kept carry the means only.
  v.agree = j.contains("agree") ? j.at("agree").get<std::int64_t>()
                                : static_cast<std::int64_t>(std::llround(number(j.at("agreement")) * n));
  v.loss = j.contains("loss") ? number(j.at("loss")) : number(j.at("cross_entropy")) * n;
  return v;
}

json model_json(const ParetoModel& m) {
  json j{{"setting", m.setting},
         {"params", m.params},
         {"params_fraction", m.params_fraction},
         {"kept_per_layer", m.kept_per_layer},
         {"ranks_per_layer", m.ranks_per_layer},
         {"validation", scores_json(m.validation)},
         {"test", json{{"correct", m.test.correct}, {"agree", m.test.agree}, {"samples", m.test.samples}}}};
  if (m.finetuned)
    j["finetuned"] =
        json{{"validation_accuracy", m.validation_accuracy_finetuned}, {"test_accuracy", m.test_accuracy_finetuned}};
  return j;
}

ParetoModel model_from(const json& j) {
  ParetoModel m;
  m.setting = j.at("setting").get<std::string>();
  m.params = j.at("params").get<std::int64_t>();
  m.params_fraction = number(j.at("params_fraction"));
  m.kept_per_layer = j.at("kept_per_layer").get<std::vector<index_t>>();
  m.ranks_per_layer = j.at("ranks_per_layer").get<std::vector<index_t>>();
  m.validation = scores_from(j.at("validation"));
  const json& t = j.at("test");
  m.test.correct = t.at("correct").get<std::int64_t>();
  m.test.agree = t.at("agree").get<std::int64_t>();
  m.test.samples = t.at("samples").get<std::int64_t>();
  if (j.contains("finetuned")) {
    m.finetuned = true;
    m.validation_accuracy_finetuned = number(j.at("finetuned").at("validation_accuracy"));
    m.test_accuracy_finetuned = number(j.at("finetuned").at("test_accuracy"));
  }
  return m;
}

json point_json(const SearchPoint& p) {
  return json{{"kept", p.kept},
              {"params", p.params},
              {"params_fraction", p.params_fraction},
              {"validation", scores_json(p.validation)},
              {"step", p.step},
              {"seconds", p.seconds}};
}

SearchPoint point_from(const json& j) {
  SearchPoint p;
  p.kept = j.at("kept").get<std::vector<index_t>>();
  p.params = j.at("params").get<std::int64_t>();
  p.params_fraction = number(j.at("params_fraction"));
  p.validation = scores_from(j.at("validation"));
  p.step = j.at("step").get<std::size_t>();
  p.seconds = number(j.at("seconds"));
  return p;
}

/// The columns of one model in pareto.csv and pareto-curves.csv.
json model_columns(const ParetoModel& m) {
  json r;
  r["params"] = m.params;
  r["params_fraction"] = m.params_fraction;
  r["validation_accuracy"] = m.validation.accuracy();
  r["test_accuracy"] = m.test.accuracy();
  r["agreement"] = m.test.agreement();
  r["kept_per_layer"] = join(m.kept_per_layer);
  r["ranks_per_layer"] = join(m.ranks_per_layer);
  r["validation_cross_entropy"] = m.validation.cross_entropy();
  r["validation_agreement"] = m.validation.agreement();
  r["setting"] = m.setting;
  if (m.finetuned) {
    // Apart from the post-training columns, never in their place.
    r["validation_accuracy_finetuned"] = m.validation_accuracy_finetuned;
    r["test_accuracy_finetuned"] = m.test_accuracy_finetuned;
  }
  return r;
}

std::string path_csv(const std::vector<SearchPoint>& path) {
  std::vector<json> rows;
  for (const auto& p : path) {
    json j;
    j["step"] = p.step;
    j["params"] = p.params;
    j["params_fraction"] = p.params_fraction;
    j["validation_accuracy"] = p.validation.accuracy();
    j["validation_cross_entropy"] = p.validation.cross_entropy();
    j["kept_per_layer"] = join(p.kept);
    j["seconds"] = p.seconds;
    rows.push_back(std::move(j));
  }
  return csv_text(rows);
}

double finite_or_nan(double v) { return std::isfinite(v) ? v : std::numeric_limits<double>::quiet_NaN(); }

}  // namespace

ParetoFiles::ParetoFiles(std::string dir, bool resume, const std::string& owner) : dir_(std::move(dir)) {
  folder_ = std::make_unique<io::OutputFolder>(dir_, owner);
  if (const std::string note = folder_->takeover_note(); !note.empty()) notes_.push_back(note);
  const fs::path d(dir_);
  const std::string records = (d / kRecords).string();
  if (!resume) {
    for (const char* name : {kRecords, "pareto.csv", "pareto-curves.csv"}) {
      std::error_code ec;
      const auto size = fs::file_size(d / name, ec);
      require(ec || size == 0, "'", (d / name).string(), "' already holds results: use --resume or another --out");
    }
    return;
  }
  std::size_t dropped = 0;
  records_ = read_json_lines(records, dropped);
  if (dropped > 0)
    notes_.push_back("dropped an incomplete last line of " + records + " (a run ended while writing it)");
  for (std::size_t i = 0; i < records_.size(); ++i) {
    const json& r = records_[i];
    require(r.contains("strategy") && r.contains("settings") && r.contains("curve") && r.contains("rows"), "'", records,
            "' line ", i + 1, " is not a strategy record");
  }
  // A cut record (or one recorded in the tables only) is dropped from them too.
  if (dropped > 0) {
    std::string text;
    for (const auto& r : records_) text += r.dump() + "\n";
    io::write_file_atomically(records, text);
  }
  for (const auto& r : records_) {
    const std::string strategy = r["strategy"].get<std::string>();
    std::error_code missing;
    if (!fs::exists(d / legacy_path_file(strategy), missing) || fs::exists(d / path_file(strategy), missing)) continue;
    fs::rename(d / legacy_path_file(strategy), d / path_file(strategy));
    notes_.push_back("renamed " + legacy_path_file(strategy) + " to " + path_file(strategy) + " (the current name)");
  }
  std::error_code ec;
  if (records_.empty() && fs::file_size(d / "pareto.csv", ec) > 0 && !ec) {
    // Tables without records (an older idprune, or an edited folder): kept until the first
    // strategy of this run replaces them.
    notes_.push_back("'" + (d / "pareto.csv").string() +
                     "' has no strategy records (pareto-strategies.jsonl): every strategy is computed again");
    return;
  }
  rewrite_tables();
}

ParetoFiles::~ParetoFiles() = default;

std::vector<std::string> ParetoFiles::unfinished(std::span<const std::string> wanted, const json& settings) {
  for (const auto& r : records_) {
    const json& theirs = r["settings"];
    // The first setting that differs, in either direction, names the conflict.
    for (const auto& [key, value] : settings.items()) {
      const auto it = theirs.find(key);
      require(it != theirs.end() && *it == value, "'", dir_, "' holds strategy ", r["strategy"].dump(),
              " computed with ", key, " = ", it == theirs.end() ? std::string("(unset)") : it->dump(),
              ", this run has ", value.dump(),
              " (the model or data changed, or another configuration: use another --out)");
    }
    for (const auto& [key, value] : theirs.items())
      require(settings.contains(key), "'", dir_, "' holds strategy ", r["strategy"].dump(), " computed with ", key,
              " = ", value.dump(), ", which this run does not set (use another --out)");
  }
  settings_ = settings;
  std::vector<std::string> out;
  for (const auto& name : wanted) {
    bool done = false;
    for (const auto& r : records_) done = done || r["strategy"] == name;
    if (!done) out.push_back(name);
  }
  return out;
}

void ParetoFiles::record(const ParetoCurve& curve, std::span<const ParetoRow> rows, const json& provenance) {
  json r;
  r["strategy"] = curve.strategy;
  r["settings"] = settings_;
  r["provenance"] = provenance;
  json models = json::array();
  for (const auto& m : curve.models) models.push_back(model_json(m));
  r["curve"] = json{{"seconds", curve.seconds}, {"models", std::move(models)}};
  json out_rows = json::array();
  for (const auto& row : rows)
    out_rows.push_back(
        json{{"budget", row.budget}, {"search_seconds", row.search_seconds}, {"model", model_json(row.model)}});
  r["rows"] = std::move(out_rows);
  json path = json::array();
  for (const auto& p : curve.path) path.push_back(point_json(p));
  r["path"] = std::move(path);
  io::append_durably((fs::path(dir_) / kRecords).string(), r.dump() + "\n");
  records_.push_back(std::move(r));
  if (!curve.path.empty())
    io::write_file_atomically((fs::path(dir_) / path_file(curve.strategy)).string(), path_csv(curve.path));
  rewrite_tables();
}

void ParetoFiles::rewrite_tables() const {
  std::vector<json> rows;
  std::vector<json> curve_rows;
  for (const auto& r : records_) {
    const std::string strategy = r["strategy"].get<std::string>();
    const json provenance = r.value("provenance", json::object());
    for (const auto& row : r["rows"]) {
      json j;
      j["strategy"] = strategy;
      j["budget"] = number(row.at("budget"));
      j.update(model_columns(model_from(row.at("model"))));
      j["search_seconds"] = number(row.at("search_seconds"));
      j.update(provenance);
      rows.push_back(std::move(j));
    }
    const json& curve = r["curve"];
    for (const auto& m : curve.at("models")) {
      json j;
      j["strategy"] = strategy;
      j.update(model_columns(model_from(m)));
      j["strategy_seconds"] = number(curve.at("seconds"));
      curve_rows.push_back(std::move(j));
    }
  }
  const fs::path d(dir_);
  io::write_file_atomically((d / "pareto.csv").string(), csv_text(rows));
  io::write_file_atomically((d / "pareto-curves.csv").string(), csv_text(curve_rows));
}

ParetoResult ParetoFiles::result(const ParetoResult& originals) const {
  ParetoResult out;
  out.original_params = originals.original_params;
  out.original_validation = originals.original_validation;
  out.original_test = originals.original_test;
  for (const auto& r : records_) {
    ParetoCurve curve;
    curve.strategy = r["strategy"].get<std::string>();
    curve.seconds = number(r["curve"].at("seconds"));
    for (const auto& m : r["curve"].at("models")) curve.models.push_back(model_from(m));
    for (const auto& p : r.value("path", json::array())) curve.path.push_back(point_from(p));
    for (const auto& row : r["rows"])
      out.rows.push_back(ParetoRow{curve.strategy, number(row.at("budget")), model_from(row.at("model")),
                                   number(row.at("search_seconds"))});
    if (!curve.path.empty()) {
      out.paths.push_back(curve.path);
      out.path_strategies.push_back(curve.strategy);
    }
    out.curves.push_back(std::move(curve));
  }
  return out;
}

void ParetoFiles::write_summary(std::span<const ParetoComparison> comparisons) const {
  std::vector<json> summary;
  for (const auto& c : comparisons) {
    for (std::size_t b = 0; b < c.budgets.size(); ++b) {
      json j;
      j["strategy"] = c.strategy;
      j["budget"] = c.budgets[b];
      j["test_accuracy"] = finite_or_nan(c.test_accuracy[b]);
      j["greedy_interpolated"] = finite_or_nan(c.greedy[b]);
      j["gain"] = finite_or_nan(c.gain[b]);
      j["mean_gain"] = finite_or_nan(c.mean_gain);
      j["min_gain"] = finite_or_nan(c.min_gain);
      j["max_gain"] = finite_or_nan(c.max_gain);
      j["within_one_point_fraction"] = finite_or_nan(c.within_one_point);
      j["within_one_point_ratio_to_greedy"] = finite_or_nan(c.within_one_point_ratio);
      summary.push_back(std::move(j));
    }
  }
  io::write_file_atomically((fs::path(dir_) / "pareto-summary.csv").string(), csv_text(summary));
}

std::string format_comparisons(std::span<const ParetoComparison> comparisons) {
  const auto cell = [](double v, int width, double scale, int digits) {
    std::ostringstream os;
    if (std::isfinite(v))
      os << std::setw(width) << std::fixed << std::setprecision(digits) << scale * v;
    else
      os << std::setw(width) << "-";
    return os.str();
  };
  std::ostringstream os;
  os << "strategy             mean gain  min gain  max gain  within-1pt fraction (ratio to greedy)\n";
  for (const auto& c : comparisons) {
    os << std::left << std::setw(20) << c.strategy << std::right;
    if (c.strategy == "greedy") {
      // The reference: its gains over itself are not gains (its rows are picked within budgets,
      // the reference curve is interpolated, so the differences would only show that).
      os << std::setw(10) << "(ref)" << std::setw(10) << "-" << std::setw(10) << "-"
         << cell(c.within_one_point, 12, 1.0, 2) << "\n";
      continue;
    }
    os << cell(c.mean_gain, 10, 100.0, 2) << cell(c.min_gain, 10, 100.0, 2) << cell(c.max_gain, 10, 100.0, 2)
       << cell(c.within_one_point, 12, 1.0, 2) << " (" << cell(c.within_one_point_ratio, 0, 1.0, 2) << ")\n";
  }
  return os.str();
}

}  // namespace idprune::compress
