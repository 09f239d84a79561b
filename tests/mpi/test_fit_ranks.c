/* A pair-network fit split across ranks (rdml_fit_opts.comm, .shards; rdml_pairnet_step_sharded):
 * with the same shard count, a fit on a communicator of 1, 2, 3 or 4 ranks (MPI_COMM_WORLD
 * split) ends with the same parameters, predictions, losses and diagnostics bit for bit as the
 * serial fit, for the siamese network (block batches, dropout; per-pair mode) and for an MLP
 * with head dropout, 2 * sigmoid output and the Pearson-mix loss (whose gradient needs every
 * shard's predictions); shards = 1 on several ranks equals the one-pass serial fit; too many
 * shards fail on every rank with the same message, without a hang. Runs at 1 to 4 ranks. */
#include <mpi.h>
#include <stdint.h>
#include <string.h>

#include "rdml/mpiutil.h"
#include "rdml/nn.h"
#include "test.h"

enum { N = 40, D = 6, NP = N * (N - 1) / 2, EPOCHS = 3 };
static float E[N * D];
static int64_t ij[2 * NP];
static double y[NP];

static void make_data(void) {
    rdml_rng r = rdml_rng_make(11, 2, 0);
    for (int64_t i = 0; i < N * D; i++) E[i] = (float)(2 * rdml_rng_uniform(&r) - 1);
    int64_t q = 0;
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = i + 1; j < N; j++, q++) {
            ij[2 * q] = i;
            ij[2 * q + 1] = j;
            y[q] = 1.0 + 0.3 * (E[i * D] - E[j * D]) * (E[i * D] - E[j * D]) + 0.2 * E[i * D + 1] * E[j * D + 1];
        }
}

typedef struct fit_out {
    float param[4096];
    int64_t nparam;
    double pred[NP], tl[EPOCHS], vl[EPOCHS], train_r2;
    int64_t dead;
    int rc;
    char msg[512];
} fit_out;

enum { SIAMESE, PERPAIR, MLP };

static void fit(int kind, int blocks, MPI_Comm comm, int64_t shards, fit_out *out) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_pairnet_params p;
    if (kind == MLP) {
        rdml_pairnet_mlp_defaults(&p, 1);
        p.head[0] = 12;
        p.head[1] = 6;
        p.head_dropout = 0.3;
        p.sigmoid_out = 1;
        p.pearson_mix = 0.5;
    } else {
        rdml_pairnet_defaults(&p);
        p.tower[0] = 16;
        p.tower[1] = 8;
        p.head[0] = 8;
        p.tower_dropout = 0.25;
        p.mode = kind == PERPAIR ? RDML_PAIRNET_PERPAIR : RDML_PAIRNET_DECOMPOSED;
    }
    p.in_dim = D;
    rdml_pairnet *net = NULL;
    CHECK(rdml_pairnet_create(&ctx, &p, 5, 1, &net) == RDML_OK);
    rdml_optim opt;
    rdml_optim_defaults(&opt);
    opt.lr = 0.005;
    const int64_t ntr = NP * 3 / 4, nte = NP - ntr;
    rdml_fit_opts fo = {.epochs = EPOCHS, .batch = 100, .blocks = blocks, .block_images = 10,
                        .warmup_epochs = 1, .seed = 9, .key = 3, .n_eval = ntr, .eval_train = 1,
                        .comm = comm, .shards = shards};
    rdml_fit_result res;
    memset(out, 0, sizeof *out);
    out->rc = rdml_pairnet_fit(&ctx, net, NULL, &opt, &fo, E, N, ntr, ij, y, nte, ij + 2 * ntr, y + ntr,
                               out->pred, out->tl, out->vl, &res);
    snprintf(out->msg, sizeof out->msg, "%s", ctx.msg);
    float *w = rdml_pairnet_params_buf(net, &out->nparam);
    CHECK(out->nparam <= 4096);
    memcpy(out->param, w, (size_t)out->nparam * sizeof(float));
    out->train_r2 = res.train_r2;
    out->dead = res.dead_units;
    rdml_pairnet_free(&net);
}

