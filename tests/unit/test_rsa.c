/* Unit tests of rdml/rsa.h. Golden values come from tests/fixtures/rsa/rsa.json, written by
 * tools/make_rsa_fixtures.py with scipy (pearsonr, spearmanr), a brute-force tau-a, numpy's
 * histogram / median and numpy noise ceilings (plain-mean pooling and a re-implementation of
 * rsatoolbox's pool_rdm: z-scores / average ranks; s = 2, tie-rich and differently scaled
 * subjects); they are compared within 1e-10. Independent
 * in-test references: O(P^2) tau-a and average ranks on a few thousand values of several tie
 * patterns, and a sorted-copy median. Also the errors (constant input naming which one, NaN,
 * duplicate ids, too few values), id matching, sub-RDMs, binarize and method names. The
 * summaries run on MPI_COMM_SELF (the MPI test covers 1..4 ranks). */
#include <jansson.h>
#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rdml/rsa.h"
#include "test.h"

static json_t *fixture;

static json_t *load_fixture(void) {
    json_error_t jerr;
    json_t *j = json_load_file(test_fixture("rsa/rsa.json"), 0, &jerr);
    if (!j) fprintf(stderr, "cannot load rsa/rsa.json: %s (line %d)\n", jerr.text, jerr.line);
    return j;
}

