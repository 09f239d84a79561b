/* Metrics against scikit-learn and scipy (fixtures from tools/make_svm_fixtures.py, with
 * tied scores and tied regression values), plus the edge rules: zero_division = 0, one class
 * (AUC NaN), constant inputs, labels other than 0/1 rejected, mean/std with ddof 0. */
#include "rdml/metrics.h"
#include "svm_fixture.h"

static void test_binary_vs_sklearn(void) {
    int64_t n, c;
    int64_t *yt = FX_I64("metrics_bin_ytrue", &n, &c), *yp = FX_I64("metrics_bin_ypred", NULL, NULL);
    double *sc = FX_F64("metrics_bin_score", NULL, NULL), *ex = FX_F64("metrics_bin_expect", NULL, NULL);
    CHECK(yt && yp && sc && ex);
    if (!yt || !yp || !sc || !ex) return;
    int8_t *a = malloc((size_t)n), *b = malloc((size_t)n);
    for (int64_t i = 0; i < n; i++) a[i] = (int8_t)yt[i], b[i] = (int8_t)yp[i];
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_binary_metrics m;
    CHECK_EQ_I(rdml_metrics_binary(&ctx, n, a, b, sc, &m), RDML_OK);
    CHECK_NEAR(m.accuracy, ex[0], 1e-12);
    CHECK_NEAR(m.precision, ex[1], 1e-12);
    CHECK_NEAR(m.recall, ex[2], 1e-12);
    CHECK_NEAR(m.f1, ex[3], 1e-12);
    CHECK_NEAR(m.roc_auc, ex[4], 1e-12);
    CHECK_EQ_I(m.tn, (int64_t)ex[5]);
    CHECK_EQ_I(m.fp, (int64_t)ex[6]);
    CHECK_EQ_I(m.fn, (int64_t)ex[7]);
    CHECK_EQ_I(m.tp, (int64_t)ex[8]);
    free(a); free(b); free(yt); free(yp); free(sc); free(ex);
}

static void test_regression_vs_scipy(void) {
    int64_t n;
    double *t = FX_F64("metrics_reg_true", &n, NULL), *p = FX_F64("metrics_reg_pred", NULL, NULL);
    double *ex = FX_F64("metrics_reg_expect", NULL, NULL);
    CHECK(t && p && ex);
    if (!t || !p || !ex) return;
    CHECK_NEAR(rdml_metrics_r2(n, t, p), ex[0], 1e-12);
    CHECK_NEAR(rdml_metrics_mse(n, t, p), ex[1], 1e-12);
    CHECK_NEAR(rdml_metrics_pearson(n, t, p), ex[2], 1e-12);
    CHECK_NEAR(rdml_metrics_spearman(n, t, p), ex[3], 1e-12);
    free(t); free(p); free(ex);
}

static void test_edge_rules(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    int8_t yt[4] = {0, 0, 0, 0}, yp[4] = {0, 0, 0, 0};
    double s[4] = {0.1, 0.2, 0.3, 0.4};
    rdml_binary_metrics m;
    CHECK_EQ_I(rdml_metrics_binary(&ctx, 4, yt, yp, s, &m), RDML_OK);
    CHECK(m.precision == 0 && m.recall == 0 && m.f1 == 0 && m.accuracy == 1);
    CHECK(isnan(m.roc_auc));
    int8_t bad[2] = {0, 2};
    CHECK_EQ_I(rdml_metrics_binary(&ctx, 2, bad, yp, NULL, &m), RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "index 1");
    /* perfect ranking with one tie across classes: AUC = (3 + 0.5) / 4 */
    int8_t y2[4] = {0, 0, 1, 1};
    double s2[4] = {0.1, 0.5, 0.5, 0.9};
    CHECK_NEAR(rdml_metrics_roc_auc(4, y2, s2), 0.875, 1e-15);
    double c[3] = {2, 2, 2}, v[3] = {1, 2, 3};
    CHECK(isnan(rdml_metrics_pearson(3, c, v)));
    CHECK_NEAR(rdml_metrics_r2(3, c, c), 1.0, 0);
    CHECK_NEAR(rdml_metrics_r2(3, c, v), 0.0, 0);
    double mean, sd;
    rdml_metrics_mean_std(3, v, &mean, &sd);
    CHECK_NEAR(mean, 2.0, 1e-15);
    CHECK_NEAR(sd, sqrt(2.0 / 3.0), 1e-15);
    double r[5], x[5] = {3, 1, 3, 2, 3};
    CHECK_EQ_I(rdml_metrics_rankdata(&ctx, 5, x, r), RDML_OK);
    CHECK(r[0] == 4 && r[1] == 1 && r[2] == 4 && r[3] == 2 && r[4] == 4);
}

int main(void) {
    RUN(test_binary_vs_sklearn);
    RUN(test_regression_vs_scipy);
    RUN(test_edge_rules);
    return test_summary();
}
