/* The paper's first baseline, a siamese CNN on grayscale images: per branch conv C1 3x3 +
 * ReLU + 2x2 max-pool, conv C2 3x3 + ReLU + 2x2 max-pool, flatten to F features; the two
 * branches' features concatenated into one Dense(1), linear or 2 * sigmoid, trained on MSE or
 * the mix of -Pearson and MSE. Pair decomposition: the head is linear in [f_a ; f_b], so
 * out(i, j) = w_a.f_i + w_b.f_j + b and a step runs the branch once per DISTINCT image of its
 * batch (ascending image row), then per pair only two look-ups; the backward sums each image's
 * pair gradients (g_a, g_b) before one branch backward per image. The function and gradient
 * are those of running both branches per pair (PyTorch batching) up to float summation order.
 * Per image only the pooled activations and their window argmax are kept (ReLU and pooling
 * fused); the conv outputs live in one image's scratch, conv2 is im2col + SGEMM, and conv1's
 * weight gradient is read from the pooled positions only (3/4 of its output gradient is 0).
 * The workspace is bounded by rdml_cnn_params.max_bytes. Data-parallel over a communicator
 * (rdml_cnn_step_sharded): the batch's distinct images are cut into S fixed shards (shard.c),
 * the owner of a shard runs its towers (forward and backward, into the shard's gradient part),
 * the ranks exchange the per-image head scalars (w_a.f, w_b.f), every rank computes all pair
 * outputs, the loss and the per-image pair gradients alike, and the parts are added as the
 * fixed tree over the shards: the result depends on S, not on the number of ranks. Left out:
 * padding, dropout, batching several images into one SGEMM (measured: no faster than one
 * image's 64 x 3721 x 288), and threading beyond BLAS's. */
#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rdml/mpiutil.h"
#include "rdml/nn.h"
#include "nn_priv.h"

struct rdml_cnn {
    rdml_cnn_params p;
    int64_t S, O1, P1, O2, P2, F, N1; /* input, conv1 out, pool1 out, conv2 out, pool2 out,
                                         features, pooled conv1 values (C1 P1 P1) */
    int64_t nparam, t;
    float *param, *grad, *state;
    int64_t w1, b1, w2, b2, wd, bd; /* offsets */
    /* per distinct image, capacity capU: pooled activations and their window argmax */
    int64_t capU;
    float *p1, *p2;
    uint8_t *a1, *a2;
    /* one image's scratch: im2col, a conv output (or its gradient), d pool1, d features, and
     * the positions and gradients of one row of conv1's active pooled windows (P1) */
    float *col, *conv, *dp1, *df, *gv;
    int64_t *pos;
    /* per pair, capacity capB: side[2q + k] = distinct-image index of pair q's image k;
     * urow (2B): the distinct image rows, ascending; s, gs (2 per distinct image): w_a.f,
     * w_b.f and their gradients; pred, dpred (B) */
    int64_t capB;
    int64_t *side, *urow;
    float *s, *gs, *pred, *dpred;
    /* sharded steps: S gradient parts and the exchanged tree nodes (S x nparam each), the
     * MPI_Allgatherv counts and displacements (2 x capg ints) */
    float *part, *gbuf;
    int64_t capS;
    int *cnt, capg;
};

void rdml_cnn_defaults(rdml_cnn_params *p) {
    p->size = 128;
    p->c1 = 32;
    p->c2 = 64;
    p->sigmoid_out = 0;
    p->pearson_mix = 0.0;
    p->max_bytes = 0;
}

/* sizes: N1 pooled conv1 values, F features, col and conv scratch (floats) */
static int cnn_sizes(const rdml_cnn_params *p, int64_t *N1, int64_t *F, int64_t *col, int64_t *conv) {
    if (p->size < 10 || p->c1 < 1 || p->c2 < 1) return 0;
    int64_t O1 = p->size - 2, P1 = O1 / 2, O2 = P1 - 2, P2 = O2 / 2;
    *N1 = p->c1 * P1 * P1;
    *F = p->c2 * P2 * P2;
    int64_t c1 = 9 * O1 * O1, c2 = p->c1 * 9 * O2 * O2;
    *col = c1 > c2 ? c1 : c2;
    c1 = p->c1 * O1 * O1;
    c2 = p->c2 * O2 * O2;
    *conv = c1 > c2 ? c1 : c2;
    return 1;
}

