/* src/cv (rdml/cv.h), the model-independent cross-validation: the nested grid search calls
 * the fit-and-score callback once per (setting, inner fold) with that inner fold's pairs
 * (image-disjoint), stores the scores setting-major and picks the best mean (first on ties,
 * NaN last); a failing callback names the setting and the inner fold; the chance levels: the
 * training mean summed in order, and the shuffled targets a permutation that depends only on
 * (seed, fold); the outer folds of a split and their inner folds. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rdml/cv.h"
#include "rdml/pairs.h"
#include "test.h"

enum { N = 12 };
static int64_t ij[N * (N - 1)], npairs;
static double target[N * (N - 1) / 2];

static void make_pairs(void) {
    npairs = 0;
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = i + 1; j < N; j++) {
            ij[2 * npairs] = i;
            ij[2 * npairs + 1] = j;
            target[npairs] = (double)(i + j);
            npairs++;
        }
}

typedef struct calls {
    int n;
    int64_t fold[N];     /* image -> inner fold */
    int bad_setting;     /* fail at this setting (-1: never) */
} calls;

/* score = setting 1 best on average; checks that the pairs are the inner fold's */
static int fit_score(rdml_ctx *ctx, void *user, int64_t s, int64_t k, const int64_t *tr,
                     int64_t ntr, const int64_t *te, int64_t nte, double *score) {
    calls *c = user;
    c->n++;
    for (int64_t q = 0; q < ntr; q++)
        CHECK(c->fold[ij[2 * tr[q]]] != k && c->fold[ij[2 * tr[q] + 1]] != k);
    for (int64_t q = 0; q < nte; q++)
        CHECK(c->fold[ij[2 * te[q]]] == k && c->fold[ij[2 * te[q] + 1]] == k);
    if (s == c->bad_setting) return RDML_FAIL(ctx, RDML_EDATA, "toy failure");
    *score = s == 1 ? 1.0 : s == 2 ? NAN : (double)k * 0.1;
    return RDML_OK;
}

static void test_grid_search(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    calls c = {0};
    c.bad_setting = -1;
    int8_t use[N];
    for (int i = 0; i < N; i++) use[i] = 1;
    CHECK_EQ_I(rdml_cv_inner_folds(&ctx, N, use, 3, 42, 0, c.fold), RDML_OK);
    double scores[3 * 3];
    int64_t chosen = -1;
    CHECK_EQ_I(rdml_cv_grid_search(&ctx, 3, 3, npairs, ij, c.fold, NULL, fit_score, &c, scores,
                                   &chosen), RDML_OK);
    CHECK_EQ_I(c.n, 9);
    CHECK_EQ_I(chosen, 1);                  /* mean 1.0 beats 0.1; NaN ranks last */
    CHECK_NEAR(scores[0 * 3 + 2], 0.2, 1e-15); /* setting-major: scores[s * K + k] */
    CHECK(isnan(scores[2 * 3 + 0]));
    /* an error names the setting and the inner fold, and stops the search */
    c.n = 0;
    c.bad_setting = 2;
    CHECK(rdml_cv_grid_search(&ctx, 3, 3, npairs, ij, c.fold, NULL, fit_score, &c, scores, &chosen) ==
          RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "grid setting 2, inner fold 0");
    CHECK_STR_HAS(ctx.msg, "toy failure");
    CHECK_EQ_I(c.n, 3);
}

static void test_chance(void) {
    int64_t tr[3] = {0, 5, 9};
    CHECK(rdml_cv_train_mean(target, tr, 3) == (target[0] + target[5] + target[9]) / 3.0);
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    double y[20], a[20], b[20], c[20];
    for (int i = 0; i < 20; i++) y[i] = i;
    CHECK_EQ_I(rdml_cv_shuffled_targets(&ctx, 7, 3, 20, y, a), RDML_OK);
    CHECK_EQ_I(rdml_cv_shuffled_targets(&ctx, 7, 3, 20, y, b), RDML_OK);
    CHECK_EQ_I(rdml_cv_shuffled_targets(&ctx, 7, 4, 20, y, c), RDML_OK);
    CHECK(memcmp(a, b, sizeof a) == 0);     /* a function of (seed, fold) */
    CHECK(memcmp(a, c, sizeof a) != 0);
    double sum = 0;
    int moved = 0;
    for (int i = 0; i < 20; i++) {
        sum += a[i];
        moved += a[i] != y[i];
    }
    CHECK(sum == 190.0 && moved > 10);      /* a permutation that moves most targets */
}

static void test_folds(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_pairs P;
    memset(&P, 0, sizeof P);
    P.n = npairs;
    P.ij = ij;
    P.value = target;
    rdml_split_params sp;
    rdml_split_defaults(&sp);
    sp.folds = 3;
    rdml_split S;
    memset(&S, 0, sizeof S);
    CHECK_EQ_I(rdml_split_make(&ctx, &sp, N, &P, &S), RDML_OK);
    rdml_cv_folds F;
    CHECK_EQ_I(rdml_cv_folds_make(&ctx, &S, &P, 2, 42, NULL, NULL, NULL, &F), RDML_OK);
    CHECK_EQ_I(F.nf, 3);
    for (int64_t f = 0; f < F.nf; f++) {
        CHECK(F.ntr[f] > 0 && F.nte[f] > 0);
        for (int64_t u = 0; u < N; u++) /* inner folds only on the outer training images */
            CHECK((S.fold[u] == f) == (F.ifold[f * N + u] < 0));
    }
    rdml_cv_folds_free(&F);
    rdml_split_free(&S);
}

int main(void) {
    make_pairs();
    RUN(test_grid_search);
    RUN(test_chance);
    RUN(test_folds);
    return test_summary();
}
