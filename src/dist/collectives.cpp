#include "idprune/dist/collectives.hpp"

#include <algorithm>

namespace idprune::dist {

using la::index_t;
using la::Matrix;

void sum_in_place(const Comm& comm, std::span<std::int64_t> counts) { comm.allreduce_sum(counts); }

// Open MPI's allreduce algorithms (recursive doubling, ring, Rabenseifner) end with every rank
// holding the same reduced bits; the order of the additions may depend on the number of ranks.
void sum_in_place(const Comm& comm, std::span<double> values) { comm.allreduce_sum(values); }

bool any_rank(const Comm& comm, bool flag) { return comm.max(flag ? 1 : 0) != 0; }

namespace {

/// Serialisation of a broadcast in two phases, visited in the same field order on every rank:
/// the shape phase records sizes (and integer scalars) in `head`, the data phase the integer and
/// double contents. The root writes; the others write too (only to size their receive buffers),
/// then read what arrived.
struct Walker {
  enum class Phase { shape, data };
  Phase phase = Phase::shape;
  bool write = true;
  std::vector<std::int64_t> head;
  std::vector<std::int64_t> ints;
  std::vector<double> dbls;
  std::size_t head_at = 0;
  std::size_t ints_at = 0;
  std::size_t dbls_at = 0;

  void integer(std::int64_t& v) {
    if (phase != Phase::shape) return;
    if (write)
      head.push_back(v);
    else
      v = head.at(head_at++);
  }
  void scalar(double& v) {
    if (phase != Phase::data) return;
    if (write)
      dbls.push_back(v);
    else
      v = dbls.at(dbls_at++);
  }
  void indices(std::vector<std::int64_t>& v) {
    if (phase == Phase::shape) return size(v);
    if (write) {
      ints.insert(ints.end(), v.begin(), v.end());
    } else {
      require(ints_at + v.size() <= ints.size(), "broadcast: the integer message is too short");
      std::copy_n(ints.begin() + static_cast<std::ptrdiff_t>(ints_at), v.size(), v.begin());
      ints_at += v.size();
    }
  }
  void values(std::span<double> v) {
    if (phase != Phase::data) return;
    if (write) {
      dbls.insert(dbls.end(), v.begin(), v.end());
    } else {
      require(dbls_at + v.size() <= dbls.size(), "broadcast: the double message is too short");
      std::copy_n(dbls.begin() + static_cast<std::ptrdiff_t>(dbls_at), v.size(), v.begin());
      dbls_at += v.size();
    }
  }
  void values(std::vector<double>& v) {
    if (phase == Phase::shape) return size(v);
    values(std::span<double>(v));
  }
  void matrix(Matrix& a) {
    if (phase == Phase::shape) {
      std::int64_t rows = a.rows();
      std::int64_t cols = a.cols();
      integer(rows);
      integer(cols);
      require(rows >= 0 && cols >= 0, "broadcast: a ", rows, " x ", cols, " matrix");
      if (!write) a = Matrix(rows, cols);
      return;
    }
    values(a.values());
  }
  template <class T>
  void size(std::vector<T>& v) {
    auto n = static_cast<std::int64_t>(v.size());
    integer(n);
    require(n >= 0, "broadcast: a vector of ", n, " entries");
    if (!write) v.resize(static_cast<std::size_t>(n));
  }
};

// A field added to CpqrResult must be added to visit() below, or a broadcast would lose it.
static_assert(sizeof(la::CpqrResult) == sizeof(index_t) + sizeof(std::vector<index_t>) + 2 * sizeof(Matrix) +
                                            2 * sizeof(std::vector<double>) + 2 * sizeof(double),
              "la::CpqrResult changed: update visit(Walker&, CpqrResult&)");

void visit(Walker& w, la::CpqrResult& f) {
  w.integer(f.rank);
  w.indices(f.pivots);
  w.matrix(f.r);
  w.values(f.diag);
  w.scalar(f.next_diag);
  w.scalar(f.residual_fro);
  w.matrix(f.householder);
  w.values(f.tau);
}

/// The broadcast of whatever `fields(walker)` visits: the same visit on every rank, three
/// messages at most (sizes, integers, doubles), empty ones not sent (every rank knows the sizes).
template <class Fields>
void broadcast_fields(const Comm& comm, int root, Fields&& fields) {
  const bool is_root = comm.rank() == root;
  Walker shape;  // on every rank: root's sizes, or (elsewhere) a buffer of the right length
  fields(shape);
  if (!shape.head.empty()) comm.bcast(std::span<std::int64_t>(shape.head), root);
  if (!is_root) {
    shape.write = false;
    fields(shape);
  }
  Walker data;
  data.phase = Walker::Phase::data;
  fields(data);
  if (!data.ints.empty()) comm.bcast(std::span<std::int64_t>(data.ints), root);
  if (!data.dbls.empty()) comm.bcast(std::span<double>(data.dbls), root);
  if (!is_root) {
    data.write = false;
    fields(data);
  }
}

}  // namespace

void broadcast(const Comm& comm, double& value, int root) {
  broadcast_fields(comm, root, [&](Walker& w) { w.scalar(value); });
}
void broadcast(const Comm& comm, std::int64_t& value, int root) {
  broadcast_fields(comm, root, [&](Walker& w) { w.integer(value); });
}
void broadcast(const Comm& comm, std::vector<double>& values, int root) {
  broadcast_fields(comm, root, [&](Walker& w) { w.values(values); });
}
void broadcast(const Comm& comm, std::vector<std::int64_t>& values, int root) {
  broadcast_fields(comm, root, [&](Walker& w) { w.indices(values); });
}
void broadcast(const Comm& comm, Matrix& a, int root) {
  broadcast_fields(comm, root, [&](Walker& w) { w.matrix(a); });
}
void broadcast(const Comm& comm, la::CpqrResult& result, int root) {
  broadcast_fields(comm, root, [&](Walker& w) { visit(w, result); });
}
void broadcast(const Comm& comm, std::span<la::CpqrResult> results, int root) {
  broadcast_fields(comm, root, [&](Walker& w) {
    for (la::CpqrResult& f : results) visit(w, f);
  });
}
void broadcast(const Comm& comm, std::vector<la::CpqrResult>& results, int root) {
  std::int64_t count = static_cast<std::int64_t>(results.size());
  broadcast(comm, count, root);
  results.resize(static_cast<std::size_t>(count));
  broadcast(comm, std::span<la::CpqrResult>(results), root);
}
void broadcast(const Comm& comm, la::InterpolativeDecomposition& id, int root) {
  broadcast_fields(comm, root, [&](Walker& w) {
    w.indices(id.skeleton);
    w.matrix(id.interpolation);
    visit(w, id.factorization);
  });
}

}  // namespace idprune::dist
