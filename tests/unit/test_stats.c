/* Unit tests of rdml/stats.h. Golden values: tests/fixtures/stats/stats.json, written by
 * tools/make_stats_fixtures.py from tools/rsa_stats_reference.py (a numpy port of
 * rsatoolbox's bootstrap_sample_pattern / subsample_pattern self-pair removal, eval_bootstrap
 * scores, boot_noise_ceiling with pool_rdm, bootstrap_pair_tests, zero / nc tests, percentile
 * intervals, and the permutation test) fed with the same resampling indices (the script ports
 * the counter RNG; the first case stores its indices and this test checks them). Every case
 * is compared within 1e-10: scores (scipy), noise ceiling, every bootstrap sample's scores
 * and noise ceiling, intervals, pair / zero / nc p-values, every null score and the
 * permutation p-values. The fixture also holds the bootstrap scores of a wrong formula
 * (self-pairs kept as 0): the test asserts they are far from the library's, so keeping
 * self-pairs would fail. In-test references: weighted comparisons against the materialised
 * expanded vector through rdml/rsa.h, BH against a direct step-up rejection rule, and the
 * errors. Runs on MPI_COMM_SELF (tests/mpi/test_stats.c covers 1-4 ranks). */
#include <jansson.h>
#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rdml/stats.h"
#include "test.h"

static json_t *fixture;
static const double TOL = 1e-10;

static double jd(json_t *v) { return json_is_null(v) ? NAN : json_number_value(v); }

