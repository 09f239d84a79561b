/* The siamese CNN's pair decomposition against a straightforward per-pair computation written
 * here from the layer kernels (conv2d, relu, maxpool2, concat, linear, sigmoid and the losses
 * of layers.c: both branches run for every pair, as the paper's PyTorch code batches them):
 * loss, predictions and gradients of rdml_cnn_step for linear and 2 * sigmoid outputs and
 * pearson_mix 0 and 0.5, on batches with a pair (i, i) and repeated images, and a second
 * larger batch (the workspace grows); rdml_cnn_predict against the per-pair forward, in chunks
 * of images and under a memory limit; the memory-limit error (numbers and hint; nothing
 * leaks) and a negative image row; the fused bias + ReLU + max-pool kernel against the
 * unfused ones on tied values. The finite-difference check is in test_nn.c. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rdml/nn.h"
#include "test.h"

static rdml_rng g_rng;
static void fill(float *x, int64_t n, double lo, double hi) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * rdml_rng_uniform(&g_rng));
}

/* geometry and parameter offsets of the documented buffer order */
typedef struct {
    int64_t S, C1, C2, O1, P1, O2, P2, F;
    int64_t w1, b1, w2, b2, wd, bd, np;
} geo;
static geo geo_of(int64_t S, int64_t C1, int64_t C2) {
    geo g = {S, C1, C2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    g.O1 = S - 2; g.P1 = g.O1 / 2; g.O2 = g.P1 - 2; g.P2 = g.O2 / 2; g.F = C2 * g.P2 * g.P2;
    g.b1 = C1 * 9; g.w2 = g.b1 + C1; g.b2 = g.w2 + C2 * C1 * 9; g.wd = g.b2 + C2;
    g.bd = g.wd + 2 * g.F; g.np = g.bd + 1;
    return g;
}

/* one branch's activations */
typedef struct { float *c1, *p1, *c2, *f; } branch;
static branch branch_alloc(const geo *g) {
    branch b = {malloc(g->C1 * g->O1 * g->O1 * 4), malloc(g->C1 * g->P1 * g->P1 * 4),
                malloc(g->C2 * g->O2 * g->O2 * 4), malloc(g->F * 4)};
    return b;
}
static void branch_free(branch *b) { free(b->c1); free(b->p1); free(b->c2); free(b->f); }

static void ref_forward(const geo *g, const float *P, const float *x, branch *a, float *col) {
    rdml_nn_conv2d_forward(a->c1, col, x, P + g->w1, P + g->b1, 1, 1, g->S, g->S, g->C1, 3);
    rdml_nn_relu_forward(a->c1, a->c1, g->C1 * g->O1 * g->O1);
    rdml_nn_maxpool2_forward(a->p1, a->c1, 1, g->C1, g->O1, g->O1);
    rdml_nn_conv2d_forward(a->c2, col, a->p1, P + g->w2, P + g->b2, 1, g->C1, g->P1, g->P1, g->C2, 3);
    rdml_nn_relu_forward(a->c2, a->c2, g->C2 * g->O2 * g->O2);
    rdml_nn_maxpool2_forward(a->f, a->c2, 1, g->C2, g->O2, g->O2);
}

/* gradients of one branch given d f; accumulates into G */
static void ref_backward(const geo *g, const float *P, float *G, const float *x, const branch *a,
                         const float *df, float *col) {
    int64_t n2 = g->C2 * g->O2 * g->O2, n1 = g->C1 * g->O1 * g->O1, m1 = g->C1 * g->P1 * g->P1;
    float *t2 = calloc(n2, 4), *d2 = calloc(n2, 4), *dp1 = calloc(m1, 4), *t1 = calloc(n1, 4),
          *d1 = calloc(n1, 4);
    rdml_nn_maxpool2_backward(t2, df, a->c2, 1, g->C2, g->O2, g->O2);
    rdml_nn_relu_backward(d2, t2, a->c2, n2);
    rdml_nn_conv2d_backward(dp1, G + g->w2, G + g->b2, col, d2, a->p1, P + g->w2, 1, g->C1, g->P1,
                            g->P1, g->C2, 3);
    rdml_nn_maxpool2_backward(t1, dp1, a->c1, 1, g->C1, g->O1, g->O1);
    rdml_nn_relu_backward(d1, t1, a->c1, n1);
    rdml_nn_conv2d_backward(NULL, G + g->w1, G + g->b1, col, d1, x, P + g->w1, 1, 1, g->S, g->S,
                            g->C1, 3);
    free(t2); free(d2); free(dp1); free(t1); free(d1);
}

/* Both branches per pair: predictions, loss and (G != NULL) the gradient. */
static double ref_step(const geo *g, const float *P, const float *imgs, int64_t B, const int64_t *ij,
                       const float *y, int sig, double mix, float *pred, float *G) {
    int64_t S2 = g->S * g->S, colsz = 9 * g->O1 * g->O1;
    if (g->C1 * 9 * g->O2 * g->O2 > colsz) colsz = g->C1 * 9 * g->O2 * g->O2;
    float *col = malloc(colsz * 4), *cat = malloc(B * 2 * g->F * 4), *out = calloc(B, 4);
    branch *br = malloc(2 * B * sizeof *br);
    for (int64_t q = 0; q < B; q++)
        for (int k = 0; k < 2; k++) {
            br[2 * q + k] = branch_alloc(g);
            ref_forward(g, P, imgs + ij[2 * q + k] * S2, &br[2 * q + k], col);
        }
    for (int64_t q = 0; q < B; q++) {
        rdml_nn_concat_forward(cat + q * 2 * g->F, br[2 * q].f, br[2 * q + 1].f, 1, g->F, g->F);
        rdml_nn_linear_forward(out + q, cat + q * 2 * g->F, P + g->wd, P + g->bd, 1, 2 * g->F, 1);
    }
    if (sig) {
        rdml_nn_sigmoid_forward(pred, out, B);
        for (int64_t q = 0; q < B; q++) pred[q] *= 2;
    } else {
        memcpy(pred, out, B * 4);
    }
    double loss = 0;
    if (mix < 1) loss += (1 - mix) * rdml_nn_mse_forward(pred, y, B);
    if (mix > 0) loss += mix * rdml_nn_pearson_forward(pred, y, B);
    if (G) {
        float *dpred = calloc(B, 4), *dout = calloc(B, 4), *half = malloc(B * 4),
              *dcat = malloc(2 * g->F * 4), *da = calloc(g->F, 4), *db = calloc(g->F, 4);
        memset(G, 0, g->np * 4);
        if (mix < 1) rdml_nn_mse_backward(dpred, pred, y, B, (float)(1 - mix));
        if (mix > 0) rdml_nn_pearson_backward(dpred, pred, y, B, (float)mix);
        if (sig) {
            for (int64_t q = 0; q < B; q++) { half[q] = pred[q] / 2; dpred[q] *= 2; }
            rdml_nn_sigmoid_backward(dout, dpred, half, B);
        } else {
            memcpy(dout, dpred, B * 4);
        }
        for (int64_t q = 0; q < B; q++) {
            memset(dcat, 0, 2 * g->F * 4);
            rdml_nn_linear_backward(dcat, G + g->wd, G + g->bd, dout + q, cat + q * 2 * g->F, P + g->wd,
                                    1, 2 * g->F, 1);
            memset(da, 0, g->F * 4);
            memset(db, 0, g->F * 4);
            rdml_nn_concat_backward(da, db, dcat, 1, g->F, g->F);
            ref_backward(g, P, G, imgs + ij[2 * q] * S2, &br[2 * q], da, col);
            ref_backward(g, P, G, imgs + ij[2 * q + 1] * S2, &br[2 * q + 1], db, col);
        }
        free(dpred); free(dout); free(half); free(dcat); free(da); free(db);
    }
    for (int64_t k = 0; k < 2 * B; k++) branch_free(&br[k]);
    free(br); free(col); free(cat); free(out);
    return loss;
}

/* The fused bias + ReLU + max-pool against add, relu_forward, maxpool2_forward and their
 * backwards, on odd sizes (5 x 7: the last row and column are dropped) and values with many
 * ties (from {-1, 0, 0.5, 1} minus the bias): same outputs, same gradients. */
static void test_relu_maxpool_fused(void) {
    enum { B = 2, C = 3, H = 5, W = 7, PH = 2, PW = 3, N = B * C * H * W, M = B * C * PH * PW };
    static const float lv[4] = {-1.0f, 0.0f, 0.5f, 1.0f};
    float b[C] = {0.25f, -0.5f, 0.0f}, x[N], xb[N], r[N], ref[M], out[M], dout[M];
    float dref[N], t[N], dfused[N];
    uint8_t arg[M];
    for (int i = 0; i < N; i++) {
        x[i] = lv[(int)(4 * rdml_rng_uniform(&g_rng))] - b[(i / (H * W)) % C];
        xb[i] = x[i] + b[(i / (H * W)) % C];
    }
    fill(dout, M, -1, 1);
    rdml_nn_relu_forward(r, xb, N);
    rdml_nn_maxpool2_forward(ref, r, B, C, H, W);
    rdml_nn_relu_maxpool2_forward(out, arg, x, b, B, C, H, W);
    int same = 1, ties = 0;
    for (int i = 0; i < M; i++) same &= out[i] == ref[i];
    CHECK(same);
    memset(t, 0, sizeof t);
    memset(dref, 0, sizeof dref);
    memset(dfused, 0, sizeof dfused);
    rdml_nn_maxpool2_backward(t, dout, r, B, C, H, W);
    rdml_nn_relu_backward(dref, t, r, N);
    rdml_nn_relu_maxpool2_backward(dfused, dout, out, arg, B, C, H, W);
    same = 1;
    for (int i = 0; i < N; i++) same &= dfused[i] == dref[i];
    CHECK(same);
    for (int bc = 0; bc < B * C; bc++) /* the data has positive windows with tied maxima */
        for (int y = 0; y < PH; y++)
            for (int q = 0; q < PW; q++) {
                const float *w0 = xb + (bc * H + 2 * y) * W + 2 * q;
                float v[4] = {w0[0], w0[1], w0[W], w0[W + 1]}, m = v[0];
                int k = 0;
                for (int j = 1; j < 4; j++) m = v[j] > m ? v[j] : m;
                for (int j = 0; j < 4; j++) k += v[j] == m;
                ties += m > 0 && k > 1;
            }
    CHECK(ties > 0);
}

/* max |a - b| / max |b| and ||a - b|| / ||b|| */
static void rel_err(const float *a, const float *b, int64_t n, double *emax, double *enorm) {
    double m = 0, d = 0, d2 = 0, b2 = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (fabs(b[i]) > m) m = fabs(b[i]);
        if (e > d) d = e;
        d2 += e * e;
        b2 += (double)b[i] * b[i];
    }
    *emax = m > 0 ? d / m : d;
    *enorm = b2 > 0 ? sqrt(d2 / b2) : sqrt(d2);
}

