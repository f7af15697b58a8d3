#include "idprune/compress/export.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <iomanip>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>

#include "idprune/dist/collectives.hpp"
#include "idprune/io/file.hpp"
#include "idprune/la/error.hpp"
#include "idprune/version.hpp"

namespace idprune::compress {

namespace {

using la::Matrix;

std::size_t uz(index_t i) { return static_cast<std::size_t>(i); }

/// Shortest decimal form that reads back to the same double.
std::string number(double v) {
  std::array<char, 64> buf{};
  const auto res = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  return {buf.data(), res.ptr};
}

std::string joined(const std::vector<index_t>& values, const char* sep) {
  std::string out;
  for (std::size_t i = 0; i < values.size(); ++i) out += (i == 0 ? "" : sep) + std::to_string(values[i]);
  return out;
}

std::string point_setting(const LayerRule& rule) {
  return std::string(to_string(rule.rule)) + "=" + number(rule.value);
}

/// The study of budget mode: the request's candidates at its one budget, every model kept.
ParetoOptions study_options(const CompressRequest& request) {
  ParetoOptions o = request.pareto;
  o.strategies = request.budget_strategies.empty() ? default_budget_strategies() : request.budget_strategies;
  o.budgets = {request.budget.value_or(1.0)};
  o.keep_models = true;
  o.engine = request.engine;
  o.policy = request.policy;
  if (o.eps_grid.empty()) o.eps_grid = default_eps_grid();
  if (o.tau_grid.empty()) o.tau_grid = default_tau_grid();
  if (o.svd_grid.empty()) o.svd_grid = default_svd_grid();
  o.descent.stop_fraction = 0.8 * o.budgets.front();
  return o;
}

}  // namespace

void round_to_float32(nn::Mlp& model) {
  for (index_t l = 0; l < model.num_layers(); ++l) {
    nn::DenseLayer& layer = model.layer(l);
    for (index_t j = 0; j < layer.factor_count(); ++j) {
      const la::MatrixView v = layer.factor_values(j);
      for (index_t c = 0; c < v.cols(); ++c)
        for (index_t r = 0; r < v.rows(); ++r) v(r, c) = static_cast<double>(static_cast<float>(v(r, c)));
    }
    for (double& b : layer.bias_values()) b = static_cast<double>(static_cast<float>(b));
  }
}

namespace {

/// The model as it will be written (rounded), scored on validation and test.
void finish(CompressedNetwork& out, CompressedModel model, const Scorer& validation, const Scorer& test,
            std::optional<nn::Dtype> round_to) {
  model.model.metadata().clear();
  if (round_to == nn::Dtype::f32) {
    round_to_float32(model.model);
    const std::string bad = nn::non_finite_parameter(model.model);
    require(bad.empty(), "the compressed model does not fit float32 (", bad,
            "); write it as an .npy folder (float64) instead");
  }
  // The shortcuts of a Scorer assume the original's exact values; the rounded model is scored as it is.
  model.first_layer_columns.clear();
  model.first_interpolation.reset();
  model.second_layer_columns.clear();
  const std::span<const CompressedModel> one(&model, 1);
  out.validation = validation.score(one).front();
  out.test = test.score(one).front();
  out.original_validation = validation.original_scores();
  out.original_test = test.original_scores();
  out.compressed = std::move(model);
}

/// pre-activation x F_1 ... F_q + 1 b^T of a layer (its activation left out).
nn::DenseLayer linear_part(const nn::DenseLayer& layer) {
  return nn::DenseLayer(layer.factors(), layer.bias(), nn::Activation::identity);
}

void activate(Matrix& p, nn::Activation activation) {
  if (activation == nn::Activation::identity) return;
  for (index_t c = 0; c < p.cols(); ++c)
    for (index_t r = 0; r < p.rows(); ++r) p(r, c) = std::max(0.0, p(r, c));
}

/// The model a Pareto row or curve point holds (ParetoOptions::keep_models), with the outcome of
/// every hidden layer as far as a ParetoModel records it (widths, ranks, kept neurons).
CompressedModel compressed_of(const nn::Mlp& original, const ParetoModel& m, const std::string& strategy) {
  const index_t L = original.num_hidden();
  require(m.network != nullptr, "compress: the study kept no model for ", strategy, " (", m.setting,
          "; run_pareto needs ParetoOptions::keep_models)");
  require(m.network->num_hidden() == L && static_cast<index_t>(m.kept_neurons.size()) == L &&
              static_cast<index_t>(m.ranks_per_layer.size()) == L,
          "compress: the model of ", strategy, " (", m.setting, ") does not belong to this original");
  CompressedModel out{*m.network, {}, {}, {}, {}};
  for (index_t l = 0; l < L; ++l) {
    LayerOutcome o;
    o.width = original.hidden(l).d_out();
    o.kept = out.model.hidden(l).d_out();
    o.rank = m.ranks_per_layer[uz(l)];
    o.compressed = o.kept < o.width || o.rank < std::min(original.hidden(l).d_in(), o.width);
    o.kept_neurons = m.kept_neurons[uz(l)];
    out.layers.push_back(std::move(o));
  }
  return out;
}

}  // namespace

std::vector<std::string_view> point_strategy_names() {
  std::vector<std::string_view> names;
  for (const StrategyInfo& s : strategies())
    if (!s.sweep_rules.empty()) names.push_back(s.name);
  return names;
}

std::vector<std::string> default_budget_strategies() {
  return {"greedy-fraction", "budget", "budget-corrected", "tuned-corrected"};
}

void check_compress_request(const CompressRequest& request, const nn::Mlp* model) {
  if (request.budget) {
    const double b = *request.budget;
    require(b > 0.0 && b <= 1.0, "compress: budget ", b, " outside (0, 1] (a fraction of the parameters)");
    check_pareto_options(study_options(request));
    return;
  }
  const std::vector<std::string_view> names = point_strategy_names();
  std::string known;
  for (const auto n : names) known += (known.empty() ? "" : ", ") + std::string(n);
  require(std::find(names.begin(), names.end(), request.strategy) != names.end(), "compress: unknown strategy '",
          request.strategy, "' for a rule (known: ", known, "; the other strategies of `pareto` take a budget)");
  const StrategyInfo& info = strategy(request.strategy);
  std::string rules;
  for (const RankRule r : info.sweep_rules) rules += (rules.empty() ? "" : ", ") + std::string(to_string(r));
  require(std::find(info.sweep_rules.begin(), info.sweep_rules.end(), request.rule.rule) != info.sweep_rules.end(),
          "compress: strategy ", info.name, " does not take the rule ", to_string(request.rule.rule), " (it takes ",
          rules, ")");
  strategy_policy(info, request.policy)->check(request.rule);
  if (model != nullptr)
    for (index_t l : request.layers)
      require(l >= 0 && l < model->num_hidden(), "compress: hidden layer ", l + 1, " outside [1, ", model->num_hidden(),
              "] (the model's hidden layers)");
}

SensitivityTable sensitivity_table(const nn::Mlp& original, const CompressedModel& compressed,
                                   const dist::DistMatrix& compression_set, index_t batch_rows) {
  const index_t L = original.num_hidden();
  const nn::Mlp& m = compressed.model;
  require(batch_rows >= 1, "sensitivity_table: batch_rows=", batch_rows, " (needs >= 1)");
  require(m.num_hidden() == L && static_cast<index_t>(compressed.layers.size()) == L,
          "sensitivity_table: ", m.num_hidden(), " hidden layers and ", compressed.layers.size(),
          " outcomes for an original with ", L);
  require(compression_set.cols() == original.input_dim(), "sensitivity_table: the compression set has ",
          compression_set.cols(), " features, the model expects ", original.input_dim());
  for (index_t l = 0; l < L; ++l)
    require(static_cast<index_t>(compressed.layers[uz(l)].kept_neurons.size()) == m.hidden(l).d_out(),
            "sensitivity_table: hidden layer ", l + 1, " has ", m.hidden(l).d_out(), " neurons but ",
            compressed.layers[uz(l)].kept_neurons.size(), " kept neuron indices");
  SensitivityTable table;
  table.rows = compression_set.global_rows();
  table.params_before = original.parameter_count();
  table.params_after = m.parameter_count();
  // Sums of squares (numerator, denominator) per layer on this rank's rows, reduced once.
  std::vector<double> sums(uz(2 * L), 0.0);
  std::string error = dist::capture_error([&] {
    std::vector<nn::DenseLayer> lin_o;
    std::vector<nn::DenseLayer> lin_c;
    for (index_t l = 1; l <= L; ++l) {
      lin_o.push_back(linear_part(original.layer(l)));
      lin_c.push_back(linear_part(m.layer(l)));
    }
    const la::ConstMatrixView x = compression_set.local();
    for (index_t begin = 0; begin < x.rows(); begin += batch_rows) {
      const la::ConstMatrixView xb = x.rows_range(begin, std::min(batch_rows, x.rows() - begin));
      Matrix zo;
      Matrix zc;
      original.hidden(0).forward(xb, zo);
      m.hidden(0).forward(xb, zc);
      for (index_t l = 0; l < L; ++l) {
        Matrix po;
        Matrix pc;
        lin_o[uz(l)].forward(zo, po);
        lin_c[uz(l)].forward(zc, pc);
        double num = 0.0;
        double den = 0.0;
        const bool last = l + 1 == L;
        for (index_t j = 0; j < pc.cols(); ++j) {
          const index_t oj = last ? j : compressed.layers[uz(l + 1)].kept_neurons[uz(j)];
          for (index_t i = 0; i < pc.rows(); ++i) {
            const double d = pc(i, j) - po(i, oj);
            num += d * d;
            den += po(i, oj) * po(i, oj);
          }
        }
        sums[uz(2 * l)] += num;
        sums[uz(2 * l + 1)] += den;
        if (last) break;
        activate(po, original.layer(l + 1).activation());
        activate(pc, m.layer(l + 1).activation());
        zo = std::move(po);
        zc = std::move(pc);
      }
    }
  });
  dist::check_collective(compression_set.comm(), error);
  dist::sum_in_place(compression_set.comm(), std::span<double>(sums));
  for (index_t l = 0; l < L; ++l) {
    const LayerOutcome& o = compressed.layers[uz(l)];
    LayerSensitivity s;
    s.layer = l + 1;
    s.width_before = original.hidden(l).d_out();
    s.width_after = m.hidden(l).d_out();
    s.rank_after = o.rank;
    s.params_before = original.hidden(l).parameter_count();
    s.params_after = m.hidden(l).parameter_count();
    const double num = std::sqrt(sums[uz(2 * l)]);
    const double den = std::sqrt(sums[uz(2 * l + 1)]);
    s.relative_error = den > 0.0 ? num / den : (num > 0.0 ? std::numeric_limits<double>::infinity() : 0.0);
    table.layers.push_back(s);
  }
  return table;
}

void write_sensitivity_csv(const std::string& path, const SensitivityTable& table) {
  std::string text = "layer,width_before,width_after,rank_after,params_before,params_after,relative_error\n";
  for (const auto& s : table.layers)
    text += std::to_string(s.layer) + "," + std::to_string(s.width_before) + "," + std::to_string(s.width_after) + "," +
            std::to_string(s.rank_after) + "," + std::to_string(s.params_before) + "," +
            std::to_string(s.params_after) + "," + number(s.relative_error) + "\n";
  io::write_file_atomically(path, text);
}

std::string format_sensitivity_table(const SensitivityTable& table) {
  std::ostringstream os;
  const auto percent = [](std::int64_t a, std::int64_t b) {
    std::ostringstream p;
    p << std::fixed << std::setprecision(1) << (b > 0 ? 100.0 * static_cast<double>(a) / static_cast<double>(b) : 0.0)
      << "%";
    return p.str();
  };
  os << std::left << std::setw(7) << "layer" << std::right << std::setw(17) << "neurons" << std::setw(7) << "rank"
     << std::setw(26) << "parameters" << std::setw(9) << "share" << std::setw(17) << "relative error"
     << "\n";
  for (const auto& s : table.layers) {
    os << std::left << std::setw(7) << s.layer << std::right << std::setw(17)
       << (std::to_string(s.width_before) + " -> " + std::to_string(s.width_after)) << std::setw(7) << s.rank_after
       << std::setw(26) << (std::to_string(s.params_before) + " -> " + std::to_string(s.params_after)) << std::setw(9)
       << percent(s.params_after, s.params_before) << std::setw(17) << std::setprecision(4) << s.relative_error << "\n";
  }
  os << std::left << std::setw(31) << "total (with the classifier)" << std::right << std::setw(26)
     << (std::to_string(table.params_before) + " -> " + std::to_string(table.params_after)) << std::setw(9)
     << percent(table.params_after, table.params_before) << "\n"
     << "relative error: ||P^ - P||_F / ||P||_F of the next layer's pre-activation (the logits after the last "
        "hidden layer),\ncompressed vs original network, on the "
     << table.rows << " rows of the compression set\n";
  return os.str();
}

CompressedNetwork compress_network(const nn::Mlp& model, const dist::DistMatrix& compression_set,
                                   const Scorer& validation, const Scorer& test, const CompressRequest& request,
                                   const ParetoHooks& hooks) {
  check_compress_request(request, &model);
  CompressedNetwork out;
  CompressedModel chosen;
  if (!request.budget) {
    out.mode = "point";
    out.strategy = request.strategy;
    out.setting = point_setting(request.rule);
    chosen = compress_model(model, compression_set, request.strategy, request.rule, request.layers, request.engine,
                            request.policy);
  } else {
    out.mode = "budget";
    const ParetoOptions options = study_options(request);
    require(validation.samples() > 0, "compress: the validation set is empty (a budget is met on it)");
    const ParetoResult result = run_pareto(model, compression_set, validation, test, options, hooks);
    out.candidates = result.rows;
    // The highest validation accuracy, then fewer parameters, then the earlier strategy (the order
    // of the rows is the request's).
    const ParetoRow* best = nullptr;
    for (const ParetoRow& row : result.rows) {
      if (best == nullptr || row.model.validation.correct > best->model.validation.correct ||
          (row.model.validation.correct == best->model.validation.correct && row.model.params < best->model.params))
        best = &row;
    }
    if (best == nullptr) {
      std::string names;
      for (const auto& s : options.strategies) names += (names.empty() ? "" : ", ") + s;
      throw Error(detail::concat("compress: no strategy (", names, ") has a model within ", *request.budget, " of the ",
                                 model.parameter_count(),
                                 " parameters; a larger budget, or other strategies or grids"));
    }
    out.strategy = best->strategy;
    out.setting = best->model.setting;
    chosen = compressed_of(model, best->model, best->strategy);
    // The candidates are reported, not kept: their models would only hold memory.
    for (ParetoRow& row : out.candidates) row.model.network.reset();
  }
  const index_t L = model.num_hidden();
  require(static_cast<index_t>(chosen.layers.size()) == L, "compress: ", chosen.layers.size(), " layer outcomes for ",
          L, " hidden layers");
  for (index_t l = 0; l < L; ++l)
    require(static_cast<index_t>(chosen.layers[uz(l)].kept_neurons.size()) == chosen.model.hidden(l).d_out(),
            "compress: hidden layer ", l + 1, " records ", chosen.layers[uz(l)].kept_neurons.size(),
            " kept neurons but has ", chosen.model.hidden(l).d_out());
  finish(out, std::move(chosen), validation, test, request.round_to);
  out.sensitivity = sensitivity_table(model, out.compressed, compression_set);
  return out;
}

CompressedNetwork network_of_row(const nn::Mlp& original, const ParetoRow& row, const Scorer& validation,
                                 const Scorer& test, std::optional<nn::Dtype> round_to) {
  require(row.model.network != nullptr, "network_of_row: the row of ", row.strategy, " at budget ", row.budget,
          " holds no model (run_pareto needs ParetoOptions::keep_models)");
  CompressedNetwork out;
  out.mode = "budget";
  out.strategy = row.strategy;
  out.setting = row.model.setting;
  finish(out, compressed_of(original, row.model, row.strategy), validation, test, round_to);
  return out;
}

nn::Metadata compression_metadata(const nn::Mlp& original, const CompressedNetwork& network,
                                  const CompressRequest& request, const CompressionProvenance& provenance) {
  const nn::Mlp& m = network.compressed.model;
  nn::Metadata meta;
  const auto key = [&](const char* name, std::string value) {
    meta[std::string("idprune.") + name] = std::move(value);
  };
  nlohmann::json kept = nlohmann::json::array();
  for (const auto& o : network.compressed.layers) kept.push_back(o.kept_neurons);
  key("kept_neurons", kept.dump());
  key("mode", network.mode);
  key("strategy", network.strategy);
  key("setting", network.setting);
  if (network.mode == "point") {
    key("rule", std::string(to_string(request.rule.rule)));
    key("value", number(request.rule.value));
    std::vector<index_t> layers;
    for (index_t l = 0; l < original.num_hidden(); ++l)
      if (request.layers.empty() || std::find(request.layers.begin(), request.layers.end(), l) != request.layers.end())
        layers.push_back(l + 1);
    key("layers", joined(layers, ","));
  } else {
    key("budget", number(request.budget.value_or(0.0)));
    nlohmann::ordered_json candidates = nlohmann::ordered_json::array();
    for (const ParetoRow& row : network.candidates) {
      nlohmann::ordered_json c;
      c["strategy"] = row.strategy;
      c["setting"] = row.model.setting;
      c["params"] = row.model.params;
      c["validation_accuracy"] = row.model.validation.accuracy();
      c["test_accuracy"] = row.model.test.accuracy();
      candidates.push_back(std::move(c));
    }
    if (!network.candidates.empty()) key("candidates", candidates.dump());
  }
  const std::string_view policy = strategy(network.strategy).policy;
  if (request.policy.intercept && takes_intercept(policy)) key("intercept", "true");
  if (request.policy.mean_compensation && takes_mean_compensation(policy)) key("mean_compensation", "true");
  key("widths", joined(m.widths(), ","));
  key("params", std::to_string(m.parameter_count()));
  key("params_fraction", number(static_cast<double>(m.parameter_count()) /
                                static_cast<double>(std::max<index_t>(1, original.parameter_count()))));
  key("original_widths", joined(original.widths(), ","));
  key("original_params", std::to_string(original.parameter_count()));
  key("compression_size", std::to_string(provenance.compression_size));
  key("validation_size", std::to_string(provenance.validation_size));
  key("seed", std::to_string(provenance.seed));
  key("validation_accuracy", number(network.validation.accuracy()));
  key("test_accuracy", number(network.test.accuracy()));
  key("test_agreement", number(network.test.agreement()));
  key("test_samples", std::to_string(network.test.samples));
  key("original_validation_accuracy", number(network.original_validation.accuracy()));
  key("original_test_accuracy", number(network.original_test.accuracy()));
  if (provenance.evaluation_precision != nn::Precision::f64)
    key("evaluation_precision", std::string(nn::to_string(provenance.evaluation_precision)));
  key("original_sha256", provenance.original_sha256);
  if (!provenance.data_sha256.empty()) key("data_sha256", provenance.data_sha256);
  key("version", version_string());
  key("git_revision", git_revision());
  return meta;
}

}  // namespace idprune::compress
