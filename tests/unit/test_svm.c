/* The pair SVM against sklearn.svm.SVC on the concatenated pair features (fixtures from
 * tools/make_svm_fixtures.py): for linear, poly (the paper's degree 2, and degree 3 with
 * gamma='auto', coef0), rbf, sigmoid, class_weight='balanced' and the order-symmetric pair
 * kernel (sklearn with a precomputed symmetrised kernel): gamma exactly, dual objective within
 * 1e-3 relative, predictions on all 1560 ordered pairs agreeing on >= 99.5%, decision values
 * and rho close, the same support vectors up to 2% at the margin. Also: the solution does
 * not depend on the cache size (a two-row cache) or shrinking; the Gram matrix from DSYRK
 * equals direct dot products; one-class training and bad pairs are errors with the numbers;
 * the symmetric kernel gives f(a,b) = f(b,a). */
#include "rdml/svm.h"
#include "svm_fixture.h"

static float *g_emb;
static int64_t g_n, g_d, g_ntr, g_nte;
static int64_t *g_trij, *g_try, *g_teij;
static int8_t *g_y;
static rdml_svm_images g_im;

static int load(void) {
    g_emb = FX_F32("emb", &g_n, &g_d);
    g_trij = FX_I64("train_ij", &g_ntr, NULL);
    g_try = FX_I64("train_y", NULL, NULL);
    g_teij = FX_I64("test_ij", &g_nte, NULL);
    if (!g_emb || !g_trij || !g_try || !g_teij) return 1;
    g_y = malloc((size_t)g_ntr);
    for (int64_t i = 0; i < g_ntr; i++) g_y[i] = (int8_t)g_try[i];
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    return rdml_svm_images_make(&ctx, g_n, g_d, g_emb, &g_im);
}

