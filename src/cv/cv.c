/* Model-independent cross-validation (rdml/cv.h): scores, outer and inner folds, the nested
 * grid search over a fit-and-score callback, and the chance levels of a regression fold. The
 * inner folds are image-disjoint: a pair tests in inner fold g when both images are in g,
 * trains when neither is, and is dropped otherwise (or by pairs for the flagged pair-level
 * split). Everything is a pure function of its inputs and the seed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rdml/cv.h"
#include "rdml/metrics.h"
#include "rdml/pairs.h"

static const char *const score_names[] = {"accuracy", "f1", "roc_auc", "r2", "neg_mse",
                                          "pearson", "spearman"};
int rdml_cv_scoring_parse(const char *name) {
    for (int i = 0; i < 7; i++)
        if (name && strcasecmp(name, score_names[i]) == 0) return i;
    return -1;
}
const char *rdml_cv_scoring_name(rdml_cv_scoring s) {
    return (int)s >= 0 && (int)s < 7 ? score_names[s] : "?";
}
int rdml_cv_scoring_is_classification(rdml_cv_scoring s) {
    return s == RDML_SCORE_ACCURACY || s == RDML_SCORE_F1 || s == RDML_SCORE_ROC_AUC;
}

int rdml_cv_score(rdml_ctx *ctx, rdml_cv_scoring s, int64_t n, const double *target,
                   const double *pred, double *out) {
    *out = NAN;
    if (n < 1) return RDML_FAIL(ctx, RDML_EDATA, "no pairs to score");
    switch (s) {
    case RDML_SCORE_R2: *out = rdml_metrics_r2(n, target, pred); return RDML_OK;
    case RDML_SCORE_NEG_MSE: *out = 0.0 - rdml_metrics_mse(n, target, pred); return RDML_OK;
    case RDML_SCORE_PEARSON: *out = rdml_metrics_pearson(n, target, pred); return RDML_OK;
    case RDML_SCORE_SPEARMAN: *out = rdml_metrics_spearman(n, target, pred); return RDML_OK;
    default: break;
    }
    if ((int)s < 0 || (int)s > RDML_SCORE_SPEARMAN)
        return RDML_FAIL(ctx, RDML_EINTERNAL, "unknown scoring %d", (int)s);
    int8_t *y = rdml_malloc(ctx, (size_t)n, "labels"), *predc = rdml_malloc(ctx, (size_t)n, "predictions");
    if (!y || !predc) {
        free(y);
        free(predc);
        return ctx->code;
    }
    for (int64_t t = 0; t < n; t++) {
        y[t] = target[t] > 0.5;
        predc[t] = pred[t] > 0;
    }
    rdml_binary_metrics m;
    int rc = rdml_metrics_binary(ctx, n, y, predc, pred, &m);
    if (!rc) *out = s == RDML_SCORE_ACCURACY ? m.accuracy : s == RDML_SCORE_F1 ? m.f1 : m.roc_auc;
    free(y);
    free(predc);
    return rc;
}

int rdml_cv_inner_folds(rdml_ctx *ctx, int64_t nunits, const int8_t *use, int64_t k,
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

int rdml_cv_inner_split(rdml_ctx *ctx, int64_t l, const int64_t *ij, const int64_t *image_fold,
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

void rdml_cv_gather(int64_t n, const int64_t *idx, const int64_t *ij, const double *value,
                    int64_t *ij_out, double *value_out) {
    for (int64_t t = 0; t < n; t++) {
        ij_out[2 * t] = ij[2 * idx[t]];
        ij_out[2 * t + 1] = ij[2 * idx[t] + 1];
        if (value) value_out[t] = value[idx[t]];
    }
}

int rdml_cv_grid_search(rdml_ctx *ctx, int64_t nset, int64_t K, int64_t l, const int64_t *ij,
                        const int64_t *image_fold, const int64_t *pair_fold, rdml_cv_fit_score fn,
                        void *user, double *scores, int64_t *chosen) {
    int rc = RDML_OK;
    for (int64_t k = 0; k < K && !rc; k++) {
        int64_t *itr = NULL, *ite = NULL, nitr = 0, nite = 0;
        rc = rdml_cv_inner_split(ctx, l, ij, image_fold, pair_fold, k, &itr, &nitr, &ite, &nite);
        for (int64_t s = 0; s < nset && !rc; s++) {
            rc = fn(ctx, user, s, k, itr, nitr, ite, nite, &scores[s * K + k]);
            if (rc) rdml_ctx_prefix(ctx, "grid setting %lld, inner fold %lld", (long long)s, (long long)k);
        }
        free(itr);
        free(ite);
    }
    if (!rc && chosen) rdml_cv_grid_select(nset, K, scores, NULL, NULL, chosen);
    return rc;
}

void rdml_cv_grid_select(int64_t nset, int64_t k, const double *scores, double *mean,
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

double rdml_cv_train_mean(const double *target, const int64_t *train, int64_t ntrain) {
    double mean = 0;
    for (int64_t q = 0; q < ntrain; q++) mean += target[train[q]];
    return mean / (double)ntrain;
}

int rdml_cv_shuffled_targets(rdml_ctx *ctx, uint64_t seed, int64_t fold, int64_t n,
                             const double *y, double *out) {
    int64_t *perm = rdml_malloc(ctx, (size_t)(n + 1) * sizeof *perm, "a permutation");
    if (!perm) return ctx->code;
    for (int64_t q = 0; q < n; q++) perm[q] = q;
    rdml_rng r = rdml_rng_make(seed, rdml_rng_substream(RDML_STREAM_SHUFFLE, (uint64_t)fold), 1ull << 60);
    rdml_rng_shuffle(&r, perm, n);
    for (int64_t q = 0; q < n; q++) out[q] = y[perm[q]];
    free(perm);
    return RDML_OK;
}

int rdml_cv_null_r2(rdml_ctx *ctx, uint64_t seed, int64_t fold, int64_t n, const double *y,
                    const double *pred, int64_t nshuffles, double *null) {
    int64_t *perm = rdml_malloc(ctx, (size_t)(n + 1) * sizeof *perm, "a permutation");
    double *yp = rdml_malloc(ctx, (size_t)(n + 1) * sizeof *yp, "shuffled targets");
    if (!perm || !yp) {
        free(perm);
        free(yp);
        return ctx->code;
    }
    const uint64_t base = rdml_rng_substream(RDML_STREAM_NULL, (uint64_t)fold);
    for (int64_t b = 0; b < nshuffles; b++) {
        for (int64_t q = 0; q < n; q++) perm[q] = q;
        rdml_rng r = rdml_rng_make(seed, rdml_rng_substream(base, (uint64_t)b), 0);
        rdml_rng_shuffle(&r, perm, n);
        for (int64_t q = 0; q < n; q++) yp[q] = y[perm[q]];
        null[b] = rdml_metrics_r2(n, yp, pred);
    }
    free(perm);
    free(yp);
    return RDML_OK;
}

double rdml_cv_null_p(double observed, const double *null, int64_t n) {
    if (isnan(observed)) return NAN;
    int64_t k = 0;
    for (int64_t b = 0; b < n; b++) k += null[b] >= observed;
    return (double)(1 + k) / (double)(1 + n);
}
