#pragma once
// Whole-model compression of many points at once (a "point" = one compressed model, e.g. one eps of
// a grid), in LOCKSTEP, layer by layer (DESIGN.md, "Parallel model"):
//
//   for each hidden layer l:
//     (a) TBB tasks compute each group's activations Z = act(H W_l + b_l) on this rank's rows of the
//         compression set, and, for the tsqr and gram engines, their local R factor Z_p = Q_p R_p
//         (the O(m n^2) part of the factorization; CPQR of [R_0; R_1; ...] selects what CPQR of Z
//         selects, and R^T R = Z^T Z). A GROUP is a set of points whose networks agree up to layer
//         l, hence share Z; at the first compressed layer every point shares the original network's
//         activations (computed once, with threaded BLAS, by prepare()).
//     (b) the calling thread runs the collective pivot engine once per group, with the loosest
//         stopping rule among its points; each point's rank follows from the diagonal of R by the
//         prefix property (prefix_rank);
//     (c) TBB tasks form each distinct selection (C, T) and apply it to its points' models.
//   Points of a group that keep the same number of neurons stay one group at the next layer.
//   OpenBLAS is single-threaded throughout (a)-(c): parallelism is TBB's alone, so idle OpenBLAS
//   threads never spin beside busy TBB workers.
//
// MPI is called only from the calling thread, never from a TBB task (MPI_THREAD_FUNNELED). Every
// rank must call compress() with the same plans. Results do not depend on the number of ranks or
// threads (to rounding: pivots agree unless columns tie) nor on how points are batched: a CPQR
// stopped later has the same leading rows, and prepare() fixes the factorization every point shares.
//
// Dead layers: a layer whose activations are zero on the whole compression set (every neuron dead;
// CPQR rank 0) keeps ONE neuron (neuron 0 under greedy) with T = 0 folded into the next layer
// (dead_layer_selection): shapes stay valid (no zero-width layer), the next layer sees exactly the
// zero it saw before, and a layer dead on every input gives exactly the original predictions (one
// dead only on the compression set is treated as dead everywhere: the data showed nothing else).
// Its LayerOutcome reports kept = 1 and next_ratio = 0. random keeps one random neuron with the
// least-squares T = 0, magnitude its usual neurons (dead all the same).
// Non-finite input: the first prepare()/compress() checks, collectively and once, that the model's
// parameters and the compression set are finite; otherwise every rank throws the same
// CollectiveError naming the layer, tensor and index (or the global row and column) of the first
// NaN/Inf, before any work.
//
// Strategies: greedy and random follow the scheme above (random: seeded columns and a least-squares
// T instead of the CPQR prefix); magnitude needs no data (its eps rule first runs greedy to learn the
// per-layer counts greedy would keep, then keeps that many neurons per layer: equal sizes); svd
// needs no data either (one SVD per layer, cached across calls).
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "idprune/compress/layer.hpp"
#include "idprune/compress/rules.hpp"
#include "idprune/dist/dist_matrix.hpp"
#include "idprune/dist/pivot.hpp"
#include "idprune/nn/mlp.hpp"

namespace idprune::compress {

struct CompressionOptions {
  Strategy strategy = Strategy::greedy;
  la::CpqrMethod cpqr_method = la::CpqrMethod::blocked;  ///< local CPQR inside the engines that use one
  dist::EngineOptions engine;                            ///< pivot engine (tsqr by default)
  std::uint64_t seed = 1;                                ///< the random strategy's column draws
};

/// One model to produce: the rule of each hidden layer (std::nullopt: that layer is left as it is).
struct PointPlan {
  std::vector<std::optional<LayerRule>> layers;
};

/// `rule` on the given hidden layers (0-based; empty means all) of a model with `num_hidden` layers.
[[nodiscard]] PointPlan uniform_plan(index_t num_hidden, std::span<const index_t> layers, const LayerRule& rule);

/// What happened to one hidden layer.
struct LayerOutcome {
  bool compressed = false;
  index_t width = 0;   ///< neurons before
  index_t kept = 0;    ///< neurons after (= width when not compressed, and for svd)
  index_t rank = 0;    ///< svd: r; otherwise min(kept, d_in) of the layer's weight
  double rel_tol = 0;  ///< eps rule: eps / ||W_{l+1}||_2 (0 for other rules)
  /// CPQR strategies: |r_{k+1,k+1}| / |r_11| at the chosen k (0 when k is the full rank).
  double next_ratio = 0;
  /// The neurons the compressed layer keeps, ascending, as indices of the ORIGINAL layer's neurons
  /// (columns of the original W_l): the selection's C. A fold only changes the rows of the next
  /// layer, never a layer's columns, so C is in the original numbering at every depth. All of
  /// 0..width-1 when the layer is not compressed, and for svd (which keeps every neuron).
  std::vector<index_t> kept_neurons;
};

struct CompressedModel {
  nn::Mlp model;
  std::vector<LayerOutcome> layers;  ///< one per hidden layer
  /// The first hidden layer of `model` is the original W_1(:, C), b_1(C) with C = these columns
  /// (all of them when it was not compressed): its activations are columns of the original's, which
  /// lets an evaluation share that product among models. Empty when this does not hold (svd).
  std::vector<index_t> first_layer_columns;
  /// Set when the first layer was compressed by an ID and the second hidden layer of `model` is
  /// (T_1 W_2)(:, C_2), b_2(C_2): T_1 (k_1 x n_1, T_1(:, C_1) = I; shared by the points of a group)
  /// and C_2 (all of W_2's columns when the second layer was not compressed), with W_2, b_2 the
  /// original's. Then Z_1(:, C_1) T_1 W_2 = Z_1 W_2 - E W_2(F, :), E = Z_1(:, F) - Z_1(:, C_1) T_1(:, F)
  /// (F: the n_1 - k_1 other neurons), which lets an evaluation start from the original network's
  /// shared product Z_1 W_2 (Evaluator). Empty/null otherwise.
  std::shared_ptr<const la::Matrix> first_interpolation;
  std::vector<index_t> second_layer_columns;
};

/// Where the time of compress() calls went (accumulated over calls; this rank).
struct CompressionStats {
  double activation_seconds = 0.0;     ///< (a)
  double factorization_seconds = 0.0;  ///< (b), including the collective engine calls
  double apply_seconds = 0.0;          ///< (c)
  std::int64_t factorizations = 0;     ///< engine calls
  std::uint64_t bytes_sent = 0;        ///< by the engines (this rank)
};

class Compressor {
 public:
  /// `compression_set`: the row-distributed compression set Xc (this rank's rows). Not collective.
  /// Throws idprune::Error if the model has no hidden layer or Xc's width is not the input width.
  /// NaN/Inf in the model or in Xc is reported by the first (collective) prepare() or compress().
  Compressor(nn::Mlp original, dist::DistMatrix compression_set, CompressionOptions options);

