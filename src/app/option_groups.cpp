#include "idprune/app/option_groups.hpp"

#include <iostream>

#include "idprune/la/error.hpp"

namespace idprune::app {

void add_compression_set_options(po::options_description& options, const char* seed_help, const char* engine_help) {
  options.add_options()("compression-size", po::value<long>()->default_value(2000), "images in the compression set")(
      "seed", po::value<unsigned long>()->default_value(1), seed_help)(
      "engine", po::value<std::string>()->default_value("tsqr"), engine_help)(
      "cpqr-method", po::value<std::string>()->default_value("blocked"), "local CPQR: blocked | unblocked | lapack");
}

CompressionSetOptions compression_set_options(const std::string& command, const po::variables_map& vm) {
  CompressionSetOptions out;
  out.size = vm["compression-size"].as<long>();
  require(out.size >= 1, command, ": --compression-size=", out.size, " (needs >= 1)");
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
}

EvaluationOptions evaluation_options(const std::string& command, const po::variables_map& vm) {
  EvaluationOptions out;
  out.test_size = vm["test-size"].as<long>();
  require(out.test_size >= 0, command, ": --test-size=", out.test_size, " (needs >= 0)");
  out.batch_rows = vm["batch-rows"].as<long>();
  require(out.batch_rows >= 1, command, ": --batch-rows=", out.batch_rows, " (needs >= 1)");
  out.threads = vm["threads"].as<int>();
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
  options.add_options()("validation-size", po::value<long>()->default_value(5000),
                        "training images held out for selection")(
      "eps-grid", po::value<std::string>()->default_value(""), eps.c_str())(
      "tau-grid", po::value<std::string>()->default_value(""), tau.c_str())(
      "svd-grid", po::value<std::string>()->default_value(""), svd.c_str())("step", real(0.05), step.c_str())(
      "budget-iterations", po::value<int>()->default_value(3), iterations.c_str())(
      "tune-rounds", po::value<int>()->default_value(3), rounds.c_str())("refine", po::value<int>()->default_value(5),
                                                                         refine.c_str())(
      "intercept", po::bool_switch()->default_value(false),
      "corrected strategies: least-squares fit with an intercept (the next layer gains a bias)");
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
  out.study.policy.intercept = vm["intercept"].as<bool>();
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
