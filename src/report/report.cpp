#include "idprune/report/report.hpp"

#include <stdlib.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <iomanip>
#include <limits>
#include <map>
#include <sstream>

#include "idprune/io/file.hpp"
#include "idprune/la/error.hpp"
#include "idprune/report/document.hpp"
#include "idprune/report/studies.hpp"
#include "idprune/version.hpp"

namespace idprune::report {

namespace fs = std::filesystem;

namespace {

constexpr double nan = std::numeric_limits<double>::quiet_NaN();

std::string num(double v, int digits = 4) {
  if (!std::isfinite(v)) return std::isnan(v) ? "n/a" : (v > 0 ? "inf" : "-inf");
  std::ostringstream os;
  os << std::setprecision(digits) << v;
  return os.str();
}

void write_text(const fs::path& path, const std::string& text) { io::write_file_atomically(path.string(), text); }

// Whether a plot has at least one point gnuplot can draw (else gnuplot stops with an error).
bool drawable(const Plot& p) {
  for (const auto& s : p.series)
    for (std::size_t i = 0; i < s.x.size() && i < s.y.size(); ++i)
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i]) && (!p.logx || s.x[i] > 0) && (!p.logy || s.y[i] > 0))
        return true;
  return false;
}

// Whether the positive finite values of `v` span at least `decades` powers of ten.
bool spans_decades(const std::vector<std::vector<double>>& v, double decades) {
  double lo = std::numeric_limits<double>::infinity(), hi = 0.0;
  for (const auto& xs : v)
    for (double x : xs)
      if (x > 0 && std::isfinite(x)) {
        lo = std::min(lo, x);
        hi = std::max(hi, x);
      }
  return hi > 0 && std::log10(hi / lo) >= decades;
}

// Accuracies in percent: values in [0, 1] are fractions.
std::vector<double> as_percent(std::vector<double> v) {
  const bool fractions = std::all_of(v.begin(), v.end(), [](double a) { return !std::isfinite(a) || a <= 1.0; });
  if (fractions)
    for (double& a : v) a *= 100.0;
  return v;
}

// Sorts the points of a series by x (a sweep lists grid values, not parameter counts, in order).
void sort_by_x(Series& s) {
  std::vector<std::size_t> idx(s.x.size());
  for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return s.x[a] < s.x[b]; });
  Series out = s;
  for (std::size_t i = 0; i < idx.size(); ++i) {
    out.x[i] = s.x[idx[i]];
    out.y[i] = s.y[idx[i]];
  }
  s = std::move(out);
}

// Table with only the named columns of `csv` that exist (all columns when none of them does).
Table select_columns(const CsvTable& csv, const std::vector<std::string>& wanted) {
  std::vector<std::size_t> cols;
  for (const auto& w : wanted)
    if (csv.has(w)) cols.push_back(csv.column(w));
  if (cols.empty())
    for (std::size_t c = 0; c < csv.header().size(); ++c) cols.push_back(c);
  Table t;
  for (std::size_t c : cols) t.header.push_back(csv.header()[c]);
  for (std::size_t r = 0; r < csv.rows(); ++r) {
    std::vector<std::string> row;
    for (std::size_t c : cols) row.push_back(csv.text(r, c));
    t.rows.push_back(std::move(row));
  }
  return t;
}

// A label for a result folder: its path as given.
std::string folder_label(const fs::path& dir) { return dir.lexically_normal().string(); }

// Text of a percentage for the comparison tables (2 decimals, as publications quote them).
std::string percent_cell(double v) {
  if (!std::isfinite(v)) return "-";
  std::ostringstream os;
  os << std::fixed << std::setprecision(2) << v;
  return os.str();
}

// The legend entry of a published method.
std::string published_label(const PublishedPoint& p) {
  std::string l = p.method + " (published: " + p.cite;
  if (std::isfinite(p.original_accuracy)) l += "; unpruned " + percent_cell(p.original_accuracy) + " %";
  return l + ")";
}

// Published points on `axis` (and fine-tuned or not), one series per method and citation, drawn as
// large black/grey marks apart from the curves of our strategies. Returns the labels drawn.
std::vector<std::string> add_published(Plot& p, const std::vector<PublishedPoint>& published, const std::string& axis,
                                       bool finetuned) {
  static constexpr std::array<int, 4> marks{3, 6, 4, 12};  // asterisk, open circle, open square, open diamond
  static constexpr std::array<const char*, 4> inks{"#000000", "#555555", "#000000", "#555555"};
  std::vector<std::string> labels;
  for (const auto& pt : published) {
    if (pt.axis != axis || pt.finetuned != finetuned) continue;
    const std::string l = published_label(pt);
    auto it = std::find(labels.begin(), labels.end(), l);
    if (it == labels.end()) {
      const std::size_t k = labels.size();
      labels.push_back(l);
      Series ser{l, {}, {}, "points", ""};
      ser.color = inks[k % inks.size()];
      ser.point_type = marks[k % marks.size()];
      ser.point_size = 2.0;
      p.series.push_back(std::move(ser));
      it = labels.end() - 1;
    }
    // The series of label k is the k-th published series, at the end of the plot.
    Series& ser = p.series[p.series.size() - labels.size() + static_cast<std::size_t>(it - labels.begin())];
    ser.x.push_back(pt.x);
    ser.y.push_back(pt.accuracy);
  }
  for (std::size_t k = 0; k < labels.size(); ++k) sort_by_x(p.series[p.series.size() - labels.size() + k]);
  return labels;
}

// Beside the plot, a legend of many or long entries leaves the plot a sliver: it goes below, in as
// many columns as fit, and the image grows to keep the plot's height.
void legend_below_if_crowded(Plot& p) {
  std::size_t longest = 0;
  for (const auto& ser : p.series) longest = std::max(longest, ser.title.size());
  if (p.series.size() <= 10 && longest <= 40) return;
  const std::size_t columns = std::clamp<std::size_t>(110 / (longest + 8), 1, 4);
  const std::size_t rows = (p.series.size() + columns - 1) / columns;
  p.key = "below horizontal maxcols " + std::to_string(columns) + " height 1";
  p.height_scale = 1.0 + 0.04 * static_cast<double>(rows);
}

// Budgets written as percentages: 0.075 -> "7.5%".
std::string budget_label(double b) { return num(100.0 * b, 4) + "%"; }

struct OriginalModel;

class Builder {
 public:
  Builder(const ReportOptions& options, const fs::path& work)
      : options_(options), work_(work), gnuplot_(options.gnuplot) {
    fs::create_directories(work_ / "data");
  }

  ReportSummary build(const Results& res);

