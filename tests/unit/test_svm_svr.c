/* epsilon-SVR on image pairs against sklearn.svm.SVR on the concatenated pair features
 * (fixtures svrdec_* / svrmeta_* from tools/make_svm_fixtures.py): the RDM value of each
 * training pair is the target; for poly 2 (gamma 'scale'), rbf, linear and a tight-tolerance
 * rbf, the dual objective is within 1e-3 relative, predictions on 500 held-out pairs within
 * 1e-3 relative to the target scale (1e-5 at tol 1e-6), rho and the support-vector count
 * close. Also: the SVR's support coefficients satisfy sum(alpha - alpha*) = 0 and |coef| <= C;
 * the cache size and shrinking do not change the solution; non-finite targets and a C-SVC
 * parameter set given to the SVR trainer are errors; rdml_svm_fit dispatches on the type. */
#include "rdml/svm.h"
#include "svm_fixture.h"

static float *g_emb, *g_R;
static int64_t g_n, g_d, g_ntr, g_nte;
static int64_t *g_trij, *g_teij;
static double *g_t;
static rdml_svm_images g_im;

static int load(void) {
    g_emb = FX_F32("emb", &g_n, &g_d);
    g_R = FX_F32("rdm", NULL, NULL);
    g_trij = FX_I64("train_ij", &g_ntr, NULL);
    g_teij = FX_I64("test_ij", &g_nte, NULL);
    if (!g_emb || !g_R || !g_trij || !g_teij) return 1;
    if (g_nte > 500) g_nte = 500; /* the fixture predicts the first 500 test pairs */
    g_t = malloc((size_t)g_ntr * sizeof *g_t);
    for (int64_t i = 0; i < g_ntr; i++) g_t[i] = (double)g_R[g_trij[2 * i] * g_n + g_trij[2 * i + 1]];
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    return rdml_svm_images_make(&ctx, g_n, g_d, g_emb, &g_im);
}

static void run_case(const char *name, const rdml_svm_params *p, double pred_tol) {
    char f[64];
    snprintf(f, sizeof f, "svrmeta_%s", name);
    double *meta = FX_F64(f, NULL, NULL);
    snprintf(f, sizeof f, "svrdec_%s", name);
    double *ref = FX_F64(f, NULL, NULL);
    CHECK(meta && ref);
    if (!meta || !ref) return;
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_svm_model *m = NULL;
    int rc = rdml_svm_train_svr(&ctx, p, &g_im, g_ntr, g_trij, g_t, &m);
    CHECK_EQ_I(rc, RDML_OK);
    if (rc) {
        fprintf(stderr, "%s: %s\n", name, ctx.msg);
        free(meta);
        free(ref);
        return;
    }
    rdml_svm_info info;
    rdml_svm_get_info(m, &info);
    double *out = malloc((size_t)g_nte * sizeof *out);
    CHECK_EQ_I(rdml_svm_decision(&ctx, m, &g_im, g_nte, g_teij, out), RDML_OK);
    double maxdiff = 0, scale = 0;
    for (int64_t t = 0; t < g_nte; t++) {
        maxdiff = fmax(maxdiff, fabs(out[t] - ref[t]));
        scale = fmax(scale, fabs(ref[t]));
    }
    double rel = fabs(info.objective - meta[0]) / fabs(meta[0]);
    printf("  svr %-10s obj %.6f (sklearn %.6f, rel %.1e)  rho %.5f (%.5f)  nSV %lld (%lld)  "
           "max|pred diff| %.1e (max |pred| %.2f)  iter %lld\n", name, info.objective, meta[0], rel,
           info.rho, meta[1], (long long)info.n_sv, (long long)meta[3], maxdiff, scale,
           (long long)info.iterations);
    CHECK_NEAR(info.gamma, meta[2], 1e-12 * meta[2]);
    CHECK(rel <= 1e-3);
    CHECK(maxdiff <= pred_tol * scale);
    CHECK_NEAR(info.rho, meta[1], pred_tol * scale);
    CHECK(llabs(info.n_sv - (int64_t)meta[3]) <= 2 + (int64_t)meta[3] / 50);
    CHECK(info.converged);
    /* dual feasibility: sum(alpha - alpha*) = 0 (the equality constraint), |coef| <= C */
    int64_t nsv;
    const int64_t *idx;
    const double *coef;
    rdml_svm_support(m, &nsv, &idx, &coef);
    double sum = 0, amax = 0;
    for (int64_t q = 0; q < nsv; q++) {
        sum += coef[q];
        amax = fmax(amax, fabs(coef[q]));
        CHECK(idx[q] >= 0 && idx[q] < g_ntr);
    }
    CHECK(fabs(sum) <= 1e-9 * (double)g_ntr * p->C);
    CHECK(amax <= p->C * (1 + 1e-12));
    free(out);
    free(meta);
    free(ref);
    rdml_svm_free(&m);
}

