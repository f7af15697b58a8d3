#include "idprune/compress/policy.hpp"

#include <algorithm>
#include <numeric>

#include "idprune/compress/flap.hpp"
#include "idprune/compress/moments.hpp"
#include "idprune/compress/neuron_merging.hpp"
#include "idprune/compress/output_selection.hpp"
#include "idprune/compress/structured_obs.hpp"
#include "idprune/compress/whitened_svd.hpp"
#include "idprune/la/error.hpp"

namespace idprune::compress {

namespace {
std::size_t uz(index_t i) { return static_cast<std::size_t>(i); }

void require_neuron_rule(std::string_view policy, const LayerRule& rule) {
  require(rule.rule != RankRule::rank, "rank rule rank applies only to the svd strategy (use k for ", policy, ")");
  check_rule_value(rule);
}

/// The CPQR policies: C = the first k pivots of the node's activations.
class PivotPolicy : public LayerPolicy {
 public:
  PivotPolicy(bool corrected, bool intercept, bool mean) : corrected_(corrected), intercept_(intercept), mean_(mean) {}

  [[nodiscard]] std::string key() const override {
    return std::string(corrected_ ? (intercept_ ? "corrected+intercept" : "corrected") : "id") + (mean_ ? "+mean" : "");
  }
  void check(const LayerRule& rule) const override { require_neuron_rule(key(), rule); }
  [[nodiscard]] bool needs_factorization(const LayerRule& /*rule*/) const override { return true; }
  [[nodiscard]] bool adds_biases() const override { return (corrected_ && intercept_) || mean_; }
  // On the original's activations the ID alone (T from R) serves, unless an intercept or a mean is fitted.
  [[nodiscard]] bool reads_original_activations() const override { return (corrected_ && intercept_) || mean_; }
  // Elsewhere corrected fits T by least squares against the original's activations.
  [[nodiscard]] bool reads_activations() const override { return corrected_ || mean_; }

  [[nodiscard]] index_t count(const LayerRule& rule, const LayerContext& c) const override {
    const la::CpqrResult& f = *c.factorization;
    // 0 only when every neuron is dead on the compression set (CPQR rank 0).
    return f.rank == 0 ? 0 : std::max<index_t>(1, prefix_rank(f, stopping_rule(rule, c)));
  }

  [[nodiscard]] LayerChange change(index_t k, const LayerContext& c) const override {
    const la::CpqrResult& f = *c.factorization;
    const index_t width = c.current->d_out();
    LayerChange out;
    out.compensate_mean = mean_;
    if (k == 0) {
      out.selection = dead_layer_selection(width);
      return out;
    }
    const double next = k < f.rank ? f.diag[uz(k)] : f.next_diag;
    out.next_ratio = f.rank > 0 && f.diag.front() > 0.0 ? next / f.diag.front() : 0.0;
    // On the original network's activations the ID's T is already the least-squares fit
    // (T(:, rest) = R11^{-1} R12 = argmin ||Z(:, rest) - Z(:, C) X||_F): no second fit.
    if (!corrected_ || (c.original_inputs && !intercept_)) {
      out.selection = id_selection(f, k);
      return out;
    }
    out.selection.kept.assign(f.pivots.begin(), f.pivots.begin() + k);
    std::sort(out.selection.kept.begin(), out.selection.kept.end());
    out.solve = LeastSquaresTarget::original_activations;
    out.intercept = intercept_;
    return out;
  }

