#pragma once
// Joint multi-layer compression (issue 6; the reference text's Goal 8): the machinery every joint
// strategy shares.
//
// JointCompressor compresses a model under many per-layer plans at once, like Compressor, but
//   - caches the state after each compressed layer in a PREFIX TREE keyed by the kept counts of
//     the layers before it (k_1, ..., k_l): a search that tries many plans differing in one layer
//     recomputes only the layers after it;
//   - factorizes every node's activations completely (all CPQR steps up to the numerical rank,
//     which the tolerance-free CPQR reaches at a zero diagonal), so a model depends only on its
//     plan, never on the batch it was computed in, and every node's diagonal is available for
//     allocation rules;
//   - offers the CORRECTED interpolation: after choosing the columns C of layer l from the
//     compressed network's activations Z_hat, T solves
//         T = argmin ||Z_orig - Z_hat(:, C) T||_F
//     against the ORIGINAL network's activations of that layer (on the compression set), so the
//     compressed network is pulled back to the original one at every layer and errors do not
//     accumulate. On the first compressed layer (Z_hat = Z_orig) it equals the ID's T, which is
//     the least-squares fit of Z by Z(:, C). W_{l+1} <- T W_{l+1} is then also the least-squares
//     fit of the original pre-activation Z_orig W_{l+1} (the minimiser commutes with a right factor).
//
// Parallel model (DESIGN.md): MPI ranks own rows of the compression set. Local work (activations,
// local QR factors, selections, folds) runs as TBB tasks over the nodes of a level with BLAS
// single-threaded inside; the collective steps are batched over all nodes of a level: one gather
// of the local R factors (TSQR with a flat tree: rank 0 stacks and re-factors them) and one
// broadcast of all factorizations; one gather of the least-squares blocks [R_p, Q_p^T Y_p] and one
// broadcast of all corrected T. Only O(n^2) values per node and rank cross the network, whatever
// the number of rows. BLAS never runs multi-threaded here, so results are bit-identical for any
// number of TBB threads (and agree to rounding across rank counts).
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "idprune/compress/compressor.hpp"
#include "idprune/dist/comm.hpp"
#include "idprune/dist/dist_matrix.hpp"
#include "idprune/la/cpqr.hpp"
#include "idprune/nn/mlp.hpp"

namespace idprune::compress {

/// How a compressed layer's interpolation matrix T is formed once its columns C are chosen.
enum class Interpolation {
  id,         ///< T = [I, R11^{-1} R12] P^T of the CPQR of the compressed network's activations
  corrected,  ///< T = argmin ||Z_orig - Z_hat(:, C) T||_F (the original network's activations)
};

[[nodiscard]] std::string_view to_string(Interpolation interpolation);

struct JointOptions {
  Interpolation interpolation = Interpolation::id;
  /// Corrected interpolation only: fit Z_orig by [Z_hat(:, C), 1] [T; t] (an intercept), and give
  /// the next layer the bias t W_{l+1} (its width in parameters): the mean of what the dropped
  /// neurons carried is kept. Applies to the first compressed layer too.
  bool intercept = false;
  la::CpqrMethod cpqr_method = la::CpqrMethod::blocked;  ///< local CPQR of the stacked R factor
  /// Cached nodes are dropped, least recently used first, when their matrices exceed this many
  /// bytes on a rank (nodes of the call in progress are never dropped).
  std::size_t cache_bytes = std::size_t{768} << 20;
};

/// Statistics of a JointCompressor (this rank, accumulated over calls).
struct JointStats {
  std::int64_t factorizations = 0;  ///< node CPQRs computed
  std::int64_t corrections = 0;     ///< least-squares T computed
  std::int64_t cache_hits = 0;      ///< nodes reused
  std::int64_t models = 0;          ///< models assembled
  double seconds = 0.0;             ///< in compress() and factorizations()
  double activation_seconds = 0.0;  ///< forming Z_hat = act(H W + b)
  double qr_seconds = 0.0;          ///< local R factors (and their combination)
  double cpqr_seconds = 0.0;        ///< CPQR of the R factors
  double correction_seconds = 0.0;  ///< least-squares T
  double fold_seconds = 0.0;        ///< selections, folds, child states
};

/// Parameters of `original` with hidden widths `kept` (every layer a single dense factor, its bias
/// kept if it has one): sum_l k_{l-1} k_l (+ k_l) + k_L classes (+ classes), k_0 = input width.
/// `intercepts`: every layer after the first (and the classifier) has a bias (JointOptions::intercept
/// with every hidden layer compressed).
[[nodiscard]] std::int64_t parameter_count_with_widths(const nn::Mlp& original, std::span<const index_t> kept,
                                                       bool intercepts = false);

/// Plan keeping k[l] neurons in every hidden layer (a k rule per layer).
[[nodiscard]] PointPlan kept_plan(std::span<const index_t> kept);

class JointCompressor {
 public:
  /// `compression_set`: this rank's rows of Xc. Every hidden layer of `original` must be a single
  /// dense factor (a trained model, not an svd-compressed one). Not collective.
  JointCompressor(nn::Mlp original, dist::DistMatrix compression_set, JointOptions options = {});
  ~JointCompressor();
  JointCompressor(JointCompressor&&) noexcept;
  JointCompressor& operator=(JointCompressor&&) noexcept;
  JointCompressor(const JointCompressor&) = delete;
  JointCompressor& operator=(const JointCompressor&) = delete;

