#pragma once
// The compression engine: compresses a model under many per-layer plans at once, each plan with a
// selection policy (policy.hpp), and shares every computation plans have in common.
//
// Plans are run through a PREFIX TREE: a node is the compressed network after its first l hidden
// layers, keyed by (policy, kept count) of each of them. Plans that agree on layers 0..l-1 share
// the node, hence its activations and their factorization; a search that tries many plans
// differing in one layer recomputes only the layers after it (nodes are cached, least recently
// used dropped beyond a byte limit). The tree is processed level by level (DESIGN.md, "Parallel
// model"): at layer l,
//   (a) TBB tasks compute each node's activations Z = act(H W_l + b_l) on this rank's rows and,
//       for the tsqr and gram pivot engines, their local R factor (the O(m n^2) part);
//   (b) the calling thread runs the collective steps, batched over the level's nodes: one
//       dist::distributed_cpqr_batch of every factorization a policy needs, one
//       dist::least_squares of every least-squares T;
//       Activation moments a policy asks for (needs_moments) are summed as TBB tasks over fixed
//       row blocks and reduced in ONE dist::sum_in_place per level;
//   (c) TBB tasks form the selections and the child nodes (layer l compressed, T folded into l+1).
// A node's CPQR runs as many steps as the loosest rule of the plans through it (or every step up to
// the numerical rank with `complete_factorizations`); by the prefix property of CPQR a rule's
// rank is read from any factorization that covers it. prepare() fixes the original network's
// factorizations for a whole study, so results never depend on how plans are batched.
//
// MPI is called only from the calling thread (MPI_THREAD_FUNNELED); BLAS is single-threaded in
// every task, so results do not depend on the number of threads, and agree to rounding across rank
// counts. Every rank must make the same calls with the same plans. Dead layers (every neuron zero on
// the compression set) keep one neuron with T = 0 (dead_layer_selection).
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "idprune/compress/moments.hpp"
#include "idprune/compress/policy.hpp"
#include "idprune/data/row_source.hpp"
#include "idprune/dist/dist_matrix.hpp"
#include "idprune/dist/pivot.hpp"
#include "idprune/nn/mlp.hpp"