static int same(const fit_out *a, const fit_out *b) {
    return a->rc == b->rc && a->nparam == b->nparam &&
           memcmp(a->param, b->param, (size_t)a->nparam * sizeof(float)) == 0 &&
           memcmp(a->pred, b->pred, sizeof a->pred) == 0 && memcmp(a->tl, b->tl, sizeof a->tl) == 0 &&
           memcmp(a->vl, b->vl, sizeof a->vl) == 0 && memcmp(&a->train_r2, &b->train_r2, sizeof(double)) == 0 &&
           a->dead == b->dead;
}

/* Every group size 1..nranks: the ranks of the group fit on it; each compares with its own
 * serial fit. */
static void check_groups(int kind, int blocks, int64_t shards, int64_t serial_shards) {
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    static fit_out ref, got;
    fit(kind, blocks, NULL, serial_shards, &ref);
    CHECK_EQ_I(ref.rc, RDML_OK);
    for (int g = 1; g <= size; g++) {
        MPI_Comm sub;
        MPI_Comm_split(MPI_COMM_WORLD, rank < g ? 0 : MPI_UNDEFINED, rank, &sub);
        if (sub == MPI_COMM_NULL) continue;
        fit(kind, blocks, sub, shards, &got);
        if (!same(&ref, &got))
            fprintf(stderr, "kind %d blocks %d shards %lld: rank %d of a group of %d differs from the serial fit "
                    "(rc %d: %s)\n", kind, blocks, (long long)shards, rank, g, got.rc, got.msg);
        CHECK(same(&ref, &got));
        MPI_Comm_free(&sub);
    }
}

static void test_siamese_blocks(void) { check_groups(SIAMESE, 1, RDML_FIT_SHARDS, RDML_FIT_SHARDS); }
static void test_siamese_pairs_3_shards(void) { check_groups(SIAMESE, 0, 3, 3); }
static void test_perpair(void) { check_groups(PERPAIR, 1, RDML_FIT_SHARDS, RDML_FIT_SHARDS); }
static void test_mlp_pearson(void) { check_groups(MLP, 1, RDML_FIT_SHARDS, RDML_FIT_SHARDS); }
/* shards = 1 on a communicator: every rank runs the one-pass serial step */
static void test_one_shard_is_serial(void) { check_groups(SIAMESE, 1, 1, 0); }

/* The sharded sum differs from the one-pass gradient by rounding only: the fits stay close. */
static void test_sharded_close_to_one_pass(void) {
    static fit_out a, b;
    fit(SIAMESE, 1, NULL, 0, &a);
    fit(SIAMESE, 1, NULL, RDML_FIT_SHARDS, &b);
    CHECK_EQ_I(a.rc, RDML_OK);
    CHECK_EQ_I(b.rc, RDML_OK);
    for (int64_t q = 0; q < NP / 4; q++) CHECK_NEAR(a.pred[q], b.pred[q], 1e-3);
}

static void test_too_many_shards(void) {
    int size;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    static fit_out got;
    fit(SIAMESE, 1, size > 1 ? MPI_COMM_WORLD : NULL, RDML_FIT_MAX_SHARDS + 1, &got);
    CHECK_EQ_I(got.rc, RDML_ECONFIG);
    CHECK_STR_HAS(got.msg, "gradient shards");
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    make_data();
    RUN(test_siamese_blocks);
    RUN(test_siamese_pairs_3_shards);
    RUN(test_perpair);
    RUN(test_mlp_pearson);
    RUN(test_one_shard_is_serial);
    RUN(test_sharded_close_to_one_pass);
    RUN(test_too_many_shards);
    int rc = test_summary_mpi(MPI_COMM_WORLD);
    MPI_Finalize();
    return rc;
}