static double *json_doubles(json_t *arr, int64_t *len) {
    size_t n = json_array_size(arr);
    double *v = malloc((n ? n : 1) * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = json_number_value(json_array_get(arr, i));
    *len = (int64_t)n;
    return v;
}

static int64_t *json_ints(json_t *arr, int64_t *len) {
    size_t n = json_array_size(arr);
    int64_t *v = malloc((n ? n : 1) * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = json_integer_value(json_array_get(arr, i));
    *len = (int64_t)n;
    return v;
}

static double jnum(json_t *o, const char *key) { return json_number_value(json_object_get(o, key)); }

/* Full symmetric n x n float RDM from a subject's stored upper triangle. */
static float *subject_rdm(int s, int64_t *n_out, int64_t **ids, int64_t *nids) {
    json_t *sj = json_array_get(json_object_get(fixture, "subjects"), (size_t)s);
    int64_t n = json_integer_value(json_object_get(sj, "n")), p;
    double *u = json_doubles(json_object_get(sj, "upper"), &p);
    float *r = calloc((size_t)(n * n), sizeof *r);
    int64_t t = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i + 1; j < n; j++) r[i * n + j] = r[j * n + i] = (float)u[t++];
    free(u);
    if (ids) *ids = json_ints(json_object_get(sj, "ids"), nids);
    *n_out = n;
    return r;
}

/* ---- correlations ---- */

static void test_vectors_match_scipy(void) {
    json_t *cases = json_object_get(fixture, "vectors");
    CHECK(json_array_size(cases) >= 8);
    for (size_t c = 0; c < json_array_size(cases); c++) {
        json_t *cs = json_array_get(cases, c);
        const char *name = json_string_value(json_object_get(cs, "name"));
        int64_t p, pb;
        double *a = json_doubles(json_object_get(cs, "a"), &p);
        double *b = json_doubles(json_object_get(cs, "b"), &pb);
        CHECK_EQ_I(p, pb);
        rdml_ctx ctx;
        rdml_ctx_init(&ctx);
        double r = 99, rho = 99, tau = 99;
        CHECK_EQ_I(rdml_rsa_pearson(&ctx, a, b, p, &r), RDML_OK);
        CHECK_EQ_I(rdml_rsa_spearman(&ctx, a, b, p, &rho), RDML_OK);
        CHECK_EQ_I(rdml_rsa_kendall_tau_a(&ctx, a, b, p, &tau), RDML_OK);
        if (ctx.code) fprintf(stderr, "%s: %s\n", name, ctx.msg);
        if (fabs(r - jnum(cs, "pearson")) > 1e-10 || fabs(rho - jnum(cs, "spearman")) > 1e-10 ||
            fabs(tau - jnum(cs, "kendall_tau_a")) > 1e-10)
            fprintf(stderr, "case %s\n", name);
        CHECK_NEAR(r, jnum(cs, "pearson"), 1e-10);
        CHECK_NEAR(rho, jnum(cs, "spearman"), 1e-10);
        CHECK_NEAR(tau, jnum(cs, "kendall_tau_a"), 1e-10);
        json_t *tb = json_object_get(cs, "scipy_kendall_tau_b");
        if (tb) CHECK_NEAR(tau, json_number_value(tb), 1e-10);
        free(a);
        free(b);
    }
}

static double brute_tau_a(const double *a, const double *b, int64_t p) {
    int64_t s = 0;
    for (int64_t i = 0; i < p; i++)
        for (int64_t j = i + 1; j < p; j++) {
            int sa = (a[i] > a[j]) - (a[i] < a[j]), sb = (b[i] > b[j]) - (b[i] < b[j]);
            s += sa * sb;
        }
    return (double)s / ((double)p * (double)(p - 1) / 2);
}

static void brute_ranks(const double *x, int64_t p, double *r) {
    for (int64_t i = 0; i < p; i++) {
        int64_t lt = 0, eq = 0;
        for (int64_t j = 0; j < p; j++) {
            lt += x[j] < x[i];
            eq += x[j] == x[i];
        }
        r[i] = 1.0 + (double)lt + (double)(eq - 1) / 2.0;
    }
}

/* Several tie patterns (continuous, few levels, many levels, float-valued, negative zeros,
 * mostly tied) against O(P^2) references. */
static void make_pattern(int pat, int64_t p, double *a, double *b) {
    rdml_rng r = rdml_rng_make(7, RDML_STREAM_USER + 30 + (uint64_t)pat, 0);
    for (int64_t i = 0; i < p; i++) {
        double u = rdml_rng_normal(&r), v = rdml_rng_normal(&r);
        switch (pat) {
        case 0: a[i] = u; b[i] = 0.3 * u + v; break;
        case 1: a[i] = (double)rdml_rng_below(&r, 3); b[i] = (double)rdml_rng_below(&r, 4) + a[i]; break;
        case 2: a[i] = (double)rdml_rng_below(&r, 200); b[i] = floor(a[i] / 7) - (double)rdml_rng_below(&r, 5); break;
        case 3: a[i] = (float)(u * 1e-3); b[i] = (float)(u * 1e-3 + 1e-4 * v); break;
        case 4: a[i] = u > 0 ? 0.0 : -0.0; b[i] = v > 0.5 ? 1.0 : (v < -0.5 ? -1.0 : 0.0); if (u > 1) a[i] = u; break;
        default: a[i] = i % 97 == 0 ? 1.0 : 0.0; b[i] = -(double)(i % 3); break;
        }
    }
}

static void test_against_brute_force(void) {
    const int64_t p = 2500;
    double *a = malloc(p * sizeof *a), *b = malloc(p * sizeof *b);
    double *ra = malloc(p * sizeof *ra), *rb = malloc(p * sizeof *rb);
    for (int pat = 0; pat < 6; pat++) {
        make_pattern(pat, p, a, b);
        rdml_ctx ctx;
        rdml_ctx_init(&ctx);
        double tau = 9, rho = 9, want_rho = 8;
        CHECK_EQ_I(rdml_rsa_kendall_tau_a(&ctx, a, b, p, &tau), RDML_OK);
        CHECK_EQ_I(rdml_rsa_spearman(&ctx, a, b, p, &rho), RDML_OK);
        if (ctx.code) fprintf(stderr, "pattern %d: %s\n", pat, ctx.msg);
        CHECK_NEAR(tau, brute_tau_a(a, b, p), 1e-12);
        brute_ranks(a, p, ra);
        brute_ranks(b, p, rb);
        CHECK_EQ_I(rdml_rsa_pearson(&ctx, ra, rb, p, &want_rho), RDML_OK);
        CHECK_NEAR(rho, want_rho, 1e-12);
        /* symmetry and sign flip: tau(a, b) = tau(b, a) = -tau(a, -b) */
        double t2 = 0, t3 = 0;
        for (int64_t i = 0; i < p; i++) rb[i] = -b[i];
        CHECK_EQ_I(rdml_rsa_kendall_tau_a(&ctx, b, a, p, &t2), RDML_OK);
        CHECK_EQ_I(rdml_rsa_kendall_tau_a(&ctx, a, rb, p, &t3), RDML_OK);
        CHECK(t2 == tau);
        CHECK(t3 == -tau);
    }
    free(a);
    free(b);
    free(ra);
    free(rb);
}

/* tau-a of a vector with itself is 1 - (tied pairs) / n0; a large P crosses many merge levels. */
static void test_kendall_self_large(void) {
    const int64_t p = 300000;
    double *a = malloc(p * sizeof *a);
    rdml_rng r = rdml_rng_make(11, RDML_STREAM_USER + 40, 0);
    int64_t cnt[50] = {0};
    for (int64_t i = 0; i < p; i++) {
        int64_t v = (int64_t)rdml_rng_below(&r, 50);
        a[i] = (double)v;
        cnt[v]++;
    }
    int64_t ties = 0;
    for (int v = 0; v < 50; v++) ties += cnt[v] * (cnt[v] - 1) / 2;
    const double n0 = (double)p * (double)(p - 1) / 2;
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    double tau = 0;
    CHECK_EQ_I(rdml_rsa_kendall_tau_a(&ctx, a, a, p, &tau), RDML_OK);
    CHECK_NEAR(tau, ((double)p * (double)(p - 1) / 2 - (double)ties) / n0, 1e-15);
    free(a);
}

static void test_constant_and_bad_inputs(void) {
    double c[5] = {2, 2, 2, 2, 2}, v[5] = {1, 2, 3, 4, 5}, nanv[5] = {1, 2, NAN, 4, 5};
    typedef int (*fn)(rdml_ctx *, const double *, const double *, int64_t, double *);
    fn fns[3] = {rdml_rsa_pearson, rdml_rsa_spearman, rdml_rsa_kendall_tau_a};
    for (int f = 0; f < 3; f++) {
        rdml_ctx ctx;
        double out = 0;
        rdml_ctx_init(&ctx);
        CHECK_EQ_I(fns[f](&ctx, c, v, 5, &out), RDML_EDATA);
        CHECK_STR_HAS(ctx.msg, "input a");
        CHECK_STR_HAS(ctx.msg, "constant");
        rdml_ctx_init(&ctx);
        CHECK_EQ_I(fns[f](&ctx, v, c, 5, &out), RDML_EDATA);
        CHECK_STR_HAS(ctx.msg, "input b");
        rdml_ctx_init(&ctx);
        CHECK_EQ_I(fns[f](&ctx, c, c, 5, &out), RDML_EDATA);
        CHECK_STR_HAS(ctx.msg, "both inputs are constant");
        rdml_ctx_init(&ctx);
        CHECK_EQ_I(fns[f](&ctx, v, nanv, 5, &out), RDML_EDATA);
        CHECK_STR_HAS(ctx.msg, "NaN at index 2");
        rdml_ctx_init(&ctx);
        CHECK_EQ_I(fns[f](&ctx, v, v, 1, &out), RDML_EDATA);
        CHECK_STR_HAS(ctx.msg, "at least 2 values");
    }
    /* compare names the RDMs and the method */
    float z[9] = {0};
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    double out = 0;
    CHECK_EQ_I(rdml_rsa_compare(&ctx, z, z, 3, RDML_RSA_KENDALL_A, &out), RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "comparing two 3-image RDMs (kendall_tau_a)");
    float w[9] = {0, 1, 2, 1, 0, NAN, 2, NAN, 0};
    rdml_ctx_init(&ctx);
    CHECK_EQ_I(rdml_rsa_compare(&ctx, z, w, 3, RDML_RSA_SPEARMAN, &out), RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "RDM b (second) has a NaN at (1, 2)");
    rdml_ctx_init(&ctx);
    CHECK_EQ_I(rdml_rsa_compare(&ctx, z, z, 2, RDML_RSA_PEARSON, &out), RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "at least 3 images");
}

static void test_methods_and_upper(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_rsa_method m = RDML_RSA_PEARSON;
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_I(rdml_rsa_method_parse(&ctx, rdml_rsa_method_name((rdml_rsa_method)i), &m), RDML_OK);
        CHECK_EQ_I(m, i);
    }
    CHECK(strcmp(rdml_rsa_method_name(RDML_RSA_KENDALL_A), "kendall_tau_a") == 0);
    CHECK_EQ_I(rdml_rsa_method_parse(&ctx, "spearmann", &m), RDML_ECONFIG);
    CHECK_STR_HAS(ctx.msg, "'spearmann'");
    CHECK_STR_HAS(ctx.msg, "did you mean 'spearman'");
    CHECK_EQ_I(rdml_rsa_ntri(9841), 48417720);
    CHECK_EQ_I(rdml_rsa_ntri(1), 0);
    float r[9] = {0, 1, 2, 1, 0, 3, 2, 3, 0};
    double u[3];
    rdml_rsa_upper(r, 3, u);
    CHECK(u[0] == 1 && u[1] == 2 && u[2] == 3);
    float rows[4] = {0.5f, 1.0f, 1.5f, NAN};
    uint8_t lab[4];
    rdml_rsa_binarize(rows, 4, 1.0, lab);
    CHECK(lab[0] == 0 && lab[1] == 0 && lab[2] == 1 && lab[3] == 0);
}

