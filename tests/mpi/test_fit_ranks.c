/* A pair-network or CNN fit split across ranks (rdml_fit_opts.comm, .shards;
 * rdml_pairnet_step_sharded, rdml_cnn_step_sharded): with the same shard count, a fit on a
 * communicator of 1, 2, 3 or 4 ranks (MPI_COMM_WORLD split) ends with the same parameters,
 * predictions, losses and diagnostics bit for bit as the serial fit, for the siamese network
 * (block batches, dropout; per-pair mode), for an MLP with head dropout, 2 * sigmoid output
 * and the Pearson-mix loss (whose gradient needs every shard's predictions), and for the
 * siamese CNN with 1 to 4 shards (more ranks than shards, ranks not dividing the shards;
 * block batches and shuffled pairs; 2 * sigmoid and the Pearson mix); shards = 1 on several
 * ranks equals the one-pass serial fit, and a CNN step with 1 shard on a group equals
 * rdml_cnn_step; a CNN group's predictions equal rdml_cnn_predict's; the CNN's memory limit
 * holds per rank (a rank whose shards do not fit fails the step on every rank of the group,
 * with its message); too many shards fail on every rank with the same message, without a
 * hang. Runs at 1 to 4 ranks. */
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

/* the CNN's data: NI tiny images and all their pairs */
enum { NI = 20, CS = 16, CNP = NI * (NI - 1) / 2 };
static float IMG[NI * CS * CS];
static int64_t cij[2 * CNP];
static double cy[CNP];

static void make_data(void) {
    rdml_rng ri = rdml_rng_make(12, 3, 0);
    double mean[NI];
    for (int64_t i = 0; i < NI; i++) {
        mean[i] = 0;
        for (int64_t k = 0; k < CS * CS; k++) {
            IMG[i * CS * CS + k] = (float)rdml_rng_uniform(&ri);
            mean[i] += IMG[i * CS * CS + k] / (CS * CS);
        }
    }
    for (int64_t i = 0, q = 0; i < NI; i++)
        for (int64_t j = i + 1; j < NI; j++, q++) {
            cij[2 * q] = i;
            cij[2 * q + 1] = j;
            cy[q] = 0.5 + 4 * (mean[i] - mean[j]) * (mean[i] - mean[j]) + 0.1 * rdml_rng_uniform(&ri);
        }
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

enum { SIAMESE, PERPAIR, MLP, CNN, CNN_SIG };

static void cnn_params(int kind, rdml_cnn_params *cp) {
    rdml_cnn_defaults(cp);
    cp->size = CS;
    cp->c1 = 3;
    cp->c2 = 4;
    cp->sigmoid_out = kind == CNN_SIG;
    cp->pearson_mix = kind == CNN_SIG ? 0.5 : 0.0;
}

/* One fit of a pair network or a CNN (the other NULL) on ntr training and nte test pairs
 * (the test pairs follow the training ones), its results into out. */
static void run_fit(rdml_ctx *ctx, rdml_pairnet *pn, rdml_cnn *cn, const rdml_optim *opt,
                    const rdml_fit_opts *fo, const float *x, int64_t nx, int64_t ntr, const int64_t *pij,
                    const double *py, int64_t nte, fit_out *out) {
    rdml_fit_result res;
    memset(out, 0, sizeof *out);
    out->rc = rdml_pairnet_fit(ctx, pn, cn, opt, fo, x, nx, ntr, pij, py, nte, pij + 2 * ntr, py + ntr,
                               out->pred, out->tl, out->vl, &res);
    snprintf(out->msg, sizeof out->msg, "%s", ctx->msg);
    float *w = pn ? rdml_pairnet_params_buf(pn, &out->nparam) : rdml_cnn_params_buf(cn, &out->nparam);
    CHECK(out->nparam <= 4096);
    memcpy(out->param, w, (size_t)out->nparam * sizeof(float));
    out->train_r2 = res.train_r2;
    out->dead = res.dead_units;
}

static void fit_cnn(int kind, int blocks, MPI_Comm comm, int64_t shards, fit_out *out) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_cnn_params cp;
    cnn_params(kind, &cp);
    rdml_cnn *net = NULL;
    CHECK(rdml_cnn_create(&ctx, &cp, 5, 1, &net) == RDML_OK);
    rdml_cnn_set_output_bias(net, 0.7);
    rdml_optim opt;
    rdml_optim_defaults(&opt);
    opt.lr = 0.01;
    const int64_t ntr = CNP * 3 / 4, nte = CNP - ntr;
    rdml_fit_opts fo = {.epochs = EPOCHS, .batch = 40, .blocks = blocks, .block_images = 6,
                        .warmup_epochs = 1, .seed = 9, .key = 3, .n_eval = ntr, .eval_train = 1,
                        .comm = comm, .shards = shards};
    run_fit(&ctx, NULL, net, &opt, &fo, IMG, NI, ntr, cij, cy, nte, out);
    rdml_cnn_free(&net);
}

