/* Ridge bench driver (bench/encode/run.sh).
 *
 *   ridge_bench anchor DIR [REPS]
 *       reads DIR/X.npy (N x D float32), DIR/Y.npy (N x V float32), DIR/alphas.npy; fits
 *       every target on all N rows with leave-one-out alpha selection (what sklearn
 *       RidgeCV(alphas, alpha_per_target=True).fit(X, Y) computes: chosen alpha, weights,
 *       intercept), REPS times; prints the times and their median and writes
 *       DIR/best_rdml.npy (chosen alpha index per target), cvbest_rdml.npy (its minus mean
 *       squared LOO error), evals_rdml.npy (alphas evaluated exactly per target; the files
 *       end in _exh with BENCH_EXHAUSTIVE=1, which evaluates every alpha) and appends the
 *       times to DIR/rdml_times.txt.
 *
 *   mpirun -n R ridge_bench full [N V D FOLDS NALPHAS CHUNK [loo|kfold]]
 *       the full-subject size (default 9,841 images x 39,548 vertices x 512 features, 5 outer
 *       image folds, 20 alphas, 2,048-vertex chunks): synthetic features and responses from
 *       the counter-based RNG; every rank factors the 5 folds' training features, then, for
 *       each chunk of ITS vertices (rdml_part_block), fits all folds with test predictions,
 *       r and R^2 (what the encode stage needs); `kfold` selects alphas by inner 5-fold
 *       instead of leave-one-out. Prints per rank the factor and fit times (and the fit's CPU
 *       time),
 *       the time spent generating data (excluded), the peak RSS, and the wall time of the
 *       slowest rank.
 */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "../common/blas_kernel.h"
#include "rdml/npy.h"
#include "rdml/ridge.h"

static void *load(rdml_ctx *ctx, const char *dir, const char *name, int kind, int64_t *r, int64_t *c) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    rdml_npy f;
    if (rdml_npy_open(ctx, path, 0, &f)) return NULL;
    *r = f.shape[0];
    *c = f.ndim == 2 ? f.shape[1] : 1;
    void *out = malloc((size_t)(*r * *c) * 8);
    int rc = kind == 0 ? rdml_npy_read_f32(ctx, &f, 0, *r, NULL, 0, out) : rdml_npy_read_f64(ctx, &f, 0, *r, NULL, 0, out);
    rdml_npy_close(&f);
    return rc ? NULL : out;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The distribution of the number of alphas evaluated exactly per target (LOO pruning). */
static void print_evals(const int32_t *ev, int64_t v, int64_t na, const char *who) {
    int64_t h[65] = {0};
    double s = 0;
    for (int64_t t = 0; t < v; t++) {
        h[ev[t] < 64 ? ev[t] : 64]++;
        s += ev[t];
    }
    printf("%s: alphas evaluated exactly per target: mean %.2f of %lld (exact flops %.0f%% of exhaustive: (1 + mean) / (1 + A)); histogram",
           who, s / (double)v, (long long)na, 100.0 * (1.0 + s / (double)v) / (1.0 + (double)na));
    for (int64_t k = 1; k <= (na < 64 ? na : 64); k++)
        if (h[k]) printf(" %lld:%lld", (long long)k, (long long)h[k]);
    printf("\n");
}