static double *jdoubles(json_t *arr, int64_t *len) {
    size_t n = json_array_size(arr);
    double *v = malloc((n ? n : 1) * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = jd(json_array_get(arr, i));
    if (len) *len = (int64_t)n;
    return v;
}

static int64_t *jints(json_t *arr, int64_t *len) {
    size_t n = json_array_size(arr);
    int64_t *v = malloc((n ? n : 1) * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = json_integer_value(json_array_get(arr, i));
    if (len) *len = (int64_t)n;
    return v;
}

static int64_t jint(json_t *o, const char *k) { return json_integer_value(json_object_get(o, k)); }

/* equal within tol, or both NaN */
static int near_or_nan(double a, double b, double tol) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    return fabs(a - b) <= tol;
}

#define CHECK_NN(a, b)                                                                     \
    do {                                                                                   \
        double a__ = (a), b__ = (b);                                                       \
        if (!near_or_nan(a__, b__, TOL)) {                                                 \
            fprintf(stderr, "%s:%d: case %s: %s = %.15g, expected %.15g\n", __FILE__,      \
                    __LINE__, cname, #a, a__, b__);                                        \
            test_failed_checks_++;                                                         \
        }                                                                                  \
    } while (0)

typedef struct fcase {
    rdml_stats_data d;
    rdml_stats_opts o;
    int64_t *pi, *pj;
    double **brain, **models;
    float **full;
} fcase;

static void fcase_free(fcase *c) {
    for (int s = 0; s < c->d.nsubj; s++) free(c->brain[s]);
    int mv = c->d.models_per_subject ? c->d.nmodels * c->d.nsubj : c->d.nmodels;
    for (int k = 0; k < mv; k++) free(c->models[k]);
    for (int s = 0; c->full && s < c->d.nsubj; s++) free(c->full[s]);
    free(c->brain);
    free(c->models);
    free(c->full);
    free(c->pi);
    free(c->pj);
}

static rdml_rsa_method method_of(const char *m) {
    if (!strcmp(m, "pearson")) return RDML_RSA_PEARSON;
    if (!strcmp(m, "kendall_tau_a")) return RDML_RSA_KENDALL_A;
    return RDML_RSA_SPEARMAN;
}

static void load_case(json_t *cj, fcase *c) {
    memset(c, 0, sizeof *c);
    int64_t P;
    c->pi = jints(json_object_get(cj, "pi"), &P);
    c->pj = jints(json_object_get(cj, "pj"), NULL);
    const int S = (int)jint(cj, "S"), M = (int)jint(cj, "M");
    const int mps = (int)jint(cj, "models_per_subject");
    c->brain = malloc((size_t)S * sizeof *c->brain);
    for (int s = 0; s < S; s++)
        c->brain[s] = jdoubles(json_array_get(json_object_get(cj, "brain"), (size_t)s), NULL);
    const int mv = mps ? M * S : M;
    c->models = malloc((size_t)mv * sizeof *c->models);
    for (int k = 0; k < mv; k++)
        c->models[k] = jdoubles(json_array_get(json_object_get(cj, "models"), (size_t)k), NULL);
    const int64_t n = jint(cj, "n");
    json_t *fj = json_object_get(cj, "brain_full");
    if (!json_is_null(fj) && fj) {
        c->full = malloc((size_t)S * sizeof *c->full);
        for (int s = 0; s < S; s++) {
            double *v = jdoubles(json_array_get(fj, (size_t)s), NULL);
            c->full[s] = malloc((size_t)(n * n) * sizeof(float));
            for (int64_t t = 0; t < n * n; t++) c->full[s][t] = (float)v[t];
            free(v);
        }
    }
    c->d.n = n;
    c->d.npairs = P;
    c->d.pi = c->pi;
    c->d.pj = c->pj;
    c->d.nsubj = S;
    c->d.brain = (const double *const *)c->brain;
    c->d.nmodels = M;
    c->d.models = (const double *const *)c->models;
    c->d.models_per_subject = mps;
    c->d.brain_full = (const float *const *)c->full;
    rdml_stats_opts_default(&c->o);
    c->o.method = method_of(json_string_value(json_object_get(cj, "method")));
    c->o.pool = strcmp(json_string_value(json_object_get(cj, "pooling")), "mean")
                    ? RDML_RSA_POOL_RSATOOLBOX
                    : RDML_RSA_POOL_MEAN;
    c->o.seed = (uint64_t)jint(cj, "seed");
    c->o.key = (uint64_t)jint(cj, "key");
    c->o.nboot = jint(cj, "nboot");
    c->o.nperm = jint(cj, "nperm");
    c->o.boot_subjects = (int)jint(cj, "boot_subjects");
    c->o.level = json_number_value(json_object_get(cj, "level"));
}

static void check_case(json_t *cj) {
    const char *cname = json_string_value(json_object_get(cj, "name"));
    fcase c;
    load_case(cj, &c);
    const int M = c.d.nmodels, S = c.d.nsubj;
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_stats_result r;
    int rc = rdml_stats_evaluate(&ctx, MPI_COMM_SELF, &c.d, &c.o, &r);
    CHECK_EQ_I(rc, RDML_OK);
    if (rc) {
        fprintf(stderr, "case %s: %s\n", cname, ctx.msg);
        fcase_free(&c);
        return;
    }
    double *v;
    /* scores == scipy */
    v = jdoubles(json_object_get(cj, "score"), NULL);
    for (int k = 0; k < M; k++) CHECK_NN(r.score[k], v[k]);
    free(v);
    v = jdoubles(json_object_get(cj, "score_subject"), NULL);
    for (int t = 0; t < M * S; t++) CHECK_NN(r.score_subject[t], v[t]);
    free(v);
    /* noise ceiling */
    json_t *nc = json_object_get(cj, "nc");
    CHECK_EQ_I(r.has_nc, !json_is_null(nc));
    if (!json_is_null(nc)) {
        CHECK_NN(r.nc_lower, jd(json_array_get(nc, 0)));
        CHECK_NN(r.nc_upper, jd(json_array_get(nc, 1)));
    }
    /* every bootstrap sample */
    CHECK_EQ_I(r.boot_valid, jint(cj, "boot_valid"));
    CHECK_EQ_I(r.boot_dropped, c.o.nboot - jint(cj, "boot_valid"));
    CHECK_EQ_I(r.nc_valid, jint(cj, "nc_valid"));
    v = jdoubles(json_object_get(cj, "boot_scores"), NULL);
    for (int64_t t = 0; t < c.o.nboot * M; t++) CHECK_NN(r.boot_scores[t], v[t]);
    free(v);
    v = jdoubles(json_object_get(cj, "boot_nc"), NULL);
    for (int64_t t = 0; t < c.o.nboot * 2; t++) CHECK_NN(r.boot_nc[t], v[t]);
    free(v);
    /* a wrong formula (self-pairs kept as 0) must be far from the library's samples */
    json_t *wj = json_object_get(cj, "wrong_boot_scores");
    if (wj && !json_is_null(wj)) {
        v = jdoubles(wj, NULL);
        double worst = 0;
        for (int64_t t = 0; t < c.o.nboot * M; t++)
            if (!isnan(v[t]) && !isnan(r.boot_scores[t]) && fabs(v[t] - r.boot_scores[t]) > worst)
                worst = fabs(v[t] - r.boot_scores[t]);
        CHECK(worst > 1e-3);
        free(v);
    }
    /* intervals and bootstrap tests */
    json_t *ci = json_object_get(cj, "ci");
    for (int k = 0; k < M; k++) {
        CHECK_NN(r.ci_lo[k], jd(json_array_get(json_array_get(ci, (size_t)k), 0)));
        CHECK_NN(r.ci_hi[k], jd(json_array_get(json_array_get(ci, (size_t)k), 1)));
        CHECK(r.ci_lo[k] <= r.ci_hi[k]);
    }
    json_t *dci = json_object_get(cj, "diff_ci");
    for (int k = 0; k < M; k++)
        for (int l = 0; l < M; l++) {
            if (k == l) continue;
            json_t *e = json_array_get(json_array_get(dci, (size_t)k), (size_t)l);
            CHECK_NN(r.diff_lo[k * M + l], jd(json_array_get(e, 0)));
            CHECK_NN(r.diff_hi[k * M + l], jd(json_array_get(e, 1)));
            CHECK_NN(r.diff[k * M + l], r.score[k] - r.score[l]);
        }
    v = jdoubles(json_object_get(cj, "pair_p"), NULL);
    for (int t = 0; t < M * M; t++) CHECK_NN(r.pair_p[t], v[t]);
    free(v);
    v = jdoubles(json_object_get(cj, "p_zero"), NULL);
    for (int k = 0; k < M; k++) CHECK_NN(r.boot_p_zero[k], v[k]);
    free(v);
    v = jdoubles(json_object_get(cj, "p_nc"), NULL);
    for (int k = 0; k < M; k++) CHECK_NN(r.boot_p_nc[k], v[k]);
    free(v);
    json_t *ncci = json_object_get(cj, "nc_ci");
    if (!json_is_null(ncci)) {
        CHECK_NN(r.nc_lower_ci[0], jd(json_array_get(json_array_get(ncci, 0), 0)));
        CHECK_NN(r.nc_lower_ci[1], jd(json_array_get(json_array_get(ncci, 0), 1)));
        CHECK_NN(r.nc_upper_ci[0], jd(json_array_get(json_array_get(ncci, 1), 0)));
        CHECK_NN(r.nc_upper_ci[1], jd(json_array_get(json_array_get(ncci, 1), 1)));
    } else {
        CHECK(isnan(r.nc_lower_ci[0]) && isnan(r.nc_upper_ci[1]));
    }
    /* permutation test */
    CHECK(!strcmp(rdml_stats_perm_scheme_name(r.perm_scheme),
                  json_string_value(json_object_get(cj, "scheme"))));
    CHECK_EQ_I(r.perm_valid, jint(cj, "perm_valid"));
    v = jdoubles(json_object_get(cj, "perm_null"), NULL);
    for (int64_t t = 0; t < c.o.nperm * M; t++) CHECK_NN(r.perm_null[t], v[t]);
    free(v);
    v = jdoubles(json_object_get(cj, "perm_p"), NULL);
    for (int k = 0; k < M; k++) CHECK_NN(r.perm_p[k], v[k]);
    free(v);
    /* the permutation test reading the brain's upper triangle instead of its cached matrix
     * (large RDMs) gives the same null values, bit for bit */
    if (r.perm_scheme == RDML_STATS_PERM_IMAGES) {
        rdml_stats_opts o2 = c.o;
        o2.max_matrix_bytes = 1;
        o2.nboot = 0;
        rdml_stats_result r2;
        CHECK_EQ_I(rdml_stats_evaluate(&ctx, MPI_COMM_SELF, &c.d, &o2, &r2), RDML_OK);
        CHECK(r2.perm_null && !memcmp(r2.perm_null, r.perm_null, (size_t)(c.o.nperm * M) * sizeof(double)));
        CHECK(!memcmp(r2.perm_p, r.perm_p, (size_t)M * sizeof(double)));
        CHECK(isnan(r2.ci_lo[0]) && r2.boot_valid == 0);
        rdml_stats_result_free(&r2);
        /* brain values exact in float32 (as RDMs are): above the limit the full matrix is
         * kept in 4 bytes per value (spearman always: twice the rank), again bit for bit */
        const int64_t P = c.d.npairs;
        double *fb[8] = {0};
        const double *keep[8] = {0};
        for (int s = 0; s < S && s < 8; s++) {
            fb[s] = malloc((size_t)P * sizeof *fb[s]);
            for (int64_t p = 0; p < P; p++) fb[s][p] = (double)(float)c.d.brain[s][p];
            keep[s] = c.brain[s];
            c.brain[s] = fb[s];
        }
        if (S <= 8) {
            rdml_stats_result r3, r4;
            rdml_stats_opts o3 = o2;
            o3.max_matrix_bytes = (int64_t)256 << 20;
            CHECK_EQ_I(rdml_stats_evaluate(&ctx, MPI_COMM_SELF, &c.d, &o2, &r3), RDML_OK);
            CHECK_EQ_I(rdml_stats_evaluate(&ctx, MPI_COMM_SELF, &c.d, &o3, &r4), RDML_OK);
            CHECK(r3.perm_null && r4.perm_null &&
                  !memcmp(r3.perm_null, r4.perm_null, (size_t)(c.o.nperm * M) * sizeof(double)));
            CHECK(!memcmp(r3.perm_p, r4.perm_p, (size_t)M * sizeof(double)));
            rdml_stats_result_free(&r3);
            rdml_stats_result_free(&r4);
        }
        for (int s = 0; s < S && s < 8; s++) {
            c.brain[s] = (double *)keep[s];
            free(fb[s]);
        }
    }
    /* the serial entry points agree with the collective one */
    double *sc = malloc((size_t)M * sizeof *sc);
    CHECK_EQ_I(rdml_stats_scores(&ctx, &c.d, c.o.method, sc, NULL), RDML_OK);
    for (int k = 0; k < M; k++) CHECK(sc[k] == r.score[k]);
    free(sc);
    if (S >= 2) {
        double lo, up;
        CHECK_EQ_I(rdml_stats_noise_ceiling(&ctx, &c.d, c.o.method, c.o.pool, &lo, &up), RDML_OK);
        CHECK(lo == r.nc_lower && up == r.nc_upper);
    }
    rdml_stats_result_free(&r);
    fcase_free(&c);
}

static void test_fixture_cases(void) {
    json_t *cases = json_object_get(fixture, "cases");
    CHECK(json_array_size(cases) >= 8);
    for (size_t i = 0; i < json_array_size(cases); i++) check_case(json_array_get(cases, i));
}

/* The C index functions draw what the Python port of the RNG drew. */
static void test_indices_match_port(void) {
    json_t *cj = json_array_get(json_object_get(fixture, "cases"), 0);
    const int64_t u = jint(cj, "u"), nboot = jint(cj, "nboot"), nperm = jint(cj, "nperm");
    const uint64_t seed = (uint64_t)jint(cj, "seed"), key = (uint64_t)jint(cj, "key");
    int64_t *idx = malloc((size_t)u * sizeof *idx);
    int bad = 0;
    for (int64_t b = 0; b < nboot; b++) {
        rdml_stats_boot_images(seed, key, b, u, idx);
        json_t *row = json_array_get(json_object_get(cj, "boot_idx"), (size_t)b);
        for (int64_t a = 0; a < u; a++) bad += idx[a] != json_integer_value(json_array_get(row, (size_t)a));
    }
    for (int64_t b = 0; b < nperm; b++) {
        rdml_stats_perm_images(seed, key, b, u, idx);
        json_t *row = json_array_get(json_object_get(cj, "perm_idx"), (size_t)b);
        for (int64_t a = 0; a < u; a++) bad += idx[a] != json_integer_value(json_array_get(row, (size_t)a));
    }
    CHECK_EQ_I(bad, 0);
    /* a different key or sample number gives a different sample */
    int64_t *other = malloc((size_t)u * sizeof *other);
    rdml_stats_boot_images(seed, key, 0, u, idx);
    rdml_stats_boot_images(seed, key + 1, 0, u, other);
    CHECK(memcmp(idx, other, (size_t)u * sizeof *idx) != 0);
    rdml_stats_boot_images(seed, key, 1, u, other);
    CHECK(memcmp(idx, other, (size_t)u * sizeof *idx) != 0);
    int sidx[5];
    rdml_stats_boot_subjects(seed, key, 3, 5, sidx);
    for (int s = 0; s < 5; s++) CHECK(sidx[s] >= 0 && sidx[s] < 5);
    free(idx);
    free(other);
}

/* Weighted comparisons equal the method on the materialised expanded vector. */
static void test_weighted_equals_materialised(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_rng r = rdml_rng_make(7, RDML_STREAM_USER, 0);
    for (int trial = 0; trial < 30; trial++) {
        const int64_t p = 5 + (int64_t)rdml_rng_below(&r, 200);
        double *a = malloc((size_t)p * sizeof *a), *b = malloc((size_t)p * sizeof *b);
        int64_t *w = malloc((size_t)p * sizeof *w), N = 0;
        for (int64_t i = 0; i < p; i++) {
            /* few levels: ties within and across weights */
            a[i] = (double)rdml_rng_below(&r, trial % 3 ? 7 : 1000) * 0.25;
            b[i] = rdml_rng_normal(&r) + (trial % 2 ? a[i] : 0);
            if (trial % 4 == 0) b[i] = floor(b[i]);
            w[i] = (int64_t)rdml_rng_below(&r, 4) * (int64_t)rdml_rng_below(&r, 3);
            N += w[i];
        }
        double *ea = malloc((size_t)(N + 1) * sizeof *ea), *eb = malloc((size_t)(N + 1) * sizeof *eb);
        int64_t t = 0;
        for (int64_t i = 0; i < p; i++)
            for (int64_t k = 0; k < w[i]; k++) {
                ea[t] = a[i];
                eb[t++] = b[i];
            }
        for (int m = 0; m < 3; m++) {
            double got, want = NAN;
            CHECK_EQ_I(rdml_stats_compare_weighted(&ctx, a, b, w, p, (rdml_rsa_method)m, &got),
                       RDML_OK);
            int rc = N >= 2 ? (m == 0   ? rdml_rsa_spearman(&ctx, ea, eb, N, &want)
                               : m == 1 ? rdml_rsa_pearson(&ctx, ea, eb, N, &want)
                                        : rdml_rsa_kendall_tau_a(&ctx, ea, eb, N, &want))
                            : RDML_EDATA;
            rdml_ctx_clear(&ctx);
            if (rc) CHECK(isnan(got)); /* constant expanded vector: undefined, not an error */
            else if (!(fabs(got - want) <= 1e-12)) {
                fprintf(stderr, "trial %d method %d: weighted %.17g, materialised %.17g\n", trial,
                        m, got, want);
                test_failed_checks_++;
            }
        }
        free(a);
        free(b);
        free(w);
        free(ea);
        free(eb);
    }
}

/* BH q-values: the fixture (a direct step-up implementation) and the rejection rule itself. */
static void test_multiple_comparisons(void) {
    json_t *bh = json_object_get(fixture, "bh");
    int64_t m;
    double *p = jdoubles(json_object_get(bh, "p"), &m);
    double *want = jdoubles(json_object_get(bh, "q_bh"), NULL);
    double *wb = jdoubles(json_object_get(bh, "q_bonferroni"), NULL);
    double *q = malloc((size_t)m * sizeof *q), *qb = malloc((size_t)m * sizeof *qb);
    rdml_stats_fdr_bh(p, m, q);
    rdml_stats_bonferroni(p, m, qb);
    const char *cname = "bh";
    for (int64_t i = 0; i < m; i++) {
        CHECK_NN(q[i], want[i]);
        CHECK_NN(qb[i], wb[i]);
        CHECK(isnan(p[i]) || (q[i] >= p[i] && q[i] <= 1.0));
    }
    /* step-up at alpha: reject the k smallest, k = max{j : p_(j) <= j alpha / m'} */
    int64_t mm = 0;
    for (int64_t i = 0; i < m; i++) mm += !isnan(p[i]);
    const double alphas[] = {0.01, 0.05, 0.1, 0.2, 0.5};
    for (int a = 0; a < 5; a++) {
        double thr = -1;
        for (int64_t i = 0; i < m; i++) {
            if (isnan(p[i])) continue;
            int64_t rank = 0; /* number of p <= p[i] */
            for (int64_t j = 0; j < m; j++) rank += !isnan(p[j]) && p[j] <= p[i];
            if (p[i] <= (double)rank * alphas[a] / (double)mm && p[i] > thr) thr = p[i];
        }
        for (int64_t i = 0; i < m; i++)
            if (!isnan(p[i])) CHECK((q[i] <= alphas[a]) == (p[i] <= thr));
    }
    /* in place, and monotone in p */
    memcpy(qb, p, (size_t)m * sizeof *qb);
    rdml_stats_fdr_bh(qb, m, qb);
    for (int64_t i = 0; i < m; i++) CHECK(near_or_nan(qb[i], q[i], 0));
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < m; j++)
            if (!isnan(p[i]) && !isnan(p[j]) && p[i] < p[j]) CHECK(q[i] <= q[j]);
    free(p);
    free(want);
    free(wb);
    free(q);
    free(qb);
}

static void test_quantile(void) {
    const double v[] = {3, 1, NAN, 2, 10};
    CHECK_NEAR(rdml_stats_quantile(v, 5, 0.5), 2.5, 1e-15);  /* numpy: 2.5 */
    CHECK(rdml_stats_quantile(v, 5, 0.025) == 1.075);
    CHECK(rdml_stats_quantile(v, 5, 0.975) == 9.474999999999998); /* numpy, to the bit */
    CHECK_NEAR(rdml_stats_quantile(v, 5, 1.0), 10, 0);
    CHECK(isnan(rdml_stats_quantile(v + 2, 1, 0.5)));
}

/* Errors name what is wrong. */
static void test_errors(void) {
    int64_t pi[6] = {0, 0, 0, 1, 1, 2}, pj[6] = {1, 2, 3, 2, 3, 3};
    double b0[6] = {1, 2, 3, 4, 5, 6}, m0[6] = {2, 1, 4, 3, 6, 5}, mc[6] = {1, 1, 1, 1, 1, 1};
    const double *brain[1] = {b0}, *models[2] = {m0, mc};
    const char *names[2] = {"gabor", "flat"};
    rdml_stats_data d = {0};
    d.n = 4;
    d.npairs = 6;
    d.pi = pi;
    d.pj = pj;
    d.nsubj = 1;
    d.brain = brain;
    d.nmodels = 2;
    d.models = models;
    d.model_names = names;
    rdml_stats_opts o;
    rdml_stats_opts_default(&o);
    o.nboot = 20;
    o.nperm = 20;
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_stats_result r;
    /* a constant model names it */
    CHECK_EQ_I(rdml_stats_evaluate(&ctx, MPI_COMM_SELF, &d, &o, &r), RDML_EDATA);
    CHECK(strstr(ctx.msg, "'flat'") && strstr(ctx.msg, "constant"));
    CHECK(r.score == NULL);
    rdml_stats_result_free(&r);
    rdml_ctx_clear(&ctx);
    /* NaN: vector and pair index */
    double mn[6] = {2, 1, NAN, 3, 6, 5};
    models[1] = mn;
    CHECK_EQ_I(rdml_stats_check(&ctx, &d, &o), RDML_EDATA);
    CHECK(strstr(ctx.msg, "'flat'") && strstr(ctx.msg, "NaN") && strstr(ctx.msg, "pair 2"));
    rdml_ctx_clear(&ctx);
    models[1] = m0;
    /* unknown method */
    o.method = (rdml_rsa_method)7;
    CHECK_EQ_I(rdml_stats_check(&ctx, &d, &o), RDML_ECONFIG);
    CHECK(strstr(ctx.msg, "unknown comparison method") && strstr(ctx.msg, "spearman"));
    rdml_ctx_clear(&ctx);
    o.method = RDML_RSA_SPEARMAN;
    /* level, subject bootstrap with one subject */
    o.level = 1.5;
    CHECK_EQ_I(rdml_stats_check(&ctx, &d, &o), RDML_ECONFIG);
    CHECK(strstr(ctx.msg, "level"));
    rdml_ctx_clear(&ctx);
    o.level = 0.95;
    o.boot_subjects = 1;
    CHECK_EQ_I(rdml_stats_check(&ctx, &d, &o), RDML_ECONFIG);
    CHECK(strstr(ctx.msg, "2 subjects"));
    rdml_ctx_clear(&ctx);
    o.boot_subjects = 0;
    /* a pair index outside [0, n) (the pair list and n disagree) or a self-pair */
    d.n = 3;
    CHECK_EQ_I(rdml_stats_check(&ctx, &d, &o), RDML_EDATA);
    CHECK(strstr(ctx.msg, "pair 2") && strstr(ctx.msg, "[0, 3)"));
    rdml_ctx_clear(&ctx);
    d.n = 4;
    pj[4] = 1;
    CHECK_EQ_I(rdml_stats_check(&ctx, &d, &o), RDML_EDATA);
    CHECK(strstr(ctx.msg, "pair 4") && strstr(ctx.msg, "distinct"));
    rdml_ctx_clear(&ctx);
    pj[4] = 3;
    /* too few images: 3 pairs over 2 images */
    int64_t qi[3] = {0, 1, 0}, qj[3] = {1, 0, 1};
    rdml_stats_data d2 = d;
    d2.npairs = 3;
    d2.pi = qi;
    d2.pj = qj;
    CHECK_EQ_I(rdml_stats_check(&ctx, &d2, &o), RDML_EDATA);
    CHECK(strstr(ctx.msg, "only 2 images") && strstr(ctx.msg, "at least 3"));
    rdml_ctx_clear(&ctx);
    /* the valid data run; 4 images: some bootstrap samples have < 3 distinct images and are
     * dropped and counted */
    models[1] = m0;
    d.nmodels = 1;
    o.nboot = 200;
    CHECK_EQ_I(rdml_stats_evaluate(&ctx, MPI_COMM_SELF, &d, &o, &r), RDML_OK);
    CHECK(r.boot_dropped > 0 && r.boot_dropped < 200);
    CHECK_EQ_I(r.boot_valid + r.boot_dropped, 200);
    CHECK_EQ_I(r.perm_scheme, RDML_STATS_PERM_IMAGES);
    CHECK(!r.has_nc && isnan(r.nc_lower));
    rdml_stats_result_free(&r);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    json_error_t jerr;
    fixture = json_load_file(test_fixture("stats/stats.json"), 0, &jerr);
    if (!fixture) fprintf(stderr, "cannot load stats/stats.json: %s (line %d)\n", jerr.text, jerr.line);
    CHECK(fixture != NULL);
    if (fixture) {
        RUN(test_indices_match_port);
        RUN(test_fixture_cases);
        RUN(test_multiple_comparisons);
    }
    RUN(test_weighted_equals_materialised);
    RUN(test_quantile);
    RUN(test_errors);
    json_decref(fixture);
    int rc = test_summary();
    MPI_Finalize();
    return rc;
}
