#include "idprune/report/columns.hpp"

#include <array>

namespace idprune::report {

namespace {

// Accuracies and fractions are in [0, 1] (not percent); counts are exact integers; lists are
// ';'-separated in CSV and arrays in JSON Lines.
constexpr std::array sweep = {
    ColumnDoc{"strategy", "compression strategy, one of idprune sweep's (the registry: idprune strategies)"},
    ColumnDoc{"rule", "rank rule: eps, k, fraction or rank"},
    ColumnDoc{"value",
              "the rule's value at this grid point: eps; k (neurons kept); fraction (of each layer's neurons, or svd: "
              "of min(d_in, d_out)); rank (svd: r)"},
    ColumnDoc{"layers", "hidden layers compressed, 1-based and ';'-separated, or all"},
    ColumnDoc{"test_accuracy", "accuracy of the compressed model on the test samples, in [0, 1]"},
    ColumnDoc{"agreement", "fraction of test samples on which the compressed model predicts what the original does"},
    ColumnDoc{"params", "parameters of the compressed model (weights of every factor plus biases)"},
    ColumnDoc{"params_fraction", "params / original_params"},
    ColumnDoc{"hidden_kept_fraction", "hidden_kept / hidden_total"},
    ColumnDoc{"kept_per_layer", "hidden widths after compression, one per hidden layer"},
    ColumnDoc{"ranks_per_layer", "inner dimension of each hidden layer's weight (the rank r for svd)"},
    ColumnDoc{"flops", "floating-point operations per sample of the compressed model (2 per weight entry)"},
    ColumnDoc{"flops_fraction", "flops over the original model's"},
    ColumnDoc{"test_correct",
              "test samples classified correctly (exact count; test_accuracy = test_correct / test_samples)"},
    ColumnDoc{"agree_count", "test samples with the original model's prediction (exact count)"},
    ColumnDoc{"test_samples", "test samples evaluated"},
    ColumnDoc{"original_accuracy", "test accuracy of the original model on the same samples, in [0, 1]"},
    ColumnDoc{"original_params", "parameters of the original model"},
    ColumnDoc{"hidden_kept", "hidden neurons after compression (sum of kept_per_layer)"},
    ColumnDoc{"hidden_total", "hidden neurons of the original model"},
    ColumnDoc{"rel_tol_per_layer", "eps rule: the CPQR tolerance eps / ||W_next||_2 of each layer (0 for other rules)"},
    ColumnDoc{"next_ratio_per_layer",
              "CPQR strategies: |r_{k+1,k+1}| / |r_11| at each layer's chosen k (0 when k is the full rank)"},
    ColumnDoc{"point", "index of the grid value (0-based, in the order given)"},
    ColumnDoc{"wave", "the wave (points compressed together) that computed the row"},
    ColumnDoc{"wave_points", "points in that wave"},
    ColumnDoc{"wave_compress_seconds", "wall-clock seconds of the wave's compression (shared by its points)"},
    ColumnDoc{"wave_evaluate_seconds", "wall-clock seconds of the wave's evaluation"},
    ColumnDoc{"finished_at", "UTC time the row was written (ISO 8601)"},
    ColumnDoc{"compression_size", "training images in the compression set"},
    ColumnDoc{"seed", "seed of the compression set (and of random strategies)"},
    ColumnDoc{"engine", "pivot engine: tsqr, gram, sketch, scalapack or lapack"},
    ColumnDoc{"cpqr_method", "local CPQR: blocked, unblocked or lapack"},
    ColumnDoc{"ranks", "MPI ranks of the run"},
    ColumnDoc{"threads", "threads per rank"},
    ColumnDoc{"wave_size", "points per wave requested"},
    ColumnDoc{"model", "the model file, as given"},
    ColumnDoc{"data", "the data folder, as given"},
    ColumnDoc{"model_sha256", "SHA-256 of the model file's content (what --resume compares)"},
    ColumnDoc{"data_sha256", "SHA-256 of the data files' content (what --resume compares)"},
    ColumnDoc{"git_revision", "idprune's git revision (git describe)"},
    ColumnDoc{"version", "idprune's version"},
    ColumnDoc{"blas_core", "OpenBLAS kernel set in use (e.g. Haswell, SkylakeX)"},
};

constexpr std::array pareto = {
    ColumnDoc{"strategy", "strategy (the registry, with families and descriptions: idprune strategies)"},
    ColumnDoc{"budget", "parameter budget: the largest params_fraction allowed, in (0, 1]"},
    ColumnDoc{"params", "parameters of the model the strategy selected within the budget"},
    ColumnDoc{"params_fraction", "params / original_params"},
    ColumnDoc{"validation_accuracy",
              "accuracy on the validation split (held-out training images: the selection criterion)"},
    ColumnDoc{"test_accuracy", "accuracy on the test samples, in [0, 1] (reported, never used to select)"},
    ColumnDoc{"agreement", "fraction of test samples predicted as the original model does"},
    ColumnDoc{"kept_per_layer", "hidden widths after compression"},
    ColumnDoc{"ranks_per_layer", "inner dimension of each hidden layer's weight (the rank r for svd)"},
    ColumnDoc{"validation_cross_entropy", "mean cross-entropy -log softmax(logits)_label on the validation split"},
    ColumnDoc{"validation_agreement", "fraction of validation samples predicted as the original model does"},
    ColumnDoc{"setting", "the strategy's parameter at the selected model, e.g. eps=0.1, fraction=0.2, budget=0.05"},
    ColumnDoc{"search_seconds",
              "seconds of the search that produced the row (a sweep's whole time, a budget's allocation, a descent "
              "until the point was found)"},
    ColumnDoc{"original_params", "parameters of the original model"},
    ColumnDoc{"original_validation_accuracy", "the original model's validation accuracy"},
    ColumnDoc{"original_test_accuracy", "the original model's test accuracy"},
    ColumnDoc{"compression_size", "training images in the compression set"},
    ColumnDoc{"validation_size", "training images held out for selection"},
    ColumnDoc{"test_samples", "test samples evaluated"},
    ColumnDoc{"seed", "seed of the validation split and the compression set"},
    ColumnDoc{"mean_compensation",
              "true when the id, corrected, random and output strategies compensated the mean (--mean-compensation)"},
    ColumnDoc{"engine", "pivot engine of the sweeps"},
    ColumnDoc{"cpqr_method", "local CPQR method"},
    ColumnDoc{"step", "descent strategies: fraction of the parameters one move removes"},
    ColumnDoc{"objective", "descent strategies: validation objective (cross-entropy or error-rate)"},
    ColumnDoc{"ranks", "MPI ranks of the run"},
    ColumnDoc{"threads", "threads per rank"},
    ColumnDoc{"model", "the model file, as given"},
    ColumnDoc{"data", "the data folder, as given"},
    ColumnDoc{"model_sha256", "SHA-256 of the model file's content (what --resume compares)"},
    ColumnDoc{"data_sha256", "SHA-256 of the data files' content (what --resume compares)"},
    ColumnDoc{"git_revision", "idprune's git revision"},
    ColumnDoc{"version", "idprune's version"},
    ColumnDoc{"blas_core", "OpenBLAS kernel set in use"},
};

// Keys only some rows carry, right after `agreement` (the order of sweep_record).
constexpr std::array sweep_optional = {
    ColumnDoc{"precision",
              "arithmetic of the evaluation forward passes when it is not float64: f32 (--precision f32; weights "
              "and inputs rounded to float32 once, sgemm). Rows without it were evaluated in float64"},
    ColumnDoc{"f32_changed_predictions",
              "--compare-precision: test samples whose prediction differs between the float32 and the float64 "
              "forward pass of the same compressed model (exact count)"},
};

void append_table(std::string& out, std::span<const ColumnDoc> columns) {
  out += "| column | meaning |\n| --- | --- |\n";
  for (const auto& c : columns) {
    std::string meaning;
    for (const char* p = c.meaning; *p != '\0'; ++p) meaning += *p == '|' ? std::string("\\|") : std::string(1, *p);
    out += std::string("| `") + c.name + "` | " + meaning + " |\n";
  }
}

}  // namespace

std::span<const ColumnDoc> sweep_columns() { return sweep; }
std::span<const ColumnDoc> pareto_columns() { return pareto; }
std::span<const ColumnDoc> sweep_optional_columns() { return sweep_optional; }

std::string columns_reference() {
  std::string out =
      "# Columns of idprune's result tables\n\n"
      "Printed by `idprune report --help-columns`. Accuracies, agreements and fractions are in [0, 1] (the "
      "report shows percent); counts are exact integers. CSV files keep full precision (the shortest text that "
      "reads back to the same double); lists are ';'-separated in CSV and JSON arrays in JSON Lines. Tools should "
      "look columns up by name: later versions may add columns.\n\n"
      "## results.csv and results.jsonl (`idprune sweep --out DIR`)\n\n"
      "One row per grid point; results.jsonl holds the same rows as JSON objects with these keys, in this order.\n\n";
  append_table(out, sweep_columns());
  out +=
      "\n## Further results.csv keys on some rows\n\n"
      "Right after `agreement`, when present. results.csv takes its header from the folder's first row (empty "
      "cells where a later row lacks a key); results.jsonl always holds every key of every row.\n\n";
  append_table(out, sweep_optional_columns());
  out +=
      "\n## pareto.csv (`idprune pareto --out DIR`)\n\n"
      "One row per strategy and budget: the strategy's best model (by validation accuracy) within the budget.\n\n";
  append_table(out, pareto_columns());
  return out;
}

}  // namespace idprune::report