static int anchor(const char *dir, int reps) {
    bench_print_blas("rdmlearn");
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    int64_t n, d, n2, v, na, one;
    float *X = load(&ctx, dir, "X", 0, &n, &d), *Y = X ? load(&ctx, dir, "Y", 0, &n2, &v) : NULL;
    double *alphas = Y ? load(&ctx, dir, "alphas", 1, &na, &one) : NULL;
    if (!alphas || n2 != n) {
        fprintf(stderr, "ridge_bench: %s\n", ctx.code ? ctx.msg : "X and Y rows differ");
        return 1;
    }
    int64_t *train = malloc((size_t)n * sizeof *train);
    for (int64_t i = 0; i < n; i++) train[i] = i;
    int32_t *best = malloc((size_t)v * sizeof *best);
    float *W = malloc((size_t)(d * v) * sizeof *W), *b = malloc((size_t)v * sizeof *b);
    double *times = malloc((size_t)reps * sizeof *times);
    rdml_ridge_opts o;
    rdml_ridge_opts_default(&o);
    o.alphas = alphas;
    o.nalphas = na;
    o.loo_exhaustive = getenv("BENCH_EXHAUSTIVE") && atoi(getenv("BENCH_EXHAUSTIVE"));
    int32_t *evals = malloc((size_t)v * sizeof *evals);
    double *cvb = malloc((size_t)v * sizeof *cvb);
    for (int rep = 0; rep < reps; rep++) {
        double t0 = rdml_now();
        rdml_ridge_fact *f = NULL;
        int rc = rdml_ridge_fact_new(&ctx, X, n, d, d, train, n, NULL, 0, &o, &f);
        double tf = rdml_now() - t0;
        rdml_ridge_out out = {0};
        out.alpha_index = best;
        out.weights = W;
        out.intercept = b;
        out.loo_evals = evals;
        out.cv_best = cvb;
        if (!rc) rc = rdml_ridge_fit(&ctx, f, Y, v, v, 0, &out);
        times[rep] = rdml_now() - t0;
        rdml_ridge_fact_free(f);
        if (rc) {
            fprintf(stderr, "ridge_bench: %s\n", ctx.msg);
            return 1;
        }
        printf("rdmlearn run %d: %.2f s (factor %.2f s, fit %.2f s)\n", rep + 1, times[rep], tf, times[rep] - tf);
        fflush(stdout);
    }
    qsort(times, (size_t)reps, sizeof *times, cmp_d);
    double med = times[reps / 2];
    printf("rdmlearn median of %d: %.2f s  (%lld images x %lld targets x %lld features, %lld alphas; %.1f GFLOP/s on the 2 n r (A+1) V model)\n",
           reps, med, (long long)n, (long long)v, (long long)d, (long long)na,
           2.0 * (double)n * (double)(d < n ? d : n) * (double)(na + 1) * (double)v / med / 1e9);
    print_evals(evals, v, na, "rdmlearn");
    int64_t *b64 = malloc((size_t)v * sizeof *b64);
    for (int64_t t = 0; t < v; t++) b64[t] = best[t];
    char path[4096];
    snprintf(path, sizeof path, "%s/best_rdml.npy", dir);
    int64_t shape[1] = {v};
    if (rdml_npy_save(&ctx, path, RDML_DT_I8, 0, 1, shape, b64)) fprintf(stderr, "ridge_bench: %s\n", ctx.msg);
    snprintf(path, sizeof path, "%s/cvbest_rdml%s.npy", dir, o.loo_exhaustive ? "_exh" : "");
    if (rdml_npy_save(&ctx, path, RDML_DT_F8, 0, 1, shape, cvb)) fprintf(stderr, "ridge_bench: %s\n", ctx.msg);
    snprintf(path, sizeof path, "%s/best_rdml%s.npy", dir, o.loo_exhaustive ? "_exh" : "");
    if (rdml_npy_save(&ctx, path, RDML_DT_I8, 0, 1, shape, b64)) fprintf(stderr, "ridge_bench: %s\n", ctx.msg);
    for (int64_t t = 0; t < v; t++) b64[t] = evals[t];
    snprintf(path, sizeof path, "%s/evals_rdml%s.npy", dir, o.loo_exhaustive ? "_exh" : "");
    if (rdml_npy_save(&ctx, path, RDML_DT_I8, 0, 1, shape, b64)) fprintf(stderr, "ridge_bench: %s\n", ctx.msg);
    snprintf(path, sizeof path, "%s/rdml_times.txt", dir); /* one line per run, appended */
    FILE *tf = fopen(path, "a");
    if (tf) {
        for (int rep = 0; rep < reps; rep++) fprintf(tf, "%.6f\n", times[rep]);
        fclose(tf);
    }
    return 0;
}

static long peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024;
}

/* CPU seconds of this process (user + system): on a shared machine the wall time of a
 * one-thread rank is this plus the time others took its core. */
static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec +
           1e-6 * (double)ru.ru_stime.tv_usec;
}

