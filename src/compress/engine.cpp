#include "idprune/compress/engine.hpp"

#include <algorithm>
#include <numeric>
#include <string>

#include "idprune/compress/timing.hpp"
#include "idprune/dist/collectives.hpp"
#include "idprune/dist/kernels.hpp"
#include "idprune/dist/least_squares.hpp"
#include "idprune/la/blas.hpp"
#include "idprune/la/finite.hpp"
#include "tasks.hpp"

namespace idprune::compress {

using la::Matrix;

namespace {
std::size_t uz(index_t i) { return static_cast<std::size_t>(i); }

/// body(i) for i in [0, n) as TBB tasks, BLAS single-threaded even when the tasks run inline: every
/// result is then computed by the same sequence of operations for any number of threads.
template <class F>
std::string tasks(std::size_t n, F&& body) {
  const la::ScopedBlasThreads single(1);
  return parallel::run_tasks(n, std::forward<F>(body));
}

std::vector<index_t> all_columns(index_t n) {
  std::vector<index_t> c(uz(n));
  std::iota(c.begin(), c.end(), index_t{0});
  return c;
}

/// The node key of one layer: the policy and its count, "-" for a layer left as it is.
std::string key_of(const LayerPolicy* policy, index_t count) {
  return policy == nullptr ? std::string("-") : policy->key() + ":" + std::to_string(count);
}

/// Last hidden layer a plan compresses (-1 when none).
index_t last_compressed(const PointPlan& p) {
  index_t last = -1;
  for (std::size_t l = 0; l < p.layers.size(); ++l)
    if (p.layers[l]) last = static_cast<index_t>(l);
  return last;
}
}  // namespace

PointPlan uniform_plan(std::shared_ptr<const LayerPolicy> policy, index_t num_hidden, std::span<const index_t> layers,
                       const LayerRule& rule) {
  require(num_hidden >= 1, "uniform_plan: the model has no hidden layer");
  PointPlan p;
  p.policy = std::move(policy);
  p.layers.resize(uz(num_hidden));
  if (layers.empty()) {
    for (auto& l : p.layers) l = rule;
    return p;
  }
  for (index_t l : layers) {
    require(l >= 0 && l < num_hidden, "uniform_plan: hidden layer ", l + 1, " outside [1, ", num_hidden, "]");
    p.layers[uz(l)] = rule;
  }
  return p;
}

PointPlan kept_plan(std::shared_ptr<const LayerPolicy> policy, std::span<const index_t> kept) {
  PointPlan p;
  p.policy = std::move(policy);
  for (index_t k : kept) {
    require(k >= 1, "kept_plan: a layer must keep at least one neuron (got ", k, ")");
    p.layers.emplace_back(LayerRule{RankRule::k, static_cast<double>(k)});
  }
  return p;
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

/// The compressed network after its first depth() hidden layers.
struct CompressionEngine::Node {
  std::vector<std::string> key;
  bool original = true;                                       ///< every layer before depth() left as it is
  std::vector<std::shared_ptr<const nn::DenseLayer>> layers;  ///< hidden layers 0..depth()-1
  nn::DenseLayer next;                 ///< layer depth() as it now stands (T W folded in); the classifier at depth L
  Matrix h;                            ///< this rank's rows of the input to layer depth() (empty: recomputed on demand)
  std::vector<LayerOutcome> outcomes;  ///< layers 0..depth()-1
  std::vector<index_t> first_columns;
  std::shared_ptr<const Matrix> first_interpolation;
  std::vector<index_t> second_columns;
  std::optional<la::CpqrResult> f;                  ///< CPQR of the activations of layer depth()
  la::CpqrOptions f_rule;                           ///< the rule f was computed with
  std::optional<ActivationMoments> input_moments;   ///< of h (non-original nodes; summed over ranks)
  std::optional<ActivationMoments> output_moments;  ///< of the activations of layer depth()
  Matrix z;                                         ///< transient: this rank's rows of those activations
  Matrix block;                                     ///< transient: the pivot engine's input for z (local R or z)
  bool unheld = false;  ///< block came from row blocks of h (the inputs) and z was never held (unheld_bytes)
  /// Streamed: this rank's rows of h, one matrix per block of StreamedRows::block_rows rows, kept
  /// within StreamedRows::cache_bytes (empty: forwarded from the set).
  std::vector<Matrix> streamed_h;
  std::uint64_t used = 0;

  [[nodiscard]] index_t depth() const { return static_cast<index_t>(key.size()); }
  [[nodiscard]] std::size_t bytes() const {
    std::size_t b = uz(h.size() + z.size() + block.size());
    for (const auto& m : streamed_h) b += uz(m.size());
    for (const auto& m : next.factors()) b += uz(m.size());
    if (!layers.empty())
      for (const auto& m : layers.back()->factors()) b += uz(m.size());
    if (f) b += uz(f->r.size());
    for (const auto* m : {&input_moments, &output_moments})
      if (*m) b += uz((*m)->gram.size()) + (*m)->sum.size();
    return b * sizeof(double);
  }
};

CompressionEngine::CompressionEngine(nn::Mlp original, dist::DistMatrix compression_set, EngineOptions options)
    : original_(std::move(original)), xc_(std::move(compression_set)), options_(std::move(options)) {
  require(original_.num_hidden() >= 1, "CompressionEngine: the model has no hidden layer to compress");
  require(xc_.cols() == original_.input_dim(), "CompressionEngine: the compression set has ", xc_.cols(),
          " features, the model expects ", original_.input_dim());
}

CompressionEngine::CompressionEngine(nn::Mlp original, dist::Comm comm, StreamedRows compression_set,
                                     EngineOptions options)
    : original_(std::move(original)),
      xc_(std::move(comm), Matrix(0, compression_set.rows.cols()), compression_set.row_offset,
          compression_set.global_rows),
      stream_(std::move(compression_set)),
      options_(std::move(options)) {
  require(original_.num_hidden() >= 1, "CompressionEngine: the model has no hidden layer to compress");
  require(xc_.cols() == original_.input_dim(), "CompressionEngine: the compression set has ", xc_.cols(),
          " features, the model expects ", original_.input_dim());
  require(stream_->block_rows >= 1, "CompressionEngine: block_rows=", stream_->block_rows, " (needs >= 1)");
  require(stream_->global_rows >= 1 && stream_->row_offset >= 0 &&
              stream_->row_offset + stream_->rows.rows() <= stream_->global_rows,
          "CompressionEngine: rows [", stream_->row_offset, ", ", stream_->row_offset + stream_->rows.rows(),
          ") of a streamed compression set of ", stream_->global_rows, " rows");
  require(options_.pivot.engine == dist::PivotEngine::tsqr || options_.pivot.engine == dist::PivotEngine::gram,
          "CompressionEngine: a streamed compression set is reduced to R factors block by block, which the ",
          dist::to_string(options_.pivot.engine),
          " pivot engine cannot use (it needs the activations in memory): use the tsqr or gram engine, or no "
          "streaming");
}

CompressionEngine::~CompressionEngine() = default;
CompressionEngine::CompressionEngine(CompressionEngine&&) noexcept = default;
CompressionEngine& CompressionEngine::operator=(CompressionEngine&&) noexcept = default;

double CompressionEngine::next_norm(index_t layer) {
  require(layer >= 0 && layer < original_.num_hidden(), "CompressionEngine::next_norm: layer ", layer, " outside [0, ",
          original_.num_hidden(), ")");
  if (next_norms_.empty()) {
    // On rank 0, broadcast: every rank must resolve the same eps rules.
    next_norms_ = dist::computed_on_root(comm(), [&] {
      // One SVD per layer, independent: TBB tasks with single-threaded BLAS (the same bits as one
      // after the other), instead of a tenth of a second with one core idle before the first factorization.
      std::vector<double> norms(uz(original_.num_hidden()));
      const std::string error = tasks(norms.size(), [&](std::size_t l) {
        norms[l] = la::norm2(original_.layer(static_cast<index_t>(l) + 1).weight());
      });
      if (!error.empty()) throw Error(error);
      return norms;
    });
  }
  return next_norms_[uz(layer)];
}

const Matrix& CompressionEngine::original_activations(index_t layer) {
  if (const auto it = original_z_.find(layer); it != original_z_.end()) return it->second;
  // A streamed set holds no rows here: whatever needs the activations themselves must stream them
  // (stream_blocks) or be refused, never read an empty matrix.
  require(!streamed(), "CompressionEngine: the activations of layer ", layer + 1,
          " are not held for a streamed compression set");
  Matrix z;
  // On the calling thread, layer after layer from the cache: BLAS may use every core here.
  const la::ConstMatrixView h = layer == 0 ? xc_.local() : original_activations(layer - 1).view();
  dist::check_collective(comm(), dist::capture_error([&] { original_.hidden(layer).forward(h, z); }));
  return original_z_.emplace(layer, std::move(z)).first->second;
}

const la::Svd& CompressionEngine::weight_svd(index_t layer) {
  if (const auto it = svds_.find(layer); it != svds_.end()) return it->second;
  la::Svd s;
  dist::check_collective(comm(), dist::capture_error([&] { s = la::svd(original_.hidden(layer).weight()); }));
  return svds_.emplace(layer, std::move(s)).first->second;
}

bool CompressionEngine::prereduces_r() const {
  // The engines whose input is each rank's R factor (tsqr: its R; gram: the Gram matrix R^T R).
  return options_.pivot.engine == dist::PivotEngine::tsqr || options_.pivot.engine == dist::PivotEngine::gram;
}

Matrix CompressionEngine::engine_block(const Matrix& z) const {
  // Row blocks of a fixed size as TBB tasks (nested in the node tasks): one node uses every thread
  // when a level has fewer nodes than threads, and the bits do not depend on the thread count.
  return prereduces_r() ? dist::kernel::local_r_threaded(z) : Matrix(z);
}

void CompressionEngine::check_inputs() {
  if (inputs_checked_) return;
  // Before any work: NaN/Inf would otherwise surface as NaN activations deep inside an engine.
  dist::check_collective(comm(), nn::non_finite_parameter(original_));
  // A streamed set's rows are checked as they are read (stream_blocks).
  if (!streamed()) xc_.validate("CompressionEngine: the compression set");
  inputs_checked_ = true;
}

void CompressionEngine::check_plans(std::span<const PointPlan> plans) {
  for (std::size_t p = 0; p < plans.size(); ++p) {
    require(plans[p].policy != nullptr, "CompressionEngine: plan ", p, " has no selection policy");
    require(static_cast<index_t>(plans[p].layers.size()) == original_.num_hidden(), "CompressionEngine: plan ", p,
            " has ", plans[p].layers.size(), " layer rules for a model with ", original_.num_hidden(),
            " hidden layers");
    for (const auto& r : plans[p].layers)
      if (r) plans[p].policy->check(*r);
  }
  check_inputs();
}

void CompressionEngine::choose_activation_path(std::span<const PointPlan> plans) {
  // Plans whose policies need only the factorizations: a node whose activations Z (m x n per rank)
  // are large is factored from row blocks of its inputs as they are computed and never held; each
  // child's inputs, the kept columns, are recomputed from the same inputs (m k_in k multiply-adds, a
  // fraction k / n of the layer's products). Holding Z costs a write to fresh memory (a page fault
  // and a kernel zero fill per page, in a virtual machine as dear as the products), a copy for the R
  // factor and another for the kept columns. The choice depends on the sizes and the policies, not
  // on how the points are batched, so a point's model has the same bits in any batch. The sizes use
  // the global rows, so every rank takes the same path (the paths make different collective calls).
  bool factors_only = !streamed() && prereduces_r() && !plans.empty();
  bool original_factors_only = factors_only;
  for (const PointPlan& p : plans) {
    if (p.policy->needs_weight_svd()) factors_only = original_factors_only = false;
    for (std::size_t l = 0; l < p.layers.size(); ++l)
      if (p.layers[l] && p.policy->needs_moments(*p.layers[l], static_cast<index_t>(l)).any())
        factors_only = original_factors_only = false;
    if (p.policy->reads_activations()) factors_only = false;
    if (p.policy->reads_original_activations()) original_factors_only = false;
  }
  unheld_layers_ = factors_only;
  unheld_first_layer_ = original_factors_only;
}

bool CompressionEngine::unheld(index_t layer) const {
  const double per_rank_bytes = static_cast<double>(xc_.global_rows()) / static_cast<double>(comm().size()) *
                                static_cast<double>(original_.hidden(layer).d_out()) * sizeof(double);
  return per_rank_bytes > static_cast<double>(options_.unheld_bytes);
}

LayerContext CompressionEngine::context(const Node& node, index_t layer) {
  LayerContext c;
  c.layer = layer;
  c.current = &node.next;
  c.next = &original_.layer(layer + 1);
  c.factorization = node.f ? &*node.f : nullptr;
  const auto it = svds_.find(layer);
  c.weight_svd = it != svds_.end() ? &it->second : nullptr;
  c.original_inputs = node.original;
  c.next_norm = next_norm(layer);
  c.rows = xc_.global_rows();
  c.cpqr_method = options_.cpqr_method;
  const auto find = [&](const std::map<index_t, ActivationMoments>& m) -> const ActivationMoments* {
    const auto i = m.find(layer);
    return i != m.end() ? &i->second : nullptr;
  };
  c.original_input_moments = find(original_input_moments_);
  c.original_output_moments = find(original_output_moments_);
  c.input_moments = node.original ? c.original_input_moments : (node.input_moments ? &*node.input_moments : nullptr);
  c.output_moments =
      node.original ? c.original_output_moments : (node.output_moments ? &*node.output_moments : nullptr);
  return c;
}

std::size_t CompressionEngine::streamed_bytes_held() const {
  std::size_t total = 0;
  for (const auto& [key, node] : nodes_)
    for (const auto& m : node->streamed_h) total += uz(m.size()) * sizeof(double);
  return total;
}

void CompressionEngine::stream_blocks(std::span<Node* const> nodes) {
  // One pass over this rank's rows for every node of the level: each block is forwarded through
  // each node's network, and its rows, in dist::kernel::r_lanes equal parts, are stacked under the R
  // factors of as many lanes per node (StreamingR, in parallel), in row order; the lanes are
  // combined at the end (combine_r_tree), so R does not depend on the number of threads. With one R
  // per node the dtpqrt steps of a single node ran one after another, at a fraction of the cores
  // (streaming took twice the in-memory time at 50,000 rows).
  // A node whose inputs were kept (streamed_h, derived from its parent's) reads them instead of the
  // set; a node without keeps the inputs it computes when StreamedRows::cache_bytes allows, for
  // its children. The blocks are for_each_block's, so every product sees the rows it would see
  // when forwarded from the set: the same bits.
  const auto lanes = static_cast<std::size_t>(dist::kernel::r_lanes);
  std::vector<std::vector<dist::kernel::StreamingR>> acc(nodes.size());
  for (std::size_t i = 0; i < nodes.size(); ++i)
    for (std::size_t k = 0; k < lanes; ++k) acc[i].emplace_back(nodes[i]->next.d_out());
  const StreamedRows& s = *stream_;
  const index_t m = s.rows.rows();
  const index_t rows_per_block = std::min(s.block_rows, std::max<index_t>(m, 1));
  const index_t blocks = (m + rows_per_block - 1) / rows_per_block;
  std::vector<char> cached(nodes.size(), 0);
  std::vector<char> keep(nodes.size(), 0);
  std::size_t held = streamed_bytes_held();
  bool from_set = false;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    Node& n = *nodes[i];
    cached[i] = n.streamed_h.empty() ? 0 : 1;
    if (cached[i] != 0) {
      ++stats_.cached_passes;
      continue;
    }
    from_set = true;
    // Kept only where children can use them: a compressed network (the set itself is not held)
    // whose next hidden layer is factored after this one.
    const std::size_t bytes = uz(m) * uz(n.next.d_in()) * sizeof(double);
    const bool children_factor = n.depth() + 1 < original_.num_hidden();
    if (!n.layers.empty() && children_factor && held + bytes <= s.cache_bytes) {
      keep[i] = 1;
      held += bytes;
      n.streamed_h.resize(uz(blocks));
    }
  }
  std::vector<Matrix> a(nodes.size());
  std::vector<Matrix> b(nodes.size());
  const auto pass = [&](la::ConstMatrixView x, index_t first) {
    const auto block = uz(first / rows_per_block);
    if (from_set) {
      const std::string bad = la::non_finite_message(x, "CompressionEngine: the compression set", s.row_offset + first);
      require(bad.empty(), bad);
    }
    std::string e = tasks(nodes.size(), [&](std::size_t i) {
      Node& n = *nodes[i];
      la::ConstMatrixView h = x;
      if (cached[i] != 0) {
        h = n.streamed_h[block].view();
      } else {
        for (const auto& l : n.layers) {
          l->forward(h, b[i]);
          std::swap(a[i], b[i]);
          h = a[i].view();
        }
        if (keep[i] != 0) n.streamed_h[block] = Matrix(h);
      }
      n.next.forward(h, b[i]);
    });
    require(e.empty(), e);
    e = tasks(nodes.size() * lanes, [&](std::size_t t) {
      const std::size_t i = t / lanes;
      const auto k = static_cast<index_t>(t % lanes);
      const index_t rows = b[i].rows();
      const index_t from = dist::kernel::part_begin(rows, dist::kernel::r_lanes, k);
      const index_t to = dist::kernel::part_begin(rows, dist::kernel::r_lanes, k + 1);
      acc[i][t % lanes].add_rows(b[i].block(from, 0, to - from, b[i].cols()));
    });
    require(e.empty(), e);
  };
  const std::string error = dist::capture_error([&] {
    if (from_set) {
      data::for_each_block(s.rows, s.block_rows, pass);
    } else {
      for (index_t first = 0; first < m; first += rows_per_block) pass(la::ConstMatrixView(), first);
    }
  });
  if (!error.empty())
    for (std::size_t i = 0; i < nodes.size(); ++i)
      if (keep[i] != 0) nodes[i]->streamed_h.clear();  // partly filled
  dist::check_collective(comm(), error);
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    std::vector<Matrix> rs;
    for (const auto& lane : acc[i]) rs.push_back(lane.r());
    nodes[i]->block = dist::kernel::combine_r_tree(std::move(rs));
  }
}

