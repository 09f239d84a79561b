/* Finite-difference gradient checks for every nn layer (linear, ReLU, sigmoid, dropout,
 * conv2d 3x3, max-pool 2, flatten, concat, MSE, Pearson loss) and for the whole pair network
 * (siamese decomposed and per pair, MLP with 2*sigmoid output and the Pearson mix) and the
 * siamese CNN: the analytic gradient of L = sum(out * R) (R fixed random weights) against
 * central differences, relative error ||g - g_fd|| / ||g_fd|| and per element. Also: backward
 * accumulates, the two pair-network modes agree, dropout masks depend only on their keys,
 * the init bounds are PyTorch's, SGD's arithmetic, the linear learning-rate warm-up; a network whose ReLUs are killed (a whole
 * layer dead) predicts a constant and rdml_pairnet_diagnose / rdml_nn_collapsed flag it. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rdml/nn.h"
#include "test.h"

static rdml_rng g_rng;
static void fill(float *x, int64_t n, double lo, double hi) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * rdml_rng_uniform(&g_rng));
}
/* values with |x| >= 0.2 (ReLU kink away from the finite-difference steps) */
static void fill_away(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        double u = rdml_rng_uniform(&g_rng);
        x[i] = (float)(u < 0.5 ? -0.2 - u : 0.2 + (u - 0.5));
    }
}

typedef double (*lossfn)(void *st);
/* Central differences of f over the n floats at x; compare to g. */
static double fd_check(const char *what, lossfn f, void *st, float *x, int64_t n, const float *g,
                       double eps, double tol) {
    double num2 = 0, diff2 = 0, worst = 0;
    for (int64_t i = 0; i < n; i++) {
        float save = x[i];
        x[i] = (float)(save + eps);
        double fp = f(st);
        x[i] = (float)(save - eps);
        double fm = f(st);
        x[i] = save;
        double gn = (fp - fm) / (2 * eps);
        num2 += gn * gn;
        diff2 += (gn - g[i]) * (gn - g[i]);
        double e = fabs(gn - g[i]) / (fabs(gn) + 1e-2);
        if (e > worst) worst = e;
    }
    double rel = sqrt(diff2) / (sqrt(num2) + 1e-12);
    if (!(rel < tol) || getenv("RDML_TEST_VERBOSE")) fprintf(stderr, "%s: relative gradient error %.3g (worst element %.3g)\n", what, rel, worst);
    CHECK(rel < tol);
    CHECK(num2 > 0);
    return rel;
}

