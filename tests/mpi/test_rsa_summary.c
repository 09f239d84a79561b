/* MPI tests of rdml_rsa_summarize and rdml_rsa_median (run at 1..4 ranks). A deterministic
 * symmetric RDM with many ties (values k/8 from rdml_rng, so every rank can build the whole
 * matrix) is split into row slabs with rdml_part_block; every rank's summary must equal a
 * serial computation done here on the whole matrix: histogram counts (by numpy's searchsorted
 * definition: bin = number of edges <= x, minus 1, last bin closed), edges, median (sorted
 * copy), the k extreme pairs under (value, i, j), mean and std (row sums added in row order)
 * exactly, so the summary has the same bits on any number of ranks. Also
 * slabs handed out in reverse rank order, n = 3 on 4 ranks (a rank owns no rows), n = 2, k
 * larger than the pair count and k = 0, and errors that must fail on every rank without
 * hanging: a NaN on one rank, ranks disagreeing on n, overlapping slabs. */
#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rdml/mpiutil.h"
#include "rdml/rsa.h"
#include "test.h"

static int rank_, nranks_;

static float *make_rdm(int64_t n, uint64_t seed) {
    float *x = calloc((size_t)(n * n), sizeof *x);
    rdml_rng r = rdml_rng_make(seed, RDML_STREAM_USER + 50, 0);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i + 1; j < n; j++)
            x[i * n + j] = x[j * n + i] = (float)rdml_rng_below(&r, 17) / 8.0f;
    return x;
}

typedef struct {
    double v;
    int64_t i, j;
} ref_pair;

static int cmp_lo(const void *a, const void *b) {
    const ref_pair *x = a, *y = b;
    if (x->v != y->v) return x->v < y->v ? -1 : 1;
    if (x->i != y->i) return x->i < y->i ? -1 : 1;
    return (x->j > y->j) - (x->j < y->j);
}

