#include "idprune/dist/comm.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "idprune/dist/mpi_interop.hpp"

namespace idprune::dist {

namespace detail {
void check_mpi(int rc, const char* routine) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) len = 0;
  throw Error(idprune::detail::concat(routine, " failed: ", len > 0 ? std::string(text, len) : "error code ", rc));
}
}  // namespace detail

namespace {
int to_int_count(std::size_t count, const char* routine) {
  require(count <= static_cast<std::size_t>(INT_MAX), routine, ": count ", count, " exceeds INT_MAX");
  return static_cast<int>(count);
}
int to_int_count(std::int64_t count, const char* routine) {
  require(count >= 0 && count <= INT_MAX, routine, ": count ", count, " outside [0, INT_MAX]");
  return static_cast<int>(count);
}

MPI_Datatype to_mpi(detail::Datatype type) {
  switch (type) {
    case detail::Datatype::f64:
      return MPI_DOUBLE;
    case detail::Datatype::f32:
      return MPI_FLOAT;
    case detail::Datatype::i64:
      return MPI_INT64_T;
    case detail::Datatype::u64:
      return MPI_UINT64_T;
    case detail::Datatype::i32:
      return MPI_INT;
    case detail::Datatype::character:
      return MPI_CHAR;
    case detail::Datatype::unsigned_character:
      return MPI_UNSIGNED_CHAR;
  }
  throw Error("dist::Comm: unknown datatype");
}

MPI_Op to_mpi(detail::ReduceOp op) {
  switch (op) {
    case detail::ReduceOp::sum:
      return MPI_SUM;
    case detail::ReduceOp::max:
      return MPI_MAX;
    case detail::ReduceOp::min:
      return MPI_MIN;
  }
  throw Error("dist::Comm: unknown reduction");
}
}  // namespace

// ---------------------------------------------------------------------------------------------
// Environment

Environment::Environment(int& argc, char**& argv) {
  int initialised = 0;
  detail::check_mpi(MPI_Initialized(&initialised), "MPI_Initialized");
  if (initialised) return;
  // A process started without a launcher (no mpirun/mpiexec, srun, PMIx or PMI variables) is an
  // MPI singleton: its only peer is itself. Open MPI would still probe every network transport of
  // the cm PML (OFI, PSM, PSM2: 0.2 s of start-up on a machine without them) before choosing ob1,
  // and would fork an orted daemon for it (another 0.1 s, measured on a one-point sweep) that only
  // MPI_Comm_spawn and connect/accept need, which idprune never calls: name ob1 and an isolated
  // singleton unless the user set them. Launched processes are left entirely alone.
  constexpr std::array<const char*, 5> launcher_variables = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_FD",
                                                             "OMPI_MCA_ess"};
  if (std::none_of(launcher_variables.begin(), launcher_variables.end(),
                   [](const char* v) { return std::getenv(v) != nullptr; })) {
    setenv("OMPI_MCA_pml", "ob1", 0);  // 0: never overwrite a setting
    setenv("OMPI_MCA_ess_singleton_isolated", "1", 0);
  }
  int provided = 0;
  detail::check_mpi(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  owns_ = true;
  // Errors on the world communicator come back as codes, which the wrapper turns into exceptions.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
}

Environment::~Environment() {
  if (!owns_) return;
  int finalised = 0;
  MPI_Finalized(&finalised);
  if (!finalised) MPI_Finalize();
}

bool Environment::active() {
  int initialised = 0;
  int finalised = 0;
  MPI_Initialized(&initialised);
  MPI_Finalized(&finalised);
  return initialised && !finalised;
}

// ---------------------------------------------------------------------------------------------
// Comm

struct Comm::State {
  MPI_Comm comm = MPI_COMM_NULL;
  bool owned = false;
  std::uint64_t bytes = 0;

