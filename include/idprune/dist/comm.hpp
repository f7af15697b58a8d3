#pragma once
// The one thin, typed wrapper through which idprune talks MPI (STYLE.md: "MPI calls go through one
// thin typed wrapper, from one thread per rank").
//
// Every MPI failure becomes an idprune::Error naming the routine (communicators created here use
// MPI_ERRORS_RETURN). Every call counts the payload bytes this rank sends, so that engines can
// report their communication volume:
//   send              the message size;
//   allreduce/reduce  this rank's contribution (count * sizeof(T)), whatever algorithm MPI uses;
//   bcast             the data size on the root, 0 elsewhere;
//   gather(v)         this rank's contribution (0 on the root for its own block: it stays local);
//   alltoallv         everything sent to other ranks.
// The counter is shared by copies of a Comm and is per communicator object, not global.
// This header does not include <mpi.h>: code above dist never sees MPI. The few places that need
// the raw MPI_Comm (drivers, tests, the ScaLAPACK engine) include "idprune/dist/mpi_interop.hpp".
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "idprune/la/error.hpp"
#include "idprune/la/matrix.hpp"

namespace idprune::dist {

/// MPI for the lifetime of the process: MPI_Init_thread(MPI_THREAD_FUNNELED) unless MPI is already
/// initialised (then it does nothing); finalises in the destructor if (and only if) it initialised.
/// Construct one at the top of main().
class Environment {
 public:
  Environment(int& argc, char**& argv);
  ~Environment();
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;
  Environment(Environment&&) = delete;
  Environment& operator=(Environment&&) = delete;

  /// True when MPI is initialised and not yet finalised.
  [[nodiscard]] static bool active();

 private:
  bool owns_ = false;
};

namespace detail {
/// The element types a Comm transfers (comm.cpp maps them to MPI datatypes).
enum class Datatype { f64, f32, i64, u64, i32, character, unsigned_character };
/// The reductions a Comm performs (comm.cpp maps them to MPI operations).
enum class ReduceOp { sum, max, min };

template <class T>
constexpr Datatype datatype_of() {
  if constexpr (std::is_same_v<T, double>)
    return Datatype::f64;
  else if constexpr (std::is_same_v<T, float>)
    return Datatype::f32;
  else if constexpr (std::is_same_v<T, std::int64_t>)
    return Datatype::i64;
  else if constexpr (std::is_same_v<T, std::uint64_t>)
    return Datatype::u64;
  else if constexpr (std::is_same_v<T, int>)
    return Datatype::i32;
  else if constexpr (std::is_same_v<T, char>)
    return Datatype::character;
  else if constexpr (std::is_same_v<T, unsigned char>)
    return Datatype::unsigned_character;
  else
    static_assert(sizeof(T) == 0, "idprune::dist: no MPI datatype for this type");
}

/// Access to the MPI communicator behind a Comm, for mpi_interop.hpp (defined in comm.cpp).
struct NativeAccess;
}  // namespace detail

/// A communicator: a non-owning view of an existing MPI communicator (world(), or wrap() of
/// mpi_interop.hpp), or the owner of one it created (duplicate(), split()), freed when the last
/// copy goes away.
class Comm {
 public:
  /// MPI_COMM_WORLD (its error handler is set to MPI_ERRORS_RETURN). Requires MPI to be initialised.
  static Comm world();

  [[nodiscard]] int rank() const { return rank_; }
  [[nodiscard]] int size() const { return size_; }

  /// MPI_Comm_dup: same group, separate message space, own byte counter.
  [[nodiscard]] Comm duplicate() const;
  /// MPI_Comm_split (color < 0 means MPI_UNDEFINED: that rank gets an empty Comm, size() == 0).
  [[nodiscard]] Comm split(int color, int key) const;
  /// Ranks on the same shared-memory node (MPI_Comm_split_type MPI_COMM_TYPE_SHARED).
  [[nodiscard]] Comm split_shared() const;