static double dot_d(const float *a, const float *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* ---- linear ---- */
typedef struct { float *x, *w, *b, *out, *R; int64_t B, C, OC; } lin_st;
static double lin_loss(void *p) {
    lin_st *s = p;
    rdml_nn_linear_forward(s->out, s->x, s->w, s->b, s->B, s->C, s->OC);
    return dot_d(s->out, s->R, s->B * s->OC);
}
static void test_linear_grad(void) {
    lin_st s = {0};
    s.B = 5; s.C = 7; s.OC = 4;
    s.x = malloc(35 * 4); s.w = malloc(28 * 4); s.b = malloc(16); s.out = malloc(80); s.R = malloc(80);
    float *dx = calloc(35, 4), *dw = calloc(28, 4), *db = calloc(4, 4);
    fill(s.x, 35, -1, 1); fill(s.w, 28, -1, 1); fill(s.b, 4, -1, 1); fill(s.R, 20, -1, 1);
    lin_loss(&s);
    rdml_nn_linear_backward(dx, dw, db, s.R, s.x, s.w, s.B, s.C, s.OC);
    fd_check("linear dx", lin_loss, &s, s.x, 35, dx, 1e-2, 1e-4);
    fd_check("linear dw", lin_loss, &s, s.w, 28, dw, 1e-2, 1e-4);
    fd_check("linear db", lin_loss, &s, s.b, 4, db, 1e-2, 1e-4);
    /* backward accumulates */
    float before = dw[3];
    rdml_nn_linear_backward(NULL, dw, NULL, s.R, s.x, s.w, s.B, s.C, s.OC);
    CHECK_NEAR(dw[3], 2 * before, 1e-5 * fabs(before) + 1e-6);
    free(s.x); free(s.w); free(s.b); free(s.out); free(s.R); free(dx); free(dw); free(db);
}

/* ---- element-wise: relu, sigmoid, dropout, flatten ---- */
typedef struct { float *x, *out, *R, *mask; int64_t n; int kind; uint64_t *keys; } ew_st;
static double ew_loss(void *p) {
    ew_st *s = p;
    if (s->kind == 0) rdml_nn_relu_forward(s->out, s->x, s->n);
    else if (s->kind == 1) rdml_nn_sigmoid_forward(s->out, s->x, s->n);
    else if (s->kind == 2) rdml_nn_dropout_forward(s->out, s->mask, s->x, 4, s->n / 4, 0.3, 7, s->keys);
    else rdml_nn_flatten_forward(s->out, s->x, s->n);
    return dot_d(s->out, s->R, s->n);
}
static void test_elementwise_grads(void) {
    const char *names[4] = {"relu", "sigmoid", "dropout", "flatten"};
    uint64_t keys[4] = {11, 12, 13, 14};
    for (int kind = 0; kind < 4; kind++) {
        ew_st s = {0};
        s.n = 48; s.kind = kind; s.keys = keys;
        s.x = malloc(48 * 4); s.out = malloc(48 * 4); s.R = malloc(48 * 4); s.mask = malloc(48 * 4);
        float *dx = calloc(48, 4);
        fill_away(s.x, 48); fill(s.R, 48, -1, 1);
        ew_loss(&s);
        if (kind == 0) rdml_nn_relu_backward(dx, s.R, s.out, s.n);
        else if (kind == 1) rdml_nn_sigmoid_backward(dx, s.R, s.out, s.n);
        else if (kind == 2) rdml_nn_dropout_backward(dx, s.R, s.mask, s.n);
        else rdml_nn_flatten_backward(dx, s.R, s.n);
        fd_check(names[kind], ew_loss, &s, s.x, 48, dx, 1e-3, 1e-3);
        free(s.x); free(s.out); free(s.R); free(s.mask); free(dx);
    }
}

static void test_dropout_masks(void) {
    enum { B = 3, C = 20000 };
    float *x = malloc(B * C * 4), *o = malloc(B * C * 4), *m = malloc(B * C * 4), *m2 = malloc(B * C * 4);
    for (int i = 0; i < B * C; i++) x[i] = 1.0f;
    uint64_t k1[B] = {5, 6, 5}, k2[B] = {6, 9, 9};
    rdml_nn_dropout_forward(o, m, x, B, C, 0.5, 42, k1);
    int64_t zeros = 0;
    for (int i = 0; i < C; i++) zeros += m[i] == 0.0f;
    CHECK(fabs((double)zeros / C - 0.5) < 0.02);
    for (int i = 0; i < C; i++) CHECK(m[i] == 0.0f || m[i] == 2.0f);
    CHECK(memcmp(m, m + 2 * C, C * 4) == 0);     /* same key, same mask */
    CHECK(memcmp(m, m + C, C * 4) != 0);         /* other key, other mask */
    rdml_nn_dropout_forward(o, m2, x, B, C, 0.5, 42, k2);
    CHECK(memcmp(m + C, m2, C * 4) == 0);        /* key 6 in another row/batch: same mask */
    rdml_nn_dropout_forward(o, m2, x, B, C, 0.5, 43, k1);
    CHECK(memcmp(m, m2, C * 4) != 0);            /* seed matters */
    rdml_nn_dropout_forward(o, m2, x, B, C, 0.0, 42, k1);
    for (int i = 0; i < B * C; i++) CHECK(m2[i] == 1.0f && o[i] == 1.0f);
    free(x); free(o); free(m); free(m2);
}

/* The fused ReLU + dropout passes of the pair network's step equal the separate kernels, and
 * their masks are exactly rdml_rng_uniform(row stream) < p (the branch-free 64-bit threshold
 * done on 32-bit halves), for rates whose threshold has non-zero low bits too. */
static void test_fused_relu_dropout(void) {
    enum { B = 4, C = 700 };
    static float x[B * C], r[B * C], ref[B * C], m[B * C], fused[B * C], d[B * C], t[B * C], gref[B * C],
        gfused[B * C];
    rdml_rng g = rdml_rng_make(3, 4, 0);
    for (int i = 0; i < B * C; i++) x[i] = (float)(2 * rdml_rng_uniform(&g) - 1);
    x[0] = 0.0f, x[1] = -0.0f, x[2] = NAN, x[3] = 1e-40f; /* zero, -0, NaN, a denormal */
    for (int i = 0; i < B * C; i++) d[i] = (float)(2 * rdml_rng_uniform(&g) - 1);
    uint64_t keys[B] = {11, 12, 11, 99};
    const double ps[] = {0.5, 0.3, 0.1 + 1e-12, 0.9, 0.0};
    for (int pi = 0; pi < 5; pi++) {
        double p = ps[pi];
        float scale = rdml_nn_dropout_scale(p);
        CHECK(scale == (p > 0 ? (float)(1.0 / (1.0 - p)) : 1.0f));
        rdml_nn_relu_forward(r, x, B * C);
        rdml_nn_dropout_forward(ref, m, r, B, C, p, 42, keys);
        /* the masks against the definition */
        int64_t bad = 0;
        for (int b = 0; b < B && p > 0; b++) {
            rdml_rng u = rdml_rng_make(42, rdml_rng_substream(RDML_STREAM_DROPOUT, keys[b]), 0);
            for (int c = 0; c < C; c++) bad += m[b * C + c] != (rdml_rng_uniform(&u) < p ? 0.0f : scale);
        }
        CHECK_EQ_I(bad, 0);
        memcpy(fused, x, sizeof x);
        rdml_nn_relu_dropout_forward(fused, fused, B, C, p, 42, keys); /* in place */
        CHECK(memcmp(fused, ref, sizeof ref) == 0);
        /* backward: dropout then ReLU (accumulating into zeros) against the fused pass */
        memset(t, 0, sizeof t);
        memset(gref, 0, sizeof gref);
        rdml_nn_dropout_backward(t, d, m, B * C);
        rdml_nn_relu_backward(gref, t, r, B * C);
        rdml_nn_relu_dropout_backward(gfused, d, fused, scale, B * C);
        bad = 0;
        for (int i = 0; i < B * C; i++) bad += !(gfused[i] == gref[i]);
        CHECK_EQ_I(bad, 0);
    }
}

/* ---- conv2d, maxpool, concat ---- */
typedef struct { float *x, *w, *b, *out, *R, *col; int64_t B, C, H, W, OC; } conv_st;
static double conv_loss(void *p) {
    conv_st *s = p;
    rdml_nn_conv2d_forward(s->out, s->col, s->x, s->w, s->b, s->B, s->C, s->H, s->W, s->OC, 3);
    return dot_d(s->out, s->R, s->B * s->OC * (s->H - 2) * (s->W - 2));
}
static void test_conv2d_grad(void) {
    conv_st s = {0};
    s.B = 2; s.C = 3; s.H = 7; s.W = 6; s.OC = 4;
    int64_t nx = 2 * 3 * 7 * 6, nw = 4 * 3 * 9, no = 2 * 4 * 5 * 4;
    s.x = malloc(nx * 4); s.w = malloc(nw * 4); s.b = malloc(16); s.out = malloc(no * 4);
    s.R = malloc(no * 4); s.col = malloc(3 * 9 * 20 * 4);
    float *dx = calloc(nx, 4), *dw = calloc(nw, 4), *db = calloc(4, 4);
    fill(s.x, nx, -1, 1); fill(s.w, nw, -1, 1); fill(s.b, 4, -1, 1); fill(s.R, no, -1, 1);
    conv_loss(&s);
    /* direct convolution for one output against im2col + SGEMM */
    double ref = s.b[2];
    for (int c = 0; c < 3; c++)
        for (int ki = 0; ki < 3; ki++)
            for (int kj = 0; kj < 3; kj++)
                ref += (double)s.w[((2 * 3 + c) * 3 + ki) * 3 + kj] * s.x[((1 * 3 + c) * 7 + 3 + ki) * 6 + 1 + kj];
    CHECK_NEAR(s.out[((1 * 4 + 2) * 5 + 3) * 4 + 1], ref, 1e-5);
    rdml_nn_conv2d_backward(dx, dw, db, s.col, s.R, s.x, s.w, s.B, s.C, s.H, s.W, s.OC, 3);
    fd_check("conv2d dx", conv_loss, &s, s.x, nx, dx, 1e-2, 1e-4);
    fd_check("conv2d dw", conv_loss, &s, s.w, nw, dw, 1e-2, 1e-4);
    fd_check("conv2d db", conv_loss, &s, s.b, 4, db, 1e-2, 1e-4);
    free(s.x); free(s.w); free(s.b); free(s.out); free(s.R); free(s.col); free(dx); free(dw); free(db);
}

typedef struct { float *x, *out, *R; } pool_st;
static double pool_loss(void *p) {
    pool_st *s = p;
    rdml_nn_maxpool2_forward(s->out, s->x, 2, 3, 5, 6);
    return dot_d(s->out, s->R, 2 * 3 * 2 * 3);
}
static void test_maxpool_grad(void) {
    pool_st s;
    int64_t nx = 2 * 3 * 5 * 6, no = 2 * 3 * 2 * 3;
    s.x = malloc(nx * 4); s.out = malloc(no * 4); s.R = malloc(no * 4);
    float *dx = calloc(nx, 4);
    /* distinct values at least 0.01 apart so that +-eps never changes a window's maximum */
    int64_t *perm = malloc(nx * sizeof *perm);
    for (int64_t i = 0; i < nx; i++) perm[i] = i;
    rdml_rng_shuffle(&g_rng, perm, nx);
    for (int64_t i = 0; i < nx; i++) s.x[i] = (float)(0.01 * perm[i] - 0.9);
    fill(s.R, no, -1, 1);
    pool_loss(&s);
    CHECK(s.out[0] >= s.x[0] && s.out[0] >= s.x[1] && s.out[0] >= s.x[6] && s.out[0] >= s.x[7]);
    rdml_nn_maxpool2_backward(dx, s.R, s.x, 2, 3, 5, 6);
    fd_check("maxpool2 dx", pool_loss, &s, s.x, nx, dx, 1e-3, 1e-3);
    /* row 5 (odd height) is dropped by the floor: no gradient */
    for (int c = 0; c < 6; c++) CHECK(dx[4 * 6 + c] == 0.0f);
    free(s.x); free(s.out); free(s.R); free(dx); free(perm);
}

typedef struct { float *a, *b, *out, *R; } cat_st;
static double cat_loss(void *p) {
    cat_st *s = p;
    rdml_nn_concat_forward(s->out, s->a, s->b, 3, 4, 2);
    return dot_d(s->out, s->R, 18);
}
static void test_concat_grad(void) {
    cat_st s;
    s.a = malloc(48); s.b = malloc(24); s.out = malloc(72); s.R = malloc(72);
    float *da = calloc(12, 4), *db = calloc(6, 4);
    fill(s.a, 12, -1, 1); fill(s.b, 6, -1, 1); fill(s.R, 18, -1, 1);
    cat_loss(&s);
    CHECK(s.out[6 + 4] == s.b[2] && s.out[6 + 3] == s.a[7]);
    rdml_nn_concat_backward(da, db, s.R, 3, 4, 2);
    fd_check("concat da", cat_loss, &s, s.a, 12, da, 1e-2, 1e-4);
    fd_check("concat db", cat_loss, &s, s.b, 6, db, 1e-2, 1e-4);
    free(s.a); free(s.b); free(s.out); free(s.R); free(da); free(db);
}

/* ---- losses ---- */
typedef struct { float *p, *y; int64_t n; int kind; } loss_st;
static double loss_loss(void *v) {
    loss_st *s = v;
    return s->kind ? rdml_nn_pearson_forward(s->p, s->y, s->n) : rdml_nn_mse_forward(s->p, s->y, s->n);
}
static void test_loss_grads(void) {
    loss_st s;
    s.n = 13; s.p = malloc(13 * 4); s.y = malloc(13 * 4);
    fill(s.p, 13, 0, 2); fill(s.y, 13, 0, 2);
    for (int kind = 0; kind < 2; kind++) {
        s.kind = kind;
        float *d = calloc(13, 4);
        if (kind) rdml_nn_pearson_backward(d, s.p, s.y, 13, 1.0f);
        else rdml_nn_mse_backward(d, s.p, s.y, 13, 1.0f);
        fd_check(kind ? "pearson loss" : "mse loss", loss_loss, &s, s.p, 13, d, 1e-3, 1e-3);
        free(d);
    }
    /* values: MSE by hand; Pearson of y with itself is -1, of 2y+1 too */
    double mse = 0;
    for (int i = 0; i < 13; i++) mse += ((double)s.p[i] - s.y[i]) * ((double)s.p[i] - s.y[i]);
    CHECK_NEAR(rdml_nn_mse_forward(s.p, s.y, 13), mse / 13, 1e-12);
    for (int i = 0; i < 13; i++) s.p[i] = 2 * s.y[i] + 1;
    CHECK_NEAR(rdml_nn_pearson_forward(s.p, s.y, 13), -1.0, 1e-6);
    free(s.p); free(s.y);
}

static void test_init_and_sgd(void) {
    enum { N = 20000 };
    float *w = malloc(N * 4), b[10];
    rdml_rng r = rdml_rng_make(1, RDML_STREAM_INIT, 0);
    rdml_nn_init_uniform(w, N, b, 10, 25, &r);
    double mx = 0, s2 = 0;
    for (int i = 0; i < N; i++) {
        if (fabs(w[i]) > mx) mx = fabs(w[i]);
        s2 += (double)w[i] * w[i];
    }
    CHECK(mx <= 0.2 && mx > 0.199);                    /* bound 1 / sqrt(25) */
    CHECK_NEAR(s2 / N, 0.04 / 3, 0.0005);               /* variance of U(-a, a) = a^2 / 3 */
    for (int i = 0; i < 10; i++) CHECK(fabs(b[i]) <= 0.2);
    rdml_optim o;
    rdml_optim_defaults(&o);
    o.kind = RDML_OPTIM_SGD; o.lr = 0.1; o.momentum = 0.9; o.weight_decay = 0.5;
    float p[1] = {1.0f}, g[1] = {2.0f}, st[2] = {0, 0};
    rdml_optim_update(&o, p, g, st, 1, 1);              /* g' = 2 + 0.5 = 2.5, buf 2.5 */
    CHECK_NEAR(p[0], 1.0 - 0.25, 1e-6);
    rdml_optim_update(&o, p, g, st, 1, 2);              /* g' = 2.375, buf = 2.25 + 2.375 */
    CHECK_NEAR(p[0], 0.75 - 0.1 * (0.9 * 2.5 + 2.375), 1e-6);
    /* linear warm-up over 4 steps: step t uses lr * t / 4, from step 4 on lr */
    CHECK(o.warmup == 0 || !"defaults: no warm-up");
    o.momentum = 0; o.weight_decay = 0; o.warmup = 4;
    const double want[6] = {0.025, 0.05, 0.075, 0.1, 0.1, 0.1};
    for (int t = 1; t <= 6; t++) {
        p[0] = 1.0f;
        rdml_optim_update(&o, p, g, st, 1, t);
        CHECK_NEAR(p[0], 1.0 - want[t - 1] * 2.0, 1e-6);
    }
    /* Adam's first step is lr * sign(g) (bias-corrected m / sqrt(v)); with warm-up lr / warmup */
    o.kind = RDML_OPTIM_ADAM; o.lr = 0.01; o.warmup = 100;
    float pa[2] = {0.5f, 0.5f}, ga[2] = {3.0f, -1e-3f}, sa[4] = {0, 0, 0, 0};
    rdml_optim_update(&o, pa, ga, sa, 2, 1);
    CHECK_NEAR(pa[0], 0.5 - 1e-4, 1e-7);
    CHECK_NEAR(pa[1], 0.5 + 1e-4, 1e-7);
    free(w);
}

/* ---- the whole pair network ---- */
typedef struct { rdml_pairnet *net; float *E, *y; int64_t *ij; int64_t B; int train; } net_st;
static double net_loss(void *v) {
    net_st *s = v;
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    double l = 0;
    int rc = rdml_pairnet_grad(&ctx, s->net, s->E, s->B, s->ij, s->y, s->train, 3, 77, &l);
    CHECK(rc == RDML_OK);
    return l;
}
static void net_check(const char *what, rdml_pairnet_params *pp, int train, double tol) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    enum { N = 6, D = 5, B = 9 };
    float E[N * D], y[B];
    int64_t ij[2 * B];
    fill(E, N * D, -1, 1);
    fill(y, B, 0, 2);
    for (int q = 0; q < B; q++) {
        ij[2 * q] = rdml_rng_below(&g_rng, N);
        ij[2 * q + 1] = (ij[2 * q] + 1 + rdml_rng_below(&g_rng, N - 1)) % N;
    }
    ij[2] = ij[0]; /* repeats: one image in several pairs of the batch */
    pp->in_dim = D;
    rdml_pairnet *net = NULL;
    CHECK(rdml_pairnet_create(&ctx, pp, 5, 0, &net) == RDML_OK);
    if (!net) return;
    int64_t np;
    float *P = rdml_pairnet_params_buf(net, &np);
    /* bigger weights than the init so that pre-activations are well away from zero */
    for (int64_t i = 0; i < np; i++) P[i] *= 2.0f;
    net_st s = {net, E, y, ij, B, train};
    double l0 = net_loss(&s);
    CHECK(isfinite(l0));
    float *g = malloc(np * 4);
    memcpy(g, rdml_pairnet_grads_buf(net), np * 4);
    fd_check(what, net_loss, &s, P, np, g, 1e-3, tol);
    free(g);
    rdml_pairnet_free(&net);
    CHECK(net == NULL);
}
static void test_pairnet_grads(void) {
    rdml_pairnet_params pp;
    rdml_pairnet_defaults(&pp);
    pp.ntower = 2; pp.tower[0] = 6; pp.tower[1] = 4; pp.head[0] = 5;
    pp.tower_dropout = 0.0;
    net_check("siamese decomposed", &pp, 0, 5e-3);
    pp.tower_dropout = 0.5;
    net_check("siamese decomposed, dropout", &pp, 1, 5e-3);
    pp.mode = RDML_PAIRNET_PERPAIR;
    net_check("siamese per pair, dropout", &pp, 1, 5e-3);
    pp.sigmoid_out = 1; pp.pearson_mix = 0.3; pp.mode = RDML_PAIRNET_DECOMPOSED;
    net_check("siamese sigmoid + pearson mix", &pp, 1, 5e-3);
    rdml_pairnet_mlp_defaults(&pp, 2);
    pp.head[0] = 8; pp.head[1] = 4; pp.head[2] = 3; pp.sigmoid_out = 1; pp.head_dropout = 0.25;
    net_check("mlp h=2 sigmoid dropout", &pp, 1, 5e-3);
}

