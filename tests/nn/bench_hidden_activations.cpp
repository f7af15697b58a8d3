// Benchmark (not a test): the hidden activations of a model on n rows, computed the old way (each
// layer recomputed from the input, one product per layer) and the new way (all_hidden_activations:
// each layer once, row blocks as TBB tasks), in memory and streamed, next to the GEMM bound
// (flops / the DGEMM rate measured in the same run).
// Each phase prints its wall time and the CPU time of the process during it (user + system), which
// shows how busy the threads were on a shared machine.
//   bench_hidden_activations MODEL DATA_DIR|random ROWS THREADS [STREAM_BLOCK_ROWS] [OLD_SINGLE=0|1]
#include <sys/resource.h>
#include <tbb/global_control.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <random>
#include <string>

#include "idprune/data/row_source.hpp"
#include "idprune/la/blas.hpp"
#include "idprune/la/measure.hpp"
#include "idprune/nn/activations.hpp"
#include "idprune/nn/model_io.hpp"

using namespace idprune;
using la::index_t;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

/// The pre-ForwardOptions Mlp::hidden_activations(x, l) for l = 0..L-1, as the compressor called it:
/// layer l recomputed from the input, one product per layer with BLAS as configured.
double old_path_seconds(const nn::Mlp& model, const la::Matrix& x) {
  const auto start = std::chrono::steady_clock::now();
  for (index_t l = 0; l < model.num_hidden(); ++l) {
    la::Matrix h = x;
    for (index_t k = 0; k <= l; ++k) {
      const la::Matrix& w = model.hidden(k).factor(0);
      la::Matrix next = la::Matrix::uninitialized(h.rows(), w.cols());
      la::gemm(1.0, h, la::Op::none, w, la::Op::none, 0.0, next.view());
      for (double& v : next.values())
        if (v < 0.0) v = 0.0;
      h = std::move(next);
    }
  }
  return seconds_since(start);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::cerr << "usage: bench_hidden_activations MODEL DATA_DIR|random ROWS THREADS [STREAM_BLOCK_ROWS]\n";
    return 2;
  }
  try {
    const nn::Mlp model = nn::load_model(argv[1]);
    const std::string data = argv[2];
    const index_t rows = std::stoll(argv[3]);
    const int threads = std::stoi(argv[4]);
    const index_t stream_block = argc > 5 ? std::stoll(argv[5]) : 10000;
    const bool old_single = argc > 6 && std::string(argv[6]) == "1";
    const tbb::global_control limit(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(threads));
    la::set_blas_threads(threads);

    data::RowSource source;
    la::Matrix random;
    if (data == "random") {
      random = la::Matrix::uninitialized(rows, model.input_dim());
      std::mt19937_64 g(1);
      std::uniform_real_distribution<double> u(0.0, 1.0);
      for (double& v : random.values()) v = u(g);
      source = data::matrix_rows(random);
    } else {
      source = data::dataset_rows(data, data::Split::train);
      if (source.rows() < rows) source = data::shift_augmented(source, 1);  // more rows than the split has
      source = source.row_range(0, rows);
    }
    auto start = std::chrono::steady_clock::now();
    const la::Matrix x = data::read_all(source);
    const double read_seconds = seconds_since(start);

    const double rate = la::measure_gemm_rate(threads);
    const double classifier = static_cast<double>(rows) * model.classifier().flops_per_sample();
    const double hidden_flops = nn::forward_flops(model, rows) - classifier;
    double old_flops = 0.0;
    for (index_t l = 0; l < model.num_hidden(); ++l)
      for (index_t k = 0; k <= l; ++k) old_flops += static_cast<double>(rows) * model.hidden(k).flops_per_sample();
    std::printf("rows %lld, threads %d, BLAS core %s, DGEMM rate %.1f GFLOP/s\n", static_cast<long long>(rows), threads,
                la::blas_core_name().c_str(), rate);
    std::printf("read %.2f s; hidden-layer flops %.1f GFLOP, GEMM bound %.2f s\n", read_seconds, hidden_flops / 1e9,
                hidden_flops / 1e9 / rate);

    double seconds = 0.0;
    double cpu = 0.0;
    if (old_single) {
      const la::ScopedBlasThreads single(1);
      cpu = cpu_seconds();
      seconds = old_path_seconds(model, x);
      std::printf("old path, BLAS 1 thread (one group of points):  %.2f s, cpu %.2f s (%.1f GFLOP)\n", seconds,
                  cpu_seconds() - cpu, old_flops / 1e9);
    }
    cpu = cpu_seconds();
    seconds = old_path_seconds(model, x);
    std::printf("old path, BLAS %d threads:                       %.2f s, cpu %.2f s (%.1f GFLOP)\n", threads, seconds,
                cpu_seconds() - cpu, old_flops / 1e9);

    cpu = cpu_seconds();
    start = std::chrono::steady_clock::now();
    const auto all = nn::all_hidden_activations(model, x);
    seconds = seconds_since(start);
    std::printf("all_hidden_activations (block 1024, TBB %d):     %.2f s, cpu %.2f s = %.2f x the GEMM bound\n",
                threads, seconds, cpu_seconds() - cpu, seconds / (hidden_flops / 1e9 / rate));
    const std::int64_t rss_memory = la::peak_rss_bytes();

    cpu = cpu_seconds();
    start = std::chrono::steady_clock::now();
    double checksum = 0.0;
    nn::for_each_hidden_activation(model, source, stream_block,
                                   [&](index_t, la::ConstMatrixView h, index_t) { checksum += h(0, 0); });
    seconds = seconds_since(start);
    std::printf("for_each_hidden_activation (stream %lld rows):   %.2f s, cpu %.2f s, incl. reading (checksum %g)\n",
                static_cast<long long>(stream_block), seconds, cpu_seconds() - cpu, checksum);
    std::printf("peak RSS %.0f MiB after the in-memory pass, %.0f MiB at the end\n",
                static_cast<double>(rss_memory) / (1 << 20), static_cast<double>(la::peak_rss_bytes()) / (1 << 20));
  } catch (const std::exception& e) {
    std::cerr << "bench_hidden_activations: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
