#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "idprune/app/bench_support.hpp"
#include "idprune/app/options.hpp"
#include "idprune/app/tools.hpp"
#include "idprune/dist/collectives.hpp"
#include "idprune/dist/comm.hpp"
#include "idprune/dist/generate.hpp"
#include "idprune/dist/parallelism.hpp"
#include "idprune/dist/pivot.hpp"
#include "idprune/la/blas.hpp"
#include "idprune/la/cpqr.hpp"
#include "idprune/version.hpp"

namespace idprune::app {

namespace {

using la::index_t;
using la::Matrix;

struct EngineRow {
  std::string name;
  std::vector<double> seconds;
  index_t rank = 0;
  double error = 0.0;
  std::uint64_t bytes_max = 0;
  index_t sketch_rows = 0;
};

}  // namespace

int bench_id(const po::variables_map& vm) {
  const auto comm = dist::Comm::world();
  const index_t m = vm["rows"].as<long>();
  const index_t n = vm["cols"].as<long>();
  const long reps = vm["reps"].as<long>();
  require(m >= 1 && n >= 1, "bench id: --rows=", m, " and --cols=", n, " must be >= 1");
  require(reps >= 1, "bench id: --reps=", reps, " must be >= 1");
  require(!(vm.count("k") && vm.count("tol")), "bench id: give --k or --tol, not both");
  la::CpqrOptions opts;
  if (vm.count("k")) {
    opts.max_rank = vm["k"].as<long>();
    require(opts.max_rank >= 0 && opts.max_rank <= std::min(m, n), "bench id: --k=", opts.max_rank,
            " outside [0, min(M, N)=", std::min(m, n), "]");
  } else {
    opts.rel_tol = vm.count("tol") ? vm["tol"].as<double>() : 1e-6;
    require(opts.rel_tol > 0.0, "bench id: --tol=", opts.rel_tol, " must be > 0");
  }
  std::vector<dist::PivotEngine> engines;
  if (vm.count("engine")) {
    for (const auto& item : vm["engine"].as<std::vector<std::string>>())
      for (const auto& name : split_list(item, "--engine")) engines.push_back(dist::parse_pivot_engine(name));
  } else {
    engines = {dist::PivotEngine::tsqr, dist::PivotEngine::gram, dist::PivotEngine::sketch,
               dist::PivotEngine::scalapack, dist::PivotEngine::lapack};
  }
  std::vector<dist::GeneratedKind> kinds;
  for (const auto& name : split_list(vm["kind"].as<std::string>(), "--kind"))
    kinds.push_back(dist::parse_generated_kind(name));
  const bool with_reference = vm["reference"].as<bool>();

  // Threads: engines get this rank's share of the node's cores; the reference every core it may use.
  const int hw = static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  const int my_cores = dist::available_cores();
  const int node_ranks = comm.split_shared().size();
  const int engine_threads =
      vm["threads"].as<int>() > 0 ? vm["threads"].as<int>() : std::max(1, std::min(my_cores, hw / node_ranks));
  const int reference_threads = vm["reference-threads"].as<int>() > 0 ? vm["reference-threads"].as<int>() : hw;
  const auto cores_per_rank = comm.allgather(my_cores);

  dist::EngineOptions base;
  base.oversampling = vm["oversampling"].as<long>();
  base.scalapack_block = vm["scalapack-block"].as<long>();

  const auto load_before = load_average();
  nlohmann::json results = nlohmann::json::array();
  std::ostringstream table;
  for (const auto kind : kinds) {
    dist::GeneratorOptions gen;
    gen.kind = kind;
    gen.seed = vm["seed"].as<unsigned long>();
    gen.inner = vm["inner"].as<long>();
    gen.feature_decay = vm["feature-decay"].as<double>();
    gen.noise = vm["noise"].as<double>();
    gen.redundancy = vm["redundancy"].as<long>();
    gen.perturbation = vm["perturbation"].as<double>();
    const dist::DistMatrix z = dist::generate_distributed(comm, gen, m, n);

    std::vector<EngineRow> rows;
    for (const auto e : engines) rows.push_back({std::string(dist::to_string(e)), {}, 0, 0.0, 0, 0});
    EngineRow ref{"dgeqp3 (1 process)", {}, 0, 0.0, 0, 0};
    la::InterpolativeDecomposition ref_id;
    std::string error;
    Matrix full;
    if (with_reference && comm.rank() == 0) full = dist::generate_rows(gen, 0, m, n);
    for (long r = 0; r < reps; ++r) {
      if (with_reference) {
        comm.barrier();
        double seconds = 0.0;
        if (comm.rank() == 0) {
          error = dist::capture_error([&] {
            const la::ScopedBlasThreads threads(reference_threads);
            la::CpqrOptions o = opts;
            o.method = la::CpqrMethod::lapack;
            const auto start = std::chrono::steady_clock::now();
            ref_id = la::interpolative_decomposition(full, o);
            seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          });
        }
        // The other ranks sleep here, leaving their cores to rank 0's threads.
        comm.idle_barrier();
        dist::check_collective(comm, error);
        ref.seconds.push_back(seconds);
      }
      const la::ScopedBlasThreads threads(engine_threads);
      for (std::size_t i = 0; i < engines.size(); ++i) {
        dist::EngineOptions eng = base;
        eng.engine = engines[i];
        dist::EngineStats stats;
        comm.barrier();
        const auto start = std::chrono::steady_clock::now();
        const auto id = dist::distributed_id(z, opts, eng, &stats);
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        rows[i].seconds.push_back(comm.max(seconds));
        if (r + 1 == reps) {  // accuracy and volume of the last run (the same in every run)
          rows[i].rank = id.factorization.rank;
          rows[i].error = dist::id_error(z, id).spectral;
          rows[i].bytes_max = comm.max(stats.bytes_sent);
          rows[i].sketch_rows = stats.sketch_rows;
        }
      }
    }
    // The error every engine is compared with: dgeqp3's (the reference, else the lapack engine).
    double base_error = -1.0;
    if (with_reference) {
      const la::ScopedBlasThreads threads(engine_threads);
      dist::broadcast(comm, ref_id, 0);
      ref.rank = static_cast<index_t>(ref_id.skeleton.size());
      ref.error = dist::id_error(z, ref_id).spectral;
      base_error = ref.error;
    }
    for (const auto& row : rows)
      if (base_error < 0.0 && row.name == "lapack") base_error = row.error;

    const double ref_time = with_reference ? median(ref.seconds) : 0.0;
    nlohmann::json jk;
    jk["kind"] = dist::to_string(kind);
    const auto add = [&](const EngineRow& row, bool is_reference) {
      const double t = median(row.seconds);
      const double speedup = with_reference && t > 0.0 ? ref_time / t : 0.0;
      // No dgeqp3 error to compare with (no reference, no lapack engine): ratio unknown (NaN, null).
      const double ratio = base_error > 0.0    ? row.error / base_error
                           : base_error == 0.0 ? (row.error == 0.0 ? 1.0 : std::numeric_limits<double>::infinity())
                                               : std::numeric_limits<double>::quiet_NaN();
      nlohmann::json je = {{"engine", row.name},
                           {"median_seconds", t},
                           {"runs", row.seconds},
                           {"rank", row.rank},
                           {"id_error", row.error},
                           {"error_ratio", ratio},
                           {"bytes_sent_max_per_rank", row.bytes_max}};
      if (!is_reference) je["speedup_vs_dgeqp3"] = speedup;
      if (row.sketch_rows > 0) je["sketch_rows"] = row.sketch_rows;
      jk[is_reference ? "reference" : "engines"].push_back(je);
      const auto fixed = [](double v, int digits) {
        if (!std::isfinite(v) || v <= 0.0) return std::string("-");
        std::ostringstream os;
        os << std::fixed << std::setprecision(digits) << v;
        return os.str();
      };
      table << std::left << std::setw(20) << row.name << std::right << std::setw(10) << fixed(t, 4) << std::setw(9)
            << (is_reference ? std::string("1.00") : fixed(speedup, 2)) << std::setw(7) << row.rank << std::scientific
            << std::setprecision(3) << std::setw(12) << row.error << std::setw(10)
            << (row.error == 0.0 && ratio == 1.0 ? std::string("1.0000") : fixed(ratio, 4)) << std::setw(14)
            << row.bytes_max << "\n";
    };
    table << "\n"
          << dist::to_string(kind) << ": " << m << " x " << n << "\n"
          << std::left << std::setw(20) << "engine" << std::right << std::setw(10) << "time [s]" << std::setw(9)
          << "speedup" << std::setw(7) << "rank" << std::setw(12) << "ID error" << std::setw(10) << "err/ref"
          << std::setw(14) << "bytes/rank"
          << "\n";
    if (with_reference) add(ref, true);
    for (const auto& row : rows) add(row, false);
    // The headline of the issue: the fastest exact (non-randomized) engine against dgeqp3.
    const EngineRow* fastest = nullptr;
    for (const auto& row : rows)
      if (row.name != "sketch" && (fastest == nullptr || median(row.seconds) < median(fastest->seconds)))
        fastest = &row;
    if (with_reference && fastest != nullptr) {
      const double speedup = ref_time / median(fastest->seconds);
      const double ratio = base_error > 0.0 ? fastest->error / base_error : (fastest->error == 0.0 ? 1.0 : 0.0);
      jk["fastest_exact_engine"] = {{"engine", fastest->name}, {"speedup_vs_dgeqp3", speedup}, {"error_ratio", ratio}};
      table << "fastest exact engine: " << fastest->name << ", " << std::fixed << std::setprecision(2) << speedup
            << "x faster than dgeqp3, ID error ratio " << std::setprecision(6) << ratio << "\n";
    }
    results.push_back(jk);
  }
  const auto load_after = load_average();
  if (comm.rank() != 0) return 0;

  const std::string rule =
      opts.max_rank >= 0 ? "k = " + std::to_string(opts.max_rank) : "tol = " + std::to_string(opts.rel_tol);
  if (vm["json"].as<bool>()) {
    nlohmann::json j;
    j["benchmark"] = "id";
    j["version"] = version_string();
    j["git_revision"] = git_revision();
    j["blas_core"] = la::blas_core_name();
    j["ranks"] = comm.size();
    j["ranks_per_node"] = node_ranks;
    j["hardware_threads"] = hw;
    j["cores_available_per_rank"] = cores_per_rank;
    j["engine_blas_threads_per_rank"] = engine_threads;
    j["reference_blas_threads"] = with_reference ? reference_threads : 0;
    j["rows"] = m;
    j["cols"] = n;
    if (opts.max_rank >= 0)
      j["k"] = opts.max_rank;
    else
      j["tol"] = opts.rel_tol;
    j["reps"] = reps;
    j["statistic"] = "median over reps of the slowest rank's seconds";
    j["load_average_before"] = load_before;
    j["load_average_after"] = load_after;
    j["results"] = results;
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << "idprune bench id: " << m << " x " << n << ", " << rule << ", " << comm.size() << " ranks x "
            << engine_threads << " BLAS threads (cores per rank:";
  for (int c : cores_per_rank) std::cout << " " << c;
  std::cout << ")";
  if (with_reference) std::cout << ", reference dgeqp3 with " << reference_threads << " threads on rank 0";
  std::cout << ", OpenBLAS " << la::blas_core_name() << ", median of " << reps << ", load average " << load_before[0]
            << " -> " << load_after[0] << "\n";
  if (with_reference && cores_per_rank[0] < reference_threads)
    std::cout << "warning: rank 0 may use only " << cores_per_rank[0] << " core(s) for the " << reference_threads
              << "-thread reference (mpirun binds ranks to cores: use --bind-to none)\n";
  std::cout << "speedup = dgeqp3 time / engine time; err/ref = ID error / dgeqp3's; bytes/rank = most payload "
               "bytes a rank sent in one call\n"
            << table.str();
  return 0;
}

}  // namespace idprune::app
