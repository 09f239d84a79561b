/* Grid search with inner cross-validation against sklearn's GridSearchCV (fixtures grid_* and
 * gridsvr_* from tools/make_svm_fixtures.py, which passes GridSearchCV the explicit cv list
 * that rdmlearn's image-disjoint rule gives for a fixed inner fold of each image): for a C-SVC
 * grid (C x degree x kernel, where rbf ignores degree, so settings tie exactly) and an SVR
 * grid (C x epsilon x gamma), every per-split score and every mean inner score within 1e-6,
 * and the same chosen setting for accuracy, f1, roc_auc, r2 and neg_mse (the first of tied
 * settings in ParameterGrid order). Also: the grid order and size, the inner K-fold (only the
 * used units, sklearn KFold's sizes, the same for the same (seed, outer fold), different for
 * another outer fold), the selection rule with ties and NaN, scoring names and types, and
 * errors with the numbers (too few units, an empty inner side, a bad setting in the grid). */
#include "rdml/svm.h"
#include "svm_fixture.h"

static float *g_emb, *g_R;
static int64_t g_n, g_d, g_np;
static int64_t *g_P, *g_ifold;
static rdml_svm_images g_im;

static int load(void) {
    g_emb = FX_F32("emb", &g_n, &g_d);
    g_R = FX_F32("rdm", NULL, NULL);
    g_P = FX_I64("extremes_k8", &g_np, NULL);
    g_ifold = FX_I64("grid_image_fold", NULL, NULL);
    if (!g_emb || !g_R || !g_P || !g_ifold) return 1;
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    return rdml_svm_images_make(&ctx, g_n, g_d, g_emb, &g_im);
}

/* Run every (setting, inner fold) of a grid with each scorer; compare with the fixture. */
static void check_grid(const char *prefix, const rdml_svm_params *set, int64_t ns,
                       const rdml_cv_scoring *sc, int nsc, const double *target) {
    char f[64];
    snprintf(f, sizeof f, "%s_mean", prefix);
    double *mean_ref = FX_F64(f, NULL, NULL);
    snprintf(f, sizeof f, "%s_split", prefix);
    double *split_ref = FX_F64(f, NULL, NULL);
    snprintf(f, sizeof f, "%s_best", prefix);
    int64_t *best_ref = FX_I64(f, NULL, NULL);
    CHECK(mean_ref && split_ref && best_ref);
    if (!mean_ref || !split_ref || !best_ref) return;
    const int64_t K = 3;
    double *score = malloc((size_t)(ns * K) * sizeof *score), *mean = malloc((size_t)ns * sizeof *mean);
    for (int c = 0; c < nsc; c++) {
        double maxdiff = 0, maxmean = 0;
        rdml_ctx ctx;
        rdml_ctx_init(&ctx);
        for (int64_t s = 0; s < ns; s++)
            for (int64_t g = 0; g < K; g++) {
                int rc = rdml_svm_cv_score(&ctx, &set[s], &g_im, g_np, g_P, target, g_ifold, NULL, g,
                                           sc[c], &score[s * K + g], NULL, NULL);
                CHECK_EQ_I(rc, RDML_OK);
                if (rc) fprintf(stderr, "%s\n", ctx.msg);
                maxdiff = fmax(maxdiff, fabs(score[s * K + g] - split_ref[(c * ns + s) * K + g]));
            }
        int64_t best = -1;
        rdml_cv_grid_select(ns, K, score, mean, NULL, &best);
        for (int64_t s = 0; s < ns; s++) maxmean = fmax(maxmean, fabs(mean[s] - mean_ref[s * nsc + c]));
        printf("  %-8s %-9s best %lld (sklearn %lld, mean %.6f)  max|split diff| %.1e  max|mean diff| %.1e\n",
               prefix, rdml_cv_scoring_name(sc[c]), (long long)best, (long long)best_ref[c],
               mean[best], maxdiff, maxmean);
        CHECK(maxdiff <= 1e-6);
        CHECK(maxmean <= 1e-6);
        CHECK_EQ_I(best, best_ref[c]);
    }
    free(score);
    free(mean);
    free(mean_ref);
    free(split_ref);
    free(best_ref);
}