  [[nodiscard]] const nn::Mlp& original() const { return original_; }
  [[nodiscard]] const CompressionOptions& options() const { return options_; }
  [[nodiscard]] const CompressionStats& stats() const { return stats_; }

  /// Collective: factorizes, with the loosest rule of all `points`, the activations every point
  /// shares (the original network's, at the first layer a point compresses), so that later
  /// compress() calls on any subset of the points give the same models whatever the batching.
  void prepare(std::span<const PointPlan> points);

  /// Collective: one compressed model per plan. Rules are checked against the strategy first.
  [[nodiscard]] std::vector<CompressedModel> compress(std::span<const PointPlan> points);

 private:
  struct Factorization {
    la::CpqrOptions options;
    la::CpqrResult f;
  };

  std::vector<CompressedModel> compress_by_data(std::span<const PointPlan> points, Strategy strategy);
  std::vector<CompressedModel> compress_magnitude(std::span<const PointPlan> points);
  std::vector<CompressedModel> compress_svd(std::span<const PointPlan> points);
  /// Plans with every eps rule replaced by the k greedy selects there (magnitude/random at equal size).
  std::vector<PointPlan> matched_plans(std::span<const PointPlan> points);
  [[nodiscard]] std::vector<CompressedModel> fresh_models(std::size_t count) const;
  void check_plans(std::span<const PointPlan> points) const;
  /// Collective, once (the first prepare()): the model's parameters and the compression set must be
  /// finite; a NaN/Inf is one clear error on every rank naming where it is, before any work.
  void check_inputs();

  /// ||W_{l+1}||_2 of the original network (cached).
  double next_norm(index_t layer);
  /// The original network's activations at hidden layer `layer` on this rank's rows (cached).
  const la::Matrix& original_activations(index_t layer);
  /// The CPQR stopping rules of the points of a group at `layer`, and their loosest combination
  /// (at least one step, so that every layer keeps a neuron).
  la::CpqrOptions point_rule(const LayerRule& rule, index_t layer);
  /// Collective: CPQR with `rule` of the activations whose engine input is `block` (engine_block),
  /// reusing (or filling) the cache for the original network.
  la::CpqrResult factorize(const la::Matrix& block, const la::CpqrOptions& rule, index_t layer, bool original);
  /// The cached factorization of the original network's activations at `layer` when it covers
  /// `rule` (nullptr otherwise).
  [[nodiscard]] const la::CpqrResult* cached_factorization(index_t layer, const la::CpqrOptions& rule) const;
  /// Collective: factorize() of several blocks in one dist::distributed_cpqr_batch (their local
  /// CPQRs run in parallel); original[i] != 0 marks the original network's (cached as factorize).
  std::vector<la::CpqrResult> factorize_batch(std::span<const la::Matrix* const> blocks,
                                              std::span<const la::CpqrOptions> rules, index_t layer,
                                              std::span<const char> original);
  [[nodiscard]] dist::DistMatrix distributed(la::Matrix local) const;
  /// True for the engines whose result depends on Z only through its R factor (tsqr) or its Gram
  /// matrix Z^T Z = R^T R (gram): each rank may hand them its local R_p (Z_p = Q_p R_p) instead of Z_p.
  [[nodiscard]] bool prereduces() const;
  /// This rank's engine input for local activations z: its R factor (n x n, dgeqrf) when
  /// prereduces(), else z itself. Local, no MPI: runs in TBB tasks.
  [[nodiscard]] la::Matrix engine_block(const la::Matrix& z) const;
  /// The distributed matrix the engine factorizes: the stacked R_p (rank r's at rows r n ..) or Z.
  [[nodiscard]] dist::DistMatrix engine_input(la::Matrix block) const;
  /// engine_block of original_activations(layer) (cached).
  const la::Matrix& original_block(index_t layer);

  nn::Mlp original_;
  dist::DistMatrix xc_;
  CompressionOptions options_;
  CompressionStats stats_;
  std::map<index_t, double> next_norms_;
  std::map<index_t, la::Matrix> original_z_;
  std::map<index_t, la::Matrix> original_blocks_;
  std::map<index_t, Factorization> original_f_;
  std::map<index_t, la::Svd> svds_;
  bool inputs_checked_ = false;
};

/// Collective convenience for one model: the greedy (or any) strategy with `rule` on `layers`.
[[nodiscard]] CompressedModel compress_model(const nn::Mlp& model, const dist::DistMatrix& compression_set,
                                             const LayerRule& rule, std::span<const index_t> layers = {},
                                             const CompressionOptions& options = {});

}  // namespace idprune::compress