void CompressionEngine::derive_streamed_inputs(std::span<const std::pair<Node*, Node*>> candidates) {
  // Each child's inputs from its parent's kept ones by the child's last layer, block by block: the
  // products stream_blocks would compute from the set on the same blocks, so the same bits. Each
  // parent block is freed once the children have theirs: memory goes from the parents' bytes to
  // the children's (within StreamedRows::cache_bytes), never their sum (to a block).
  const StreamedRows& s = *stream_;
  std::vector<Node*> parents;
  std::size_t parent_bytes = 0;
  for (const auto& [parent, child] : candidates)
    if (std::find(parents.begin(), parents.end(), parent) == parents.end()) {
      parents.push_back(parent);
      for (const auto& m : parent->streamed_h) parent_bytes += uz(m.size()) * sizeof(double);
    }
  const std::size_t others = streamed_bytes_held() - parent_bytes;
  std::vector<std::pair<Node*, Node*>> chosen;
  std::size_t child_bytes = 0;
  for (const auto& [parent, child] : candidates) {
    const std::size_t bytes = uz(s.rows.rows()) * uz(child->next.d_in()) * sizeof(double);
    if (others + std::max(parent_bytes, child_bytes + bytes) > s.cache_bytes) continue;
    child_bytes += bytes;
    child->streamed_h.resize(parent->streamed_h.size());
    chosen.emplace_back(parent, child);
  }
  const std::size_t blocks = parents.empty() ? 0 : parents.front()->streamed_h.size();
  std::string error;
  for (std::size_t b = 0; b < blocks && error.empty(); ++b) {
    error = tasks(chosen.size(), [&](std::size_t i) {
      const auto& [parent, child] = chosen[i];
      child->layers.back()->forward(parent->streamed_h[b].view(), child->streamed_h[b]);
    });
    for (Node* parent : parents) parent->streamed_h[b] = Matrix();
  }
  for (Node* parent : parents) parent->streamed_h.clear();
  if (!error.empty())
    for (const auto& [parent, child] : chosen) child->streamed_h.clear();
  dist::check_collective(comm(), error);
}

