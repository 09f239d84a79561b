/* Hyperparameter grids and the pieces of nested cross-validation for the pair SVM: the
 * Cartesian grid in scikit-learn's ParameterGrid order (so a tie broken by grid order picks
 * what GridSearchCV picks), the seeded inner K-fold over one outer fold's training units, the
 * inner train/test pairs (image-disjoint: a pair tests in inner fold g when both images are in
 * g, trains when neither is, and is dropped otherwise; or by pairs for the flagged pair-level
 * split), one (setting, inner fold) task's score, and the selection (best mean score, first in
 * grid order on ties, NaN last). Everything is a pure function of its inputs and the seed;
 * which rank runs a task and how results travel is the caller's business (src/cli/cmd_svm.c).
 * Left out: randomised search, refit on a different metric than the one selecting, and
 * successive halving. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

static const char *const score_names[] = {"accuracy", "f1", "roc_auc", "r2", "neg_mse",
                                          "pearson", "spearman"};
int rdml_svm_scoring_parse(const char *name) {
    for (int i = 0; i < 7; i++)
        if (name && strcasecmp(name, score_names[i]) == 0) return i;
    return -1;
}
const char *rdml_svm_scoring_name(rdml_svm_scoring s) {
    return (int)s >= 0 && (int)s < 7 ? score_names[s] : "?";
}
int rdml_svm_scoring_fits(rdml_svm_scoring s, rdml_svm_type t) {
    int classification = s == RDML_SCORE_ACCURACY || s == RDML_SCORE_F1 || s == RDML_SCORE_ROC_AUC;
    return (t == RDML_SVM_C_SVC) == classification;
}

int rdml_svm_score(rdml_ctx *ctx, rdml_svm_scoring s, int64_t n, const double *target,
                   const double *dec, double *out) {
    *out = NAN;
    if (n < 1) return RDML_FAIL(ctx, RDML_EDATA, "no pairs to score");
    switch (s) {
    case RDML_SCORE_R2: *out = rdml_metrics_r2(n, target, dec); return RDML_OK;
    case RDML_SCORE_NEG_MSE: *out = 0.0 - rdml_metrics_mse(n, target, dec); return RDML_OK;
    case RDML_SCORE_PEARSON: *out = rdml_metrics_pearson(n, target, dec); return RDML_OK;
    case RDML_SCORE_SPEARMAN: *out = rdml_metrics_spearman(n, target, dec); return RDML_OK;
    default: break;
    }
    if ((int)s < 0 || (int)s > RDML_SCORE_SPEARMAN)
        return RDML_FAIL(ctx, RDML_EINTERNAL, "unknown scoring %d", (int)s);
    int8_t *y = rdml_malloc(ctx, (size_t)n, "labels"), *pred = rdml_malloc(ctx, (size_t)n, "predictions");
    if (!y || !pred) {
        free(y);
        free(pred);
        return ctx->code;
    }
    for (int64_t t = 0; t < n; t++) {
        y[t] = target[t] > 0.5;
        pred[t] = dec[t] > 0;
    }
    rdml_binary_metrics m;
    int rc = rdml_metrics_binary(ctx, n, y, pred, dec, &m);
    if (!rc) *out = s == RDML_SCORE_ACCURACY ? m.accuracy : s == RDML_SCORE_F1 ? m.f1 : m.roc_auc;
    free(y);
    free(pred);
    return rc;
}

int rdml_svm_inner_folds(rdml_ctx *ctx, int64_t nunits, const int8_t *use, int64_t k,
                         uint64_t seed, int64_t outer_fold, int64_t *fold) {
    int64_t m = 0;
    for (int64_t u = 0; u < nunits; u++) m += use[u] != 0;
    if (k < 2 || m < k)
        return RDML_FAIL(ctx, RDML_EDATA,
                         "inner %lld-fold split of outer fold %lld: its training side has %lld "
                         "units; need at least 2 folds and as many units as folds (hint: lower "
                         "grid.inner_folds or use more images)", (long long)k, (long long)outer_fold,
                         (long long)m);
    int64_t *units = rdml_malloc(ctx, (size_t)m * sizeof *units, "inner fold permutation");
    if (!units) return ctx->code;
    for (int64_t u = 0, t = 0; u < nunits; u++) {
        fold[u] = -1;
        if (use[u]) units[t++] = u;
    }
    rdml_rng r = rdml_rng_make(seed, rdml_rng_substream(RDML_STREAM_FOLDS, (uint64_t)(1 + outer_fold)), 0);
    rdml_rng_shuffle(&r, units, m);
    int64_t base = m / k, extra = m % k, t = 0;
    for (int64_t g = 0; g < k; g++) {
        int64_t size = base + (g < extra);
        for (int64_t u = 0; u < size; u++) fold[units[t++]] = g;
    }
    free(units);
    return RDML_OK;
}

int rdml_svm_inner_split(rdml_ctx *ctx, int64_t l, const int64_t *ij, const int64_t *image_fold,
                         const int64_t *pair_fold, int64_t g, int64_t **train, int64_t *ntrain,
                         int64_t **test, int64_t *ntest) {
    *train = *test = NULL;
    *ntrain = *ntest = 0;
    int64_t *tr = rdml_malloc(ctx, (size_t)(l ? l : 1) * sizeof *tr, "inner training pairs");
    int64_t *te = rdml_malloc(ctx, (size_t)(l ? l : 1) * sizeof *te, "inner test pairs");
    if (!tr || !te) {
        free(tr);
        free(te);
        return ctx->code;
    }
    int64_t a = 0, b = 0;
    for (int64_t t = 0; t < l; t++) {
        if (!image_fold) {
            if (pair_fold[t] < 0) continue;
            if (pair_fold[t] == g) te[b++] = t;
            else tr[a++] = t;
            continue;
        }
        int64_t fa = image_fold[ij[2 * t]], fb = image_fold[ij[2 * t + 1]];
        if (fa < 0 || fb < 0) continue;
        if (fa == g && fb == g) te[b++] = t;
        else if (fa != g && fb != g) tr[a++] = t;
    }
    if (a == 0 || b == 0) {
        free(tr);
        free(te);
        return RDML_FAIL(ctx, RDML_EDATA,
                         "inner fold %lld has %lld training and %lld test pairs (of %lld); pairs "
                         "across inner folds are dropped (hint: lower grid.inner_folds, use more "
                         "images or a denser pair set)", (long long)g, (long long)a, (long long)b,
                         (long long)l);
    }
    *train = tr;
    *test = te;
    *ntrain = a;
    *ntest = b;
    return RDML_OK;
}

int rdml_svm_cv_score(rdml_ctx *ctx, const rdml_svm_params *p, const rdml_svm_images *im,
                      int64_t l, const int64_t *ij, const double *target,
                      const int64_t *image_fold, const int64_t *pair_fold, int64_t g,
                      rdml_svm_scoring sc, double *score, int64_t *ntrain, int64_t *ntest) {
    *score = NAN;
    int64_t *tr = NULL, *te = NULL, ntr = 0, nte = 0;
    RDML_TRY(rdml_svm_inner_split(ctx, l, ij, image_fold, pair_fold, g, &tr, &ntr, &te, &nte));
    if (ntrain) *ntrain = ntr;
    if (ntest) *ntest = nte;
    int64_t *ij_tr = malloc((size_t)ntr * 2 * sizeof *ij_tr), *ij_te = malloc((size_t)nte * 2 * sizeof *ij_te);
    double *y_tr = malloc((size_t)ntr * sizeof *y_tr), *y_te = malloc((size_t)nte * sizeof *y_te);
    double *dec = malloc((size_t)nte * sizeof *dec);
    rdml_svm_model *m = NULL;
    int rc = ij_tr && ij_te && y_tr && y_te && dec
                 ? RDML_OK : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for an inner fold");
    for (int64_t t = 0; t < ntr && !rc; t++) {
        ij_tr[2 * t] = ij[2 * tr[t]];
        ij_tr[2 * t + 1] = ij[2 * tr[t] + 1];
        y_tr[t] = target[tr[t]];
    }
    for (int64_t t = 0; t < nte && !rc; t++) {
        ij_te[2 * t] = ij[2 * te[t]];
        ij_te[2 * t + 1] = ij[2 * te[t] + 1];
        y_te[t] = target[te[t]];
    }
    if (!rc) rc = rdml_svm_fit(ctx, p, im, ntr, ij_tr, y_tr, &m);
    if (!rc) rc = rdml_svm_decision(ctx, m, im, nte, ij_te, dec);
    if (!rc) rc = rdml_svm_score(ctx, sc, nte, y_te, dec, score);
    /* + 0.0 turns -0.0 into 0.0, so a sum of one score and zeros (the caller's gather) keeps
     * the same bits on any number of ranks */
    if (!rc) *score = *score + 0.0;
    if (rc) rdml_ctx_prefix(ctx, "inner fold %lld", (long long)g);
    rdml_svm_free(&m);
    free(tr);
    free(te);
    free(ij_tr);
    free(ij_te);
    free(y_tr);
    free(y_te);
    free(dec);
    return rc;
}

void rdml_svm_grid_select(int64_t nset, int64_t k, const double *scores, double *mean,
                          double *sd, int64_t *best) {
    double bestv = NAN;
    *best = 0;
    for (int64_t s = 0; s < nset; s++) {
        double sum = 0;
        for (int64_t g = 0; g < k; g++) sum += scores[s * k + g];
        double mu = sum / (double)k, ss = 0;
        for (int64_t g = 0; g < k; g++) ss += (scores[s * k + g] - mu) * (scores[s * k + g] - mu);
        if (mean) mean[s] = mu;
        if (sd) sd[s] = sqrt(ss / (double)k);
        if (!isnan(mu) && (isnan(bestv) || mu > bestv)) {
            bestv = mu;
            *best = s;
        }
    }
}
