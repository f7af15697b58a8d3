// `idprune bench id`: times the pivot engines of the distributed ID (dist::distributed_id) on a
// row-distributed matrix that every rank generates for its own rows, against single-process
// LAPACK dgeqp3 on the full matrix with threaded BLAS. Timing lives here, never in the library.
#include <string>
#include <vector>

#include "cli.hpp"
#include "idprune/app/tools.hpp"

namespace idprune::cli {

namespace {
const char* const kUsage = R"(--rows M --cols N [--engine E ...] [--k K | --tol T] [--reps R] [--json]

Times dist::distributed_id for each engine (tsqr, gram, sketch, scalapack, lapack) on an M x N
matrix of each kind (lowrank: low rank plus noise; relu: activation-like, mostly zeros with dead
neurons). Each rank generates its own rows from --seed. Per engine: the median over --reps of the
slowest rank's time, the ID error ||Z - Z(:,C) T||_2 and its ratio to the dgeqp3 error, and the
largest number of bytes a rank sent. Engines and the reference are interleaved within each
repetition so that they see the same machine load.

The reference is LAPACK dgeqp3 (la::cpqr, method lapack) plus T on the full matrix, in ONE
process, rank 0, with --reference-threads OpenBLAS threads (default: every core of the machine)
while the other ranks wait without spinning (MPI_Ibarrier + sleep). Under mpirun, which binds each
rank to one core when np <= 2, run with `mpirun --bind-to none` so that the reference can use all
cores; the engines then run with --threads BLAS threads per rank (default: cores / ranks per
node). The output records the cores each side could use.

Example:
  mpirun -n 2 --bind-to none idprune bench id --rows 20000 --cols 500 --k 50 --reps 3)";
}  // namespace

int run_bench_id(const std::vector<std::string>& args) {
  po::options_description options("bench id options");
  options.add_options()("rows", po::value<long>()->required(), "M, rows of the matrix (distributed over ranks)")(
      "cols", po::value<long>()->required(), "N, columns")(
      "engine", po::value<std::vector<std::string>>()->multitoken(),
      "engines to time (repeatable or comma-separated; default: tsqr gram sketch scalapack lapack)")(
      "k", po::value<long>(), "fixed rank rule: max_rank = K")(
      "tol", po::value<double>(), "tolerance rule: |r_k+1,k+1| <= T |r_11| (default 1e-6 when --k is not given)")(
      "reps", po::value<long>()->default_value(3), "repetitions (the median is reported)")(
      "kind", po::value<std::string>()->default_value("lowrank,relu"), "matrix kinds: lowrank, relu (comma-separated)")(
      "seed", po::value<unsigned long>()->default_value(1), "seed of the generated matrices")(
      "inner", po::value<long>()->default_value(0), "rank r (lowrank) or features d (relu); 0: N / 8")(
      "feature-decay", po::value<double>()->default_value(0.9), "relu: ratio of consecutive feature scales")(
      "redundancy", po::value<long>()->default_value(4), "relu: neurons per group of near-duplicates")(
      "perturbation", po::value<double>()->default_value(1e-3), "relu: relative difference within a group")(
      "noise", po::value<double>()->default_value(1e-9), "lowrank: noise level")(
      "reference", po::value<bool>()->default_value(true), "time single-process dgeqp3 on rank 0 (true/false)")(
      "reference-threads", po::value<int>()->default_value(0), "BLAS threads of the reference (0: all cores)")(
      "threads", po::value<int>()->default_value(0), "BLAS threads per rank for the engines (0: cores / ranks)")(
      "oversampling", po::value<long>()->default_value(10), "sketch oversampling p")(
      "scalapack-block", po::value<long>()->default_value(64), "block size of the ScaLAPACK layout")(
      "json", po::bool_switch(), "print one JSON object instead of the table");
  po::variables_map vm;
  if (!parse("bench id", kUsage, options, args, vm)) return 0;
  return app::bench_id(vm);
}

}  // namespace idprune::cli
