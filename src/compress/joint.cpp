#include "idprune/compress/joint.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>
#include <string>

#include "idprune/compress/layer.hpp"
#include "idprune/dist/kernels.hpp"
#include "idprune/la/blas.hpp"
#include "idprune/la/lapack.hpp"
#include "idprune/la/svd.hpp"
#include "tasks.hpp"

namespace idprune::compress {

using la::Matrix;

namespace {
using la::uz;

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

/// body(i) for i in [0, n) as TBB tasks, BLAS single-threaded even when the tasks run inline: every
/// result is then computed by the same sequence of operations for any number of threads.
template <class F>
std::string tasks(std::size_t n, F&& body) {
  const la::ScopedBlasThreads single(1);
  return parallel::run_tasks(n, std::forward<F>(body));
}

/// A node's complete factorization stops at the numerical rank: |r_{k+1,k+1}| <= max(m, n) eps |r_11|
/// (the usual rank threshold, as LAPACK's xGELSY/Eigen use); later pivots would be rounding noise
/// and R11 beyond them numerically singular.
la::CpqrOptions complete_rule(index_t rows, index_t cols, la::CpqrMethod method) {
  la::CpqrOptions o;
  o.max_rank = -1;
  o.rel_tol = static_cast<double>(std::max(rows, cols)) * std::numeric_limits<double>::epsilon();
  o.method = method;
  return o;
}

/// X = R11^{-1} R12 for the leading k rows of an upper-trapezoidal [R11 R12] (k x (k + n)), or the
/// minimum-norm solution V S^+ U^T R12 when R11 is numerically singular (singular values below
/// k eps s_1 treated as zero, as dgelsd's rcond), e.g. a dead neuron among the columns.
Matrix solve_upper(Matrix r11, Matrix r12) {
  const index_t k = r11.rows();
  double dmax = 0.0;
  double dmin = std::numeric_limits<double>::infinity();
  for (index_t i = 0; i < k; ++i) {
    dmax = std::max(dmax, std::abs(r11(i, i)));
    dmin = std::min(dmin, std::abs(r11(i, i)));
  }
  const double eps = std::numeric_limits<double>::epsilon();
  if (dmax == 0.0) {
    r12.view().fill(0.0);
    return r12;
  }
  if (dmin > static_cast<double>(k) * eps * dmax) {
    la::trsm_upper_left(r11, la::Op::none, r12.view());
    return r12;
  }
  const la::Svd s = la::svd(r11);
  Matrix utr = la::matmul(s.u, r12, la::Op::transpose);
  const double cut = static_cast<double>(k) * eps * s.s.front();
  for (index_t i = 0; i < utr.rows(); ++i) {
    const double si = s.s[uz(i)];
    for (index_t j = 0; j < utr.cols(); ++j) utr(i, j) = si > cut ? utr(i, j) / si : 0.0;
  }
  return la::matmul(s.vt, utr, la::Op::transpose);
}

/// Local kernel of the least-squares fit: for A_p = Q_p R_p (m_p x k) the block [R_p, Q_p^T Y_p]
/// restricted to its first min(m_p, k) rows (the rest of Q_p^T Y_p is orthogonal to range(A)).
Matrix local_least_squares_block(la::ConstMatrixView a, la::ConstMatrixView y) {
  require(a.rows() == y.rows(), "distributed_least_squares: A has ", a.rows(), " rows, Y has ", y.rows());
  const index_t m = a.rows();
  const index_t k = a.cols();
  const index_t n = y.cols();
  const index_t r = std::min(m, k);
  Matrix block(r, k + n);
  if (r == 0) return block;
  Matrix qr(a);
  const std::vector<double> tau = la::geqrf(qr.view());
  Matrix c(y);
  la::ormqr(la::Side::left, la::Op::transpose, qr.block(0, 0, m, static_cast<index_t>(tau.size())), tau, c.view());
  for (index_t j = 0; j < k; ++j)
    for (index_t i = 0; i <= std::min(j, r - 1); ++i) block(i, j) = qr(i, j);
  block.block(0, k, r, n).assign(c.block(0, 0, r, n));
  return block;
}

/// T from the stacked blocks of every rank (s x (k + n), any s): QR of the stack's first k columns,
/// Q^T applied to the rest, then the triangular solve. `triangular`: the stack is already one
/// block [R_p, Q_p^T Y_p] (one rank), no second QR needed.
Matrix solve_stacked(Matrix stack, index_t k, index_t n, bool triangular) {
  const index_t s = stack.rows();
  if (!triangular && s > 0) {
    Matrix left(stack.block(0, 0, s, k));
    const std::vector<double> tau = la::geqrf(left.view());
    Matrix right(stack.block(0, k, s, n));
    la::ormqr(la::Side::left, la::Op::transpose, left.block(0, 0, s, static_cast<index_t>(tau.size())), tau,
              right.view());
    stack.block(0, 0, s, k).assign(left);
    stack.block(0, k, s, n).assign(right);
  }
  const index_t top = std::min(s, k);
  Matrix r11(k, k);  // zero rows beyond `top` (fewer rows than unknowns: singular, minimum norm)
  Matrix r12(k, n);
  for (index_t j = 0; j < k; ++j)
    for (index_t i = 0; i <= std::min(j, top - 1); ++i) r11(i, j) = stack(i, j);
  if (top > 0) r12.block(0, 0, top, n).assign(stack.block(0, k, top, n));
  return solve_upper(std::move(r11), std::move(r12));
}

/// Broadcasts rank 0's factorizations (n columns each) to every rank: integers in one message,
/// doubles in another.
void bcast_factorizations(const dist::Comm& comm, std::vector<la::CpqrResult>& fs, std::span<const index_t> cols) {
  const bool root = comm.rank() == 0;
  std::vector<index_t> ints;
  for (std::size_t i = 0; i < fs.size(); ++i) ints.push_back(root ? fs[i].rank : 0);
  comm.bcast(std::span<index_t>(ints), 0);
  std::size_t nint = 0;
  std::size_t ndbl = 0;
  for (std::size_t i = 0; i < fs.size(); ++i) {
    nint += uz(cols[i]);
    ndbl += uz(ints[i] * cols[i] + ints[i] + 2);
  }
  std::vector<index_t> piv;
  std::vector<double> dbl;
  piv.reserve(nint);
  dbl.reserve(ndbl);
  if (root) {
    for (const auto& f : fs) {
      piv.insert(piv.end(), f.pivots.begin(), f.pivots.end());
      dbl.insert(dbl.end(), f.r.values().begin(), f.r.values().end());
      dbl.insert(dbl.end(), f.diag.begin(), f.diag.end());
      dbl.push_back(f.next_diag);
      dbl.push_back(f.residual_fro);
    }
  } else {
    piv.resize(nint);
    dbl.resize(ndbl);
  }
  comm.bcast(std::span<index_t>(piv), 0);
  comm.bcast(std::span<double>(dbl), 0);
  if (root) return;
  auto pi = piv.begin();
  auto di = dbl.begin();
  for (std::size_t i = 0; i < fs.size(); ++i) {
    la::CpqrResult& f = fs[i];
    const index_t k = ints[i];
    const index_t n = cols[i];
    f.rank = k;
    f.pivots.assign(pi, pi + n);
    pi += n;
    f.r = Matrix(k, n);
    std::copy(di, di + k * n, f.r.values().begin());
    di += k * n;
    f.diag.assign(di, di + k);
    di += k;
    f.next_diag = *di++;
    f.residual_fro = *di++;
  }
}
}  // namespace

std::string_view to_string(Interpolation interpolation) {
  return interpolation == Interpolation::corrected ? "corrected" : "id";
}

std::int64_t parameter_count_with_widths(const nn::Mlp& original, std::span<const index_t> kept, bool intercepts) {
  const index_t L = original.num_hidden();
  require(static_cast<index_t>(kept.size()) == L, "parameter_count_with_widths: ", kept.size(), " widths for ", L,
          " hidden layers");
  std::int64_t total = 0;
  index_t prev = original.input_dim();
  for (index_t l = 0; l < L; ++l) {
    const index_t k = kept[uz(l)];
    require(k >= 1 && k <= original.hidden(l).d_out(), "parameter_count_with_widths: layer ", l + 1, " keeps ", k,
            " of ", original.hidden(l).d_out(), " neurons");
    total += prev * k + (original.hidden(l).has_bias() || (intercepts && l > 0) ? k : 0);
    prev = k;
  }
  total +=
      prev * original.num_classes() + (original.classifier().has_bias() || intercepts ? original.num_classes() : 0);
  return total;
}

PointPlan kept_plan(std::span<const index_t> kept) {
  PointPlan p;
  for (index_t k : kept) {
    require(k >= 1, "kept_plan: a layer must keep at least one neuron (got ", k, ")");
    p.layers.emplace_back(LayerRule{RankRule::k, static_cast<double>(k)});
  }
  return p;
}

/// The state of the compressed network after its first depth() hidden layers (keys: their kept
/// counts, -1 for a layer left as it is).
struct JointCompressor::Node {
  std::vector<index_t> key;
  bool original = true;                                       ///< every layer before depth() left as it is
  std::vector<std::shared_ptr<const nn::DenseLayer>> layers;  ///< hidden layers 0..depth()-1
  nn::DenseLayer next;  ///< layer depth() as it now stands (T W folded in); the classifier at depth L
  Matrix h;             ///< this rank's rows of the input to layer depth() (non-original nodes)
  std::vector<index_t> first_columns;
  std::vector<LayerOutcome> outcomes;  ///< layers 0..depth()-1
  std::optional<la::CpqrResult> f;     ///< complete CPQR of the activations of layer depth()
  Matrix z;                            ///< transient: this rank's rows of those activations
  std::uint64_t used = 0;