 private:
  // Copies a source file into data/ and returns its path relative to the report.
  std::string copy_source(const fs::path& file);
  // Renders `plot` (when it has drawable points) and adds the figure; false when nothing to draw.
  bool figure(const Plot& plot, const std::string& caption);
  void provenance(const Provenance& p, const std::vector<fs::path>& sources);
  // figNN-WHAT, with the characters of WHAT that do not belong in a file name replaced by '-'.
  std::string next_figure_name(const std::string& what) {
    std::ostringstream os;
    os << "fig" << std::setw(2) << std::setfill('0') << ++figure_count_ << "-";
    for (char c : what) os << (std::isalnum(static_cast<unsigned char>(c)) || c == '_' ? c : '-');
    return os.str();
  }

  void lowrank_section(const std::vector<LowRankStudy>& studies);
  void cpqr_section(const std::vector<CpqrBenchStudy>& studies);
  void sweep_section(const std::vector<SweepStudy>& sweeps);
  void pareto_section(const std::vector<ParetoStudy>& studies);
  // One front figure and its strategy x budget table: test accuracy `test_col`, selected on
  // `validation_col` (the post-training columns, or the fine-tuned ones).
  void pareto_front(const ParetoStudy& s, const std::string& test_col, const std::string& validation_col,
                    bool finetuned);
  void published_section();
  // Our all-layer sweeps against the published points, at the published fractions of hidden neurons.
  void hidden_comparison(const std::vector<std::pair<const SweepStudy*, const SweepCurve*>>& curves,
                         const std::function<std::string(const SweepStudy&, const SweepCurve&)>& label,
                         const std::vector<OriginalModel>& originals);
  void id_bench_section(const IdBenchStudy& study);
  void compress_scale_section(const CompressScaleStudy& study);
  void single_rank_bars(const IdBenchStudy& study, const std::string& matrix, double ranks);

  const ReportOptions& options_;
  fs::path work_;
  Gnuplot gnuplot_;
  Document doc_;
  ReportSummary summary_;
  std::map<fs::path, std::string> copied_;
  std::vector<Plot> pending_;  // figures to draw
  std::vector<PublishedPoint> published_;
  std::vector<std::string> published_drawn_;  // legend labels of the published series drawn in some figure
  int figure_count_ = 0;
  int source_count_ = 0;
};

std::string Builder::copy_source(const fs::path& file) {
  const auto it = copied_.find(file);
  if (it != copied_.end()) return it->second;
  std::ostringstream name;
  name << std::setw(2) << std::setfill('0') << ++source_count_ << "-";
  const std::string parent = file.parent_path().filename().string();
  if (!parent.empty() && parent != "." && parent != "..") name << parent << "-";
  name << file.filename().string();
  const std::string rel = "data/" + name.str();
  fs::copy_file(file, work_ / rel, fs::copy_options::overwrite_existing);
  copied_[file] = rel;
  return rel;
}

bool Builder::figure(const Plot& plot, const std::string& caption) {
  if (!drawable(plot)) {
    doc_.paragraph("(No figure: no drawable points" +
                   std::string(plot.logy ? " (all values are zero or not finite)" : "") + ".)");
    return false;
  }
  // Drawn later, all figures by one gnuplot process (see render_all).
  const std::string image = plot.name + "." + gnuplot_.extension();
  pending_.push_back(plot);
  summary_.figures.push_back(image);
  doc_.figure(image, plot.title, caption + " Drawn by gnuplot from " + plot.name + ".gp and " + plot.name + ".dat.");
  return true;
}

void Builder::provenance(const Provenance& p, const std::vector<fs::path>& sources) {
  std::vector<std::vector<Span>> items;
  for (const auto& src : sources) {
    const std::string rel = copy_source(src);
    items.push_back({{"source: "}, {src.string(), rel, true}});
  }
  for (const auto& [key, value] : p.fields) items.push_back({{key + ": "}, {value, "", true}});
  if (!p.config_file.empty()) {
    const std::string rel = copy_source(p.config_file);
    items.push_back({{"configuration: "}, {p.config_file.string(), rel, true}});
  }
  doc_.paragraph("Provenance:");
  doc_.bullets(items);
  if (!p.config_text.empty()) doc_.code(p.config_text, "Configuration of the run (" + p.config_file.string() + "):");
}

void Builder::lowrank_section(const std::vector<LowRankStudy>& studies) {
  for (const LowRankStudy& s : studies) {
    // lowrank-kernel.csv and lowrank-layerN.csv are the main job's names (see studies.hpp).
    std::string label = s.label.empty() ? s.file.filename().string() : s.label;
    if (label == "kernel") {
      label = "kernel matrix";
    } else if (label.rfind("layer", 0) == 0 && label.size() > 5 &&
               label.find_first_not_of("0123456789", 5) == std::string::npos) {
      label = "layer-" + label.substr(5) + " activations";
    }
    const std::string title = "Rank-k approximation error: CPQR (ID) vs SVD, " + label;
    doc_.heading(2, title);
    summary_.sections.push_back(title);
    Plot p;
    p.name = next_figure_name("lowrank" + (s.label.empty() ? "" : "-" + s.label));
    p.title = title;
    p.xlabel = "rank k (columns kept)";
    p.ylabel = "spectral-norm error ||A - A_k||_2 (units of A)";
    p.logy = true;
    p.series.push_back({"CPQR / ID: ||R22|| after k steps", s.k, s.cpqr_error, "linespoints", ""});
    p.series.push_back({"SVD, optimal: sigma(k+1)", s.k, s.svd_error, "linespoints", "2"});
    // Errors below eps times the largest are rounding noise (exact zeros of a rank-deficient matrix
    // come out anywhere down to 1e-30): the axis stops at a tenth of that level.
    double largest = 0.0;
    for (const auto& ser : p.series)
      for (double v : ser.y)
        if (std::isfinite(v)) largest = std::max(largest, v);
    p.ymin = 0.1 * std::numeric_limits<double>::epsilon() * largest;
    // The ratio matters only where the optimal error is above rounding level.
    double max_ratio = 0.0, max_k = 0.0;
    const double floor = s.svd_error.empty() ? 0.0 : 100.0 * std::numeric_limits<double>::epsilon() * s.svd_error[0];
    std::size_t counted = 0;
    for (std::size_t i = 0; i < s.k.size(); ++i) {
      if (!(s.svd_error[i] > floor)) continue;
      ++counted;
      const double r = s.cpqr_error[i] / s.svd_error[i];
      if (r > max_ratio) {
        max_ratio = r;
        max_k = s.k[i];
      }
    }
    std::string caption =
        "CPQR error and optimal (SVD) error against k, logarithmic error axis (cut at 0.1 eps times the largest error; "
        "smaller values are rounding noise).";
    if (counted > 0)
      caption += " Largest ratio cpqr_error / svd_error over the " + std::to_string(counted) +
                 " ranks whose SVD error exceeds 100 eps times the k = 1 value: " + num(max_ratio) +
                 " (k = " + num(max_k) + ").";
    figure(p, caption);
    doc_.table(s.table, options_.max_table_rows, copy_source(s.file));
    provenance(s.provenance, {s.file});
  }
}