/* ---- matching, sub-RDMs, comparison, noise ceiling ---- */

static void check_match(const char *key, int a, int b) {
    json_t *want = json_object_get(json_object_get(fixture, "match"), key);
    int64_t na, nb, *ida, *idb, *ia = NULL, *ib = NULL, m = -1, n;
    free(subject_rdm(a, &n, &ida, &na));
    free(subject_rdm(b, &n, &idb, &nb));
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    CHECK_EQ_I(rdml_rsa_match_ids(&ctx, ida, na, idb, nb, &ia, &ib, &m), RDML_OK);
    int64_t wl, *wa = json_ints(json_array_get(want, 0), &wl), *wb = json_ints(json_array_get(want, 1), &wl);
    CHECK_EQ_I(m, wl);
    for (int64_t k = 0; k < m && k < wl; k++) {
        CHECK_EQ_I(ia[k], wa[k]);
        CHECK_EQ_I(ib[k], wb[k]);
        CHECK_EQ_I(ida[ia[k]], idb[ib[k]]);
        if (k) CHECK(ida[ia[k]] > ida[ia[k - 1]]);
    }
    free(wa);
    free(wb);
    free(ia);
    free(ib);
    free(ida);
    free(idb);
}

static void test_match_ids(void) {
    check_match("01", 0, 1);
    check_match("02", 0, 2);
    check_match("12", 1, 2);
    int64_t *ids[3], n[3], m = -1, *idx[3] = {0}, tmp;
    for (int s = 0; s < 3; s++) free(subject_rdm(s, &tmp, &ids[s], &n[s]));
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    CHECK_EQ_I(rdml_rsa_match_ids_all(&ctx, (const int64_t *const *)ids, n, 3, idx, &m), RDML_OK);
    json_t *want = json_object_get(json_object_get(fixture, "match"), "all");
    for (int s = 0; s < 3; s++) {
        int64_t wl, *w = json_ints(json_array_get(want, (size_t)s), &wl);
        CHECK_EQ_I(m, wl);
        for (int64_t k = 0; k < m && k < wl; k++) CHECK_EQ_I(idx[s][k], w[k]);
        free(w);
        free(idx[s]);
        free(ids[s]);
    }
    /* duplicates name the id; disjoint lists give m = 0 */
    int64_t d1[4] = {5, 9, 7, 9}, d2[2] = {1, 2}, *ia = NULL, *ib = NULL;
    rdml_ctx_init(&ctx);
    CHECK_EQ_I(rdml_rsa_match_ids(&ctx, d2, 2, d1, 4, &ia, &ib, &m), RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "id 9 appears twice in list 1");
    CHECK_STR_HAS(ctx.msg, "positions 1 and 3");
    CHECK(ia == NULL && ib == NULL);
    rdml_ctx_init(&ctx);
    CHECK_EQ_I(rdml_rsa_match_ids(&ctx, d2, 2, d1, 3, &ia, &ib, &m), RDML_OK);
    CHECK_EQ_I(m, 0);
    free(ia);
    free(ib);
}