int64_t rdml_cnn_bytes_per_image(const rdml_cnn_params *p) {
    int64_t N1, F, col, conv;
    if (!cnn_sizes(p, &N1, &F, &col, &conv)) return 0;
    return (N1 + F) * (int64_t)(sizeof(float) + sizeof(uint8_t));
}

int64_t rdml_cnn_bytes_fixed(const rdml_cnn_params *p) {
    int64_t N1, F, col, conv;
    if (!cnn_sizes(p, &N1, &F, &col, &conv)) return 0;
    int64_t P1 = (p->size - 2) / 2;
    return (col + conv + N1 + F + P1) * (int64_t)sizeof(float) + P1 * (int64_t)sizeof(int64_t);
}

static void cnn_free_images(rdml_cnn *n) {
    free(n->p1);
    free(n->p2);
    free(n->a1);
    free(n->a2);
    n->p1 = n->p2 = NULL;
    n->a1 = n->a2 = NULL;
    n->capU = 0;
}

static void cnn_free_pairs(rdml_cnn *n) {
    free(n->side);
    free(n->urow);
    free(n->s);
    free(n->gs);
    free(n->pred);
    free(n->dpred);
    n->side = n->urow = NULL;
    n->s = n->gs = n->pred = n->dpred = NULL;
    n->capB = 0;
}

static void cnn_free_shards(rdml_cnn *n) {
    free(n->part);
    free(n->gbuf);
    n->part = n->gbuf = NULL;
    n->capS = 0;
}

static void cnn_free_work(rdml_cnn *n) {
    cnn_free_images(n);
    cnn_free_pairs(n);
    cnn_free_shards(n);
    free(n->cnt);
    n->cnt = NULL;
    n->capg = 0;
    free(n->col);
    free(n->conv);
    free(n->dp1);
    free(n->df);
    free(n->gv);
    free(n->pos);
    n->col = n->conv = n->dp1 = n->df = n->gv = NULL;
    n->pos = NULL;
}

static int cnn_nomem(rdml_ctx *ctx, const rdml_cnn *n, int64_t U, const char *what) {
    return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for the CNN's %s (%lld distinct %lldx%lld "
                     "images; hint: lower train.block_images or train.batch, or set "
                     "train.max_memory_gb to fail early)", what, (long long)U, (long long)n->S,
                     (long long)n->S);
}

/* Gradient parts and tree nodes of a step in S > 1 shards (2 S parameter vectors). */
static int64_t cnn_bytes_shards(const rdml_cnn *n, int64_t S) {
    return S > 1 ? 2 * S * n->nparam * (int64_t)sizeof(float) : 0;
}

/* rdml_cnn_check_memory with `extra` bytes of scratch on top of the fixed ones. */
static int cnn_check_memory(rdml_ctx *ctx, const rdml_cnn_params *p, int64_t U, int64_t extra) {
    int64_t per = rdml_cnn_bytes_per_image(p), fixed = rdml_cnn_bytes_fixed(p) + extra;
    if (p->max_bytes > 0 && U * per + fixed > p->max_bytes)
        return RDML_FAIL(ctx, RDML_ENOMEM, "a CNN batch touching %lld distinct %lldx%lld images needs "
                         "%.2f GB of activations (%.2f MB per image + %.1f MB of scratch) but "
                         "train.max_memory_gb allows %.2f GB per rank (hint: lower train.block_images "
                         "or train.batch, or raise train.max_memory_gb)", (long long)U,
                         (long long)p->size, (long long)p->size, (double)(U * per + fixed) / 1e9,
                         (double)per / 1e6, (double)fixed / 1e6, (double)p->max_bytes / 1e9);
    return RDML_OK;
}

int rdml_cnn_check_memory(rdml_ctx *ctx, const rdml_cnn_params *p, int64_t U) {
    return cnn_check_memory(ctx, p, U, 0);
}