  [[nodiscard]] index_t depth() const { return static_cast<index_t>(key.size()); }
  [[nodiscard]] std::size_t bytes() const {
    std::size_t b = uz(h.size() + z.size());
    for (const auto& m : next.factors()) b += uz(m.size());
    if (!layers.empty())
      for (const auto& m : layers.back()->factors()) b += uz(m.size());
    if (f) b += uz(f->r.size());
    return b * sizeof(double);
  }
};

JointCompressor::JointCompressor(nn::Mlp original, dist::DistMatrix compression_set, JointOptions options)
    : original_(std::move(original)), xc_(std::move(compression_set)), options_(options) {
  require(original_.num_hidden() >= 1, "JointCompressor: the model has no hidden layer to compress");
  require(xc_.cols() == original_.input_dim(), "JointCompressor: the compression set has ", xc_.cols(),
          " features, the model expects ", original_.input_dim());
  for (index_t l = 0; l < original_.num_layers(); ++l)
    require(original_.layer(l).factor_count() == 1, "JointCompressor: layer ", l + 1, " is factored (",
            original_.layer(l).factor_count(), " factors); joint strategies compress dense layers only");
}

JointCompressor::~JointCompressor() = default;
JointCompressor::JointCompressor(JointCompressor&&) noexcept = default;
JointCompressor& JointCompressor::operator=(JointCompressor&&) noexcept = default;

double JointCompressor::next_norm(index_t layer) {
  require(layer >= 0 && layer < original_.num_hidden(), "JointCompressor::next_norm: layer ", layer, " outside [0, ",
          original_.num_hidden(), ")");
  if (next_norm_values_.empty()) {
    // Computed on rank 0 and broadcast: every rank must resolve the same eps rules.
    std::vector<double> norms(uz(original_.num_hidden()), 0.0);
    const std::string error = dist::capture_error([&] {
      if (xc_.comm().rank() != 0) return;
      const la::ScopedBlasThreads single(1);
      for (index_t l = 0; l < original_.num_hidden(); ++l) norms[uz(l)] = la::norm2(original_.layer(l + 1).factor(0));
    });
    dist::check_collective(xc_.comm(), error);
    xc_.comm().bcast(std::span<double>(norms), 0);
    next_norm_values_ = std::move(norms);
  }
  return next_norm_values_[uz(layer)];
}

const Matrix& JointCompressor::original_activations(index_t layer) {
  if (const auto it = original_z_.find(layer); it != original_z_.end()) return it->second;
  Matrix z;
  const std::string error = dist::capture_error([&] {
    const la::ScopedBlasThreads single(1);
    if (layer == 0)
      original_.hidden(0).forward(xc_.local(), z);
    else
      original_.hidden(layer).forward(original_activations(layer - 1), z);
  });
  dist::check_collective(xc_.comm(), error);
  return original_z_.emplace(layer, std::move(z)).first->second;
}

void JointCompressor::clear_cache() {
  for (auto it = nodes_.begin(); it != nodes_.end();) it = it->first.empty() ? std::next(it) : nodes_.erase(it);
}

void JointCompressor::evict() {
  std::size_t total = 0;
  for (const auto& [key, node] : nodes_) total += node->bytes();
  if (total <= options_.cache_bytes) return;
  std::vector<std::pair<std::uint64_t, const std::vector<index_t>*>> order;
  for (const auto& [key, node] : nodes_)
    if (!key.empty() && node->used != clock_) order.emplace_back(node->used, &key);
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : *a.second < *b.second;
  });
  for (const auto& [used, key] : order) {
    if (total <= options_.cache_bytes) break;
    const auto it = nodes_.find(*key);
    total -= it->second->bytes();
    nodes_.erase(it);
  }
}

