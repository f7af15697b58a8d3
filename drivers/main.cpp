// The `idprune` command line: dispatches to one subcommand per file in drivers/.
#include <exception>
#include <iostream>
#include <new>
#include <string>
#include <vector>

#include "cli.hpp"
#include "idprune/dist/comm.hpp"
#include "idprune/la/blas.hpp"
#include "idprune/la/error.hpp"
#include "idprune/version.hpp"

namespace idprune::cli {

// One declaration per subcommand file (drivers/NAME.cpp defines run_NAME).
int run_lowrank(const std::vector<std::string>& args);
int run_bench(const std::vector<std::string>& args);
int run_rank(const std::vector<std::string>& args);
int run_sweep(const std::vector<std::string>& args);
int run_train(const std::vector<std::string>& args);
int run_eval(const std::vector<std::string>& args);
int run_report(const std::vector<std::string>& args);
int run_pareto(const std::vector<std::string>& args);
int run_compress(const std::vector<std::string>& args);
int run_strategies(const std::vector<std::string>& args);

const std::vector<Subcommand>& subcommands() {
  static const std::vector<Subcommand> table = {
      {"lowrank", "CPQR (interpolative decomposition) vs optimal SVD error for k = 1..K (kernel study)", run_lowrank},
      {"bench", "benchmarks: bench cpqr (CPQR scaling, blocked vs dgeqp3), bench id (pivot engines)", run_bench},
      {"rank", "estimate the rank of a black-box map (the reference game, or a model layer)", run_rank},
      {"sweep", "compress a model over a grid of eps / k / fraction / rank, one result row per point", run_sweep},
      {"train", "train an MLP classifier (Adam) and save it as safetensors or .npy", run_train},
      {"eval", "test accuracy of a model file, per class, under mpirun too", run_eval},
      {"report", "HTML + Markdown report with gnuplot figures from result folders", run_report},
      {"pareto", "accuracy / parameter Pareto fronts: greedy, baselines and joint strategies", run_pareto},
      {"compress", "write one compressed model (a budget or a rule), with its per-layer sensitivity table",
       run_compress},
      {"strategies", "the compression strategies (the registry), as a table or README.md's Markdown", run_strategies},
  };
  return table;
}

namespace {
void print_usage() {
  std::cout << "idprune " << version_string() << ": compress neural networks by interpolative decomposition\n\n"
            << "Usage: idprune SUBCOMMAND [options]   (idprune SUBCOMMAND --help for its options)\n\n"
            << "Subcommands:\n";
  for (const auto& s : subcommands())
    std::cout << "  " << s.name << std::string(12 - std::string(s.name).size(), ' ') << s.summary << "\n";
}
}  // namespace
}  // namespace idprune::cli

int main(int argc, char** argv) {
  using namespace idprune::cli;
  // MPI for the whole run (a no-op cost on one process); errors end every rank (see below).
  const idprune::dist::Environment mpi(argc, argv);
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    print_usage();
    return argc < 2 ? 2 : 0;
  }
  const std::string name = argv[1];
  if (name == "--version") {
    std::cout << "idprune " << idprune::version_string() << " (OpenBLAS " << idprune::la::blas_core_name() << ")\n";
    return 0;
  }
  const std::vector<std::string> args(argv + 2, argv + argc);
  for (const auto& s : subcommands()) {
    if (name != s.name) continue;
    // Printed once (collective errors) or by the failing rank, which then aborts every rank. A
    // message may quote bytes of a user's file: shown without terminal escape sequences.
    try {
      return s.run(args);
    } catch (const idprune::dist::CollectiveError& e) {
      return idprune::dist::report_fatal_error("idprune " + name,
                                               idprune::dist::CollectiveError(e.failing_rank(), printable(e.what())));
    } catch (const std::bad_alloc& e) {
      return idprune::dist::report_fatal_error(
          "idprune " + name,
          idprune::Error("out of memory (std::bad_alloc); a smaller problem or more memory is needed"));
    } catch (const std::exception& e) {
      return idprune::dist::report_fatal_error("idprune " + name, idprune::Error(printable(e.what())));
    }
  }
  std::cerr << "idprune: unknown subcommand '" << printable(name) << "' (see 'idprune --help')\n";
  return 2;
}
