#include <algorithm>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>

#include "idprune/app/inputs.hpp"
#include "idprune/app/runs.hpp"
#include "idprune/compress/export.hpp"
#include "idprune/compress/finetune.hpp"
#include "idprune/io/file.hpp"
#include "idprune/la/error.hpp"

namespace idprune::app {

namespace {

/// Where the fine-tuned model goes: FILE with .safetensors replaced by .finetuned.safetensors
/// (FILE.finetuned for a folder).
std::string finetuned_path(const std::string& out) {
  const std::string suffix = ".safetensors";
  if (out.ends_with(suffix)) return out.substr(0, out.size() - suffix.size()) + ".finetuned.safetensors";
  std::string folder = out;
  while (folder.size() > 1 && folder.back() == '/') folder.pop_back();
  return folder + ".finetuned";
}

/// Where the sensitivity table goes: beside the model.
std::string table_path(const std::string& out) {
  const std::string suffix = ".safetensors";
  if (out.ends_with(suffix)) return out.substr(0, out.size() - suffix.size()) + ".layers.csv";
  std::string folder = out;
  while (folder.size() > 1 && folder.back() == '/') folder.pop_back();
  return folder + ".layers.csv";
}

std::string percent(double fraction, int digits = 2) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(digits) << 100.0 * fraction << "%";
  return os.str();
}

std::string widths_text(const nn::Mlp& model) {
  std::string s;
  for (auto w : model.widths()) s += (s.empty() ? "" : "-") + std::to_string(w);
  return s;
}

/// The request of the run's mode: a budget (the best candidate strategy on validation) or one rule.
compress::CompressRequest compress_request(const CompressRun& run) {
  compress::CompressRequest request;
  const bool budget_mode = run.budget.has_value();
  const bool point_mode = run.rule.has_value() || run.value.has_value();
  require(!(budget_mode && point_mode), "compress: give either --budget F or --rule R --value V, not both");
  require(budget_mode || point_mode,
          "compress: give --budget F (a fraction of the parameters) or --strategy S --rule R --value V");
  if (budget_mode) {
    request.budget = run.budget;
    if (run.strategy) request.budget_strategies = split_list(*run.strategy, "--strategy");
    require(run.layers == "all", "compress: --layers is for a rule (a budget counts every layer)");
  } else {
    require(run.rule && run.value, "compress: --rule and --value go together");
    request.strategy = run.strategy.value_or("greedy");
    request.rule = compress::LayerRule{compress::parse_rank_rule(*run.rule), *run.value};
    if (run.layers != "all") {
      for (long l : parse_integers(run.layers, "--layers")) {
        require(l >= 1, "compress: --layers entry ", l, " (hidden layers are numbered from 1)");
        if (std::find(request.layers.begin(), request.layers.end(), l - 1) == request.layers.end())
          request.layers.push_back(l - 1);
      }
      std::sort(request.layers.begin(), request.layers.end());
    }
  }
  request.pareto = run.search.study;
  request.engine = run.compression.engine;
  request.policy.intercept = run.search.study.policy.intercept;
  request.policy.mean_compensation = run.search.study.policy.mean_compensation;
  request.policy.seed = run.compression.seed;
  const bool safetensors = run.out.ends_with(".safetensors");
  const nn::Dtype dtype = nn::parse_dtype(run.dtype);
  request.round_to = safetensors && dtype == nn::Dtype::f32 ? std::optional<nn::Dtype>(nn::Dtype::f32) : std::nullopt;
  compress::check_compress_request(request);
  return request;
}

/// The console summary: the candidates (budget mode), the chosen model against the original, the
/// sensitivity table and the files written.
void print_summary(const CompressRun& run, const nn::Mlp& model, const compress::CompressRequest& request,
                   const compress::CompressedNetwork& network, const std::string& csv_path,
                   const std::optional<compress::FinetunedNetwork>& tuned) {
  const nn::Mlp& m = network.compressed.model;
  if (!network.candidates.empty()) {
    std::cout << "candidates within " << percent(*request.budget, 1) << " of the parameters (chosen on validation):\n";
    for (const auto& row : network.candidates)
      std::cout << "  " << std::left << std::setw(20) << row.strategy << std::setw(24) << row.model.setting
                << std::right << std::setw(8) << percent(row.model.params_fraction) << "  validation "
                << percent(row.model.validation.accuracy()) << "  test " << percent(row.model.test.accuracy())
                << (row.strategy == network.strategy ? "  <- chosen" : "") << "\n";
  }
  const bool safetensors = run.out.ends_with(".safetensors");
  std::cout << "strategy: " << network.strategy << " (" << network.setting << ")\n"
            << "architecture: " << widths_text(model) << " -> " << widths_text(m) << "\n"
            << "parameters: " << model.parameter_count() << " -> " << m.parameter_count() << " ("
            << percent(static_cast<double>(m.parameter_count()) / static_cast<double>(model.parameter_count())) << ")\n"
            << "validation accuracy: " << percent(network.validation.accuracy()) << " (original "
            << percent(network.original_validation.accuracy()) << ", " << network.validation.samples << " images)\n"
            << "test accuracy: " << percent(network.test.accuracy()) << " (original "
            << percent(network.original_test.accuracy()) << ", " << network.test.samples
            << " images; predictions equal to the original's on " << percent(network.test.agreement()) << ")\n"
            << (run.evaluation.precision == nn::Precision::f32 ? "scores: float32 forward passes (--precision f32)\n"
                                                               : "")
            << "\n"
            << compress::format_sensitivity_table(network.sensitivity) << "\n";
  if (tuned)
    std::cout << "after fine-tuning (" << run.finetune.epochs << " epochs, learning rate " << run.finetune.learning_rate
              << ", on the training images outside the validation split; reported apart): validation "
              << percent(tuned->validation.accuracy()) << ", test " << percent(tuned->test.accuracy()) << "; wrote "
              << finetuned_path(run.out) << "\n";
  std::cout << "wrote " << run.out << " ("
            << (safetensors ? "safetensors " + std::string(nn::to_string(nn::parse_dtype(run.dtype)))
                            : std::string(".npy folder"))
            << ") and " << csv_path << "\n";
}

}  // namespace

