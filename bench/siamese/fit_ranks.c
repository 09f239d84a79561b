/* Data-parallel fit bench: rdml_pairnet_fit of the siamese network (bench/siamese's data, written
 * by anchor.py) on all ranks of MPI_COMM_WORLD with rdml_fit_opts.comm = MPI_COMM_WORLD and a
 * fixed shard count, so that the fit is the same for every number of ranks. Rank 0 prints the
 * training time, pairs/s, the test R^2 and a checksum of the trained parameters (equal for every
 * rank count). usage: mpirun -n G fit_ranks DIR EPOCHS [batch=16384] [shards=4] [lr=0.001] */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc < 3) {
        if (!rank) fprintf(stderr, "usage: mpirun -n G fit_ranks DIR EPOCHS [batch] [shards] [lr]\n");
        MPI_Finalize();
        return 2;
    }
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    int64_t n, d, ntr, nte, c;
    int epochs = atoi(argv[2]);
    int64_t B = argc > 3 ? atoll(argv[3]) : 16384, S = argc > 4 ? atoll(argv[4]) : RDML_FIT_SHARDS;
    double lr = argc > 5 ? atof(argv[5]) : 0.001;
    float *E = load(&ctx, argv[1], "emb", 0, &n, &d);
    int64_t *trij = load(&ctx, argv[1], "train_ij", 1, &ntr, &c), *teij = load(&ctx, argv[1], "test_ij", 1, &nte, &c);
    float *ytr = load(&ctx, argv[1], "train_y", 0, &ntr, &c), *yte = load(&ctx, argv[1], "test_y", 0, &nte, &c);
    if (!E || !trij || !teij || !ytr || !yte) {
        fprintf(stderr, "fit_ranks: %s\n", ctx.msg);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    rdml_pairnet_params pp;
    rdml_pairnet_defaults(&pp);
    pp.in_dim = d;
    rdml_optim o;
    rdml_optim_defaults(&o);
    o.lr = lr;
    rdml_pairnet *net = NULL;
    if (rdml_pairnet_create(&ctx, &pp, 0, 0, &net)) MPI_Abort(MPI_COMM_WORLD, 1);
    double *ytr_d = malloc((size_t)ntr * sizeof *ytr_d), *yte_d = malloc((size_t)nte * sizeof *yte_d);
    double *pred = malloc((size_t)nte * sizeof *pred), m = 0;
    for (int64_t i = 0; i < ntr; i++) m += ytr_d[i] = ytr[i];
    for (int64_t i = 0; i < nte; i++) yte_d[i] = yte[i];
    rdml_pairnet_set_output_bias(net, m / (double)ntr);
    rdml_fit_opts fo = {.epochs = epochs, .batch = B, .blocks = 1, .block_images = (int64_t)ceil(sqrt((double)B)),
                        .warmup_epochs = 1, .n_eval = 0, .comm = MPI_COMM_WORLD, .shards = S};
    rdml_fit_result res;
    if (rdml_pairnet_fit(&ctx, net, NULL, &o, &fo, E, n, ntr, trij, ytr_d, nte, teij, yte_d, pred, NULL, NULL, &res)) {
        fprintf(stderr, "fit_ranks: %s\n", ctx.msg);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    int64_t np;
    const float *w = rdml_pairnet_params_buf(net, &np);
    uint64_t h = 1469598103934665603ULL; /* FNV-1a of the parameters' bytes */
    const unsigned char *bytes = (const unsigned char *)w;
    for (size_t i = 0; i < (size_t)np * sizeof *w; i++) h = (h ^ bytes[i]) * 1099511628211ULL;
    if (!rank)
        printf("fit_ranks ranks=%d shards=%lld batch=%lld epochs=%d: %.2f s (%.0f pairs/s) R2 test %.4f params %016llx\n",
               size, (long long)S, (long long)B, epochs, res.seconds, res.pairs_per_s, rdml_metrics_r2(nte, yte_d, pred),
               (unsigned long long)h);
    rdml_pairnet_free(&net);
    free(ytr_d); free(yte_d); free(pred); free(E); free(trij); free(teij); free(ytr); free(yte);
    MPI_Finalize();
    return 0;
}
