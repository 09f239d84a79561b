/* Siamese bench driver: trains the paper's network (tower 512-512-256 with dropout, head
 * 512-128-1, MSE, Adam) with rdml_pairnet on the pairs written by anchor.py, and prints
 * training pairs/s and train/test R^2 in the anchor's format. The data are those of
 * torch_anchor.py (bench_data.py). usage: siamese_bench DIR EPOCHS [batch=32] [lr=0.01]
 * [mode=decomposed|perpair|blocks] [dropout=0.5]. blocks: decomposed, batches of all
 * training pairs between two blocks of ceil(sqrt(batch)) images (rdml_nn_block_batches, as
 * `rdmlearn train` with train.batching = blocks); the others: shuffled pairs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/blas_kernel.h"
#include "rdml/metrics.h"
#include "rdml/nn.h"
#include "rdml/npy.h"

static void *load(rdml_ctx *ctx, const char *dir, const char *name, int kind, int64_t *r, int64_t *c) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    rdml_npy f;
    if (rdml_npy_open(ctx, path, 0, &f)) return NULL;
    *r = f.shape[0];
    *c = f.ndim == 2 ? f.shape[1] : 1;
    void *out = malloc((size_t)(*r * *c) * 8);
    int rc = kind ? rdml_npy_read_i64(ctx, &f, 0, *r, NULL, 0, out) : rdml_npy_read_f32(ctx, &f, 0, *r, NULL, 0, out);
    rdml_npy_close(&f);
    return rc ? NULL : out;
}

static double r2_of(rdml_ctx *ctx, rdml_pairnet *net, const float *E, int64_t n, const int64_t *ij, const float *y) {
    float *p = malloc((size_t)n * sizeof *p);
    double *a = malloc((size_t)n * sizeof *a), *b = malloc((size_t)n * sizeof *b);
    double r = NAN;
    if (p && a && b && !rdml_pairnet_predict(ctx, net, E, n, ij, p)) {
        for (int64_t i = 0; i < n; i++) {
            a[i] = y[i];
            b[i] = p[i];
        }
        r = rdml_metrics_r2(n, a, b);
    }
    free(p); free(a); free(b);
    return r;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: siamese_bench DIR EPOCHS [batch] [lr] [decomposed|perpair|blocks] [dropout]\n");
        return 2;
    }
    bench_print_blas("rdmlearn");
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    int64_t n, d, ntr, nte, c;
    int epochs = atoi(argv[2]);
    int64_t B = argc > 3 ? atoll(argv[3]) : 32;
    double lr = argc > 4 ? atof(argv[4]) : 0.01;
    int perpair = argc > 5 && strcmp(argv[5], "perpair") == 0;
    int blocks = argc > 5 && strcmp(argv[5], "blocks") == 0;
    double dropout = argc > 6 ? atof(argv[6]) : 0.5;
    float *E = load(&ctx, argv[1], "emb", 0, &n, &d);
    int64_t *trij = load(&ctx, argv[1], "train_ij", 1, &ntr, &c), *teij = load(&ctx, argv[1], "test_ij", 1, &nte, &c);
    float *ytr = load(&ctx, argv[1], "train_y", 0, &ntr, &c), *yte = load(&ctx, argv[1], "test_y", 0, &nte, &c);
    if (!E || !trij || !teij || !ytr || !yte) {
        fprintf(stderr, "siamese_bench: %s\n", ctx.msg);
        return 1;
    }
    rdml_pairnet_params pp;
    rdml_pairnet_defaults(&pp);
    pp.in_dim = d;
    pp.tower_dropout = dropout;
    pp.mode = perpair ? RDML_PAIRNET_PERPAIR : RDML_PAIRNET_DECOMPOSED;
    rdml_optim o;
    rdml_optim_defaults(&o);
    o.lr = lr;
    rdml_pairnet *net = NULL;
    if (rdml_pairnet_create(&ctx, &pp, 0, 0, &net)) {
        fprintf(stderr, "siamese_bench: %s\n", ctx.msg);
        return 1;
    }
    if (getenv("RDML_BENCH_BIAS_INIT")) { /* optional: start at the training mean (rdmlearn train does) */
        double m = 0;
        for (int64_t i = 0; i < ntr; i++) m += ytr[i];
        rdml_pairnet_set_output_bias(net, m / (double)ntr);
    }
    int64_t *order = malloc((size_t)ntr * sizeof *order), *starts = malloc((size_t)(ntr + 1) * sizeof *starts);
    int64_t blk = (int64_t)ceil(sqrt((double)B)), cap = blocks ? B + blk * blk : B;
    int64_t *ij = malloc((size_t)cap * 2 * sizeof *ij);
    float *y = malloc((size_t)cap * sizeof *y);
    double t0 = rdml_now();
    for (int ep = 0; ep < epochs; ep++) {
        rdml_rng r = rdml_rng_make(0, RDML_STREAM_SHUFFLE, (uint64_t)ep << 40);
        int64_t nbatch = 0;
        if (blocks) {
            if (rdml_nn_block_batches(&ctx, ntr, trij, n, blk, B, &r, order, starts, &nbatch)) {
                fprintf(stderr, "siamese_bench: %s\n", ctx.msg);
                return 1;
            }
        } else {
            for (int64_t i = 0; i < ntr; i++) order[i] = i;
            rdml_rng_shuffle(&r, order, ntr);
            for (int64_t s = 0; s < ntr; s += B) starts[nbatch++] = s;
            starts[nbatch] = ntr;
        }
        for (int64_t nb = 0; nb < nbatch; nb++) {
            int64_t s = starts[nb], b = starts[nb + 1] - s;
            if (b > cap) {
                fprintf(stderr, "siamese_bench: batch of %lld pairs over capacity\n", (long long)b);
                return 1;
            }
            for (int64_t q = 0; q < b; q++) {
                ij[2 * q] = trij[2 * order[s + q]];
                ij[2 * q + 1] = trij[2 * order[s + q] + 1];
                y[q] = ytr[order[s + q]];
            }
            double loss;
            if (rdml_pairnet_step(&ctx, net, &o, E, b, ij, y, 0, ((uint64_t)ep << 32) + (uint64_t)nb, &loss)) {
                fprintf(stderr, "siamese_bench: %s\n", ctx.msg);
                return 1;
            }
        }
    }
    double dt = rdml_now() - t0;
    int64_t ntr_eval = ntr < 200000 ? ntr : 200000;
    printf("rdmlearn %s siamese n_images=%lld train_pairs=%lld batch=%lld lr=%g epochs=%d: %.2f s "
           "(%.2f s/epoch, %.0f pairs/s) R2 train %.3f test %.3f\n", perpair ? "perpair" : blocks ? "blocks" : "decomposed",
           (long long)n, (long long)ntr, (long long)B, lr, epochs, dt, dt / epochs, (double)ntr * epochs / dt,
           r2_of(&ctx, net, E, ntr_eval, trij, ytr), r2_of(&ctx, net, E, nte, teij, yte));
    rdml_pairnet_free(&net);
    free(order); free(starts); free(ij); free(y); free(E); free(trij); free(teij); free(ytr); free(yte);
    return 0;
}
