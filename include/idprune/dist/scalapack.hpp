#pragma once
// C declarations of the BLACS and ScaLAPACK routines idprune calls (Debian's
// libscalapack-openmpi ships no header). Fortran conventions: every argument by pointer,
// 1-based indices, column-major arrays, 9-integer array descriptors. Csys2blacs_handle, which
// takes an MPI_Comm, is declared in src/dist/scalapack.cpp, so this header needs no <mpi.h>.

extern "C" {
// BLACS (C interface).
void Cblacs_pinfo(int* mypnum, int* nprocs);
void Cfree_blacs_system_handle(int handle);
void Cblacs_gridinit(int* context, const char* order, int nprow, int npcol);
void Cblacs_gridinfo(int context, int* nprow, int* npcol, int* myrow, int* mycol);
void Cblacs_gridexit(int context);

// ScaLAPACK tools.
int numroc_(const int* n, const int* nb, const int* iproc, const int* isrcproc, const int* nprocs);
void descinit_(int* desc, const int* m, const int* n, const int* mb, const int* nb, const int* irsrc, const int* icsrc,
               const int* ictxt, const int* lld, int* info);

// QR with column pivoting of sub(A) = A(ia:ia+m-1, ja:ja+n-1): sub(A) P = Q R. ipiv is local
// (LOCc(ja+n-1)), 1-based global column indices; requires square blocks (MB_A = NB_A).
void pdgeqpf_(const int* m, const int* n, double* a, const int* ia, const int* ja, const int* desca, int* ipiv,
              double* tau, double* work, const int* lwork, int* info);
}
