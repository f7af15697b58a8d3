#include "idprune/nn/evaluate.hpp"

#include <vector>

namespace idprune::nn {

ClassCounts evaluate(const Mlp& model, la::ConstMatrixView x, std::span<const int> labels, int classes,
                     index_t batch_rows, Precision precision) {
  require(model.num_classes() == classes, "evaluate: model has ", model.num_classes(), " outputs, data has ", classes,
          " classes");
  require(x.cols() == model.input_dim(), "evaluate: data has ", x.cols(), " features, model expects ",
          model.input_dim());
  if (precision == Precision::f32)
    return count_correct(predict(model, x, Precision::f32, ForwardOptions{batch_rows}), labels, classes);
  return count_correct(model.predict(x, batch_rows), labels, classes);
}

ClassCounts allreduce_counts(const dist::Comm& comm, const ClassCounts& local) {
  const std::size_t classes = local.correct.size();
  require(local.total.size() == classes, "allreduce_counts: ", classes, " correct counts but ", local.total.size(),
          " totals");
  // Collective on the class count first, so a mismatch is an error and not a garbled sum.
  const auto most = comm.max(static_cast<std::int64_t>(classes));
  const auto least = comm.min(static_cast<std::int64_t>(classes));
  if (most != least)
    throw dist::CollectiveError(
        0, detail::concat("allreduce_counts: ranks disagree on the number of classes (", least, " to ", most, ")"));
  std::vector<std::int64_t> buffer(local.correct);
  buffer.insert(buffer.end(), local.total.begin(), local.total.end());
  comm.allreduce_sum(std::span<std::int64_t>(buffer));
  ClassCounts sum;
  sum.correct.assign(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(classes));
  sum.total.assign(buffer.begin() + static_cast<std::ptrdiff_t>(classes), buffer.end());
  return sum;
}

ClassCounts evaluate_split(const Mlp& model, const std::string& dir, data::Split split, const dist::Comm& comm,
                           index_t batch_rows, Precision precision) {
  ClassCounts local;
  dist::check_collective(comm, dist::capture_error([&] {
                           const auto info = data::dataset_info(dir, split);
                           const auto rows = dist::block_rows(info.samples, comm.size(), comm.rank());
                           if (rows.count == 0) {  // more ranks than rows: this rank contributes zeros
                             local = count_correct({}, {}, info.classes);
                             return;
                           }
                           const data::Dataset block = data::load_dataset(dir, split, rows.begin, rows.count);
                           require(block.samples() == rows.count, "evaluate_split: ", dir, " gave ", block.samples(),
                                   " rows for the block [", rows.begin, ", ", rows.begin + rows.count, ")");
                           local = evaluate(model, block.x, block.y, block.classes, batch_rows, precision);
                         }));
  return allreduce_counts(comm, local);
}

}  // namespace idprune::nn
