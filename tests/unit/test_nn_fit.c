/* rdml_pairnet_fit (src/nn/fit.c), the training loop of `rdmlearn train`: a small siamese
 * network learns a simple target (test R^2 well above 0, the loss falls); two fits with the
 * same inputs are equal bit for bit (predictions, losses, diagnostics); a constructed
 * blow-up (SGD with a huge learning rate) stops the fit as a divergence, not an error, with
 * the epoch and the step; shuffled and block batches both run; a call without a model is an
 * error. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rdml/metrics.h"
#include "rdml/nn.h"
#include "test.h"

enum { N = 48, D = 6 };
static float E[N * D];
static int64_t ij[N * (N - 1)];
static double y[N * (N - 1) / 2];
static int64_t npairs;

/* Images with random embeddings; the target of a pair is a_0 + b_0 + 0.5 a_1 b_1. */
static void make_data(void) {
    rdml_rng r = rdml_rng_make(7, 1, 0);
    for (int64_t i = 0; i < N * D; i++) E[i] = (float)(2 * rdml_rng_uniform(&r) - 1);
    npairs = 0;
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = i + 1; j < N; j++) {
            ij[2 * npairs] = i;
            ij[2 * npairs + 1] = j;
            y[npairs] = E[i * D] + E[j * D] + 0.5 * E[i * D + 1] * E[j * D + 1];
            npairs++;
        }
}

static rdml_pairnet *small_net(rdml_ctx *ctx, uint64_t key) {
    rdml_pairnet_params p;
    rdml_pairnet_defaults(&p);
    p.in_dim = D;
    p.ntower = 1;
    p.tower[0] = 16;
    p.nhead = 1;
    p.head[0] = 8;
    p.tower_dropout = 0.2;
    rdml_pairnet *net = NULL;
    CHECK(rdml_pairnet_create(ctx, &p, 3, key, &net) == RDML_OK);
    return net;
}

typedef struct run {
    double pred[N * (N - 1) / 2], tl[40], vl[40];
    rdml_fit_result res;
    int rc;
} run;

/* Train on the first ntr pairs, test on the rest. */
static void fit_once(rdml_optim *opt, int64_t epochs, int blocks, run *out) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    const int64_t ntr = npairs * 3 / 4, nte = npairs - ntr;
    for (int64_t q = 0; q < nte; q++) out->pred[q] = NAN;
    rdml_pairnet *net = small_net(&ctx, 11);
    rdml_fit_opts fo = {.epochs = epochs, .batch = 64, .blocks = blocks, .block_images = 8,
                        .seed = 3, .key = 11, .n_eval = ntr, .eval_train = 1};
    out->rc = rdml_pairnet_fit(&ctx, net, NULL, opt, &fo, E, N, ntr, ij, y, nte, ij + 2 * ntr,
                               y + ntr, out->pred, out->tl, out->vl, &out->res);
    if (out->rc) fprintf(stderr, "fit: %s\n", ctx.msg);
    rdml_pairnet_free(&net);
}

static void test_learns(void) {
    rdml_optim opt;
    rdml_optim_defaults(&opt);
    opt.lr = 0.01;
    static run a;
    fit_once(&opt, 30, 0, &a);
    CHECK_EQ_I(a.rc, RDML_OK);
    CHECK_EQ_I(a.res.stop_kind, RDML_FIT_FINISHED);
    CHECK_EQ_I(a.res.epochs_done, 30);
    const int64_t ntr = npairs * 3 / 4, nte = npairs - ntr;
    double r2 = rdml_metrics_r2(nte, y + ntr, a.pred);
    if (!(r2 > 0.6)) fprintf(stderr, "test R^2 %.3f\n", r2);
    CHECK(r2 > 0.6);
    CHECK(a.res.train_r2 > 0.6);
    CHECK(a.tl[29] < 0.5 * a.tl[0]); /* the training loss falls */
    CHECK(a.vl[29] < a.vl[0]);
    CHECK(isfinite(a.res.train_spread) && a.res.train_spread > 0.3); /* not collapsed */
    CHECK(a.res.units == 16 + 8);
    CHECK(a.res.pairs_per_s > 0);
}

static void test_deterministic(void) {
    rdml_optim opt;
    rdml_optim_defaults(&opt);
    opt.lr = 0.01;
    static run a, b, c;
    fit_once(&opt, 5, 0, &a);
    fit_once(&opt, 5, 0, &b);
    const int64_t nte = npairs - npairs * 3 / 4;
    CHECK_EQ_I(a.rc, RDML_OK);
    CHECK(memcmp(a.pred, b.pred, (size_t)nte * sizeof a.pred[0]) == 0);
    CHECK(memcmp(a.tl, b.tl, 5 * sizeof a.tl[0]) == 0);
    CHECK(memcmp(a.vl, b.vl, 5 * sizeof a.vl[0]) == 0);
    CHECK(memcmp(&a.res.train_r2, &b.res.train_r2, sizeof(double)) == 0);
    /* block batches: deterministic too, and a different batch order than shuffled pairs */
    fit_once(&opt, 5, 1, &b);
    fit_once(&opt, 5, 1, &c);
    CHECK_EQ_I(b.rc, RDML_OK);
    CHECK(memcmp(b.pred, c.pred, (size_t)nte * sizeof b.pred[0]) == 0);
    CHECK(memcmp(a.pred, b.pred, (size_t)nte * sizeof a.pred[0]) != 0);
}

static void test_divergence_stops(void) {
    rdml_optim opt;
    rdml_optim_defaults(&opt);
    opt.kind = RDML_OPTIM_SGD;
    opt.lr = 1e12; /* every step overshoots further: the loss overflows within a few steps */
    static run a;
    fit_once(&opt, 20, 0, &a);
    CHECK_EQ_I(a.rc, RDML_OK); /* a divergence is a result, not an error */
    CHECK_EQ_I(a.res.stop_kind, RDML_FIT_DIVERGED_LOSS);
    CHECK(a.res.stop_epoch >= 1 && a.res.stop_epoch <= 20);
    CHECK(a.res.stop_step >= 1);
    CHECK(!isfinite(a.res.stop_value) || a.res.stop_value > 3.0e38);
    CHECK(a.res.epochs_done < 20);
    CHECK(isnan(a.pred[0])); /* the predictions are left alone */
    CHECK(isnan(a.res.train_r2));
}

static void test_needs_a_model(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_optim opt;
    rdml_optim_defaults(&opt);
    rdml_fit_opts fo = {.epochs = 1, .batch = 8};
    rdml_fit_result res;
    double pred[4];
    CHECK(rdml_pairnet_fit(&ctx, NULL, NULL, &opt, &fo, E, N, 4, ij, y, 4, ij, y, pred, NULL, NULL,
                           &res) != RDML_OK);
    CHECK_STR_HAS(ctx.msg, "rdml_pairnet_fit");
}

int main(void) {
    make_data();
    RUN(test_learns);
    RUN(test_deterministic);
    RUN(test_divergence_stops);
    RUN(test_needs_a_model);
    return test_summary();
}
