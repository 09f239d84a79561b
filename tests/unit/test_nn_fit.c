/* rdml_pairnet_fit (src/nn/fit.c), the training loop of `rdmlearn train`: a small siamese
 * network learns a simple target (test R^2 well above 0, the loss falls); two fits with the
 * same inputs are equal bit for bit (predictions, losses, diagnostics); a constructed
 * blow-up (SGD with a huge learning rate) stops the fit as a divergence, not an error, with
 * the epoch and the step; shuffled and block batches both run; a call without a model is an
 * error; the step's threads (one per BLAS thread, run.threads) do not change a fit by a bit:
 * 1, 2 and 3 threads give the same parameters and predictions (siamese with two tower layers,
 * dropout and block batches, 2 gradient shards, per-pair mode; an MLP with two head layers and
 * head dropout). */
#include <cblas.h>
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

/* A network wide enough that the step's pieces (multiples of 16 rows, units and columns) are
 * not empty, on 120 images of 40 dimensions and all their pairs. */
enum { N2 = 120, D2 = 40 };
static float E2[N2 * D2];
static int64_t ij2[N2 * (N2 - 1)];
static double y2[N2 * (N2 - 1) / 2];

typedef struct tfit {
    float param[20000];
    int64_t np;
    double pred[N2 * (N2 - 1) / 2], tl[3];
    int rc;
} tfit;

static void fit_threads(int threads, int kind, tfit *out) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    openblas_set_num_threads(threads);
    const int64_t np = N2 * (N2 - 1) / 2, ntr = np * 4 / 5, nte = np - ntr;
    rdml_pairnet_params p;
    if (kind == 3) {
        rdml_pairnet_mlp_defaults(&p, 1);
        p.head[0] = 48;
        p.head[1] = 40;
        p.head_dropout = 0.25;
    } else {
        rdml_pairnet_defaults(&p);
        p.ntower = 2;
        p.tower[0] = 56;
        p.tower[1] = 40;
        p.head[0] = 72;
        p.tower_dropout = 0.3;
        if (kind == 2) p.mode = RDML_PAIRNET_PERPAIR;
    }
    p.in_dim = D2;
    rdml_pairnet *net = NULL;
    CHECK(rdml_pairnet_create(&ctx, &p, 5, 9, &net) == RDML_OK);
    rdml_optim opt;
    rdml_optim_defaults(&opt);
    opt.lr = 0.003;
    rdml_fit_opts fo = {.epochs = 3, .batch = kind == 2 ? 96 : 600, .blocks = kind == 0, .block_images = 24,
                        .shards = kind == 1 ? 2 : 1, .warmup_epochs = 1, .seed = 5, .key = 9, .n_eval = 500,
                        .eval_train = 1};
    rdml_fit_result res;
    out->rc = rdml_pairnet_fit(&ctx, net, NULL, &opt, &fo, E2, N2, ntr, ij2, y2, nte, ij2 + 2 * ntr, y2 + ntr,
                               out->pred, out->tl, NULL, &res);
    if (out->rc) fprintf(stderr, "fit: %s\n", ctx.msg);
    float *w = rdml_pairnet_params_buf(net, &out->np);
    CHECK(out->np <= 20000);
    memcpy(out->param, w, (size_t)(out->np < 20000 ? out->np : 20000) * sizeof(float));
    rdml_pairnet_free(&net);
}

static void test_threads(void) {
    rdml_rng r = rdml_rng_make(11, 2, 0);
    for (int64_t i = 0; i < N2 * D2; i++) E2[i] = (float)(2 * rdml_rng_uniform(&r) - 1);
    int64_t q = 0;
    for (int64_t i = 0; i < N2; i++)
        for (int64_t j = i + 1; j < N2; j++, q++) {
            ij2[2 * q] = i;
            ij2[2 * q + 1] = j;
            y2[q] = 1 + 0.3 * E2[i * D2] * E2[j * D2] + 0.2 * (E2[i * D2 + 1] + E2[j * D2 + 2]);
        }
    const int64_t nte = q - q * 4 / 5;
    int saved = openblas_get_num_threads();
    static tfit a, b;
    for (int kind = 0; kind < 4; kind++) {
        fit_threads(1, kind, &a);
        CHECK_EQ_I(a.rc, RDML_OK);
        for (int t = 2; t <= 3; t++) {
            fit_threads(t, kind, &b);
            CHECK_EQ_I(b.rc, RDML_OK);
            CHECK(a.np == b.np);
            int same = memcmp(a.param, b.param, (size_t)a.np * sizeof(float)) == 0 &&
                       memcmp(a.pred, b.pred, (size_t)nte * sizeof(double)) == 0 &&
                       memcmp(a.tl, b.tl, sizeof a.tl) == 0;
            if (!same) fprintf(stderr, "kind %d: %d threads differ from 1\n", kind, t);
            CHECK(same);
        }
    }
    openblas_set_num_threads(saved);
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
    RUN(test_threads);
    return test_summary();
}
