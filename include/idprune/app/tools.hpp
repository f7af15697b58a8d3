#pragma once
// The runs behind the subcommands that are not compression studies: the benchmarks, training and
// rank estimation. Each takes its subcommand's parsed options (see drivers/NAME.cpp for the
// table), runs, prints its results (rank 0 under MPI) and returns the exit status.
#include <ostream>

#include "idprune/app/options.hpp"
#include "idprune/dist/comm.hpp"

namespace idprune::app {

/// `idprune bench id`: the pivot engines of dist::distributed_id against single-process dgeqp3.
[[nodiscard]] int bench_id(const po::variables_map& vm);
/// `idprune bench cpqr`: early-stopped CPQR scaling over m, n and m = n, blocked against dgeqp3.
[[nodiscard]] int bench_cpqr(const po::variables_map& vm);
/// `idprune bench qr`: the unpivoted QR kernels of the R factors, dgeqrt and the stacking of a block
/// under R by dtpqrt against la::tpqrt_recursive.
[[nodiscard]] int bench_qr(const po::variables_map& vm);
/// `idprune bench inference`: float32 forward-pass throughput and latency of models.
[[nodiscard]] int bench_inference(const po::variables_map& vm);
/// `idprune train`: an MLP classifier trained with Adam (nn::train) and saved.
[[nodiscard]] int train(const po::variables_map& vm);
/// `idprune rank`: the reference text's rank-estimation game, printed to `out`.
[[nodiscard]] int rank_game(const po::variables_map& vm, std::ostream& out);
/// `idprune rank --model M --layer L`: a layer's rank, estimated and from its activations' spectrum.
[[nodiscard]] int rank_model(const po::variables_map& vm, const dist::Comm& comm, std::ostream& out);

}  // namespace idprune::app