/* Room for U distinct images (checked against max_bytes first, with `extra` bytes of other
 * scratch) and the fixed scratch. */
static int cnn_images_work(rdml_ctx *ctx, rdml_cnn *n, int64_t U, int64_t extra) {
    RDML_TRY(cnn_check_memory(ctx, &n->p, U, extra));
    if (!n->col) {
        int64_t N1 = 0, F = 0, col = 0, conv = 0;
        cnn_sizes(&n->p, &N1, &F, &col, &conv);
        n->col = malloc((size_t)col * sizeof(float));
        n->conv = malloc((size_t)conv * sizeof(float));
        n->dp1 = malloc((size_t)N1 * sizeof(float));
        n->df = malloc((size_t)F * sizeof(float));
        n->gv = malloc((size_t)n->P1 * sizeof(float));
        n->pos = malloc((size_t)n->P1 * sizeof(int64_t));
        if (!n->col || !n->conv || !n->dp1 || !n->df || !n->gv || !n->pos) {
            cnn_free_work(n);
            return cnn_nomem(ctx, n, U, "scratch");
        }
    }
    if (U <= n->capU) return RDML_OK;
    cnn_free_images(n);
    n->p1 = malloc((size_t)(U * n->N1) * sizeof(float));
    n->a1 = malloc((size_t)(U * n->N1));
    n->p2 = malloc((size_t)(U * n->F) * sizeof(float));
    n->a2 = malloc((size_t)(U * n->F));
    if (!n->p1 || !n->a1 || !n->p2 || !n->a2) {
        cnn_free_images(n);
        return cnn_nomem(ctx, n, U, "activations");
    }
    n->capU = U;
    return RDML_OK;
}

