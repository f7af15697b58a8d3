// `idprune bench cpqr`: timing study of the early-stopped column-pivoted QR (reference text,
// Goal 2): over growing m (n fixed), growing n (m fixed) and m = n, for the three methods, with
// the log-log slopes of the medians; plus the full factorization and an early stop on one size,
// blocked against LAPACK dgeqp3. Timings are taken here, never inside the algorithms.
#include <string>
#include <vector>

#include "cli.hpp"
#include "idprune/app/tools.hpp"

namespace idprune::cli {

namespace {
const char* const kUsage = R"([--k 20] [--reps 5] [--json] [--m-sizes ...] [--n-sizes ...] [--square-sizes ...]

Times la::cpqr stopped after k steps (max_rank = k) for the methods unblocked, blocked and lapack
(LAPACK dgeqp3 always factors fully and is truncated afterwards: the reference). Three sweeps:
growing m with n fixed, growing n with m fixed, and m = n; each point is the median of --reps
runs (--lapack-reps for dgeqp3, whose full factorization dominates the run time), methods
interleaved so that they see the same machine load. The slope of a least-squares line through
(log size, log median time) is reported per sweep and method: an O(m n k) method shows about
1, 1 and 2. The default sizes keep every matrix at 64 MB or more, beyond the caches, so that
the memory-bound matrix-vector work of each step scales with the matrix size, and span a factor
of 2.76 in m = n (2900..8000: dgeqp3's full factorization at 8000 takes most of a minute), since a
shorter span left that slope at the mercy of one noisy point.
Then the full factorization of --full-m x --full-n: blocked (by default reduced first by an
unpivoted QR when m >= 2n), blocked on A itself (the dlaqps path) and dgeqp3; and the early stop
at k on the same matrix. Inputs are Gaussian (fixed seed).
Every run records wall-clock and process CPU time (all threads). On a shared machine the CPU
time is the steadier basis for slopes: it does not count the time other processes hold the cores.
With --json, one JSON object goes to standard output instead of the table.

Example (a quick run):
  idprune bench cpqr --k 10 --reps 1 --m-sizes 4000,8000 --n-sizes 200,400 --square-sizes 500,1000 \
                     --fixed-n 200 --fixed-m 4000 --full-m 1000 --full-n 200)";
}  // namespace

int run_bench_cpqr(const std::vector<std::string>& args) {
  po::options_description options("bench cpqr options");
  options.add_options()("k", po::value<long>()->default_value(20), "steps of the early-stopped factorization")(
      "reps", po::value<long>()->default_value(5), "repetitions per point (the median is reported)")(
      "lapack-reps", po::value<long>()->default_value(1),
      "repetitions of dgeqp3 per point of the sweeps (it never stops early and dominates the run time)")(
      "json", po::bool_switch(), "print one JSON object instead of the table")(
      "block-size", po::value<long>()->default_value(32), "panel width of the blocked method")(
      "threads", po::value<int>()->default_value(0), "OpenBLAS threads (0: leave OpenBLAS's default)")(
      "fixed-n", po::value<long>()->default_value(500), "n of the growing-m sweep")(
      "m-sizes", po::value<std::string>()->default_value("16000,32000,64000,128000"),
      "m values of the growing-m sweep")("fixed-m", po::value<long>()->default_value(16000),
                                         "m of the growing-n sweep")(
      "n-sizes", po::value<std::string>()->default_value("500,1000,2000"), "n values of the growing-n sweep")(
      "square-sizes", po::value<std::string>()->default_value("2900,4000,5600,8000"), "sizes of the m = n sweep")(
      "full-m", po::value<long>()->default_value(4000), "rows of the full-factorization comparison")(
      "full-n", po::value<long>()->default_value(1000), "columns of the full-factorization comparison")(
      "seed", po::value<unsigned long>()->default_value(1), "seed of the Gaussian test matrices");
  po::variables_map vm;
  if (!parse("bench cpqr", kUsage, options, args, vm)) return 0;
  return app::bench_cpqr(vm);
}

}  // namespace idprune::cli