static int cmp_hi(const void *a, const void *b) {
    const ref_pair *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    if (x->i != y->i) return x->i < y->i ? -1 : 1;
    return (x->j > y->j) - (x->j < y->j);
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Serial summary of the whole matrix, checked against s. */
static void check_against_serial(const float *x, int64_t n, int nbins, int k,
                                 const rdml_rdm_summary *s) {
    const int64_t p = n * (n - 1) / 2;
    ref_pair *pr = malloc((size_t)p * sizeof *pr);
    double *off = malloc((size_t)(n * (n - 1)) * sizeof *off);
    int64_t t = 0, c = 0;
    double mn = INFINITY, mx = -INFINITY, sum = 0;
    for (int64_t i = 0; i < n; i++) {
        double rs = 0; /* row sums added in row order, as the library does on any ranks */
        for (int64_t j = 0; j < n; j++) {
            if (j == i) continue;
            off[c++] = x[i * n + j];
            if (j < i) continue;
            double v = x[i * n + j];
            pr[t++] = (ref_pair){v, i, j};
            mn = v < mn ? v : mn;
            mx = v > mx ? v : mx;
            rs += v;
        }
        sum += rs;
    }
    double mean = sum / (double)p, ssd = 0;
    for (int64_t i = 0; i < n; i++) {
        double rs = 0;
        for (int64_t j = i + 1; j < n; j++) rs += (x[i * n + j] - mean) * (x[i * n + j] - mean);
        ssd += rs;
    }
    CHECK_EQ_I(s->n, n);
    CHECK_EQ_I(s->count, p);
    CHECK(s->min == mn);
    CHECK(s->max == mx);
    /* the same bits on any number of ranks and any slab layout */
    CHECK(s->mean == mean);
    CHECK(s->std == sqrt(ssd / (double)p));

    /* numpy: linspace edges over [min, max] (or min - 0.5, max + 0.5) */
    double first = mn, last = mx;
    if (first == last) {
        first -= 0.5;
        last += 0.5;
    }
    CHECK_EQ_I(s->nbins, nbins);
    double step = (last - first) / nbins;
    for (int b = 0; b < nbins; b++) CHECK(s->edges[b] == (double)b * step + first);
    CHECK(s->edges[nbins] == last);
    int64_t *h = calloc((size_t)nbins, sizeof *h), tot = 0;
    for (int64_t q = 0; q < p; q++) {
        int b = -1;
        for (int e = 0; e <= nbins; e++) b += s->edges[e] <= pr[q].v;
        if (b == nbins) b = nbins - 1;
        h[b]++;
    }
    for (int b = 0; b < nbins; b++) {
        CHECK_EQ_I(s->hist[b], h[b]);
        tot += s->hist[b];
    }
    CHECK_EQ_I(tot, p);

    qsort(off, (size_t)c, sizeof *off, cmp_d);
    CHECK(s->median == (off[c / 2 - 1] + off[c / 2]) / 2);

    int64_t kk = k < p ? k : p;
    CHECK_EQ_I(s->k, kk);
    qsort(pr, (size_t)p, sizeof *pr, cmp_lo);
    for (int64_t q = 0; q < kk; q++) {
        CHECK_EQ_I(s->low[q].i, pr[q].i);
        CHECK_EQ_I(s->low[q].j, pr[q].j);
        CHECK(s->low[q].value == pr[q].v);
    }
    qsort(pr, (size_t)p, sizeof *pr, cmp_hi);
    for (int64_t q = 0; q < kk; q++) {
        CHECK_EQ_I(s->high[q].i, pr[q].i);
        CHECK_EQ_I(s->high[q].j, pr[q].j);
        CHECK(s->high[q].value == pr[q].v);
    }
    free(pr);
    free(off);
    free(h);
}

/* Summarise an n-image RDM split into blocks; `reverse` hands block r to rank nranks-1-r. */
static void run_case(int64_t n, int nbins, int k, int reverse, uint64_t seed) {
    float *x = make_rdm(n, seed);
    int64_t lo, hi;
    rdml_part_block(n, reverse ? nranks_ - 1 - rank_ : rank_, nranks_, &lo, &hi);
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_ctx_set_comm(&ctx, MPI_COMM_WORLD);
    rdml_rdm_summary s;
    int rc = rdml_rsa_summarize(&ctx, MPI_COMM_WORLD, n, lo, hi, hi > lo ? x + lo * n : NULL,
                                nbins, k, &s);
    CHECK_EQ_I(rc, RDML_OK);
    if (rc) {
        fprintf(stderr, "n=%lld: %s\n", (long long)n, ctx.msg);
    } else {
        check_against_serial(x, n, nbins, k, &s);
        double med = -1;
        CHECK_EQ_I(rdml_rsa_median(&ctx, MPI_COMM_WORLD, n, lo, hi, x + lo * n, &med), RDML_OK);
        CHECK(med == s.median);
        rdml_rdm_summary_free(&s);
    }
    free(x);
}

static void test_summary_any_split(void) {
    run_case(53, 10, 7, 0, 1);
    run_case(53, 10, 7, 1, 1);
    run_case(301, 13, 40, 0, 2); /* many ties at the extremes: (i, j) decides */
    run_case(10, 3, 0, 0, 3);
}

static void test_tiny_rdms(void) {
    run_case(3, 4, 5, 0, 4); /* at 4 ranks one rank owns no rows; k > 3 pairs */
    run_case(3, 4, 5, 1, 4);
    run_case(2, 2, 1, 0, 5); /* one pair: min == max, numpy's +-0.5 range */
}

static void test_errors_fail_everywhere(void) {
    const int64_t n = 12;
    float *x = make_rdm(n, 6);
    int64_t lo, hi;
    rdml_part_block(n, rank_, nranks_, &lo, &hi);
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_ctx_set_comm(&ctx, MPI_COMM_WORLD);
    rdml_rdm_summary s;
    /* a NaN on the last rank's rows */
    x[(n - 1) * n + 2] = NAN;
    int rc = rdml_rsa_summarize(&ctx, MPI_COMM_WORLD, n, lo, hi, x + lo * n, 4, 2, &s);
    CHECK_EQ_I(rc, RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "entry (11, 2) is NaN");
    CHECK(s.edges == NULL && s.low == NULL);
    rdml_ctx_init(&ctx);
    double med;
    CHECK_EQ_I(rdml_rsa_median(&ctx, MPI_COMM_WORLD, n, lo, hi, x + lo * n, &med), RDML_EDATA);
    x[(n - 1) * n + 2] = 0.5f;
    /* ranks disagree on n (only possible with 2+ ranks) */
    if (nranks_ > 1) {
        rdml_ctx_init(&ctx);
        int64_t nn = rank_ == 0 ? n : n - 1;
        int64_t l2 = lo < nn ? lo : nn, h2 = hi < nn ? hi : nn;
        rc = rdml_rsa_summarize(&ctx, MPI_COMM_WORLD, nn, l2, h2, x + l2 * n, 4, 2, &s);
        CHECK_EQ_I(rc, RDML_EINTERNAL);
        CHECK_STR_HAS(ctx.msg, "ranks disagree");
        /* every rank claims all rows */
        rdml_ctx_init(&ctx);
        rc = rdml_rsa_summarize(&ctx, MPI_COMM_WORLD, n, 0, n, x, 4, 2, &s);
        CHECK_EQ_I(rc, RDML_EINTERNAL);
        CHECK_STR_HAS(ctx.msg, "overlap");
    }
    /* rows missing: every rank holds one row too few at the end */
    rdml_ctx_init(&ctx);
    rc = rdml_rsa_median(&ctx, MPI_COMM_WORLD, n, lo, hi > lo ? hi - 1 : hi, x + lo * n, &med);
    CHECK_EQ_I(rc, RDML_EINTERNAL);
    CHECK_STR_HAS(ctx.msg, "cover");
    free(x);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks_);
    RUN(test_summary_any_split);
    RUN(test_tiny_rdms);
    RUN(test_errors_fail_everywhere);
    int rc = test_summary_mpi(MPI_COMM_WORLD);
    MPI_Finalize();
    return rc;
}