void Builder::cpqr_section(const std::vector<CpqrBenchStudy>& studies) {
  for (const CpqrBenchStudy& s : studies) {
    const std::string title = "CPQR timing scaling (" + s.file.filename().string() + ")";
    doc_.heading(2, title);
    summary_.sections.push_back(title);
    for (const Scaling& sc : s.scalings) {
      Plot p;
      p.name = next_figure_name("cpqr-" + sc.name);
      p.title = "CPQR time vs " + sc.xlabel;
      p.xlabel = sc.xlabel;
      p.ylabel = "time (seconds)";
      p.logx = p.logy = true;
      p.key = "top left";
      for (const TimingCurve& c : sc.curves)
        p.series.push_back({c.method + " (slope " + num(c.slope, 3) + ")", c.size, c.seconds, "linespoints", ""});
      figure(p, "Log-log axes; the legend gives each method's fitted log-log slope (time ~ size^slope).");
    }
    doc_.paragraph("Fitted log-log slopes (an O(m n k) method shows about 1, 1 and 2):");
    doc_.table(s.slopes, 0);
    for (const auto& note : s.notes) doc_.paragraph(note);
    doc_.paragraph("Median times:");
    doc_.table(s.table, options_.max_table_rows, copy_source(s.file));
    provenance(s.provenance, {s.file});
  }
}

// Label of one sweep's curve: strategy, rule, and the layers when not all.
std::string curve_label(const SweepCurve& c) {
  std::string l = c.strategy;
  if (!c.rule.empty()) l += ", " + c.rule;
  if (!c.layers.empty()) l += ", layers " + c.layers;
  return l;
}

// Numbers of column `col` at the rows of curve `c`.
std::vector<double> curve_column(const SweepStudy& s, const SweepCurve& c, const std::string& col) {
  const std::size_t j = s.csv.column(col);
  std::vector<double> out;
  for (std::size_t r : c.rows) out.push_back(s.csv.number(r, j));
  return out;
}

std::vector<long> kept_list(const SweepStudy& s, std::size_t r) {
  return parse_integer_list(s.csv.text(r, s.csv.column("kept_per_layer")),
                            s.csv.source() + ":" + std::to_string(s.csv.line(r)) + ": column 'kept_per_layer'");
}

// Fraction of layer 1's neurons kept at each row of a layer-1-only curve: kept_per_layer[0] over
// layer 1's original width, which is hidden_total minus the (untouched) widths of the other layers.
// Empty when the table cannot tell (no hidden_total column).
std::vector<double> w1_fraction(const SweepStudy& s, const SweepCurve& c) {
  if (!s.csv.has("hidden_total") || !s.csv.has("kept_per_layer")) return {};
  std::vector<double> out;
  for (std::size_t r : c.rows) {
    const auto kept = kept_list(s, r);
    double width = s.csv.number(r, s.csv.column("hidden_total"));
    for (std::size_t l = 1; l < kept.size(); ++l) width -= static_cast<double>(kept[l]);
    out.push_back(width > 0 ? static_cast<double>(kept.front()) / width : nan);
  }
  return out;
}

// The model a sweep folder compressed, as its rows name it: the `model` column, else its size
// (original_params), else "" (not recorded).
std::string sweep_model(const SweepStudy& s) {
  if (s.csv.rows() == 0) return {};
  if (s.csv.has("model") && !s.csv.text(0, s.csv.column("model")).empty()) return s.csv.text(0, s.csv.column("model"));
  if (s.csv.has("original_params"))
    return "a model of " + s.csv.text(0, s.csv.column("original_params")) + " parameters";
  return {};
}

// One original model of the sweeps: its name and test accuracy in percent.
struct OriginalModel {
  std::string model;
  double accuracy = nan;
};

// Every distinct original model of the sweeps (name and accuracy), in the order first seen.
std::vector<OriginalModel> original_models(const std::vector<SweepStudy>& sweeps) {
  std::vector<OriginalModel> models;
  for (const auto& s : sweeps) {
    if (!s.csv.has("original_accuracy") || s.csv.rows() == 0) continue;
    const OriginalModel m{sweep_model(s), as_percent({s.csv.numbers("original_accuracy")[0]})[0]};
    if (std::none_of(models.begin(), models.end(),
                     [&](const OriginalModel& o) { return o.model == m.model && o.accuracy == m.accuracy; }))
      models.push_back(m);
  }
  return models;
}

// Adds a dashed horizontal line at each original model's accuracy across the x range of the plot
// (one line, "original model", when the sweeps compressed one model; one per model, named, else).
void add_original_lines(Plot& p, const std::vector<OriginalModel>& models) {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const auto& ser : p.series)
    for (double x : ser.x)
      if (std::isfinite(x) && (!p.logx || x > 0)) {
        lo = std::min(lo, x);
        hi = std::max(hi, x);
      }
  if (!(lo <= hi)) return;
  static constexpr std::array<const char*, 4> greys{"#555555", "#888888", "#333333", "#aaaaaa"};
  for (std::size_t i = 0; i < models.size(); ++i) {
    const OriginalModel& m = models[i];
    if (!std::isfinite(m.accuracy)) continue;
    const std::string title = models.size() == 1 ? "original model (" + num(m.accuracy) + " %)"
                                                 : "original model " + m.model + " (" + num(m.accuracy) + " %)";
    p.series.push_back(
        {title, {lo, hi}, {m.accuracy, m.accuracy}, "lines", std::to_string(2 + i % 4), greys[i % greys.size()]});
  }
}

void add_original_line(Plot& p, double accuracy) { add_original_lines(p, {{"", accuracy}}); }