int run_compress(const CompressRun& run) {
  // Every option is checked before any file is read.
  const dist::Comm comm = dist::Comm::world();
  const bool root = comm.rank() == 0;
  const compress::CompressRequest request = compress_request(run);
  const std::string csv_path = table_path(run.out);
  const RunThreads threads("compress", run.evaluation.threads, root);

  // The output's folder must take files before any work (rank 0 writes).
  dist::check_collective(comm, dist::capture_error([&] {
                           if (!root) return;
                           const std::filesystem::path folder = std::filesystem::path(csv_path).parent_path();
                           io::prepare_output_folder(folder.empty() ? std::string(".") : folder.string());
                         }));

  // As `idprune pareto` reads and scores.
  const SelectionInputs in = load_selection_inputs(
      comm, "compress", run.model, run.read, run.data, run.compression.size, run.search.validation_size,
      run.evaluation.test_size, run.compression.seed, run.evaluation, [&](const nn::Mlp& model) {
        require(model.num_hidden() >= 1, "compress: the model '", run.model, "' has no hidden layer");
        compress::check_compress_request(request, &model);
      });
  if (root)
    std::cerr << "compress: " << widths_text(in.model) << " (" << in.model.parameter_count() << " parameters), "
              << in.summary(threads.count()) << "\n";
  compress::ParetoHooks hooks;
  hooks.log = [&](const std::string& line) {
    if (root) std::cerr << line << "\n";
  };
  const compress::CompressedNetwork network =
      compress::compress_network(in.model, in.compression_set, in.validation, in.test, request, hooks);

  // Fine-tuning (optional): on every training image outside the validation split, the same on every
  // rank; its scores are reported apart and the file written above stays the post-training model.
  std::optional<compress::FinetunedNetwork> tuned;
  if (run.finetune.epochs > 0) {
    const FinetuneData tuning = load_finetune_data(comm, run.data, run.search.validation_size, run.compression.seed);
    nn::TrainOptions o;
    o.epochs = run.finetune.epochs;
    o.learning_rate = run.finetune.learning_rate;
    o.seed = run.compression.seed;
    tuned = compress::finetune_network(network, tuning.x, tuning.y, o, in.validation, in.test, request.round_to);
  }

  nn::ModelWriteOptions write;
  write.format = run.out.ends_with(".safetensors") ? nn::ModelFormat::safetensors : nn::ModelFormat::npy;
  write.dtype = nn::parse_dtype(run.dtype);
  write.metadata = compress::compression_metadata(in.model, network, request, in.provenance(run.compression.seed));
  const std::string tuned_out = finetuned_path(run.out);
  nn::ModelWriteOptions tuned_write = write;
  if (tuned) {
    write.metadata["idprune.finetuned_model"] = tuned_out;
    tuned_write.metadata["idprune.finetune_epochs"] = std::to_string(run.finetune.epochs);
    tuned_write.metadata["idprune.finetune_learning_rate"] = std::to_string(run.finetune.learning_rate);
    tuned_write.metadata["idprune.validation_accuracy_finetuned"] = std::to_string(tuned->validation.accuracy());
    tuned_write.metadata["idprune.test_accuracy_finetuned"] = std::to_string(tuned->test.accuracy());
  }
  dist::check_collective(comm, dist::capture_error([&] {
                           if (!root) return;
                           nn::write_model(run.out, network.compressed.model, write);
                           if (tuned) nn::write_model(tuned_out, tuned->model, tuned_write);
                           compress::write_sensitivity_csv(csv_path, network.sensitivity);
                         }));
  if (root) print_summary(run, in.model, request, network, csv_path, tuned);
  return 0;
}

}  // namespace idprune::app