void JointCompressor::ensure_activations(std::span<Node* const> parents, index_t layer) {
  std::vector<Node*> todo;
  for (Node* p : parents) {
    if (p->original)
      (void)original_activations(layer);
    else if (p->z.empty())
      todo.push_back(p);
  }
  const auto t0 = Clock::now();
  const std::string error = tasks(todo.size(), [&](std::size_t i) { todo[i]->next.forward(todo[i]->h, todo[i]->z); });
  dist::check_collective(xc_.comm(), error);
  stats_.activation_seconds += seconds_since(t0);
}

void JointCompressor::ensure_factorizations(std::span<Node* const> parents, index_t layer) {
  std::vector<Node*> todo;
  for (Node* p : parents)
    if (!p->f) todo.push_back(p);
  if (todo.empty()) return;
  ensure_activations(todo, layer);
  const dist::Comm& comm = xc_.comm();
  const index_t n = original_.hidden(layer).d_out();
  const index_t m = xc_.global_rows();
  const la::CpqrOptions rule = complete_rule(m, n, options_.cpqr_method);
  const auto z_of = [&](const Node* p) -> const Matrix& { return p->original ? original_z_.at(layer) : p->z; };
  std::vector<la::CpqrResult> fs(todo.size());
  std::string error;
  if (comm.size() == 1) {
    // TSQR with one leaf: CPQR of R from an unpivoted QR picks Z's pivots (DESIGN.md identities).
    std::vector<Matrix> rs(todo.size());
    auto t0 = Clock::now();
    error = tasks(todo.size(), [&](std::size_t i) { rs[i] = dist::kernel::local_r(z_of(todo[i])); });
    dist::check_collective(comm, error);
    stats_.qr_seconds += seconds_since(t0);
    t0 = Clock::now();
    error = tasks(todo.size(), [&](std::size_t i) {
      fs[i] = la::cpqr(rs[i].block(0, 0, std::min(m, n), n), rule);
      rs[i] = Matrix();
    });
    dist::check_collective(comm, error);
    stats_.cpqr_seconds += seconds_since(t0);
  } else {
    auto t0 = Clock::now();
    // Flat TSQR: every rank's packed R of every node in one gather, combined on rank 0.
    std::vector<std::vector<double>> packed(todo.size());
    error = tasks(todo.size(),
                  [&](std::size_t i) { packed[i] = dist::kernel::pack_upper(dist::kernel::local_r(z_of(todo[i]))); });
    dist::check_collective(comm, error);
    std::vector<double> mine;
    for (const auto& p : packed) mine.insert(mine.end(), p.begin(), p.end());
    const std::vector<double> all = comm.gatherv(std::span<const double>(mine), 0);
    stats_.qr_seconds += seconds_since(t0);
    t0 = Clock::now();
    const std::size_t block = uz(n * (n + 1) / 2);
    error = dist::capture_error([&] {
      if (comm.rank() != 0) return;
      require(all.size() == block * todo.size() * uz(comm.size()), "JointCompressor: gathered ", all.size(),
              " values of R, expected ", block * todo.size() * uz(comm.size()));
      const std::string e = tasks(todo.size(), [&](std::size_t i) {
        Matrix r(n, n);
        Matrix r2(n, n);
        for (int p = 0; p < comm.size(); ++p) {
          const std::span<const double> part(all.data() + (uz(p) * todo.size() + i) * block, block);
          dist::kernel::unpack_upper(part, p == 0 ? r.view() : r2.view());
          if (p > 0) dist::kernel::combine_r(r.view(), r2.view());
        }
        fs[i] = la::cpqr(r.block(0, 0, std::min(m, n), n), rule);
      });
      require(e.empty(), e);
    });
    dist::check_collective(comm, error);
    const std::vector<index_t> cols(todo.size(), n);
    bcast_factorizations(comm, fs, cols);
    stats_.cpqr_seconds += seconds_since(t0);
  }
  for (std::size_t i = 0; i < todo.size(); ++i) todo[i]->f = std::move(fs[i]);
  stats_.factorizations += static_cast<std::int64_t>(todo.size());
}