static int cnn_pairs_work(rdml_ctx *ctx, rdml_cnn *n, int64_t B) {
    if (B <= n->capB) return RDML_OK;
    cnn_free_pairs(n);
    n->side = malloc((size_t)(2 * B) * sizeof(int64_t));
    n->urow = malloc((size_t)(2 * B) * sizeof(int64_t));
    n->s = malloc((size_t)(4 * B) * sizeof(float));
    n->gs = malloc((size_t)(4 * B) * sizeof(float));
    n->pred = malloc((size_t)B * sizeof(float));
    n->dpred = malloc((size_t)B * sizeof(float));
    if (!n->side || !n->urow || !n->s || !n->gs || !n->pred || !n->dpred) {
        cnn_free_pairs(n);
        return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for a CNN batch of %lld pairs (hint: "
                         "lower train.batch)", (long long)B);
    }
    n->capB = B;
    return RDML_OK;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The distinct rows of the B pairs ij, ascending, into urow (*U of them; room for 2B) and
 * each pair side's index among them into side (2B). */
static int cnn_index(rdml_ctx *ctx, int64_t B, const int64_t *ij, int64_t *side, int64_t *urow,
                     int64_t *U) {
    for (int64_t k = 0; k < 2 * B; k++)
        if (ij[k] < 0)
            return RDML_FAIL(ctx, RDML_EDATA, "CNN pair %lld names image row %lld (rows start at 0)",
                             (long long)(k / 2), (long long)ij[k]);
    memcpy(urow, ij, (size_t)(2 * B) * sizeof *urow);
    qsort(urow, (size_t)(2 * B), sizeof *urow, cmp_i64);
    int64_t u = 0;
    for (int64_t k = 0; k < 2 * B; k++)
        if (k == 0 || urow[k] != urow[u - 1]) urow[u++] = urow[k];
    for (int64_t k = 0; k < 2 * B; k++) {
        int64_t lo = 0, hi = u - 1;
        while (lo < hi) {
            int64_t mid = lo + (hi - lo) / 2;
            if (urow[mid] < ij[k]) lo = mid + 1;
            else hi = mid;
        }
        side[k] = lo;
    }
    *U = u;
    return RDML_OK;
}

int rdml_cnn_create(rdml_ctx *ctx, const rdml_cnn_params *p, uint64_t seed, uint64_t init_key,
                    rdml_cnn **out) {
    *out = NULL;
    if (p->size < 10 || p->c1 < 1 || p->c2 < 1)
        return RDML_FAIL(ctx, RDML_ECONFIG, "CNN: image size %lld (>= 10) and channels %lld, %lld "
                         "(>= 1) are impossible", (long long)p->size, (long long)p->c1, (long long)p->c2);
    if (p->max_bytes < 0)
        return RDML_FAIL(ctx, RDML_ECONFIG, "CNN: a memory limit of %lld bytes is impossible (0 = "
                         "none; hint: check train.max_memory_gb)", (long long)p->max_bytes);
    rdml_cnn *n = rdml_calloc(ctx, 1, sizeof *n, "CNN");
    if (!n) return ctx->code;
    n->p = *p;
    n->S = p->size;
    n->O1 = n->S - 2;
    n->P1 = n->O1 / 2;
    n->O2 = n->P1 - 2;
    n->P2 = n->O2 / 2;
    n->F = p->c2 * n->P2 * n->P2;
    n->N1 = p->c1 * n->P1 * n->P1;
    int64_t off = 0;
    n->w1 = off; off += p->c1 * 9;
    n->b1 = off; off += p->c1;
    n->w2 = off; off += p->c2 * p->c1 * 9;
    n->b2 = off; off += p->c2;
    n->wd = off; off += 2 * n->F;
    n->bd = off; off += 1;
    n->nparam = off;
    n->param = rdml_calloc(ctx, (size_t)off, sizeof(float), "CNN parameters");
    n->grad = n->param ? rdml_calloc(ctx, (size_t)off, sizeof(float), "CNN gradients") : NULL;
    n->state = n->grad ? rdml_calloc(ctx, (size_t)(2 * off), sizeof(float), "CNN optimiser state") : NULL;
    if (!n->state) {
        rdml_cnn_free(&n);
        return ctx->code;
    }
    rdml_rng r = rdml_rng_make(seed, rdml_rng_substream(RDML_STREAM_INIT, init_key), 0);
    rdml_nn_init_uniform(n->param + n->w1, p->c1 * 9, n->param + n->b1, p->c1, 9, &r);
    rdml_nn_init_uniform(n->param + n->w2, p->c2 * p->c1 * 9, n->param + n->b2, p->c2, p->c1 * 9, &r);
    rdml_nn_init_uniform(n->param + n->wd, 2 * n->F, n->param + n->bd, 1, 2 * n->F, &r);
    *out = n;
    return RDML_OK;
}

void rdml_cnn_free(rdml_cnn **net) {
    if (!net || !*net) return;
    cnn_free_work(*net);
    free((*net)->param);
    free((*net)->grad);
    free((*net)->state);
    free(*net);
    *net = NULL;
}

float *rdml_cnn_params_buf(rdml_cnn *net, int64_t *n) {
    if (n) *n = net->nparam;
    return net->param;
}

const float *rdml_cnn_grads_buf(const rdml_cnn *net) { return net->grad; }

void rdml_cnn_set_output_bias(rdml_cnn *net, double value) {
    if (net->p.sigmoid_out) {
        double m = fmin(fmax(value / 2, 1e-3), 1 - 1e-3);
        value = log(m / (1 - m));
    }
    net->param[net->bd] = (float)value;
}

/* The branch on image x (S x S) into workspace slot `slot`. */
static void tower_forward(rdml_cnn *n, const float *x, int64_t slot) {
    const float *P = n->param;
    int64_t C1 = n->p.c1, C2 = n->p.c2;
    float *p1 = n->p1 + slot * n->N1;
    int64_t s1 = n->O1 * n->O1, s2 = n->O2 * n->O2;
    /* conv (no bias) as im2col + SGEMM; the bias joins in the fused ReLU + pool (acc + b,
     * rounded once, as SGEMM with beta = 1 on a bias-filled output when K fits one BLAS block) */
    rdml_nn_im2col(n->col, x, 1, n->S, n->S, 3);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)C1, (int)s1, 9, 1.0f, P + n->w1, 9,
                n->col, (int)s1, 0.0f, n->conv, (int)s1);
    rdml_nn_relu_maxpool2_forward(p1, n->a1 + slot * n->N1, n->conv, P + n->b1, 1, C1, n->O1, n->O1);
    rdml_nn_im2col(n->col, p1, C1, n->P1, n->P1, 3);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)C2, (int)s2, (int)(C1 * 9), 1.0f,
                P + n->w2, (int)(C1 * 9), n->col, (int)s2, 0.0f, n->conv, (int)s2);
    rdml_nn_relu_maxpool2_forward(n->p2 + slot * n->F, n->a2 + slot * n->F, n->conv, P + n->b2, 1, C2,
                                  n->O2, n->O2);
}

