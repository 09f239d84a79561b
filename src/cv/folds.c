/* The outer folds of one subject x selection as pair lists and, for a nested grid search,
 * every outer fold's inner fold assignment (rdml/cv.h). A model adds its own checks (a
 * classifier needs both classes, R^2 needs two test pairs) through the callbacks. */
#include <stdlib.h>
#include <string.h>

#include "rdml/cv.h"
#include "rdml/pairs.h"

void rdml_cv_folds_free(rdml_cv_folds *F) {
    for (int64_t f = 0; f < F->nf; f++) {
        if (F->tr) free(F->tr[f]);
        if (F->te) free(F->te[f]);
    }
    free(F->tr);
    free(F->te);
    free(F->ntr);
    free(F->nte);
    free(F->ifold);
    memset(F, 0, sizeof *F);
}

int rdml_cv_folds_make(rdml_ctx *ctx, const rdml_split *S, const rdml_pairs *P,
                        int64_t inner_folds, uint64_t seed, rdml_cv_fold_check outer,
                        rdml_cv_inner_check inner, const void *user, rdml_cv_folds *F) {
    memset(F, 0, sizeof *F);
    const int64_t nf = S->nfolds, nu = S->nunits, K = inner_folds;
    F->nf = nf;
    F->tr = calloc((size_t)nf + 1, sizeof *F->tr);
    F->te = calloc((size_t)nf + 1, sizeof *F->te);
    F->ntr = calloc((size_t)nf + 1, sizeof *F->ntr);
    F->nte = calloc((size_t)nf + 1, sizeof *F->nte);
    if (K) F->ifold = calloc((size_t)(nf * nu + 1), sizeof *F->ifold);
    int8_t *use = K ? malloc((size_t)nu + 1) : NULL;
    int rc = F->tr && F->te && F->ntr && F->nte && (!K || (F->ifold && use))
                 ? RDML_OK : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for the folds");
    for (int64_t f = 0; f < nf && !rc; f++) {
        rc = rdml_split_fold(ctx, S, P, f, &F->tr[f], &F->ntr[f], &F->te[f], &F->nte[f]);
        if (!rc && outer) rc = outer(ctx, user, f, nf, F->tr[f], F->ntr[f], F->nte[f]);
    }
    /* inner folds of the grid: each outer fold's training units, seeded by (seed, fold) */
    const int by_pairs = S->scheme == RDML_SPLIT_PAIRS;
    for (int64_t f = 0; f < nf && K && !rc; f++) {
        int64_t *fi = F->ifold + f * nu;
        for (int64_t u = 0; u < nu; u++) use[u] = S->fold[u] != f;
        rc = rdml_cv_inner_folds(ctx, nu, use, K, seed, f, fi);
        for (int64_t k = 0; k < K && !rc; k++) {
            int64_t *itr = NULL, *ite = NULL, nitr, nite;
            rc = rdml_cv_inner_split(ctx, P->n, P->ij, by_pairs ? NULL : fi, by_pairs ? fi : NULL,
                                      k, &itr, &nitr, &ite, &nite);
            if (rc) rdml_ctx_prefix(ctx, "outer fold %lld", (long long)f);
            else if (inner) rc = inner(ctx, user, f, k, K, itr, nitr, nite);
            free(itr);
            free(ite);
        }
    }
    free(use);
    return rc;
}

