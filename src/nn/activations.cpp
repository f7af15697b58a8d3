#include "idprune/nn/activations.hpp"

#include <utility>

#include "idprune/la/error.hpp"

namespace idprune::nn {

std::vector<la::Matrix> all_hidden_activations(const Mlp& model, la::ConstMatrixView x, const ForwardOptions& options) {
  require(x.cols() == model.input_dim(), "all_hidden_activations: input has ", x.cols(), " columns, model expects ",
          model.input_dim());
  std::vector<la::Matrix> h(static_cast<std::size_t>(model.num_hidden()));
  for (index_t l = 0; l < model.num_hidden(); ++l) {
    const la::ConstMatrixView input = l == 0 ? x : h[static_cast<std::size_t>(l - 1)].view();
    model.hidden(l).forward(input, h[static_cast<std::size_t>(l)], options);
  }
  return h;
}

void for_each_hidden_activation(const Mlp& model, const data::RowSource& source, index_t block_rows,
                                const HiddenBlockCallback& activation, const ForwardOptions& options) {
  require(source.cols() == model.input_dim() || source.rows() == 0, "for_each_hidden_activation: the rows have ",
          source.cols(), " features, the model takes ", model.input_dim());
  // Two buffers reused across blocks and layers: memory O(block_rows x widest layer).
  la::Matrix a;
  la::Matrix b;
  data::for_each_block(source, block_rows, [&](la::ConstMatrixView rows, index_t first_row) {
    la::ConstMatrixView input = rows;
    for (index_t l = 0; l < model.num_hidden(); ++l) {
      model.hidden(l).forward(input, a, options);
      activation(l, a.view(), first_row);
      std::swap(a, b);
      input = b.view();
    }
  });
}

double forward_flops(const Mlp& model, index_t rows) {
  require(rows >= 0, "forward_flops: rows=", rows, " must be non-negative");
  return static_cast<double>(rows) * model.flops_per_sample();
}

}  // namespace idprune::nn