  void barrier() const;
  /// A barrier that sleeps instead of spinning (MPI_Ibarrier + MPI_Test every `poll_us`
  /// microseconds): ranks waiting here leave their core to a threaded computation on another rank.
  void idle_barrier(int poll_us = 200) const;

  template <class T>
  void allreduce_sum(std::span<T> inout) const {
    allreduce_raw(inout.data(), inout.size(), detail::datatype_of<T>(), detail::ReduceOp::sum, sizeof(T));
  }
  template <class T>
  void allreduce_max(std::span<T> inout) const {
    allreduce_raw(inout.data(), inout.size(), detail::datatype_of<T>(), detail::ReduceOp::max, sizeof(T));
  }
  template <class T>
  void allreduce_min(std::span<T> inout) const {
    allreduce_raw(inout.data(), inout.size(), detail::datatype_of<T>(), detail::ReduceOp::min, sizeof(T));
  }
  /// Sum onto `root` in place (other ranks' buffers are left unspecified-but-valid: unchanged).
  template <class T>
  void reduce_sum(std::span<T> inout, int root) const {
    reduce_raw(inout.data(), inout.size(), detail::datatype_of<T>(), detail::ReduceOp::sum, sizeof(T), root);
  }
  template <class T>
  void bcast(std::span<T> data, int root) const {
    bcast_raw(data.data(), data.size(), detail::datatype_of<T>(), sizeof(T), root);
  }
  /// Scalar conveniences.
  template <class T>
  [[nodiscard]] T sum(T value) const {
    allreduce_sum(std::span<T>(&value, 1));
    return value;
  }
  template <class T>
  [[nodiscard]] T max(T value) const {
    allreduce_max(std::span<T>(&value, 1));
    return value;
  }
  template <class T>
  [[nodiscard]] T min(T value) const {
    allreduce_min(std::span<T>(&value, 1));
    return value;
  }

  /// Blocking point-to-point (tag 0 unless given).
  template <class T>
  void send(std::span<const T> data, int dest, int tag = 0) const {
    send_raw(data.data(), data.size(), detail::datatype_of<T>(), sizeof(T), dest, tag);
  }
  template <class T>
  void recv(std::span<T> data, int source, int tag = 0) const {
    recv_raw(data.data(), data.size(), detail::datatype_of<T>(), sizeof(T), source, tag);
  }

  /// Every rank's `value`, in rank order, on every rank (MPI_Allgather).
  template <class T>
  [[nodiscard]] std::vector<T> allgather(T value) const {
    return allgather(std::span<const T>(&value, 1));
  }
  /// Every rank's `block` (the same size on every rank) concatenated in rank order (MPI_Allgather).
  template <class T>
  [[nodiscard]] std::vector<T> allgather(std::span<const T> block) const {
    std::vector<T> out(block.size() * static_cast<std::size_t>(size_));
    allgather_raw(block.data(), block.size(), out.data(), detail::datatype_of<T>(), sizeof(T));
    return out;
  }
  /// Concatenation of every rank's `local` (sizes may differ) in rank order, on `root` only
  /// (empty elsewhere) (MPI_Gatherv).
  template <class T>
  [[nodiscard]] std::vector<T> gatherv(std::span<const T> local, int root) const {
    const auto counts = allgather<std::int64_t>(static_cast<std::int64_t>(local.size()));
    std::vector<T> out;
    if (rank_ == root) {
      std::int64_t total = 0;
      for (auto c : counts) total += c;
      out.resize(static_cast<std::size_t>(total));
    }
    gatherv_raw(local.data(), counts, out.data(), detail::datatype_of<T>(), sizeof(T), root);
    return out;
  }
  /// MPI_Alltoallv: send_counts[r] items of `send` (consecutive, in rank order) go to rank r;
  /// returns what arrives, recv_counts[r] items from rank r in rank order.
  template <class T>
  [[nodiscard]] std::vector<T> alltoallv(std::span<const T> send, std::span<const std::int64_t> send_counts,
                                         std::span<const std::int64_t> recv_counts) const {
    std::int64_t total = 0;
    for (auto c : recv_counts) total += c;
    std::vector<T> out(static_cast<std::size_t>(total));
    alltoallv_raw(send.data(), send_counts, out.data(), recv_counts, detail::datatype_of<T>(), sizeof(T));
    return out;
  }