  [[nodiscard]] const nn::Mlp& original() const { return original_; }
  [[nodiscard]] const JointOptions& options() const { return options_; }
  [[nodiscard]] const JointStats& stats() const { return stats_; }
  [[nodiscard]] index_t compression_rows() const { return xc_.global_rows(); }

  /// Collective: one compressed model per plan (rules eps, k or fraction per hidden layer; a layer
  /// without a rule is left as it is). The eps rule reads |r_{k+1,k+1}| / |r_11| <= eps / ||W_{l+1}||_2
  /// on the compressed network's activations, as the greedy strategy does.
  [[nodiscard]] std::vector<CompressedModel> compress(std::span<const PointPlan> plans);

  /// Collective: for each plan, the CPQR of the activations its network feeds into the selection
  /// of every hidden layer it compresses (the original network's at the first one; empty results
  /// for layers it leaves as they are). The factorizations are complete (every step up to the
  /// numerical rank). Computes what is missing, like compress().
  [[nodiscard]] std::vector<std::vector<la::CpqrResult>> factorizations(std::span<const PointPlan> plans);

  /// ||W_{l+1}||_2 of the original network (the classifier for the last hidden layer); cached,
  /// computed on rank 0 and broadcast (collective on first use).
  double next_norm(index_t layer);

  /// Drops every cached node except the root.
  void clear_cache();

 private:
  struct Node;

  /// Runs the plans through the prefix tree; returns each plan's node after its last compressed
  /// layer (nullptr when it compresses none) and records the node at every layer in `path`.
  std::vector<Node*> run(std::span<const PointPlan> plans, std::vector<std::vector<Node*>>* path);
  void ensure_factorizations(std::span<Node* const> parents, index_t layer);
  void ensure_activations(std::span<Node* const> parents, index_t layer);
  const la::Matrix& original_activations(index_t layer);
  [[nodiscard]] CompressedModel assemble(const Node* leaf) const;
  void evict();

  nn::Mlp original_;
  dist::DistMatrix xc_;
  JointOptions options_;
  JointStats stats_;
  std::map<index_t, la::Matrix> original_z_;  ///< this rank's rows of the original activations
  std::map<std::vector<index_t>, std::unique_ptr<Node>> nodes_;
  std::vector<double> next_norm_values_;  ///< ||W_{l+1}||_2 per hidden layer, once computed
  std::uint64_t clock_ = 0;
};

/// Collective: T = argmin ||Y - A T||_F for row-distributed A (m x k, this rank's rows in `a`) and Y
/// (m x n, rows in `y`), m = the global row count >= k: each rank QR-factors its A_p = Q_p R_p and
/// forms Q_p^T Y_p; rank 0 stacks the blocks [R_p, Q_p^T Y_p] (min(m_p, k) rows each), QR-factors
/// the stacked R part and applies its Q^T to the rest, giving R11 and R12 = Q1^T Y; T = R11^{-1} R12
/// (the minimum-norm solution through an SVD of R11 when R11 is numerically singular). Broadcast.
/// Batched: many problems (same comm) in one gather and one broadcast.
struct LeastSquaresProblem {
  la::ConstMatrixView a;
  la::ConstMatrixView y;
};
[[nodiscard]] std::vector<la::Matrix> distributed_least_squares(const dist::Comm& comm,
                                                                std::span<const LeastSquaresProblem> problems);

/// Validation metrics of one model (sums over every rank's rows).
struct ValidationScores {
  double accuracy = 0.0;       ///< predictions equal to the label
  double cross_entropy = 0.0;  ///< mean -log softmax(logits)_label
  double agreement = 0.0;      ///< predictions equal to the original model's
  std::int64_t correct = 0;
  std::int64_t samples = 0;
};

/// Scores models on a held-out VALIDATION set (rows of the training images, never the test set).
/// TBB tasks over (model, batch of rows) with single-threaded BLAS; one allreduce for every model.
/// The original model's first-layer activations are computed once and shared by every model whose
/// first layer is W_1(:, C) (CompressedModel::first_layer_columns).
class ValidationScorer {
 public:
  /// Collective. `x`, `labels`: this rank's rows of the validation set.
  ValidationScorer(const nn::Mlp& original, la::Matrix x, std::vector<int> labels, dist::Comm comm,
                   index_t batch_rows = 500);

  [[nodiscard]] const ValidationScores& original_scores() const { return original_; }
  [[nodiscard]] std::int64_t samples() const { return original_.samples; }
  [[nodiscard]] const dist::Comm& comm() const { return comm_; }

  /// Collective: the scores of every model.
  [[nodiscard]] std::vector<ValidationScores> score(std::span<const CompressedModel> models) const;

 private:
  struct Partial {
    std::int64_t correct = 0;
    std::int64_t agree = 0;
    double loss = 0.0;
  };
  [[nodiscard]] Partial batch(const CompressedModel& model, std::size_t b) const;

  la::Matrix x_;
  std::vector<int> labels_;
  dist::Comm comm_;
  index_t batch_rows_;
  la::Matrix first_hidden_;
  std::vector<int> reference_;
  ValidationScores original_;
};

}  // namespace idprune::compress