static void test_pairnet_modes_agree(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    enum { N = 10, D = 8, B = 40 };
    float E[N * D], y[B], p1[B], p2[B];
    int64_t ij[2 * B];
    fill(E, N * D, -1, 1);
    fill(y, B, 0, 2);
    for (int q = 0; q < 2 * B; q++) ij[q] = rdml_rng_below(&g_rng, N);
    rdml_pairnet_params pp;
    rdml_pairnet_defaults(&pp);
    pp.in_dim = D; pp.tower[0] = 16; pp.tower[1] = 8; pp.head[0] = 6; pp.tower_dropout = 0.5;
    rdml_pairnet *a = NULL, *b = NULL;
    CHECK(rdml_pairnet_create(&ctx, &pp, 9, 1, &a) == RDML_OK);
    pp.mode = RDML_PAIRNET_PERPAIR;
    CHECK(rdml_pairnet_create(&ctx, &pp, 9, 1, &b) == RDML_OK);
    if (!a || !b) return;
    int64_t n;
    float *pa = rdml_pairnet_params_buf(a, &n), *pb = rdml_pairnet_params_buf(b, &n);
    CHECK(memcmp(pa, pb, n * 4) == 0); /* same (seed, key): same init */
    double la, lb;
    CHECK(rdml_pairnet_grad(&ctx, a, E, B, ij, y, 0, 1, 2, &la) == RDML_OK);
    CHECK(rdml_pairnet_grad(&ctx, b, E, B, ij, y, 0, 1, 2, &lb) == RDML_OK);
    CHECK_NEAR(la, lb, 1e-6 * fabs(la));
    const float *ga = rdml_pairnet_grads_buf(a), *gb = rdml_pairnet_grads_buf(b);
    double d2 = 0, n2 = 0;
    for (int64_t i = 0; i < n; i++) {
        d2 += (double)(ga[i] - gb[i]) * (ga[i] - gb[i]);
        n2 += (double)gb[i] * gb[i];
    }
    CHECK(sqrt(d2 / n2) < 1e-5);
    CHECK(rdml_pairnet_predict(&ctx, a, E, B, ij, p1) == RDML_OK);
    CHECK(rdml_pairnet_predict(&ctx, b, E, B, ij, p2) == RDML_OK);
    for (int q = 0; q < B; q++) CHECK_NEAR(p1[q], p2[q], 1e-5);
    /* another init key gives other weights */
    rdml_pairnet *c = NULL;
    CHECK(rdml_pairnet_create(&ctx, &pp, 9, 2, &c) == RDML_OK);
    if (c) CHECK(memcmp(rdml_pairnet_params_buf(c, NULL), pb, n * 4) != 0);
    /* a NaN target: the step refuses and the weights stay */
    float *save = malloc(n * 4);
    memcpy(save, pa, n * 4);
    rdml_optim o;
    rdml_optim_defaults(&o);
    y[3] = NAN;
    double l;
    CHECK(rdml_pairnet_step(&ctx, a, &o, E, B, ij, y, 1, 2, &l) == RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "diverged");
    CHECK(memcmp(save, pa, n * 4) == 0);
    /* impossible sizes */
    rdml_ctx_clear(&ctx);
    pp.tower[1] = 0;
    rdml_pairnet *d = NULL;
    CHECK(rdml_pairnet_create(&ctx, &pp, 9, 2, &d) == RDML_ECONFIG && d == NULL);
    CHECK_STR_HAS(ctx.msg, "tower layer 2 width 0");
    free(save);
    rdml_pairnet_free(&a);
    rdml_pairnet_free(&b);
    rdml_pairnet_free(&c);
}