void CompressionEngine::ensure_activations(std::span<Node* const> nodes, index_t layer, bool blocks) {
  const ScopedTimer timer(stats_.activation_seconds);
  if (streamed()) {
    // Only R factors are kept; run() refuses what needs the activations themselves.
    require(blocks || nodes.empty(), "CompressionEngine: activations of a streamed compression set are never held");
    std::vector<Node*> todo;
    for (Node* n : nodes)
      if (n->block.empty()) todo.push_back(n);
    if (!todo.empty()) stream_blocks(todo);
    return;
  }
  std::vector<Node*> todo;
  for (Node* n : nodes) {
    const bool from_inputs =
        blocks && n->block.empty() && unheld(layer) &&
        (n->original ? layer == 0 && unheld_first_layer_ && original_z_.count(0) == 0 : unheld_layers_ && n->z.empty());
    if (from_inputs) {
      dist::check_collective(comm(), dist::capture_error([&] {
                               // Inputs not kept (a data-free policy came before): forward the set again.
                               if (!n->original && n->h.empty()) n->h = inputs_of(*n);
                               const la::ConstMatrixView h = n->original ? xc_.local() : n->h.view();
                               const nn::DenseLayer& next = n->next;
                               n->block = dist::kernel::local_r_threaded(
                                   h.rows(), next.d_out(), [&](index_t r0, la::MatrixView out) {
                                     next.forward_block(h.block(r0, 0, out.rows(), h.cols()), out);
                                   });
                             }));
      n->unheld = true;
      ++stats_.unheld_factorizations;
      continue;
    }
    if (n->original) {
      (void)original_activations(layer);
      if (blocks && n->block.empty()) {
        // The original's block is the largest: every thread on it (row blocks as TBB tasks; the
        // same bits for any thread count).
        dist::check_collective(comm(), dist::capture_error([&] { n->block = engine_block(original_z_.at(layer)); }));
      }
    } else if (n->z.empty() || (blocks && n->block.empty())) {
      todo.push_back(n);
    }
  }
  const std::string error = tasks(todo.size(), [&](std::size_t i) {
    Node& n = *todo[i];
    if (n.z.empty()) {
      if (n.h.empty()) {
        // Inputs not kept (a data-free policy came before): forward the compression set again.
        n.h = inputs_of(n);
      }
      n.next.forward(n.h, n.z);
    }
    if (blocks && n.block.empty()) n.block = engine_block(n.z);
  });
  dist::check_collective(comm(), error);
}