static void test_compare_and_noise_ceiling(void) {
    int64_t n[3], *ids[3], nid[3], m = 0, *idx[3] = {0};
    float *rdm[3];
    for (int s = 0; s < 3; s++) rdm[s] = subject_rdm(s, &n[s], &ids[s], &nid[s]);
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    /* subjects 0 and 1 on their shared images */
    int64_t *ia, *ib;
    CHECK_EQ_I(rdml_rsa_match_ids(&ctx, ids[0], nid[0], ids[1], nid[1], &ia, &ib, &m), RDML_OK);
    float *sa = malloc((size_t)(m * m) * sizeof *sa), *sb = malloc((size_t)(m * m) * sizeof *sb);
    rdml_rsa_subrdm(rdm[0], n[0], ia, m, sa);
    rdml_rsa_subrdm(rdm[1], n[1], ib, m, sb);
    CHECK(sa[1 * m + 2] == rdm[0][ia[1] * n[0] + ia[2]]);
    json_t *want = json_object_get(fixture, "compare_01");
    for (int meth = 0; meth < 3; meth++) {
        double v = 9;
        CHECK_EQ_I(rdml_rsa_compare(&ctx, sa, sb, m, (rdml_rsa_method)meth, &v), RDML_OK);
        CHECK_NEAR(v, jnum(want, rdml_rsa_method_name((rdml_rsa_method)meth)), 1e-10);
    }
    free(sa);
    free(sb);
    free(ia);
    free(ib);

    /* noise ceiling over the images all three share */
    CHECK_EQ_I(rdml_rsa_match_ids_all(&ctx, (const int64_t *const *)ids, nid, 3, idx, &m), RDML_OK);
    float *sub[3];
    for (int s = 0; s < 3; s++) {
        sub[s] = malloc((size_t)(m * m) * sizeof *sub[s]);
        rdml_rsa_subrdm(rdm[s], n[s], idx[s], m, sub[s]);
    }
    for (int pool = 0; pool < 2; pool++) {
        json_t *nc = json_object_get(fixture, pool ? "noise_ceiling_rsatoolbox" : "noise_ceiling");
        CHECK(nc != NULL);
        for (int meth = 0; meth < 3; meth++) {
            json_t *w = json_object_get(nc, rdml_rsa_method_name((rdml_rsa_method)meth));
            double lo = 9, up = 9, pl[3], pu[3];
            CHECK_EQ_I(rdml_rsa_noise_ceiling(&ctx, (const float *const *)sub, 3, m,
                                              (rdml_rsa_method)meth, (rdml_rsa_pool)pool, &lo,
                                              &up, pl, pu),
                       RDML_OK);
            if (ctx.code) fprintf(stderr, "%s\n", ctx.msg);
            CHECK_NEAR(lo, jnum(w, "lower"), 1e-10);
            CHECK_NEAR(up, jnum(w, "upper"), 1e-10);
            CHECK(lo < up);
            for (int s = 0; s < 3; s++) {
                CHECK_NEAR(pl[s], json_number_value(json_array_get(json_object_get(w, "per_lower"), (size_t)s)), 1e-10);
                CHECK_NEAR(pu[s], json_number_value(json_array_get(json_object_get(w, "per_upper"), (size_t)s)), 1e-10);
            }
            double lo2 = 0, up2 = 0; /* the per-subject outputs are optional */
            CHECK_EQ_I(rdml_rsa_noise_ceiling(&ctx, (const float *const *)sub, 3, m,
                                              (rdml_rsa_method)meth, (rdml_rsa_pool)pool, &lo2,
                                              &up2, NULL, NULL),
                       RDML_OK);
            CHECK(lo2 == lo && up2 == up);
        }
    }
    double lo, up;
    rdml_ctx_init(&ctx);
    for (int pool = 0; pool < 2; pool++) {
        rdml_ctx_init(&ctx);
        CHECK_EQ_I(rdml_rsa_noise_ceiling(&ctx, (const float *const *)sub, 1, m, RDML_RSA_PEARSON,
                                          (rdml_rsa_pool)pool, &lo, &up, NULL, NULL),
                   RDML_EDATA);
        CHECK_STR_HAS(ctx.msg, "at least 2 subjects");
    }
    for (int s = 0; s < 3; s++) {
        free(sub[s]);
        free(idx[s]);
        free(rdm[s]);
        free(ids[s]);
    }
}