/* conv1's weight and bias gradients from the gradient of its pooled output: only a window's
 * argmax with a positive pooled value receives gradient, so gather those windows (without
 * branches: which ones is data-random) and read only their 3 x 3 input patches. */
static void conv1_backward(float *dw, float *db, int64_t *pos, float *gv, const float *dp1,
                           const float *p1, const uint8_t *arg, const float *x, int64_t C1,
                           int64_t P1, int64_t S) {
    for (int64_t c = 0; c < C1; c++) {
        double acc[10] = {0};
        for (int64_t py = 0; py < P1; py++) {
            int64_t m = 0, i0 = (c * P1 + py) * P1;
            for (int64_t px = 0; px < P1; px++) {
                int64_t i = i0 + px;
                pos[m] = (2 * py + (arg[i] >> 1)) * S + 2 * px + (arg[i] & 1);
                gv[m] = dp1[i];
                m += (p1[i] > 0.0f) & (dp1[i] != 0.0f);
            }
            /* one row of windows in float registers, then into the double totals */
            float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0, s8 = 0, sb = 0;
            for (int64_t t = 0; t < m; t++) {
                float g = gv[t];
                const float *r = x + pos[t], *r1 = r + S, *r2 = r1 + S;
                s0 += g * r[0];
                s1 += g * r[1];
                s2 += g * r[2];
                s3 += g * r1[0];
                s4 += g * r1[1];
                s5 += g * r1[2];
                s6 += g * r2[0];
                s7 += g * r2[1];
                s8 += g * r2[2];
                sb += g;
            }
            float row[10] = {s0, s1, s2, s3, s4, s5, s6, s7, s8, sb};
            for (int k = 0; k < 10; k++) acc[k] += row[k];
        }
        for (int k = 0; k < 9; k++) dw[c * 9 + k] += (float)acc[k];
        db[c] += (float)acc[9];
    }
}

/* The branch's backward on image x in slot u, whose features get d f = ga w_a + gb w_b; the
 * parameter gradients accumulate into g (a whole parameter vector). */
static void tower_backward(rdml_cnn *n, const float *x, int64_t u, float ga, float gb, float *g) {
    const float *P = n->param, *wa = P + n->wd, *wb = wa + n->F;
    int64_t C1 = n->p.c1, C2 = n->p.c2;
    const float *p1 = n->p1 + u * n->N1;
    for (int64_t k = 0; k < n->F; k++) n->df[k] = ga * wa[k] + gb * wb[k];
    memset(n->conv, 0, (size_t)(C2 * n->O2 * n->O2) * sizeof(float));
    rdml_nn_relu_maxpool2_backward(n->conv, n->df, n->p2 + u * n->F, n->a2 + u * n->F, 1, C2, n->O2,
                                   n->O2);
    /* conv2's bias gradient from the pooled windows (the rest of d conv2 is 0) */
    const float *p2 = n->p2 + u * n->F;
    int64_t Q2 = n->P2 * n->P2;
    for (int64_t c = 0; c < C2; c++) {
        double sb = 0;
        for (int64_t k = c * Q2; k < (c + 1) * Q2; k++) sb += p2[k] > 0.0f ? n->df[k] : 0.0f;
        g[n->b2 + c] += (float)sb;
    }
    memset(n->dp1, 0, (size_t)n->N1 * sizeof(float));
    rdml_nn_conv2d_backward(n->dp1, g + n->w2, NULL, n->col, n->conv, p1, P + n->w2, 1, C1, n->P1,
                            n->P1, C2, 3);
    conv1_backward(g + n->w1, g + n->b1, n->pos, n->gv, n->dp1, p1, n->a1 + u * n->N1, x, C1,
                   n->P1, n->S);
}