void CompressionEngine::ensure_factorizations(std::span<Node* const> nodes, std::span<const la::CpqrOptions> rules,
                                              index_t layer) {
  std::vector<Node*> todo;
  std::vector<la::CpqrOptions> todo_rules;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    Node* n = nodes[i];
    if (n->f && covers(n->f_rule, rules[i])) continue;
    todo.push_back(n);
    todo_rules.push_back(n->f ? loosest(n->f_rule, rules[i]) : rules[i]);
  }
  if (todo.empty()) return;
  ensure_activations(todo, layer, true);
  const ScopedTimer timer(stats_.factorization_seconds);
  const dist::Comm& c = comm();
  const bool prereduces = prereduces_r();
  std::vector<dist::DistMatrix> inputs;
  for (Node* n : todo) {
    if (prereduces) {
      // Rank r's n x n factor R_r as rows [r n, (r + 1) n) of [R_0; R_1; ...], whose R (tsqr) and
      // Gram matrix (gram) are those of Z itself.
      const index_t w = n->block.cols();
      inputs.emplace_back(c, n->block, static_cast<index_t>(c.rank()) * w, static_cast<index_t>(c.size()) * w);
    } else {
      inputs.emplace_back(c, n->block, xc_.row_offset(), xc_.global_rows());
    }
  }
  std::vector<dist::EngineStats> st(todo.size());
  std::vector<la::CpqrResult> fs = dist::distributed_cpqr_batch(inputs, todo_rules, options_.pivot, st);
  for (std::size_t i = 0; i < todo.size(); ++i) {
    todo[i]->f = std::move(fs[i]);
    todo[i]->f_rule = todo_rules[i];
    stats_.bytes_sent += st[i].bytes_sent;
  }
  stats_.factorizations += static_cast<std::int64_t>(todo.size());
}

Matrix CompressionEngine::inputs_of(const Node& node) const {
  // The node's compressed layers applied to this rank's rows of the compression set (no copy of
  // the set itself, which may be the largest array of the run).
  if (node.layers.empty()) return Matrix(xc_.local());
  Matrix a;
  Matrix b;
  node.layers.front()->forward(xc_.local(), a);
  for (std::size_t i = 1; i < node.layers.size(); ++i) {
    node.layers[i]->forward(a, b);
    std::swap(a, b);
  }
  return a;
}

Matrix CompressionEngine::factored_activations(Node& parent, const nn::DenseLayer& layer, index_t l) {
  const la::ScopedBlasThreads single(1);  // the same bits for any thread count
  Matrix y;
  if (parent.original) {
    layer.forward(l == 0 ? xc_.local() : original_z_.at(l - 1).view(), y);
    return y;
  }
  if (parent.h.empty()) {
    layer.forward(inputs_of(parent), y);
    return y;
  }
  layer.forward(parent.h, y);
  return y;
}

