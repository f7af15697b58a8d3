#include <algorithm>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "idprune/app/model_options.hpp"
#include "idprune/app/options.hpp"
#include "idprune/app/tools.hpp"
#include "idprune/la/error.hpp"
#include "idprune/nn/inference.hpp"
#include "idprune/version.hpp"

namespace idprune::app {

namespace {

std::string fixed(double v, int digits) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(digits) << v;
  return os.str();
}

}  // namespace

int bench_inference(const po::variables_map& vm) {
  const auto paths = vm["model"].as<std::vector<std::string>>();
  nn::InferenceBenchOptions bench;
  bench.batches.clear();
  for (long b : parse_integers(vm["batch"].as<std::string>(), "--batch")) {
    require(b >= 1, "bench inference: --batch has the size ", b, " (batch sizes must be >= 1)");
    bench.batches.push_back(b);
  }
  bench.threads = vm["threads"].as<int>();
  require(bench.threads >= 1, "bench inference: --threads=", bench.threads, " must be >= 1");
  bench.repetitions = vm["reps"].as<int>();
  require(bench.repetitions >= 0, "bench inference: --reps=", bench.repetitions, " must be >= 0");
  bench.min_seconds = vm["min-seconds"].as<double>();
  require(bench.min_seconds > 0.0 && bench.min_seconds <= 3600.0, "bench inference: --min-seconds=", bench.min_seconds,
          " must be in (0, 3600]");
  bench.seed = vm["seed"].as<unsigned long>();
  std::vector<std::string> names;
  if (const auto text = vm["name"].as<std::string>(); !text.empty()) {
    names = split_list(text, "--name");
    require(names.size() == paths.size(), "bench inference: --name lists ", names.size(), " labels for ", paths.size(),
            " models");
  } else {
    for (const auto& p : paths) names.push_back(std::filesystem::path(p).lexically_normal().filename().string());
  }

  std::vector<nn::Mlp> models;
  for (const auto& p : paths) models.push_back(load_model(vm, p));
  const nn::InferenceBenchResult result = nn::benchmark_inference(models, names, bench);
  const auto& reference = result.models.front();

  if (vm["json"].as<bool>()) {
    nlohmann::ordered_json j;
    j["benchmark"] = "inference";
    j["version"] = version_string();
    j["git_revision"] = git_revision();
    j["blas_core"] = result.blas_core;
    j["threads"] = result.threads;
    j["precision"] = "float32";
    j["statistic"] = "seconds of one forward pass over the batch: median, min, max of the repetitions";
    j["models"] = nlohmann::ordered_json::array();
    for (std::size_t m = 0; m < result.models.size(); ++m) {
      const auto& r = result.models[m];
      nlohmann::ordered_json jm;
      jm["name"] = r.name;
      jm["path"] = paths[m];
      jm["parameters"] = r.parameters;
      jm["flops_per_sample"] = r.flops_per_sample;
      jm["parameters_ratio"] = static_cast<double>(r.parameters) / static_cast<double>(reference.parameters);
      jm["timings"] = nlohmann::ordered_json::array();
      for (std::size_t b = 0; b < r.timings.size(); ++b) {
        const auto& t = r.timings[b];
        jm["timings"].push_back({{"batch", t.batch},
                                 {"repetitions", t.repetitions},
                                 {"median_seconds", t.median_seconds},
                                 {"min_seconds", t.min_seconds},
                                 {"max_seconds", t.max_seconds},
                                 {"samples_per_second", t.samples_per_second()},
                                 {"speedup", reference.timings[b].median_seconds / t.median_seconds}});
      }
      j["models"].push_back(std::move(jm));
    }
    std::cout << j.dump(2) << "\n";
    return 0;
  }

  std::cout << "float32 inference, " << result.threads << " thread(s), OpenBLAS " << result.blas_core
            << "; latency of one pass over the batch (median [min, max] of the repetitions), speed-up over "
            << reference.name << "\n";
  std::size_t width = 8;
  for (const auto& r : result.models) width = std::max(width, r.name.size() + 2);
  const int w = static_cast<int>(width);
  std::cout << std::left << std::setw(w) << "model" << std::right << std::setw(12) << "parameters" << std::setw(8)
            << "batch" << std::setw(6) << "reps" << std::setw(14) << "samples/s" << std::setw(12) << "median ms"
            << std::setw(24) << "[min, max] ms" << std::setw(10) << "speed-up"
            << "\n";
  for (const auto& r : result.models)
    for (std::size_t b = 0; b < r.timings.size(); ++b) {
      const auto& t = r.timings[b];
      std::cout << std::left << std::setw(w) << r.name << std::right << std::setw(12) << r.parameters << std::setw(8)
                << t.batch << std::setw(6) << t.repetitions << std::setw(14) << fixed(t.samples_per_second(), 0)
                << std::setw(12) << fixed(1e3 * t.median_seconds, 4) << std::setw(24)
                << "[" + fixed(1e3 * t.min_seconds, 4) + ", " + fixed(1e3 * t.max_seconds, 4) + "]" << std::setw(10)
                << fixed(reference.timings[b].median_seconds / t.median_seconds, 2) << "\n";
    }
  return 0;
}

}  // namespace idprune::app