 private:
  bool corrected_;
  bool intercept_;
  bool mean_;
};

class RandomPolicy : public LayerPolicy {
 public:
  RandomPolicy(std::uint64_t seed, bool mean) : seed_(seed), mean_(mean) {}
  [[nodiscard]] std::string key() const override { return "random:" + std::to_string(seed_) + (mean_ ? "+mean" : ""); }
  [[nodiscard]] bool adds_biases() const override { return mean_; }
  void check(const LayerRule& rule) const override { require_neuron_rule("random", rule); }
  [[nodiscard]] bool needs_factorization(const LayerRule& /*rule*/) const override { return false; }
  [[nodiscard]] index_t count(const LayerRule& rule, const LayerContext& c) const override {
    require(rule.rule != RankRule::eps, "the random policy takes k or fraction rules (its strategy turns eps into k)");
    return kept_count(rule, c.current->d_out());
  }
  [[nodiscard]] LayerChange change(index_t k, const LayerContext& c) const override {
    LayerChange out;
    out.selection.kept = random_columns(c.current->d_out(), k, seed_, c.layer);
    out.solve = LeastSquaresTarget::own_activations;
    out.compensate_mean = mean_;
    return out;
  }

 private:
  std::uint64_t seed_;
  bool mean_;
};

class MagnitudePolicy : public LayerPolicy {
 public:
  [[nodiscard]] std::string key() const override { return "magnitude"; }
  void check(const LayerRule& rule) const override { require_neuron_rule("magnitude", rule); }
  [[nodiscard]] bool needs_factorization(const LayerRule& /*rule*/) const override { return false; }
  [[nodiscard]] index_t count(const LayerRule& rule, const LayerContext& c) const override {
    require(rule.rule != RankRule::eps,
            "the magnitude policy takes k or fraction rules (its strategy turns eps into k)");
    return kept_count(rule, c.current->d_out());
  }
  [[nodiscard]] LayerChange change(index_t k, const LayerContext& c) const override {
    LayerChange out;
    out.selection = magnitude_selection(*c.next, k);
    return out;
  }
};

/// Kim et al., "Neuron Merging" (NeurIPS 2020), data-free: the neurons with the largest l1 norm
/// of their incoming weights [w; b] stay, and each pruned neuron's outgoing weights are added, scaled
/// by ||v_j|| / ||v_i|| (ReLU's positive homogeneity), to the kept neuron with the most similar
/// incoming vector (cosine >= the authors' 0.45); T(:, C) = I.
class MergingPolicy : public LayerPolicy {
 public:
  [[nodiscard]] std::string key() const override { return "merging"; }
  void check(const LayerRule& rule) const override {
    require(rule.rule == RankRule::k || rule.rule == RankRule::fraction, "rank rule ", to_string(rule.rule),
            " does not apply to the merging strategy (use k or fraction)");
    check_rule_value(rule);
  }
  [[nodiscard]] bool needs_factorization(const LayerRule& /*rule*/) const override { return false; }
  [[nodiscard]] index_t count(const LayerRule& rule, const LayerContext& c) const override {
    require(rule.rule != RankRule::eps, "the merging policy takes k or fraction rules (its strategy turns eps into k)");
    return kept_count(rule, c.current->d_out());
  }
  [[nodiscard]] LayerChange change(index_t k, const LayerContext& c) const override {
    require(c.current->factor_count() == 1, "neuron merging: layer ", c.layer + 1, " is factored");
    const la::Matrix& w = c.current->factor(0);
    NeuronMergingResult m = neuron_merging(w, c.current->bias(), norm_selection(w, c.current->bias(), k));
    LayerChange out;
    out.selection.kept = std::move(m.kept);
    out.selection.interpolation = std::move(m.interpolation);
    return out;
  }
};

/// Output-aware selection (output_selection.hpp): C greedily preserves Z W_{l+1} (from the Gram
/// Z^T Z of the node's activations), T the least-squares fit to the node's own activations, or to
/// the original network's (corrected). The CPQR of the activations only sizes the layer: k is
/// capped at its numerical rank, and allocations read its diagonal as for id.
class OutputPolicy : public LayerPolicy {
 public:
  OutputPolicy(bool corrected, bool mean) : corrected_(corrected), mean_(mean) {}
  [[nodiscard]] std::string key() const override {
    return std::string(corrected_ ? "output-corrected" : "output") + (mean_ ? "+mean" : "");
  }
  void check(const LayerRule& rule) const override {
    require(rule.rule == RankRule::k || rule.rule == RankRule::fraction, "rank rule ", to_string(rule.rule),
            " does not apply to the output-aware strategies (use k or fraction)");
    check_rule_value(rule);
  }
  [[nodiscard]] bool needs_factorization(const LayerRule& /*rule*/) const override { return true; }
  [[nodiscard]] MomentNeeds needs_moments(const LayerRule& /*rule*/) const override {
    MomentNeeds n;
    n.outputs = true;
    return n;
  }
  [[nodiscard]] bool adds_biases() const override { return mean_; }
  [[nodiscard]] index_t count(const LayerRule& rule, const LayerContext& c) const override {
    const la::CpqrResult& f = *c.factorization;
    return f.rank == 0 ? 0 : std::max<index_t>(1, prefix_rank(f, stopping_rule(rule, c)));
  }
  [[nodiscard]] LayerChange change(index_t k, const LayerContext& c) const override {
    LayerChange out;
    out.compensate_mean = mean_;
    if (k == 0) {
      out.selection = dead_layer_selection(c.current->d_out());
      return out;
    }
    require(c.output_moments != nullptr, "output-aware selection: the engine gave no activation moments");
    const OutputSelection sel = output_aware_selection(c.output_moments->gram, c.next->weight(), k);
    out.selection.kept = sel.order;
    std::sort(out.selection.kept.begin(), out.selection.kept.end());
    out.solve = corrected_ && !c.original_inputs ? LeastSquaresTarget::original_activations
                                                 : LeastSquaresTarget::own_activations;
    return out;
  }