  /// Broadcasts a string from `root` (length, then bytes).
  void bcast_string(std::string& s, int root) const;

  /// Payload bytes this rank has sent through this communicator object (and its copies).
  [[nodiscard]] std::uint64_t bytes_sent() const;

 private:
  friend struct detail::NativeAccess;
  struct State;
  explicit Comm(std::shared_ptr<State> state);

  void allreduce_raw(void* buf, std::size_t count, detail::Datatype type, detail::ReduceOp op, std::size_t elem) const;
  void reduce_raw(void* buf, std::size_t count, detail::Datatype type, detail::ReduceOp op, std::size_t elem,
                  int root) const;
  void bcast_raw(void* buf, std::size_t count, detail::Datatype type, std::size_t elem, int root) const;
  void send_raw(const void* buf, std::size_t count, detail::Datatype type, std::size_t elem, int dest, int tag) const;
  void recv_raw(void* buf, std::size_t count, detail::Datatype type, std::size_t elem, int source, int tag) const;
  void allgather_raw(const void* block, std::size_t count, void* out, detail::Datatype type, std::size_t elem) const;
  void gatherv_raw(const void* local, std::span<const std::int64_t> counts, void* out, detail::Datatype type,
                   std::size_t elem, int root) const;
  void alltoallv_raw(const void* send, std::span<const std::int64_t> send_counts, void* recv,
                     std::span<const std::int64_t> recv_counts, detail::Datatype type, std::size_t elem) const;

  std::shared_ptr<State> state_;
  int rank_ = 0;
  int size_ = 0;
};

/// Contiguous block row partition of `rows` over `size` ranks: the first rows % size ranks get one
/// row more (uneven allowed; ranks get 0 rows when rows < size).
struct RowRange {
  la::index_t begin = 0;
  la::index_t count = 0;
};
RowRange block_rows(la::index_t rows, int size, int rank);

/// An error every rank of a communicator knows about (thrown by check_collective on every rank),
/// so a driver may report it once and exit normally on every rank instead of aborting.
class CollectiveError : public Error {
 public:
  CollectiveError(int failing_rank, const std::string& what) : Error(what), failing_rank_(failing_rank) {}
  [[nodiscard]] int failing_rank() const { return failing_rank_; }

 private:
  int failing_rank_;
};

/// Collective error check at a phase boundary: every rank calls it with its local error (empty if
/// ok); if any rank failed, every rank throws CollectiveError carrying the first (lowest) failing
/// rank's message, prefixed "rank R: ". Costs one allreduce of an int when nobody failed.
void check_collective(const Comm& comm, const std::string& local_error);

/// Collective consistency check: every rank passes a fingerprint of something that must be the same
/// on every rank (the model read, the data set's shape) and the message to report if its own value
/// differs from rank 0's; when any rank differs, every rank throws CollectiveError with the first
/// such rank's message (as check_collective). A rank holding a different model would otherwise
/// enter collectives with other sizes (a hang or an MPI error) or, with equal shapes, silently mix
/// two models. Costs one broadcast and one allreduce.
void check_same(const Comm& comm, std::uint64_t fingerprint, const std::string& message_if_different);

/// Runs `body` and turns an exception it throws on this rank into the error message for
/// check_collective (empty when it succeeded). Use: check_collective(comm, capture_error([&]{...})).
template <class F>
std::string capture_error(F&& body) {
  try {
    body();
  } catch (const std::exception& e) {
    return e.what();
  }
  return {};
}

/// For drivers: reports an exception escaping a subcommand and returns the exit code. A
/// CollectiveError (every rank has it) is printed by rank 0 only and returns 1 on every rank; any
/// other error is printed by the failing rank ("prefix: error (rank R of P): ...") and, when more
/// than one rank runs, ends every rank through MPI_Abort, so that no rank hangs in a collective.
int report_fatal_error(const std::string& prefix, const std::exception& e);

}  // namespace idprune::dist
