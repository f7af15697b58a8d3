#pragma once
// What every column of idprune's result tables means: results.csv / results.jsonl (`idprune
// sweep`, one row per grid point) and pareto.csv (`idprune pareto`, one row per strategy and
// budget). `idprune report --help-columns` prints columns_reference(), which is also
// docs/results-columns.md; tests check the lists against the rows the code writes.
#include <span>
#include <string>

namespace idprune::report {

struct ColumnDoc {
  const char* name;
  const char* meaning;  ///< quantity, unit and how it is computed
};

/// The columns of results.csv (and the keys of each results.jsonl object), in file order.
[[nodiscard]] std::span<const ColumnDoc> sweep_columns();
/// Keys of results.csv rows that only some rows carry (float32 evaluation, --compare-precision), in
/// record order, right after `agreement`.
[[nodiscard]] std::span<const ColumnDoc> sweep_optional_columns();
/// The columns of pareto.csv, in file order.
[[nodiscard]] std::span<const ColumnDoc> pareto_columns();
/// Both lists as a Markdown reference page.
[[nodiscard]] std::string columns_reference();

}  // namespace idprune::report
