#pragma once
// The hidden activations of a network on a set of rows, each layer computed once from the previous
// one: H_1 = act(X W_1 + b_1), H_l = act(H_{l-1} W_l + b_l), l = 2..L. In memory for a matrix of
// rows, or block by block for a data::RowSource (O(block x widest layer) memory, whatever its rows).
//
// Each row's activations depend on that row alone, and the products are cut into fixed row blocks
// (ForwardOptions), so results are bitwise identical for any number of threads.
#include <functional>
#include <vector>

#include "idprune/data/row_source.hpp"
#include "idprune/nn/mlp.hpp"

namespace idprune::nn {

/// H_1, ..., H_L (n x d_l each) of the rows x (n x d_0), computed layer after layer.
[[nodiscard]] std::vector<la::Matrix> all_hidden_activations(const Mlp& model, la::ConstMatrixView x,
                                                             const ForwardOptions& options = {});

/// Called with layer l (0-based), the activations H_{l+1} of rows [first_row, first_row + rows) of
/// the source, valid during the call only.
using HiddenBlockCallback = std::function<void(index_t layer, la::ConstMatrixView activations, index_t first_row)>;

/// Streams `source` in blocks of block_rows rows (data::for_each_block); for each block, in order,
/// calls activation(l, H_{l+1} of the block, first_row) for l = 0, ..., L-1. The original network's
/// activations of a row set larger than memory: what a streamed reduction (TSQR R, Gram, sketch)
/// of every layer accumulates in one pass over the rows.
void for_each_hidden_activation(const Mlp& model, const data::RowSource& source, index_t block_rows,
                                const HiddenBlockCallback& activation, const ForwardOptions& options = {});

/// Floating-point operations of a full forward pass (every layer and the classifier) of `rows`
/// samples: rows * model.flops_per_sample(), i.e. 2 m k n per product of m x k by k x n.
[[nodiscard]] double forward_flops(const Mlp& model, index_t rows);

}  // namespace idprune::nn