/* pred[q] = (2 sigmoid of) s_a[side a] + s_b[side b] + bias */
static void pair_outputs(const rdml_cnn *n, int64_t B, const int64_t *side, const float *s,
                         float *pred) {
    float bias = n->param[n->bd];
    for (int64_t q = 0; q < B; q++) pred[q] = s[2 * side[2 * q]] + s[2 * side[2 * q + 1] + 1] + bias;
    if (n->p.sigmoid_out) {
        rdml_nn_sigmoid_forward(pred, pred, B);
        for (int64_t q = 0; q < B; q++) pred[q] *= 2.0f;
    }
}

/* Room for S gradient parts and tree nodes, and MPI_Allgatherv's counts for g ranks. */
static int cnn_shards_work(rdml_ctx *ctx, rdml_cnn *n, int64_t S, int g) {
    if (g > n->capg) {
        int *c = realloc(n->cnt, 2 * (size_t)g * sizeof *c);
        if (!c) return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for %d ranks", g);
        n->cnt = c;
        n->capg = g;
    }
    if (S <= 1 || S <= n->capS) return RDML_OK;
    cnn_free_shards(n);
    n->part = malloc((size_t)(S * n->nparam) * sizeof(float));
    n->gbuf = malloc((size_t)(S * n->nparam) * sizeof(float));
    if (!n->part || !n->gbuf) {
        cnn_free_shards(n);
        return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for %lld CNN gradient shards of %lld parameters "
                         "(hint: lower train.shards)", (long long)S, (long long)n->nparam);
    }
    n->capS = S;
    return RDML_OK;
}