std::vector<JointCompressor::Node*> JointCompressor::run(std::span<const PointPlan> plans,
                                                         std::vector<std::vector<Node*>>* path) {
  const index_t L = original_.num_hidden();
  for (std::size_t p = 0; p < plans.size(); ++p) {
    require(static_cast<index_t>(plans[p].layers.size()) == L, "JointCompressor: plan ", p, " has ",
            plans[p].layers.size(), " layer rules for a model with ", L, " hidden layers");
    for (const auto& r : plans[p].layers)
      if (r) check_rule(Strategy::greedy, *r);
  }
  (void)next_norm(0);
  ++clock_;
  const dist::Comm& comm = xc_.comm();
  const index_t m = xc_.global_rows();

  auto& root_slot = nodes_[std::vector<index_t>{}];
  if (!root_slot) {
    root_slot = std::make_unique<Node>();
    root_slot->next = original_.hidden(0);
    root_slot->first_columns.resize(uz(original_.hidden(0).d_out()));
    std::iota(root_slot->first_columns.begin(), root_slot->first_columns.end(), index_t{0});
  }
  Node* root = root_slot.get();
  root->used = clock_;

  std::vector<Node*> cur(plans.size(), root);
  std::vector<index_t> last(plans.size(), -1);
  index_t last_any = -1;
  for (std::size_t p = 0; p < plans.size(); ++p) {
    for (index_t l = 0; l < L; ++l)
      if (plans[p].layers[uz(l)]) last[p] = l;
    last_any = std::max(last_any, last[p]);
  }
  if (path != nullptr) path->assign(plans.size(), std::vector<Node*>(uz(L), nullptr));

  for (index_t l = 0; l <= last_any; ++l) {
    const index_t width = original_.hidden(l).d_out();
    std::vector<Node*> compressing;
    for (std::size_t p = 0; p < plans.size(); ++p)
      if (last[p] >= l && plans[p].layers[uz(l)] &&
          std::find(compressing.begin(), compressing.end(), cur[p]) == compressing.end())
        compressing.push_back(cur[p]);
    ensure_factorizations(compressing, l);

    // The kept count of every active plan: -1 leaves the layer as it is; 0 only when every neuron
    // is dead on the compression set (CPQR rank 0).
    std::vector<index_t> kept(plans.size(), -1);
    for (std::size_t p = 0; p < plans.size(); ++p) {
      if (last[p] < l || !plans[p].layers[uz(l)]) continue;
      const la::CpqrResult& f = *cur[p]->f;
      const la::CpqrOptions rule = cpqr_stopping_rule(*plans[p].layers[uz(l)], m, width, next_norm(l));
      kept[p] = f.rank == 0 ? 0 : std::max<index_t>(1, prefix_rank(f, rule));
      if (path != nullptr) (*path)[p][uz(l)] = cur[p];
    }

    struct Fresh {
      Node* parent = nullptr;
      index_t k = -1;
      std::vector<index_t> key;
      Selection selection;
      Matrix a;  ///< corrected: this rank's rows of Z_hat(:, C) (and a column of ones with an intercept)
      std::vector<double> shift;  ///< intercept: t, added to the next layer's inputs (1 x n)
      std::unique_ptr<Node> node;
    };
    std::vector<Fresh> fresh;
    for (std::size_t p = 0; p < plans.size(); ++p) {
      if (last[p] < l) continue;
      std::vector<index_t> key = cur[p]->key;
      key.push_back(kept[p]);
      if (const auto it = nodes_.find(key); it != nodes_.end()) {
        if (it->second->used != clock_) ++stats_.cache_hits;
        it->second->used = clock_;
        continue;
      }
      if (std::any_of(fresh.begin(), fresh.end(), [&](const Fresh& f) { return f.key == key; })) continue;
      fresh.push_back(Fresh{cur[p], kept[p], std::move(key), {}, {}, {}, {}});
    }

    if (!fresh.empty()) {
      std::vector<Node*> parents;
      for (const auto& f : fresh)
        if (std::find(parents.begin(), parents.end(), f.parent) == parents.end()) parents.push_back(f.parent);
      ensure_activations(parents, l);
      const auto z_of = [&](const Node* p) -> const Matrix& { return p->original ? original_z_.at(l) : p->z; };
      const bool corrected = options_.interpolation == Interpolation::corrected;
      const bool intercept = corrected && options_.intercept;

      auto t0 = Clock::now();
      // Selections. On an original parent Z_hat = Z_orig, and the ID's T is already the
      // least-squares fit (T(:, rest) = R11^{-1} R12 = argmin ||Z(:, rest) - Z(:, C) X||_F).
      std::string error = tasks(fresh.size(), [&](std::size_t i) {
        Fresh& c = fresh[i];
        if (c.k < 0) return;
        if (c.k == 0) {
          c.selection = dead_layer_selection(width);
          return;
        }
        const la::CpqrResult& f = *c.parent->f;
        if (!corrected || (c.parent->original && !intercept)) {
          c.selection = id_selection(f, c.k);
          return;
        }
        c.selection.kept.assign(f.pivots.begin(), f.pivots.begin() + c.k);
        std::sort(c.selection.kept.begin(), c.selection.kept.end());
        const Matrix& z = z_of(c.parent);
        if (!intercept) {
          c.a = la::select_columns(z, c.selection.kept);
          return;
        }
        c.a = Matrix(z.rows(), c.k + 1);
        c.a.block(0, 0, z.rows(), c.k).assign(la::select_columns(z, c.selection.kept));
        c.a.block(0, c.k, z.rows(), 1).fill(1.0);
      });
      dist::check_collective(comm, error);
      stats_.fold_seconds += seconds_since(t0);
      if (corrected) {
        t0 = Clock::now();
        const Matrix& target = original_activations(l);
        std::vector<LeastSquaresProblem> problems;
        std::vector<std::size_t> owners;
        for (std::size_t i = 0; i < fresh.size(); ++i)
          if (fresh[i].k > 0 && !fresh[i].a.empty()) {
            problems.push_back({fresh[i].a.view(), target.view()});
            owners.push_back(i);
          }
        std::vector<Matrix> ts = distributed_least_squares(comm, problems);
        for (std::size_t j = 0; j < owners.size(); ++j) {
          Fresh& c = fresh[owners[j]];
          if (intercept) {
            // [T; t]: the last row multiplies the column of ones.
            c.selection.interpolation = Matrix(ts[j].block(0, 0, c.k, ts[j].cols()));
            c.shift.assign(ts[j].cols(), 0.0);
            for (index_t i = 0; i < ts[j].cols(); ++i) c.shift[uz(i)] = ts[j](c.k, i);
          } else {
            c.selection.interpolation = std::move(ts[j]);
          }
          c.a = Matrix();
        }
        stats_.corrections += static_cast<std::int64_t>(problems.size());
        stats_.correction_seconds += seconds_since(t0);
      }
      t0 = Clock::now();

      // Child states: layer l as compressed, layer l + 1 with T folded in, and its inputs.
      const nn::DenseLayer& following = original_.layer(l + 1);
      error = tasks(fresh.size(), [&](std::size_t i) {
        Fresh& c = fresh[i];
        const Node& par = *c.parent;
        auto node = std::make_unique<Node>();
        node->key = c.key;
        node->used = clock_;
        node->layers = par.layers;
        node->outcomes = par.outcomes;
        const nn::DenseLayer& current = par.next;
        LayerOutcome o;
        o.width = width;
        if (c.k < 0) {
          node->original = par.original;
          node->layers.push_back(std::make_shared<const nn::DenseLayer>(current));
          node->next = following;
          if (!par.original && l + 1 < L) node->h = par.z;
          node->first_columns = par.first_columns;
          o.kept = width;
          o.rank = std::min(current.d_in(), width);
        } else {
          const Selection& s = c.selection;
          node->original = false;
          std::vector<double> bias;
          if (current.has_bias())
            for (index_t j : s.kept) bias.push_back(current.bias()[uz(j)]);
          node->layers.push_back(std::make_shared<const nn::DenseLayer>(la::select_columns(current.factor(0), s.kept),
                                                                        std::move(bias), current.activation()));
          std::vector<double> next_bias = following.bias();
          if (!c.shift.empty()) {
            // act(H T W + 1 t W + b): the intercept becomes part of the next layer's bias.
            next_bias.resize(uz(following.d_out()), 0.0);
            const Matrix tw = la::matmul(Matrix(la::ConstMatrixView(c.shift.data(), 1, width)), following.factor(0));
            for (index_t j = 0; j < following.d_out(); ++j) next_bias[uz(j)] += tw(0, j);
          }
          node->next = nn::DenseLayer(la::matmul(s.interpolation, following.factor(0)), std::move(next_bias),
                                      following.activation());
          if (l + 1 < L) node->h = la::select_columns(z_of(&par), s.kept);
          node->first_columns = l == 0 ? s.kept : par.first_columns;
          const la::CpqrResult& f = *par.f;
          o.compressed = true;
          o.kept = static_cast<index_t>(s.kept.size());
          o.rank = std::min(current.d_in(), o.kept);
          const double next = c.k < f.rank ? f.diag[uz(c.k)] : f.next_diag;
          o.next_ratio = f.rank > 0 && f.diag.front() > 0.0 ? next / f.diag.front() : 0.0;
        }
        node->outcomes.push_back(o);
        c.node = std::move(node);
      });
      dist::check_collective(comm, error);
      for (auto& c : fresh) nodes_.emplace(c.key, std::move(c.node));
      stats_.fold_seconds += seconds_since(t0);
    }

    for (std::size_t p = 0; p < plans.size(); ++p) {
      if (last[p] < l) continue;
      std::vector<index_t> key = cur[p]->key;
      key.push_back(kept[p]);
      cur[p] = nodes_.at(key).get();
    }
    // Activations are transient: a node keeps only its inputs h.
    for (auto& [key, node] : nodes_)
      if (static_cast<index_t>(key.size()) == l) node->z = Matrix();
  }

  std::vector<Node*> leaves(plans.size(), nullptr);
  for (std::size_t p = 0; p < plans.size(); ++p)
    if (last[p] >= 0) leaves[p] = cur[p];
  evict();
  return leaves;
}

