# Finds every external dependency the standard way and exposes imported targets.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(MPI REQUIRED COMPONENTS CXX)
find_package(TBB REQUIRED)
find_package(Boost 1.74 REQUIRED COMPONENTS program_options)
find_package(ZLIB REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
# SHA-256 content hashes of models and data (io layer).
find_package(OpenSSL REQUIRED COMPONENTS Crypto)

# OpenBLAS specifically: idprune controls its thread count (openblas_set_num_threads) so that
# BLAS stays single-threaded inside TBB tasks.
set(BLA_VENDOR OpenBLAS)
find_package(BLAS REQUIRED)
find_package(LAPACK REQUIRED)
pkg_check_modules(OPENBLAS REQUIRED IMPORTED_TARGET openblas)
# FindLAPACK does not provide LAPACKE.
pkg_check_modules(LAPACKE REQUIRED IMPORTED_TARGET lapacke)
# ScaLAPACK (and BLACS) built against Open MPI; it ships no C header, see dist/scalapack.hpp.
pkg_check_modules(SCALAPACK REQUIRED IMPORTED_TARGET scalapack-openmpi)

if(IDPRUNE_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()

find_program(IDPRUNE_GNUPLOT gnuplot)