  State(MPI_Comm c, bool own) : comm(c), owned(own) {}
  ~State() {
    if (owned && comm != MPI_COMM_NULL && Environment::active()) MPI_Comm_free(&comm);
  }
  State(const State&) = delete;
  State& operator=(const State&) = delete;
};

struct detail::NativeAccess {
  static MPI_Comm comm(const Comm& c) { return c.state_ ? c.state_->comm : MPI_COMM_NULL; }
  static Comm make(MPI_Comm comm, bool owned) { return Comm(std::make_shared<Comm::State>(comm, owned)); }
};

Comm::Comm(std::shared_ptr<State> state) : state_(std::move(state)) {
  if (state_->comm == MPI_COMM_NULL) return;
  detail::check_mpi(MPI_Comm_set_errhandler(state_->comm, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
  detail::check_mpi(MPI_Comm_rank(state_->comm, &rank_), "MPI_Comm_rank");
  detail::check_mpi(MPI_Comm_size(state_->comm, &size_), "MPI_Comm_size");
}

Comm Comm::world() {
  require(Environment::active(), "dist::Comm::world: MPI is not initialised (construct dist::Environment in main)");
  return Comm(std::make_shared<State>(MPI_COMM_WORLD, false));
}

Comm wrap(MPI_Comm comm) {
  require(Environment::active(), "dist::wrap: MPI is not initialised");
  return detail::NativeAccess::make(comm, false);
}

MPI_Comm native(const Comm& comm) { return detail::NativeAccess::comm(comm); }

Comm Comm::duplicate() const {
  MPI_Comm out = MPI_COMM_NULL;
  detail::check_mpi(MPI_Comm_dup(native(*this), &out), "MPI_Comm_dup");
  return Comm(std::make_shared<State>(out, true));
}

Comm Comm::split(int color, int key) const {
  MPI_Comm out = MPI_COMM_NULL;
  detail::check_mpi(MPI_Comm_split(native(*this), color < 0 ? MPI_UNDEFINED : color, key, &out), "MPI_Comm_split");
  return Comm(std::make_shared<State>(out, true));
}

Comm Comm::split_shared() const {
  MPI_Comm out = MPI_COMM_NULL;
  detail::check_mpi(MPI_Comm_split_type(native(*this), MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &out),
                    "MPI_Comm_split_type");
  return Comm(std::make_shared<State>(out, true));
}

void Comm::barrier() const { detail::check_mpi(MPI_Barrier(native(*this)), "MPI_Barrier"); }

void Comm::idle_barrier(int poll_us) const {
  MPI_Request request = MPI_REQUEST_NULL;
  detail::check_mpi(MPI_Ibarrier(native(*this), &request), "MPI_Ibarrier");
  int done = 0;
  while (true) {
    detail::check_mpi(MPI_Test(&request, &done, MPI_STATUS_IGNORE), "MPI_Test");
    if (done) break;
    std::this_thread::sleep_for(std::chrono::microseconds(poll_us));
  }
}

void Comm::allreduce_raw(void* buf, std::size_t count, detail::Datatype datatype, detail::ReduceOp reduction,
                         std::size_t elem) const {
  const MPI_Datatype type = to_mpi(datatype);
  const MPI_Op op = to_mpi(reduction);
  if (count == 0) return;  // every rank must agree on count; an empty reduction is a no-op
  detail::check_mpi(MPI_Allreduce(MPI_IN_PLACE, buf, to_int_count(count, "MPI_Allreduce"), type, op, native(*this)),
                    "MPI_Allreduce");
  if (size_ > 1) state_->bytes += count * elem;
}

void Comm::reduce_raw(void* buf, std::size_t count, detail::Datatype datatype, detail::ReduceOp reduction,
                      std::size_t elem, int root) const {
  const MPI_Datatype type = to_mpi(datatype);
  const MPI_Op op = to_mpi(reduction);
  if (count == 0) return;
  const int n = to_int_count(count, "MPI_Reduce");
  if (rank_ == root) {
    detail::check_mpi(MPI_Reduce(MPI_IN_PLACE, buf, n, type, op, root, native(*this)), "MPI_Reduce");
  } else {
    detail::check_mpi(MPI_Reduce(buf, nullptr, n, type, op, root, native(*this)), "MPI_Reduce");
    state_->bytes += count * elem;
  }
}

void Comm::bcast_raw(void* buf, std::size_t count, detail::Datatype datatype, std::size_t elem, int root) const {
  const MPI_Datatype type = to_mpi(datatype);
  if (count == 0) return;
  detail::check_mpi(MPI_Bcast(buf, to_int_count(count, "MPI_Bcast"), type, root, native(*this)), "MPI_Bcast");
  if (rank_ == root && size_ > 1) state_->bytes += count * elem;
}

void Comm::send_raw(const void* buf, std::size_t count, detail::Datatype datatype, std::size_t elem, int dest,
                    int tag) const {
  const MPI_Datatype type = to_mpi(datatype);
  detail::check_mpi(MPI_Send(buf, to_int_count(count, "MPI_Send"), type, dest, tag, native(*this)), "MPI_Send");
  state_->bytes += count * elem;
}

void Comm::recv_raw(void* buf, std::size_t count, detail::Datatype datatype, std::size_t /*elem*/, int source,
                    int tag) const {
  const MPI_Datatype type = to_mpi(datatype);
  MPI_Status status;
  detail::check_mpi(MPI_Recv(buf, to_int_count(count, "MPI_Recv"), type, source, tag, native(*this), &status),
                    "MPI_Recv");
  int received = 0;
  detail::check_mpi(MPI_Get_count(&status, type, &received), "MPI_Get_count");
  require(static_cast<std::size_t>(received) == count, "MPI_Recv: expected ", count, " items from rank ", source,
          ", received ", received);
}

void Comm::allgather_raw(const void* block, std::size_t count, void* out, detail::Datatype datatype,
                         std::size_t elem) const {
  const MPI_Datatype type = to_mpi(datatype);
  if (count == 0) return;
  const int n = to_int_count(count, "MPI_Allgather");
  detail::check_mpi(MPI_Allgather(block, n, type, out, n, type, native(*this)), "MPI_Allgather");
  if (size_ > 1) state_->bytes += count * elem;
}

void Comm::gatherv_raw(const void* local, std::span<const std::int64_t> counts, void* out, detail::Datatype datatype,
                       std::size_t elem, int root) const {
  const MPI_Datatype type = to_mpi(datatype);
  std::vector<int> recv_counts;
  std::vector<int> displs;
  if (rank_ == root) {
    recv_counts.resize(counts.size());
    displs.resize(counts.size());
    std::int64_t offset = 0;
    for (std::size_t r = 0; r < counts.size(); ++r) {
      recv_counts[r] = to_int_count(counts[r], "MPI_Gatherv");
      displs[r] = to_int_count(offset, "MPI_Gatherv");
      offset += counts[r];
    }
  }
  const auto mine = counts[static_cast<std::size_t>(rank_)];
  detail::check_mpi(MPI_Gatherv(local, to_int_count(mine, "MPI_Gatherv"), type, out, recv_counts.data(), displs.data(),
                                type, root, native(*this)),
                    "MPI_Gatherv");
  if (rank_ != root) state_->bytes += static_cast<std::uint64_t>(mine) * elem;
}

void Comm::alltoallv_raw(const void* send, std::span<const std::int64_t> send_counts, void* recv,
                         std::span<const std::int64_t> recv_counts, detail::Datatype datatype, std::size_t elem) const {
  const MPI_Datatype type = to_mpi(datatype);
  require(
      send_counts.size() == static_cast<std::size_t>(size_) && recv_counts.size() == static_cast<std::size_t>(size_),
      "Comm::alltoallv: ", send_counts.size(), " send and ", recv_counts.size(), " receive counts for ", size_,
      " ranks");
  std::vector<int> sc(send_counts.size()), sd(send_counts.size()), rc(recv_counts.size()), rd(recv_counts.size());
  std::int64_t so = 0;
  std::int64_t ro = 0;
  for (std::size_t r = 0; r < send_counts.size(); ++r) {
    sc[r] = to_int_count(send_counts[r], "MPI_Alltoallv");
    sd[r] = to_int_count(so, "MPI_Alltoallv");
    so += send_counts[r];
    rc[r] = to_int_count(recv_counts[r], "MPI_Alltoallv");
    rd[r] = to_int_count(ro, "MPI_Alltoallv");
    ro += recv_counts[r];
    if (static_cast<int>(r) != rank_) state_->bytes += static_cast<std::uint64_t>(send_counts[r]) * elem;
  }
  detail::check_mpi(MPI_Alltoallv(send, sc.data(), sd.data(), type, recv, rc.data(), rd.data(), type, native(*this)),
                    "MPI_Alltoallv");
}

void Comm::bcast_string(std::string& s, int root) const {
  std::int64_t len = static_cast<std::int64_t>(s.size());
  bcast(std::span<std::int64_t>(&len, 1), root);
  s.resize(static_cast<std::size_t>(len));
  bcast(std::span<char>(s.data(), s.size()), root);
}

std::uint64_t Comm::bytes_sent() const { return state_ ? state_->bytes : 0; }

// ---------------------------------------------------------------------------------------------

RowRange block_rows(la::index_t rows, int size, int rank) {
  require(rows >= 0 && size > 0 && rank >= 0 && rank < size, "dist::block_rows: rows=", rows, ", size=", size,
          ", rank=", rank);
  const la::index_t base = rows / size;
  const la::index_t extra = rows % size;
  const la::index_t r = rank;
  return {r * base + (r < extra ? r : extra), base + (r < extra ? 1 : 0)};
}

void check_collective(const Comm& comm, const std::string& local_error) {
  // The lowest failing rank wins; `size` means nobody failed.
  const int failing = comm.min(local_error.empty() ? comm.size() : comm.rank());
  if (failing == comm.size()) return;
  std::string message = local_error;
  comm.bcast_string(message, failing);
  throw CollectiveError(failing, idprune::detail::concat("rank ", failing, ": ", message));
}

void check_same(const Comm& comm, std::uint64_t fingerprint, const std::string& message_if_different) {
  std::uint64_t root_value = fingerprint;
  comm.bcast(std::span<std::uint64_t>(&root_value, 1), 0);
  if (fingerprint == root_value) {
    check_collective(comm, std::string());
    return;
  }
  check_collective(comm, message_if_different.empty() ? std::string("differs from rank 0") : message_if_different);
}

namespace {
/// One write of the whole line: std::cerr is unbuffered, and a line written piece by piece
/// interleaves with Open MPI's MPI_Abort banner on the same terminal.
void emit(const std::string& line) {
  std::cerr.write(line.data(), static_cast<std::streamsize>(line.size()));
  std::cerr.flush();
}
}  // namespace

int report_fatal_error(const std::string& prefix, const std::exception& e) {
  if (!Environment::active()) {
    emit(prefix + ": error: " + e.what() + "\n");
    return 1;
  }
  int rank = 0;
  int size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (dynamic_cast<const CollectiveError*>(&e) != nullptr) {
    if (rank == 0) emit(prefix + ": error: " + e.what() + "\n");
    return 1;
  }
  if (size == 1) {
    emit(prefix + ": error: " + e.what() + "\n");
    return 1;
  }
  emit(prefix + ": error (rank " + std::to_string(rank) + " of " + std::to_string(size) + "): " + e.what() + "\n");
  MPI_Abort(MPI_COMM_WORLD, 1);
  return 1;
}

}  // namespace idprune::dist
