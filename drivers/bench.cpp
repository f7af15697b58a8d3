// `idprune bench`: dispatches to one benchmark per file (bench_cpqr.cpp, bench_id.cpp,
// bench_inference.cpp, bench_compress_scale.cpp, bench_qr.cpp).
#include <iostream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "idprune/la/error.hpp"

namespace idprune::cli {

// Defined in drivers/bench_NAME.cpp.
int run_bench_cpqr(const std::vector<std::string>& args);
int run_bench_id(const std::vector<std::string>& args);
int run_bench_inference(const std::vector<std::string>& args);
int run_bench_compress_scale(const std::vector<std::string>& args);
int run_bench_qr(const std::vector<std::string>& args);

int run_bench(const std::vector<std::string>& args) {
  const char* const usage =
      "Usage: idprune bench BENCHMARK [options]   (idprune bench BENCHMARK --help for its options)\n\n"
      "Benchmarks:\n"
      "  cpqr   early-stopped column-pivoted QR: unblocked, blocked and LAPACK dgeqp3, scaling in m, n, m = n\n"
      "  id     pivot engines of the distributed ID (tsqr, gram, sketch, scalapack) over ranks and sizes\n"
      "  inference  float32 forward-pass throughput and latency of models, compared with the first\n"
      "  compress-scale  one greedy point as the compression set grows, beside its GEMM lower bound\n"
      "  qr     the unpivoted QR kernels of the R factors: dgeqrt, and stacking under R by dtpqrt vs tpqrt_recursive\n";
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cout << usage;
    return args.empty() ? 2 : 0;
  }
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "cpqr") return run_bench_cpqr(rest);
  if (args[0] == "id") return run_bench_id(rest);
  if (args[0] == "inference") return run_bench_inference(rest);
  if (args[0] == "compress-scale") return run_bench_compress_scale(rest);
  if (args[0] == "qr") return run_bench_qr(rest);
  throw Error(
      detail::concat("bench: unknown benchmark '", args[0], "' (expected cpqr, id, inference, compress-scale or qr)"));
}

}  // namespace idprune::cli