/* ---- the CNN ---- */
typedef struct { rdml_cnn *net; float *img, *y; int64_t *ij; int64_t B; } cnn_st;
static double cnn_loss(void *v) {
    cnn_st *s = v;
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    double l = 0;
    CHECK(rdml_cnn_step(&ctx, s->net, NULL, s->img, s->B, s->ij, s->y, &l) == RDML_OK);
    return l;
}
/* batch 1: three pairs of four distinct images; batch 2: image 2 in a pair with itself and
 * images 1 and 3 in both orders (the decomposed step sums g_a and g_b per image) */
static void test_cnn_grad(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_cnn_params cp;
    rdml_cnn_defaults(&cp);
    cp.size = 14; cp.c1 = 3; cp.c2 = 4; cp.sigmoid_out = 1; cp.pearson_mix = 0.5;
    rdml_cnn *net = NULL;
    CHECK(rdml_cnn_create(&ctx, &cp, 3, 0, &net) == RDML_OK);
    if (!net) return;
    float img[4 * 14 * 14], y[6];
    int64_t ij1[6] = {0, 1, 2, 3, 1, 2}, ij2[12] = {2, 2, 1, 3, 3, 1, 0, 1, 1, 1, 3, 0};
    fill(img, 4 * 14 * 14, 0, 1);
    fill(y, 6, 0, 2);
    int64_t np;
    float *P = rdml_cnn_params_buf(net, &np);
    CHECK_EQ_I(np, 3 * 9 + 3 + 4 * 3 * 9 + 4 + 2 * 4 * 2 * 2 + 1);
    float *g = malloc(np * 4);
    cnn_st s = {net, img, y, ij1, 3};
    cnn_loss(&s);
    memcpy(g, rdml_cnn_grads_buf(net), np * 4);
    fd_check("cnn", cnn_loss, &s, P, np, g, 1e-3, 1e-2);
    cnn_st s2 = {net, img, y, ij2, 6};
    cnn_loss(&s2);
    memcpy(g, rdml_cnn_grads_buf(net), np * 4);
    fd_check("cnn repeated images", cnn_loss, &s2, P, np, g, 1e-3, 1e-2);
    free(g);
    rdml_cnn_free(&net);
}