/* Two steps (without update) on two batches of N = 7 images of 18 x 18: the first has a pair
 * (i, i) and images repeated in both orders, the second touches more images (workspace
 * grows); then predict on a third set of pairs. */
static void decomposed_case(int sig, double mix) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_cnn_params cp;
    rdml_cnn_defaults(&cp);
    cp.size = 18; cp.c1 = 3; cp.c2 = 4; cp.sigmoid_out = sig; cp.pearson_mix = mix;
    geo g = geo_of(18, 3, 4);
    rdml_cnn *net = NULL;
    CHECK(rdml_cnn_create(&ctx, &cp, 11, (uint64_t)(2 * sig + (mix > 0)), &net) == RDML_OK);
    if (!net) return;
    int64_t np = 0;
    float *P = rdml_cnn_params_buf(net, &np);
    CHECK_EQ_I(np, g.np);
    if (sig) rdml_cnn_set_output_bias(net, 1.0);
    enum { N = 7 };
    float imgs[N * 18 * 18], y[12], pred[12], pref[12], *G = malloc(g.np * 4);
    fill(imgs, N * 18 * 18, 0, 1);
    fill(y, 12, 0, 2);
    int64_t ij1[2 * 6] = {4, 4, 1, 4, 4, 1, 1, 2, 2, 4, 1, 1};
    int64_t ij2[2 * 12] = {0, 1, 2, 3, 4, 5, 6, 0, 5, 5, 3, 1, 2, 6, 1, 0, 4, 2, 6, 6, 3, 5, 0, 4};
    const int64_t *ijs[2] = {ij1, ij2};
    int64_t Bs[2] = {6, 12};
    for (int b = 0; b < 2; b++) {
        double loss = 0, lref = ref_step(&g, P, imgs, Bs[b], ijs[b], y, sig, mix, pref, G);
        CHECK(rdml_cnn_step(&ctx, net, NULL, imgs, Bs[b], ijs[b], y, &loss) == RDML_OK);
        CHECK_NEAR(loss, lref, 1e-6 * (1 + fabs(lref)));
        double emax, enorm;
        rel_err(rdml_cnn_grads_buf(net), G, g.np, &emax, &enorm);
        if (!(emax < 1e-5 && enorm < 1e-5) || getenv("RDML_TEST_VERBOSE"))
            fprintf(stderr, "sig %d mix %.1f batch %d: loss %.8g vs %.8g, gradient error max %.3g "
                    "norm %.3g\n", sig, mix, b, loss, lref, emax, enorm);
        CHECK(emax < 1e-5);
        CHECK(enorm < 1e-5);
        /* every parameter block gets gradient (no branch silently skipped) */
        double nb[6] = {0};
        int64_t off[7] = {g.w1, g.b1, g.w2, g.b2, g.wd, g.bd, g.np};
        for (int k = 0; k < 6; k++)
            for (int64_t i = off[k]; i < off[k + 1]; i++) nb[k] += fabs(rdml_cnn_grads_buf(net)[i]);
        for (int k = 0; k < 6; k++) CHECK(nb[k] > 0);
        CHECK(rdml_cnn_predict(&ctx, net, imgs, Bs[b], ijs[b], pred) == RDML_OK);
        rel_err(pred, pref, Bs[b], &emax, &enorm);
        CHECK(emax < 1e-6);
    }
    /* an optimiser step changes the parameters; the next step's loss is the reference's at
     * the new parameters */
    rdml_optim opt;
    rdml_optim_defaults(&opt);
    double l0 = 0, l1 = 0;
    CHECK(rdml_cnn_step(&ctx, net, &opt, imgs, 12, ij2, y, &l0) == RDML_OK);
    CHECK(rdml_cnn_step(&ctx, net, NULL, imgs, 12, ij2, y, &l1) == RDML_OK);
    double lref = ref_step(&g, P, imgs, 12, ij2, y, sig, mix, pref, NULL);
    CHECK_NEAR(l1, lref, 1e-6 * (1 + fabs(lref)));
    CHECK(l1 != l0);
    free(G);
    rdml_cnn_free(&net);
}

