/* Unit tests of rdml/rsa.h. Golden values come from tests/fixtures/rsa/rsa.json, written by
 * tools/make_rsa_fixtures.py with scipy (pearsonr, spearmanr), a brute-force tau-a, numpy's
 * histogram / median and a numpy noise ceiling; they are compared within 1e-10. Independent
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
    json_t *nc = json_object_get(fixture, "noise_ceiling");
    for (int meth = 0; meth < 3; meth++) {
        json_t *w = json_object_get(nc, rdml_rsa_method_name((rdml_rsa_method)meth));
        double lo = 9, up = 9, pl[3], pu[3];
        CHECK_EQ_I(rdml_rsa_noise_ceiling(&ctx, (const float *const *)sub, 3, m,
                                          (rdml_rsa_method)meth, &lo, &up, pl, pu),
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
                                          (rdml_rsa_method)meth, &lo2, &up2, NULL, NULL),
                   RDML_OK);
        CHECK(lo2 == lo && up2 == up);
    }
    double lo, up;
    rdml_ctx_init(&ctx);
    CHECK_EQ_I(rdml_rsa_noise_ceiling(&ctx, (const float *const *)sub, 1, m, RDML_RSA_PEARSON,
                                      &lo, &up, NULL, NULL),
               RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "at least 2 subjects");
    for (int s = 0; s < 3; s++) {
        free(sub[s]);
        free(idx[s]);
        free(rdm[s]);
        free(ids[s]);
    }
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
        RUN(test_summary_matches_numpy);
    }
    RUN(test_against_brute_force);
    RUN(test_kendall_self_large);
    RUN(test_constant_and_bad_inputs);
    RUN(test_methods_and_upper);
    RUN(test_median_non_symmetric);
    json_decref(fixture);
    int rc = test_summary();
    MPI_Finalize();
    return rc;
}