int rdml_cnn_step_sharded(rdml_ctx *ctx, rdml_cnn *n, const rdml_optim *opt, const float *imgs,
                          int64_t B, const int64_t *ij, const float *y, int64_t shards, MPI_Comm comm,
                          double *loss) {
    *loss = 0;
    int ranks = 1, rank = 0;
    if (comm != NULL && comm != MPI_COMM_NULL) {
        MPI_Comm_size(comm, &ranks);
        MPI_Comm_rank(comm, &rank);
    }
    if (ranks <= 1) comm = NULL;
    if (shards > RDML_FIT_MAX_SHARDS)
        return RDML_FAIL(ctx, RDML_ECONFIG, "%lld gradient shards: at most %d", (long long)shards,
                         RDML_FIT_MAX_SHARDS);
    /* S = 1: one pass over the batch (with g > 1 every rank runs all of it, alone) */
    const int64_t S = shards > 1 ? shards : 1;
    const int ng = S > 1 ? ranks : 1, nr = S > 1 ? rank : 0;
    if (ng > 1 && S * n->nparam > INT_MAX)
        return RDML_FAIL(ctx, RDML_ECONFIG, "a data-parallel CNN step of %lld parameters in %lld shards "
                         "exchanges more than %d values (hint: fewer shards)", (long long)n->nparam,
                         (long long)S, INT_MAX);
    int64_t U = 0, S2 = n->S * n->S, F = n->F, k0 = 0, k1 = 1, ua = 0, ub = 0;
    int rc = B < 1 ? RDML_FAIL(ctx, RDML_EDATA, "empty batch") : RDML_OK;
    if (!rc) rc = cnn_pairs_work(ctx, n, B);
    if (!rc) rc = cnn_index(ctx, B, ij, n->side, n->urow, &U);
    /* this rank's shards [k0, k1) hold its images [ua, ub): their activations live here, in
     * slots u - ua */
    rdml_nn_shard_range(nr, ng, S, &k0, &k1);
    ua = rdml_nn_shard_lo(k0, U, S);
    ub = rdml_nn_shard_lo(k1, U, S);
    if (!rc) rc = cnn_images_work(ctx, n, ub - ua, cnn_bytes_shards(n, S));
    if (!rc && S > 1) rc = cnn_shards_work(ctx, n, S, ng);
    if (comm) RDML_TRY(rdml_agree(ctx, comm, rc));
    else RDML_TRY(rc);
    const float *P = n->param;
    const int64_t np = n->nparam;
    /* forward: the own shards' towers and head scalars s[u] = (w_a.f_u, w_b.f_u), one SGEMM per
     * shard; then every shard's scalars on every rank */
    for (int64_t k = k0; k < k1; k++) {
        int64_t u0 = rdml_nn_shard_lo(k, U, S), u1 = rdml_nn_shard_lo(k + 1, U, S);
        if (u1 <= u0) continue; /* more shards than images */
        for (int64_t u = u0; u < u1; u++) tower_forward(n, imgs + n->urow[u] * S2, u - ua);
        rdml_nn_linear_forward(n->s + 2 * u0, n->p2 + (u0 - ua) * F, P + n->wd, NULL, u1 - u0, F, 2);
    }
    if (ng > 1) RDML_TRY(rdml_nn_shard_allgather(ctx, comm, ng, S, U, 2, n->s, n->cnt));
    /* every rank: the pair outputs, the loss and its gradient for every pair */
    pair_outputs(n, B, n->side, n->s, n->pred);
    double mix = n->p.pearson_mix;
    if (mix < 1) *loss += (1 - mix) * rdml_nn_mse_forward(n->pred, y, B);
    if (mix > 0) *loss += mix * rdml_nn_pearson_forward(n->pred, y, B);
    float *g = n->grad;
    memset(g, 0, (size_t)np * sizeof *g);
    memset(n->dpred, 0, (size_t)B * sizeof(float));
    if (mix < 1) rdml_nn_mse_backward(n->dpred, n->pred, y, B, (float)(1 - mix));
    if (mix > 0) rdml_nn_pearson_backward(n->dpred, n->pred, y, B, (float)mix);
    if (n->p.sigmoid_out)
        for (int64_t q = 0; q < B; q++) {
            float s = n->pred[q] * 0.5f;
            n->dpred[q] *= 2.0f * s * (1.0f - s);
        }
    /* g_a[u], g_b[u]: the output gradients of the pairs whose first / second image is u; the
     * output bias's gradient (every rank, over all pairs) */
    memset(n->gs, 0, (size_t)(2 * U) * sizeof(float));
    for (int64_t q = 0; q < B; q++) {
        n->gs[2 * n->side[2 * q]] += n->dpred[q];
        n->gs[2 * n->side[2 * q + 1] + 1] += n->dpred[q];
        g[n->bd] += n->dpred[q];
    }
    /* backward: each own shard's dense weights and towers into its gradient part (S = 1: the
     * gradient itself), images in ascending order */
    for (int64_t k = k0; k < k1; k++) {
        int64_t u0 = rdml_nn_shard_lo(k, U, S), u1 = rdml_nn_shard_lo(k + 1, U, S);
        float *gk = S > 1 ? n->part + k * np : g;
        if (S > 1) memset(gk, 0, (size_t)np * sizeof *gk);
        if (u1 <= u0) continue;
        rdml_nn_linear_backward(NULL, gk + n->wd, NULL, n->gs + 2 * u0, n->p2 + (u0 - ua) * F, NULL, u1 - u0,
                                F, 2);
        for (int64_t u = u0; u < u1; u++)
            if (n->gs[2 * u] != 0.0f || n->gs[2 * u + 1] != 0.0f)
                tower_backward(n, imgs + n->urow[u] * S2, u - ua, n->gs[2 * u], n->gs[2 * u + 1], gk);
    }
    /* the parts' sum as the fixed tree over the shards; the output bias (last) is not in it */
    if (S > 1) {
        RDML_TRY(rdml_nn_tree_sum(ctx, n->part, n->gbuf, np, S, ng, nr, comm, n->bd, n->cnt));
        memcpy(g, n->part, (size_t)n->bd * sizeof *g);
    }
    if (!isfinite(*loss))
        return RDML_FAIL(ctx, RDML_EDATA, "the CNN training loss became %g at step %lld (diverged; "
                         "hint: lower train.lr)", *loss, (long long)n->t + 1);
    if (opt) {
        n->t++;
        rdml_optim_update(opt, n->param, n->grad, n->state, n->nparam, n->t);
    }
    return RDML_OK;
}