/* Inline cases: s = 2 subjects (the leave-one-out pool is one RDM), few-level RDMs full of
 * ties (rank pooling with ties), subjects on very different scales; both poolings, all three
 * methods, against the numpy mean / rsatoolbox references. */
static void test_noise_ceiling_cases(void) {
    json_t *cases = json_object_get(fixture, "noise_ceiling_cases");
    CHECK(json_array_size(cases) >= 4);
    int two = 0, differ[3] = {0, 0, 0};
    for (size_t c = 0; c < json_array_size(cases); c++) {
        json_t *cs = json_array_get(cases, c);
        const char *name = json_string_value(json_object_get(cs, "name"));
        const int64_t m = json_integer_value(json_object_get(cs, "m"));
        const int s = (int)json_integer_value(json_object_get(cs, "s"));
        json_t *ups = json_object_get(cs, "upper");
        CHECK_EQ_I((int64_t)json_array_size(ups), s);
        if (s < 2 || s > 8 || (int64_t)json_array_size(ups) != s) continue;
        two += s == 2;
        float *r[8];
        for (int k = 0; k < s; k++) {
            int64_t p;
            double *u = json_doubles(json_array_get(ups, (size_t)k), &p);
            CHECK_EQ_I(p, rdml_rsa_ntri(m));
            r[k] = calloc((size_t)(m * m), sizeof *r[k]);
            int64_t t = 0;
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = i + 1; j < m; j++) r[k][i * m + j] = r[k][j * m + i] = (float)u[t++];
            free(u);
        }
        for (int meth = 0; meth < 3; meth++) {
            double lo[2], up[2];
            for (int pool = 0; pool < 2; pool++) {
                json_t *w = json_object_get(json_object_get(cs, pool ? "rsatoolbox" : "mean"),
                                            rdml_rsa_method_name((rdml_rsa_method)meth));
                double pl[8], pu[8];
                rdml_ctx ctx;
                rdml_ctx_init(&ctx);
                lo[pool] = up[pool] = 9;
                CHECK_EQ_I(rdml_rsa_noise_ceiling(&ctx, (const float *const *)r, s, m,
                                                  (rdml_rsa_method)meth, (rdml_rsa_pool)pool,
                                                  &lo[pool], &up[pool], pl, pu),
                           RDML_OK);
                if (ctx.code) fprintf(stderr, "%s: %s\n", name, ctx.msg);
                if (fabs(lo[pool] - jnum(w, "lower")) > 1e-10 || fabs(up[pool] - jnum(w, "upper")) > 1e-10)
                    fprintf(stderr, "case %s, %s, %s pooling\n", name,
                            rdml_rsa_method_name((rdml_rsa_method)meth),
                            rdml_rsa_pool_name((rdml_rsa_pool)pool));
                CHECK_NEAR(lo[pool], jnum(w, "lower"), 1e-10);
                CHECK_NEAR(up[pool], jnum(w, "upper"), 1e-10);
                for (int k = 0; k < s; k++) {
                    CHECK_NEAR(pl[k], json_number_value(json_array_get(json_object_get(w, "per_lower"), (size_t)k)), 1e-10);
                    CHECK_NEAR(pu[k], json_number_value(json_array_get(json_object_get(w, "per_upper"), (size_t)k)), 1e-10);
                }
            }
            /* s = 2: the pool of the others is one RDM, whose ranks / z-scores correlate with
             * anything as the RDM itself does */
            if (s == 2) CHECK_NEAR(lo[0], lo[1], 1e-12);
            if (fabs(up[0] - up[1]) > 1e-4) differ[meth] = 1;
        }
        for (int k = 0; k < s; k++) free(r[k]);
    }
    CHECK(two >= 2);
    /* the cases tell the poolings apart for every method */
    CHECK(differ[0] && differ[1] && differ[2]);
}