static void fit(int kind, int blocks, MPI_Comm comm, int64_t shards, fit_out *out) {
    if (kind >= CNN) {
        fit_cnn(kind, blocks, comm, shards, out);
        return;
    }
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
    run_fit(&ctx, net, NULL, &opt, &fo, E, N, ntr, ij, y, nte, out);
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

/* The CNN: shards 1 to 4 on groups of 1..4 ranks equal the serial fit with the same shards
 * (shards 1 on a group: the one-pass serial fit). */
static void test_cnn_blocks(void) {
    for (int64_t S = 1; S <= 4; S++) check_groups(CNN, 1, S, S);
}
static void test_cnn_pairs_sigmoid_pearson(void) {
    for (int64_t S = 1; S <= 4; S++) check_groups(CNN_SIG, 0, S, S);
}
static void test_cnn_one_shard_is_serial(void) { check_groups(CNN, 1, 1, 0); }

/* The predictions of a CNN with the parameters w, in chunks of 3 images (a memory limit), on
 * comm (NULL: rdml_cnn_predict). */
static int cnn_predict_chunked(rdml_ctx *ctx, const float *w, MPI_Comm comm, float *pred) {
    rdml_cnn_params cp;
    cnn_params(CNN_SIG, &cp);
    cp.max_bytes = rdml_cnn_bytes_fixed(&cp) + 3 * rdml_cnn_bytes_per_image(&cp) + 100;
    rdml_cnn *net = NULL;
    int rc = rdml_cnn_create(ctx, &cp, 5, 1, &net);
    if (rc) return rc;
    int64_t np = 0;
    float *p = rdml_cnn_params_buf(net, &np);
    memcpy(p, w, (size_t)np * sizeof(float));
    rc = comm ? rdml_cnn_predict_comm(ctx, net, IMG, CNP, cij, comm, pred) : rdml_cnn_predict(ctx, net, IMG, CNP, cij, pred);
    rdml_cnn_free(&net);
    return rc;
}

/* One CNN step with 1 shard on every group equals rdml_cnn_step; with 3 shards every group
 * equals the serial 3-shard step; the group's predictions (rdml_cnn_predict_comm: 7 chunks of
 * images over the ranks) equal rdml_cnn_predict's bit for bit. */
static void test_cnn_step_and_predict(void) {
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_cnn_params cp;
    cnn_params(CNN_SIG, &cp);
    rdml_optim opt;
    rdml_optim_defaults(&opt);
    opt.lr = 0.01;
    float yf[CNP];
    for (int64_t q = 0; q < CNP; q++) yf[q] = (float)cy[q];
    const int64_t B = 60; /* pairs 0..59: images 0..19 */
    static float ref[2][4096], got[4096], pref[CNP], pgot[CNP];
    int64_t np = 0;
    for (int64_t S = 1; S <= 3; S += 2) {
        rdml_cnn *net = NULL;
        CHECK_EQ_I(rdml_cnn_create(&ctx, &cp, 5, 1, &net), RDML_OK);
        double loss = 0;
        for (int t = 0; t < 3; t++)
            CHECK_EQ_I(S == 1 ? rdml_cnn_step(&ctx, net, &opt, IMG, B, cij + 2 * B * t, yf + B * t, &loss)
                              : rdml_cnn_step_sharded(&ctx, net, &opt, IMG, B, cij + 2 * B * t, yf + B * t, S,
                                                      NULL, &loss),
                       RDML_OK);
        const float *w = rdml_cnn_params_buf(net, &np);
        memcpy(ref[S / 2], w, (size_t)np * sizeof(float));
        rdml_cnn_free(&net);
    }
    CHECK_EQ_I(cnn_predict_chunked(&ctx, ref[0], NULL, pref), RDML_OK);
    for (int g = 1; g <= size; g++) {
        MPI_Comm sub;
        MPI_Comm_split(MPI_COMM_WORLD, rank < g ? 0 : MPI_UNDEFINED, rank, &sub);
        if (sub == MPI_COMM_NULL) continue;
        for (int64_t S = 1; S <= 3; S += 2) {
            rdml_cnn *net = NULL;
            CHECK_EQ_I(rdml_cnn_create(&ctx, &cp, 5, 1, &net), RDML_OK);
            double loss = 0;
            for (int t = 0; t < 3; t++)
                CHECK_EQ_I(rdml_cnn_step_sharded(&ctx, net, &opt, IMG, B, cij + 2 * B * t, yf + B * t, S, sub, &loss),
                           RDML_OK);
            const float *w = rdml_cnn_params_buf(net, &np);
            memcpy(got, w, (size_t)np * sizeof(float));
            CHECK(memcmp(got, ref[S / 2], (size_t)np * sizeof(float)) == 0);
            rdml_cnn_free(&net);
        }
        for (int64_t q = 0; q < CNP; q++) pgot[q] = -1;
        CHECK_EQ_I(cnn_predict_chunked(&ctx, ref[0], sub, pgot), RDML_OK);
        CHECK(memcmp(pgot, pref, sizeof pref) == 0);
        MPI_Comm_free(&sub);
    }
}

/* The memory limit holds per rank: 12 distinct images in 3 shards of 4; on 2 ranks rank 0 holds
 * 8 images, rank 1 only 4; a limit between the two fails the step on both ranks (rank 0's
 * message), on 3 or 4 ranks (at most 4 images each) the step runs. */
static void test_cnn_memory_per_rank(void) {
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    rdml_cnn_params cp;
    cnn_params(CNN, &cp);
    int64_t per = rdml_cnn_bytes_per_image(&cp), fixed = rdml_cnn_bytes_fixed(&cp);
    /* pairs among images 0..11 only */
    int64_t ij12[2 * 66];
    float y12[66];
    for (int64_t i = 0, q = 0; i < 12; i++)
        for (int64_t j = i + 1; j < 12; j++, q++) {
            ij12[2 * q] = i;
            ij12[2 * q + 1] = j;
            y12[q] = (float)(0.5 + 0.01 * (double)q);
        }
    rdml_optim opt;
    rdml_optim_defaults(&opt);
    for (int g = 1; g <= size; g++) {
        MPI_Comm sub;
        MPI_Comm_split(MPI_COMM_WORLD, rank < g ? 0 : MPI_UNDEFINED, rank, &sub);
        if (sub == MPI_COMM_NULL) continue;
        rdml_ctx ctx;
        rdml_ctx_init(&ctx);
        rdml_cnn *net = NULL;
        CHECK_EQ_I(rdml_cnn_create(&ctx, &cp, 5, 1, &net), RDML_OK);
        int64_t nparam = 0;
        rdml_cnn_params_buf(net, &nparam);
        rdml_cnn_free(&net);
        /* 6 images and the 3 shards' parts fit, 8 do not */
        cp.max_bytes = 6 * per + fixed + 2 * 3 * nparam * (int64_t)sizeof(float);
        CHECK_EQ_I(rdml_cnn_create(&ctx, &cp, 5, 1, &net), RDML_OK);
        double loss = 0;
        int rc = rdml_cnn_step_sharded(&ctx, net, &opt, IMG, 66, ij12, y12, 3, sub, &loss);
        if (g <= 2) {
            CHECK_EQ_I(rc, RDML_ENOMEM);
            CHECK_STR_HAS(ctx.msg, g == 1 ? "12 distinct" : "8 distinct");
            CHECK_STR_HAS(ctx.msg, "train.max_memory_gb");
        } else {
            CHECK_EQ_I(rc, RDML_OK);
        }
        rdml_cnn_free(&net);
        cp.max_bytes = 0;
        MPI_Comm_free(&sub);
    }
}

/* The sharded sum differs from the one-pass gradient by rounding only: the fits stay close. */
static void test_sharded_close_to_one_pass(void) {
    static fit_out a, b;
    fit(SIAMESE, 1, NULL, 0, &a);
    fit(SIAMESE, 1, NULL, RDML_FIT_SHARDS, &b);
    CHECK_EQ_I(a.rc, RDML_OK);
    CHECK_EQ_I(b.rc, RDML_OK);
    for (int64_t q = 0; q < NP / 4; q++) CHECK_NEAR(a.pred[q], b.pred[q], 1e-3);
    fit(CNN, 1, NULL, 0, &a);
    fit(CNN, 1, NULL, 3, &b);
    CHECK_EQ_I(a.rc, RDML_OK);
    CHECK_EQ_I(b.rc, RDML_OK);
    CHECK(memcmp(a.param, b.param, (size_t)a.nparam * sizeof(float)) != 0); /* a real split */
    for (int64_t q = 0; q < CNP / 4; q++) CHECK_NEAR(a.pred[q], b.pred[q], 1e-3);
}

static void test_too_many_shards(void) {
    int size;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    static fit_out got;
    fit(SIAMESE, 1, size > 1 ? MPI_COMM_WORLD : NULL, RDML_FIT_MAX_SHARDS + 1, &got);
    CHECK_EQ_I(got.rc, RDML_ECONFIG);
    CHECK_STR_HAS(got.msg, "gradient shards");
    fit(CNN, 1, size > 1 ? MPI_COMM_WORLD : NULL, RDML_FIT_MAX_SHARDS + 1, &got);
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
    RUN(test_cnn_blocks);
    RUN(test_cnn_pairs_sigmoid_pearson);
    RUN(test_cnn_one_shard_is_serial);
    RUN(test_cnn_step_and_predict);
    RUN(test_cnn_memory_per_rank);
    RUN(test_sharded_close_to_one_pass);
    RUN(test_too_many_shards);
    int rc = test_summary_mpi(MPI_COMM_WORLD);
    MPI_Finalize();
    return rc;
}