void CompressionEngine::ensure_moments(std::span<Node* const> nodes, std::span<const MomentNeeds> needs,
                                       index_t layer) {
  // Rows per local block: the blocks are fixed by the data alone and summed in order, so the sums
  // have the same bits for any number of threads.
  constexpr index_t kBlockRows = 2048;
  const ScopedTimer timer(stats_.moment_seconds);
  struct Job {
    ActivationMoments* out = nullptr;
    Node* node = nullptr;  ///< non-original node whose input or output is summed
    bool outputs = false;
  };
  std::vector<Job> jobs;
  std::vector<Node*> need_inputs;
  std::vector<Node*> need_outputs;
  std::map<index_t, ActivationMoments> fresh_in;
  std::map<index_t, ActivationMoments> fresh_out;
  const auto original_job = [&](bool outputs) {
    auto& cache = outputs ? original_output_moments_ : original_input_moments_;
    auto& fresh = outputs ? fresh_out : fresh_in;
    if (cache.count(layer) != 0 || fresh.count(layer) != 0) return;
    jobs.push_back(Job{&fresh[layer], nullptr, outputs});
  };
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    Node* n = nodes[i];
    const MomentNeeds& w = needs[i];
    if (n->original || w.original) {
      if (w.inputs) original_job(false);
      if (w.outputs) original_job(true);
    }
    if (n->original) continue;
    if (w.inputs && !n->input_moments) {
      n->input_moments.emplace();
      jobs.push_back(Job{&*n->input_moments, n, false});
      need_inputs.push_back(n);
    }
    if (w.outputs && !n->output_moments) {
      n->output_moments.emplace();
      jobs.push_back(Job{&*n->output_moments, n, true});
      need_outputs.push_back(n);
    }
  }
  if (jobs.empty()) return;
  // The sources: the original's inputs and activations from the engine's cache (on this thread,
  // as original_activations always computes them), the nodes' from their stored inputs.
  for (const Job& j : jobs)
    if (j.node == nullptr) {
      if (j.outputs || layer > 0) (void)original_activations(j.outputs ? layer : layer - 1);
    }
  std::string error = tasks(need_inputs.size(), [&](std::size_t i) {
    Node& n = *need_inputs[i];
    if (!n.h.empty()) return;
    n.h = inputs_of(n);
  });
  dist::check_collective(comm(), error);
  ensure_activations(need_outputs, layer, false);
  const auto source = [&](const Job& j) -> la::ConstMatrixView {
    if (j.node == nullptr) {
      if (j.outputs) return original_z_.at(layer).view();
      return layer == 0 ? xc_.local() : original_z_.at(layer - 1).view();
    }
    return j.outputs ? j.node->z.view() : j.node->h.view();
  };
  // Local sums: one task per (job, row block), merged in block order.
  struct Part {
    std::size_t job = 0;
    index_t begin = 0;
    index_t rows = 0;
    ActivationMoments m;
  };
  std::vector<Part> parts;
  for (std::size_t j = 0; j < jobs.size(); ++j) {
    const la::ConstMatrixView x = source(jobs[j]);
    for (index_t b = 0; b < x.rows() || b == 0; b += kBlockRows)
      parts.push_back(Part{j, b, std::min(kBlockRows, x.rows() - b), {}});
  }
  error = tasks(parts.size(), [&](std::size_t i) {
    Part& part = parts[i];
    const la::ConstMatrixView x = source(jobs[part.job]);
    part.m = moments(x.rows_range(part.begin, part.rows));
  });
  dist::check_collective(comm(), error);
  for (Part& part : parts) merge(*jobs[part.job].out, part.m);
  // One reduction for the level: [rows, sum, gram] of every job.
  std::vector<double> buffer;
  for (const Job& j : jobs) {
    buffer.push_back(static_cast<double>(j.out->rows));
    buffer.insert(buffer.end(), j.out->sum.begin(), j.out->sum.end());
    buffer.insert(buffer.end(), j.out->gram.values().begin(), j.out->gram.values().end());
  }
  dist::sum_in_place(comm(), buffer);
  std::size_t at = 0;
  for (const Job& j : jobs) {
    // Row counts are integers far below 2^53: their double sum is exact.
    j.out->rows = static_cast<index_t>(buffer[at++]);
    for (double& v : j.out->sum) v = buffer[at++];
    for (double& v : j.out->gram.values()) v = buffer[at++];
  }
  for (auto& [l, m] : fresh_in) original_input_moments_.emplace(l, std::move(m));
  for (auto& [l, m] : fresh_out) original_output_moments_.emplace(l, std::move(m));
  stats_.moments += static_cast<std::int64_t>(jobs.size());
}

const ActivationMoments& CompressionEngine::original_moments(index_t layer) {
  require(layer >= 0 && layer < original_.num_hidden(), "CompressionEngine::original_moments: layer ", layer,
          " outside [0, ", original_.num_hidden(), ")");
  check_inputs();
  if (original_output_moments_.count(layer) == 0) {
    Node probe;  // stands for the original network's node at this layer
    Node* const nodes[] = {&probe};
    MomentNeeds need;
    need.outputs = true;
    need.original = true;
    const MomentNeeds needs[] = {need};
    ensure_moments(nodes, needs, layer);
  }
  return original_output_moments_.at(layer);
}

void CompressionEngine::prepare(std::span<const PointPlan> plans) {
  check_plans(plans);
  choose_activation_path(plans);
  (void)next_norm(0);
  // The loosest rule at each plan's first compressed layer, on the original network.
  std::map<index_t, la::CpqrOptions> rules;
  std::vector<index_t> svd_layers;
  for (const auto& p : plans) {
    index_t first = -1;
    for (std::size_t l = 0; l < p.layers.size() && first < 0; ++l)
      if (p.layers[l]) first = static_cast<index_t>(l);
    if (p.policy->needs_weight_svd())
      for (std::size_t l = 0; l < p.layers.size(); ++l)
        if (p.layers[l]) svd_layers.push_back(static_cast<index_t>(l));
    if (first < 0 || !p.policy->needs_factorization(*p.layers[uz(first)])) continue;
    const index_t width = original_.hidden(first).d_out();
    const index_t cap = std::min(xc_.global_rows(), width);
    LayerContext c;
    c.current = &original_.hidden(first);
    c.next_norm = next_norm(first);
    c.rows = xc_.global_rows();
    c.cpqr_method = options_.cpqr_method;
    const la::CpqrOptions o = options_.complete_factorizations
                                  ? complete_rule(xc_.global_rows(), width, options_.cpqr_method)
                                  : at_least_one_step(p.policy->stopping_rule(*p.layers[uz(first)], c), cap);
    const auto it = rules.find(first);
    rules[first] = it == rules.end() ? o : loosest(it->second, o);
  }
  for (index_t l : svd_layers) (void)weight_svd(l);
  if (rules.empty()) return;
  // The original network's nodes along the way (keys "-", "-", ...).
  (void)run(std::span<const PointPlan>(), nullptr);  // creates the root
  for (const auto& [layer, rule] : rules) {
    std::vector<std::string> key(uz(layer), "-");
    Node* n = nullptr;
    for (index_t d = 0; d <= layer; ++d) {
      std::vector<std::string> k(key.begin(), key.begin() + d);
      auto& slot = nodes_[k];
      if (!slot) {
        const Node& parent = *nodes_.at(std::vector<std::string>(key.begin(), key.begin() + d - 1));
        slot = std::make_unique<Node>();
        slot->key = k;
        slot->layers = parent.layers;
        slot->layers.push_back(std::make_shared<const nn::DenseLayer>(parent.next));
        slot->next = original_.layer(d);
        slot->outcomes = parent.outcomes;
        LayerOutcome o;
        o.width = original_.hidden(d - 1).d_out();
        o.kept = o.width;
        o.rank = std::min(original_.hidden(d - 1).d_in(), o.width);
        o.kept_neurons = all_columns(o.width);
        slot->outcomes.push_back(std::move(o));
        slot->first_columns = parent.first_columns;
      }
      n = slot.get();
    }
    Node* const one[] = {n};
    ensure_factorizations(one, std::span<const la::CpqrOptions>(&rule, 1), layer);
  }
}