/* Rank pooling and z-score pooling on hand-made RDMs, pooling names, and errors. */
static void test_noise_ceiling_pooling_rules(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_rsa_pool pool = RDML_RSA_POOL_MEAN;
    CHECK_EQ_I(rdml_rsa_pool_parse(&ctx, "rsatoolbox", &pool), RDML_OK);
    CHECK_EQ_I(pool, RDML_RSA_POOL_RSATOOLBOX);
    CHECK_EQ_I(rdml_rsa_pool_parse(&ctx, "mean", &pool), RDML_OK);
    CHECK_EQ_I(pool, RDML_RSA_POOL_MEAN);
    CHECK(strcmp(rdml_rsa_pool_name(RDML_RSA_POOL_RSATOOLBOX), "rsatoolbox") == 0);
    CHECK_EQ_I(rdml_rsa_pool_parse(&ctx, "rsatoolbx", &pool), RDML_ECONFIG);
    CHECK_STR_HAS(ctx.msg, "'rsatoolbx'");
    CHECK_STR_HAS(ctx.msg, "did you mean 'rsatoolbox'");
    rdml_ctx_init(&ctx);

    /* ranks: scipy.stats.rankdata semantics, in place */
    double x[7] = {3, 1, 4, 1, 5, -0.0, 0.0}, rk[7], want[7] = {5, 3.5, 6, 3.5, 7, 1.5, 1.5};
    CHECK_EQ_I(rdml_rsa_rank(&ctx, x, 7, rk), RDML_OK);
    for (int i = 0; i < 7; i++) CHECK(rk[i] == want[i]);
    CHECK_EQ_I(rdml_rsa_rank(&ctx, x, 7, x), RDML_OK);
    for (int i = 0; i < 7; i++) CHECK(x[i] == want[i]);
    double nanx[3] = {1, NAN, 2};
    CHECK_EQ_I(rdml_rsa_rank(&ctx, nanx, 3, rk), RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "NaN at index 1");
    rdml_ctx_init(&ctx);
    /* a few thousand tie-rich values against the O(P^2) reference */
    {
        const int64_t p = 3000;
        double *a = malloc(p * sizeof *a), *b = malloc(p * sizeof *b);
        double *ra = malloc(p * sizeof *ra), *rb = malloc(p * sizeof *rb);
        make_pattern(2, p, a, b);
        brute_ranks(b, p, rb);
        CHECK_EQ_I(rdml_rsa_rank(&ctx, b, p, ra), RDML_OK);
        int same = 1;
        for (int64_t i = 0; i < p; i++) same &= ra[i] == rb[i];
        CHECK(same);
        free(a);
        free(b);
        free(ra);
        free(rb);
    }

    /* Rank pooling vs mean pooling: subject 1 is subject 0 cubed (same ranks, different
     * values) and subject 2 its own order. With ranks, pool(all) = ranks averaged; its
     * Spearman with subject 0 is computed here from the definition. */
    enum { M = 5, P = 10 };
    float r0[M * M] = {0}, r1[M * M] = {0}, r2[M * M] = {0};
    const double u0[P] = {1, 2, 2, 5, 3, 4, 9, 6, 7, 8};
    const double u2[P] = {2, 1, 3, 3, 9, 4, 5, 8, 6, 7};
    int64_t t = 0;
    for (int i = 0; i < M; i++)
        for (int j = i + 1; j < M; j++, t++) {
            r0[i * M + j] = r0[j * M + i] = (float)u0[t];
            r1[i * M + j] = r1[j * M + i] = (float)(u0[t] * u0[t] * u0[t]);
            r2[i * M + j] = r2[j * M + i] = (float)u2[t];
        }
    const float *rr[3] = {r0, r1, r2};
    double q0[P], q2[P], pool_all[P], pool_not0[P], want_up0 = 0, want_lo0 = 0;
    CHECK_EQ_I(rdml_rsa_rank(&ctx, u0, P, q0), RDML_OK);
    CHECK_EQ_I(rdml_rsa_rank(&ctx, u2, P, q2), RDML_OK);
    for (int i = 0; i < P; i++) {
        pool_all[i] = (q0[i] + q0[i] + q2[i]) / 3; /* subject 1 has subject 0's ranks */
        pool_not0[i] = (q0[i] + q2[i]) / 2;
    }
    CHECK_EQ_I(rdml_rsa_spearman(&ctx, u0, pool_all, P, &want_up0), RDML_OK);
    CHECK_EQ_I(rdml_rsa_spearman(&ctx, u0, pool_not0, P, &want_lo0), RDML_OK);
    double lo, up, pl[3], pu[3];
    CHECK_EQ_I(rdml_rsa_noise_ceiling(&ctx, rr, 3, M, RDML_RSA_SPEARMAN,
                                      RDML_RSA_POOL_RSATOOLBOX, &lo, &up, pl, pu),
               RDML_OK);
    CHECK_NEAR(pu[0], want_up0, 1e-15);
    CHECK_NEAR(pl[0], want_lo0, 1e-15);
    CHECK(pl[0] == pl[1] && pu[0] == pu[1]); /* subjects 0 and 1 have equal ranks */
    double lo_m, up_m, plm[3], pum[3];
    CHECK_EQ_I(rdml_rsa_noise_ceiling(&ctx, rr, 3, M, RDML_RSA_SPEARMAN, RDML_RSA_POOL_MEAN,
                                      &lo_m, &up_m, plm, pum),
               RDML_OK);
    CHECK(plm[0] != plm[1]); /* with the raw mean the cubed subject dominates the pool */
    /* z-score pooling: an affine copy of a subject changes nothing */
    float r3[M * M];
    for (int i = 0; i < M * M; i++) r3[i] = i % (M + 1) == 0 ? 0.0f : 4.0f * r0[i] + 2.0f;
    const float *aff[3] = {r3, r0, r2};
    double lo_a, up_a, pla[3], pua[3];
    CHECK_EQ_I(rdml_rsa_noise_ceiling(&ctx, rr + 0, 1, M, RDML_RSA_PEARSON,
                                      RDML_RSA_POOL_RSATOOLBOX, &lo_a, &up_a, pla, pua),
               RDML_EDATA);
    rdml_ctx_init(&ctx);
    const float *plain[3] = {r0, r0, r2};
    double lo_p, up_p, plp[3], pup[3];
    CHECK_EQ_I(rdml_rsa_noise_ceiling(&ctx, plain, 3, M, RDML_RSA_PEARSON,
                                      RDML_RSA_POOL_RSATOOLBOX, &lo_p, &up_p, plp, pup),
               RDML_OK);
    CHECK_EQ_I(rdml_rsa_noise_ceiling(&ctx, aff, 3, M, RDML_RSA_PEARSON,
                                      RDML_RSA_POOL_RSATOOLBOX, &lo_a, &up_a, pla, pua),
               RDML_OK);
    CHECK_NEAR(lo_a, lo_p, 1e-12);
    CHECK_NEAR(up_a, up_p, 1e-12);

    /* a constant RDM has no z-score: the error names the subject and the pooling */
    float cst[M * M];
    for (int i = 0; i < M * M; i++) cst[i] = i % (M + 1) == 0 ? 0.0f : 0.5f;
    const float *withc[3] = {r0, cst, r2};
    rdml_ctx_init(&ctx);
    CHECK_EQ_I(rdml_rsa_noise_ceiling(&ctx, withc, 3, M, RDML_RSA_PEARSON,
                                      RDML_RSA_POOL_RSATOOLBOX, &lo, &up, NULL, NULL),
               RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "noise ceiling (pearson, rsatoolbox pooling), subject RDM 1 of 3");
    CHECK_STR_HAS(ctx.msg, "constant");
    /* with ranks the pool exists, but the constant subject has no correlation */
    rdml_ctx_init(&ctx);
    CHECK_EQ_I(rdml_rsa_noise_ceiling(&ctx, withc, 3, M, RDML_RSA_KENDALL_A,
                                      RDML_RSA_POOL_RSATOOLBOX, &lo, &up, NULL, NULL),
               RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "subject RDM 1 of 3");
    /* a NaN is named by its (i, j) */
    float nanr[M * M];
    memcpy(nanr, r2, sizeof nanr);
    nanr[1 * M + 3] = nanr[3 * M + 1] = NAN;
    const float *withn[2] = {r0, nanr};
    rdml_ctx_init(&ctx);
    CHECK_EQ_I(rdml_rsa_noise_ceiling(&ctx, withn, 2, M, RDML_RSA_PEARSON,
                                      RDML_RSA_POOL_RSATOOLBOX, &lo, &up, NULL, NULL),
               RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "subject RDM 1 of 2");
    CHECK_STR_HAS(ctx.msg, "NaN at (1, 3)");
    rdml_ctx_init(&ctx);
    CHECK_EQ_I(rdml_rsa_noise_ceiling(&ctx, withn, 2, M, RDML_RSA_SPEARMAN,
                                      RDML_RSA_POOL_RSATOOLBOX, &lo, &up, NULL, NULL),
               RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "NaN");
}

