/* Train/test splits for pair sets. The leakage-free schemes split IMAGES: K-fold (a seeded
 * permutation cut into sklearn KFold's sizes) or one holdout (train_test_split's
 * ceil(test_size * n) test images), and a pair belongs to a side only when both of its
 * images do, so no test image is ever seen in training. A pair-level K-fold exists for
 * comparison only, behind an explicit flag, because it puts the same images on both sides
 * and inflates test scores. Folds come from stream RDML_STREAM_FOLDS of run.seed, so they
 * never depend on the rank count. Left out: stratification and grouping by NSD id across
 * subjects. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rdml/pairs.h"

void rdml_split_defaults(rdml_split_params *p) {
    memset(p, 0, sizeof *p);
    p->scheme = RDML_SPLIT_KFOLD;
    p->folds = 5;
    p->test_size = 0.36;
    p->seed = 42;
}

const char *rdml_split_scheme_name(rdml_split_scheme s) {
    switch (s) {
    case RDML_SPLIT_KFOLD: return "kfold";
    case RDML_SPLIT_HOLDOUT: return "holdout";
    case RDML_SPLIT_PAIRS: return "pairs";
    }
    return "?";
}

void rdml_split_free(rdml_split *s) {
    if (!s) return;
    free(s->fold);
    memset(s, 0, sizeof *s);
}

int rdml_split_make(rdml_ctx *ctx, const rdml_split_params *p, int64_t nimages,
                    const rdml_pairs *pairs, rdml_split *out) {
    memset(out, 0, sizeof *out);
    out->scheme = p->scheme;
    int64_t n = nimages;
    const char *unit = "images";
    if (p->scheme == RDML_SPLIT_PAIRS) {
        if (!p->allow_leakage)
            return RDML_FAIL(ctx, RDML_ECONFIG,
                             "split.scheme = pairs splits pairs, not images: the same image then "
                             "appears in training and test pairs and test scores are inflated "
                             "(hint: use kfold or holdout, or set split.allow_pair_leakage = true "
                             "to measure the leak on purpose)");
        n = pairs ? pairs->n : 0;
        unit = "pairs";
    }
    if (p->scheme == RDML_SPLIT_HOLDOUT) {
        if (!(p->test_size > 0 && p->test_size < 1))
            return RDML_FAIL(ctx, RDML_ECONFIG, "split.test_size = %g must be in (0, 1)", p->test_size);
        int64_t nt = (int64_t)ceil(p->test_size * (double)n);
        if (nt < 1 || nt > n - 1)
            return RDML_FAIL(ctx, RDML_EDATA,
                             "holdout split of %lld images with test_size %g leaves %lld test and "
                             "%lld training images; both sides need at least one (hint: use more "
                             "images)", (long long)n, p->test_size, (long long)nt, (long long)(n - nt));
    } else if (p->folds < 2 || n < p->folds) {
        return RDML_FAIL(ctx, RDML_EDATA,
                         "%lld-fold split over %lld %s: need at least 2 folds and at least as "
                         "many %s as folds (hint: lower split.folds or use more images)",
                         (long long)p->folds, (long long)n, unit, unit);
    }
    int64_t *perm = rdml_malloc(ctx, (size_t)n * sizeof *perm, "fold permutation");
    out->fold = rdml_malloc(ctx, (size_t)n * sizeof *out->fold, "fold of each unit");
    if (!perm || !out->fold) {
        free(perm);
        rdml_split_free(out);
        return ctx->code;
    }
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    rdml_rng r = rdml_rng_make(p->seed, RDML_STREAM_FOLDS, 0);
    rdml_rng_shuffle(&r, perm, n);
    out->nunits = n;
    if (p->scheme == RDML_SPLIT_HOLDOUT) {
        int64_t nt = (int64_t)ceil(p->test_size * (double)n);
        for (int64_t t = 0; t < n; t++) out->fold[perm[t]] = t < nt ? 0 : -1;
        out->nfolds = 1;
    } else {
        int64_t k = p->folds, base = n / k, extra = n % k, t = 0;
        for (int64_t f = 0; f < k; f++) {
            int64_t size = base + (f < extra);
            for (int64_t u = 0; u < size; u++) out->fold[perm[t++]] = f;
        }
        out->nfolds = k;
    }
    free(perm);
    return RDML_OK;
}

int rdml_split_fold(rdml_ctx *ctx, const rdml_split *s, const rdml_pairs *pairs, int64_t f,
                    int64_t **train, int64_t *ntrain, int64_t **test, int64_t *ntest) {
    *train = *test = NULL;
    *ntrain = *ntest = 0;
    if (f < 0 || f >= s->nfolds)
        return RDML_FAIL(ctx, RDML_EINTERNAL, "fold %lld of %lld", (long long)f, (long long)s->nfolds);
    int64_t P = pairs->n;
    int64_t *tr = rdml_malloc(ctx, (size_t)(P ? P : 1) * sizeof *tr, "training pairs");
    int64_t *te = rdml_malloc(ctx, (size_t)(P ? P : 1) * sizeof *te, "test pairs");
    if (!tr || !te) {
        free(tr);
        free(te);
        return ctx->code;
    }
    int64_t a = 0, b = 0, img_test = 0;
    for (int64_t t = 0; t < P; t++) {
        if (s->scheme == RDML_SPLIT_PAIRS) {
            if (s->fold[t] == f) te[b++] = t;
            else tr[a++] = t;
            continue;
        }
        int ia = s->fold[pairs->ij[2 * t]] == f, ib = s->fold[pairs->ij[2 * t + 1]] == f;
        if (ia && ib) te[b++] = t;
        else if (!ia && !ib) tr[a++] = t;
    }
    if (s->scheme != RDML_SPLIT_PAIRS)
        for (int64_t i = 0; i < s->nunits; i++) img_test += s->fold[i] == f;
    if (a == 0 || b == 0) {
        free(tr);
        free(te);
        return RDML_FAIL(ctx, RDML_EDATA,
                         "fold %lld of %lld has %lld training and %lld test pairs (%lld of %lld "
                         "images on the test side, %lld pairs in the set); pairs across the "
                         "split are dropped, so both sides need pairs within them (hint: use "
                         "more images, fewer folds, or a denser pair set)",
                         (long long)f, (long long)s->nfolds, (long long)a, (long long)b,
                         (long long)img_test, (long long)s->nunits, (long long)P);
    }
    *train = tr;
    *test = te;
    *ntrain = a;
    *ntest = b;
    return RDML_OK;
}