void Builder::sweep_section(const std::vector<SweepStudy>& sweeps) {
  if (sweeps.empty()) {
    summary_.missing.push_back("compression sweeps: accuracy vs fraction of W1 kept, vs parameters (results.csv)");
    return;
  }
  doc_.heading(2, "Compression sweeps");
  // Sweeps of different models share the figures: each model gets its own original line, and the
  // curves name their model.
  const std::vector<OriginalModel> originals = original_models(sweeps);
  const bool several_models = originals.size() > 1;
  if (several_models) {
    std::string names;
    for (const auto& m : originals) names += (names.empty() ? "" : ", ") + m.model + " (" + num(m.accuracy) + " %)";
    doc_.paragraph("These sweeps start from " + std::to_string(originals.size()) +
                   " different original models (model file and test accuracy): " + names +
                   ". Each figure draws one dashed line per original model, and each curve names its model.");
  }
  // Labels that occur in more than one folder get the folder's name.
  std::map<std::string, int> seen;
  for (const auto& s : sweeps)
    for (const auto& c : s.curves) ++seen[curve_label(c)];
  const auto label = [&](const SweepStudy& s, const SweepCurve& c) {
    std::string l = curve_label(c);
    if (several_models) l += " (" + sweep_model(s) + ")";
    return seen[curve_label(c)] > 1 ? l + " [" + folder_label(s.dir) + "]" : l;
  };

  // Layer 1 alone: accuracy against the fraction of W1's columns kept.
  {
    Plot p;
    p.name = next_figure_name("layer1");
    p.title = "Test accuracy vs fraction of W1 kept (layer 1 compressed alone)";
    p.ylabel = "test accuracy (%)";
    p.key = "outside right top vertical";  // inside, the legend would hide points
    bool absolute = false, skipped_svd = false;
    for (const auto& s : sweeps)
      for (const auto& c : s.curves) {
        if (c.layers != "1") continue;
        if (c.strategy == "svd") {
          skipped_svd = true;  // keeps every neuron: no columns of W1 are dropped
          continue;
        }
        std::vector<double> x = w1_fraction(s, c);
        if (x.empty()) {
          absolute = true;
          for (std::size_t r : c.rows) x.push_back(static_cast<double>(kept_list(s, r).front()));
        }
        Series ser{label(s, c), x, as_percent(curve_column(s, c, "test_accuracy")), "linespoints", ""};
        sort_by_x(ser);
        p.series.push_back(std::move(ser));
      }
    if (p.series.empty()) {
      summary_.missing.push_back("accuracy vs fraction of W1 kept (a sweep with --layers 1)");
    } else {
      p.xlabel =
          absolute ? "neurons of hidden layer 1 kept (count)" : "fraction of W1's columns kept (neurons of layer 1)";
      add_original_lines(p, originals);
      doc_.heading(3, p.title);
      summary_.sections.push_back(p.title);
      figure(p, std::string("Only the first hidden layer is compressed; one point per grid value.") +
                    (skipped_svd ? " SVD sweeps keep every neuron and are shown against parameters only." : ""));
    }
  }
  // All layers: accuracy against the fraction of hidden neurons kept.
  std::vector<std::pair<const SweepStudy*, const SweepCurve*>> all_layers, chosen;
  for (const auto& s : sweeps)
    for (const auto& c : s.curves)
      if (c.layers.empty()) all_layers.emplace_back(&s, &c);
  if (std::any_of(all_layers.begin(), all_layers.end(), [](const auto& sc) { return sc.second->strategy != "svd"; }) &&
      std::all_of(sweeps.begin(), sweeps.end(),
                  [](const SweepStudy& s) { return s.csv.has("hidden_kept_fraction"); })) {
    Plot p;
    p.name = next_figure_name("hidden");
    p.title = "Test accuracy vs fraction of hidden neurons kept (all layers compressed)";
    p.xlabel = "fraction of all hidden neurons kept";
    p.ylabel = "test accuracy (%)";
    p.key = "outside right top vertical";  // inside, the legend would hide points
    for (const auto& [s, c] : all_layers) {
      if (c->strategy == "svd") continue;
      Series ser{label(*s, *c), curve_column(*s, *c, "hidden_kept_fraction"),
                 as_percent(curve_column(*s, *c, "test_accuracy")), "linespoints", ""};
      sort_by_x(ser);
      p.series.push_back(std::move(ser));
    }
    add_original_lines(p, originals);
    const std::vector<std::string> drawn = add_published(p, published_, "hidden_kept_fraction", false);
    published_drawn_.insert(published_drawn_.end(), drawn.begin(), drawn.end());
    legend_below_if_crowded(p);
    doc_.heading(3, p.title);
    summary_.sections.push_back(p.title);
    figure(p, std::string("Every hidden layer compressed; one point per grid value (SVD keeps every neuron and is left "
                          "out).") +
                  (drawn.empty() ? "" : " Large black and grey marks: published results, sources below."));
    if (!drawn.empty()) hidden_comparison(all_layers, label, originals);
  }
  // Accuracy against parameters: the all-layer sweeps (every sweep when there is none).
  chosen = all_layers;
  if (chosen.empty())
    for (const auto& s : sweeps)
      for (const auto& c : s.curves) chosen.emplace_back(&s, &c);
  {
    Plot p;
    p.name = next_figure_name("params");
    p.title = "Test accuracy vs parameters, by strategy";
    p.xlabel = "parameters of the compressed model (count)";
    p.ylabel = "test accuracy (%)";
    p.key = "outside right top vertical";  // inside, the legend would hide points
    std::vector<std::vector<double>> xs;
    for (const auto& [s, c] : chosen) {
      Series ser{label(*s, *c), curve_column(*s, *c, "params"), as_percent(curve_column(*s, *c, "test_accuracy")),
                 "linespoints", ""};
      sort_by_x(ser);
      xs.push_back(ser.x);
      p.series.push_back(std::move(ser));
    }
    p.logx = spans_decades(xs, 1.0);
    add_original_lines(p, originals);
    doc_.heading(3, p.title);
    summary_.sections.push_back(p.title);
    figure(p, std::string("One curve per sweep (strategy, rank rule") +
                  (all_layers.empty() ? ", compressed layers)" : "; every hidden layer compressed)") +
                  (p.logx ? ", logarithmic parameter axis." : "."));
  }
  for (const auto& s : sweeps) {
    doc_.heading(3, "Sweep results: " + folder_label(s.dir));
    doc_.table(select_columns(s.csv, {"strategy", "rule", "value", "layers", "test_accuracy", "agreement", "params",
                                      "params_fraction", "hidden_kept_fraction", "kept_per_layer", "ranks_per_layer"}),
               options_.max_table_rows, copy_source(s.file));
    std::vector<fs::path> sources{s.file};
    for (const auto& c : s.curves)
      if (!c.config_file.empty()) sources.push_back(c.config_file);
    provenance(s.provenance, sources);
  }
}

