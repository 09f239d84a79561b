/* The pair SVM's side of a nested grid search: the Cartesian grid of SVM settings in
 * scikit-learn's ParameterGrid order (so a tie broken by grid order picks what GridSearchCV
 * picks), which scores fit which SVM type, and one (setting, inner fold) fit-and-score. The
 * model-independent rest (inner folds, inner pairs, the search loop, the selection) is
 * src/cv (rdml/cv.h); which rank runs a task is the caller's business (the experiment
 * layer's task farm). Left out: randomised search, refit on a different metric than the one
 * selecting, and successive halving. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rdml/cv.h"
#include "rdml/metrics.h"
#include "rdml/svm.h"

int rdml_svm_grid_make(rdml_ctx *ctx, const rdml_svm_params *base, const rdml_svm_grid_axes *ax,
                       rdml_svm_params **out, int64_t *n) {
    *out = NULL;
    *n = 0;
    /* sklearn sorts the parameter names: C, coef0, degree, epsilon, gamma, kernel */
    int len[6] = {ax->nC, ax->ncoef0, ax->ndegree, ax->nepsilon, ax->ngamma, ax->nkernel};
    int64_t total = 1;
    for (int a = 0; a < 6; a++) {
        if (len[a] < 0) return RDML_FAIL(ctx, RDML_EINTERNAL, "grid axis %d has %d values", a, len[a]);
        if (len[a] > 0) total *= len[a];
        if (total > 1000000)
            return RDML_FAIL(ctx, RDML_ECONFIG, "the [grid] has more than 10^6 settings (hint: "
                             "fewer values per axis)");
    }
    rdml_svm_params *set = rdml_malloc(ctx, (size_t)total * sizeof *set, "grid settings");
    if (!set) return ctx->code;
    for (int64_t s = 0; s < total; s++) {
        rdml_svm_params p = *base;
        int64_t rest = s;
        int pos[6] = {0};
        for (int a = 5; a >= 0; a--) { /* the last axis varies fastest */
            if (len[a] == 0) continue;
            pos[a] = (int)(rest % len[a]);
            rest /= len[a];
        }
        if (len[0]) p.C = ax->C[pos[0]];
        if (len[1]) p.coef0 = ax->coef0[pos[1]];
        if (len[2]) p.degree = ax->degree[pos[2]];
        if (len[3]) p.epsilon = ax->epsilon[pos[3]];
        if (len[4]) {
            p.gamma_mode = ax->gamma_mode[pos[4]];
            p.gamma = ax->gamma[pos[4]];
        }
        if (len[5]) p.kernel = ax->kernel[pos[5]];
        int rc = rdml_svm_check(ctx, &p);
        if (rc) {
            free(set);
            rdml_ctx_prefix(ctx, "grid setting %lld", (long long)s);
            return rc;
        }
        set[s] = p;
    }
    *out = set;
    *n = total;
    return RDML_OK;
}

int rdml_svm_scoring_fits(rdml_cv_scoring s, rdml_svm_type t) {
    return (t == RDML_SVM_C_SVC) == rdml_cv_scoring_is_classification(s);
}

int rdml_svm_fit_score(rdml_ctx *ctx, const rdml_svm_params *p, const rdml_svm_images *im,
                       const int64_t *ij, const double *target, const int64_t *tr, int64_t ntr,
                       const int64_t *te, int64_t nte, rdml_cv_scoring sc, double *score) {
    *score = NAN;
    int64_t *ij_tr = malloc((size_t)ntr * 2 * sizeof *ij_tr), *ij_te = malloc((size_t)nte * 2 * sizeof *ij_te);
    double *y_tr = malloc((size_t)ntr * sizeof *y_tr), *y_te = malloc((size_t)nte * sizeof *y_te);
    double *dec = malloc((size_t)nte * sizeof *dec);
    rdml_svm_model *m = NULL;
    int rc = ij_tr && ij_te && y_tr && y_te && dec
                 ? RDML_OK : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for an inner fold");
    if (!rc) {
        rdml_cv_gather(ntr, tr, ij, target, ij_tr, y_tr);
        rdml_cv_gather(nte, te, ij, target, ij_te, y_te);
    }
    if (!rc) rc = rdml_svm_fit(ctx, p, im, ntr, ij_tr, y_tr, &m);
    if (!rc) rc = rdml_svm_decision(ctx, m, im, nte, ij_te, dec);
    if (!rc) rc = rdml_cv_score(ctx, sc, nte, y_te, dec, score);
    /* + 0.0 turns -0.0 into 0.0, so a sum of one score and zeros (the caller's gather) keeps
     * the same bits on any number of ranks */
    if (!rc) *score = *score + 0.0;
    rdml_svm_free(&m);
    free(ij_tr);
    free(ij_te);
    free(y_tr);
    free(y_te);
    free(dec);
    return rc;
}

int rdml_svm_cv_score(rdml_ctx *ctx, const rdml_svm_params *p, const rdml_svm_images *im,
                      int64_t l, const int64_t *ij, const double *target,
                      const int64_t *image_fold, const int64_t *pair_fold, int64_t g,
                      rdml_cv_scoring sc, double *score, int64_t *ntrain, int64_t *ntest) {
    *score = NAN;
    int64_t *tr = NULL, *te = NULL, ntr = 0, nte = 0;
    RDML_TRY(rdml_cv_inner_split(ctx, l, ij, image_fold, pair_fold, g, &tr, &ntr, &te, &nte));
    if (ntrain) *ntrain = ntr;
    if (ntest) *ntest = nte;
    int rc = rdml_svm_fit_score(ctx, p, im, ij, target, tr, ntr, te, nte, sc, score);
    if (rc) rdml_ctx_prefix(ctx, "inner fold %lld", (long long)g);
    free(tr);
    free(te);
    return rc;
}