static int full(int argc, char **argv) {
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int64_t N = argc > 0 ? atoll(argv[0]) : 9841, V = argc > 1 ? atoll(argv[1]) : 39548;
    int64_t D = argc > 2 ? atoll(argv[2]) : 512, NF = argc > 3 ? atoll(argv[3]) : 5;
    int64_t NA = argc > 4 ? atoll(argv[4]) : 20, CH = argc > 5 ? atoll(argv[5]) : 2048;
    int kfold = argc > 6 && strcmp(argv[6], "kfold") == 0;
    if (rank == 0) {
        bench_print_blas("rdmlearn");
        printf("full: %lld images x %lld vertices x %lld features, %lld outer folds, %lld alphas, %d ranks, %lld-vertex chunks, %s\n",
               (long long)N, (long long)V, (long long)D, (long long)NF, (long long)NA, size, (long long)CH,
               kfold ? "inner 5-fold alpha selection" : "leave-one-out alpha selection");
        fflush(stdout);
    }
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    double tgen = 0, t0 = rdml_now(), tall = MPI_Wtime();
    /* features: a few strong directions plus noise, the same on every rank */
    float *X = malloc((size_t)(N * D) * sizeof *X);
    for (int64_t i = 0; i < N; i++) {
        rdml_rng r = rdml_rng_make(1, rdml_rng_substream(RDML_STREAM_USER, (uint64_t)i), 0);
        for (int64_t k = 0; k < D; k++) X[i * D + k] = (float)(rdml_rng_normal(&r) * (1.0 + 4.0 * exp(-(double)k / 32.0)));
    }
    /* outer folds: a seeded permutation cut into NF parts */
    int64_t *perm = malloc((size_t)N * sizeof *perm);
    for (int64_t i = 0; i < N; i++) perm[i] = i;
    rdml_rng pr = rdml_rng_make(1, RDML_STREAM_FOLDS, 0);
    rdml_rng_shuffle(&pr, perm, N);
    tgen += rdml_now() - t0;
    double alphas[64];
    for (int64_t a = 0; a < NA; a++) alphas[a] = pow(10.0, -1.0 + 6.0 * (double)a / (double)(NA > 1 ? NA - 1 : 1));
    rdml_ridge_opts o;
    rdml_ridge_opts_default(&o);
    o.alphas = alphas;
    o.nalphas = NA;
    o.standardize = 1;
    if (kfold) {
        o.cv = RDML_RIDGE_KFOLD;
        o.inner_k = 5;
        o.seed = 1;
    }
    o.loo_exhaustive = getenv("BENCH_EXHAUSTIVE") && atoi(getenv("BENCH_EXHAUSTIVE"));
    rdml_ridge_fact **F = calloc((size_t)NF, sizeof *F);
    int64_t **te = calloc((size_t)NF, sizeof *te), *nte = calloc((size_t)NF, sizeof *nte);
    double tf0 = rdml_now();
    int rc = RDML_OK;
    for (int64_t f = 0; f < NF && !rc; f++) {
        int64_t *tr = malloc((size_t)N * sizeof *tr), ntr = 0;
        te[f] = malloc((size_t)N * sizeof *te[f]);
        for (int64_t q = 0; q < N; q++) {
            if (q % NF == f) te[f][nte[f]++] = perm[q];
            else tr[ntr++] = perm[q];
        }
        o.outer_fold = f;
        rc = rdml_ridge_fact_new(&ctx, X, N, D, D, tr, ntr, te[f], nte[f], &o, &F[f]);
        free(tr);
    }
    double tfact = rdml_now() - tf0, tfit = 0, cfit = 0;
    int64_t lo, hi;
    rdml_part_block(V, rank, size, &lo, &hi);
    float *Y = malloc((size_t)(N * CH) * sizeof *Y), *B = malloc((size_t)(D * CH) * sizeof *B);
    int32_t *best = malloc((size_t)CH * sizeof *best);
    double *r = malloc((size_t)CH * sizeof *r), *r2 = malloc((size_t)CH * sizeof *r2), rsum = 0;
    float *pred = malloc((size_t)(N * CH) * sizeof *pred);
    int64_t hist[64] = {0}, ehist[65] = {0}, esum = 0, ecount = 0;
    int32_t *evals = malloc((size_t)CH * sizeof *evals);
    for (int64_t c0 = lo; c0 < hi && !rc; c0 += CH) {
        int64_t w = hi - c0 < CH ? hi - c0 : CH;
        double tg = rdml_now();
        /* responses: a sparse linear read-out of the features plus noise of varied level */
        for (int64_t k = 0; k < D; k++)
            for (int64_t t = 0; t < w; t++) {
                rdml_rng q = rdml_rng_make(2, rdml_rng_substream(RDML_STREAM_USER, (uint64_t)(c0 + t)), (uint64_t)k);
                B[k * w + t] = k < 32 ? (float)rdml_rng_normal(&q) : 0.0f;
            }
        for (int64_t i = 0; i < N; i++) {
            rdml_rng q = rdml_rng_make(3, rdml_rng_substream(RDML_STREAM_USER, (uint64_t)i), (uint64_t)c0);
            for (int64_t t = 0; t < w; t++) {
                double s = 0;
                for (int64_t k = 0; k < 32; k++) s += (double)X[i * D + k] * B[k * w + t];
                Y[i * w + t] = (float)(s * 0.1 + rdml_rng_normal(&q) * (1.0 + (double)((c0 + t) % 10)));
            }
        }
        tgen += rdml_now() - tg;
        double tt = rdml_now(), ct = cpu_s();
        for (int64_t f = 0; f < NF && !rc; f++) {
            rdml_ridge_out out = {0};
            out.alpha_index = best;
            out.pred = pred;
            out.r = r;
            out.r2 = r2;
            out.loo_evals = evals;
            rc = rdml_ridge_fit(&ctx, F[f], Y, w, w, c0, &out);
            for (int64_t t = 0; t < w && !rc; t++) {
                hist[best[t]]++;
                rsum += r[t];
                ehist[evals[t] < 64 ? evals[t] : 64]++;
                esum += evals[t];
                ecount++;
            }
        }
        tfit += rdml_now() - tt;
        cfit += cpu_s() - ct;
    }
    if (rc) fprintf(stderr, "rank %d: %s\n", rank, ctx.msg);
    double wall = MPI_Wtime() - tall, wmax = 0;
    MPI_Allreduce(&wall, &wmax, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    for (int q = 0; q < size; q++) {
        if (q == rank) {
            printf("rank %d: vertices %lld..%lld  factor %.1f s  fit %.1f s (CPU %.1f s)  (data generation %.1f s, excluded)  peak RSS %ld MB  fit bytes per %lld-vertex call %.0f MB  mean r %.3f\n",
                   rank, (long long)lo, (long long)hi, tfact, tfit, cfit, tgen, peak_rss_mb(), (long long)CH,
                   rc ? 0.0 : (double)rdml_ridge_fit_bytes(F[0], CH) / 1048576.0, rsum / (double)((hi - lo) * NF));
            printf("rank %d: chosen alpha histogram:", rank);
            for (int64_t a = 0; a < NA; a++) printf(" %lld", (long long)hist[a]);
            printf("\nrank %d: alphas evaluated exactly per target and fold: mean %.2f of %lld; histogram", rank,
                   (double)esum / (double)(ecount ? ecount : 1), (long long)NA);
            for (int64_t k = 1; k <= (NA < 64 ? NA : 64); k++)
                if (ehist[k]) printf(" %lld:%lld", (long long)k, (long long)ehist[k]);
            printf("\n");
            fflush(stdout);
        }
        MPI_Barrier(MPI_COMM_WORLD);
    }
    double mine = tfact + tfit, slowest = 0;
    MPI_Allreduce(&mine, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    if (rank == 0)
        printf("full: factor + fit of the slowest rank %.1f s (wall %.1f s including data generation)\n", slowest, wmax);
    for (int64_t f = 0; f < NF; f++) {
        rdml_ridge_fact_free(F[f]);
        free(te[f]);
    }
    free(F);
    free(te);
    free(nte);
    free(X);
    free(Y);
    free(B);
    free(best);
    free(r);
    free(r2);
    free(pred);
    free(perm);
    free(evals);
    return rc ? 1 : 0;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rc = 2;
    if (argc >= 3 && strcmp(argv[1], "anchor") == 0) rc = anchor(argv[2], argc > 3 ? atoi(argv[3]) : 3);
    else if (argc >= 2 && strcmp(argv[1], "full") == 0) rc = full(argc - 2, argv + 2);
    else fprintf(stderr, "usage: ridge_bench anchor DIR [REPS] | ridge_bench full [N V D FOLDS NALPHAS CHUNK [loo|kfold]]\n");
    MPI_Finalize();
    return rc;
}
