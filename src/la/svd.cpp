#include "idprune/la/svd.hpp"

#include <lapacke.h>

#include <algorithm>
#include <climits>

namespace idprune::la {
namespace {

lapack_int to_int(index_t v) {
  require(v >= 0 && v <= INT_MAX, "dgesdd: dimension ", v, " does not fit LAPACK's 32-bit integers");
  return static_cast<lapack_int>(v);
}

// dgesdd with workspace query. jobz 'N' (values only) or 'S' (thin U and Vt).
void gesdd(char jobz, Matrix& a, std::vector<double>& s, Matrix* u, Matrix* vt) {
  const index_t m = a.rows();
  const index_t n = a.cols();
  const index_t r = std::min(m, n);
  s.assign(static_cast<std::size_t>(r), 0.0);
  if (r == 0) return;
  double dummy = 0.0;
  double* u_data = u != nullptr ? u->data() : &dummy;
  double* vt_data = vt != nullptr ? vt->data() : &dummy;
  const lapack_int ldu = u != nullptr ? to_int(u->ld()) : 1;
  const lapack_int ldvt = vt != nullptr ? to_int(vt->ld()) : 1;
  std::vector<lapack_int> iwork(static_cast<std::size_t>(8 * r));
  double query = 0.0;
  check_lapack(LAPACKE_dgesdd_work(LAPACK_COL_MAJOR, jobz, to_int(m), to_int(n), a.data(), to_int(a.ld()), s.data(),
                                   u_data, ldu, vt_data, ldvt, &query, -1, iwork.data()),
               "dgesdd");
  std::vector<double> work(static_cast<std::size_t>(std::max(1.0, query)));
  check_lapack(
      LAPACKE_dgesdd_work(LAPACK_COL_MAJOR, jobz, to_int(m), to_int(n), a.data(), to_int(a.ld()), s.data(), u_data, ldu,
                          vt_data, ldvt, work.data(), static_cast<lapack_int>(work.size()), iwork.data()),
      "dgesdd");
}

}  // namespace

std::vector<double> singular_values(ConstMatrixView a) {
  require(all_finite(a), "singular_values: the ", a.rows(), " x ", a.cols(), " matrix has NaN or Inf entries");
  Matrix copy(a);
  std::vector<double> s;
  gesdd('N', copy, s, nullptr, nullptr);
  return s;
}

Svd svd(ConstMatrixView a) {
  require(all_finite(a), "svd: the ", a.rows(), " x ", a.cols(), " matrix has NaN or Inf entries");
  const index_t r = std::min(a.rows(), a.cols());
  Matrix copy(a);
  Svd out{Matrix(a.rows(), r), {}, Matrix(r, a.cols())};
  gesdd('S', copy, out.s, &out.u, &out.vt);
  return out;
}

double norm2(ConstMatrixView a) {
  if (a.empty()) return 0.0;
  return singular_values(a).front();
}

std::vector<double> optimal_rank_k_errors(std::span<const double> sigma) {
  std::vector<double> e(sigma.size() + 1, 0.0);
  for (std::size_t k = 0; k < sigma.size(); ++k) e[k] = sigma[k];
  return e;
}

}  // namespace idprune::la