CompressedModel JointCompressor::assemble(const Node* leaf) const {
  const index_t L = original_.num_hidden();
  CompressedModel out;
  std::vector<nn::DenseLayer> hidden;
  std::vector<LayerOutcome> outcomes;
  index_t depth = 0;
  if (leaf != nullptr) {
    depth = leaf->depth();
    for (const auto& layer : leaf->layers) hidden.push_back(*layer);
    outcomes = leaf->outcomes;
  }
  nn::DenseLayer classifier = original_.classifier();
  for (index_t l = depth; l < L; ++l)
    hidden.push_back(l == depth && leaf != nullptr ? leaf->next : original_.hidden(l));
  if (leaf != nullptr && depth == L) classifier = leaf->next;
  for (index_t l = depth; l < L; ++l) {
    LayerOutcome o;
    o.width = original_.hidden(l).d_out();
    o.kept = o.width;
    o.rank = std::min(hidden[uz(l)].d_in(), o.width);
    outcomes.push_back(o);
  }
  out.model = nn::Mlp(std::move(hidden), std::move(classifier), original_.metadata());
  out.layers = std::move(outcomes);
  if (leaf != nullptr) {
    out.first_layer_columns = leaf->first_columns;
  } else {
    out.first_layer_columns.resize(uz(original_.hidden(0).d_out()));
    std::iota(out.first_layer_columns.begin(), out.first_layer_columns.end(), index_t{0});
  }
  return out;
}