std::vector<CompressionEngine::Node*> CompressionEngine::run(std::span<const PointPlan> plans,
                                                             std::vector<std::vector<Node*>>* path) {
  const index_t L = original_.num_hidden();
  ++clock_;
  auto& root_slot = nodes_[std::vector<std::string>{}];
  if (!root_slot) {
    root_slot = std::make_unique<Node>();
    root_slot->next = original_.hidden(0);
    root_slot->first_columns = all_columns(original_.hidden(0).d_out());
  }
  Node* root = root_slot.get();
  root->used = clock_;
  if (plans.empty()) return {};
  check_plans(plans);
  choose_activation_path(plans);
  (void)next_norm(0);
  const dist::Comm& c = comm();
  // BLAS single-threaded for the whole lockstep, also on this thread: a threaded BLAS call here
  // (a level's one CPQR, a least-squares solve) leaves OpenBLAS's workers spinning (sched_yield)
  // beside the TBB workers of the next phase, oversubscribing the cores. Row-blocked TBB tasks
  // (forward passes, local_r_threaded) use every thread instead.
  const la::ScopedBlasThreads single(1);

  std::vector<Node*> cur(plans.size(), root);
  std::vector<index_t> last(plans.size(), -1);
  index_t last_any = -1;
  for (std::size_t p = 0; p < plans.size(); ++p) {
    last[p] = last_compressed(plans[p]);
    last_any = std::max(last_any, last[p]);
  }
  if (path != nullptr) path->assign(plans.size(), std::vector<Node*>(uz(L), nullptr));

  for (index_t l = 0; l <= last_any; ++l) {
    const index_t width = original_.hidden(l).d_out();
    const index_t cap = std::min(xc_.global_rows(), width);
    // (b) every factorization a policy needs at this level, with the loosest rule through each node.
    std::vector<Node*> fnodes;
    std::vector<la::CpqrOptions> frules;
    for (std::size_t p = 0; p < plans.size(); ++p) {
      const auto& rule = plans[p].layers[uz(l)];
      if (last[p] < l || !rule) continue;
      if (plans[p].policy->needs_weight_svd()) (void)weight_svd(l);
      if (!plans[p].policy->needs_factorization(*rule)) continue;
      const la::CpqrOptions r =
          options_.complete_factorizations
              ? complete_rule(xc_.global_rows(), width, options_.cpqr_method)
              : at_least_one_step(plans[p].policy->stopping_rule(*rule, context(*cur[p], l)), cap);
      const auto it = std::find(fnodes.begin(), fnodes.end(), cur[p]);
      if (it == fnodes.end()) {
        fnodes.push_back(cur[p]);
        frules.push_back(r);
      } else {
        auto& known = frules[uz(it - fnodes.begin())];
        known = loosest(known, r);
      }
    }
    ensure_factorizations(fnodes, frules, l);
    // Activation moments the policies read, one reduction for the whole level.
    std::vector<Node*> mnodes;
    std::vector<MomentNeeds> mneeds;
    for (std::size_t p = 0; p < plans.size(); ++p) {
      const auto& rule = plans[p].layers[uz(l)];
      if (last[p] < l || !rule) continue;
      const MomentNeeds w = plans[p].policy->needs_moments(*rule, l);
      if (!w.any()) continue;
      require(!streamed(), "CompressionEngine: the ", plans[p].policy->key(),
              " policy reads activation moments, which a streamed compression set (--block-rows, --max-memory) "
              "does not accumulate: run it with the set in memory");
      const auto it = std::find(mnodes.begin(), mnodes.end(), cur[p]);
      if (it == mnodes.end()) {
        mnodes.push_back(cur[p]);
        mneeds.push_back(w);
      } else {
        auto& known = mneeds[uz(it - mnodes.begin())];
        known = known | w;
      }
    }
    ensure_moments(mnodes, mneeds, l);

    // Kept counts, then the children that are not cached yet.
    std::vector<index_t> kept(plans.size(), -1);
    std::vector<std::vector<std::string>> keys(plans.size());
    for (std::size_t p = 0; p < plans.size(); ++p) {
      if (last[p] < l) continue;
      const auto& rule = plans[p].layers[uz(l)];
      if (rule) {
        kept[p] = plans[p].policy->count(*rule, context(*cur[p], l));
        if (path != nullptr) (*path)[p][uz(l)] = cur[p];
      }
      keys[p] = cur[p]->key;
      keys[p].push_back(key_of(rule ? plans[p].policy.get() : nullptr, kept[p]));
    }
    struct Fresh {
      Node* parent = nullptr;
      const LayerPolicy* policy = nullptr;  ///< nullptr: the layer is left as it is
      index_t count = -1;
      std::vector<std::string> key;
      LayerChange change;
      std::unique_ptr<Node> node;
      bool continues = false;  ///< a plan goes on from the child to layer l + 1
      bool recompute = false;  ///< the child's inputs from its unheld parent's inputs and its own layer
    };
    std::vector<Fresh> fresh;
    for (std::size_t p = 0; p < plans.size(); ++p) {
      if (last[p] < l) continue;
      if (const auto it = nodes_.find(keys[p]); it != nodes_.end()) {
        if (it->second->used != clock_) ++stats_.cache_hits;
        it->second->used = clock_;
        continue;
      }
      if (std::any_of(fresh.begin(), fresh.end(), [&](const Fresh& f) { return f.key == keys[p]; })) continue;
      const bool compresses = plans[p].layers[uz(l)].has_value();
      fresh.push_back(Fresh{cur[p], compresses ? plans[p].policy.get() : nullptr, kept[p], keys[p], {}, {}});
    }

    if (!fresh.empty()) {
      ScopedTimer timer(stats_.fold_seconds);
      std::vector<LayerContext> contexts;
      for (const auto& f : fresh) contexts.push_back(context(*f.parent, l));
      std::string error = tasks(fresh.size(), [&](std::size_t i) {
        if (fresh[i].policy != nullptr) fresh[i].change = fresh[i].policy->change(fresh[i].count, contexts[i]);
      });
      dist::check_collective(c, error);
      timer.stop();

      // (b) every least-squares T of the level in one call. Parents whose children go on to later
      // layers need their activations too (computed from their stored inputs, the same bits as
      // when they were first computed), unless no data-driven work ever computed them.
      std::vector<Node*> needs_z;
      for (auto& f : fresh) {
        f.continues = std::any_of(keys.begin(), keys.end(), [&](const auto& k) {
          const auto p = static_cast<std::size_t>(&k - keys.data());
          return last[p] > l && k == f.key;
        });
        const bool from_inputs = !f.parent->original && !f.parent->h.empty();
        const bool fits = f.change.solve != LeastSquaresTarget::none || f.change.compensate_mean;
        // An unheld parent's activations were never held: a selection's kept columns come from the
        // parent's inputs (also when a fit computes them here, for the same bits in any batch).
        f.recompute =
            f.continues && l + 1 < L && f.parent->unheld && f.policy != nullptr && !f.change.replacement && !fits;
        if (fits || (f.continues && from_inputs && !f.change.replacement && !f.recompute && l + 1 < L))
          needs_z.push_back(f.parent);
      }
      for (const auto& f : fresh)
        if (streamed() && (f.change.solve != LeastSquaresTarget::none || f.change.compensate_mean))
          throw Error(detail::concat(
              "CompressionEngine: the ", f.policy->key(),
              f.change.compensate_mean ? " policy with mean compensation averages the activations"
                                       : " policy fits its interpolation by least squares against the activations",
              ", which a streamed compression set does not hold (--block-rows, --max-memory): run it with the "
              "set in memory"));
      if (streamed()) needs_z.clear();
      ensure_activations(needs_z, l, false);
      const auto z_of = [&](const Node* n) -> const Matrix& { return n->original ? original_z_.at(l) : n->z; };
      timer.restart(stats_.least_squares_seconds);
      std::vector<std::size_t> owners;
      std::vector<Matrix> lhs;
      std::vector<Matrix> rhs;
      std::vector<std::vector<index_t>> rest;
      for (std::size_t i = 0; i < fresh.size(); ++i) {
        const LayerChange& ch = fresh[i].change;
        if (ch.solve == LeastSquaresTarget::none) continue;
        owners.push_back(i);
        const Matrix& z = z_of(fresh[i].parent);
        const auto k = static_cast<index_t>(ch.selection.kept.size());
        // A factored selection (hybrid) is fitted from its own activations, not Z(:, C).
        Matrix a = ch.replacement ? factored_activations(*fresh[i].parent, *ch.replacement, l)
                                  : la::select_columns(z, ch.selection.kept);
        if (ch.intercept) {
          Matrix ai(z.rows(), k + 1);
          ai.block(0, 0, z.rows(), k).assign(a);
          ai.block(0, k, z.rows(), 1).fill(1.0);
          a = std::move(ai);
        }
        lhs.push_back(std::move(a));
        std::vector<index_t> others;
        if (ch.solve == LeastSquaresTarget::own_activations) {
          std::vector<char> in(uz(width), 0);
          for (index_t j : ch.selection.kept) in[uz(j)] = 1;
          for (index_t j = 0; j < width; ++j)
            if (in[uz(j)] == 0) others.push_back(j);
          rhs.push_back(la::select_columns(z, others));
        } else {
          rhs.emplace_back();  // the original activations, by view below
        }
        rest.push_back(std::move(others));
      }
      std::vector<dist::LeastSquaresProblem> problems;
      for (std::size_t j = 0; j < owners.size(); ++j) {
        const bool own = fresh[owners[j]].change.solve == LeastSquaresTarget::own_activations;
        problems.push_back({lhs[j].view(), own ? rhs[j].view() : original_activations(l).view()});
      }
      std::vector<Matrix> ts = dist::least_squares(c, problems);
      for (std::size_t j = 0; j < owners.size(); ++j) {
        LayerChange& ch = fresh[owners[j]].change;
        const auto k = static_cast<index_t>(ch.selection.kept.size());
        if (ch.solve == LeastSquaresTarget::own_activations) {
          // T(:, C) = I exactly, T(:, rest) = the fit: the skeleton columns are reproduced exactly.
          Matrix t(k, width);
          for (index_t i = 0; i < k; ++i) t(i, ch.selection.kept[uz(i)]) = 1.0;
          for (std::size_t r = 0; r < rest[j].size(); ++r)
            for (index_t i = 0; i < k; ++i) t(i, rest[j][r]) = ts[j](i, static_cast<index_t>(r));
          ch.selection.interpolation = std::move(t);
        } else if (ch.intercept) {
          // [T; t]: the last row multiplies the column of ones.
          ch.selection.interpolation = Matrix(ts[j].block(0, 0, k, width));
          ch.shift_values.assign(uz(width), 0.0);
          for (index_t i = 0; i < width; ++i) ch.shift_values[uz(i)] = ts[j](k, i);
        } else {
          ch.selection.interpolation = std::move(ts[j]);
        }
      }
      stats_.least_squares += static_cast<std::int64_t>(owners.size());

      // Mean compensation: shift += mean(Z_orig - Z(:, C) T) over the compression set. The sums of
      // the rows are linear, so each rank sums its rows of Z_orig and of the parent's Z and ONE
      // reduction gives every global column sum; T is the same on every rank.
      std::vector<std::size_t> compensated;
      for (std::size_t i = 0; i < fresh.size(); ++i)
        if (fresh[i].policy != nullptr && fresh[i].change.compensate_mean) compensated.push_back(i);
      if (!compensated.empty()) {
        const Matrix& z_orig = original_activations(l);
        std::vector<double> sums(uz(width) * (compensated.size() + 1), 0.0);
        const auto add_column_sums = [&](const Matrix& z, std::size_t slot) {
          for (index_t j = 0; j < z.cols(); ++j) {
            double acc = 0.0;
            for (double v : z.col(j)) acc += v;
            sums[slot * uz(width) + uz(j)] = acc;
          }
        };
        add_column_sums(z_orig, 0);
        for (std::size_t j = 0; j < compensated.size(); ++j) add_column_sums(z_of(fresh[compensated[j]].parent), j + 1);
        dist::sum_in_place(c, sums);
        const auto m = static_cast<double>(xc_.global_rows());
        for (std::size_t j = 0; j < compensated.size(); ++j) {
          LayerChange& ch = fresh[compensated[j]].change;
          const Selection& s = ch.selection;
          const auto k = static_cast<index_t>(s.kept.size());
          std::vector<double> mu(uz(width));
          for (index_t col = 0; col < width; ++col) {
            // mean(Z_orig(:, col)) - sum_i mean(Z(:, C_i)) T(i, col)
            double v = sums[uz(col)];
            for (index_t i = 0; i < k; ++i)
              v -= sums[(j + 1) * uz(width) + uz(s.kept[uz(i)])] * s.interpolation(i, col);
            mu[uz(col)] = v / m;
          }
          if (ch.shift_values.empty()) ch.shift_values.assign(uz(width), 0.0);
          for (index_t col = 0; col < width; ++col) ch.shift_values[uz(col)] += mu[uz(col)];
        }
      }

      // (c) the child nodes: layer l as changed, layer l + 1 with T folded in, and their inputs.
      timer.restart(stats_.fold_seconds);
      const nn::DenseLayer& following = original_.layer(l + 1);
      error = tasks(fresh.size(), [&](std::size_t i) {
        Fresh& f = fresh[i];
        const Node& par = *f.parent;
        // Inputs for the child only when the parent's activations were computed anyway (data-free
        // policies never compute them; a later data-driven layer recomputes them on demand).
        const bool have_z = par.original ? original_z_.count(l) != 0 : !par.z.empty();
        auto node = std::make_unique<Node>();
        node->key = f.key;
        node->used = clock_;
        node->layers = par.layers;
        node->outcomes = par.outcomes;
        node->first_columns = par.first_columns;
        node->first_interpolation = par.first_interpolation;
        node->second_columns = par.second_columns;
        const nn::DenseLayer& current = par.next;
        LayerOutcome o;
        o.width = width;
        o.kept = width;
        o.rank = std::min(current.d_in(), width);
        o.kept_neurons = all_columns(width);
        const LayerChange& ch = f.change;
        if (f.policy == nullptr) {
          node->original = par.original;
          node->layers.push_back(std::make_shared<const nn::DenseLayer>(current));
          node->next = following;
          if (!par.original && have_z && l + 1 < L) node->h = par.z;
          if (l == 1 && node->first_interpolation) node->second_columns = all_columns(width);
        } else if (ch.replacement && !ch.selection.kept.empty()) {
          // A selection whose kept columns were factored: T folds into layer l + 1 as for any
          // selection, layer l is the factorization (its activations are no columns of Z; the
          // child's inputs are recomputed when a later layer needs them).
          const Selection& s = ch.selection;
          node->original = false;
          FoldedLayers folded = fold_selection(current, following, s, ch.shift_values);
          node->layers.push_back(std::make_shared<const nn::DenseLayer>(*ch.replacement));
          node->next = std::move(folded.next);
          if (l == 0) node->first_columns.clear();
          if (l <= 1) node->first_interpolation.reset();
          o.compressed = true;
          o.kept = static_cast<index_t>(s.kept.size());
          o.rank =
              ch.replacement->factor_count() > 1 ? ch.replacement->factor(0).cols() : std::min(current.d_in(), o.kept);
          o.next_ratio = ch.next_ratio;
          o.kept_neurons = s.kept;
        } else if (ch.replacement) {
          node->original = false;
          node->layers.push_back(std::make_shared<const nn::DenseLayer>(*ch.replacement));
          node->next = following;
          if (l == 0) node->first_columns.clear();
          if (l <= 1) node->first_interpolation.reset();
          o.compressed = true;
          o.rank = f.count;
        } else {
          const Selection& s = ch.selection;
          node->original = false;
          FoldedLayers folded = fold_selection(current, following, s, ch.shift_values);
          node->layers.push_back(std::make_shared<const nn::DenseLayer>(std::move(folded.layer)));
          node->next = std::move(folded.next);
          if (f.recompute) {
            node->layers.back()->forward(par.original ? xc_.local() : par.h.view(), node->h);
          } else if (l + 1 < L && have_z) {
            node->h = la::select_columns(z_of(&par), s.kept);
          }
          if (l == 0) {
            node->first_columns = s.kept;
            // The first layer's ID (T(:, C) = I) lets scorers start the second layer from the
            // original's shared product Z_1 W_2; a dead layer's T = 0 is no ID.
            if (f.count > 0 && !s.identity_rows && ch.solve == LeastSquaresTarget::none && ch.shift_values.empty() &&
                L >= 2) {
              node->first_interpolation = std::make_shared<const Matrix>(s.interpolation);
              node->second_columns = all_columns(original_.hidden(1).d_out());
            }
          }
          if (l == 1 && node->first_interpolation) {
            if (ch.shift_values.empty())
              node->second_columns = s.kept;
            else
              node->first_interpolation.reset();
          }
          o.compressed = true;
          o.kept = static_cast<index_t>(s.kept.size());
          o.rank = std::min(current.d_in(), o.kept);
          o.next_ratio = ch.next_ratio;
          o.kept_neurons = s.kept;
        }
        node->outcomes.push_back(std::move(o));
        f.node = std::move(node);
      });
      dist::check_collective(c, error);
      if (streamed() && l + 1 < L) {
        std::vector<std::pair<Node*, Node*>> candidates;
        for (auto& f : fresh)
          if (f.continues && !f.parent->streamed_h.empty() && (f.policy == nullptr || !f.change.replacement))
            candidates.emplace_back(f.parent, f.node.get());
        derive_streamed_inputs(candidates);
      }
      for (auto& f : fresh) nodes_.emplace(f.key, std::move(f.node));
    }

    for (std::size_t p = 0; p < plans.size(); ++p)
      if (last[p] >= l) cur[p] = nodes_.at(keys[p]).get();
    // Activations are transient: a node keeps only its inputs h (and streamed_h only for its children).
    for (auto& [key, node] : nodes_)
      if (static_cast<index_t>(key.size()) == l) {
        node->z = Matrix();
        node->streamed_h.clear();
        if (!node->original) node->block = Matrix();
      }
  }
  for (auto& [key, node] : nodes_) node->streamed_h.clear();

  std::vector<Node*> leaves(plans.size(), nullptr);
  for (std::size_t p = 0; p < plans.size(); ++p)
    if (last[p] >= 0) leaves[p] = cur[p];
  evict();
  return leaves;
}