 private:
  bool corrected_;
  bool mean_;
};

/// FLAP (flap.hpp) on one layer: the k neurons of largest fluctuation score Var(z_j) ||W_{l+1}(j, :)||^2
/// from the ORIGINAL network's activations and weights (the authors' one-pass statistics), no
/// interpolation (T = rows of I), and the bias compensation through the engine's mean compensation:
/// on the original network's inputs that is FLAP's b_{l+1} += sum over pruned j of mean(z_j) W_{l+1}(j, :);
/// after a changed layer the kept neurons' mean shift is compensated too, so the mean of the next
/// pre-activation over the compression set stays exactly the original's at every layer.
class FlapPolicy : public LayerPolicy {
 public:
  [[nodiscard]] std::string key() const override { return "flap"; }
  void check(const LayerRule& rule) const override {
    require(rule.rule == RankRule::k || rule.rule == RankRule::fraction, "rank rule ", to_string(rule.rule),
            " does not apply to the flap strategies (use k or fraction)");
    check_rule_value(rule);
  }
  [[nodiscard]] bool needs_factorization(const LayerRule& /*rule*/) const override { return false; }
  [[nodiscard]] MomentNeeds needs_moments(const LayerRule& /*rule*/) const override {
    MomentNeeds n;
    n.outputs = true;
    n.original = true;
    return n;
  }
  [[nodiscard]] bool adds_biases() const override { return true; }
  [[nodiscard]] index_t count(const LayerRule& rule, const LayerContext& c) const override {
    return kept_count(rule, c.current->d_out());
  }
  [[nodiscard]] LayerChange change(index_t k, const LayerContext& c) const override {
    require(c.original_output_moments != nullptr, "flap: the engine gave no activation moments");
    const std::vector<double> score = flap_scores(*c.original_output_moments, c.next->weight());
    const auto width = static_cast<index_t>(score.size());
    std::vector<index_t> order(uz(width));
    std::iota(order.begin(), order.end(), index_t{0});
    std::stable_sort(order.begin(), order.end(), [&](index_t a, index_t b) { return score[uz(a)] > score[uz(b)]; });
    LayerChange out;
    out.selection.kept.assign(order.begin(), order.begin() + k);
    std::sort(out.selection.kept.begin(), out.selection.kept.end());
    out.selection.interpolation = la::Matrix(k, width);
    for (index_t i = 0; i < k; ++i) out.selection.interpolation(i, out.selection.kept[uz(i)]) = 1.0;
    out.selection.identity_rows = true;
    out.compensate_mean = true;
    return out;
  }
};

class SvdPolicy : public LayerPolicy {
 public:
  [[nodiscard]] std::string key() const override { return "svd"; }
  void check(const LayerRule& rule) const override {
    require(rule.rule == RankRule::rank || rule.rule == RankRule::fraction, "rank rule ", to_string(rule.rule),
            " does not apply to the svd strategy (use rank or fraction)");
    check_rule_value(rule);
  }
  [[nodiscard]] bool needs_factorization(const LayerRule& /*rule*/) const override { return false; }
  [[nodiscard]] bool needs_weight_svd() const override { return true; }
  [[nodiscard]] bool selects_neurons() const override { return false; }
  [[nodiscard]] index_t count(const LayerRule& rule, const LayerContext& c) const override {
    return svd_rank(rule, c.current->d_in(), c.current->d_out());
  }
  [[nodiscard]] LayerChange change(index_t r, const LayerContext& c) const override {
    LayerChange out;
    out.replacement = svd_layer(*c.current, *c.weight_svd, r);
    return out;
  }
};
/// The activation-aware rank-r replacement of `layer` with weight `w` (its columns C when pruned)
/// and bias `bias` on inputs with moments `inputs`; a layer with a bias is centred, so its mean
/// output over the compression set stays exact (WhitenedSvdOptions::center).
nn::DenseLayer whitened_layer(const ActivationMoments& inputs, const la::Matrix& w, std::vector<double> bias,
                              nn::Activation activation, index_t r) {
  WhitenedSvdOptions o;
  o.rank = r;
  o.center = !bias.empty();
  WhitenedSvdResult f = whitened_svd(inputs, w, o);
  for (std::size_t j = 0; j < f.bias_shift.size(); ++j) bias[j] += f.bias_shift[j];
  return nn::DenseLayer(std::vector<la::Matrix>{std::move(f.a), std::move(f.b)}, std::move(bias), activation);
}

/// SVD-LLM / ASVD: W_l replaced by the rank-r A B minimising ||H W_l - H A B||_F on the node's
/// inputs H (the compressed upstream network's, so errors of earlier layers are taken into account).
class WhitenedSvdPolicy : public LayerPolicy {
 public:
  using LayerPolicy::needs_moments;
  [[nodiscard]] std::string key() const override { return "whitened-svd"; }
  void check(const LayerRule& rule) const override {
    require(rule.rule == RankRule::rank || rule.rule == RankRule::fraction, "rank rule ", to_string(rule.rule),
            " does not apply to the whitened-svd strategy (use rank or fraction)");
    check_rule_value(rule);
  }
  [[nodiscard]] bool needs_factorization(const LayerRule& /*rule*/) const override { return false; }
  [[nodiscard]] MomentNeeds needs_moments(const LayerRule& /*rule*/) const override { return {true, false, false}; }
  [[nodiscard]] bool selects_neurons() const override { return false; }
  [[nodiscard]] index_t count(const LayerRule& rule, const LayerContext& c) const override {
    return svd_rank(rule, c.current->d_in(), c.current->d_out());
  }
  [[nodiscard]] LayerChange change(index_t r, const LayerContext& c) const override {
    require(c.input_moments != nullptr, "whitened-svd: the engine gave no input moments for layer ", c.layer + 1);
    LayerChange out;
    out.replacement =
        whitened_layer(*c.input_moments, c.current->weight(), c.current->bias(), c.current->activation(), r);
    return out;
  }
};

/// Structured OBS (ZipLM, SlimGPT): greedy removal by the least increase of the next layer's
/// pre-activation error under the Hessian Z^T Z of the node's activations, remaining rows refitted.
class ObsPolicy : public LayerPolicy {
 public:
  using LayerPolicy::needs_moments;
  explicit ObsPolicy(double damping) : damping_(damping) {}
  [[nodiscard]] std::string key() const override { return "obs:" + std::to_string(damping_); }
  void check(const LayerRule& rule) const override {
    require(rule.rule == RankRule::k || rule.rule == RankRule::fraction, "rank rule ", to_string(rule.rule),
            " does not apply to the obs strategy (use k or fraction)");
    check_rule_value(rule);
  }
  [[nodiscard]] bool needs_factorization(const LayerRule& /*rule*/) const override { return false; }
  [[nodiscard]] MomentNeeds needs_moments(const LayerRule& /*rule*/) const override { return {false, true, false}; }
  [[nodiscard]] index_t count(const LayerRule& rule, const LayerContext& c) const override {
    return kept_count(rule, c.current->d_out());
  }
  [[nodiscard]] LayerChange change(index_t k, const LayerContext& c) const override {
    require(c.output_moments != nullptr, "obs: the engine gave no activation moments for layer ", c.layer + 1);
    StructuredObsOptions o;
    o.damping = damping_;
    StructuredObsResult r = structured_obs(c.output_moments->gram, c.next->weight(), k, o);
    LayerChange out;
    out.selection.kept = std::move(r.kept);
    out.selection.interpolation = std::move(r.interpolation);
    return out;
  }