static void test_cnn_decomposed_vs_perpair(void) {
    decomposed_case(0, 0.0);
    decomposed_case(0, 0.5);
    decomposed_case(1, 0.0);
    decomposed_case(1, 0.5);
}

/* 70 images (more than one 64-image chunk), 150 pairs with repeats and (i, i); again under
 * a memory limit that allows 5 images at a time */
static void test_cnn_predict_chunks(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_cnn_params cp;
    rdml_cnn_defaults(&cp);
    cp.size = 14; cp.c1 = 2; cp.c2 = 3; cp.sigmoid_out = 1;
    geo g = geo_of(14, 2, 3);
    enum { N = 70, NP = 150 };
    float *imgs = malloc(N * 14 * 14 * 4), pred[NP], pref[NP], y[NP];
    int64_t ij[2 * NP];
    fill(imgs, N * 14 * 14, 0, 1);
    fill(y, NP, 0, 2);
    for (int64_t q = 0; q < NP; q++) {
        ij[2 * q] = (q * 37) % N;
        ij[2 * q + 1] = q % 10 == 0 ? ij[2 * q] : (q * 11 + 5) % N;
    }
    for (int lim = 0; lim < 2; lim++) {
        cp.max_bytes = lim ? rdml_cnn_bytes_fixed(&cp) + 5 * rdml_cnn_bytes_per_image(&cp) + 10 : 0;
        rdml_cnn *net = NULL;
        CHECK(rdml_cnn_create(&ctx, &cp, 5, 1, &net) == RDML_OK);
        if (!net) break;
        float *P = rdml_cnn_params_buf(net, NULL);
        CHECK(rdml_cnn_predict(&ctx, net, imgs, NP, ij, pred) == RDML_OK);
        ref_step(&g, P, imgs, NP, ij, y, 1, 0.0, pref, NULL);
        double emax, enorm;
        rel_err(pred, pref, NP, &emax, &enorm);
        CHECK(emax < 1e-6);
        /* under the limit a step on 6 distinct images fails, one on 5 works */
        int64_t ij6[6] = {0, 1, 2, 3, 4, 5}, ij5[6] = {0, 1, 2, 3, 4, 4};
        double loss;
        CHECK(rdml_cnn_step(&ctx, net, NULL, imgs, 3, ij5, y, &loss) == RDML_OK);
        int rc = rdml_cnn_step(&ctx, net, NULL, imgs, 3, ij6, y, &loss);
        CHECK(lim ? rc == RDML_ENOMEM : rc == RDML_OK);
        rdml_ctx_clear(&ctx);
        rdml_cnn_free(&net);
    }
    free(imgs);
}