namespace idprune::compress {

/// One model to produce: a policy and the rule of each hidden layer (std::nullopt: left as it is).
struct PointPlan {
  std::shared_ptr<const LayerPolicy> policy;
  std::vector<std::optional<LayerRule>> layers;
};

/// `rule` with `policy` on the given hidden layers (0-based; empty means all).
[[nodiscard]] PointPlan uniform_plan(std::shared_ptr<const LayerPolicy> policy, index_t num_hidden,
                                     std::span<const index_t> layers, const LayerRule& rule);
/// k[l] neurons in every hidden layer (a k rule per layer).
[[nodiscard]] PointPlan kept_plan(std::shared_ptr<const LayerPolicy> policy, std::span<const index_t> kept);

/// What happened to one hidden layer.
struct LayerOutcome {
  bool compressed = false;
  index_t width = 0;                  ///< neurons before
  index_t kept = 0;                   ///< neurons after (= width when not compressed, and for svd)
  index_t rank = 0;                   ///< svd: r; otherwise min(kept, d_in) of the layer's weight
  double rel_tol = 0;                 ///< eps rule: eps / ||W_{l+1}||_2 (0 for other rules)
  double next_ratio = 0;              ///< CPQR policies: |r_{k+1,k+1}| / |r_11| at the chosen k
  std::vector<index_t> kept_neurons;  ///< the kept neurons' indices in the original layer, ascending
};

struct CompressedModel {
  nn::Mlp model;
  std::vector<LayerOutcome> layers;  ///< one per hidden layer
  // Shared products for scorers (scorer.hpp). first_layer_columns: the first hidden layer is the
  // original W_1(:, C), b_1(C), so its activations are columns of the original's (empty when this
  // does not hold, e.g. svd). first_interpolation and second_layer_columns: the second layer is
  // (T_1 W_2)(:, C_2), b_2(C_2) with T_1 the first layer's ID (T_1(:, C_1) = I) and W_2, b_2 the
  // original's, so Z_1(:, C_1) T_1 W_2 = Z_1 W_2 - E W_2(F, :) with E the ID's residual on the data.
  std::vector<index_t> first_layer_columns;
  std::shared_ptr<const la::Matrix> first_interpolation;
  std::vector<index_t> second_layer_columns;
};

struct EngineOptions {
  dist::EngineOptions pivot;                             ///< the distributed CPQR (tsqr by default)
  la::CpqrMethod cpqr_method = la::CpqrMethod::blocked;  ///< local CPQR inside the pivot engines
  /// Factorize every node up to its numerical rank (complete_rule) instead of the loosest rule of
  /// the plans through it: allocation rules read whole diagonals, and a k rule is then capped at
  /// the numerical rank.
  bool complete_factorizations = false;
  /// Cached nodes are dropped, least recently used first, beyond this many bytes on a rank.
  std::size_t cache_bytes = std::size_t{768} << 20;
  /// When every plan's policy needs only the factorizations, a layer whose activations would take
  /// more than this many bytes per rank is factored from row blocks of its inputs and never held;
  /// the next layer's inputs are recomputed from the kept neurons (choose_activation_path).
  std::size_t unheld_bytes = std::size_t{32} << 20;
};

/// This rank's rows of a compression set too large to hold: read, forwarded and reduced block by
/// block. Every factorization a plan needs is the CPQR of the R factor of its activations, which is
/// accumulated over the blocks (dist::kernel::StreamingR: [R; Z_b] = Q [R'; 0], in 4 lanes of a
/// quarter of each block's rows, combined at the end), so memory per rank is
/// O(block_rows x widest layer + 4 width^2) whatever the number of rows, at the cost of one pass
/// over the rows per node and level (from the set, or from the inputs the level before kept within
/// cache_bytes). Needs the tsqr or gram pivot engine (both reduce R factors);
/// policies that solve least squares against the activations (corrected, random) need them in
/// memory and are refused.
struct StreamedRows {
  data::RowSource rows;     ///< this rank's rows (e.g. data::rank_rows of the whole set)
  index_t row_offset = 0;   ///< index of rows' first row in the whole set
  index_t global_rows = 0;  ///< rows of the whole set, all ranks together
  index_t block_rows = 0;   ///< rows read and forwarded at a time (>= 1)
  /// Bytes per rank the engine may hold for the inputs of the layers being factored (block by
  /// block), so that the next level's pass computes its inputs from them with one layer instead of
  /// reading the set and forwarding it through every layer before. 0: every pass reads the set.
  /// The same bits either way.
  std::size_t cache_bytes = 0;
};

/// Where the time went (this rank, accumulated over calls).
struct EngineStats {
  std::int64_t models = 0;
  std::int64_t factorizations = 0;         ///< node CPQRs computed
  std::int64_t least_squares = 0;          ///< least-squares T computed
  std::int64_t cache_hits = 0;             ///< nodes reused from an earlier call
  std::int64_t unheld_factorizations = 0;  ///< R factors from row blocks of the inputs (unheld_bytes)
  std::int64_t cached_passes = 0;          ///< streamed: passes over kept inputs, not the set (cache_bytes)
  std::uint64_t bytes_sent = 0;            ///< by the pivot engines
  double activation_seconds = 0.0;         ///< (a)
  double factorization_seconds = 0.0;      ///< (b), CPQR including the collective engine calls
  double least_squares_seconds = 0.0;      ///< (b), least squares
  double fold_seconds = 0.0;               ///< (c)
  std::int64_t moments = 0;                ///< activation moments computed (needs_moments), including the original's
  double moment_seconds = 0.0;             ///< their local sums and the one reduction per level
};

class CompressionEngine {
 public:
  /// `compression_set`: this rank's rows of Xc. Not collective. Throws idprune::Error if the model
  /// has no hidden layer or Xc's width is not the input width.
  CompressionEngine(nn::Mlp original, dist::DistMatrix compression_set, EngineOptions options = {});
  /// A streamed compression set (StreamedRows). Not collective. Throws idprune::Error for a pivot
  /// engine other than tsqr or gram, block_rows < 1, or rows of the wrong width.
  CompressionEngine(nn::Mlp original, dist::Comm comm, StreamedRows compression_set, EngineOptions options = {});
  ~CompressionEngine();
  CompressionEngine(CompressionEngine&&) noexcept;
  CompressionEngine& operator=(CompressionEngine&&) noexcept;
  CompressionEngine(const CompressionEngine&) = delete;
  CompressionEngine& operator=(const CompressionEngine&) = delete;