void Builder::hidden_comparison(const std::vector<std::pair<const SweepStudy*, const SweepCurve*>>& curves,
                                const std::function<std::string(const SweepStudy&, const SweepCurve&)>& label,
                                const std::vector<OriginalModel>& originals) {
  // The published fractions, most neurons kept first.
  std::vector<double> fractions;
  for (const auto& pt : published_)
    if (pt.axis == "hidden_kept_fraction" && !pt.finetuned &&
        std::none_of(fractions.begin(), fractions.end(), [&](double f) { return std::abs(f - pt.x) <= 1e-9; }))
      fractions.push_back(pt.x);
  std::sort(fractions.rbegin(), fractions.rend());
  // A sweep point counts at a published fraction when its kept fraction is within half a percent
  // (kept counts are whole neurons per layer).
  constexpr double match = 0.005;
  Table t;
  t.header.push_back("method");
  for (double f : fractions) t.header.push_back(num(100.0 * (1.0 - f), 4) + "% pruned");
  for (const auto& [s, c] : curves) {
    if (c->strategy == "svd") continue;
    const auto x = curve_column(*s, *c, "hidden_kept_fraction");
    const auto y = as_percent(curve_column(*s, *c, "test_accuracy"));
    std::vector<std::string> row{label(*s, *c)};
    for (double f : fractions) {
      std::string cell = "-";
      double best_gap = match;
      for (std::size_t i = 0; i < x.size(); ++i)
        if (std::abs(x[i] - f) <= best_gap) {
          best_gap = std::abs(x[i] - f);
          cell = percent_cell(y[i]);
        }
      row.push_back(cell);
    }
    t.rows.push_back(std::move(row));
  }
  std::vector<std::string> labels;
  for (const auto& pt : published_)
    if (pt.axis == "hidden_kept_fraction" && !pt.finetuned &&
        std::find(labels.begin(), labels.end(), published_label(pt)) == labels.end())
      labels.push_back(published_label(pt));
  for (const auto& l : labels) {
    std::vector<std::string> row{l};
    for (double f : fractions) {
      std::string cell = "-";
      for (const auto& pt : published_)
        if (published_label(pt) == l && pt.axis == "hidden_kept_fraction" && !pt.finetuned &&
            std::abs(pt.x - f) <= 1e-9)
          cell = percent_cell(pt.accuracy);
      row.push_back(cell);
    }
    t.rows.push_back(std::move(row));
  }
  std::string ours;
  for (const auto& m : originals)
    ours += (ours.empty() ? "" : ", ") + (originals.size() > 1 ? m.model + " " : std::string()) +
            percent_cell(m.accuracy) + " %";
  doc_.paragraph("Test accuracy (%) at the published shares of hidden neurons pruned (ours: the sweep point within " +
                 num(100 * match) +
                 " percentage points of that share; '-' when there is none), no fine-tuning. "
                 "Our unpruned model: " +
                 (ours.empty() ? std::string("not recorded") : ours) +
                 "; the published unpruned accuracy is in each published row's name.");
  doc_.table_as_written(t);
}

void Builder::pareto_section(const std::vector<ParetoStudy>& studies) {
  for (const ParetoStudy& s : studies) {
    const std::string title = "Pareto fronts: test accuracy vs parameters (" + folder_label(s.dir) + ")";
    doc_.heading(2, title);
    summary_.sections.push_back(title);
    doc_.paragraph(
        "Every strategy of the run, without fine-tuning: for each parameter budget, the model the strategy selected "
        "on the validation split (held-out training images); the test set only reports.");
    pareto_front(s, "test_accuracy", "validation_accuracy", false);
    if (s.csv.has("test_accuracy_finetuned")) {
      const std::string tuned = "After fine-tuning (" + folder_label(s.dir) + ")";
      doc_.heading(3, tuned);
      summary_.sections.push_back(tuned);
      doc_.paragraph(
          "The same selected models after --finetune-epochs of training on the training images outside the "
          "validation split (the epochs and learning rate are in the configuration below). Shown apart from the "
          "results without fine-tuning, never mixed with them.");
      pareto_front(s, "test_accuracy_finetuned", "validation_accuracy_finetuned", true);
    }
    doc_.heading(3, "All rows (" + folder_label(s.dir) + ")");
    doc_.table(select_columns(s.csv, {"strategy", "budget", "params", "params_fraction", "validation_accuracy",
                                      "test_accuracy", "agreement", "kept_per_layer"}),
               options_.max_table_rows, copy_source(s.file));
    provenance(s.provenance, {s.file});
  }
}

