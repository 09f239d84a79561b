/* ridge.c — ridge regression to many targets with a per-target alpha (rdml/ridge.h). */
#include "rdml/ridge.h"

#include <stdlib.h>
#include <string.h>

void rdml_ridge_opts_default(rdml_ridge_opts *o) {
    memset(o, 0, sizeof *o);
    o->cv = RDML_RIDGE_LOO;
    o->inner_k = 5;
    o->score = RDML_RIDGE_SCORE_NEG_MSE;
}

struct rdml_ridge_fact {
    int64_t d;
};

int rdml_ridge_fact_new(rdml_ctx *ctx, const float *X, int64_t n, int64_t d, int64_t ldx,
                        const int64_t *train, int64_t ntrain, const int64_t *test,
                        int64_t ntest, const rdml_ridge_opts *opts, rdml_ridge_fact **out) {
    *out = NULL;
    return RDML_FAIL(ctx, RDML_EINTERNAL, "ridge: not implemented yet");
}

void rdml_ridge_fact_free(rdml_ridge_fact *f) { free(f); }

int64_t rdml_ridge_fact_dim(const rdml_ridge_fact *f, char which) { return 0; }

int rdml_ridge_fit(rdml_ctx *ctx, const rdml_ridge_fact *f, const float *Y, int64_t ldy,
                   int64_t vb, int64_t col0, rdml_ridge_out *out) {
    return RDML_FAIL(ctx, RDML_EINTERNAL, "ridge: not implemented yet");
}

int64_t rdml_ridge_fit_bytes(const rdml_ridge_fact *f, int64_t vb) { return 0; }
