/* RDM bench driver (bench/rdm/run.sh builds and runs it): the correlation RDM of an N x V
 * float32 .npy matrix with rdml_rdm_compute_from, each rank reading only its block of the
 * file, repeated REPS times; then the parallel HDF5 write of the last result. Prints one
 * "RESULT key value" line per measurement for run.sh, including the peak RSS of every rank
 * (getrusage ru_maxrss) next to its share of input + output. Not a test: no assertions.
 * usage: mpirun -n P rdm_bench X.npy OUT.h5 [REPS [metric [grid_rows grid_cols]]] */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "../common/blas_kernel.h"
#include "rdml/h5.h"
#include "rdml/mpiutil.h"
#include "rdml/npy.h"
#include "rdml/rdm.h"

static int npy_reader(rdml_ctx *ctx, void *user, int64_t r0, int64_t r1, const int64_t *cols,
                      int64_t ncols, float *out) {
    return rdml_npy_read_f32(ctx, (const rdml_npy *)user, r0, r1, cols, ncols, out);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_ctx_set_comm(&ctx, MPI_COMM_WORLD);
    int rank = ctx.rank, size = ctx.nranks;
    if (getenv("RDML_BENCH_DEBUG")) ctx.log_level = RDML_LOG_DEBUG;
    if (argc < 3) {
        if (!rank) fprintf(stderr, "usage: rdm_bench X.npy OUT.h5 [REPS [metric [rows cols]]]\n");
        MPI_Finalize();
        return 2;
    }
    if (!rank) bench_print_blas("rdmlearn");
    int reps = argc > 3 ? atoi(argv[3]) : 3;
    if (reps < 1) reps = 1;
    rdml_rdm_params p;
    rdml_rdm_defaults(&p);
    int rc = RDML_OK;
    if (argc > 4) rc = rdml_rdm_metric_parse(&ctx, argv[4], &p.metric);
    if (argc > 6) {
        p.grid_rows = atoi(argv[5]);
        p.grid_cols = atoi(argv[6]);
    }
    rdml_npy f;
    memset(&f, 0, sizeof f);
    f.fd = -1;
    if (rc == RDML_OK) rc = rdml_npy_open(&ctx, argv[1], 0, &f);
    rc = rdml_agree(&ctx, MPI_COMM_WORLD, rc);
    if (rc != RDML_OK) {
        if (!rank) fprintf(stderr, "rdm_bench: %s\n", ctx.msg);
        MPI_Finalize();
        return 1;
    }
    int64_t n = f.shape[0], v = f.ndim > 1 ? f.shape[1] : 1;
    double *t = calloc((size_t)reps, sizeof *t);
    rdml_rdm r = {0};
    for (int k = 0; k < reps && rc == RDML_OK; k++) {
        rdml_rdm_free(&r);
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        rc = rdml_rdm_compute_from(&ctx, MPI_COMM_WORLD, n, v, npy_reader, &f, &p, &r);
        MPI_Barrier(MPI_COMM_WORLD);
        t[k] = MPI_Wtime() - t0;
        if (!rank && rc == RDML_OK)
            printf("rdmlearn rdm n=%lld v=%lld ranks=%d: %.3f s  (%.1f GF/s gemm-equivalent)\n",
                   (long long)n, (long long)v, size, t[k], 2.0 * n * n * (double)v / t[k] / 1e9);
        fflush(stdout);
    }
    rdml_npy_close(&f);
    double tw = 0;
    if (rc == RDML_OK) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        rdml_h5 *h = NULL;
        rc = rdml_h5_create(&ctx, MPI_COMM_WORLD, argv[2], &h);
        if (rc == RDML_OK)
            rc = rdml_h5_write_rows_f32(&ctx, h, "/rdm", n, n, r.row_lo, r.row_hi - r.row_lo, r.rows);
        if (rc == RDML_OK) rc = rdml_h5_attr_str(&ctx, h, "/rdm", "metric", rdml_rdm_metric_name(p.metric));
        if (rc == RDML_OK)
            rc = rdml_h5_commit(&ctx, &h);
        else
            rdml_h5_abort(&h);
        MPI_Barrier(MPI_COMM_WORLD);
        tw = MPI_Wtime() - t0;
    }
    rdml_rdm_free(&r);
    if (rc != RDML_OK) {
        if (!rank) fprintf(stderr, "rdm_bench: %s\n", ctx.msg);
        free(t);
        MPI_Finalize();
        return 1;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    long rss = ru.ru_maxrss; /* kB */
    long *all = malloc(sizeof *all * (size_t)size);
    MPI_Gather(&rss, 1, MPI_LONG, all, 1, MPI_LONG, 0, MPI_COMM_WORLD);
    if (!rank) {
        qsort(t, (size_t)reps, sizeof *t, cmp_double);
        double med = t[reps / 2];
        double share = ((double)n * v * 4 + (double)n * n * 4) / size;
        printf("RESULT rdm_median_s %.3f\n", med);
        printf("RESULT rdm_gflops %.1f\n", 2.0 * n * n * (double)v / med / 1e9);
        printf("RESULT h5_write_s %.3f\n", tw);
        printf("RESULT share_mb %.0f\n", share / 1e6);
        printf("RESULT plan_mb %.0f\n", rdml_rdm_plan_bytes(n, v, size, &p) / 1e6);
        for (int q = 0; q < size; q++)
            printf("RESULT peak_rss_mb_rank%d %.0f (%.2f x share)\n", q, all[q] * 1024.0 / 1e6,
                   all[q] * 1024.0 / share);
    }
    free(all);
    free(t);
    MPI_Finalize();
    return 0;
}