 private:
  double damping_;
};

/// corrected's (or obs's) neurons, then the kept columns of chosen layers factored (whitened) at a
/// fixed rank.
class HybridPolicy : public LayerPolicy {
 public:
  using LayerPolicy::needs_moments;
  HybridPolicy(std::vector<index_t> ranks, HybridSelection selection, double obs_damping, bool intercept)
      : ranks_(std::move(ranks)),
        selection_(selection),
        obs_damping_(obs_damping),
        intercept_(intercept),
        corrected_(true, intercept, false) {}
  [[nodiscard]] std::string key() const override {
    std::string k = selection_ == HybridSelection::obs ? "hybrid-obs:" + std::to_string(obs_damping_) : "hybrid";
    if (intercept_) k += "+intercept";
    for (std::size_t l = 0; l < ranks_.size(); ++l) k += (l == 0 ? ":" : ",") + std::to_string(ranks_[l]);
    return k;
  }
  void check(const LayerRule& rule) const override { require_neuron_rule("hybrid", rule); }
  [[nodiscard]] bool adds_biases() const override { return intercept_; }
  // The CPQR also for obs: the budget allocation reads its diagonals.
  [[nodiscard]] bool needs_factorization(const LayerRule& /*rule*/) const override { return true; }
  [[nodiscard]] MomentNeeds needs_moments(const LayerRule& /*rule*/, index_t layer) const override {
    return {rank(layer) > 0, selection_ == HybridSelection::obs, false};
  }
  [[nodiscard]] index_t count(const LayerRule& rule, const LayerContext& c) const override {
    return corrected_.count(rule, c);
  }
  [[nodiscard]] LayerChange change(index_t k, const LayerContext& c) const override {
    LayerChange out = corrected_.change(k, c);
    if (k > 0 && selection_ == HybridSelection::obs) {
      // OBS's neurons (least increase of the next layer's output error), T refitted against the
      // original's activations as corrected's.
      require(c.output_moments != nullptr, "hybrid-obs: the engine gave no activation moments for layer ", c.layer + 1);
      StructuredObsOptions o;
      o.damping = obs_damping_;
      out.selection.kept = structured_obs(c.output_moments->gram, c.next->weight(), k, o).kept;
      out.selection.interpolation = la::Matrix();
      out.selection.identity_rows = false;
      out.solve = LeastSquaresTarget::original_activations;
    }
    const index_t r = rank(c.layer);
    if (k == 0 || r <= 0 || r >= std::min(c.current->d_in(), k)) return out;
    require(c.input_moments != nullptr, "hybrid: the engine gave no input moments for layer ", c.layer + 1);
    if (out.solve == LeastSquaresTarget::none) {
      // The ID's T fits Z(:, C), not the factored layer's activations: refit against the original's.
      out.selection.interpolation = la::Matrix();
      out.solve = LeastSquaresTarget::original_activations;
    }
    const std::vector<index_t>& kept = out.selection.kept;
    std::vector<double> bias;
    for (index_t j : kept)
      if (c.current->has_bias()) bias.push_back(c.current->bias()[uz(j)]);
    out.replacement = whitened_layer(*c.input_moments, la::select_columns(c.current->weight(), kept), std::move(bias),
                                     c.current->activation(), r);
    return out;
  }