/* ---- summaries (one rank) ---- */

static void test_summary_matches_numpy(void) {
    json_t *sums = json_object_get(fixture, "summaries");
    CHECK(json_array_size(sums) >= 7);
    for (size_t c = 0; c < json_array_size(sums); c++) {
        json_t *w = json_array_get(sums, c);
        int subj = (int)json_integer_value(json_object_get(w, "subject"));
        int64_t n = json_integer_value(json_object_get(w, "n")), len;
        float *rdm;
        if (subj >= 0) {
            int64_t nn;
            rdm = subject_rdm(subj, &nn, NULL, NULL);
            CHECK_EQ_I(nn, n);
        } else {
            double *v = json_doubles(json_object_get(w, "rdm"), &len);
            rdm = malloc((size_t)len * sizeof *rdm);
            for (int64_t t = 0; t < len; t++) rdm[t] = (float)v[t];
            free(v);
        }
        int nbins = (int)json_integer_value(json_object_get(w, "nbins"));
        int k = (int)json_integer_value(json_object_get(w, "k"));
        rdml_ctx ctx;
        rdml_ctx_init(&ctx);
        rdml_rdm_summary s;
        CHECK_EQ_I(rdml_rsa_summarize(&ctx, MPI_COMM_SELF, n, 0, n, rdm, nbins, k, &s), RDML_OK);
        if (ctx.code) {
            fprintf(stderr, "%s\n", ctx.msg);
            free(rdm);
            continue;
        }
        CHECK_EQ_I(s.n, n);
        CHECK_EQ_I(s.count, n * (n - 1) / 2);
        CHECK(s.min == jnum(w, "min"));
        CHECK(s.max == jnum(w, "max"));
        CHECK_NEAR(s.mean, jnum(w, "mean"), 1e-12);
        CHECK_NEAR(s.std, jnum(w, "std"), 1e-12);
        CHECK(s.median == jnum(w, "median"));
        CHECK_EQ_I(s.nbins, nbins);
        json_t *we = json_object_get(w, "edges"), *wh = json_object_get(w, "hist");
        for (int b = 0; b <= nbins; b++) CHECK(s.edges[b] == json_number_value(json_array_get(we, (size_t)b)));
        for (int b = 0; b < nbins; b++) CHECK_EQ_I(s.hist[b], json_integer_value(json_array_get(wh, (size_t)b)));
        json_t *wl = json_object_get(w, "low"), *whi = json_object_get(w, "high");
        CHECK_EQ_I(s.k, (int64_t)json_array_size(wl));
        for (int t = 0; t < s.k && t < (int)json_array_size(wl); t++) {
            json_t *l = json_array_get(wl, (size_t)t), *h = json_array_get(whi, (size_t)t);
            CHECK_EQ_I(s.low[t].i, json_integer_value(json_array_get(l, 0)));
            CHECK_EQ_I(s.low[t].j, json_integer_value(json_array_get(l, 1)));
            CHECK(s.low[t].value == json_number_value(json_array_get(l, 2)));
            CHECK_EQ_I(s.high[t].i, json_integer_value(json_array_get(h, 0)));
            CHECK_EQ_I(s.high[t].j, json_integer_value(json_array_get(h, 1)));
            CHECK(s.high[t].value == json_number_value(json_array_get(h, 2)));
        }
        double med = -1;
        CHECK_EQ_I(rdml_rsa_median(&ctx, MPI_COMM_SELF, n, 0, n, rdm, &med), RDML_OK);
        CHECK(med == s.median);
        rdml_rdm_summary_free(&s);
        CHECK(s.edges == NULL && s.hist == NULL && s.low == NULL);
        free(rdm);
    }
}

