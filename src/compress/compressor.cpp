#include "idprune/compress/compressor.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <numeric>
#include <optional>
#include <string>

#include "idprune/dist/kernels.hpp"
#include "idprune/la/blas.hpp"
#include "idprune/la/svd.hpp"
#include "tasks.hpp"

namespace idprune::compress {

using la::Matrix;

namespace {
using la::uz;

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

/// A layer keeps at least one neuron: a rule asking for none (rel_tol >= 1) still runs one step.
la::CpqrOptions at_least_one_step(la::CpqrOptions o, index_t cap) {
  if (o.rel_tol >= 1.0) {
    o.rel_tol = 0.0;
    o.max_rank = o.max_rank < 0 ? 1 : std::max<index_t>(1, o.max_rank);
  }
  if (o.max_rank > cap) o.max_rank = cap;
  return o;
}

/// First and last hidden layer a plan compresses (-1 when none).
std::pair<index_t, index_t> compressed_span(const PointPlan& p) {
  index_t first = -1;
  index_t last = -1;
  for (std::size_t l = 0; l < p.layers.size(); ++l) {
    if (!p.layers[l]) continue;
    if (first < 0) first = static_cast<index_t>(l);
    last = static_cast<index_t>(l);
  }
  return {first, last};
}

std::vector<index_t> all_columns(index_t n) {
  std::vector<index_t> c(uz(n));
  std::iota(c.begin(), c.end(), index_t{0});
  return c;
}
}  // namespace

PointPlan uniform_plan(index_t num_hidden, std::span<const index_t> layers, const LayerRule& rule) {
  require(num_hidden >= 1, "uniform_plan: the model has no hidden layer");
  PointPlan p;
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

Compressor::Compressor(nn::Mlp original, dist::DistMatrix compression_set, CompressionOptions options)
    : original_(std::move(original)), xc_(std::move(compression_set)), options_(std::move(options)) {
  require(original_.num_hidden() >= 1, "Compressor: the model has no hidden layer to compress");
  require(xc_.cols() == original_.input_dim(), "Compressor: the compression set has ", xc_.cols(),
          " features, the model expects ", original_.input_dim());
}

dist::DistMatrix Compressor::distributed(Matrix local) const {
  return {xc_.comm(), std::move(local), xc_.row_offset(), xc_.global_rows()};
}

bool Compressor::prereduces() const {
  return options_.engine.engine == dist::PivotEngine::tsqr || options_.engine.engine == dist::PivotEngine::gram;
}

Matrix Compressor::engine_block(const Matrix& z) const { return prereduces() ? dist::kernel::local_r(z) : Matrix(z); }

dist::DistMatrix Compressor::engine_input(Matrix block) const {
  if (!prereduces()) return distributed(std::move(block));
  // Rank r contributes its n x n factor R_r as rows [r n, (r + 1) n) of the stacked matrix [R_0; R_1; ...],
  // whose R (tsqr) and Gram matrix R^T R (gram) are those of Z itself.
  const dist::Comm& comm = xc_.comm();
  const index_t n = block.cols();
  return {comm, std::move(block), static_cast<index_t>(comm.rank()) * n, static_cast<index_t>(comm.size()) * n};
}

const Matrix& Compressor::original_block(index_t layer) {
  if (const auto it = original_blocks_.find(layer); it != original_blocks_.end()) return it->second;
  const Matrix& z = original_activations(layer);
  Matrix block;
  const std::string error = dist::capture_error([&] { block = engine_block(z); });
  dist::check_collective(xc_.comm(), error);
  return original_blocks_.emplace(layer, std::move(block)).first->second;
}

double Compressor::next_norm(index_t layer) {
  if (const auto it = next_norms_.find(layer); it != next_norms_.end()) return it->second;
  // Computed on rank 0 and broadcast: every rank must derive the same ranks from it.
  double norm = 0.0;
  const std::string error = dist::capture_error([&] {
    if (xc_.comm().rank() == 0) norm = la::norm2(original_.layer(layer + 1).weight());
  });
  dist::check_collective(xc_.comm(), error);
  xc_.comm().bcast(std::span<double>(&norm, 1), 0);
  next_norms_[layer] = norm;
  return norm;
}

const Matrix& Compressor::original_activations(index_t layer) {
  if (const auto it = original_z_.find(layer); it != original_z_.end()) return it->second;
  Matrix z;
  const std::string error = dist::capture_error([&] { z = original_.hidden_activations(xc_.local(), layer); });
  dist::check_collective(xc_.comm(), error);
  return original_z_.emplace(layer, std::move(z)).first->second;
}

la::CpqrOptions Compressor::point_rule(const LayerRule& rule, index_t layer) {
  const index_t width = original_.hidden(layer).d_out();
  const double norm = rule.rule == RankRule::eps ? next_norm(layer) : 0.0;
  la::CpqrOptions o = cpqr_stopping_rule(rule, xc_.global_rows(), width, norm);
  o.method = options_.cpqr_method;
  return o;
}

const la::CpqrResult* Compressor::cached_factorization(index_t layer, const la::CpqrOptions& rule) const {
  const auto it = original_f_.find(layer);
  return it != original_f_.end() && covers(it->second.options, rule) ? &it->second.f : nullptr;
}

std::vector<la::CpqrResult> Compressor::factorize_batch(std::span<const Matrix* const> blocks,
                                                        std::span<const la::CpqrOptions> rules, index_t layer,
                                                        std::span<const char> original) {
  std::vector<dist::DistMatrix> inputs;
  inputs.reserve(blocks.size());
  for (const Matrix* b : blocks) inputs.push_back(engine_input(Matrix(*b)));
  std::vector<dist::EngineStats> st(blocks.size());
  std::vector<la::CpqrResult> fs = dist::distributed_cpqr_batch(inputs, rules, options_.engine, st);
  for (std::size_t i = 0; i < fs.size(); ++i) {
    ++stats_.factorizations;
    stats_.bytes_sent += st[i].bytes_sent;
    if (original[i] == 0) continue;
    const auto it = original_f_.find(layer);
    if (it == original_f_.end() || covers(rules[i], it->second.options))
      original_f_[layer] = Factorization{rules[i], fs[i]};
  }
  return fs;
}

la::CpqrResult Compressor::factorize(const Matrix& block, const la::CpqrOptions& rule, index_t layer, bool original) {
  if (const la::CpqrResult* f = original ? cached_factorization(layer, rule) : nullptr) return *f;
  const std::array<const Matrix*, 1> blocks = {&block};
  const std::array<char, 1> is_original = {original ? char{1} : char{0}};
  return std::move(factorize_batch(blocks, std::span<const la::CpqrOptions>(&rule, 1), layer, is_original).front());
}

void Compressor::check_plans(std::span<const PointPlan> points) const {
  for (std::size_t p = 0; p < points.size(); ++p) {
    require(static_cast<index_t>(points[p].layers.size()) == original_.num_hidden(), "Compressor: plan ", p, " has ",
            points[p].layers.size(), " layer rules for a model with ", original_.num_hidden(), " hidden layers");
    for (const auto& r : points[p].layers)
      if (r) check_rule(options_.strategy, *r);
  }
}

std::vector<CompressedModel> Compressor::fresh_models(std::size_t count) const {
  std::vector<CompressedModel> out(count);
  for (auto& m : out) {
    m.model = original_;
    m.layers.resize(uz(original_.num_hidden()));
    for (index_t l = 0; l < original_.num_hidden(); ++l) {
      const auto& layer = original_.hidden(l);
      auto& o = m.layers[uz(l)];
      o.width = layer.d_out();
      o.kept = layer.d_out();
      o.rank = std::min(layer.d_in(), layer.d_out());
    }
    m.first_layer_columns = all_columns(original_.hidden(0).d_out());
  }
  return out;
}

void Compressor::check_inputs() {
  if (inputs_checked_) return;
  // Before any work: NaN/Inf would otherwise surface as NaN activations deep inside an engine.
  dist::check_collective(xc_.comm(), nn::non_finite_parameter(original_));
  xc_.validate("Compressor: the compression set");
  inputs_checked_ = true;
}

void Compressor::prepare(std::span<const PointPlan> points) {
  check_plans(points);
  check_inputs();
  // Everything here is computed once (per layer) on the calling thread: BLAS may use every core.
  if (options_.strategy == Strategy::svd) {
    const auto t0 = Clock::now();
    const std::string error = dist::capture_error([&] {
      for (const auto& p : points)
        for (std::size_t l = 0; l < p.layers.size(); ++l)
          if (p.layers[l] && svds_.find(static_cast<index_t>(l)) == svds_.end())
            svds_.emplace(static_cast<index_t>(l), la::svd(original_.hidden(static_cast<index_t>(l)).weight()));
    });
    dist::check_collective(xc_.comm(), error);
    stats_.factorization_seconds += seconds_since(t0);
    return;
  }
  // The original network's activations at each point's first compressed layer, and the loosest
  // CPQR rule there over the points that factorize it.
  std::map<index_t, la::CpqrOptions> rules;
  std::vector<index_t> firsts;
  for (const auto& p : points) {
    const auto [first, last] = compressed_span(p);
    if (first < 0) continue;
    const LayerRule& r = *p.layers[uz(first)];
    const bool cpqr = options_.strategy == Strategy::greedy || r.rule == RankRule::eps;
    if (options_.strategy != Strategy::magnitude || cpqr) firsts.push_back(first);
    if (!cpqr) continue;
    const la::CpqrOptions o = point_rule(r, first);
    const auto it = rules.find(first);
    rules[first] = it == rules.end() ? o : loosest(it->second, o);
  }
  const auto t0 = Clock::now();
  for (index_t l : firsts) (void)original_activations(l);
  for (const auto& [layer, rule] : rules) (void)original_block(layer);
  stats_.activation_seconds += seconds_since(t0);
  for (const auto& [layer, rule] : rules) {
    const index_t cap = std::min(xc_.global_rows(), original_.hidden(layer).d_out());
    const auto t1 = Clock::now();
    (void)factorize(original_block(layer), at_least_one_step(rule, cap), layer, true);
    stats_.factorization_seconds += seconds_since(t1);
  }
}

std::vector<CompressedModel> Compressor::compress(std::span<const PointPlan> points) {
  // Shared work first (cached: free when prepare() already covered these points), with threaded BLAS;
  // then the lockstep, whose parallelism is TBB's alone: OpenBLAS stays single-threaded throughout,
  // so its idle worker threads never spin beside the TBB workers (oversubscription).
  prepare(points);
  const la::ScopedBlasThreads single(1);
  switch (options_.strategy) {
    case Strategy::greedy:
      return compress_by_data(points, Strategy::greedy);
    case Strategy::random: {
      const std::vector<PointPlan> plans = matched_plans(points);
      return compress_by_data(plans, Strategy::random);
    }
    case Strategy::magnitude:
      return compress_magnitude(points);
    case Strategy::svd:
      return compress_svd(points);
  }
  return {};
}

std::vector<PointPlan> Compressor::matched_plans(std::span<const PointPlan> points) {
  std::vector<PointPlan> plans(points.begin(), points.end());
  std::vector<std::size_t> eps_points;
  for (std::size_t p = 0; p < plans.size(); ++p)
    for (const auto& r : plans[p].layers)
      if (r && r->rule == RankRule::eps) {
        eps_points.push_back(p);
        break;
      }
  if (eps_points.empty()) return plans;
  std::vector<PointPlan> eps_plans;
  for (std::size_t p : eps_points) eps_plans.push_back(plans[p]);
  const std::vector<CompressedModel> greedy = compress_by_data(eps_plans, Strategy::greedy);
  for (std::size_t i = 0; i < eps_points.size(); ++i) {
    auto& plan = plans[eps_points[i]];
    for (std::size_t l = 0; l < plan.layers.size(); ++l)
      if (plan.layers[l] && plan.layers[l]->rule == RankRule::eps)
        plan.layers[l] = LayerRule{RankRule::k, static_cast<double>(greedy[i].layers[l].kept)};
  }
  return plans;
}

std::vector<CompressedModel> Compressor::compress_magnitude(std::span<const PointPlan> points) {
  const std::vector<PointPlan> plans = matched_plans(points);
  std::vector<CompressedModel> out = fresh_models(plans.size());
  const auto t0 = Clock::now();
  const std::string error = parallel::run_tasks(plans.size(), [&](std::size_t p) {
    for (std::size_t l = 0; l < plans[p].layers.size(); ++l) {
      if (!plans[p].layers[l]) continue;
      const auto layer = static_cast<index_t>(l);
      auto& o = out[p].layers[l];
      const index_t k = kept_count(*plans[p].layers[l], o.width);
      const Selection s = magnitude_selection(out[p].model, layer, k);
      apply_selection(out[p].model, layer, s);
      o.compressed = true;
      o.kept = k;
      o.rank = std::min(out[p].model.hidden(layer).d_in(), k);
      if (l == 0) out[p].first_layer_columns = s.kept;
    }
  });
  dist::check_collective(xc_.comm(), error);
  stats_.apply_seconds += seconds_since(t0);
  return out;
}

std::vector<CompressedModel> Compressor::compress_svd(std::span<const PointPlan> points) {
  std::vector<CompressedModel> out = fresh_models(points.size());
  const auto t1 = Clock::now();
  const std::string error = parallel::run_tasks(points.size(), [&](std::size_t p) {
    for (std::size_t l = 0; l < points[p].layers.size(); ++l) {
      if (!points[p].layers[l]) continue;
      const auto layer = static_cast<index_t>(l);
      const auto& original = original_.hidden(layer);
      const index_t r = svd_rank(*points[p].layers[l], original.d_in(), original.d_out());
      out[p].model.layer(layer) = svd_layer(original, svds_.at(layer), r);
      auto& o = out[p].layers[l];
      o.compressed = true;
      o.rank = r;
      if (l == 0) out[p].first_layer_columns.clear();
    }
  });
  dist::check_collective(xc_.comm(), error);
  stats_.apply_seconds += seconds_since(t1);
  return out;
}

std::vector<CompressedModel> Compressor::compress_by_data(std::span<const PointPlan> points, Strategy strategy) {
  std::vector<CompressedModel> out = fresh_models(points.size());
  const dist::Comm& comm = xc_.comm();
  std::vector<index_t> last(points.size());
  index_t last_any = -1;
  for (std::size_t p = 0; p < points.size(); ++p) {
    last[p] = compressed_span(points[p]).second;
    last_any = std::max(last_any, last[p]);
  }

  // A group: points whose networks agree up to the current layer. `h` is their input to it
  // (this rank's rows); original groups read the original network's activations from the cache.
  struct Group {
    std::vector<std::size_t> members;
    bool original = true;
    Matrix h;
  };
  std::vector<Group> groups(1);
  for (std::size_t p = 0; p < points.size(); ++p)
    if (last[p] >= 0) groups[0].members.push_back(p);

  for (index_t l = 0; l <= last_any; ++l) {
    // Points whose last compressed layer is behind them need no more activations.
    std::vector<Group> live;
    for (auto& g : groups) {
      std::erase_if(g.members, [&](std::size_t p) { return last[p] < l; });
      if (!g.members.empty()) live.push_back(std::move(g));
    }
    groups = std::move(live);
    const index_t width = original_.hidden(l).d_out();

    // (a) activations Z = act(H W_l + b_l), one per group.
    auto t0 = Clock::now();
    // With greedy, also each group's engine input (the local R factor for tsqr and gram: the
    // dominant O(m n^2) part of the factorization runs here, in parallel over groups).
    std::vector<Matrix> z_owned(groups.size());
    std::vector<Matrix> block_owned(groups.size());
    std::vector<const Matrix*> z(groups.size());
    std::vector<const Matrix*> block(groups.size(), nullptr);
    std::vector<std::size_t> computed;
    const auto compresses_here = [&](const Group& g) {
      return std::any_of(g.members.begin(), g.members.end(), [&](std::size_t p) { return points[p].layers[uz(l)]; });
    };
    for (std::size_t g = 0; g < groups.size(); ++g) {
      const bool needs_block = strategy == Strategy::greedy && compresses_here(groups[g]);
      if (groups[g].original) {
        z[g] = &original_activations(l);
        if (needs_block) block[g] = &original_block(l);
      } else {
        z[g] = &z_owned[g];
        if (needs_block) block[g] = &block_owned[g];
        computed.push_back(g);
      }
    }
    std::string error = parallel::run_tasks(computed.size(), [&](std::size_t i) {
      const std::size_t gi = computed[i];
      Group& g = groups[gi];
      out[g.members.front()].model.hidden(l).forward(g.h, z_owned[gi]);
      g.h = Matrix();
      if (block[gi] != nullptr) block_owned[gi] = engine_block(z_owned[gi]);
    });
    dist::check_collective(comm, error);
    stats_.activation_seconds += seconds_since(t0);

    // (b) selections: the collective part, on this thread only. A key is a kept count, -1 for
    // points that leave layer l as it is; each (group, key) becomes a group of the next layer.
    t0 = Clock::now();
    struct Key {
      std::size_t group;
      index_t k;
      std::vector<std::size_t> members;
      Selection selection;
    };
    std::vector<Key> keys;
    std::vector<la::CpqrResult> factorizations(groups.size());
    if (strategy == Strategy::greedy) {
      // Every group's factorization, with the loosest rule of its points, in one batch: the
      // engines' collective steps in turn on this thread, their local CPQRs in parallel.
      std::vector<std::size_t> batch;
      std::vector<la::CpqrOptions> batch_rules;
      const index_t cap = std::min(xc_.global_rows(), width);
      for (std::size_t g = 0; g < groups.size(); ++g) {
        std::optional<la::CpqrOptions> combined;
        for (std::size_t p : groups[g].members)
          if (points[p].layers[uz(l)]) {
            const la::CpqrOptions r = point_rule(*points[p].layers[uz(l)], l);
            combined = combined ? loosest(*combined, r) : r;
          }
        if (!combined) continue;
        const la::CpqrOptions rule = at_least_one_step(*combined, cap);
        if (const la::CpqrResult* f = groups[g].original ? cached_factorization(l, rule) : nullptr) {
          factorizations[g] = *f;
          continue;
        }
        batch.push_back(g);
        batch_rules.push_back(rule);
      }
      std::vector<const Matrix*> blocks;
      std::vector<char> original;
      for (std::size_t g : batch) {
        blocks.push_back(block[g]);
        original.push_back(groups[g].original ? 1 : 0);
      }
      std::vector<la::CpqrResult> fs = factorize_batch(blocks, batch_rules, l, original);
      for (std::size_t i = 0; i < batch.size(); ++i) factorizations[batch[i]] = std::move(fs[i]);
    }
    for (std::size_t g = 0; g < groups.size(); ++g) {
      std::map<index_t, std::vector<std::size_t>> by_k;
      std::vector<std::size_t> compressing;
      for (std::size_t p : groups[g].members)
        if (points[p].layers[uz(l)])
          compressing.push_back(p);
        else
          by_k[-1].push_back(p);
      if (!compressing.empty()) {
        if (strategy == Strategy::greedy) {
          std::vector<la::CpqrOptions> rules;
          for (std::size_t p : compressing) rules.push_back(point_rule(*points[p].layers[uz(l)], l));
          const la::CpqrResult& f = factorizations[g];
          for (std::size_t i = 0; i < compressing.size(); ++i) {
            const std::size_t p = compressing[i];
            // k = 0 only when every neuron is dead on the compression set (f.rank = 0).
            const index_t k = f.rank == 0 ? 0 : std::max<index_t>(1, prefix_rank(f, rules[i]));
            auto& o = out[p].layers[uz(l)];
            o.compressed = true;
            o.kept = std::max<index_t>(1, k);
            o.rel_tol = rules[i].rel_tol;
            const double next = k < f.rank ? f.diag[uz(k)] : f.next_diag;
            o.next_ratio = f.rank > 0 && f.diag.front() > 0.0 ? next / f.diag.front() : 0.0;
            by_k[k].push_back(p);
          }
        } else {
          for (std::size_t p : compressing) {
            const LayerRule& r = *points[p].layers[uz(l)];
            const index_t k = std::min(kept_count(r, width), width);
            auto& o = out[p].layers[uz(l)];
            o.compressed = true;
            o.kept = k;
            by_k[k].push_back(p);
          }
        }
      }
      for (auto& [k, members] : by_k) keys.push_back(Key{g, k, std::move(members), {}});
    }
    if (strategy == Strategy::random) {
      // The least-squares T is collective: computed here, once per distinct (group, k).
      for (auto& key : keys) {
        if (key.k < 0) continue;
        key.selection.kept = random_columns(width, key.k, options_.seed, l);
        const dist::DistMatrix zd = distributed(Matrix(*z[key.group]));
        key.selection.interpolation = least_squares_interpolation(zd, key.selection.kept);
      }
    }
    stats_.factorization_seconds += seconds_since(t0);

    // (c) form the selections (triangular solves), the next layer's inputs, and apply.
    t0 = Clock::now();
    error = parallel::run_tasks(keys.size(), [&](std::size_t i) {
      Key& key = keys[i];
      if (key.k < 0) return;
      if (strategy == Strategy::greedy)
        key.selection = key.k == 0 ? dead_layer_selection(width) : id_selection(factorizations[key.group], key.k);
    });
    dist::check_collective(comm, error);
    std::vector<Group> next(keys.size());
    std::vector<std::pair<std::size_t, std::size_t>> applications;  // (key, point)
    for (std::size_t i = 0; i < keys.size(); ++i) {
      next[i].members = keys[i].members;
      next[i].original = keys[i].k < 0 && groups[keys[i].group].original;
      if (keys[i].k >= 0)
        for (std::size_t p : keys[i].members) applications.emplace_back(i, p);
    }
    error = parallel::run_tasks(keys.size() + applications.size(), [&](std::size_t t) {
      if (t < keys.size()) {
        // The next layer's inputs: Z(:, C) for a compressed group (act is entrywise), Z otherwise.
        const Key& key = keys[t];
        const bool needed = !next[t].original &&
                            std::any_of(key.members.begin(), key.members.end(), [&](auto p) { return last[p] > l; });
        if (!needed) return;
        next[t].h = key.k < 0 ? Matrix(*z[key.group]) : la::select_columns(*z[key.group], key.selection.kept);
        return;
      }
      const auto [i, p] = applications[t - keys.size()];
      apply_selection(out[p].model, l, keys[i].selection);
      out[p].layers[uz(l)].rank = std::min(out[p].model.hidden(l).d_in(), out[p].layers[uz(l)].kept);
      if (l == 0) out[p].first_layer_columns = keys[i].selection.kept;
      if (l == 1) out[p].second_layer_columns = keys[i].selection.kept;
    });
    dist::check_collective(comm, error);
    if (strategy == Strategy::greedy && l == 0 && original_.num_hidden() >= 2) {
      // The first layer's ID interpolation, kept (once per selection) for the evaluation's
      // second-layer shortcut; a second layer left as it is keeps all of its columns.
      for (auto& key : keys) {
        if (key.k <= 0) continue;  // left alone, or dead (T = 0 is no ID)
        const auto t = std::make_shared<const Matrix>(std::move(key.selection.interpolation));
        for (std::size_t p : key.members) {
          out[p].first_interpolation = t;
          out[p].second_layer_columns = all_columns(original_.hidden(1).d_out());
        }
      }
    }
    groups = std::move(next);
    stats_.apply_seconds += seconds_since(t0);
  }
  return out;
}

CompressedModel compress_model(const nn::Mlp& model, const dist::DistMatrix& compression_set, const LayerRule& rule,
                               std::span<const index_t> layers, const CompressionOptions& options) {
  Compressor c(model, compression_set, options);
  const std::vector<PointPlan> plans = {uniform_plan(model.num_hidden(), layers, rule)};
  return std::move(c.compress(plans).front());
}

}  // namespace idprune::compress
