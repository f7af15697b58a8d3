#include "idprune/app/option_groups.hpp"

#include <iostream>
#include <string_view>

#include "idprune/la/error.hpp"
#include "idprune/la/measure.hpp"

namespace idprune::app {

void add_compression_set_options(po::options_description& options, const char* seed_help, const char* engine_help,
                                 bool streamable) {
  if (!streamable)
    options.add_options()("compression-size", po::value<long>()->default_value(2000), "images in the compression set");
  options.add_options()("seed", po::value<unsigned long>()->default_value(1), seed_help)(
      "engine", po::value<std::string>()->default_value("tsqr"), engine_help)(
      "cpqr-method", po::value<std::string>()->default_value("blocked"), "local CPQR: blocked | unblocked | lapack");
  if (!streamable) return;
  po::options_description set("compression set");
  set.add_options()("compression-size", po::value<std::string>()->default_value("2000"),
                    "images in the compression set, or all")(
      "calibration", path(), "a .npy (samples x features) or IDX image file of inputs instead of the training images")(
      "augment", po::value<std::string>()->default_value("none"),
      "none | shifts | shifts:R (each image followed by its shifts by up to R pixels in each direction, "
      "zero-filled: (2R + 1)^2 rows per image; shifts is shifts:1, 9x the rows; R <= 3)")(
      "block-rows", po::value<long>()->default_value(0),
      "stream the compression set in blocks of this many rows per rank (0: in memory)")(
      "max-memory", po::value<std::string>()->default_value(""),
      "stream the compression set when it would take more than this per rank (e.g. 2G)");
  options.add(set);
}

int parse_augment(const std::string& command, const std::string& augment) {
  if (augment == "none") return 0;
  if (augment == "shifts") return 1;
  constexpr std::string_view prefix = "shifts:";
  if (augment.size() == prefix.size() + 1 && augment.starts_with(prefix) && augment.back() >= '1' &&
      augment.back() <= '3')
    return augment.back() - '0';
  throw Error(command + ": --augment=" + augment + " (none, shifts, or shifts:R with R = 1, 2 or 3)");
}

CompressionSetOptions compression_set_options(const std::string& command, const po::variables_map& vm) {
  CompressionSetOptions out;
  if (vm.count("augment") == 0) {
    out.size = vm["compression-size"].as<long>();
    require(out.size >= 1, command, ": --compression-size=", out.size, " (needs >= 1)");
  } else {
    const std::string size = vm["compression-size"].as<std::string>();
    out.all = size == "all";
    if (!out.all) {
      const std::vector<long> n = parse_integers(size, "--compression-size");
      require(n.size() == 1 && n[0] >= 1, command, ": --compression-size=", size, " (a count >= 1, or all)");
      out.size = n[0];
    }
    if (vm.count("calibration") != 0) out.calibration = vm["calibration"].as<std::string>();
    out.shift_radius = parse_augment(command, vm["augment"].as<std::string>());
    const long block = vm["block-rows"].as<long>();
    require(block >= 0, command, ": --block-rows=", block, " (needs >= 0; 0 holds the set in memory)");
    out.block_rows = block;
    if (const std::string m = vm["max-memory"].as<std::string>(); !m.empty()) out.max_memory = la::parse_memory_size(m);
  }
  out.seed = vm["seed"].as<unsigned long>();
  out.engine.pivot.engine = dist::parse_pivot_engine(vm["engine"].as<std::string>());
  out.engine.cpqr_method = la::parse_cpqr_method(vm["cpqr-method"].as<std::string>());
  return out;
}

void add_evaluation_options(po::options_description& options, const char* batch_rows_help) {
  options.add_options()("test-size", po::value<long>()->default_value(0),
                        "evaluate on the first N test images (0: all)")(
      "threads", po::value<int>()->default_value(0), "threads per rank (0: the cores this process may use)")(
      "batch-rows", po::value<long>()->default_value(500), batch_rows_help);
  add_precision_options(options);
}

void add_precision_options(po::options_description& options) {
  options.add_options()("precision", po::value<std::string>()->default_value("f64"),
                        "arithmetic of the evaluation forward passes (test and validation accuracy, agreement): f64, "
                        "or f32 (a deployed float32 model: weights and inputs rounded once, sgemm). Compression "
                        "(activations, CPQR, least squares) is float64 whatever this says; results record it and "
                        "a resume refuses the other precision");
}

void add_compare_precision_option(po::options_description& options) {
  options.add_options()("compare-precision", po::bool_switch()->default_value(false),
                        "also run every model in the other precision and record f32_changed_predictions, the test "
                        "predictions that differ between its float32 and float64 forward passes (a second forward "
                        "pass per model)");
}

void read_precision_options(const std::string& command, const po::variables_map& vm, EvaluationOptions& out) {
  const std::string name = vm["precision"].as<std::string>();
  try {
    out.precision = nn::parse_precision(name);
  } catch (const Error&) {
    throw Error(detail::concat(command, ": --precision=", name, " (f64 or f32)"));
  }
  out.compare_precision = vm.count("compare-precision") != 0 && vm["compare-precision"].as<bool>();
}

EvaluationOptions evaluation_options(const std::string& command, const po::variables_map& vm) {
  EvaluationOptions out;
  out.test_size = vm["test-size"].as<long>();
  require(out.test_size >= 0, command, ": --test-size=", out.test_size, " (needs >= 0)");
  out.batch_rows = vm["batch-rows"].as<long>();
  require(out.batch_rows >= 1, command, ": --batch-rows=", out.batch_rows, " (needs >= 1)");
  out.threads = vm["threads"].as<int>();
  read_precision_options(command, vm, out);
  return out;
}

void add_search_options(po::options_description& options, const std::string& mode) {
  const std::string eps = mode + "eps values of the sweeps (default: 1e-3..10, log)";
  const std::string tau = mode + "spectrum tolerances (default: 1e-4..1, log)";
  const std::string svd = mode + "svd rank fractions and greedy-fraction's kept fractions (default: 0.01..1, log)";
  const std::string step =
      mode + "descent: fraction of the parameters one move removes (at most half of a layer's neurons)";
  const std::string iterations = mode + "budget: allocation rounds";
  const std::string rounds = mode + "tuned: coordinate-descent rounds";
  const std::string refine = mode + "sweeps: bisection rounds towards every budget";
  const std::string kind = mode + "hybrid: what its budgets count, params | flops (fractions of the original's)";
  options.add_options()("validation-size", po::value<long>()->default_value(5000),
                        "training images held out for selection")(
      "eps-grid", po::value<std::string>()->default_value(""), eps.c_str())(
      "tau-grid", po::value<std::string>()->default_value(""), tau.c_str())(
      "svd-grid", po::value<std::string>()->default_value(""), svd.c_str())("step", real(0.05), step.c_str())(
      "budget-iterations", po::value<int>()->default_value(3), iterations.c_str())(
      "tune-rounds", po::value<int>()->default_value(3), rounds.c_str())("refine", po::value<int>()->default_value(5),
                                                                         refine.c_str())(
      "budget-kind", po::value<std::string>()->default_value("params"), kind.c_str())(
      "intercept", po::bool_switch()->default_value(false),
      "corrected and hybrid strategies: least-squares fit with an intercept (the next layer gains a bias)")(
      "mean-compensation", po::bool_switch()->default_value(false),
      "id, corrected, random and output strategies: the next layer's bias absorbs the mean residual (the "
      "next layer's mean pre-activation on the compression set stays the original's)");
}

SearchOptions search_options(const std::string& command, const po::variables_map& vm) {
  SearchOptions out;
  out.validation_size = vm["validation-size"].as<long>();
  require(out.validation_size >= 1, command, ": --validation-size=", out.validation_size, " (needs >= 1)");
  const auto grid = [&](const char* key) {
    const std::string text = vm[key].as<std::string>();
    return text.empty() ? std::vector<double>() : parse_doubles(text, std::string("--") + key);
  };
  out.study.eps_grid = grid("eps-grid");
  out.study.tau_grid = grid("tau-grid");
  out.study.svd_grid = grid("svd-grid");
  out.study.descent.step = vm["step"].as<double>();
  out.study.budget.iterations = vm["budget-iterations"].as<int>();
  out.study.tune.rounds = vm["tune-rounds"].as<int>();
  out.study.refine = vm["refine"].as<int>();
  out.study.hybrid.kind = compress::parse_budget_kind(vm["budget-kind"].as<std::string>());
  out.study.hybrid.budget = out.study.budget;
  out.study.policy.intercept = vm["intercept"].as<bool>();
  out.study.policy.mean_compensation = vm["mean-compensation"].as<bool>();
  return out;
}

void add_finetune_options(po::options_description& options, const char* epochs_help) {
  options.add_options()("finetune-epochs", po::value<int>()->default_value(0), epochs_help)(
      "finetune-lr", real(1e-4), "fine-tuning: Adam learning rate (cosine schedule)");
}

FinetuneOptions finetune_options(const std::string& command, const po::variables_map& vm) {
  FinetuneOptions out;
  out.epochs = vm["finetune-epochs"].as<int>();
  require(out.epochs >= 0, command, ": --finetune-epochs=", out.epochs, " (needs >= 0)");
  out.learning_rate = vm["finetune-lr"].as<double>();
  require(out.learning_rate > 0.0, command, ": --finetune-lr=", out.learning_rate, " (needs > 0)");
  return out;
}

namespace {
int resolved_threads(const std::string& command, int requested, bool announce) {
  const dist::ResolvedThreads resolved = dist::resolve_threads(requested, "--threads");
  if (announce && !resolved.warning.empty()) std::cerr << command << ": " << resolved.warning << "\n";
  return resolved.threads;
}
}  // namespace

RunThreads::RunThreads(const std::string& command, int requested, bool announce)
    : limit_(resolved_threads(command, requested, announce)) {}

}  // namespace idprune::app
