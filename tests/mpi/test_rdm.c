/* Distributed RDM at 1-4 ranks: every metric against scipy pdist (fixtures from
 * tools/make_rdm_fixtures.py), every grid shape and several block sizes against each other,
 * odd sizes (fewer images than ranks, sizes not multiples of the block), the double-
 * accumulated K chunks (9000 vertices against a double-precision reference), the 1 x P result
 * bit for bit equal to one rank's (wide chunks, small panels), zero-variance images (error on
 * every rank, or the distance-1 policy), non-finite input, a reader failing on one rank, the
 * memory-limit error with its numbers, exact symmetry and zero diagonal, that each rank reads
 * only its own block, and the Algonauts-layout fixture through rdml_rdm_compute. */
#include <mpi.h>
#include <signal.h>
#include <string.h>

#include "rdml/dataset.h"
#include "rdml/mpiutil.h"
#include "rdml/npy.h"
#include "rdml/rdm.h"
#include "rdm/rdm_priv.h"
#include "test.h"

void openblas_set_num_threads(int num_threads);

static int g_rank, g_size;

typedef struct memsrc {
    const float *x;   /* n x vsrc, row-major */
    int64_t vsrc;     /* stored columns per row */
    int64_t reads;    /* values delivered on this rank */
    int64_t nan_row, nan_col; /* inject a NaN here (-1: none) */
    int fail_rank;    /* this rank's reader fails (-1: none) */
    int64_t stop_n;   /* > 0: rank stop_rank raises SIGTERM once it has read row stop_n - 1 */
    int stop_rank;
} memsrc;

static int mem_read(rdml_ctx *ctx, void *user, int64_t r0, int64_t r1, const int64_t *cols,
                    int64_t ncols, float *out) {
    memsrc *m = user;
    if (g_rank == m->fail_rank)
        return RDML_FAIL(ctx, RDML_EIO, "test reader: disk on fire at rows [%lld, %lld)",
                         (long long)r0, (long long)r1);
    for (int64_t i = r0; i < r1; i++)
        for (int64_t k = 0; k < ncols; k++) {
            float x = m->x[i * m->vsrc + cols[k]];
            if (i == m->nan_row && cols[k] == m->nan_col) x = NAN;
            out[(i - r0) * ncols + k] = x;
        }
    m->reads += (r1 - r0) * ncols;
    if (m->stop_n > 0 && r1 == m->stop_n && g_rank == m->stop_rank && !rdml_stop_requested())
        raise(SIGTERM); /* the handler only sets the flag */
    return RDML_OK;
}

static float *load(const char *name, int64_t *rows, int64_t *cols) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_npy f;
    char path[512];
    snprintf(path, sizeof path, "rdm/%s", name);
    if (rdml_npy_open(&ctx, test_fixture(path), 0, &f) != RDML_OK) {
        fprintf(stderr, "%s\n", ctx.msg);
        return NULL;
    }
    *rows = f.shape[0];
    *cols = f.ndim > 1 ? f.shape[1] : 1;
    float *x = malloc((size_t)(*rows * *cols) * sizeof *x);
    if (rdml_npy_read_f32(&ctx, &f, 0, *rows, NULL, 0, x) != RDML_OK) {
        fprintf(stderr, "%s\n", ctx.msg);
        free(x);
        x = NULL;
    }
    rdml_npy_close(&f);
    return x;
}

/* The whole n x n result on every rank. */
static float *gather(const rdml_rdm *r) {
    int64_t n = r->n;
    float *all = malloc((size_t)(n * n) * sizeof *all + 1);
    int *cnt = malloc(sizeof(int) * (size_t)g_size * 2), *dsp = cnt + g_size;
    for (int q = 0; q < g_size; q++) {
        int64_t lo, hi;
        rdml_part_block(n, q, g_size, &lo, &hi);
        cnt[q] = (int)((hi - lo) * n);
        dsp[q] = (int)(lo * n);
    }
    MPI_Allgatherv(r->rows, (int)((r->row_hi - r->row_lo) * n), MPI_FLOAT, all, cnt, dsp, MPI_FLOAT,
                   MPI_COMM_WORLD);
    free(cnt);
    return all;
}

static int is_euclid(rdml_rdm_metric m) {
    return m == RDML_RDM_EUCLIDEAN || m == RDML_RDM_SQEUCLIDEAN;
}

/* Largest error, absolute for the bounded metrics, relative to max(1, |ref|) for euclidean. */
static double max_err(const float *a, const float *ref, int64_t n, rdml_rdm_metric m) {
    double worst = 0;
    for (int64_t k = 0; k < n * n; k++) {
        double r = ref[k], e = fabs(a[k] - r);
        if (is_euclid(m)) e /= fabs(r) > 1 ? fabs(r) : 1;
        if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
    }
    return worst;
}

/* Agreement between grids and rank counts: 1e-6 on the distance (absolute for the bounded
 * metrics, relative for euclidean); a squared distance d^2 carries twice the relative
 * difference of d, so sqeuclidean gets 2e-6. */
