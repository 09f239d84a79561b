/* Siamese bench driver: trains the paper's network (tower 512-512-256 with dropout, head
 * 512-128-1, MSE, Adam) with rdml_pairnet on the pairs written by anchor.py, and prints
 * training pairs/s and train/test R^2 in the anchor's format. The data are those of
 * torch_anchor.py (bench_data.py). usage: siamese_bench DIR EPOCHS [batch=32] [lr=0.01]
 * [mode=decomposed|perpair|blocks] [dropout=0.5] [warmup=0 epochs]. blocks: decomposed, batches of all
 * training pairs between two blocks of ceil(sqrt(batch)) images (rdml_nn_block_batches, as
 * `rdmlearn train` with train.batching = blocks); the others: shuffled pairs. The training
 * is rdml_pairnet_fit, the same function `rdmlearn train` runs per fold. */
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

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: siamese_bench DIR EPOCHS [batch] [lr] [decomposed|perpair|blocks] [dropout] [warmup]\n");
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
    double warmup = argc > 7 ? atof(argv[7]) : 0.0; /* epochs of linear lr warm-up (train.warmup) */
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
    /* the training loop of `rdmlearn train` (rdml_pairnet_fit), timed as a whole */
    double *ytr_d = malloc((size_t)ntr * sizeof *ytr_d), *yte_d = malloc((size_t)nte * sizeof *yte_d);
    double *pred = malloc((size_t)nte * sizeof *pred);
    if (!ytr_d || !yte_d || !pred) {
        fprintf(stderr, "siamese_bench: out of memory\n");
        return 1;
    }
    for (int64_t i = 0; i < ntr; i++) ytr_d[i] = ytr[i];
    for (int64_t i = 0; i < nte; i++) yte_d[i] = yte[i];
    int64_t ntr_eval = ntr < 200000 ? ntr : 200000;
    rdml_fit_opts fo = {.epochs = epochs, .batch = B, .blocks = blocks,
                        .block_images = (int64_t)ceil(sqrt((double)B)), .warmup_epochs = warmup,
                        .seed = 0, .key = 0,
                        .n_eval = ntr_eval, .eval_train = 1};
    rdml_fit_result res;
    if (rdml_pairnet_fit(&ctx, net, NULL, &o, &fo, E, n, ntr, trij, ytr_d, nte, teij, yte_d, pred,
                         NULL, NULL, &res)) {
        fprintf(stderr, "siamese_bench: %s\n", ctx.msg);
        return 1;
    }
    if (res.stop_kind) {
        fprintf(stderr, "siamese_bench: the fit diverged in epoch %lld\n", (long long)res.stop_epoch);
        return 1;
    }
    double dt = res.seconds;
    printf("rdmlearn %s siamese n_images=%lld train_pairs=%lld batch=%lld lr=%g warmup=%g epochs=%d: %.2f s "
           "(%.2f s/epoch, %.0f pairs/s) R2 train %.3f test %.3f\n", perpair ? "perpair" : blocks ? "blocks" : "decomposed",
           (long long)n, (long long)ntr, (long long)B, lr, warmup, epochs, dt, dt / epochs, res.pairs_per_s,
           res.train_r2, rdml_metrics_r2(nte, yte_d, pred));
    rdml_pairnet_free(&net);
    free(ytr_d); free(yte_d); free(pred); free(E); free(trij); free(teij); free(ytr); free(yte);
    return 0;
}