static void test_gram(void) {
    double maxerr = 0;
    for (int64_t i = 0; i < g_n; i++)
        for (int64_t j = 0; j < g_n; j++) {
            double s = 0;
            for (int64_t k = 0; k < g_d; k++) s += (double)g_emb[i * g_d + k] * g_emb[j * g_d + k];
            maxerr = fmax(maxerr, fabs(s - g_im.gram[i * g_n + j]));
        }
    CHECK(maxerr < 1e-12);
    CHECK(g_im.gram[3 * g_n + 5] == g_im.gram[5 * g_n + 3]);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* One sklearn case: returns the fraction of agreeing predictions. */
static void run_case(const char *name, const rdml_svm_params *p, double tol_dec) {
    char f[64];
    snprintf(f, sizeof f, "meta_%s", name);
    double *meta = FX_F64(f, NULL, NULL);
    snprintf(f, sizeof f, "dec_%s", name);
    double *dec = FX_F64(f, NULL, NULL);
    snprintf(f, sizeof f, "sv_%s", name);
    int64_t nsv_ref = 0;
    int64_t *sv = FX_I64(f, &nsv_ref, NULL);
    CHECK(meta && dec && sv);
    if (!meta || !dec || !sv) return;
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_svm_model *m = NULL;
    int rc = rdml_svm_train(&ctx, p, &g_im, g_ntr, g_trij, g_y, &m);
    CHECK_EQ_I(rc, RDML_OK);
    if (rc) {
        fprintf(stderr, "%s: %s\n", name, ctx.msg);
        return;
    }
    rdml_svm_info info;
    rdml_svm_get_info(m, &info);
    double *out = malloc((size_t)g_nte * sizeof *out);
    CHECK_EQ_I(rdml_svm_decision(&ctx, m, &g_im, g_nte, g_teij, out), RDML_OK);
    int64_t agree = 0;
    double maxdiff = 0;
    for (int64_t t = 0; t < g_nte; t++) {
        agree += (out[t] > 0) == (dec[t] > 0);
        maxdiff = fmax(maxdiff, fabs(out[t] - dec[t]));
    }
    double frac = (double)agree / (double)g_nte, rel = fabs(info.objective - meta[0]) / fabs(meta[0]);
    printf("  %-14s obj %.6f (sklearn %.6f, rel %.1e)  rho %.5f (%.5f)  nSV %lld (%lld)  "
           "agree %.4f  max|dec diff| %.1e  iter %lld\n", name, info.objective, meta[0], rel,
           info.rho, meta[1], (long long)info.n_sv, (long long)nsv_ref, frac, maxdiff,
           (long long)info.iterations);
    CHECK_NEAR(info.gamma, meta[2], 1e-12 * meta[2]);
    CHECK(rel <= 1e-3);
    CHECK(frac >= 0.995);
    CHECK(maxdiff <= tol_dec);
    CHECK_NEAR(info.rho, meta[1], tol_dec);
    CHECK(llabs(info.n_sv - nsv_ref) <= 2 + nsv_ref / 50);
    CHECK(info.converged);
    /* the same support vectors, up to a few at the margin */
    int64_t n_m;
    const int64_t *idx;
    const double *coef;
    rdml_svm_support(m, &n_m, &idx, &coef);
    int64_t common = 0;
    qsort(sv, (size_t)nsv_ref, sizeof *sv, cmp_i64); /* sklearn groups support_ by class */
    for (int64_t a = 0, b = 0; a < n_m && b < nsv_ref;) {
        if (idx[a] == sv[b]) common++, a++, b++;
        else if (idx[a] < sv[b]) a++;
        else b++;
    }
    CHECK(common >= nsv_ref - 2 - nsv_ref / 50);
    free(out);
    free(meta);
    free(dec);
    free(sv);
    rdml_svm_free(&m);
    CHECK(m == NULL);
}

static void test_kernels_vs_sklearn(void) {
    rdml_svm_params p;
    rdml_svm_defaults(&p);
    p.kernel = RDML_SVM_LINEAR;
    run_case("linear", &p, 2e-2);
    rdml_svm_defaults(&p);
    p.kernel = RDML_SVM_POLY;
    p.degree = 2;
    run_case("poly2", &p, 2e-2);
    p.balanced = 1;
    run_case("poly2balanced", &p, 2e-2);
    p.balanced = 0;
    p.symmetric = 1;
    run_case("poly2sym", &p, 2e-2);
    rdml_svm_defaults(&p);
    p.kernel = RDML_SVM_POLY;
    p.degree = 3;
    p.gamma_mode = RDML_GAMMA_AUTO;
    p.coef0 = 1.0;
    p.C = 0.5;
    run_case("poly3auto", &p, 2e-2);
    rdml_svm_defaults(&p);
    p.C = 10;
    run_case("rbf", &p, 2e-2);
    rdml_svm_defaults(&p);
    p.kernel = RDML_SVM_SIGMOID;
    p.gamma_mode = RDML_GAMMA_VALUE;
    p.gamma = 0.01;
    p.C = 1.0;
    run_case("sigmoid", &p, 2e-2);
}

static void test_cache_and_shrinking_do_not_matter(void) {
    rdml_svm_params p;
    rdml_svm_defaults(&p);
    p.kernel = RDML_SVM_POLY;
    p.degree = 2;
    p.cache_mb = 1e-6; /* two rows: constant eviction and swap_index row drops */
    run_case("poly2", &p, 2e-2);
    p.shrinking = 0;
    p.cache_mb = 200;
    run_case("poly2", &p, 2e-2);
    p.kernel = RDML_SVM_RBF;
    p.C = 10;
    p.shrinking = 1;
    p.cache_mb = 1e-6;
    run_case("rbf", &p, 2e-2);
}

static void test_symmetric_kernel_is_order_free(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_svm_params p;
    rdml_svm_defaults(&p);
    p.kernel = RDML_SVM_RBF;
    p.symmetric = 1;
    rdml_svm_model *m = NULL;
    CHECK_EQ_I(rdml_svm_train(&ctx, &p, &g_im, g_ntr, g_trij, g_y, &m), RDML_OK);
    if (!m) return;
    int64_t ab[4] = {3, 17, 17, 3};
    double d[2];
    CHECK_EQ_I(rdml_svm_decision(&ctx, m, &g_im, 2, ab, d), RDML_OK);
    CHECK_NEAR(d[0], d[1], 1e-12);
    rdml_svm_free(&m);
    /* and the plain kernel is not order-free on the same data */
    p.symmetric = 0;
    CHECK_EQ_I(rdml_svm_train(&ctx, &p, &g_im, g_ntr, g_trij, g_y, &m), RDML_OK);
    if (!m) return;
    CHECK_EQ_I(rdml_svm_decision(&ctx, m, &g_im, 2, ab, d), RDML_OK);
    CHECK(fabs(d[0] - d[1]) > 1e-6);
    rdml_svm_free(&m);
}

static void test_errors(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_svm_params p;
    rdml_svm_defaults(&p);
    rdml_svm_model *m = NULL;
    int8_t y1[3] = {1, 1, 1};
    int64_t ij[6] = {0, 1, 1, 2, 2, 3};
    CHECK_EQ_I(rdml_svm_train(&ctx, &p, &g_im, 3, ij, y1, &m), RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "0 of class 0");
    CHECK_STR_HAS(ctx.msg, "3 of class 1");
    CHECK(m == NULL);
    rdml_ctx_clear(&ctx);
    int8_t y2[3] = {0, 1, 0};
    int64_t bad[6] = {0, 1, 1, 999, 2, 3};
    CHECK_EQ_I(rdml_svm_train(&ctx, &p, &g_im, 3, bad, y2, &m), RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "999");
    rdml_ctx_clear(&ctx);
    p.C = 0;
    CHECK_EQ_I(rdml_svm_train(&ctx, &p, &g_im, 3, ij, y2, &m), RDML_ECONFIG);
    CHECK_STR_HAS(ctx.msg, "svm.C");
    CHECK_EQ_I(rdml_svm_kernel_parse("POLY"), RDML_SVM_POLY);
    CHECK_EQ_I(rdml_svm_kernel_parse("cubic"), -1);
}

int main(void) {
    if (load()) {
        printf("0 passed, 1 failed (fixtures)\n");
        return 1;
    }
    RUN(test_gram);
    RUN(test_kernels_vs_sklearn);
    RUN(test_cache_and_shrinking_do_not_matter);
    RUN(test_symmetric_kernel_is_order_free);
    RUN(test_errors);
    rdml_svm_images_free(&g_im);
    free(g_emb); free(g_trij); free(g_try); free(g_teij); free(g_y);
    return test_summary();
}
