/* RDM bench driver (bench/rdm/run.sh builds and runs it): the correlation RDM of an N x V
 * float32 .npy matrix with rdml_rdm_compute_from, each rank reading only its block of the
 * file, repeated REPS times; then the parallel HDF5 write of the last result. Prints one
 * "RESULT key value" line per measurement for run.sh, including the peak RSS of every rank
 * (getrusage ru_maxrss) next to its share of input + output. Not a test: no assertions.
 * usage: mpirun -n P rdm_bench X.npy OUT.h5 [REPS [metric [grid_rows grid_cols]]]
 * env:   RDM_BENCH_ARITH=float32|int16 ([rdm] arithmetic, default float32) */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <cblas.h>

#include "../common/blas_kernel.h"
#include "rdml/h5.h"
#include "rdml/mpiutil.h"
#include "rdml/npy.h"
#include "rdml/rdm.h"

static int npy_reader(rdml_ctx *ctx, void *user, int64_t r0, int64_t r1, const int64_t *cols,
                      int64_t ncols, float *out) {
    return rdml_npy_read_f32(ctx, (const rdml_npy *)user, r0, r1, cols, ncols, out);
}

/* Bare SGEMM throughput of all ranks at once (one BLAS thread each, as the RDM runs):
 * C (m x m) = A^T B with k = 2048, the RDM's vertex chunk, m = min(n, 2048); every rank
 * repeats it for about 0.2 s. Returns the sum over ranks of 2 m^2 k / time, in GFLOP/s. */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* *cpu_rate: the same flops per CPU second of the ranks (sum of flops / sum of CPU time),
 * which other processes on the machine disturb much less than the wall-clock rate. */
static double sgemm_peak(int64_t n, double *cpu_rate) {
    const int m = (int)(n < 2048 ? (n < 256 ? 256 : n) : 2048), k = 2048;
    float *a = malloc((size_t)m * k * sizeof *a), *c = malloc((size_t)m * m * sizeof *c);
    for (size_t i = 0; i < (size_t)m * k; i++) a[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    cblas_sgemm(CblasColMajor, CblasTrans, CblasNoTrans, m, m, k, 1.0f, a, k, a, k, 0.0f, c, m);
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime(), t = 0, c0 = cpu_now();
    int reps = 0;
    do {
        cblas_sgemm(CblasColMajor, CblasTrans, CblasNoTrans, m, m, k, 1.0f, a, k, a, k, 0.0f, c, m);
        reps++;
        t = MPI_Wtime() - t0;
    } while (t < 0.2);
    double g = 2.0 * m * (double)m * k * reps / t / 1e9, sum = 0;
    double fc[2] = {2.0 * m * (double)m * k * reps, cpu_now() - c0}, fcs[2];
    MPI_Allreduce(&g, &sum, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(fc, fcs, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    *cpu_rate = fcs[0] / fcs[1] / 1e9;
    free(a);
    free(c);
    return sum;
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
    const char *arith = getenv("RDM_BENCH_ARITH");
    if (arith && strcmp(arith, "int16") == 0) p.arithmetic = RDML_RDM_INT16;
    else if (arith && *arith && strcmp(arith, "float32") != 0) {
        if (!rank) fprintf(stderr, "RDM_BENCH_ARITH=%s: use float32 or int16\n", arith);
        MPI_Finalize();
        return 2;
    }
    if (!rank) printf("RESULT arithmetic %s\n", rdml_rdm_arith_name(p.arithmetic));
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
    double *t = calloc((size_t)reps, sizeof *t), *pk = calloc((size_t)reps, sizeof *pk);
    double *pkc = calloc((size_t)reps, sizeof *pkc), *effc = calloc((size_t)reps, sizeof *effc);
    /* useful flops: the N(N+1)/2 distinct Gram entries, each a V-long dot product
     * (2V flops): N(N+1)V, i.e. N^2 V to 0.05% (what a GEMM-speed SYRK costs) */
    const double useful = (double)n * (double)(n + 1) * (double)v;
    rdml_rdm r = {0};
    for (int k = 0; k < reps && rc == RDML_OK; k++) {
        rdml_rdm_free(&r);
        /* the peak right before each repetition, so machine load hits both alike */
        pk[k] = sgemm_peak(n, &pkc[k]);
        if (!rank)
            printf("sgemm peak (%d ranks x 1 thread): %.1f GF/s (%.1f GF per CPU second)\n", size,
                   pk[k], pkc[k]);
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime(), c0 = cpu_now();
        rc = rdml_rdm_compute_from(&ctx, MPI_COMM_WORLD, n, v, npy_reader, &f, &p, &r);
        double c1 = cpu_now() - c0, csum = 0;
        MPI_Barrier(MPI_COMM_WORLD);
        t[k] = MPI_Wtime() - t0;
        MPI_Allreduce(&c1, &csum, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        effc[k] = 100.0 * useful / csum / 1e9 / pkc[k];
        if (!rank)
            printf("rdmlearn CPU time (sum of ranks) %.3f s: %.1f GF per CPU second, %.0f%% of the "
                   "peak's\n", csum, useful / csum / 1e9, effc[k]);
        if (!rank && rc == RDML_OK)
            printf("rdmlearn rdm n=%lld v=%lld ranks=%d: %.3f s  (%.1f GF/s useful, %.0f%% of "
                   "that peak)\n",
                   (long long)n, (long long)v, size, t[k], useful / t[k] / 1e9,
                   100.0 * useful / t[k] / 1e9 / pk[k]);
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
        free(pk);
        free(pkc);
        free(effc);
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
        qsort(pk, (size_t)reps, sizeof *pk, cmp_double);
        printf("RESULT sgemm_peak_gflops %.1f\n", pk[reps / 2]);
        qsort(effc, (size_t)reps, sizeof *effc, cmp_double);
        printf("RESULT cpu_time_pct_of_peak %.0f\n", effc[reps / 2]);
        double share = ((double)n * v * 4 + (double)n * n * 4) / size;
        printf("RESULT rdm_median_s %.3f\n", med);
        printf("RESULT rdm_useful_gflops %.1f\n", useful / med / 1e9);
        printf("RESULT h5_write_s %.3f\n", tw);
        printf("RESULT share_mb %.0f\n", share / 1e6);
        printf("RESULT plan_mb %.0f\n", rdml_rdm_plan_bytes(n, v, size, &p) / 1e6);
        for (int q = 0; q < size; q++)
            printf("RESULT peak_rss_mb_rank%d %.0f (%.2f x share)\n", q, all[q] * 1024.0 / 1e6,
                   all[q] * 1024.0 / share);
    }
    free(all);
    free(pk);
    free(pkc);
    free(effc);
    free(t);
    MPI_Finalize();
    return 0;
}