void Builder::pareto_front(const ParetoStudy& s, const std::string& test_col, const std::string& validation_col,
                           bool finetuned) {
  const std::string when = finetuned ? ", after fine-tuning" : ", no fine-tuning";
  Plot p;
  p.name = next_figure_name(finetuned ? "pareto-finetuned" : "pareto");
  p.title = "Pareto fronts: test accuracy vs parameters" + when;
  // The fraction of the original parameters is the axis publications use; older files have counts only.
  const bool fraction = s.csv.has("params_fraction");
  p.xlabel =
      fraction ? "parameters kept (fraction of the original model's)" : "parameters of the compressed model (count)";
  p.ylabel = "test accuracy (%)";
  p.key = "outside right top vertical";  // inside, the legend would hide points
  const std::size_t strat = s.csv.column("strategy");
  const auto xs_all = s.csv.numbers(fraction ? "params_fraction" : "params");
  const auto acc = as_percent(s.csv.numbers(test_col));
  const bool has_validation = s.csv.has(validation_col);
  const auto val = has_validation ? as_percent(s.csv.numbers(validation_col)) : std::vector<double>(s.csv.rows(), nan);
  const bool has_budget = s.csv.has("budget");
  const auto budget = has_budget ? s.csv.numbers("budget") : std::vector<double>(s.csv.rows(), nan);
  std::vector<std::string> order;
  for (std::size_t r = 0; r < s.csv.rows(); ++r)
    if (std::find(order.begin(), order.end(), s.csv.text(r, strat)) == order.end())
      order.push_back(s.csv.text(r, strat));
  std::vector<std::vector<double>> xs;
  for (const auto& name : order) {
    Series ser{name, {}, {}, "linespoints", ""};
    for (std::size_t r = 0; r < s.csv.rows(); ++r)
      if (s.csv.text(r, strat) == name) {
        ser.x.push_back(xs_all[r]);
        ser.y.push_back(acc[r]);
      }
    sort_by_x(ser);
    xs.push_back(ser.x);
    p.series.push_back(std::move(ser));
  }
  p.logx = spans_decades(xs, 1.0);
  for (const char* col : {"original_test_accuracy", "original_accuracy"})
    if (s.csv.has(col) && s.csv.rows() > 0) {
      add_original_line(p, as_percent({s.csv.numbers(col)[0]})[0]);
      break;
    }
  std::vector<std::string> drawn;
  if (fraction) drawn = add_published(p, published_, "params_fraction", finetuned);
  published_drawn_.insert(published_drawn_.end(), drawn.begin(), drawn.end());
  legend_below_if_crowded(p);
  figure(p, "One curve per strategy (" + std::to_string(order.size()) +
                " strategies): its model within each parameter budget, selected on the validation split; test "
                "accuracy" +
                when + "." +
                (drawn.empty() ? std::string() : " Large black and grey marks: published results, sources below.") +
                (p.logx ? " Logarithmic parameter axis." : ""));

  // Strategy x budget: test accuracy (validation accuracy in brackets), then the strategy the
  // validation split would pick at each budget, then the published points at those budgets.
  if (!has_budget) return;
  std::vector<double> budgets;
  for (double b : budget)
    if (std::find(budgets.begin(), budgets.end(), b) == budgets.end()) budgets.push_back(b);
  std::sort(budgets.begin(), budgets.end());
  Table t;
  t.header.push_back("strategy");
  for (double b : budgets) t.header.push_back(budget_label(b));
  for (const auto& name : order) {
    std::vector<std::string> row{name};
    for (double b : budgets) {
      std::string cell = "-";
      for (std::size_t r = 0; r < s.csv.rows(); ++r)
        if (s.csv.text(r, strat) == name && budget[r] == b)
          cell = percent_cell(acc[r]) + (has_validation ? " (" + percent_cell(val[r]) + ")" : "");
      row.push_back(cell);
    }
    t.rows.push_back(std::move(row));
  }
  if (has_validation && order.size() > 1) {
    std::vector<std::string> row{"best on validation"};
    for (double b : budgets) {
      std::size_t best = SIZE_MAX;
      for (std::size_t r = 0; r < s.csv.rows(); ++r)
        if (budget[r] == b && std::isfinite(val[r]) && (best == SIZE_MAX || val[r] > val[best])) best = r;
      row.push_back(best == SIZE_MAX ? "-" : percent_cell(acc[best]) + " (" + s.csv.text(best, strat) + ")");
    }
    t.rows.push_back(std::move(row));
  }
  for (const auto& label : drawn) {
    std::vector<std::string> row{label};
    bool any = false;
    for (double b : budgets) {
      std::string cell = "-";
      for (const auto& pt : published_)
        if (published_label(pt) == label && pt.axis == "params_fraction" && pt.finetuned == finetuned &&
            std::abs(pt.x - b) <= 1e-9) {
          cell = percent_cell(pt.accuracy);
          any = true;
        }
      row.push_back(cell);
    }
    if (any) t.rows.push_back(std::move(row));
  }
  const std::string brackets =
      !has_validation ? "."
      : finetuned     ? "; in brackets the validation accuracy (%) after fine-tuning (each model was selected on the "
                        "validation split before fine-tuning)."
                      : "; in brackets the validation accuracy (%) the model was selected on.";
  doc_.paragraph("Test accuracy (%) by strategy and parameter budget" + when + brackets +
                 (order.size() > 1 && has_validation
                      ? " The row 'best on validation' gives, per budget, the test accuracy of the strategy with the "
                        "highest validation accuracy (named in brackets): the choice a user would make without "
                        "looking at the test set. '-': no model (or not fine-tuned)."
                      : ""));
  doc_.table_as_written(t);
}

void Builder::published_section() {
  if (published_.empty()) return;
  const std::string title = "Published results quoted for comparison";
  doc_.heading(2, title);
  summary_.sections.push_back(title);
  doc_.paragraph(
      "These accuracies are quoted from the publications below, not measured by idprune: their models, data "
      "splits and training differ from ours (compare each against its own unpruned accuracy). They are drawn as "
      "large black and grey marks in the figures whose axis they share.");
  Table t;
  t.header = {"method", "model", "dataset", "axis", "x", "test accuracy (%)", "unpruned (%)", "fine-tuned", "source"};
  std::vector<std::string> sources;
  for (const auto& p : published_) {
    t.rows.push_back({p.method, p.model, p.dataset, p.axis, num(p.x), percent_cell(p.accuracy),
                      percent_cell(p.original_accuracy), p.finetuned ? "yes" : "no", p.cite});
    if (std::find(sources.begin(), sources.end(), p.cite + ": " + p.source) == sources.end())
      sources.push_back(p.cite + ": " + p.source);
  }
  doc_.table_as_written(t);
  doc_.paragraph("Sources:");
  std::vector<std::vector<Span>> items;
  for (const auto& src : sources) items.push_back({{src}});
  doc_.bullets(items);
  std::vector<std::string> undrawn;
  for (const auto& p : published_)
    if (std::find(published_drawn_.begin(), published_drawn_.end(), published_label(p)) == published_drawn_.end() &&
        std::find(undrawn.begin(), undrawn.end(), p.method + " (" + p.axis + ")") == undrawn.end())
      undrawn.push_back(p.method + " (" + p.axis + ")");
  if (!undrawn.empty()) {
    std::string list;
    for (const auto& u : undrawn) list += (list.empty() ? "" : ", ") + u;
    doc_.paragraph("Not drawn (no figure of these results has their axis): " + list +
                   ". params_fraction points go on the Pareto fronts (pareto.csv), hidden_kept_fraction points on "
                   "the all-layer sweep figure (results.csv).");
  }
  std::vector<fs::path> files;
  for (const auto& p : published_)
    if (std::find(files.begin(), files.end(), p.file) == files.end()) files.push_back(p.file);
  provenance({}, files);
}

