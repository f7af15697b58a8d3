// The engine's activation moments (needs_moments) under MPI (run under mpiexec -n 1..4): what a
// policy reads equals the moments of the whole compression set computed directly, for the node's
// network and the original's, and does not depend on the number of threads (bitwise) or ranks.
#include <gtest/gtest.h>
#include <tbb/global_control.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>

#include "fixtures.hpp"
#include "idprune/compress/engine.hpp"
#include "idprune/compress/layer.hpp"
#include "idprune/compress/moments.hpp"
#include "idprune/dist/comm.hpp"
#include "support/distributed.hpp"

namespace idprune::test {
namespace {

using compress::ActivationMoments;
using compress::LayerRule;
using compress::RankRule;

/// What the probe saw at one layer of one node.
struct Seen {
  ActivationMoments input;
  ActivationMoments output;
  ActivationMoments original_input;
  ActivationMoments original_output;
  nn::DenseLayer current;
};

/// Keeps the first k neurons with T = rows of the identity and records the moments it is given.
class ProbePolicy : public compress::LayerPolicy {
 public:
  using compress::LayerPolicy::needs_moments;
  [[nodiscard]] std::string key() const override { return "probe"; }
  void check(const LayerRule& /*rule*/) const override {}
  [[nodiscard]] bool needs_factorization(const LayerRule& /*rule*/) const override { return false; }
  [[nodiscard]] compress::MomentNeeds needs_moments(const LayerRule& /*rule*/) const override {
    return {true, true, true};
  }
  [[nodiscard]] index_t count(const LayerRule& rule, const compress::LayerContext& c) const override {
    const std::lock_guard<std::mutex> lock(mutex_);
    EXPECT_NE(c.input_moments, nullptr);
    EXPECT_NE(c.output_moments, nullptr);
    EXPECT_NE(c.original_input_moments, nullptr);
    EXPECT_NE(c.original_output_moments, nullptr);
    if (c.input_moments != nullptr && c.output_moments != nullptr && c.original_input_moments != nullptr &&
        c.original_output_moments != nullptr)
      seen_[c.layer] =
          Seen{*c.input_moments, *c.output_moments, *c.original_input_moments, *c.original_output_moments, *c.current};
    return static_cast<index_t>(rule.value);
  }
  [[nodiscard]] compress::LayerChange change(index_t k, const compress::LayerContext& c) const override {
    compress::LayerChange out;
    out.selection.kept.resize(static_cast<std::size_t>(k));
    for (index_t i = 0; i < k; ++i) out.selection.kept[static_cast<std::size_t>(i)] = i;
    out.selection.interpolation = Matrix(k, c.current->d_out());
    for (index_t i = 0; i < k; ++i) out.selection.interpolation(i, i) = 1.0;
    out.selection.identity_rows = true;
    return out;
  }
  [[nodiscard]] std::map<index_t, Seen> seen() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return seen_;
  }

 private:
  mutable std::mutex mutex_;
  mutable std::map<index_t, Seen> seen_;
};

double scale_of(const ActivationMoments& m) {
  double s = 1.0;
  for (double v : m.gram.values()) s = std::max(s, std::abs(v));
  return s;
}

/// Equal to rounding: relative to the largest Gram entry.
void expect_close(const ActivationMoments& got, const ActivationMoments& want, const std::string& what) {
  ASSERT_EQ(got.rows, want.rows) << what;
  ASSERT_EQ(got.cols(), want.cols()) << what;
  const double tol = 1e-12 * scale_of(want);
  EXPECT_LE(max_abs_diff(got.gram, want.gram), tol) << what;
  for (index_t j = 0; j < want.cols(); ++j)
    EXPECT_NEAR(got.sum[static_cast<std::size_t>(j)], want.sum[static_cast<std::size_t>(j)], tol) << what;
}

bool bitwise_equal(const ActivationMoments& a, const ActivationMoments& b) {
  return a.rows == b.rows && a.sum == b.sum && a.gram.rows() == b.gram.rows() && a.gram.cols() == b.gram.cols() &&
         std::equal(a.gram.values().begin(), a.gram.values().end(), b.gram.values().begin());
}

const std::vector<index_t> kKept = {20, 13, 9};

// Every layer compressed in turn: at layer l the node's input moments are those of the compressed
// network's first l layers on the whole compression set (all ranks' rows), its output moments those
// of the current layer l (T of layer l - 1 folded in) on them, and the original's those of the
// uncompressed network. More rows than the engine's row block (2048), so several blocks are merged.
TEST(EngineMoments, EqualTheMomentsOfTheWholeCompressionSet) {
  const dist::Comm comm = dist::Comm::world();
  const nn::Mlp model = random_mlp(24, {32, 24, 16}, 5, true, 171);
  const Matrix xc = structured_inputs(4500, 24, 8, 172);
  const auto probe = std::make_shared<ProbePolicy>();
  compress::CompressionEngine engine(model, distribute(xc, comm), {});
  const std::vector<compress::PointPlan> plans = {compress::kept_plan(probe, kKept)};
  const compress::CompressedModel m = engine.compress(plans).front();
  const auto seen = probe->seen();
  ASSERT_EQ(seen.size(), 3u);
  Matrix h = xc;
  Matrix h_orig = xc;
  for (index_t l = 0; l < 3; ++l) {
    const Seen& s = seen.at(l);
    const std::string at = "layer " + std::to_string(l);
    expect_close(s.input, compress::moments(h), at + " input");
    Matrix z;
    s.current.forward(h, z);
    expect_close(s.output, compress::moments(z), at + " output");
    Matrix z_orig;
    model.hidden(l).forward(h_orig, z_orig);
    expect_close(s.original_input, compress::moments(h_orig), at + " original input");
    expect_close(s.original_output, compress::moments(z_orig), at + " original output");
    if (l == 0) {
      EXPECT_TRUE(bitwise_equal(s.input, s.original_input));
    }
    Matrix next;
    m.model.hidden(l).forward(h, next);
    h = std::move(next);
    h_orig = std::move(z_orig);
  }
}

// One thread or two: the same bits.
TEST(EngineMoments, DoNotDependOnTheNumberOfThreads) {
  const dist::Comm comm = dist::Comm::world();
  const nn::Mlp model = random_mlp(24, {32, 24, 16}, 5, false, 181);
  const Matrix xc = structured_inputs(4500, 24, 8, 182);
  std::vector<std::map<index_t, Seen>> runs;
  for (const int threads : {1, 2}) {
    const tbb::global_control gc(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(threads));
    tbb::task_arena arena(threads);
    const la::ScopedBlasThreads blas(threads);
    arena.execute([&] {
      const auto probe = std::make_shared<ProbePolicy>();
      compress::CompressionEngine engine(model, distribute(xc, comm), {});
      const std::vector<compress::PointPlan> plans = {compress::kept_plan(probe, kKept)};
      (void)engine.compress(plans);
      runs.push_back(probe->seen());
    });
  }
  ASSERT_EQ(runs.size(), 2u);
  ASSERT_EQ(runs[0].size(), 3u);
  for (const auto& [l, s] : runs[0]) {
    const Seen& t = runs[1].at(l);
    EXPECT_TRUE(bitwise_equal(s.input, t.input)) << "layer " << l;
    EXPECT_TRUE(bitwise_equal(s.output, t.output)) << "layer " << l;
    EXPECT_TRUE(bitwise_equal(s.original_input, t.original_input)) << "layer " << l;
    EXPECT_TRUE(bitwise_equal(s.original_output, t.original_output)) << "layer " << l;
  }
}

}  // namespace
}  // namespace idprune::test
