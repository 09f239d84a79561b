/* The pair networks against PyTorch (fixtures from tools/make_nn_fixtures.py): starting from
 * PyTorch's initial weights (loaded into rdml's parameter buffer, which has PyTorch's
 * parameters() order), the same 20 batches with dropout off give the same per-step losses and
 * final weights within 1e-4 relative, for the siamese network (decomposed AND per-pair
 * batching), the MLP (2*sigmoid output, Adam with weight decay) and the siamese CNN (2*sigmoid,
 * MSE; see tools/make_nn_fixtures.py for why the Pearson mix is checked by finite differences
 * only). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rdml/nn.h"
#include "rdml/npy.h"
#include "test.h"

enum { STEPS = 20, B = 8, N = 10, D = 12, S = 14 };

/* Whole array as float / double / int64 (NULL on error). */
static void *load(const char *name, int kind, int64_t *count) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_npy f;
    if (rdml_npy_open(&ctx, test_fixture(name), 0, &f)) {
        fprintf(stderr, "%s\n", ctx.msg);
        return NULL;
    }
    int64_t rows = f.ndim ? f.shape[0] : 1, cols = f.ndim > 1 ? f.count / rows : 1;
    void *buf = malloc((size_t)f.count * 8);
    int rc = kind == 0   ? rdml_npy_read_f32(&ctx, &f, 0, rows, NULL, cols, buf)
             : kind == 1 ? rdml_npy_read_f64(&ctx, &f, 0, rows, NULL, cols, buf)
                         : rdml_npy_read_i64(&ctx, &f, 0, rows, NULL, cols, buf);
    if (count) *count = f.count;
    rdml_npy_close(&f);
    if (rc) {
        fprintf(stderr, "%s\n", ctx.msg);
        free(buf);
        return NULL;
    }
    return buf;
}

/* max |a - b| / max(|b|, floor) over the buffer, where floor = 1e-2 * max |b| (weights that
 * pass near zero are compared on the scale of their tensor) */
static double rel_err(const float *a, const float *b, int64_t n) {
    double mx = 0, e = 0;
    for (int64_t i = 0; i < n; i++) mx = fmax(mx, fabs(b[i]));
    int64_t worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double ei = fabs((double)a[i] - b[i]) / fmax(fabs(b[i]), 1e-2 * mx);
        if (ei > e) {
            e = ei;
            worst = i;
        }
    }
    if (getenv("RDML_TEST_VERBOSE"))
        printf("  worst weight %lld: %.9g vs %.9g\n", (long long)worst, a[worst], b[worst]);
    return e;
}

static void check_run(const char *what, const double *loss, const double *ref, const float *w,
                      const float *wref, int64_t np) {
    double le = 0;
    for (int t = 0; t < STEPS; t++) {
        le = fmax(le, fabs(loss[t] - ref[t]) / fmax(fabs(ref[t]), 1e-3));
        if (getenv("RDML_TEST_VERBOSE")) printf("  step %d loss %.9g torch %.9g\n", t, loss[t], ref[t]);
    }
    double we = rel_err(w, wref, np);
    printf("%s: losses within %.2g, weights within %.2g relative\n", what, le, we);
    CHECK(le < 1e-4);
    CHECK(we < 1e-4);
}