void CompressionEngine::clear_cache() {
  for (auto it = nodes_.begin(); it != nodes_.end();) it = it->second->original ? std::next(it) : nodes_.erase(it);
}

void CompressionEngine::evict() {
  std::size_t total = 0;
  for (const auto& [key, node] : nodes_) total += node->bytes();
  if (total <= options_.cache_bytes) return;
  std::vector<std::pair<std::uint64_t, const std::vector<std::string>*>> order;
  for (const auto& [key, node] : nodes_)
    if (!node->original && node->used != clock_) order.emplace_back(node->used, &key);
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

CompressedModel CompressionEngine::assemble(const Node* leaf, const PointPlan& plan) {
  const index_t L = original_.num_hidden();
  CompressedModel out;
  std::vector<nn::DenseLayer> hidden;
  index_t depth = 0;
  if (leaf != nullptr) {
    depth = leaf->depth();
    for (const auto& layer : leaf->layers) hidden.push_back(*layer);
    out.layers = leaf->outcomes;
    out.first_layer_columns = leaf->first_columns;
    out.first_interpolation = leaf->first_interpolation;
    out.second_layer_columns = leaf->second_columns;
  } else {
    out.first_layer_columns = all_columns(original_.hidden(0).d_out());
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
    o.kept_neurons = all_columns(o.width);
    out.layers.push_back(std::move(o));
  }
  for (index_t l = 0; l < L; ++l) {
    const auto& r = plan.layers[uz(l)];
    if (r && r->rule == RankRule::eps) {
      const double norm = next_norms_[uz(l)];
      out.layers[uz(l)].rel_tol = norm > 0.0 ? r->value / norm : 1.0;
    }
  }
  out.model = nn::Mlp(std::move(hidden), std::move(classifier), original_.metadata());
  return out;
}

std::vector<CompressedModel> CompressionEngine::compress(std::span<const PointPlan> plans) {
  prepare(plans);
  const std::vector<Node*> leaves = run(plans, nullptr);
  std::vector<CompressedModel> out(plans.size());
  const std::string error = tasks(plans.size(), [&](std::size_t p) { out[p] = assemble(leaves[p], plans[p]); });
  dist::check_collective(comm(), error);
  stats_.models += static_cast<std::int64_t>(plans.size());
  return out;
}

std::vector<std::vector<la::CpqrResult>> CompressionEngine::factorizations(std::span<const PointPlan> plans) {
  std::vector<std::vector<Node*>> path;
  (void)run(plans, &path);
  std::vector<std::vector<la::CpqrResult>> out(plans.size());
  for (std::size_t p = 0; p < plans.size(); ++p)
    for (Node* node : path[p]) out[p].push_back(node != nullptr && node->f ? *node->f : la::CpqrResult{});
  return out;
}

}  // namespace idprune::compress
