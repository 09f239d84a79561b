/* The OpenBLAS kernel a bench driver runs, printed once per run as
 *   "<who> BLAS: kernel Haswell, threads 1 (OPENBLAS_CORETYPE=Haswell)"
 * so that a log shows which kernel produced each timing (bench/common/blas_env.sh sets one
 * BLAS environment for both sides of a comparison). The drivers link OpenBLAS through the
 * rdml library; these are OpenBLAS's own query functions. */
#ifndef RDML_BENCH_BLAS_KERNEL_H
#define RDML_BENCH_BLAS_KERNEL_H
#include <stdio.h>
#include <stdlib.h>

char *openblas_get_corename(void);
int openblas_get_num_threads(void);

static inline void bench_print_blas(const char *who) {
    const char *env = getenv("OPENBLAS_CORETYPE");
    printf("%s BLAS: kernel %s, threads %d (OPENBLAS_CORETYPE=%s)\n", who, openblas_get_corename(),
           openblas_get_num_threads(), env ? env : "<unset: detected>");
    fflush(stdout);
}
#endif