void Builder::id_bench_section(const IdBenchStudy& s) {
  if (s.timings.empty()) {
    summary_.missing.push_back("pivot-engine timings vs ranks (bench-id*.json)");
    return;
  }
  const std::string title = "Pivot engines: ID time vs MPI ranks";
  doc_.heading(2, title);
  summary_.sections.push_back(title);
  std::vector<std::string> matrices;
  for (const auto& t : s.timings)
    if (std::find(matrices.begin(), matrices.end(), t.matrix) == matrices.end()) matrices.push_back(t.matrix);
  std::vector<double> rank_counts;
  for (const auto& t : s.timings)
    if (std::find(rank_counts.begin(), rank_counts.end(), t.ranks) == rank_counts.end()) rank_counts.push_back(t.ranks);
  for (const auto& m : matrices) {
    if (rank_counts.size() == 1) {
      single_rank_bars(s, m, rank_counts.front());
      continue;
    }
    Plot p;
    p.name = next_figure_name("engines" + std::string(m.empty() ? "" : "-") + m);
    p.title = "ID time vs MPI ranks" + (m.empty() ? std::string() : ", " + m + " matrix");
    p.xlabel = "MPI ranks";
    p.ylabel = "time (seconds)";
    std::vector<std::string> engines;
    for (const auto& t : s.timings)
      if (t.matrix == m && std::find(engines.begin(), engines.end(), t.engine) == engines.end())
        engines.push_back(t.engine);
    std::vector<std::vector<double>> ys;
    for (const auto& e : engines) {
      Series ser{e, {}, {}, "linespoints", ""};
      for (const auto& t : s.timings)
        if (t.matrix == m && t.engine == e) {
          ser.x.push_back(t.ranks);
          ser.y.push_back(t.seconds);
        }
      sort_by_x(ser);
      ys.push_back(ser.y);
      p.series.push_back(std::move(ser));
    }
    p.logy = spans_decades(ys, 1.0);
    p.key = "outside right top vertical";  // inside, the legend would hide points
    for (const auto& t : s.timings)
      if (t.matrix == m && std::find(p.xtics.begin(), p.xtics.end(), t.ranks) == p.xtics.end())
        p.xtics.push_back(t.ranks);
    std::sort(p.xtics.begin(), p.xtics.end());
    figure(p, std::string("Median time of the slowest rank, one curve per pivot engine (the dgeqp3 reference runs on "
                          "one process with every core, whatever the rank count); one bench-id file per rank count") +
                  (p.logy ? ", logarithmic time axis." : "."));
  }
  doc_.table(s.table, options_.max_table_rows);
  provenance(s.provenance, s.files);
}

void Builder::single_rank_bars(const IdBenchStudy& s, const std::string& matrix, double ranks) {
  // A line over one rank count is a single point: bars compare the engines at that count.
  Plot p;
  p.name = next_figure_name("engines" + std::string(matrix.empty() ? "" : "-") + matrix);
  const std::string count = num(ranks);
  p.title = "ID time by pivot engine at " + count + " MPI rank" + (ranks == 1 ? "" : "s") +
            (matrix.empty() ? std::string() : ", " + matrix + " matrix");
  p.xlabel = "pivot engine";
  p.ylabel = "time (seconds)";
  p.key = "off";
  std::vector<std::vector<double>> ys;
  for (const auto& t : s.timings) {
    if (t.matrix != matrix) continue;
    const double x = static_cast<double>(p.xtics.size() + 1);
    p.xtics.push_back(x);
    p.xtic_labels.push_back(t.engine);
    p.series.push_back({t.engine, {x}, {t.seconds}, "boxes", ""});
    ys.push_back({t.seconds});
  }
  p.logy = spans_decades(ys, 2.0);
  figure(p,
         "Median time of the slowest rank per pivot engine (the dgeqp3 reference runs on one process). Only one "
         "rank count (" +
             count +
             ") is in these results, so the engines are compared as bars, not as curves over ranks: every "
             "bench-id file was run with " +
             count +
             " rank(s). The main job (jobs/main-job.sh) benchmarks 1 rank only when it runs as root without "
             "Open MPI's OMPI_ALLOW_RUN_AS_ROOT and OMPI_ALLOW_RUN_AS_ROOT_CONFIRM variables (Open MPI refuses to "
             "start as root without them); jobs/local/bench-engines.sh with RANKS_LIST=\"1 2 4\" adds other "
             "counts" +
             (p.logy ? "; logarithmic time axis." : "."));
}

void Builder::compress_scale_section(const CompressScaleStudy& s) {
  if (s.curves.empty()) {
    summary_.missing.push_back("compression time vs rows and its GEMM bound (bench-compress-scale*.json)");
    return;
  }
  const std::string title = "Compression time vs compression-set rows, against the GEMM lower bound";
  doc_.heading(2, title);
  summary_.sections.push_back(title);
  std::vector<const CompressScaleCurve*> curves;
  for (const auto& c : s.curves) curves.push_back(&c);
  std::stable_sort(curves.begin(), curves.end(), [](const CompressScaleCurve* a, const CompressScaleCurve* b) {
    return a->ranks != b->ranks ? a->ranks < b->ranks : a->threads < b->threads;
  });
  const auto layout = [](const CompressScaleCurve& c) {
    return num(c.ranks) + " rank" + (c.ranks == 1 ? "" : "s") + " x " + num(c.threads) + " thread" +
           (c.threads == 1 ? "" : "s");
  };
  static constexpr std::array<const char*, 6> colors{"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"};
  Plot p;
  p.name = next_figure_name("compress-scale");
  p.title = "One greedy compression point: time vs rows of the compression set";
  p.xlabel = "rows of the compression set";
  p.ylabel = "time (seconds)";
  p.logx = p.logy = true;
  p.key = "top left";
  for (std::size_t i = 0; i < curves.size(); ++i) {
    const CompressScaleCurve& c = *curves[i];
    Series measured{"measured, " + layout(c), {}, {}, "linespoints", ""};
    Series bound{"GEMM bound, " + layout(c), {}, {}, "lines", "2"};
    measured.color = bound.color = colors[i % colors.size()];
    for (const auto& r : c.runs) {
      measured.x.push_back(r.rows);
      measured.y.push_back(r.seconds);
      bound.x.push_back(r.rows);
      bound.y.push_back(r.bound_seconds);
    }
    sort_by_x(measured);
    sort_by_x(bound);
    p.series.push_back(std::move(measured));
    p.series.push_back(std::move(bound));
  }
  figure(p,
         "Log-log axes. Solid: the measured time of one compression point (activations and factorizations of every "
         "hidden layer, the slowest rank); dashed, same colour: its lower bound, the point's floating-point work "
         "divided by ranks x the DGEMM rate measured in the same run. One pair of curves per bench-compress-scale "
         "file (rank and thread count).");
  Table t;
  t.header = {"ranks",    "threads",       "DGEMM GFLOP/s per rank", "rows",
              "streamed", "activations s", "factorization s",        "total s",
              "GFLOP",    "bound s",       "time / bound",           "peak RSS MiB (largest rank)"};
  for (const CompressScaleCurve* c : curves)
    for (const auto& r : c->runs)
      t.rows.push_back({num(c->ranks), num(c->threads), num(c->gemm_gflops_per_rank), num(r.rows, 12),
                        r.streamed ? "yes" : "no", num(r.activation_seconds), num(r.factorization_seconds),
                        num(r.seconds), num(r.gflop), num(r.bound_seconds), num(r.ratio, 3),
                        num(r.peak_rss_bytes / 1048576.0, 6)});
  doc_.table(t, options_.max_table_rows);
  // The same rows at several rank counts: how the time and memory per rank compare with the fewest ranks.
  if (curves.size() > 1) {
    const CompressScaleCurve& base = *curves.front();
    std::vector<std::string> notes;
    for (std::size_t i = 1; i < curves.size(); ++i)
      for (const auto& r : curves[i]->runs)
        for (const auto& b : base.runs)
          if (b.rows == r.rows)
            notes.push_back(num(r.rows, 12) + " rows, " + layout(*curves[i]) + " against " + layout(base) + ": time x" +
                            num(r.seconds / b.seconds, 3) + ", peak RSS per rank x" +
                            num(r.peak_rss_bytes / b.peak_rss_bytes, 3));
    if (!notes.empty()) {
      std::vector<std::vector<Span>> items;
      for (const auto& n : notes) items.push_back({{n}});
      doc_.paragraph("Against the first layout, at equal rows:");
      doc_.bullets(items);
    }
  }
  provenance(s.provenance, s.files);
}

