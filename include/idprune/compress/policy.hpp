#pragma once
// Selection policies: how one hidden layer of a network is compressed, given what the engine
// (engine.hpp) computed for it. A policy is local and free of MPI: it states what it needs
// (a CPQR of the layer's activations, a least-squares fit, the SVD of the weight), the engine
// computes that collectively, and the policy turns it into a LayerChange.
//
// Built-in policies (DESIGN.md, "The mathematics"; the reference text's ID and baselines):
//   id         C = the first k CPQR pivots of Z = act(H W_l + b_l), T = [I, R11^{-1} R12] P^T
//   corrected  the same C, T = argmin ||Z_orig - Z(:, C) T||_F against the ORIGINAL network's
//              activations (optionally with an intercept that becomes a bias of layer l + 1)
//   random     seeded random C, T = argmin ||Z - Z(:, C) T||_F (T(:, C) = I exactly)
//   magnitude  the k neurons with the largest outgoing weight norms ||W_{l+1}(i, :)||_2, no correction
//   svd        W_l replaced by U_r (S_r V_r^T); no neuron removed
//   merging    neuron merging (Kim et al., NeurIPS 2020): l1-norm selection, each pruned neuron's
//              outgoing weights merged into its most similar kept neuron; data-free
//   output     C chosen greedily to preserve Z W_{l+1} (output_selection.hpp), least-squares T;
//              output-corrected: T fitted to the original network's activations
//   flap       FLAP (An et al., AAAI 2024; flap.hpp): the neurons of largest fluctuation score, T = rows
//              of I, the next bias compensated for the mean (always)
//   whitened-svd  W_l replaced by the rank-r A B minimising ||H W_l - H A B||_F over the node's
//              inputs H (SVD-LLM / ASVD, whitened_svd.hpp); no neuron removed
//   obs        structured optimal brain surgeon (ZipLM, SlimGPT; structured_obs.hpp): neurons removed
//              one at a time by the least increase of ||Z W_{l+1} - Z(:, K) W'||_F, T the refit
//   hybrid     corrected's neurons, then W_l(:, C) replaced by its whitened rank-r_l factorization on
//              the layers given a rank (make_hybrid_policy); T fitted to the factored layer's output
//
// Mean compensation (PolicyOptions::mean_compensation; id, corrected, random, output): the next layer's bias
// gains mu W_{l+1} with mu = mean over the compression set of Z_orig - Z(:, C) T, the residual
// against the ORIGINAL network's activations of layer l. The compressed network's pre-activation
// of layer l + 1 then has exactly the original's mean over the compression set, whatever the layers
// before did (FLAP's bias compensation, An et al. AAAI 2024, applied to the ID's residual).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "idprune/compress/layer.hpp"
#include "idprune/compress/rules.hpp"
#include "idprune/la/cpqr.hpp"
#include "idprune/la/svd.hpp"
#include "idprune/nn/mlp.hpp"

namespace idprune::compress {

struct ActivationMoments;  // moments.hpp

/// The activation moments (moments.hpp: rows, column sums, Gram) a policy reads for a layer, summed
/// over the whole compression set (every rank's rows). The engine computes only what is asked for.
struct MomentNeeds {
  /// Of the layer's INPUT H (H^T H): the Hessian / whitening of W_l (activation-aware low rank).
  bool inputs = false;
  /// Of its OUTPUT Z = act(H W_l + b_l) (Z^T Z, means, variances): the Hessian of W_{l+1} (OBS), FLAP.
  bool outputs = false;
  /// The same moments of the ORIGINAL network's layer too (they differ once an upstream layer changed).
  bool original = false;