/* The error names the batch's distinct images, the bytes (independent formula: per image
 * (C1 P1^2 + F) floats and bytes; scratch im2col, conv output, d pool1, d features and one
 * row of conv1 windows), the limit and the hint; a first, failing step allocates nothing that
 * leaks and the network still works with a smaller batch. */
static void test_cnn_memory_limit(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_cnn_params cp;
    rdml_cnn_defaults(&cp);
    int64_t per = (32 * 63 * 63 + 64 * 30 * 30) * 5;
    int64_t fixed = (288 * 61 * 61 + 32 * 126 * 126 + 32 * 63 * 63 + 64 * 30 * 30 + 63) * 4 + 63 * 8;
    CHECK_EQ_I(rdml_cnn_bytes_per_image(&cp), per);
    CHECK_EQ_I(rdml_cnn_bytes_fixed(&cp), fixed);
    cp.max_bytes = 1000000000; /* 1 GB: 1200 images need 1.11 GB */
    rdml_cnn *net = NULL;
    CHECK(rdml_cnn_create(&ctx, &cp, 1, 0, &net) == RDML_OK);
    if (!net) return;
    enum { B = 600 };
    int64_t *ij = malloc(2 * B * sizeof *ij);
    float *y = calloc(B, 4), img1 = 0;
    for (int64_t k = 0; k < 2 * B; k++) ij[k] = k; /* 1200 distinct images */
    double loss = 0;
    /* the limit is checked before any image is read: a 1-float image buffer is enough */
    CHECK(rdml_cnn_step(&ctx, net, NULL, &img1, B, ij, y, &loss) == RDML_ENOMEM);
    char want[200];
    snprintf(want, sizeof want, "1200 distinct 128x128 images needs %.2f GB of activations (%.2f MB "
             "per image + %.1f MB of scratch)", (1200.0 * per + fixed) / 1e9, per / 1e6, fixed / 1e6);
    CHECK_STR_HAS(ctx.msg, want);
    CHECK_STR_HAS(ctx.msg, "1.11 GB of activations (0.92 MB per image");
    CHECK_STR_HAS(ctx.msg, "train.max_memory_gb allows 1.00 GB per rank");
    CHECK_STR_HAS(ctx.msg, "hint: lower train.block_images or train.batch, or raise train.max_memory_gb");
    rdml_ctx_clear(&ctx);
    /* a negative image row is a data error, not a crash */
    ij[3] = -2;
    CHECK(rdml_cnn_step(&ctx, net, NULL, &img1, 2, ij, y, &loss) == RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "pair 1 names image row -2");
    rdml_ctx_clear(&ctx);
    /* predict under a limit below one image */
    rdml_cnn_free(&net);
    cp.max_bytes = fixed;
    CHECK(rdml_cnn_create(&ctx, &cp, 1, 0, &net) == RDML_OK);
    float p = 0;
    int64_t ij0[2] = {0, 0};
    CHECK(rdml_cnn_predict(&ctx, net, &img1, 1, ij0, &p) == RDML_ENOMEM);
    CHECK_STR_HAS(ctx.msg, "1 distinct 128x128 images");
    rdml_ctx_clear(&ctx);
    cp.max_bytes = -1;
    rdml_cnn *bad = NULL;
    CHECK(rdml_cnn_create(&ctx, &cp, 1, 0, &bad) == RDML_ECONFIG && bad == NULL);
    CHECK_STR_HAS(ctx.msg, "train.max_memory_gb");
    free(ij);
    free(y);
    rdml_cnn_free(&net);
}

int main(void) {
    g_rng = rdml_rng_make(77, RDML_STREAM_USER, 0);
    RUN(test_relu_maxpool_fused);
    RUN(test_cnn_decomposed_vs_perpair);
    RUN(test_cnn_predict_chunks);
    RUN(test_cnn_memory_limit);
    return test_summary();
}