static double tol_grid(rdml_rdm_metric m) { return m == RDML_RDM_SQEUCLIDEAN ? 2e-6 : 1e-6; }

static void check_shape(const float *a, int64_t n) {
    int diag = 1, sym = 1;
    for (int64_t i = 0; i < n; i++) {
        if (a[i * n + i] != 0.0f) diag = 0;
        for (int64_t j = 0; j < i; j++)
            if (memcmp(&a[i * n + j], &a[j * n + i], sizeof(float)) != 0) sym = 0;
    }
    CHECK(diag);
    CHECK(sym);
}

/* Compute and gather; returns NULL (and prints) on error. */
static float *run(memsrc *src, int64_t n, int64_t v, const rdml_rdm_params *p) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_ctx_set_comm(&ctx, MPI_COMM_WORLD);
    rdml_rdm r;
    int rc = rdml_rdm_compute_from(&ctx, MPI_COMM_WORLD, n, v, mem_read, src, p, &r);
    if (rc != RDML_OK) {
        if (g_rank == 0) fprintf(stderr, "rdm failed: %s\n", ctx.msg);
        CHECK(rc == RDML_OK);
        return NULL;
    }
    int64_t lo, hi;
    rdml_part_block(n, g_rank, g_size, &lo, &hi);
    CHECK_EQ_I(r.n, n);
    CHECK_EQ_I(r.row_lo, lo);
    CHECK_EQ_I(r.row_hi, hi);
    float *all = gather(&r);
    rdml_rdm_free(&r);
    return all;
}

/* On the 1 x P grid the RDM of g_size ranks is the same bits as one rank's: rank 0 computes
 * it again alone (MPI_COMM_SELF) and compares every entry. Returns 1 when identical. */
