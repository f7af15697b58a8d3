#include "idprune/nn/train.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <random>

#include "idprune/data/sampling.hpp"
#include "idprune/la/blas.hpp"

namespace idprune::nn {

namespace {

// SplitMix64 finaliser (Steele, Lea & Flood 2014): decorrelates derived seeds.
std::uint64_t mix_seed(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Standard normal draws by the Box-Muller transform on std::mt19937_64 output (whose sequence the
// standard fixes), not std::normal_distribution (implementation-defined): same values everywhere.
class NormalSource {
 public:
  explicit NormalSource(std::uint64_t seed) : gen_(seed) {}
  double next() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double u1 = 1.0 - static_cast<double>(gen_() >> 11) * 0x1.0p-53;  // (0, 1]
    const double u2 = static_cast<double>(gen_() >> 11) * 0x1.0p-53;        // [0, 1)
    const double r = std::sqrt(-2.0 * std::log(u1));
    spare_ = r * std::sin(2.0 * std::numbers::pi * u2);
    has_spare_ = true;
    return r * std::cos(2.0 * std::numbers::pi * u2);
  }

 private:
  std::mt19937_64 gen_;
  double spare_ = 0.0;
  bool has_spare_ = false;
};

void check_trainable(const Mlp& model, const char* routine) {
  require(model.num_classes() > 0, routine, ": empty model");
}

void check_data(const Mlp& model, la::ConstMatrixView x, std::span<const int> labels, const char* routine) {
  require(x.cols() == model.input_dim(), routine, ": data has ", x.cols(), " features, model expects ",
          model.input_dim());
  require(static_cast<std::size_t>(x.rows()) == labels.size(), routine, ": ", x.rows(), " samples but ", labels.size(),
          " labels");
  const auto classes = model.num_classes();
  for (std::size_t i = 0; i < labels.size(); ++i)
    require(labels[i] >= 0 && labels[i] < classes, routine, ": label ", labels[i], " of sample ", i,
            " out of range [0, ", classes, ")");
}

// Buffers for one mini-batch of at most `rows` samples: layer outputs a[l] and their deltas d[l];
// for a factored layer W = F_1 ... F_q also the products of its first factors, u[l][f] = in F_1 ...
// F_{f+1} (f < q - 1), and their deltas.
struct Workspace {
  std::vector<la::Matrix> out;
  std::vector<la::Matrix> delta;
  std::vector<std::vector<la::Matrix>> inner;
  std::vector<std::vector<la::Matrix>> inner_delta;
  std::vector<double> row_max;
  std::vector<double> row_sum;

  Workspace(const Mlp& model, index_t rows) {
    for (index_t l = 0; l < model.num_layers(); ++l) {
      const DenseLayer& layer = model.layer(l);
      out.emplace_back(rows, layer.d_out());
      delta.emplace_back(rows, layer.d_out());
      inner.emplace_back();
      inner_delta.emplace_back();
      for (index_t f = 0; f + 1 < layer.factor_count(); ++f) {
        inner.back().emplace_back(rows, layer.factor(f).cols());
        inner_delta.back().emplace_back(rows, layer.factor(f).cols());
      }
    }
    row_max.resize(static_cast<std::size_t>(rows));
    row_sum.resize(static_cast<std::size_t>(rows));
  }
};

Gradients make_gradients(const Mlp& model) {
  Gradients g;
  for (index_t l = 0; l < model.num_layers(); ++l) {
    const auto& layer = model.layer(l);
    for (const la::Matrix& f : layer.factors()) g.weight.emplace_back(f.rows(), f.cols());
    g.bias.emplace_back(layer.has_bias() ? static_cast<std::size_t>(layer.d_out()) : 0, 0.0);
  }
  return g;
}

// Forward pass of the n = x.rows() samples into ws.out[l].rows_range(0, n); returns the summed
// cross-entropy and leaves dL/dZ = (softmax(Z) - onehot(y)) / n in ws.delta.back() when
// `want_delta`. `correct` (if non-null) receives the number of argmax hits.
double forward_loss(const Mlp& model, la::ConstMatrixView x, std::span<const int> labels, Workspace& ws,
                    bool want_delta, std::int64_t* correct) {
  const index_t n = x.rows();
  la::ConstMatrixView in = x;
  for (index_t l = 0; l < model.num_layers(); ++l) {
    const DenseLayer& layer = model.layer(l);
    const auto ul = static_cast<std::size_t>(l);
    la::MatrixView out = ws.out[ul].view().rows_range(0, n);
    la::ConstMatrixView u = in;
    for (index_t f = 0; f + 1 < layer.factor_count(); ++f) {
      const la::MatrixView next = ws.inner[ul][static_cast<std::size_t>(f)].view().rows_range(0, n);
      la::gemm(1.0, u, la::Op::none, layer.factor(f), la::Op::none, 0.0, next);
      u = next;
    }
    la::gemm(1.0, u, la::Op::none, layer.factor(layer.factor_count() - 1), la::Op::none, 0.0, out);
    const bool relu = layer.activation() == Activation::relu;
    for (index_t j = 0; j < out.cols(); ++j) {
      const double b = layer.has_bias() ? layer.bias()[static_cast<std::size_t>(j)] : 0.0;
      for (double& v : out.col(j)) {
        v += b;
        if (relu && v < 0.0) v = 0.0;
      }
    }
    in = out;
  }
  // Log-softmax with the row maximum subtracted: log sum exp never overflows.
  const la::ConstMatrixView z = in;
  auto& row_max = ws.row_max;
  auto& row_sum = ws.row_sum;
  std::vector<int> best(static_cast<std::size_t>(n), 0);
  for (index_t i = 0; i < n; ++i) row_max[static_cast<std::size_t>(i)] = z(i, 0);
  for (index_t j = 1; j < z.cols(); ++j)
    for (index_t i = 0; i < n; ++i)
      if (z(i, j) > row_max[static_cast<std::size_t>(i)]) {
        row_max[static_cast<std::size_t>(i)] = z(i, j);
        best[static_cast<std::size_t>(i)] = static_cast<int>(j);
      }
  std::fill(row_sum.begin(), row_sum.begin() + n, 0.0);
  for (index_t j = 0; j < z.cols(); ++j)
    for (index_t i = 0; i < n; ++i) row_sum[static_cast<std::size_t>(i)] += std::exp(z(i, j) - row_max[i]);
  double loss = 0.0;
  std::int64_t hits = 0;
  for (index_t i = 0; i < n; ++i) {
    const auto y = static_cast<index_t>(labels[static_cast<std::size_t>(i)]);
    loss -= z(i, y) - row_max[static_cast<std::size_t>(i)] - std::log(row_sum[static_cast<std::size_t>(i)]);
    hits += best[static_cast<std::size_t>(i)] == y ? 1 : 0;
  }
  if (correct != nullptr) *correct = hits;
  if (want_delta) {
    la::MatrixView dz = ws.delta.back().view().rows_range(0, n);
    const double scale = 1.0 / static_cast<double>(n);
    for (index_t j = 0; j < z.cols(); ++j)
      for (index_t i = 0; i < n; ++i)
        dz(i, j) = scale * std::exp(z(i, j) - row_max[static_cast<std::size_t>(i)]) / row_sum[i];
    for (index_t i = 0; i < n; ++i) dz(i, labels[static_cast<std::size_t>(i)]) -= scale;
  }
  return loss;
}

// Backpropagation after forward_loss(want_delta = true): for layer l with input A_{l-1},
//   dW_l = A_{l-1}^T G_l,  db_l = G_l^T 1,  G_{l-1} = (G_l W_l^T) .* [A_{l-1} > 0]  (ReLU);
// for a factored W_l = F_1 ... F_q with U_0 = A_{l-1}, U_f = U_{f-1} F_f and G^(q) = G_l,
//   dF_f = U_{f-1}^T G^(f),  G^(f-1) = G^(f) F_f^T,  and G_{l-1} = G^(0) before the mask.
void backward(const Mlp& model, la::ConstMatrixView x, Workspace& ws, Gradients& g) {
  const index_t n = x.rows();
  std::size_t next_factor = g.weight.size();  // gradients are laid out layer by layer, factor by factor
  for (index_t l = model.num_layers() - 1; l >= 0; --l) {
    const auto ul = static_cast<std::size_t>(l);
    const DenseLayer& layer = model.layer(l);
    const index_t q = layer.factor_count();
    next_factor -= static_cast<std::size_t>(q);
    const la::ConstMatrixView delta = ws.delta[ul].view().rows_range(0, n);
    const la::ConstMatrixView in = l == 0 ? x : ws.out[ul - 1].view().rows_range(0, n);
    if (layer.has_bias())
      for (index_t j = 0; j < delta.cols(); ++j) {
        double s = 0.0;
        for (double v : delta.col(j)) s += v;
        g.bias[ul][static_cast<std::size_t>(j)] = s;
      }
    la::ConstMatrixView gf = delta;  // G^(f+1), the delta of factor f's output
    for (index_t f = q - 1; f >= 0; --f) {
      const auto uf = static_cast<std::size_t>(f);
      const la::ConstMatrixView u = f == 0 ? in : ws.inner[ul][uf - 1].view().rows_range(0, n);
      la::gemm(1.0, u, la::Op::transpose, gf, la::Op::none, 0.0, g.weight[next_factor + uf].view());
      if (f == 0) break;
      const la::MatrixView before = ws.inner_delta[ul][uf - 1].view().rows_range(0, n);
      la::gemm(1.0, gf, la::Op::none, layer.factor(f), la::Op::transpose, 0.0, before);
      gf = before;
    }
    if (l == 0) break;
    la::MatrixView prev = ws.delta[ul - 1].view().rows_range(0, n);
    la::gemm(1.0, gf, la::Op::none, layer.factor(0), la::Op::transpose, 0.0, prev);
    if (model.layer(l - 1).activation() == Activation::relu) {
      const la::ConstMatrixView a = in;
      for (index_t j = 0; j < prev.cols(); ++j) {
        const auto acol = a.col(j);
        const auto pcol = prev.col(j);
        for (std::size_t i = 0; i < pcol.size(); ++i)
          if (!(acol[i] > 0.0)) pcol[i] = 0.0;
      }
    }
  }
}

// Adam with PyTorch's update: p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
void adam_step(std::span<double> p, std::span<const double> grad, std::span<double> m, std::span<double> v, double lr,
               const TrainOptions& o, std::int64_t step) {
  const double bc1 = 1.0 - std::pow(o.beta1, static_cast<double>(step));
  const double bc2 = std::sqrt(1.0 - std::pow(o.beta2, static_cast<double>(step)));
  const double step_size = lr / bc1;
  for (std::size_t k = 0; k < p.size(); ++k) {
    const double gk = grad[k];
    m[k] = o.beta1 * m[k] + (1.0 - o.beta1) * gk;
    v[k] = o.beta2 * v[k] + (1.0 - o.beta2) * gk * gk;
    p[k] -= step_size * m[k] / (std::sqrt(v[k]) / bc2 + o.adam_epsilon);
  }
}

}  // namespace

std::string_view to_string(LrSchedule schedule) { return schedule == LrSchedule::cosine ? "cosine" : "constant"; }

LrSchedule parse_lr_schedule(std::string_view name) {
  if (name == "cosine") return LrSchedule::cosine;
  if (name == "constant") return LrSchedule::constant;
  throw Error(detail::concat("unknown learning-rate schedule '", name, "' (expected constant or cosine)"));
}

Mlp initialize_mlp(index_t d_in, std::span<const index_t> hidden, index_t classes, bool bias, std::uint64_t seed) {
  require(d_in > 0 && classes > 0, "initialize_mlp: d_in=", d_in, ", classes=", classes, " must be positive");
  NormalSource normal(mix_seed(seed));
  std::vector<DenseLayer> layers;
  index_t previous = d_in;
  const auto make = [&](index_t d_out, double variance, Activation activation) {
    require(d_out > 0, "initialize_mlp: layer width ", d_out, " must be positive");
    la::Matrix w(previous, d_out);
    const double scale = std::sqrt(variance / static_cast<double>(previous));
    for (double& v : w.values()) v = scale * normal.next();
    DenseLayer layer(std::move(w), std::vector<double>(bias ? static_cast<std::size_t>(d_out) : 0, 0.0), activation);
    previous = d_out;
    return layer;
  };
  for (index_t width : hidden) layers.push_back(make(width, 2.0, Activation::relu));
  DenseLayer classifier = make(classes, 1.0, Activation::identity);
  return Mlp(std::move(layers), std::move(classifier));
}

double cross_entropy(const Mlp& model, la::ConstMatrixView x, std::span<const int> labels) {
  check_data(model, x, labels, "cross_entropy");
  if (x.rows() == 0) return 0.0;
  Workspace ws(model, x.rows());
  return forward_loss(model, x, labels, ws, false, nullptr) / static_cast<double>(x.rows());
}

double loss_and_gradient(const Mlp& model, la::ConstMatrixView x, std::span<const int> labels, Gradients& gradients) {
  check_trainable(model, "loss_and_gradient");
  check_data(model, x, labels, "loss_and_gradient");
  require(x.rows() > 0, "loss_and_gradient: no samples");
  gradients = make_gradients(model);
  Workspace ws(model, x.rows());
  const double loss = forward_loss(model, x, labels, ws, true, nullptr);
  backward(model, x, ws, gradients);
  return loss / static_cast<double>(x.rows());
}

std::vector<EpochReport> train(Mlp& model, la::ConstMatrixView x, std::span<const int> labels,
                               const TrainOptions& options, const EpochCallback& on_epoch) {
  check_trainable(model, "train");
  check_data(model, x, labels, "train");
  require(options.epochs >= 0 && options.batch_size > 0 && options.learning_rate > 0.0,
          "train: epochs=", options.epochs, ", batch_size=", options.batch_size,
          ", learning_rate=", options.learning_rate, " (need epochs >= 0, batch_size > 0, learning_rate > 0)");
  require(options.beta1 >= 0.0 && options.beta1 < 1.0 && options.beta2 >= 0.0 && options.beta2 < 1.0 &&
              options.adam_epsilon > 0.0,
          "train: beta1=", options.beta1, ", beta2=", options.beta2, ", epsilon=", options.adam_epsilon,
          " (need betas in [0, 1), epsilon > 0)");
  const index_t n = x.rows();
  require(n > 0, "train: no samples");
  const index_t batch = std::min(options.batch_size, n);
  Workspace ws(model, batch);
  Gradients g = make_gradients(model);
  Gradients m = make_gradients(model);
  Gradients v = make_gradients(model);
  la::Matrix xb(batch, x.cols());
  std::vector<int> yb(static_cast<std::size_t>(batch));
  std::vector<EpochReport> history;
  std::int64_t step = 0;
  for (int epoch = 0; epoch < options.epochs; ++epoch) {
    const double lr = options.schedule == LrSchedule::constant
                          ? options.learning_rate
                          : options.learning_rate * 0.5 *
                                (1.0 + std::cos(std::numbers::pi * epoch / static_cast<double>(options.epochs)));
    const auto order =
        data::random_permutation(n, mix_seed(options.seed ^ mix_seed(static_cast<std::uint64_t>(epoch))));
    double loss_sum = 0.0;
    std::int64_t correct = 0;
    for (index_t begin = 0; begin < n; begin += batch) {
      const index_t rows = std::min(batch, n - begin);
      // Gather the mini-batch column by column (x is column-major).
      la::MatrixView xv = xb.view().rows_range(0, rows);
      for (index_t j = 0; j < x.cols(); ++j) {
        const double* src = x.data() + j * x.ld();
        double* dst = xv.data() + j * xv.ld();
        for (index_t i = 0; i < rows; ++i) dst[i] = src[order[static_cast<std::size_t>(begin + i)]];
      }
      for (index_t i = 0; i < rows; ++i)
        yb[static_cast<std::size_t>(i)] = labels[static_cast<std::size_t>(order[static_cast<std::size_t>(begin + i)])];
      std::int64_t hits = 0;
      const std::span<const int> ys(yb.data(), static_cast<std::size_t>(rows));
      loss_sum += forward_loss(model, xv, ys, ws, true, &hits);
      correct += hits;
      backward(model, xv, ws, g);
      ++step;
      std::size_t k = 0;  // the factor's index in the gradients' layout
      for (index_t l = 0; l < model.num_layers(); ++l) {
        const auto ul = static_cast<std::size_t>(l);
        DenseLayer& layer = model.layer(l);
        for (index_t f = 0; f < layer.factor_count(); ++f, ++k) {
          la::MatrixView w = layer.factor_values(f);
          adam_step({w.data(), static_cast<std::size_t>(w.rows() * w.cols())}, g.weight[k].values(),
                    m.weight[k].values(), v.weight[k].values(), lr, options, step);
        }
        if (layer.has_bias()) adam_step(layer.bias_values(), g.bias[ul], m.bias[ul], v.bias[ul], lr, options, step);
      }
    }
    EpochReport report;
    report.epoch = epoch + 1;
    report.learning_rate = lr;
    report.loss = loss_sum / static_cast<double>(n);
    report.train_accuracy = static_cast<double>(correct) / static_cast<double>(n);
    history.push_back(report);
    if (on_epoch) on_epoch(report, model);
  }
  return history;
}

}  // namespace idprune::nn