  [[nodiscard]] bool any() const { return inputs || outputs; }
  /// Everything either asks for.
  [[nodiscard]] MomentNeeds operator|(const MomentNeeds& o) const {
    return {inputs || o.inputs, outputs || o.outputs, original || o.original};
  }
};

/// What a policy sees of one layer at one node of the engine's prefix tree.
struct LayerContext {
  index_t layer = 0;                              ///< hidden layer, 0-based
  const nn::DenseLayer* current = nullptr;        ///< layer l as it stands in the node's network
  const nn::DenseLayer* next = nullptr;           ///< layer l + 1 as it stands (the original's)
  const la::CpqrResult* factorization = nullptr;  ///< CPQR of the node's activations, when needed
  const la::Svd* weight_svd = nullptr;            ///< SVD of the original W_l, when needed
  bool original_inputs = true;                    ///< the node's network is the original up to layer l
  double next_norm = 0.0;                         ///< ||W_{l+1}||_2 of the original network
  index_t rows = 0;                               ///< global rows of the compression set
  la::CpqrMethod cpqr_method = la::CpqrMethod::blocked;
  // Moments (needs_moments), summed over ranks; null when not asked for. For a node whose network
  // is the original up to layer l the node's and the original's are the same objects.
  const ActivationMoments* input_moments = nullptr;            ///< H, the node's network
  const ActivationMoments* output_moments = nullptr;           ///< Z, the node's network
  const ActivationMoments* original_input_moments = nullptr;   ///< H, the original network (original)
  const ActivationMoments* original_output_moments = nullptr;  ///< Z, the original network (original)
};

/// Which activations the engine fits Z(:, C) T to, when a policy asks for a least-squares T.
enum class LeastSquaresTarget {
  none,                  ///< the policy formed T itself
  own_activations,       ///< T(:, rest) = argmin ||Z(:, rest) - Z(:, C) X||_F, T(:, C) = I
  original_activations,  ///< T = argmin ||Z_orig - Z(:, C) T||_F (with an intercept: [Z(:, C) 1])
};

/// How a layer changes.
struct LayerChange {
  Selection selection;  ///< kept neurons C (ascending) and T; T is filled by the engine when `solve` says so
  LeastSquaresTarget solve = LeastSquaresTarget::none;
  bool intercept = false;            ///< original_activations: fit an intercept too
  std::vector<double> shift_values;  ///< the fitted intercept t (filled by the engine)
  /// The layer replaced. Without kept neurons (svd): same width, nothing folded. With kept neurons
  /// (hybrid): layer l becomes *replacement (k outputs, a factorization of W_l(:, C)), T is folded
  /// into layer l + 1, and a least-squares T is fitted to the replacement's activations.
  std::optional<nn::DenseLayer> replacement;
  /// The engine adds mean(Z_orig - Z(:, C) T) over the compression set to shift_values (the
  /// next layer's bias then gains its product with W_{l+1}).
  bool compensate_mean = false;
  double next_ratio = 0.0;  ///< |r_{k+1,k+1}| / |r_11| at the chosen k (CPQR policies)
};

class LayerPolicy {
 public:
  virtual ~LayerPolicy() = default;
  /// Name and options: two policies with the same key make the same changes (the engine's cache key).
  [[nodiscard]] virtual std::string key() const = 0;
  /// Throws idprune::Error when `rule` does not apply (e.g. eps for svd), naming the rules that do.
  virtual void check(const LayerRule& rule) const = 0;
  [[nodiscard]] virtual bool needs_factorization(const LayerRule& rule) const = 0;
  [[nodiscard]] virtual bool needs_weight_svd() const { return false; }
  /// The activation moments count() and change() read (LayerContext::*_moments).
  [[nodiscard]] virtual MomentNeeds needs_moments(const LayerRule& /*rule*/) const { return {}; }
  /// The same for hidden layer `layer` (0-based; the engine asks this one): policies whose needs
  /// differ between layers override it.
  [[nodiscard]] virtual MomentNeeds needs_moments(const LayerRule& rule, index_t /*layer*/) const {
    return needs_moments(rule);
  }
  /// The CPQR stopping rule this layer's factorization must cover (needs_factorization only).
  [[nodiscard]] la::CpqrOptions stopping_rule(const LayerRule& rule, const LayerContext& context) const;
  /// Neurons kept (svd: the rank r). 0 only when every neuron is dead (a CPQR of rank 0).
  [[nodiscard]] virtual index_t count(const LayerRule& rule, const LayerContext& context) const = 0;
  /// The change that keeps `count` neurons (count from count()).
  [[nodiscard]] virtual LayerChange change(index_t count, const LayerContext& context) const = 0;
  /// True when change() keeps the layer's input columns (C) and folds T into layer l + 1.
  [[nodiscard]] virtual bool selects_neurons() const { return true; }
  /// True when its changes give layers after the first (and the classifier) a bias (an intercept).
  [[nodiscard]] virtual bool adds_biases() const { return false; }
  /// Whether change() on the original network's activations may read them (a least-squares fit, a
  /// mean), not only the factorization. False lets the engine factor a large first layer from its
  /// inputs block by block without holding its activations.
  [[nodiscard]] virtual bool reads_original_activations() const { return true; }
  /// The same on a compressed network's activations (layers after the first compressed one).
  /// False lets the engine factor every large layer from its inputs without holding its activations.
  [[nodiscard]] virtual bool reads_activations() const { return true; }
};

struct PolicyOptions {
  std::uint64_t seed = 1;     ///< random: the column draws
  bool intercept = false;     ///< corrected: fit an intercept (the next layer gains a bias)
  double obs_damping = 0.01;  ///< obs: StructuredObsOptions::damping
  /// id, corrected, random, output: the next layer's bias absorbs the mean residual against the original
  /// network's activations (the next layer gains a bias).
  bool mean_compensation = false;
};

/// The built-in policies: "id", "corrected", "random", "magnitude", "svd", "merging", "output",
/// "output-corrected", "flap", "whitened-svd", "obs", "hybrid", "hybrid-obs" (the latter two
/// factoring no layer: make_hybrid_policy).
[[nodiscard]] std::shared_ptr<const LayerPolicy> make_policy(std::string_view name, const PolicyOptions& options = {});
/// True for the policies that take PolicyOptions::intercept (make_policy passes it to no other).
[[nodiscard]] bool takes_intercept(std::string_view name);
/// True for the policies that take PolicyOptions::mean_compensation.
[[nodiscard]] bool takes_mean_compensation(std::string_view name);

/// Which neurons the hybrid policy keeps: corrected's CPQR pivots, or structured OBS's (obs policy).
enum class HybridSelection { corrected, obs };

/// The hybrid policy: corrected's kept neurons C on every layer (or OBS's, `selection`), then on
/// hidden layer l with ranks[l] > 0 (and ranks[l] < min(d_in, k)) W_l(:, C) replaced by its
/// activation-aware rank-r factorization on the node's inputs (whitened_svd); T fitted to the
/// ORIGINAL network's activations from the factored layer's own. Layers past ranks.size() are not
/// factored. `intercept`: T fitted with a column of ones, whose row becomes the next layer's bias
/// (PolicyOptions::intercept). "hybrid" and "hybrid-obs" of make_policy factor no layer.
[[nodiscard]] std::shared_ptr<const LayerPolicy> make_hybrid_policy(
    std::vector<index_t> ranks, HybridSelection selection = HybridSelection::corrected, double obs_damping = 0.01,
    bool intercept = false);

}  // namespace idprune::compress
