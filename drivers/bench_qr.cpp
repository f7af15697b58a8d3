// `idprune bench qr`: the unpivoted QR kernels behind the R factors of large compression sets:
// LAPACK dgeqrt of a row block, and a block stacked under an R factor by LAPACK dtpqrt against
// la::tpqrt_recursive. Timings are taken here, never inside the algorithms.
#include <string>
#include <vector>

#include "cli.hpp"
#include "idprune/app/tools.hpp"

namespace idprune::cli {

namespace {
const char* const kUsage = R"([--shapes 3125x1024,4096x512,2000x512] [--reps 5] [--block-size 64] [--threads 1] [--json]

Times, for each shape m x n (a row block B of a compression set's activations, Gaussian, fixed
seed): the R factor of B by LAPACK dgeqrt (how each lane of a threaded or streamed R starts), and
R <- R of [R; B] for an n x n upper-triangular R (how every further block is stacked under a
lane's R) by LAPACK's dtpqrt, whose panels are factored column by column (level 2), and by
la::tpqrt_recursive, whose panels are factored by recursion (level 3). Each figure is the median of
--reps runs, the three kernels interleaved so that they see the same machine load; GFLOP/s count
2 m n^2 - 2 n^3 / 3 (dgeqrt) and 2 m n^2 (stacking). BLAS uses --threads threads (one, as inside
idprune's row-parallel lanes, by default). With --json, one JSON object goes to standard output.

Example:
  idprune bench qr --shapes 3125x1024,4096x512 --reps 5)";
}  // namespace

int run_bench_qr(const std::vector<std::string>& args) {
  po::options_description options("bench qr options");
  options.add_options()("shapes", po::value<std::string>()->default_value("3125x1024,4096x512,2000x512"),
                        "ROWSxCOLS of the blocks, comma-separated")("reps", po::value<long>()->default_value(5),
                                                                    "repetitions per shape (the median is reported)")(
      "block-size", po::value<long>()->default_value(64), "block size nb of the stacking kernels")(
      "threads", po::value<int>()->default_value(1), "OpenBLAS threads")(
      "seed", po::value<unsigned long>()->default_value(1), "seed of the Gaussian test matrices")(
      "json", po::bool_switch(), "print one JSON object instead of the table");
  po::variables_map vm;
  if (!parse("bench qr", kUsage, options, args, vm)) return 0;
  return app::bench_qr(vm);
}

}  // namespace idprune::cli