std::vector<CompressedModel> JointCompressor::compress(std::span<const PointPlan> plans) {
  const auto t0 = Clock::now();
  const std::vector<Node*> leaves = run(plans, nullptr);
  std::vector<CompressedModel> out(plans.size());
  const std::string error = tasks(plans.size(), [&](std::size_t p) {
    out[p] = assemble(leaves[p]);
    for (index_t l = 0; l < original_.num_hidden(); ++l) {
      const auto& r = plans[p].layers[uz(l)];
      if (r && r->rule == RankRule::eps) {
        const double norm = next_norm_values_[uz(l)];
        out[p].layers[uz(l)].rel_tol = norm > 0.0 ? r->value / norm : 1.0;
      }
    }
  });
  dist::check_collective(xc_.comm(), error);
  stats_.models += static_cast<std::int64_t>(plans.size());
  stats_.seconds += seconds_since(t0);
  return out;
}

std::vector<std::vector<la::CpqrResult>> JointCompressor::factorizations(std::span<const PointPlan> plans) {
  const auto t0 = Clock::now();
  std::vector<std::vector<Node*>> path;
  (void)run(plans, &path);
  std::vector<std::vector<la::CpqrResult>> out(plans.size());
  for (std::size_t p = 0; p < plans.size(); ++p)
    for (Node* node : path[p]) out[p].push_back(node != nullptr ? *node->f : la::CpqrResult{});
  stats_.seconds += seconds_since(t0);
  return out;
}

