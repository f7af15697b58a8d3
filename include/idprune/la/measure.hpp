#pragma once
// What a run costs and what the machine can do, for benchmarks that print a lower bound next to a
// measured time: operation counts of the kernels idprune spends its time in, the DGEMM rate of this
// machine measured now, the peak resident memory of the process, and memory sizes as users write them.
#include <cstdint>
#include <string_view>

#include "idprune/la/matrix.hpp"

namespace idprune::la {

/// 2 m n k: the multiplies and adds of C (m x n) += A (m x k) B (k x n).
[[nodiscard]] double gemm_flops(index_t m, index_t n, index_t k);

/// Householder QR of an m x n matrix computing R only (no Q): 2 n^2 (m - n/3) for m >= n
/// (Golub & Van Loan, Matrix Computations, 4th ed., Algorithm 5.2.1), 2 m^2 (n - m/3) for m < n.
[[nodiscard]] double qr_r_flops(index_t m, index_t n);

/// DGEMM rate of this machine in GFLOP/s with `threads` OpenBLAS threads (restored afterwards),
/// measured now: the fastest of 7 timed square products of about 0.1 s each (the size chosen from a
/// 512^3 warm-up, capped at 2048), about a second in all. The rate a GEMM-bound phase can reach: its
/// flops divided by this rate is a lower bound on its time.
[[nodiscard]] double measure_gemm_rate(int threads);

/// Peak resident set size of this process so far, in bytes (getrusage ru_maxrss).
[[nodiscard]] std::int64_t peak_rss_bytes();

/// A memory size as written on a command line: a number (decimals allowed) with an optional binary
/// suffix K, M, G or T (case-insensitive, optionally followed by "B" or "iB"; K = 1024 bytes), no
/// suffix meaning bytes: "2G" = 2147483648, "512M", "1.5GiB", "4096". The result is rounded down to
/// whole bytes and must be positive; anything else throws idprune::Error quoting the text.
[[nodiscard]] std::int64_t parse_memory_size(std::string_view text);

}  // namespace idprune::la