  [[nodiscard]] const nn::Mlp& original() const { return original_; }
  [[nodiscard]] const EngineOptions& options() const { return options_; }
  [[nodiscard]] const EngineStats& stats() const { return stats_; }
  [[nodiscard]] const dist::Comm& comm() const { return xc_.comm(); }
  [[nodiscard]] index_t compression_rows() const { return xc_.global_rows(); }
  /// Whether the compression set is streamed (StreamedRows) rather than held in memory.
  [[nodiscard]] bool streamed() const { return stream_.has_value(); }

  /// Collective: factorizes the original network's activations at each plan's first compressed
  /// layer with the loosest rule of all plans, so that later compress() calls on any subset of
  /// them give the same models whatever the batching. Also checks (once) that the model and the
  /// compression set are finite: a NaN/Inf is one clear error on every rank.
  void prepare(std::span<const PointPlan> plans);

  /// Collective: one compressed model per plan.
  [[nodiscard]] std::vector<CompressedModel> compress(std::span<const PointPlan> plans);

  /// Collective: for each plan, the CPQR of the activations its network feeds into the selection
  /// of every hidden layer it compresses (empty results for layers it leaves as they are).
  [[nodiscard]] std::vector<std::vector<la::CpqrResult>> factorizations(std::span<const PointPlan> plans);

  /// Collective on first use: the moments over the whole compression set of the ORIGINAL network's
  /// activations of hidden layer `layer` (cached; the ones policies see as original_output_moments).
  const ActivationMoments& original_moments(index_t layer);

  /// ||W_{l+1}||_2 of the original network (collective on first use: computed on rank 0, broadcast).
  double next_norm(index_t layer);

  /// Drops every cached node except the original network's.
  void clear_cache();

 private:
  struct Node;
  struct Level;

  std::vector<Node*> run(std::span<const PointPlan> plans, std::vector<std::vector<Node*>>* path);
  void check_plans(std::span<const PointPlan> plans);
  void check_inputs();
  void choose_activation_path(std::span<const PointPlan> plans);
  [[nodiscard]] bool unheld(index_t layer) const;
  [[nodiscard]] bool prereduces_r() const;
  [[nodiscard]] LayerContext context(const Node& node, index_t layer);
  void ensure_activations(std::span<Node* const> nodes, index_t layer, bool blocks);
  void stream_blocks(std::span<Node* const> nodes);
  [[nodiscard]] std::size_t streamed_bytes_held() const;
  void derive_streamed_inputs(std::span<const std::pair<Node*, Node*>> candidates);
  void ensure_factorizations(std::span<Node* const> nodes, std::span<const la::CpqrOptions> rules, index_t layer);
  const la::Matrix& original_activations(index_t layer);
  [[nodiscard]] la::Matrix factored_activations(Node& parent, const nn::DenseLayer& layer, index_t l);
  void ensure_moments(std::span<Node* const> nodes, std::span<const MomentNeeds> needs, index_t layer);
  const la::Svd& weight_svd(index_t layer);
  [[nodiscard]] la::Matrix engine_block(const la::Matrix& z) const;
  [[nodiscard]] la::Matrix inputs_of(const Node& node) const;
  [[nodiscard]] CompressedModel assemble(const Node* leaf, const PointPlan& plan);
  void evict();

  nn::Mlp original_;
  dist::DistMatrix xc_;  ///< streamed: no local rows, only the communicator and the row counts
  std::optional<StreamedRows> stream_;
  EngineOptions options_;
  EngineStats stats_;
  bool inputs_checked_ = false;
  /// Plans whose policies need only the factorizations: nodes with large activations are factored
  /// from row blocks of their inputs (choose_activation_path, unheld).
  bool unheld_layers_ = false;
  bool unheld_first_layer_ = false;  ///< the original's layer 0 too (the policy allows it there)
  std::map<index_t, la::Matrix> original_z_;
  std::map<index_t, la::Svd> svds_;
  std::map<index_t, ActivationMoments> original_input_moments_;   ///< by layer: the original's H
  std::map<index_t, ActivationMoments> original_output_moments_;  ///< by layer: the original's Z
  std::vector<double> next_norms_;
  std::map<std::vector<std::string>, std::unique_ptr<Node>> nodes_;
  std::uint64_t clock_ = 0;
};

/// Parameters of `original` with hidden widths `kept` (every layer a single dense factor, its bias
/// kept if it has one; `intercepts`: every layer after the first and the classifier gain a bias).
[[nodiscard]] std::int64_t parameter_count_with_widths(const nn::Mlp& original, std::span<const index_t> kept,
                                                       bool intercepts = false);

}  // namespace idprune::compress