/* ---- collapse: a network driven into a constant output is detected ---- */
static void test_pairnet_collapse(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    enum { N = 12, D = 6, P = 60 };
    float E[N * D], pred[P];
    int64_t ij[2 * P];
    fill(E, N * D, -1, 1);
    for (int q = 0; q < P; q++) {
        ij[2 * q] = q % N;
        ij[2 * q + 1] = (q * 5 + 1) % N;
    }
    rdml_pairnet_params pp;
    rdml_pairnet_defaults(&pp);
    pp.in_dim = D; pp.tower[0] = 8; pp.tower[1] = 6; pp.head[0] = 5; pp.tower_dropout = 0.5;
    rdml_pairnet *net = NULL;
    CHECK(rdml_pairnet_create(&ctx, &pp, 4, 0, &net) == RDML_OK);
    if (!net) return;
    int64_t np;
    float *W = rdml_pairnet_params_buf(net, &np);
    /* offsets in PyTorch's parameter order */
    const int64_t tb0 = 8 * D, tw1 = tb0 + 8, tb1 = tw1 + 6 * 8, hw0 = tb1 + 6, hb0 = hw0 + 5 * 12;
    const int64_t ow = hb0 + 5, ob = ow + 5;
    CHECK(ob + 1 == np);
    /* a healthy network: every unit active somewhere (biases +10), predictions spread */
    for (int k = 0; k < 8; k++) W[tb0 + k] = 10.0f;
    for (int k = 0; k < 6; k++) W[tb1 + k] = 10.0f;
    for (int k = 0; k < 5; k++) W[hb0 + k] = 10.0f;
    rdml_pairnet_health h;
    CHECK(rdml_pairnet_diagnose(&ctx, net, E, P, ij, pred, &h) == RDML_OK);
    CHECK(h.nlayers == 3 && h.width[0] == 8 && h.width[1] == 6 && h.width[2] == 5);
    CHECK(h.units == 19 && h.dead_units == 0 && h.dead_layer == -1);
    CHECK(h.pred_std > 1e-3);
    CHECK(!rdml_nn_collapsed(h.pred_std, 10 * h.pred_std));
    float p2[P];
    CHECK(rdml_pairnet_predict(&ctx, net, E, P, ij, p2) == RDML_OK);
    CHECK(memcmp(pred, p2, sizeof p2) == 0); /* diagnose predicts as predict does */
    /* two tower units killed (bias -1000 >> |w x|): counted, the output still varies */
    W[tb0 + 1] = W[tb0 + 6] = -1000.0f;
    CHECK(rdml_pairnet_diagnose(&ctx, net, E, P, ij, NULL, &h) == RDML_OK);
    CHECK(h.dead[0] == 2 && h.dead[1] == 0 && h.dead[2] == 0 && h.dead_units == 2 && h.dead_layer == -1);
    CHECK(!rdml_nn_collapsed(h.pred_std, 10 * h.pred_std));
    /* every head unit killed: the output is its bias for every pair, detected and flagged */
    for (int k = 0; k < 5; k++) W[hb0 + k] = -1000.0f;
    CHECK(rdml_pairnet_diagnose(&ctx, net, E, P, ij, pred, &h) == RDML_OK);
    CHECK(h.dead[2] == 5 && h.dead_units == 7 && h.dead_layer == 2);
    CHECK(h.pred_std == 0.0);
    CHECK_NEAR(h.pred_mean, W[ob], 1e-6);
    for (int q = 0; q < P; q++) CHECK(pred[q] == W[ob]);
    CHECK(rdml_nn_collapsed(h.pred_std, 0.14));
    /* the last tower layer dead instead: also constant */
    for (int k = 0; k < 5; k++) W[hb0 + k] = 0.1f;
    for (int k = 0; k < 6; k++) W[tb1 + k] = -1000.0f;
    CHECK(rdml_pairnet_diagnose(&ctx, net, E, P, ij, NULL, &h) == RDML_OK);
    CHECK(h.dead_layer == 1 && h.dead[1] == 6 && h.pred_std == 0.0);
    rdml_pairnet_free(&net);
    /* the rule: std <= 1% of the targets' std, or non-finite; constant targets never collapse */
    CHECK(rdml_nn_collapsed(0.0, 0.1));
    CHECK(rdml_nn_collapsed(0.0009, 0.1));
    CHECK(!rdml_nn_collapsed(0.0011, 0.1));
    CHECK(rdml_nn_collapsed(NAN, 0.1));
    CHECK(!rdml_nn_collapsed(0.0, 0.0));
}

int main(void) {
    g_rng = rdml_rng_make(2024, RDML_STREAM_USER, 0);
    RUN(test_linear_grad);
    RUN(test_elementwise_grads);
    RUN(test_dropout_masks);
    RUN(test_fused_relu_dropout);
    RUN(test_conv2d_grad);
    RUN(test_maxpool_grad);
    RUN(test_concat_grad);
    RUN(test_loss_grads);
    RUN(test_init_and_sgd);
    RUN(test_pairnet_grads);
    RUN(test_pairnet_modes_agree);
    RUN(test_pairnet_collapse);
    RUN(test_cnn_grad);
    return test_summary();
}