static void pairnet_case(const char *name, rdml_pairnet_params *pp, const rdml_optim *o) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    char f[64];
    int64_t np_init = 0, np_final = 0;
    snprintf(f, sizeof f, "nn/%s_init.npy", name);
    float *init = load(f, 0, &np_init);
    snprintf(f, sizeof f, "nn/%s_final.npy", name);
    float *fin = load(f, 0, &np_final);
    snprintf(f, sizeof f, "nn/%s_losses.npy", name);
    double *ref = load(f, 1, NULL);
    snprintf(f, sizeof f, "nn/%s_ij.npy", name);
    int64_t *ij = load(f, 2, NULL);
    snprintf(f, sizeof f, "nn/%s_y.npy", name);
    float *y = load(f, 0, NULL), *E = load("nn/emb.npy", 0, NULL);
    CHECK(init && fin && ref && ij && y && E);
    for (int mode = 0; mode < 2 && init && fin && ref && ij && y && E; mode++) {
        pp->mode = mode ? RDML_PAIRNET_PERPAIR : RDML_PAIRNET_DECOMPOSED;
        rdml_pairnet *net = NULL;
        CHECK(rdml_pairnet_create(&ctx, pp, 1, 0, &net) == RDML_OK);
        if (!net) break;
        int64_t np;
        float *P = rdml_pairnet_params_buf(net, &np);
        CHECK_EQ_I(np, np_init);
        if (np != np_init) {
            rdml_pairnet_free(&net);
            break;
        }
        memcpy(P, init, (size_t)np * sizeof *P);
        double loss[STEPS];
        for (int t = 0; t < STEPS; t++)
            CHECK(rdml_pairnet_step(&ctx, net, o, E, B, ij + 2 * t * B, y + t * B, 1, (uint64_t)t, &loss[t]) == RDML_OK);
        char what[96];
        snprintf(what, sizeof what, "%s (%s)", name, mode ? "per pair" : "decomposed");
        check_run(what, loss, ref, P, fin, np);
        rdml_pairnet_free(&net);
    }
    free(init); free(fin); free(ref); free(ij); free(y); free(E);
}

static void test_siamese_vs_torch(void) {
    rdml_pairnet_params pp;
    rdml_pairnet_defaults(&pp);
    pp.in_dim = D; pp.tower[0] = 16; pp.tower[1] = 8; pp.head[0] = 6;
    pp.tower_dropout = 0.0;
    rdml_optim o;
    rdml_optim_defaults(&o);
    pairnet_case("siamese", &pp, &o);
}

static void test_mlp_vs_torch(void) {
    rdml_pairnet_params pp;
    rdml_pairnet_mlp_defaults(&pp, 1);
    pp.in_dim = D; pp.head[0] = 12; pp.head[1] = 6; pp.sigmoid_out = 1;
    rdml_optim o;
    rdml_optim_defaults(&o);
    o.weight_decay = 1e-3;
    pairnet_case("mlp", &pp, &o);
}

static void test_cnn_vs_torch(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    int64_t n0 = 0;
    float *init = load("nn/cnn_init.npy", 0, &n0), *fin = load("nn/cnn_final.npy", 0, NULL);
    double *ref = load("nn/cnn_losses.npy", 1, NULL);
    int64_t *ij = load("nn/cnn_ij.npy", 2, NULL);
    float *y = load("nn/cnn_y.npy", 0, NULL), *imgs = load("nn/imgs.npy", 0, NULL);
    CHECK(init && fin && ref && ij && y && imgs);
    rdml_cnn_params cp;
    rdml_cnn_defaults(&cp);
    cp.size = S; cp.c1 = 4; cp.c2 = 6; cp.sigmoid_out = 1;
    rdml_cnn *net = NULL;
    CHECK(rdml_cnn_create(&ctx, &cp, 1, 0, &net) == RDML_OK);
    if (net && init && fin && ref && ij && y && imgs) {
        int64_t np;
        float *P = rdml_cnn_params_buf(net, &np);
        CHECK_EQ_I(np, n0);
        if (np == n0) {
            memcpy(P, init, (size_t)np * sizeof *P);
            rdml_optim o;
            rdml_optim_defaults(&o);
            double loss[STEPS];
            for (int t = 0; t < STEPS; t++)
                CHECK(rdml_cnn_step(&ctx, net, &o, imgs, B, ij + 2 * t * B, y + t * B, &loss[t]) == RDML_OK);
            check_run("cnn", loss, ref, P, fin, np);
        }
    }
    rdml_cnn_free(&net);
    free(init); free(fin); free(ref); free(ij); free(y); free(imgs);
}

int main(void) {
    RUN(test_siamese_vs_torch);
    RUN(test_mlp_vs_torch);
    RUN(test_cnn_vs_torch);
    return test_summary();
}