static void test_svc_grid_vs_gridsearchcv(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_svm_params base;
    rdml_svm_defaults(&base);
    base.tol = 1e-6;
    double Cs[3] = {0.1, 1.0, 10.0};
    int degs[2] = {2, 3};
    rdml_svm_kernel ks[2] = {RDML_SVM_POLY, RDML_SVM_RBF};
    rdml_svm_grid_axes ax = {0};
    ax.nC = 3, ax.C = Cs, ax.ndegree = 2, ax.degree = degs, ax.nkernel = 2, ax.kernel = ks;
    rdml_svm_params *set = NULL;
    int64_t ns = 0;
    CHECK_EQ_I(rdml_svm_grid_make(&ctx, &base, &ax, &set, &ns), RDML_OK);
    CHECK_EQ_I(ns, 12);
    if (ns != 12) return;
    /* ParameterGrid order: C slowest, then degree, kernel fastest */
    CHECK(set[0].C == 0.1 && set[0].degree == 2 && set[0].kernel == RDML_SVM_POLY);
    CHECK(set[1].C == 0.1 && set[1].degree == 2 && set[1].kernel == RDML_SVM_RBF);
    CHECK(set[2].C == 0.1 && set[2].degree == 3 && set[2].kernel == RDML_SVM_POLY);
    CHECK(set[11].C == 10 && set[11].degree == 3 && set[11].kernel == RDML_SVM_RBF);
    CHECK(set[5].tol == 1e-6 && set[5].gamma_mode == RDML_GAMMA_SCALE);
    double *y = malloc((size_t)g_np * sizeof *y);
    for (int64_t t = 0; t < g_np; t++) y[t] = g_R[g_P[2 * t] * g_n + g_P[2 * t + 1]] > 1.0f;
    rdml_cv_scoring sc[3] = {RDML_SCORE_ACCURACY, RDML_SCORE_F1, RDML_SCORE_ROC_AUC};
    check_grid("grid", set, ns, sc, 3, y);
    free(y);
    free(set);
}

static void test_svr_grid_vs_gridsearchcv(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_svm_params base;
    rdml_svm_defaults(&base);
    base.type = RDML_SVM_EPSILON_SVR;
    base.kernel = RDML_SVM_RBF;
    base.tol = 1e-6;
    double Cs[2] = {0.3, 3.0}, eps[2] = {0.02, 0.1}, gv[2] = {0, 0.05};
    int gm[2] = {RDML_GAMMA_SCALE, RDML_GAMMA_VALUE};
    rdml_svm_grid_axes ax = {0};
    ax.nC = 2, ax.C = Cs, ax.nepsilon = 2, ax.epsilon = eps, ax.ngamma = 2, ax.gamma_mode = gm,
    ax.gamma = gv;
    rdml_svm_params *set = NULL;
    int64_t ns = 0;
    CHECK_EQ_I(rdml_svm_grid_make(&ctx, &base, &ax, &set, &ns), RDML_OK);
    CHECK_EQ_I(ns, 8);
    if (ns != 8) return;
    CHECK(set[1].C == 0.3 && set[1].epsilon == 0.02 && set[1].gamma_mode == RDML_GAMMA_VALUE);
    CHECK(set[2].epsilon == 0.1 && set[2].gamma_mode == RDML_GAMMA_SCALE);
    double *v = malloc((size_t)g_np * sizeof *v);
    for (int64_t t = 0; t < g_np; t++) v[t] = g_R[g_P[2 * t] * g_n + g_P[2 * t + 1]];
    rdml_cv_scoring sc[2] = {RDML_SCORE_R2, RDML_SCORE_NEG_MSE};
    check_grid("gridsvr", set, ns, sc, 2, v);
    free(v);
    free(set);
}