static int cmp_float(const void *x, const void *y) {
    float a = *(const float *)x, b = *(const float *)y;
    return (a > b) - (a < b);
}

/* Median of a non-symmetric matrix with ties and negative values (incl. -0.0) against a sorted
 * copy of its off-diagonal entries; also NaN and size errors. */
static void test_median_non_symmetric(void) {
    for (int64_t n = 2; n <= 41; n += 13) {
        float *x = malloc((size_t)(n * n) * sizeof *x), *off = malloc((size_t)(n * n) * sizeof *off);
        rdml_rng r = rdml_rng_make(3, RDML_STREAM_USER + 41, (uint64_t)n);
        int64_t c = 0;
        for (int64_t i = 0; i < n * n; i++) {
            x[i] = (float)((double)rdml_rng_below(&r, 21) - 10.0) / 4.0f;
            if (x[i] == 0.0f && (i & 1)) x[i] = -0.0f;
            if (i / n == i % n) x[i] = 1e30f; /* the diagonal must be ignored */
            else off[c++] = x[i];
        }
        qsort(off, (size_t)c, sizeof *off, cmp_float);
        double want = ((double)off[c / 2 - 1] + (double)off[c / 2]) / 2, got = 99;
        rdml_ctx ctx;
        rdml_ctx_init(&ctx);
        CHECK_EQ_I(rdml_rsa_median(&ctx, MPI_COMM_SELF, n, 0, n, x, &got), RDML_OK);
        CHECK(got == want);
        x[n - 1] = NAN;
        CHECK_EQ_I(rdml_rsa_median(&ctx, MPI_COMM_SELF, n, 0, n, x, &got), RDML_EDATA);
        CHECK_STR_HAS(ctx.msg, "is NaN");
        free(x);
        free(off);
    }
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    float one = 0;
    double got;
    CHECK_EQ_I(rdml_rsa_median(&ctx, MPI_COMM_SELF, 1, 0, 1, &one, &got), RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "no off-diagonal pairs");
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    fixture = load_fixture();
    CHECK(fixture != NULL);
    if (fixture) {
        RUN(test_vectors_match_scipy);
        RUN(test_match_ids);
        RUN(test_compare_and_noise_ceiling);
        RUN(test_noise_ceiling_cases);
        RUN(test_summary_matches_numpy);
    }
    RUN(test_against_brute_force);
    RUN(test_kendall_self_large);
    RUN(test_constant_and_bad_inputs);
    RUN(test_methods_and_upper);
    RUN(test_noise_ceiling_pooling_rules);
    RUN(test_median_non_symmetric);
    json_decref(fixture);
    int rc = test_summary();
    MPI_Finalize();
    return rc;
}
