#pragma once
// Error reporting shared by every layer: one exception type carrying a complete message.
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace idprune {

/// Every failure idprune reports to a user: a bad argument, a malformed file, a LAPACK or MPI
/// failure. The message is complete and names the routine or file involved.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
template <typename... Args>
std::string concat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}
}  // namespace detail

/// Throws idprune::Error with the streamed arguments as the message, e.g.
/// `require(k <= n, "cpqr: max_rank=", k, " > n=", n)`.
template <typename... Args>
void require(bool condition, Args&&... message) {
  if (!condition) throw Error(detail::concat(std::forward<Args>(message)...));
}

/// Turns a LAPACK `info` into an exception naming the routine.
inline void check_lapack(int info, const char* routine) {
  if (info < 0) throw Error(detail::concat(routine, ": argument ", -info, " had an illegal value"));
  if (info > 0) throw Error(detail::concat(routine, ": failed with info=", info));
}

}  // namespace idprune