 private:
  [[nodiscard]] index_t rank(index_t layer) const { return uz(layer) < ranks_.size() ? ranks_[uz(layer)] : 0; }
  std::vector<index_t> ranks_;
  HybridSelection selection_;
  double obs_damping_;
  bool intercept_;
  PivotPolicy corrected_;
};
}  // namespace

std::shared_ptr<const LayerPolicy> make_hybrid_policy(std::vector<index_t> ranks, HybridSelection selection,
                                                      double obs_damping, bool intercept) {
  for (std::size_t l = 0; l < ranks.size(); ++l)
    require(ranks[l] >= 0, "hybrid: rank ", ranks[l], " of hidden layer ", l + 1, " (needs >= 0; 0: not factored)");
  require(obs_damping >= 0.0, "hybrid-obs: damping ", obs_damping, " (needs >= 0)");
  return std::make_shared<HybridPolicy>(std::move(ranks), selection, obs_damping, intercept);
}

la::CpqrOptions LayerPolicy::stopping_rule(const LayerRule& rule, const LayerContext& c) const {
  const double norm = rule.rule == RankRule::eps ? c.next_norm : 0.0;
  la::CpqrOptions o = cpqr_stopping_rule(rule, c.rows, c.current->d_out(), norm);
  o.method = c.cpqr_method;
  return o;
}

bool takes_intercept(std::string_view name) { return name == "corrected" || name == "hybrid" || name == "hybrid-obs"; }

bool takes_mean_compensation(std::string_view name) {
  return name == "id" || name == "corrected" || name == "random" || name == "output" || name == "output-corrected";
}

std::shared_ptr<const LayerPolicy> make_policy(std::string_view name, const PolicyOptions& options) {
  const bool mean = options.mean_compensation;
  if (name == "id") return std::make_shared<PivotPolicy>(false, false, mean);
  if (name == "corrected") return std::make_shared<PivotPolicy>(true, options.intercept, mean);
  if (name == "random") return std::make_shared<RandomPolicy>(options.seed, mean);
  if (name == "magnitude") return std::make_shared<MagnitudePolicy>();
  if (name == "svd") return std::make_shared<SvdPolicy>();
  if (name == "merging") return std::make_shared<MergingPolicy>();
  if (name == "flap") return std::make_shared<FlapPolicy>();
  if (name == "output") return std::make_shared<OutputPolicy>(false, mean);
  if (name == "output-corrected") return std::make_shared<OutputPolicy>(true, mean);
  if (name == "whitened-svd") return std::make_shared<WhitenedSvdPolicy>();
  if (name == "obs") {
    require(options.obs_damping >= 0.0, "obs: damping ", options.obs_damping, " (needs >= 0)");
    return std::make_shared<ObsPolicy>(options.obs_damping);
  }
  if (name == "hybrid")
    return make_hybrid_policy({}, HybridSelection::corrected, options.obs_damping, options.intercept);
  if (name == "hybrid-obs") return make_hybrid_policy({}, HybridSelection::obs, options.obs_damping, options.intercept);
  throw Error(detail::concat("unknown selection policy '", name,
                             "' (known: id, corrected, random, magnitude, svd, merging, output, output-corrected, "
                             "flap, whitened-svd, obs, hybrid, hybrid-obs)"));
}

}  // namespace idprune::compress