static void test_inner_folds(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    enum { N = 23 };
    int8_t use[N];
    int64_t a[N], b[N], c[N];
    for (int i = 0; i < N; i++) use[i] = i % 5 != 2; /* 18 used units */
    CHECK_EQ_I(rdml_cv_inner_folds(&ctx, N, use, 4, 42, 0, a), RDML_OK);
    CHECK_EQ_I(rdml_cv_inner_folds(&ctx, N, use, 4, 42, 0, b), RDML_OK);
    CHECK_EQ_I(rdml_cv_inner_folds(&ctx, N, use, 4, 42, 1, c), RDML_OK);
    int64_t size[4] = {0, 0, 0, 0}, same = 1, differ = 0;
    for (int i = 0; i < N; i++) {
        if (!use[i]) {
            CHECK_EQ_I(a[i], -1);
            continue;
        }
        CHECK(a[i] >= 0 && a[i] < 4);
        if (a[i] >= 0 && a[i] < 4) size[a[i]]++;
        same &= a[i] == b[i];
        differ |= a[i] != c[i];
    }
    /* KFold sizes for 18 units in 4 folds: 5, 5, 4, 4 */
    CHECK(size[0] == 5 && size[1] == 5 && size[2] == 4 && size[3] == 4);
    CHECK(same);
    CHECK(differ);
    CHECK_EQ_I(rdml_cv_inner_folds(&ctx, N, use, 19, 42, 3, a), RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "18 units");
    CHECK_STR_HAS(ctx.msg, "outer fold 3");
    rdml_ctx_clear(&ctx);
    /* image-disjoint inner split: no test image in a training pair, unused images nowhere */
    int64_t *tr, *te, ntr, nte;
    CHECK_EQ_I(rdml_cv_inner_split(&ctx, g_np, g_P, g_ifold, NULL, 1, &tr, &ntr, &te, &nte), RDML_OK);
    for (int64_t t = 0; t < ntr; t++) {
        int64_t fa = g_ifold[g_P[2 * tr[t]]], fb = g_ifold[g_P[2 * tr[t] + 1]];
        CHECK(fa >= 0 && fb >= 0 && fa != 1 && fb != 1);
    }
    for (int64_t t = 0; t < nte; t++)
        CHECK(g_ifold[g_P[2 * te[t]]] == 1 && g_ifold[g_P[2 * te[t] + 1]] == 1);
    free(tr);
    free(te);
    /* pair-level: by pair_fold */
    int64_t pf[4] = {0, 1, -1, 1}, ij[8] = {0, 1, 1, 2, 2, 3, 3, 4};
    CHECK_EQ_I(rdml_cv_inner_split(&ctx, 4, ij, NULL, pf, 1, &tr, &ntr, &te, &nte), RDML_OK);
    CHECK(ntr == 1 && tr[0] == 0 && nte == 2 && te[0] == 1 && te[1] == 3);
    free(tr);
    free(te);
    int64_t pf0[4] = {0, 0, 0, 0};
    CHECK_EQ_I(rdml_cv_inner_split(&ctx, 4, ij, NULL, pf0, 0, &tr, &ntr, &te, &nte), RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "0 training and 4 test pairs");
}

static void test_select_rule(void) {
    /* 3 folds; settings 1 and 3 tie for the best mean, setting 2 has a NaN */
    double sc[4 * 3] = {0.5, 0.6, 0.7, 0.8, 0.9, 0.7, NAN, 1.0, 1.0, 0.9, 0.8, 0.7};
    double mean[4], sd[4];
    int64_t best = -1;
    rdml_cv_grid_select(4, 3, sc, mean, sd, &best);
    CHECK_EQ_I(best, 1);
    CHECK(isnan(mean[2]));
    CHECK_NEAR(mean[0], 0.6, 1e-15);
    CHECK_NEAR(sd[0], sqrt(0.02 / 3), 1e-15);
    double allnan[2] = {NAN, NAN};
    rdml_cv_grid_select(2, 1, allnan, NULL, NULL, &best);
    CHECK_EQ_I(best, 0);
    CHECK_EQ_I(rdml_cv_scoring_parse("ROC_AUC"), RDML_SCORE_ROC_AUC);
    CHECK_EQ_I(rdml_cv_scoring_parse("mse"), -1);
    CHECK(rdml_svm_scoring_fits(RDML_SCORE_F1, RDML_SVM_C_SVC));
    CHECK(!rdml_svm_scoring_fits(RDML_SCORE_F1, RDML_SVM_EPSILON_SVR));
    CHECK(rdml_svm_scoring_fits(RDML_SCORE_SPEARMAN, RDML_SVM_EPSILON_SVR));
    CHECK(!rdml_svm_scoring_fits(RDML_SCORE_R2, RDML_SVM_C_SVC));
}

static void test_grid_errors(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_svm_params base, *set = NULL;
    rdml_svm_defaults(&base);
    int64_t ns = 0;
    rdml_svm_grid_axes ax = {0};
    CHECK_EQ_I(rdml_svm_grid_make(&ctx, &base, &ax, &set, &ns), RDML_OK); /* no axis: base alone */
    CHECK(ns == 1 && set && set[0].C == base.C && set[0].kernel == base.kernel);
    free(set);
    double Cs[2] = {1.0, -2.0};
    ax.nC = 2, ax.C = Cs;
    CHECK_EQ_I(rdml_svm_grid_make(&ctx, &base, &ax, &set, &ns), RDML_ECONFIG);
    CHECK_STR_HAS(ctx.msg, "grid setting 1");
    CHECK_STR_HAS(ctx.msg, "svm.C = -2");
    CHECK(set == NULL && ns == 0);
}

int main(void) {
    if (load()) {
        printf("0 passed, 1 failed (fixtures)\n");
        return 1;
    }
    RUN(test_svc_grid_vs_gridsearchcv);
    RUN(test_svr_grid_vs_gridsearchcv);
    RUN(test_inner_folds);
    RUN(test_select_rule);
    RUN(test_grid_errors);
    rdml_svm_images_free(&g_im);
    free(g_emb); free(g_R); free(g_P); free(g_ifold);
    return test_summary();
}