std::vector<Matrix> distributed_least_squares(const dist::Comm& comm, std::span<const LeastSquaresProblem> problems) {
  const std::size_t np = problems.size();
  std::vector<Matrix> blocks(np);
  std::string error =
      tasks(np, [&](std::size_t i) { blocks[i] = local_least_squares_block(problems[i].a, problems[i].y); });
  dist::check_collective(comm, error);
  std::vector<Matrix> out(np);
  if (comm.size() == 1) {
    error = tasks(np, [&](std::size_t i) {
      out[i] = solve_stacked(std::move(blocks[i]), problems[i].a.cols(), problems[i].y.cols(), true);
    });
    dist::check_collective(comm, error);
    return out;
  }
  // One gather of every block: per problem its row count, k and n, then its values.
  std::vector<double> mine;
  for (std::size_t i = 0; i < np; ++i) {
    mine.push_back(static_cast<double>(blocks[i].rows()));
    mine.push_back(static_cast<double>(problems[i].a.cols()));
    mine.push_back(static_cast<double>(problems[i].y.cols()));
    mine.insert(mine.end(), blocks[i].values().begin(), blocks[i].values().end());
  }
  const std::vector<double> all = comm.gatherv(std::span<const double>(mine), 0);
  std::vector<index_t> shape(2 * np);
  for (std::size_t i = 0; i < np; ++i) {
    shape[2 * i] = problems[i].a.cols();
    shape[2 * i + 1] = problems[i].y.cols();
  }
  error = dist::capture_error([&] {
    if (comm.rank() != 0) return;
    std::vector<std::vector<std::pair<std::size_t, index_t>>> parts(np);  // (offset, rows) per rank
    std::size_t pos = 0;
    for (int p = 0; p < comm.size(); ++p)
      for (std::size_t i = 0; i < np; ++i) {
        require(pos + 3 <= all.size(), "distributed_least_squares: truncated gather");
        const auto rows = static_cast<index_t>(all[pos]);
        const auto k = static_cast<index_t>(all[pos + 1]);
        const auto n = static_cast<index_t>(all[pos + 2]);
        require(k == shape[2 * i] && n == shape[2 * i + 1], "distributed_least_squares: problem ", i, " is ", k, " x ",
                n, " on rank ", p, " but ", shape[2 * i], " x ", shape[2 * i + 1], " on rank 0");
        parts[i].emplace_back(pos + 3, rows);
        pos += 3 + uz(rows * (k + n));
      }
    const std::string e = tasks(np, [&](std::size_t i) {
      const index_t k = shape[2 * i];
      const index_t n = shape[2 * i + 1];
      index_t total = 0;
      for (const auto& [off, rows] : parts[i]) total += rows;
      Matrix stack(total, k + n);
      index_t row = 0;
      for (const auto& [off, rows] : parts[i]) {
        const la::ConstMatrixView b(all.data() + off, rows, k + n);
        stack.block(row, 0, rows, k + n).assign(b);
        row += rows;
      }
      out[i] = solve_stacked(std::move(stack), k, n, false);
    });
    require(e.empty(), e);
  });
  dist::check_collective(comm, error);
  std::size_t total = 0;
  for (std::size_t i = 0; i < np; ++i) total += uz(shape[2 * i] * shape[2 * i + 1]);
  std::vector<double> values;
  values.reserve(total);
  if (comm.rank() == 0)
    for (const auto& t : out) values.insert(values.end(), t.values().begin(), t.values().end());
  else
    values.resize(total);
  comm.bcast(std::span<double>(values), 0);
  if (comm.rank() != 0) {
    std::size_t pos = 0;
    for (std::size_t i = 0; i < np; ++i) {
      out[i] = Matrix(shape[2 * i], shape[2 * i + 1]);
      std::copy(values.begin() + static_cast<std::ptrdiff_t>(pos),
                values.begin() + static_cast<std::ptrdiff_t>(pos + uz(out[i].size())), out[i].values().begin());
      pos += uz(out[i].size());
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Validation scoring

ValidationScorer::ValidationScorer(const nn::Mlp& original, Matrix x, std::vector<int> labels, dist::Comm comm,
                                   index_t batch_rows)
    : x_(std::move(x)), labels_(std::move(labels)), comm_(std::move(comm)), batch_rows_(batch_rows) {
  std::string error = dist::capture_error([&] {
    require(batch_rows_ >= 1, "ValidationScorer: batch_rows=", batch_rows_, " < 1");
    require(original.num_hidden() >= 1, "ValidationScorer: the model has no hidden layer");
    require(x_.cols() == original.input_dim(), "ValidationScorer: the validation set has ", x_.cols(),
            " features, the model expects ", original.input_dim());
    require(static_cast<index_t>(labels_.size()) == x_.rows(), "ValidationScorer: ", labels_.size(), " labels for ",
            x_.rows(), " samples");
    for (int y : labels_)
      require(y >= 0 && y < original.num_classes(), "ValidationScorer: label ", y, " outside [0, ",
              original.num_classes(), ")");
    const la::ScopedBlasThreads single(1);
    first_hidden_ = original.hidden_activations(x_, 0);
    // The original's predictions (reference for agreement).
    reference_ = original.predict(x_, batch_rows_);
  });
  dist::check_collective(comm_, error);
  CompressedModel reference;
  reference.model = original;
  reference.first_layer_columns.resize(uz(first_hidden_.cols()));
  std::iota(reference.first_layer_columns.begin(), reference.first_layer_columns.end(), index_t{0});
  original_ = score(std::span<const CompressedModel>(&reference, 1)).front();
}

ValidationScorer::Partial ValidationScorer::batch(const CompressedModel& m, std::size_t b) const {
  const index_t begin = static_cast<index_t>(b) * batch_rows_;
  const index_t count = std::min(batch_rows_, x_.rows() - begin);
  Matrix logits;
  if (m.first_layer_columns.empty()) {
    logits = m.model.logits(x_.view().rows_range(begin, count));
  } else {
    const la::ConstMatrixView h = first_hidden_.view().rows_range(begin, count);
    const bool all = static_cast<index_t>(m.first_layer_columns.size()) == first_hidden_.cols();
    logits = all ? m.model.logits_from_hidden(h, 0)
                 : m.model.logits_from_hidden(la::select_columns(h, m.first_layer_columns), 0);
  }
  Partial out;
  const std::vector<int> pred = nn::argmax_rows(logits);
  for (index_t i = 0; i < count; ++i) {
    const std::size_t row = uz(begin + i);
    double mx = -std::numeric_limits<double>::infinity();
    for (index_t c = 0; c < logits.cols(); ++c) mx = std::max(mx, logits(i, c));
    double sum = 0.0;
    for (index_t c = 0; c < logits.cols(); ++c) sum += std::exp(logits(i, c) - mx);
    out.loss += mx + std::log(sum) - logits(i, labels_[row]);
    out.correct += pred[uz(i)] == labels_[row] ? 1 : 0;
    if (!reference_.empty()) out.agree += pred[uz(i)] == reference_[row] ? 1 : 0;
  }
  return out;
}

std::vector<ValidationScores> ValidationScorer::score(std::span<const CompressedModel> models) const {
  const std::size_t batches = uz((x_.rows() + batch_rows_ - 1) / batch_rows_);
  std::vector<Partial> parts(models.size() * batches);
  const std::string error =
      tasks(parts.size(), [&](std::size_t t) { parts[t] = batch(models[t / batches], t % batches); });
  dist::check_collective(comm_, error);
  // Per model (correct, agree, samples) and the loss sum, in batch order (deterministic).
  std::vector<std::int64_t> counts(3 * models.size(), 0);
  std::vector<double> loss(models.size(), 0.0);
  for (std::size_t t = 0; t < parts.size(); ++t) {
    counts[3 * (t / batches)] += parts[t].correct;
    counts[3 * (t / batches) + 1] += parts[t].agree;
    loss[t / batches] += parts[t].loss;
  }
  for (std::size_t m = 0; m < models.size(); ++m) counts[3 * m + 2] = x_.rows();
  comm_.allreduce_sum(std::span<std::int64_t>(counts));
  comm_.allreduce_sum(std::span<double>(loss));
  std::vector<ValidationScores> out(models.size());
  for (std::size_t m = 0; m < models.size(); ++m) {
    ValidationScores& s = out[m];
    s.correct = counts[3 * m];
    s.samples = counts[3 * m + 2];
    const double n = s.samples > 0 ? static_cast<double>(s.samples) : 1.0;
    s.accuracy = static_cast<double>(s.correct) / n;
    s.agreement = static_cast<double>(counts[3 * m + 1]) / n;
    s.cross_entropy = loss[m] / n;
  }
  return out;
}

}  // namespace idprune::compress