int rdml_cnn_step(rdml_ctx *ctx, rdml_cnn *n, const rdml_optim *opt, const float *imgs,
                  int64_t B, const int64_t *ij, const float *y, double *loss) {
    return rdml_cnn_step_sharded(ctx, n, opt, imgs, B, ij, y, 1, NULL, loss);
}

int rdml_cnn_predict_comm(rdml_ctx *ctx, rdml_cnn *n, const float *imgs, int64_t P, const int64_t *ij,
                          MPI_Comm comm, float *pred) {
    if (P < 1) return RDML_OK;
    int g = 1, rank = 0;
    if (comm != NULL && comm != MPI_COMM_NULL) {
        MPI_Comm_size(comm, &g);
        MPI_Comm_rank(comm, &rank);
    }
    int64_t *side = rdml_malloc(ctx, (size_t)(2 * P) * sizeof *side, "CNN prediction pairs");
    int64_t *urow = side ? rdml_malloc(ctx, (size_t)(2 * P) * sizeof *urow, "CNN prediction images") : NULL;
    float *s = NULL;
    int *cnt = NULL;
    int64_t U = 0, S2 = n->S * n->S;
    int rc = urow ? cnn_index(ctx, P, ij, side, urow, &U) : ctx->code;
    if (!rc && !(s = rdml_malloc(ctx, (size_t)(2 * U) * sizeof *s, "CNN prediction scores"))) rc = ctx->code;
    if (!rc && g > 1 && !(cnt = rdml_malloc(ctx, 2 * (size_t)g * sizeof *cnt, "CNN prediction counts")))
        rc = ctx->code;
    /* chunks of images (the same for every g, so the scores are too); with g > 1 ranks rank r
     * runs the contiguous run of chunks c with c g / nc = r */
    int64_t chunk = U < 64 ? U : 64;
    if (!rc && n->p.max_bytes > 0) {
        int64_t fit = (n->p.max_bytes - rdml_cnn_bytes_fixed(&n->p)) / rdml_cnn_bytes_per_image(&n->p);
        if (fit < chunk) chunk = fit > 1 ? fit : 1; /* one image that does not fit fails below */
    }
    if (!rc) rc = cnn_images_work(ctx, n, chunk, 0);
    if (g > 1) rc = rdml_agree(ctx, comm, rc);
    int64_t nc = rc ? 0 : (U + chunk - 1) / chunk, c0 = 0, c1 = nc;
    if (g > 1 && !rc) {
        for (int r = 0; r < g; r++) {
            int64_t a, b;
            rdml_nn_shard_range(r, g, nc, &a, &b);
            int64_t lo = a * chunk < U ? a * chunk : U, hi = b * chunk < U ? b * chunk : U;
            if (2 * hi > INT_MAX) {
                rc = RDML_FAIL(ctx, RDML_ENOMEM, "CNN predictions of %lld images exchange more than %d "
                               "values", (long long)U, INT_MAX);
                break;
            }
            cnt[r] = (int)(2 * (hi - lo));
            cnt[g + r] = (int)(2 * lo);
            if (r == rank) {
                c0 = a;
                c1 = b;
            }
        }
    }
    for (int64_t c = c0; c < c1 && !rc; c++) {
        int64_t u0 = c * chunk, m = U - u0 < chunk ? U - u0 : chunk;
        for (int64_t k = 0; k < m; k++) tower_forward(n, imgs + urow[u0 + k] * S2, k);
        rdml_nn_linear_forward(s + 2 * u0, n->p2, n->param + n->wd, NULL, m, n->F, 2);
    }
    if (g > 1 && !rc)
        rc = rdml_mpi_check(ctx, MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_FLOAT, s, cnt, cnt + g, MPI_FLOAT, comm),
                            "MPI_Allgatherv");
    if (!rc) pair_outputs(n, P, side, s, pred);
    free(side);
    free(urow);
    free(s);
    free(cnt);
    return rc;
}

int rdml_cnn_predict(rdml_ctx *ctx, rdml_cnn *n, const float *imgs, int64_t P, const int64_t *ij,
                     float *pred) {
    return rdml_cnn_predict_comm(ctx, n, imgs, P, ij, NULL, pred);
}