static int same_bits_as_one_rank(const float *got, memsrc *src, int64_t n, int64_t v,
                                 const rdml_rdm_params *p) {
    int same = 1;
    if (g_rank == 0) {
        rdml_ctx ctx;
        rdml_ctx_init(&ctx);
        rdml_ctx_set_comm(&ctx, MPI_COMM_SELF);
        rdml_rdm r;
        memsrc one = *src;
        rdml_rdm_params q = *p;
        q.grid_rows = q.grid_cols = 0; /* 1 x 1 */
        p = &q;
        const int rc = rdml_rdm_compute_from(&ctx, MPI_COMM_SELF, n, v, mem_read, &one, p, &r);
        if (rc) fprintf(stderr, "one rank: %s\n", ctx.msg);
        CHECK_EQ_I(rc, RDML_OK);
        same = r.rows && memcmp(r.rows, got, (size_t)(n * n) * sizeof *got) == 0;
        int64_t diff = 0;
        for (int64_t k = 0; r.rows && k < n * n; k++) diff += memcmp(&r.rows[k], &got[k], sizeof *got) != 0;
        if (!same)
            fprintf(stderr, "%s: %lld of %lld entries differ from 1 rank's\n",
                    rdml_rdm_metric_name(p->metric), (long long)diff, (long long)(n * n));
        rdml_rdm_free(&r);
    }
    MPI_Bcast(&same, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return same;
}

static const rdml_rdm_metric all_metrics[] = {RDML_RDM_CORRELATION, RDML_RDM_EUCLIDEAN,
                                              RDML_RDM_COSINE, RDML_RDM_SQEUCLIDEAN,
                                              RDML_RDM_SPEARMAN};

static float *expected(const char *prefix, rdml_rdm_metric m, const char *suffix, int64_t n) {
    char name[128];
    int64_t r, c;
    snprintf(name, sizeof name, "%s%s%s.npy", prefix, rdml_rdm_metric_name(m), suffix);
    float *e = load(name, &r, &c);
    CHECK(e != NULL);
    if (e) {
        CHECK_EQ_I(r, n);
        CHECK_EQ_I(c, n);
    }
    return e;
}

/* Every metric with and without standardisation, auto grid, against scipy; each rank reads
 * exactly its own block (the reads add up to n x v). */
static void test_metrics_vs_scipy(void) {
    int64_t n, v;
    float *x = load("x.npy", &n, &v);
    CHECK(x != NULL);
    if (!x) return;
    for (int std = 0; std < 2; std++)
        for (int mi = 0; mi < 5; mi++) {
            rdml_rdm_metric m = all_metrics[mi];
            rdml_rdm_params p;
            rdml_rdm_defaults(&p);
            p.metric = m;
            p.standardize = std;
            memsrc src = {x, v, 0, -1, -1, -1, 0, -1};
            float *got = run(&src, n, v, &p);
            float *ref = expected("", m, std ? "_std" : "_raw", n);
            int64_t reads = 0;
            MPI_Allreduce(&src.reads, &reads, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
            CHECK_EQ_I(reads, n * v);
            if (got && ref) {
                double e = max_err(got, ref, n, m);
                if (e > 1e-5 && g_rank == 0)
                    fprintf(stderr, "%s std=%d: max error %g\n", rdml_rdm_metric_name(m), std, e);
                CHECK(e <= 1e-5);
                check_shape(got, n);
            }
            free(got);
            free(ref);
        }
    free(x);
}

/* All factorisations of the rank count, several block sizes: agree with each other within
 * 1e-6 and with scipy within 1e-5. */
static void grids_case(const char *xname, const char *prefix, const char *suffix, int std,
                       const int64_t *blocks, int nblocks) {
    int64_t n, v;
    float *x = load(xname, &n, &v);
    CHECK(x != NULL);
    if (!x) return;
    for (int mi = 0; mi < 5; mi++) {
        rdml_rdm_metric m = all_metrics[mi];
        float *ref = expected(prefix, m, suffix, n);
        float *first = NULL;
        for (int pr = 1; pr <= g_size; pr++) {
            if (g_size % pr) continue;
            for (int bi = 0; bi < nblocks; bi++) {
                rdml_rdm_params p;
                rdml_rdm_defaults(&p);
                p.metric = m;
                p.standardize = std;
                p.grid_rows = pr;
                p.grid_cols = g_size / pr;
                p.block = blocks[bi];
                memsrc src = {x, v, 0, -1, -1, -1, 0, -1};
                float *got = run(&src, n, v, &p);
                int64_t reads = 0;
                MPI_Allreduce(&src.reads, &reads, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
                CHECK_EQ_I(reads, n * v);
                if (!got) continue;
                check_shape(got, n);
                if (ref) {
                    double e = max_err(got, ref, n, m);
                    if (e > 1e-5 && g_rank == 0)
                        fprintf(stderr, "%s %s grid %dx%d block %lld: error %g vs scipy\n", xname,
                                rdml_rdm_metric_name(m), pr, g_size / pr, (long long)blocks[bi], e);
                    CHECK(e <= 1e-5);
                }
                if (!first) {
                    first = got;
                    continue;
                }
                double e = max_err(got, first, n, m);
                if (e > tol_grid(m) && g_rank == 0)
                    fprintf(stderr, "%s %s grid %dx%d block %lld: differs by %g from the first\n",
                            xname, rdml_rdm_metric_name(m), pr, g_size / pr, (long long)blocks[bi], e);
                CHECK(e <= tol_grid(m));
                free(got);
            }
        }
        free(first);
        free(ref);
    }
    free(x);
}

static void test_grid_shapes(void) {
    const int64_t blocks[] = {0, 7, 64};
    grids_case("x.npy", "", "_raw", 0, blocks, 3);
    grids_case("x.npy", "", "_std", 1, blocks, 2);
}

/* A double-precision reference for inputs too wide for a committed fixture: the textbook
 * formulas, written independently of the library (qsort ranks, two-pass means). */
typedef struct { float x; int64_t i; } ranked;
static int cmp_ranked(const void *a, const void *b) {
    float x = ((const ranked *)a)->x, y = ((const ranked *)b)->x;
    return (x > y) - (x < y);
}
static void ref_ranks(const float *x, int64_t v, double *out) {
    ranked *t = malloc((size_t)v * sizeof *t);
    for (int64_t j = 0; j < v; j++) t[j] = (ranked){x[j], j};
    qsort(t, (size_t)v, sizeof *t, cmp_ranked);
    for (int64_t s = 0, e; s < v; s = e) {
        for (e = s + 1; e < v && t[e].x == t[s].x; e++) {}
        for (int64_t k = s; k < e; k++) out[t[k].i] = (s + 1 + e) / 2.0;
    }
    free(t);
}
static float *ref_rdm(const float *x0, int64_t n, int64_t v, rdml_rdm_metric m, int std) {
    float *x = malloc((size_t)(n * v) * sizeof *x);
    memcpy(x, x0, (size_t)(n * v) * sizeof *x);
    if (std)
        for (int64_t j = 0; j < v; j++) {
            double mu = 0, ss = 0;
            for (int64_t i = 0; i < n; i++) mu += x[i * v + j];
            mu /= n;
            for (int64_t i = 0; i < n; i++) ss += (x[i * v + j] - mu) * (x[i * v + j] - mu);
            double sd = sqrt(ss / n);
            for (int64_t i = 0; i < n; i++) x[i * v + j] = sd > 0 ? (float)((x[i * v + j] - mu) / sd) : 0.0f;
        }
    double *z = malloc((size_t)(n * v) * sizeof *z);
    for (int64_t i = 0; i < n; i++) {
        double *zi = z + i * v;
        if (m == RDML_RDM_SPEARMAN)
            ref_ranks(x + i * v, v, zi);
        else
            for (int64_t j = 0; j < v; j++) zi[j] = x[i * v + j];
        if (m == RDML_RDM_CORRELATION || m == RDML_RDM_SPEARMAN || m == RDML_RDM_COSINE) {
            double mu = 0, ss = 0;
            if (m != RDML_RDM_COSINE) {
                for (int64_t j = 0; j < v; j++) mu += zi[j];
                mu /= v;
            }
            for (int64_t j = 0; j < v; j++) ss += (zi[j] - mu) * (zi[j] - mu);
            for (int64_t j = 0; j < v; j++) zi[j] = (zi[j] - mu) / sqrt(ss);
        }
    }
    float *d = malloc((size_t)(n * n) * sizeof *d);
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k < n; k++) {
            double acc = 0;
            for (int64_t j = 0; j < v; j++) {
                double a = z[i * v + j], b = z[k * v + j];
                acc += is_euclid(m) ? (a - b) * (a - b) : a * b;
            }
            d[i * n + k] = (float)(m == RDML_RDM_EUCLIDEAN ? sqrt(acc) : is_euclid(m) ? acc : 1 - acc);
        }
    free(z);
    free(x);
    return d;
}

/* 40 images x 9000 vertices of low-rank signal + noise with per-image offsets and scales:
 * three K chunks accumulated in double, every grid, against the double reference. */
static void test_wide_chunks(void) {
    const int64_t n = 40, v = 9000, k = 5;
    float *x = malloc((size_t)(n * v) * sizeof *x);
    double f[40 * 5];
    rdml_rng r = rdml_rng_make(7, RDML_STREAM_USER, 0);
    for (int64_t q = 0; q < n * k; q++) f[q] = rdml_rng_normal(&r);
    double *w = malloc((size_t)(k * v) * sizeof *w);
    for (int64_t q = 0; q < k * v; q++) w[q] = rdml_rng_normal(&r);
    for (int64_t i = 0; i < n; i++) {
        double scale = 0.5 + 2.5 * rdml_rng_uniform(&r), off = 8 * rdml_rng_uniform(&r) - 4;
        for (int64_t j = 0; j < v; j++) {
            double s = 0;
            for (int64_t q = 0; q < k; q++) s += f[i * k + q] * w[q * v + j];
            x[i * v + j] = (float)((s + 0.8 * rdml_rng_normal(&r)) * scale + off);
        }
    }
    free(w);
    for (int std = 0; std < 2; std++)
        for (int mi = 0; mi < 5; mi++) {
            rdml_rdm_metric m = all_metrics[mi];
            float *ref = ref_rdm(x, n, v, m, std), *first = NULL;
            const int64_t blocks[] = {0, 50};
            for (int pr = 1; pr <= g_size; pr++) {
                if (g_size % pr) continue;
                for (int bi = 0; bi < 2; bi++) {
                    rdml_rdm_params p;
                    rdml_rdm_defaults(&p);
                    p.metric = m;
                    p.standardize = std;
                    p.grid_rows = pr;
                    p.grid_cols = g_size / pr;
                    p.block = blocks[bi];
                    memsrc src = {x, v, 0, -1, -1, -1, 0, -1};
                    float *got = run(&src, n, v, &p);
                    if (!got) continue;
                    check_shape(got, n);
                    double e = max_err(got, ref, n, m);
                    double e1 = first ? max_err(got, first, n, m) : 0;
                    if ((e > 1e-5 || e1 > tol_grid(m)) && g_rank == 0)
                        fprintf(stderr, "wide %s std=%d grid %dx%d block %lld: %g vs reference, "
                                "%g vs first grid\n", rdml_rdm_metric_name(m), std, pr, g_size / pr,
                                (long long)blocks[bi], e, e1);
                    CHECK(e <= 1e-5);
                    CHECK(e1 <= tol_grid(m));
                    if (pr == 1) CHECK(same_bits_as_one_rank(got, &src, n, v, &p));
                    if (!first)
                        first = got;
                    else
                        free(got);
                }
            }
            free(first);
            free(ref);
        }
    free(x);
}

/* Default parameters with the metric, per-vertex standardisation, panel rows and arithmetic. */
static rdml_rdm_params params_of(rdml_rdm_metric m, int std, int64_t panel_rows, rdml_rdm_arith a) {
    rdml_rdm_params p;
    rdml_rdm_defaults(&p);
    p.metric = m;
    p.standardize = std;
    p.panel_rows = panel_rows;
    p.arithmetic = a;
    return p;
}

/* n x v rows of Gaussian noise with a per-image offset in [-3, 3) and scale in [0.5, 1.5),
 * plus amp sin(i j % mod) shared structure (seed and stream of the RNG). */
static float *offset_rows(int64_t n, int64_t v, uint64_t seed, uint64_t stream, double amp, int mod) {
    float *x = malloc((size_t)(n * v) * sizeof *x);
    rdml_rng r = rdml_rng_make(seed, RDML_STREAM_USER, stream);
    for (int64_t i = 0; i < n; i++) {
        double off = 6 * rdml_rng_uniform(&r) - 3, scale = 0.5 + rdml_rng_uniform(&r);
        for (int64_t j = 0; j < v; j++)
            x[i * v + j] = (float)(off + scale * rdml_rng_normal(&r) + amp * sin((double)(i * j % mod)));
    }
    return x;
}

/* The 1 x P engine with small Gram panels and mirror chunks (panel_rows 1, 7, 16: N = 45 is
 * not a multiple of any, so panels end inside a rank's slab and at its edges), V below one K
 * chunk (300) and across two (2500, the last partial): every metric, with and without
 * per-vertex standardisation, against the double reference and the automatic panel size. */
static void test_panels(void) {
    const int64_t n = 45, vs[] = {300, 2500};
    for (int vi = 0; vi < 2; vi++) {
        const int64_t v = vs[vi];
        float *x = offset_rows(n, v, 11, (uint64_t)vi, 0.3, 97);
        for (int std = 0; std < 2; std++)
            for (int mi = 0; mi < 5; mi++) {
                rdml_rdm_metric m = all_metrics[mi];
                float *ref = ref_rdm(x, n, v, m, std), *first = NULL;
                const int64_t rows[] = {0, 1, 7, 16};
                for (int q = 0; q < 4; q++) {
                    rdml_rdm_params p = params_of(m, std, rows[q], RDML_RDM_FLOAT32);
                    memsrc src = {x, v, 0, -1, -1, -1, 0, -1};
                    float *got = run(&src, n, v, &p);
                    CHECK(got != NULL);
                    if (!got) continue;
                    check_shape(got, n);
                    double e = max_err(got, ref, n, m);
                    double e1 = first ? max_err(got, first, n, m) : 0;
                    if ((e > 1e-5 || e1 > tol_grid(m)) && g_rank == 0)
                        fprintf(stderr, "panels %s std=%d v=%lld panel_rows %lld: %g vs reference, "
                                "%g vs automatic\n", rdml_rdm_metric_name(m), std, (long long)v,
                                (long long)rows[q], e, e1);
                    CHECK(e <= 1e-5);
                    CHECK(e1 <= tol_grid(m));
                    CHECK(same_bits_as_one_rank(got, &src, n, v, &p));
                    if (!first)
                        first = got;
                    else
                        free(got);
                }
                free(first);
                free(ref);
            }
        free(x);
    }
}

/* [rdm] arithmetic = int16 (rdm_q16.c): correlation, cosine and spearman, with and without
 * per-vertex standardisation, V = 301 (odd: the last vertex pair is padded), 2500 and 9001
 * (several flush and packing blocks, vertex chunks spread over the ranks), N = 45 (12-row
 * tiles end inside panels, the last tile past the last image) with panel_rows 0, 1, 7, 16.
 * Against the double reference within the rounding's statistical size, 3e-3 / sqrt(V)
 * (about twice the largest of ~1000 errors of rms 0.41 c / (4095 sqrt V), c = max|z| sqrt V
 * ~ 3.5); the same bits for every panel size, on 1 rank, and from the generic C kernel;
 * a zero-variance image under zero_variance = one at distance 1; euclidean and a 2-D grid
 * refused with the key named. */
static void test_int16(void) {
    const int64_t n = 45, vs[] = {301, 2500, 9001};
    const rdml_rdm_metric ms[] = {RDML_RDM_CORRELATION, RDML_RDM_COSINE, RDML_RDM_SPEARMAN};
    for (int vi = 0; vi < 3; vi++) {
        const int64_t v = vs[vi];
        float *x = offset_rows(n, v, 23, (uint64_t)vi, 0.5, 89);
        const double tol = 3e-3 / sqrt((double)v);
        for (int std = 0; std < 2; std++)
            for (int mi = 0; mi < 3; mi++) {
                const rdml_rdm_metric m = ms[mi];
                float *ref = ref_rdm(x, n, v, m, std), *first = NULL;
                const int64_t rows[] = {0, 1, 7, 16};
                for (int q = 0; q < 4; q++) {
                    rdml_rdm_params p = params_of(m, std, rows[q], RDML_RDM_INT16);
                    memsrc src = {x, v, 0, -1, -1, -1, 0, -1};
                    float *got = run(&src, n, v, &p);
                    CHECK(got != NULL);
                    if (!got) continue;
                    check_shape(got, n);
                    const double e = max_err(got, ref, n, m);
                    if (e > tol && g_rank == 0)
                        fprintf(stderr, "int16 %s std=%d v=%lld panel_rows %lld: %g vs reference "
                                "(tolerance %g)\n", rdml_rdm_metric_name(m), std, (long long)v,
                                (long long)rows[q], e, tol);
                    CHECK(e <= tol);
                    if (q == 0) CHECK(same_bits_as_one_rank(got, &src, n, v, &p));
                    if (!first) {
                        first = got;
                        continue;
                    }
                    CHECK(memcmp(got, first, (size_t)(n * n) * sizeof *got) == 0);
                    free(got);
                }
                if (first && mi == 0) { /* the generic kernel: the same integers */
                    setenv("RDML_RDM_INT16_KERNEL", "generic", 1);
                    rdml_rdm_params p = params_of(m, std, 0, RDML_RDM_INT16);
                    memsrc src = {x, v, 0, -1, -1, -1, 0, -1};
                    float *got = run(&src, n, v, &p);
                    unsetenv("RDML_RDM_INT16_KERNEL");
                    CHECK(got && memcmp(got, first, (size_t)(n * n) * sizeof *got) == 0);
                    free(got);
                }
                free(first);
                free(ref);
            }
        if (vi == 0) { /* a constant image: distance 1 to every other under zero_variance = one */
            for (int64_t j = 0; j < v; j++) x[5 * v + j] = 2.5f;
            rdml_rdm_params p;
            rdml_rdm_defaults(&p);
            p.arithmetic = RDML_RDM_INT16;
            p.zero_variance_error = 0;
            memsrc src = {x, v, 0, -1, -1, -1, 0, -1};
            float *got = run(&src, n, v, &p);
            CHECK(got != NULL);
            for (int64_t j = 0; got && j < n; j++) {
                CHECK(got[5 * n + j] == (j == 5 ? 0.0f : 1.0f));
                CHECK(got[j * n + 5] == (j == 5 ? 0.0f : 1.0f));
            }
            free(got);
        }
        free(x);
    }
    /* 600 images: three column blocks of 256, so 3 threads per rank share a panel; the same
     * bits as 1 thread, and with panels of 100 rows */
    {
        const int64_t nb = 600, vb = 700;
        float *x = malloc((size_t)(nb * vb) * sizeof *x);
        rdml_rng r = rdml_rng_make(29, RDML_STREAM_USER, 0);
        for (int64_t k = 0; k < nb * vb; k++) x[k] = (float)rdml_rng_normal(&r);
        rdml_rdm_params p;
        rdml_rdm_defaults(&p);
        p.arithmetic = RDML_RDM_INT16;
        memsrc src = {x, vb, 0, -1, -1, -1, 0, -1};
        float *one = run(&src, nb, vb, &p);
        openblas_set_num_threads(3);
        float *three = run(&src, nb, vb, &p);
        p.panel_rows = 100;
        float *panels = run(&src, nb, vb, &p);
        openblas_set_num_threads(1);
        const size_t bytes = (size_t)(nb * nb) * sizeof(float);
        CHECK(one && three && memcmp(one, three, bytes) == 0);
        CHECK(one && panels && memcmp(one, panels, bytes) == 0);
        free(one);
        free(three);
        free(panels);
        free(x);
    }
    /* refused: a metric whose distance cancels the rounded digits, a 2-D grid */
    float x[4 * 6] = {1, 2, 3, 4, 5, 6, 2, 1, 3, 5, 4, 6, 6, 5, 4, 3, 2, 1, 1, 3, 2, 5, 4, 6};
    for (int k = 0; k < 2; k++) {
        if (k == 1 && g_size < 2) continue;
        rdml_rdm_params p;
        rdml_rdm_defaults(&p);
        p.arithmetic = RDML_RDM_INT16;
        if (k == 0) p.metric = RDML_RDM_EUCLIDEAN;
        else {
            p.grid_rows = g_size;
            p.grid_cols = 1;
        }
        rdml_ctx ctx;
        rdml_ctx_init(&ctx);
        rdml_rdm out;
        memsrc src = {x, 6, 0, -1, -1, -1, 0, -1};
        int rc = rdml_rdm_compute_from(&ctx, MPI_COMM_WORLD, 4, 6, mem_read, &src, &p, &out);
        CHECK_EQ_I(rc, RDML_ECONFIG);
        CHECK_STR_HAS(ctx.msg, "arithmetic = int16");
        CHECK_STR_HAS(ctx.msg, k == 0 ? "euclidean" : "grid");
        CHECK(out.rows == NULL);
    }
}

static void test_odd_sizes(void) {
    const int64_t b1[] = {0, 2, 3, 5};
    grids_case("odd_x.npy", "odd_", "", 0, b1, 4); /* 37 x 7 */
    const int64_t b2[] = {0, 1, 2};
    grids_case("tiny_x.npy", "tiny_", "", 0, b2, 3); /* 3 images: fewer than 4 ranks */
}

static void test_zero_variance(void) {
    int64_t n, v;
    float *x = load("zv_x.npy", &n, &v);
    CHECK(x != NULL);
    if (!x) return;
    const rdml_rdm_metric ms[] = {RDML_RDM_CORRELATION, RDML_RDM_COSINE, RDML_RDM_SPEARMAN};
    for (int k = 0; k < 3; k++) {
        for (int pr = 1; pr <= g_size; pr++) {
            if (g_size % pr) continue;
            rdml_rdm_params p;
            rdml_rdm_defaults(&p);
            p.metric = ms[k];
            p.grid_rows = pr;
            p.grid_cols = g_size / pr;
            /* error, named, on every rank */
            rdml_ctx ctx;
            rdml_ctx_init(&ctx);
            rdml_rdm r;
            memsrc src = {x, v, 0, -1, -1, -1, 0, -1};
            int rc = rdml_rdm_compute_from(&ctx, MPI_COMM_WORLD, n, v, mem_read, &src, &p, &r);
            CHECK_EQ_I(rc, RDML_EDATA);
            CHECK_STR_HAS(ctx.msg, "image row 5 ");
            CHECK_STR_HAS(ctx.msg, rdml_rdm_metric_name(ms[k]));
            CHECK(r.rows == NULL);
            /* policy: distance 1 */
            p.zero_variance_error = 0;
            float *got = run(&src, n, v, &p);
            float *ref = expected("zv_", ms[k], "", n);
            if (got && ref) {
                CHECK(max_err(got, ref, n, ms[k]) <= 1e-5);
                CHECK_EQ_I(got[5 * n + 0], 1);
                CHECK_EQ_I(got[3 * n + 5], 1);
                check_shape(got, n);
            }
            free(got);
            free(ref);
        }
    }
    free(x);
}

/* A stop request on ONE rank (SIGTERM after it read the last image row): every rank
 * stops with RDML_ECANCELLED at the boundary after the reading, for every grid shape; none
 * hangs, no rows are returned; once cleared, the same call succeeds. */
/* The last rank that reads image row `row` (-1: any row) and at least one vertex column: on
 * the 1 x P grid the vertices go in whole chunks, so with few vertices the last ranks read
 * nothing. */
static int last_reader(int64_t n, int64_t v, const rdml_rdm_params *p, int64_t row) {
    int pr = 0, pc = 0, last = 0;
    int64_t b = 0;
    rdm_resolve(n, v, g_size, p, &pr, &pc, &b);
    for (int r = 0; r < g_size && pc > 0; r++) {
        const int myrow = r / pc, mycol = r % pc;
        const int rows = row >= 0 ? rdml_part_g2p(row, b, pr) == myrow : rdml_part_numroc(n, b, myrow, 0, pr) > 0;
        if (rows && rdml_part_numroc(v, b, mycol, 0, pc) > 0) last = r;
    }
    return last;
}

static void test_stop_one_rank(void) {
    int64_t n, v;
    float *x = load("x.npy", &n, &v);
    CHECK(x != NULL);
    if (!x) return;
    rdml_stop_install();
    for (int pr = 1; pr <= g_size; pr++) {
        if (g_size % pr) continue;
        rdml_rdm_params p;
        rdml_rdm_defaults(&p);
        p.grid_rows = pr;
        p.grid_cols = g_size / pr;
        rdml_ctx ctx;
        rdml_ctx_init(&ctx);
        rdml_rdm r;
        /* the last rank of the process row holding image row n - 1 that reads vertices */
        memsrc src = {x, v, 0, -1, -1, -1, n, last_reader(n, v, &p, n - 1)};
        int rc = rdml_rdm_compute_from(&ctx, MPI_COMM_WORLD, n, v, mem_read, &src, &p, &r);
        CHECK_EQ_I(rc, RDML_ECANCELLED);
        CHECK_STR_HAS(ctx.msg, "stopped by SIGTERM");
        CHECK_STR_HAS(ctx.msg, "after reading the RDM input, before its Gram matrix");
        CHECK(r.rows == NULL);
        rdml_stop_clear();
        MPI_Barrier(MPI_COMM_WORLD);
        memsrc ok = {x, v, 0, -1, -1, -1, 0, -1};
        rdml_ctx_init(&ctx);
        CHECK_EQ_I(rdml_rdm_compute_from(&ctx, MPI_COMM_WORLD, n, v, mem_read, &ok, &p, &r), RDML_OK);
        rdml_rdm_free(&r);
    }
    signal(SIGTERM, SIG_DFL);
    free(x);
}

static void test_bad_input(void) {
    int64_t n, v;
    float *x = load("x.npy", &n, &v);
    CHECK(x != NULL);
    if (!x) return;
    rdml_rdm_params p;
    rdml_rdm_defaults(&p);
    rdml_rdm r;
    rdml_ctx ctx;

    /* a NaN: named by row and column on every rank, whatever the grid */
    for (int pr = 1; pr <= g_size; pr++) {
        if (g_size % pr) continue;
        p.grid_rows = pr;
        p.grid_cols = g_size / pr;
        rdml_ctx_init(&ctx);
        memsrc nan = {x, v, 0, 7, 123, -1, 0, -1};
        CHECK_EQ_I(rdml_rdm_compute_from(&ctx, MPI_COMM_WORLD, n, v, mem_read, &nan, &p, &r), RDML_EDATA);
        CHECK_STR_HAS(ctx.msg, "image row 7, vertex column 123 is NaN");
    }
    p.grid_rows = p.grid_cols = 0;

    /* the reader fails on the last rank that reads only: every rank returns its error */
    rdml_ctx_init(&ctx);
    memsrc bad = {x, v, 0, -1, -1, last_reader(n, v, &p, -1), 0, -1};
    CHECK_EQ_I(rdml_rdm_compute_from(&ctx, MPI_COMM_WORLD, n, v, mem_read, &bad, &p, &r), RDML_EIO);
    CHECK_STR_HAS(ctx.msg, "disk on fire");

    /* a grid that does not multiply to the rank count */
    rdml_ctx_init(&ctx);
    p.grid_rows = g_size + 1;
    p.grid_cols = 1;
    memsrc ok = {x, v, 0, -1, -1, -1, 0, -1};
    CHECK_EQ_I(rdml_rdm_compute_from(&ctx, MPI_COMM_WORLD, n, v, mem_read, &ok, &p, &r), RDML_ECONFIG);
    CHECK_STR_HAS(ctx.msg, "does not match");
    p.grid_rows = 0;

    /* nothing to compare */
    rdml_ctx_init(&ctx);
    CHECK_EQ_I(rdml_rdm_compute_from(&ctx, MPI_COMM_WORLD, n, 0, mem_read, &ok, &p, &r), RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "40 images x 0 vertices");

    /* the memory limit, with the numbers; exactly the plan is enough */
    rdml_ctx_init(&ctx);
    p.max_bytes_per_rank = 1000;
    CHECK_EQ_I(rdml_rdm_compute_from(&ctx, MPI_COMM_WORLD, n, v, mem_read, &ok, &p, &r), RDML_EDATA);
    int64_t plan = rdml_rdm_plan_bytes(n, v, g_size, &p);
    char want[160];
    snprintf(want, sizeof want, "RDM of 40 images x 300 vertices needs %.0f kB per rank on %d ranks "
             "but 1 kB is available", plan / 1e3, g_size);
    CHECK_STR_HAS(ctx.msg, want);
    CHECK_STR_HAS(ctx.msg, "hint: more ranks or nodes");
    p.max_bytes_per_rank = plan;
    rdml_ctx_init(&ctx);
    int rc = rdml_rdm_compute_from(&ctx, MPI_COMM_WORLD, n, v, mem_read, &ok, &p, &r);
    CHECK_EQ_I(rc, RDML_OK);
    if (rc == RDML_OK) rdml_rdm_free(&r);
    free(x);
}

/* The Algonauts-layout fixture through rdml_rdm_compute: V1 (V1v + V1d), standardised. */
static void test_subject(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_dataset *ds = NULL;
    rdml_subject *s = NULL;
    rdml_selection sel = {0};
    int rc = rdml_dataset_open(&ctx, test_fixture("algonauts_mini"), &ds);
    if (rc == RDML_OK) rc = rdml_subject_open(&ctx, ds, 1, &s);
    if (rc == RDML_OK) rc = rdml_subject_select(&ctx, s, "V1", &sel);
    if (rc != RDML_OK) fprintf(stderr, "%s\n", ctx.msg);
    CHECK_EQ_I(rc, RDML_OK);
    if (rc != RDML_OK) goto done;
    const rdml_rdm_metric ms[] = {RDML_RDM_CORRELATION, RDML_RDM_EUCLIDEAN};
    for (int k = 0; k < 2; k++)
        for (int pr = 1; pr <= g_size; pr++) {
            if (g_size % pr) continue;
            rdml_rdm_params p;
            rdml_rdm_defaults(&p);
            p.metric = ms[k];
            p.standardize = 1;
            p.grid_rows = pr;
            p.grid_cols = g_size / pr;
            rdml_rdm r;
            rc = rdml_rdm_compute(&ctx, MPI_COMM_WORLD, s, &sel, 0, &p, &r);
            if (rc != RDML_OK) fprintf(stderr, "%s\n", ctx.msg);
            CHECK_EQ_I(rc, RDML_OK);
            if (rc != RDML_OK) continue;
            int64_t n = r.n;
            CHECK_EQ_I(n, rdml_subject_nimages(s));
            float *got = gather(&r);
            rdml_rdm_free(&r);
            float *ref = expected("mini_V1_std_", ms[k], "", n);
            if (ref) CHECK(max_err(got, ref, n, ms[k]) <= 1e-5);
            check_shape(got, n);
            free(got);
            free(ref);
        }
    /* more images than the subject has */
    rdml_rdm_params p;
    rdml_rdm_defaults(&p);
    rdml_rdm r;
    rdml_ctx_init(&ctx);
    CHECK_EQ_I(rdml_rdm_compute(&ctx, MPI_COMM_WORLD, s, &sel, 1000, &p, &r), RDML_ECONFIG);
    CHECK_STR_HAS(ctx.msg, "data.images = 1000 but subj01 has 12");
    /* the first 5 images only: still a valid RDM */
    rdml_ctx_init(&ctx);
    rc = rdml_rdm_compute(&ctx, MPI_COMM_WORLD, s, &sel, 5, &p, &r);
    CHECK_EQ_I(rc, RDML_OK);
    if (rc == RDML_OK) {
        CHECK_EQ_I(r.n, 5);
        rdml_rdm_free(&r);
    }
done:
    rdml_selection_free(&sel);
    rdml_subject_close(&s);
    rdml_dataset_close(&ds);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    RUN(test_metrics_vs_scipy);
    RUN(test_grid_shapes);
    RUN(test_wide_chunks);
    RUN(test_panels);
    RUN(test_int16);
    RUN(test_odd_sizes);
    RUN(test_zero_variance);
    RUN(test_bad_input);
    RUN(test_stop_one_rank);
    RUN(test_subject);
    int rc = test_summary_mpi(MPI_COMM_WORLD);
    MPI_Finalize();
    return rc;
}