static void svr_params(rdml_svm_params *p, rdml_svm_kernel k, double C, double eps) {
    rdml_svm_defaults(p);
    p->type = RDML_SVM_EPSILON_SVR;
    p->kernel = k;
    p->degree = 2;
    p->C = C;
    p->epsilon = eps;
}

static void test_svr_vs_sklearn(void) {
    rdml_svm_params p;
    svr_params(&p, RDML_SVM_POLY, 1.0, 0.1);
    run_case("poly2", &p, 1e-3);
    svr_params(&p, RDML_SVM_RBF, 10.0, 0.05);
    run_case("rbf", &p, 1e-3);
    svr_params(&p, RDML_SVM_LINEAR, 0.1, 0.1);
    run_case("linear", &p, 1e-3);
    svr_params(&p, RDML_SVM_RBF, 1.0, 0.02);
    p.gamma_mode = RDML_GAMMA_VALUE;
    p.gamma = 0.05;
    p.tol = 1e-6;
    run_case("rbf_tight", &p, 1e-5);
}

static void test_cache_and_shrinking_do_not_matter(void) {
    rdml_svm_params p;
    svr_params(&p, RDML_SVM_RBF, 10.0, 0.05);
    p.cache_mb = 1e-6; /* two rows: constant eviction */
    run_case("rbf", &p, 1e-3);
    p.cache_mb = 200;
    p.shrinking = 0;
    run_case("rbf", &p, 1e-3);
}

static void test_fit_dispatch_and_errors(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_svm_params p;
    svr_params(&p, RDML_SVM_POLY, 1.0, 0.1);
    rdml_svm_model *a = NULL, *b = NULL;
    CHECK_EQ_I(rdml_svm_fit(&ctx, &p, &g_im, g_ntr, g_trij, g_t, &a), RDML_OK);
    CHECK_EQ_I(rdml_svm_train_svr(&ctx, &p, &g_im, g_ntr, g_trij, g_t, &b), RDML_OK);
    if (a && b) {
        rdml_svm_info ia, ib;
        rdml_svm_get_info(a, &ia);
        rdml_svm_get_info(b, &ib);
        CHECK(ia.objective == ib.objective && ia.rho == ib.rho);
    }
    rdml_svm_free(&a);
    rdml_svm_free(&b);
    /* the C-SVC trainer refuses an SVR parameter set and vice versa */
    int8_t y[3] = {0, 1, 0};
    CHECK_EQ_I(rdml_svm_train(&ctx, &p, &g_im, 3, g_trij, y, &a), RDML_EINTERNAL);
    CHECK_STR_HAS(ctx.msg, "epsilon_svr");
    rdml_ctx_clear(&ctx);
    double t[3] = {0.5, NAN, 1.0};
    CHECK_EQ_I(rdml_svm_train_svr(&ctx, &p, &g_im, 3, g_trij, t, &a), RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "pair 1");
    rdml_ctx_clear(&ctx);
    p.epsilon = -0.5;
    t[1] = 0.7;
    CHECK_EQ_I(rdml_svm_train_svr(&ctx, &p, &g_im, 3, g_trij, t, &a), RDML_ECONFIG);
    CHECK_STR_HAS(ctx.msg, "svm.epsilon = -0.5");
    rdml_ctx_clear(&ctx);
    p.epsilon = 0.1;
    p.type = RDML_SVM_C_SVC;
    CHECK_EQ_I(rdml_svm_train_svr(&ctx, &p, &g_im, 3, g_trij, t, &a), RDML_EINTERNAL);
    CHECK(a == NULL);
    CHECK_EQ_I(rdml_svm_type_parse("EPSILON_SVR"), RDML_SVM_EPSILON_SVR);
    CHECK_EQ_I(rdml_svm_type_parse("nu_svr"), -1);
}

int main(void) {
    if (load()) {
        printf("0 passed, 1 failed (fixtures)\n");
        return 1;
    }
    RUN(test_svr_vs_sklearn);
    RUN(test_cache_and_shrinking_do_not_matter);
    RUN(test_fit_dispatch_and_errors);
    rdml_svm_images_free(&g_im);
    free(g_emb); free(g_R); free(g_trij); free(g_teij); free(g_t);
    return test_summary();
}