ReportSummary Builder::build(const Results& res) {
  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  std::ostringstream when;
  when << std::put_time(&utc, "%Y-%m-%d %H:%M:%S UTC");

  published_ = res.published;
  doc_.heading(1, options_.title);
  std::vector<Span> intro{
      {"Built by idprune " + version_string() + " (" + git_revision() + ") on " + when.str() + " from "}};
  for (std::size_t i = 0; i < options_.result_dirs.size(); ++i) {
    if (i > 0) intro.push_back({", "});
    intro.push_back({options_.result_dirs[i].string(), "", true});
  }
  intro.push_back({". Figures: gnuplot (" + gnuplot_.terminal() +
                   "); each figure's script (.gp) and data (.dat) lie next to it. The files read are copied under "});
  intro.push_back({"data/", "data/", true});
  intro.push_back({"."});
  doc_.paragraph(intro);

  lowrank_section(res.lowrank);
  if (res.lowrank.empty()) summary_.missing.push_back("CPQR vs SVD error (lowrank*.csv)");
  cpqr_section(res.cpqr_bench);
  if (res.cpqr_bench.empty()) summary_.missing.push_back("CPQR timing scaling (bench-cpqr*.json)");
  sweep_section(res.sweeps);
  pareto_section(res.pareto);
  if (res.pareto.empty()) summary_.missing.push_back("Pareto fronts (pareto.csv)");
  id_bench_section(res.id_bench);
  compress_scale_section(res.compress_scale);
  published_section();

  doc_.heading(2, "Not found in these results");
  if (summary_.missing.empty()) {
    doc_.paragraph("Every study the report knows was found.");
  } else {
    std::vector<std::vector<Span>> items;
    for (const auto& m : summary_.missing) items.push_back({{m}});
    doc_.bullets(items);
  }
  std::vector<std::vector<Span>> scanned;
  for (const auto& d : res.scanned) scanned.push_back({{d.string(), "", true}});
  doc_.paragraph("Folders scanned:");
  doc_.bullets(scanned);

  const auto images = gnuplot_.render_all(pending_, work_);
  require(images == summary_.figures, "report: internal error: figure names differ from the images drawn");
  write_text(work_ / "index.html", doc_.html(options_.title));
  write_text(work_ / "report.md", doc_.markdown());
  summary_.files_read = res.files.size();
  return summary_;
}

// Removes a folder tree at scope exit unless released.
class TreeGuard {
 public:
  explicit TreeGuard(fs::path p) : path_(std::move(p)) {}
  ~TreeGuard() {
    if (!path_.empty()) {
      std::error_code ec;
      fs::remove_all(path_, ec);  // best effort: a failure here must not hide the original error
    }
  }
  TreeGuard(const TreeGuard&) = delete;
  TreeGuard& operator=(const TreeGuard&) = delete;
  void release() { path_.clear(); }

 private:
  fs::path path_;
};

fs::path make_temp_sibling(const fs::path& out, const std::string& tag) {
  const fs::path parent = out.parent_path().empty() ? fs::path(".") : out.parent_path();
  std::string tmpl = (parent / ("." + out.filename().string() + "." + tag + "-XXXXXX")).string();
  require(::mkdtemp(tmpl.data()) != nullptr, "report: cannot create a temporary folder next to '", out.string(),
          "': ", std::strerror(errno));
  return tmpl;
}

}  // namespace

ReportSummary build_report(const ReportOptions& options) {
  require(!options.result_dirs.empty(), "report: no result folders given");
  fs::path out = options.out.empty() ? options.result_dirs.front() / "report" : options.out;
  out = out.lexically_normal();
  if (out.filename().empty()) out = out.parent_path();
  if (fs::exists(out))
    require(fs::is_directory(out) && fs::exists(out / report_marker), "report: '", out.string(),
            "' exists and is not an idprune report folder; refusing to replace it (choose another --out)");

  // Read everything first: a malformed input fails before anything is written.
  Results res = scan_results(options.result_dirs);
  for (const auto& file : options.published) {
    require(fs::is_regular_file(file), "report: published-results file '", file.string(), "' does not exist");
    auto points = read_published(file);
    res.published.insert(res.published.end(), points.begin(), points.end());
    res.published_files.push_back(file);
  }
  require(
      !res.files.empty(), "report: no result files in ",
      [&] {
        std::string s;
        for (const auto& d : res.scanned) s += (s.empty() ? "'" : ", '") + d.string() + "'";
        return s.empty() ? std::string("the given folders") : s;
      }(),
      " (looked for lowrank*.csv, bench-cpqr*.json, results.csv, pareto.csv, bench-id*.json, "
      "bench-compress-scale*.json)");

  fs::create_directories(out.parent_path().empty() ? fs::path(".") : out.parent_path());
  const fs::path work = make_temp_sibling(out, "tmp");
  TreeGuard guard(work);
  // mkdtemp makes the folder private (0700); a report is meant to be shared like its results.
  fs::permissions(work, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec | fs::perms::others_read |
                            fs::perms::others_exec);
  Builder builder(options, work);
  ReportSummary summary = builder.build(res);
  write_text(work / report_marker, "idprune report\n");

  // Swap into place: the old report (if any) is moved aside first, then removed.
  if (fs::exists(out)) {
    const fs::path old = make_temp_sibling(out, "old");
    fs::remove(old);
    fs::rename(out, old);
    fs::rename(work, out);
    std::error_code ec;
    fs::remove_all(old, ec);
  } else {
    fs::rename(work, out);
  }
  guard.release();
  summary.out = out;
  return summary;
}

}  // namespace idprune::report
