/* Statistics bench driver (bench/evaluate/run.sh builds and runs it): one subject's n x n brain
 * RDM and M model RDMs (float64 .npy files written by data.py), all n(n-1)/2 pairs, then
 * rdml_stats_evaluate (bootstrap over images + permutation test + paired tests) on
 * MPI_COMM_WORLD's ranks, REPS times. Prints "RESULT key value" lines for run.sh: the median
 * time, the scores, intervals and p-values; rank 0 then writes every bootstrap sample's scores
 * and every null score (DIR/rdml_boot.npy, DIR/rdml_null.npy) for the comparison with the
 * numpy anchor. With a 6th
 * argument it first writes the resampling indices (rdml_stats_boot_images /
 * rdml_stats_perm_images, not timed) for the anchor to use the same samples.
 * usage: mpirun -n P stats_bench DIR METHOD NBOOT NPERM REPS [write-indices] */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/blas_kernel.h"
#include "rdml/mpiutil.h"
#include "rdml/npy.h"
#include "rdml/stats.h"

static int read_all(rdml_ctx *ctx, const char *path, double **out, int64_t *rows, int64_t *cols) {
    rdml_npy f;
    RDML_TRY(rdml_npy_open(ctx, path, 0, &f));
    *rows = f.shape[0];
    *cols = 1;
    for (int d = 1; d < f.ndim; d++) *cols *= f.shape[d];
    *out = rdml_malloc(ctx, (size_t)(*rows * *cols) * sizeof **out, path);
    int rc = *out ? rdml_npy_read_f64(ctx, &f, 0, *rows, NULL, 0, *out) : ctx->code;
    rdml_npy_close(&f);
    return rc;
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
    if (argc < 6) {
        if (!ctx.rank) fprintf(stderr, "usage: stats_bench DIR METHOD NBOOT NPERM REPS [write-indices]\n");
        MPI_Finalize();
        return 2;
    }
    if (!ctx.rank) bench_print_blas("rdmlearn");
    char path[4096];
    double *brain = NULL, *models = NULL;
    int64_t n, nn, M, mm;
    rdml_stats_opts o;
    rdml_stats_opts_default(&o);
    int rc = rdml_rsa_method_parse(&ctx, argv[2], &o.method);
    snprintf(path, sizeof path, "%s/brain.npy", argv[1]);
    if (!rc) rc = read_all(&ctx, path, &brain, &n, &nn);
    snprintf(path, sizeof path, "%s/models.npy", argv[1]);
    if (!rc) rc = read_all(&ctx, path, &models, &M, &mm);
    if (rc) {
        fprintf(stderr, "error: %s\n", ctx.msg);
        MPI_Finalize();
        return 1;
    }
    o.nboot = atoll(argv[3]);
    o.nperm = atoll(argv[4]);
    o.seed = 2026;
    const int reps = atoi(argv[5]);
    const int64_t P = n * (n - 1) / 2;
    int64_t *pi = malloc((size_t)P * sizeof *pi), *pj = malloc((size_t)P * sizeof *pj);
    double *b = malloc((size_t)P * sizeof *b), *m = malloc((size_t)(P * M) * sizeof *m);
    const double **mv = malloc((size_t)M * sizeof *mv);
    int64_t t = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i + 1; j < n; j++, t++) {
            pi[t] = i;
            pj[t] = j;
            b[t] = brain[i * n + j];
            for (int64_t k = 0; k < M; k++) m[k * P + t] = models[k * n * n + i * n + j];
        }
    for (int64_t k = 0; k < M; k++) mv[k] = m + k * P;
    const double *bv[1] = {b};
    rdml_stats_data d = {0};
    d.n = n;
    d.npairs = P;
    d.pi = pi;
    d.pj = pj;
    d.nsubj = 1;
    d.brain = bv;
    d.nmodels = (int)M;
    d.models = mv;
    if (argc > 6 && !ctx.rank) { /* the indices for the anchor (not timed) */
        int64_t *ix = malloc((size_t)((o.nboot > o.nperm ? o.nboot : o.nperm) * n) * sizeof *ix);
        int64_t shape[2] = {o.nboot, n};
        for (int64_t s = 0; s < o.nboot; s++) rdml_stats_boot_images(o.seed, o.key, s, n, ix + s * n);
        snprintf(path, sizeof path, "%s/boot_idx.npy", argv[1]);
        rc = rdml_npy_save(&ctx, path, RDML_DT_I8, 0, 2, shape, ix);
        shape[0] = o.nperm;
        for (int64_t s = 0; !rc && s < o.nperm; s++) rdml_stats_perm_images(o.seed, o.key, s, n, ix + s * n);
        snprintf(path, sizeof path, "%s/perm_idx.npy", argv[1]);
        if (!rc) rc = rdml_npy_save(&ctx, path, RDML_DT_I8, 0, 2, shape, ix);
        free(ix);
        if (rc) fprintf(stderr, "error: %s\n", ctx.msg);
    }
    double *times = malloc((size_t)(reps > 0 ? reps : 1) * sizeof *times);
    rdml_stats_result r = {0};
    for (int rep = 0; rep < reps && !rc; rep++) {
        rdml_stats_result_free(&r);
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        rc = rdml_stats_evaluate(&ctx, MPI_COMM_WORLD, &d, &o, &r);
        times[rep] = MPI_Wtime() - t0;
        if (!ctx.rank && !rc)
            printf("rdmlearn stats n=%lld pairs=%lld models=%lld boot=%lld perm=%lld ranks=%d: %.3f s\n",
                   (long long)n, (long long)P, (long long)M, (long long)o.nboot,
                   (long long)o.nperm, ctx.nranks, times[rep]);
    }
    if (rc && !ctx.rank) fprintf(stderr, "error: %s\n", ctx.msg);
    if (!rc && !ctx.rank) {
        qsort(times, (size_t)reps, sizeof *times, cmp_double);
        printf("RESULT median_s %.4f\n", times[reps / 2]);
        printf("RESULT scheme %s\n", rdml_stats_perm_scheme_name(r.perm_scheme));
        for (int k = 0; k < r.nmodels; k++) {
            printf("RESULT score_%d %.17g\n", k, r.score[k]);
            printf("RESULT ci_%d %.17g %.17g\n", k, r.ci_lo[k], r.ci_hi[k]);
            printf("RESULT perm_p_%d %.17g\n", k, r.perm_p[k]);
            for (int l = k + 1; l < r.nmodels; l++)
                printf("RESULT pair_p_%d_%d %.17g\n", k, l, r.pair_p[k * r.nmodels + l]);
        }
        printf("RESULT boot_dropped %lld\n", (long long)r.boot_dropped);
        /* every sample's scores and null values, for run.sh's comparison with the anchor */
        int64_t shape[2] = {r.nboot, r.nmodels};
        snprintf(path, sizeof path, "%s/rdml_boot.npy", argv[1]);
        rc = rdml_npy_save(&ctx, path, RDML_DT_F8, 0, 2, shape, r.boot_scores);
        shape[0] = r.nperm;
        snprintf(path, sizeof path, "%s/rdml_null.npy", argv[1]);
        if (!rc) rc = rdml_npy_save(&ctx, path, RDML_DT_F8, 0, 2, shape, r.perm_null);
        if (rc) fprintf(stderr, "error: %s\n", ctx.msg);
    }
    rdml_stats_result_free(&r);
    free(times);
    free(pi);
    free(pj);
    free(b);
    free(m);
    free(mv);
    free(brain);
    free(models);
    MPI_Finalize();
    return rc ? 1 : 0;
}
