/* The pair network behind the siamese model and the concatenated-embedding MLP, trained
 * pair-decomposed: the head's first layer on [z_a ; z_b] is Wa z_a + Wb z_b, so per batch the
 * tower z and U = Wa z, V = Wb z are computed once per DISTINCT image (a GEMM over the batch's
 * images), each pair costs relu(U_a + V_b + b1) and the small rest of the head, and the
 * backward scatters dU, dV per image and goes back through the tower with one GEMM per layer.
 * The per-pair mode runs the tower on both sides of every pair (2B rows), which is PyTorch's
 * batching; with dropout off both modes compute the same function and gradient. Dropout
 * masks are keyed by (batch key, layer, image row in decomposed mode / pair side in per-pair
 * mode), so in decomposed mode one image shares its tower mask across the pairs of a batch.
 * With several threads (run.threads) a step runs its independent pieces on a team of threads
 * with one BLAS thread each (team.c; "the step on the team" below), with the same results for
 * every thread count. Left out: mixed precision, other activations. */
#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rdml/mpiutil.h"
#include "rdml/nn.h"
#include "nn_priv.h"

#define ML RDML_PAIRNET_MAXLAYERS

struct rdml_pairnet {
    rdml_pairnet_params p;
    int64_t Z, H1;               /* tower output width (D without tower), head first width */
    int64_t nparam, t;           /* parameters, optimiser steps taken */
    float *param, *grad, *state; /* nparam each (state 2 nparam) */
    int64_t tw[ML], tb[ML];      /* offsets of tower weights/biases */
    int64_t hw[ML + 1], hb[ML + 1]; /* head layers; [nhead] is the 1-unit output */
    int64_t hin[ML + 1];         /* input width of head layer l (l >= 1) */
    /* workspace for up to capB pairs / 2 capB image rows */
    int64_t capB;
    int64_t *rows, *la, *lb;     /* distinct image rows, pair -> local index */
    uint64_t *keys;
    float *x0;                   /* m x D gathered embeddings */
    /* tower and head layers: tr/hr the ReLU output (eval) or the pre-activation (train with
     * dropout), td/hd the output after dropout (train); tout/hout point at what the next layer
     * reads, tscale/hscale the dropout's kept value (1 without dropout). The backward needs
     * only tout/hout: a unit passed its gradient iff its output is > 0. */
    float *tr[ML], *td[ML];      /* m x width */
    float *U;                    /* m x 2 H1: row i is [U_i | V_i] (one block per row to exchange) */
    float *dU, *dV;              /* m x H1 */
    float *hr[ML], *hd[ML];      /* B x width */
    const float *tout[ML], *hout[ML];
    float tscale[ML], hscale[ML];
    float *o, *pred, *dpred, *dtmp; /* B */
    const float *dout;           /* d loss / d output: dpred or dtmp */
    /* sharded steps: S parameter-gradient parts (S x nparam), S x [dU_k | dV_k] (m x H1 each) */
    float *part, *dUk, *gbuf;    /* gbuf: the exchanged tree nodes (S x nparam) */
    int64_t capS, capSrows;
    int *cnt, capg;              /* 2 x capg ints: MPI_Allgatherv counts, displacements */
    float *ga, *gb, *gc;         /* m x maxwidth scratch gradients */
    int64_t maxw;
    /* image-row dedup: stamp[row] == epoch -> loc[row] */
    int64_t nstamp, epoch;
    int64_t *stamp, *loc;
    int64_t m;                   /* distinct rows of the current batch */
    /* the step's threads (one BLAS thread each; NULL: one thread), made for team_blas BLAS
     * threads */
    rdml_nn_team *team;
    int team_blas;
};

void rdml_pairnet_defaults(rdml_pairnet_params *p) {
    memset(p, 0, sizeof *p);
    p->in_dim = 512;
    p->ntower = 2;
    p->tower[0] = 512;
    p->tower[1] = 256;
    p->nhead = 1;
    p->head[0] = 128;
    p->tower_dropout = 0.5;
    p->mode = RDML_PAIRNET_DECOMPOSED;
}

void rdml_pairnet_mlp_defaults(rdml_pairnet_params *p, int extra) {
    memset(p, 0, sizeof *p);
    p->in_dim = 512;
    p->nhead = 1 + (extra < 0 ? 0 : extra > ML - 1 ? ML - 1 : extra);
    p->head[0] = 512;
    for (int l = 1; l < p->nhead; l++) p->head[l] = p->head[l - 1] / 2 > 0 ? p->head[l - 1] / 2 : 1;
    p->mode = RDML_PAIRNET_DECOMPOSED;
}

int rdml_pairnet_check(rdml_ctx *ctx, const rdml_pairnet_params *p) {
    if (p->in_dim < 1)
        return RDML_FAIL(ctx, RDML_ECONFIG, "network input width (embedding width D) is %lld; it "
                         "must be >= 1", (long long)p->in_dim);
    if (p->ntower < 0 || p->ntower > ML)
        return RDML_FAIL(ctx, RDML_ECONFIG, "%d tower layers: between 0 and %d", p->ntower, ML);
    if (p->nhead < 1 || p->nhead > ML)
        return RDML_FAIL(ctx, RDML_ECONFIG, "%d hidden head layers: between 1 and %d (the 1-unit "
                         "output is added)", p->nhead, ML);
    for (int l = 0; l < p->ntower; l++)
        if (p->tower[l] < 1 || p->tower[l] > 1 << 20)
            return RDML_FAIL(ctx, RDML_ECONFIG, "tower layer %d width %lld: must be 1..1048576", l + 1,
                             (long long)p->tower[l]);
    for (int l = 0; l < p->nhead; l++)
        if (p->head[l] < 1 || p->head[l] > 1 << 20)
            return RDML_FAIL(ctx, RDML_ECONFIG, "head layer %d width %lld: must be 1..1048576", l + 1,
                             (long long)p->head[l]);
    if (!(p->tower_dropout >= 0 && p->tower_dropout < 1) || !(p->head_dropout >= 0 && p->head_dropout < 1))
        return RDML_FAIL(ctx, RDML_ECONFIG, "dropout %g / %g: must be in [0, 1)", p->tower_dropout,
                         p->head_dropout);
    if (!(p->pearson_mix >= 0 && p->pearson_mix <= 1))
        return RDML_FAIL(ctx, RDML_ECONFIG, "pearson_mix %g: must be in [0, 1]", p->pearson_mix);
    return RDML_OK;
}

static void free_work(rdml_pairnet *n) {
    free(n->rows);
    free(n->la);
    free(n->lb);
    free(n->keys);
    free(n->x0);
    for (int l = 0; l < ML; l++) {
        free(n->tr[l]);
        free(n->td[l]);
        free(n->hr[l]);
        free(n->hd[l]);
        n->tr[l] = n->td[l] = n->hr[l] = n->hd[l] = NULL;
    }
    free(n->U);
    free(n->dU);
    free(n->dV);
    free(n->o);
    free(n->pred);
    free(n->dpred);
    free(n->dtmp);
    free(n->ga);
    free(n->gb);
    free(n->gc);
    n->rows = n->la = n->lb = NULL;
    n->keys = NULL;
    n->x0 = n->U = n->dU = n->dV = n->o = n->pred = n->dpred = n->dtmp = n->ga = n->gb = n->gc = NULL;
    n->capB = 0;
}

static int ensure_work(rdml_ctx *ctx, rdml_pairnet *n, int64_t B) {
    if (B <= n->capB) return RDML_OK;
    free_work(n);
    const rdml_pairnet_params *p = &n->p;
    int64_t M = 2 * B, D = p->in_dim;
    size_t f = sizeof(float);
    int ok = 1;
#define A(ptr, cnt) ok = ok && ((ptr) = malloc((size_t)(cnt) * f)) != NULL
    n->rows = malloc((size_t)M * sizeof *n->rows);
    n->la = malloc((size_t)B * sizeof *n->la);
    n->lb = malloc((size_t)B * sizeof *n->lb);
    n->keys = malloc((size_t)M * sizeof *n->keys);
    ok = n->rows && n->la && n->lb && n->keys;
    A(n->x0, M * D);
    for (int l = 0; l < p->ntower; l++) {
        A(n->tr[l], M * p->tower[l]);
        if (l < p->ntower - 1 && p->tower_dropout > 0) A(n->td[l], M * p->tower[l]);
    }
    A(n->U, M * 2 * n->H1); /* row i: [U_i | V_i] */
    A(n->dU, M * n->H1);
    A(n->dV, M * n->H1);
    for (int l = 0; l < p->nhead; l++) {
        A(n->hr[l], B * p->head[l]);
        if (p->head_dropout > 0) A(n->hd[l], B * p->head[l]);
    }
    A(n->o, B);
    A(n->pred, B);
    A(n->dpred, B);
    A(n->dtmp, B);
    A(n->ga, M * n->maxw);
    A(n->gb, M * n->maxw);
    A(n->gc, M * n->maxw);
#undef A
    if (!ok) {
        free_work(n);
        return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for a batch of %lld pairs (hint: lower "
                         "train.batch)", (long long)B);
    }
    n->capB = B;
    return RDML_OK;
}

int rdml_pairnet_create(rdml_ctx *ctx, const rdml_pairnet_params *p, uint64_t seed,
                        uint64_t init_key, rdml_pairnet **out) {
    *out = NULL;
    RDML_TRY(rdml_pairnet_check(ctx, p));
    rdml_pairnet *n = rdml_calloc(ctx, 1, sizeof *n, "pair network");
    if (!n) return ctx->code;
    n->p = *p;
    n->Z = p->ntower ? p->tower[p->ntower - 1] : p->in_dim;
    n->H1 = p->head[0];
    int64_t off = 0, in = p->in_dim, maxw = p->in_dim;
    for (int l = 0; l < p->ntower; l++) {
        n->tw[l] = off;
        off += p->tower[l] * in;
        n->tb[l] = off;
        off += p->tower[l];
        in = p->tower[l];
        if (in > maxw) maxw = in;
    }
    in = 2 * n->Z;
    for (int l = 0; l <= p->nhead; l++) {
        int64_t w = l < p->nhead ? p->head[l] : 1;
        n->hin[l] = in;
        n->hw[l] = off;
        off += w * in;
        n->hb[l] = off;
        off += w;
        in = w;
        if (w > maxw) maxw = w;
    }
    if (n->H1 > maxw) maxw = n->H1;
    n->maxw = maxw;
    n->nparam = off;
    n->param = rdml_calloc(ctx, (size_t)off, sizeof(float), "network parameters");
    n->grad = n->param ? rdml_calloc(ctx, (size_t)off, sizeof(float), "network gradients") : NULL;
    n->state = n->grad ? rdml_calloc(ctx, (size_t)(2 * off), sizeof(float), "optimiser state") : NULL;
    if (!n->state) {
        rdml_pairnet_free(&n);
        return ctx->code;
    }
    rdml_rng r = rdml_rng_make(seed, rdml_rng_substream(RDML_STREAM_INIT, init_key), 0);
    in = p->in_dim;
    for (int l = 0; l < p->ntower; l++) {
        rdml_nn_init_uniform(n->param + n->tw[l], p->tower[l] * in, n->param + n->tb[l], p->tower[l], in, &r);
        in = p->tower[l];
    }
    for (int l = 0; l <= p->nhead; l++) {
        int64_t w = l < p->nhead ? p->head[l] : 1;
        rdml_nn_init_uniform(n->param + n->hw[l], w * n->hin[l], n->param + n->hb[l], w, n->hin[l], &r);
    }
    *out = n;
    return RDML_OK;
}

void rdml_pairnet_free(rdml_pairnet **net) {
    if (!net || !*net) return;
    rdml_pairnet *n = *net;
    free_work(n);
    free(n->param);
    free(n->grad);
    free(n->state);
    free(n->stamp);
    free(n->loc);
    free(n->part);
    free(n->dUk);
    free(n->gbuf);
    free(n->cnt);
    rdml_nn_team_free(&n->team);
    free(n);
    *net = NULL;
}

float *rdml_pairnet_params_buf(rdml_pairnet *net, int64_t *n) {
    if (n) *n = net->nparam;
    return net->param;
}

const float *rdml_pairnet_grads_buf(const rdml_pairnet *net) { return net->grad; }

void rdml_pairnet_set_output_bias(rdml_pairnet *net, double value) {
    if (net->p.sigmoid_out) {
        double m = fmin(fmax(value / 2, 1e-3), 1 - 1e-3);
        value = log(m / (1 - m));
    }
    net->param[net->hb[net->p.nhead]] = (float)value;
}

/* Fill rows/la/lb: the batch's image rows (distinct, in first-seen order, when decomposed). */
static int plan_rows(rdml_ctx *ctx, rdml_pairnet *n, int64_t B, const int64_t *ij, int dedup) {
    if (!dedup) {
        for (int64_t q = 0; q < B; q++) {
            n->rows[q] = ij[2 * q];
            n->rows[B + q] = ij[2 * q + 1];
            n->la[q] = q;
            n->lb[q] = B + q;
        }
        n->m = 2 * B;
        return RDML_OK;
    }
    int64_t mx = -1;
    for (int64_t q = 0; q < 2 * B; q++) {
        if (ij[q] < 0) return RDML_FAIL(ctx, RDML_EDATA, "pair %lld names image row %lld", (long long)(q / 2), (long long)ij[q]);
        if (ij[q] > mx) mx = ij[q];
    }
    if (mx >= n->nstamp) {
        int64_t ns = mx + 1 > 2 * n->nstamp ? mx + 1 : 2 * n->nstamp;
        int64_t *s = realloc(n->stamp, (size_t)ns * sizeof *s);
        if (s) n->stamp = s;
        int64_t *l = s ? realloc(n->loc, (size_t)ns * sizeof *l) : NULL;
        if (!s || !l) return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for %lld image rows", (long long)ns);
        n->loc = l;
        for (int64_t i = n->nstamp; i < ns; i++) n->stamp[i] = 0;
        n->nstamp = ns;
    }
    int64_t e = ++n->epoch, m = 0;
    for (int64_t q = 0; q < 2 * B; q++) {
        int64_t r = ij[q];
        if (n->stamp[r] != e) {
            n->stamp[r] = e;
            n->loc[r] = m;
            n->rows[m++] = r;
        }
        if (q % 2 == 0) n->la[q / 2] = n->loc[r];
        else n->lb[q / 2] = n->loc[r];
    }
    n->m = m;
    return RDML_OK;
}

/* Where each layer's output is read from, and its dropout's kept value: set before a forward
 * (train: dropout on), so that the row and pair passes below only read them. */
static void set_outs(rdml_pairnet *n, int train) {
    const rdml_pairnet_params *p = &n->p;
    for (int l = 0; l < p->ntower; l++) {
        double dp = n->td[l] && train ? p->tower_dropout : 0.0;
        n->tout[l] = dp > 0 ? n->td[l] : n->tr[l];
        n->tscale[l] = rdml_nn_dropout_scale(dp);
    }
    for (int l = 0; l < p->nhead; l++) {
        double dp = n->hd[l] && train ? p->head_dropout : 0.0;
        n->hout[l] = dp > 0 ? n->hd[l] : n->hr[l];
        n->hscale[l] = rdml_nn_dropout_scale(dp);
    }
}

/* The tower and U, V of the images rows [r0, r1) of the planned batch (n->rows). train:
 * dropout on, keyed by (drop_seed, key, layer, image row). Row results do not depend on
 * which other rows run in the same call. */
static void tower_fwd(rdml_pairnet *n, const float *E, int64_t r0, int64_t r1, int train, int dedup,
                      uint64_t drop_seed, uint64_t key) {
    const rdml_pairnet_params *p = &n->p;
    int64_t D = p->in_dim, H1 = n->H1, Z = n->Z, mr = r1 - r0;
    if (mr <= 0) return;
    for (int64_t i = r0; i < r1; i++) memcpy(n->x0 + i * D, E + n->rows[i] * D, (size_t)D * sizeof(float));
    const float *x = n->x0 + r0 * D;
    int64_t in = D;
    for (int l = 0; l < p->ntower; l++) {
        int64_t w = p->tower[l];
        float *tr = n->tr[l] + r0 * w;
        rdml_nn_linear_forward(tr, x, n->param + n->tw[l], n->param + n->tb[l], mr, in, w);
        double dp = n->td[l] && train ? p->tower_dropout : 0.0;
        if (dp > 0) {
            for (int64_t i = r0; i < r1; i++)
                n->keys[i] = rdml_rng_substream(rdml_rng_substream(key, (uint64_t)l),
                                                dedup ? (uint64_t)n->rows[i] : (uint64_t)i + (1ull << 62));
            rdml_nn_relu_dropout_forward(n->td[l] + r0 * w, tr, mr, w, dp, drop_seed, n->keys + r0);
        } else {
            rdml_nn_relu_forward(tr, tr, mr * w);
        }
        x = n->tout[l] + r0 * w;
        in = w;
    }
    /* U = z Wa^T, V = z Wb^T: W1 is (H1, 2Z), Wa its left half, Wb its right half */
    const float *W1 = n->param + n->hw[0];
    float *uv = n->U + r0 * 2 * H1;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)mr, (int)H1, (int)Z, 1.0f, x, (int)Z, W1,
                (int)(2 * Z), 0.0f, uv, (int)(2 * H1));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)mr, (int)H1, (int)Z, 1.0f, x, (int)Z,
                W1 + Z, (int)(2 * Z), 0.0f, uv + H1, (int)(2 * H1));
}

/* The head of pairs [q0, q1) from U, V (all rows the pairs name) into n->pred. */
static void head_fwd(rdml_pairnet *n, int64_t q0, int64_t q1, int train, uint64_t drop_seed, uint64_t key) {
    const rdml_pairnet_params *p = &n->p;
    int64_t H1 = n->H1, B = q1 - q0;
    if (B <= 0) return;
    const float *b1 = n->param + n->hb[0];
    for (int64_t q = q0; q < q1; q++) {
        const float *u = n->U + n->la[q] * 2 * H1, *v = n->U + n->lb[q] * 2 * H1 + H1;
        float *h = n->hr[0] + q * H1;
        for (int64_t k = 0; k < H1; k++) {
            float s = u[k] + v[k] + b1[k];
            h[k] = s > 0.0f ? s : 0.0f;
        }
    }
    for (int l = 0; l <= p->nhead; l++) {
        if (l > 0) {
            int64_t w = l < p->nhead ? p->head[l] : 1;
            float *dst = l < p->nhead ? n->hr[l] + q0 * w : n->o + q0;
            rdml_nn_linear_forward(dst, n->hout[l - 1] + q0 * n->hin[l], n->param + n->hw[l],
                                   n->param + n->hb[l], B, n->hin[l], w);
            if (l == p->nhead) break;
        }
        /* layer 0's ReLU is done above (a second one is the identity) */
        int64_t w = p->head[l];
        double dp = n->hd[l] && train ? p->head_dropout : 0.0;
        if (dp > 0) {
            for (int64_t q = q0; q < q1; q++)
                n->keys[q] = rdml_rng_substream(rdml_rng_substream(key, 1000 + (uint64_t)l), (uint64_t)q);
            rdml_nn_relu_dropout_forward(n->hd[l] + q0 * w, n->hr[l] + q0 * w, B, w, dp, drop_seed, n->keys + q0);
        } else if (l > 0) {
            rdml_nn_relu_forward(n->hr[l] + q0 * w, n->hr[l] + q0 * w, B * w);
        }
    }
    if (p->sigmoid_out) {
        rdml_nn_sigmoid_forward(n->pred + q0, n->o + q0, B);
        for (int64_t q = q0; q < q1; q++) n->pred[q] *= 2.0f;
    } else {
        memcpy(n->pred + q0, n->o + q0, (size_t)B * sizeof(float));
    }
}

static double loss_of(const rdml_pairnet *n, const float *y, int64_t B) {
    double mix = n->p.pearson_mix, l = 0;
    if (mix < 1) l += (1 - mix) * rdml_nn_mse_forward(n->pred, y, B);
    if (mix > 0) l += mix * rdml_nn_pearson_forward(n->pred, y, B);
    return l;
}

/* d loss / d output of all B pairs (needs every prediction: the Pearson part is not a sum over
 * pairs) into n->dout. */
static void loss_backward(rdml_pairnet *n, const float *y, int64_t B) {
    const rdml_pairnet_params *p = &n->p;
    double mix = p->pearson_mix;
    memset(n->dpred, 0, (size_t)B * sizeof(float));
    if (mix < 1) rdml_nn_mse_backward(n->dpred, n->pred, y, B, (float)(1 - mix));
    if (mix > 0) rdml_nn_pearson_backward(n->dpred, n->pred, y, B, (float)mix);
    n->dout = n->dpred;
    if (p->sigmoid_out) {
        /* pred = 2 s: d o = d pred * 2 s (1 - s), s = pred / 2 */
        for (int64_t q = 0; q < B; q++) {
            float s = n->pred[q] * 0.5f;
            n->dtmp[q] = n->dpred[q] * 2.0f * s * (1.0f - s);
        }
        n->dout = n->dtmp;
    }
}

/* Backward of the head over pairs [q0, q1): the head's parameter gradients into g (a full
 * parameter vector: b1, the hidden head layers, the output), d loss / d U and d V of their
 * images into dU, dV (m x H1, accumulated). */
static void head_bwd(rdml_pairnet *n, int64_t q0, int64_t q1, float *g, float *dU, float *dV) {
    const rdml_pairnet_params *p = &n->p;
    int64_t H1 = n->H1, B = q1 - q0;
    if (B <= 0) return;
    const float *dout = n->dout + q0;
    /* the output layer: dw_out += dout^T h, db_out += sum dout; the gradient of the last hidden
     * layer's pre-activation is (h > 0) * dout w_out * scale, fused below */
    const int L = p->nhead;
    const float *wout = n->param + n->hw[L];
    rdml_nn_linear_backward(NULL, g + n->hw[L], g + n->hb[L], dout, n->hout[L - 1] + q0 * n->hin[L], wout, B,
                            n->hin[L], 1);
    float *gb1 = g + n->hb[0];
    if (L == 1) {
        /* one pass per pair: the head's hidden gradient, then db1, dU and dV */
        const float *h0 = n->hout[0];
        const float s0 = n->hscale[0];
        for (int64_t q = q0; q < q1; q++) {
            const float dq = n->dout[q], *h = h0 + q * H1;
            float *du = dU + n->la[q] * H1, *dv = dV + n->lb[q] * H1;
            for (int64_t k = 0; k < H1; k++) {
                float d = rdml_nn_sel(h[k] > 0.0f, dq * wout[k] * s0);
                gb1[k] += d;
                du[k] += d;
                dv[k] += d;
            }
        }
        return;
    }
    /* hidden head layers from L - 1 down to 1; ga/gb hold B x width gradients */
    int64_t wl = p->head[L - 1];
    float *dcur = n->ga;
    for (int64_t q = 0; q < B; q++) {
        const float dq = dout[q], *h = n->hout[L - 1] + (q0 + q) * wl;
        const float sl = n->hscale[L - 1];
        float *d = dcur + q * wl;
        for (int64_t k = 0; k < wl; k++) d[k] = rdml_nn_sel(h[k] > 0.0f, dq * wout[k] * sl);
    }
    for (int l = L - 1; l >= 1; l--) {
        int64_t w = p->head[l], win = n->hin[l];
        float *dx = dcur == n->ga ? n->gb : n->ga;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)win, (int)w, 1.0f, dcur,
                    (int)w, n->param + n->hw[l], (int)win, 0.0f, dx, (int)win);
        rdml_nn_linear_backward(NULL, g + n->hw[l], g + n->hb[l], dcur, n->hout[l - 1] + q0 * win,
                                n->param + n->hw[l], B, win, w);
        rdml_nn_relu_dropout_backward(dcur, dx, n->hout[l - 1] + q0 * win, n->hscale[l - 1], B * win);
    }
    for (int64_t q = 0; q < B; q++) {
        const float *d = dcur + q * H1;
        float *du = dU + n->la[q0 + q] * H1, *dv = dV + n->lb[q0 + q] * H1;
        for (int64_t k = 0; k < H1; k++) {
            gb1[k] += d[k];
            du[k] += d[k];
            dv[k] += d[k];
        }
    }
}

/* ---- the step on the team of threads (team.c) ----
 * Every pass below is cut into a FIXED number of pieces (NPIECE, not the number of threads)
 * along dimensions that a GEMM does not sum over (rows of a forward, output units of a weight
 * gradient, rows of an input gradient, columns of the head), at multiples of 16, and each
 * piece is one task with one BLAS thread, whichever thread runs it. A BLAS call's values can
 * depend on its shape and on how many threads OpenBLAS splits it over (kernel tails; measured:
 * a fit with OpenBLAS on 1 and on 2 threads differed), so the pieces, not the threads, fix
 * the arithmetic: the results are the same for every number of threads. The element-wise
 * passes (zeroing, Adam) are split over the threads (any split gives the same values). */
#define NPIECE 2

/* Boundary k of P pieces of [0, n): at multiples of 16, the last at n. */
static int64_t piece(int64_t k, int64_t n, int64_t P) {
    if (k >= P) return n;
    return k * n / P / 16 * 16;
}

static int team_n(const rdml_pairnet *n) { return rdml_nn_team_size(n->team); }

/* The team for the BLAS threads the caller set (run.threads), and one BLAS thread for each of
 * its threads until par_end. Returns the BLAS threads to restore. */
static int par_begin(rdml_pairnet *n) {
    int bt = openblas_get_num_threads();
    if (bt != n->team_blas) {
        rdml_nn_team_free(&n->team);
        n->team = rdml_nn_team_create(bt);
        n->team_blas = bt;
    }
    if (n->team) openblas_set_num_threads(1);
    return bt;
}

static void par_end(rdml_pairnet *n, int bt) {
    if (n->team) openblas_set_num_threads(bt);
}

typedef struct fwd_job {
    rdml_pairnet *n;
    const float *E;
    int64_t lo, len; /* rows (tower) or pairs (head) [lo, lo + len) */
    int parts, train, dedup;
    uint64_t drop_seed, key;
    float *zero[3];  /* regions zeroed by tasks parts .. parts + zparts - 1 */
    int64_t nzero[3];
    int zparts;
} fwd_job;

static void tower_fwd_task(void *arg, int k) {
    fwd_job *j = arg;
    if (k < j->parts) {
        tower_fwd(j->n, j->E, j->lo + piece(k, j->len, j->parts), j->lo + piece(k + 1, j->len, j->parts), j->train,
                  j->dedup, j->drop_seed, j->key);
        return;
    }
    k -= j->parts;
    for (int z = 0; z < 3; z++) {
        if (!j->zero[z]) continue;
        int64_t a = piece(k, j->nzero[z], j->zparts), b = piece(k + 1, j->nzero[z], j->zparts);
        memset(j->zero[z] + a, 0, (size_t)(b - a) * sizeof(float));
    }
}

static void head_fwd_task(void *arg, int k) {
    fwd_job *j = arg;
    head_fwd(j->n, j->lo + piece(k, j->len, j->parts), j->lo + piece(k + 1, j->len, j->parts), j->train, j->drop_seed,
             j->key);
}

/* tower_fwd of rows [r0, r1) on the team; with zero (up to 3 regions of nzero floats; NULL
 * ends) also zeroes those, in tasks of their own. */
static void tower_fwd_par(rdml_pairnet *n, const float *E, int64_t r0, int64_t r1, int train, int dedup,
                          uint64_t drop_seed, uint64_t key, float *const *zero, const int64_t *nzero) {
    int T = team_n(n);
    fwd_job j = {.n = n, .E = E, .lo = r0, .len = r1 - r0, .parts = NPIECE, .train = train, .dedup = dedup,
                 .drop_seed = drop_seed, .key = key, .zparts = 0};
    for (int z = 0; z < 3 && zero && zero[z]; z++) {
        j.zero[z] = zero[z];
        j.nzero[z] = nzero[z];
        j.zparts = T;
    }
    rdml_nn_team_run(n->team, j.parts + j.zparts, tower_fwd_task, &j);
}

static void head_fwd_par(rdml_pairnet *n, int64_t q0, int64_t q1, int train, uint64_t drop_seed, uint64_t key) {
    fwd_job j = {.n = n, .lo = q0, .len = q1 - q0, .parts = NPIECE, .train = train, .drop_seed = drop_seed,
                 .key = key};
    rdml_nn_team_run(n->team, j.parts, head_fwd_task, &j);
}

/* Forward of B pairs into n->pred, every row and pair here. */
static int forward(rdml_ctx *ctx, rdml_pairnet *n, const float *E, int64_t B, const int64_t *ij,
                   int train, int dedup, uint64_t drop_seed, uint64_t key) {
    RDML_TRY(ensure_work(ctx, n, B));
    RDML_TRY(plan_rows(ctx, n, B, ij, dedup));
    set_outs(n, train);
    tower_fwd_par(n, E, 0, n->m, train, dedup, drop_seed, key, NULL, NULL);
    head_fwd_par(n, 0, B, train, drop_seed, key);
    return RDML_OK;
}

typedef struct hb_job {
    rdml_pairnet *n;
    int64_t q0, q1;
    int parts;
    float *g, *dU, *dV;
} hb_job;

/* Columns [k0, k1) of the one-hidden-layer head's backward (head_bwd's first branch): the
 * output weights' gradient of those columns (and, in the piece at column 0, the output bias's),
 * then per pair the hidden gradient, db1, dU and dV of those columns. */
static void head_bwd_task(void *arg, int k) {
    hb_job *j = arg;
    rdml_pairnet *n = j->n;
    const int L = n->p.nhead;
    if (L != 1) {
        head_bwd(n, j->q0, j->q1, j->g, j->dU, j->dV);
        return;
    }
    const int64_t H1 = n->H1, B = j->q1 - j->q0, q0 = j->q0;
    const int64_t k0 = piece(k, H1, j->parts), k1 = piece(k + 1, H1, j->parts);
    if (B <= 0 || k1 <= k0) return;
    const float *dout = n->dout + q0, *wout = n->param + n->hw[L], *h0 = n->hout[0];
    float *g = j->g;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, 1, (int)(k1 - k0), (int)B, 1.0f, dout, 1,
                h0 + q0 * H1 + k0, (int)H1, 1.0f, g + n->hw[L] + k0, (int)H1);
    if (k0 == 0)
        for (int64_t r = 0; r < B; r++) g[n->hb[L]] += dout[r];
    float *gb1 = g + n->hb[0];
    const float s0 = n->hscale[0];
    for (int64_t q = q0; q < j->q1; q++) {
        const float dq = n->dout[q], *h = h0 + q * H1;
        float *du = j->dU + n->la[q] * H1, *dv = j->dV + n->lb[q] * H1;
        for (int64_t c = k0; c < k1; c++) {
            float d = rdml_nn_sel(h[c] > 0.0f, dq * wout[c] * s0);
            gb1[c] += d;
            du[c] += d;
            dv[c] += d;
        }
    }
}

static void head_bwd_par(rdml_pairnet *n, int64_t q0, int64_t q1, float *g, float *dU, float *dV) {
    hb_job j = {.n = n, .q0 = q0, .q1 = q1, .parts = n->p.nhead == 1 ? NPIECE : 1, .g = g, .dU = dU, .dV = dV};
    rdml_nn_team_run(n->team, j.parts, head_bwd_task, &j);
}

typedef struct tb_job {
    rdml_pairnet *n;
    int64_t r0, mr;
    float *g;
    int phase, l, s; /* phase 1: W1 and dz; 2: layer l's weights and input gradient */
    float *t, *y, *t2; /* t: layer l's pre-activation gradient; y: dX scratch; t2: layer l - 1's */
} tb_job;

/* dW_l (+ db_l) of output units [o0, o1) from t, layer l's pre-activation gradient. */
static void tower_dw(tb_job *j, int l, int64_t o0, int64_t o1) {
    rdml_pairnet *n = j->n;
    const rdml_pairnet_params *p = &n->p;
    if (o1 <= o0) return;
    int64_t w = p->tower[l], win = l ? p->tower[l - 1] : p->in_dim, mr = j->mr;
    const float *xin = (l == 0 ? n->x0 : n->tout[l - 1]) + j->r0 * win;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(o1 - o0), (int)win, (int)mr, 1.0f, j->t + o0, (int)w,
                xin, (int)win, 1.0f, j->g + n->tw[l] + o0 * win, (int)win);
    float *db = j->g + n->tb[l];
    for (int64_t r = 0; r < mr; r++)
        for (int64_t o = o0; o < o1; o++) db[o] += j->t[r * w + o];
}

static void tower_bwd_task(void *arg, int k) {
    tb_job *j = arg;
    rdml_pairnet *n = j->n;
    const rdml_pairnet_params *p = &n->p;
    const int64_t H1 = n->H1, Z = n->Z, mr = j->mr, s = j->s;
    const float *W1 = n->param + n->hw[0];
    const float *dU = n->dU + j->r0 * H1, *dV = n->dV + j->r0 * H1;
    if (j->phase == 1 && k < s) { /* dWa += dU^T z, dWb += dV^T z over head units [h0, h1) */
        int64_t h0 = piece(k, H1, s), h1 = piece(k + 1, H1, s);
        if (h1 <= h0) return;
        const float *z = (p->ntower ? n->tout[p->ntower - 1] : n->x0) + j->r0 * Z;
        float *gW1 = j->g + n->hw[0] + h0 * 2 * Z;
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(h1 - h0), (int)Z, (int)mr, 1.0f, dU + h0, (int)H1,
                    z, (int)Z, 1.0f, gW1, (int)(2 * Z));
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(h1 - h0), (int)Z, (int)mr, 1.0f, dV + h0, (int)H1,
                    z, (int)Z, 1.0f, gW1 + Z, (int)(2 * Z));
    } else if (j->phase == 1) { /* rows [a, b): dz = dU Wa + dV Wb, then the last layer's ReLU/dropout */
        int64_t a = piece(k - s, mr, s), b = piece(k - s + 1, mr, s), L = p->ntower - 1;
        if (b <= a) return;
        float *dz = j->y + a * Z;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(b - a), (int)Z, (int)H1, 1.0f, dU + a * H1,
                    (int)H1, W1, (int)(2 * Z), 0.0f, dz, (int)Z);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(b - a), (int)Z, (int)H1, 1.0f, dV + a * H1,
                    (int)H1, W1 + Z, (int)(2 * Z), 1.0f, dz, (int)Z);
        rdml_nn_relu_dropout_backward(j->t + a * Z, dz, n->tout[L] + (j->r0 + a) * Z, n->tscale[L], (b - a) * Z);
    } else if (k < s) { /* layer l's weight gradient, output units piece k */
        int64_t w = p->tower[j->l];
        tower_dw(j, j->l, piece(k, w, s), piece(k + 1, w, s));
    } else { /* rows [a, b) of dX = t W_l, then layer l - 1's ReLU/dropout */
        int l = j->l;
        int64_t w = p->tower[l], win = p->tower[l - 1];
        int64_t a = piece(k - s, mr, s), b = piece(k - s + 1, mr, s);
        if (b <= a) return;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(b - a), (int)win, (int)w, 1.0f, j->t + a * w,
                    (int)w, n->param + n->tw[l], (int)win, 0.0f, j->y + a * win, (int)win);
        rdml_nn_relu_dropout_backward(j->t2 + a * win, j->y + a * win, n->tout[l - 1] + (j->r0 + a) * win,
                                      n->tscale[l - 1], (b - a) * win);
    }
}

/* tower_bwd on the team. Phase 1: W1's gradient (pieces of head units) next to dz = dU Wa + dV
 * Wb and the last layer's ReLU/dropout backward (pieces of rows); then per tower layer its
 * weight gradient (pieces of units) next to its input gradient and the previous layer's
 * ReLU/dropout backward (pieces of rows): the two halves of a phase cost the same. The first
 * layer's input gradient is not needed: its weight gradient is cut in NPIECE pieces. */
static void tower_bwd_par(rdml_pairnet *n, int64_t r0, int64_t r1, float *g) {
    const rdml_pairnet_params *p = &n->p;
    const int T = NPIECE;
    if (r1 <= r0) return;
    tb_job j = {.n = n, .r0 = r0, .mr = r1 - r0, .g = g, .phase = 1, .s = T / 2 > 1 ? T / 2 : 1,
                .t = n->gb, .y = n->ga, .t2 = n->gc};
    if (p->ntower == 0) {
        j.s = T;
        rdml_nn_team_run(n->team, T, tower_bwd_task, &j);
        return;
    }
    rdml_nn_team_run(n->team, 2 * (int)j.s, tower_bwd_task, &j);
    j.phase = 2;
    for (int l = p->ntower - 1; l >= 1; l--) {
        j.l = l;
        rdml_nn_team_run(n->team, 2 * (int)j.s, tower_bwd_task, &j);
        float *t = j.t; /* layer l - 1's gradient is in t2; t and y are free */
        j.t = j.t2;
        j.t2 = j.y;
        j.y = t;
    }
    j.l = 0;
    j.s = T; /* only weight pieces */
    rdml_nn_team_run(n->team, T, tower_bwd_task, &j);
}

typedef struct opt_job {
    rdml_pairnet *n;
    const rdml_optim *opt;
    int parts;
} opt_job;

static void optim_task(void *arg, int k) {
    opt_job *j = arg;
    rdml_pairnet *n = j->n;
    int64_t a = piece(k, n->nparam, j->parts), b = piece(k + 1, n->nparam, j->parts);
    if (b > a)
        rdml_nn_optim_range(j->opt, n->param + a, n->grad + a, n->state + a, n->state + n->nparam + a, b - a, n->t);
}

/* The shard decomposition and the fixed tree over the shards' gradient parts are shared with
 * the CNN (src/nn/shard.c, nn_priv.h); the wrappers below name this network's buffers. */

static int allgather(rdml_ctx *ctx, rdml_pairnet *nt, MPI_Comm comm, int g, int64_t S, int64_t n, int64_t unit,
                     float *buf) {
    return rdml_nn_shard_allgather(ctx, comm, g, S, n, unit, buf, nt->cnt);
}

static void tree_own(rdml_pairnet *n, int64_t lo, int64_t hi, int64_t off, int64_t len) {
    rdml_nn_tree_own(n->part, n->nparam, lo, hi, off, len);
}

/* The sum of the S parts' first len values (the tower's region) into part[0] (collective over
 * comm when g > 1). */
static int tree_sum(rdml_ctx *ctx, rdml_pairnet *n, int64_t S, int g, int rank, MPI_Comm comm, int64_t len) {
    return rdml_nn_tree_sum(ctx, n->part, n->gbuf, n->nparam, S, g, rank, comm, len, n->cnt);
}

static int ensure_shards(rdml_ctx *ctx, rdml_pairnet *n, int64_t S, int64_t B, int g) {
    if (g > n->capg) { /* MPI_Allgatherv's counts and displacements */
        int *c = realloc(n->cnt, 2 * (size_t)g * sizeof *c);
        if (!c) return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for %d ranks", g);
        n->cnt = c;
        n->capg = g;
    }
    if (S > n->capS || 2 * B > n->capSrows) {
        free(n->part);
        free(n->dUk);
        free(n->gbuf);
        n->part = malloc((size_t)(S * n->nparam) * sizeof(float));
        n->gbuf = malloc((size_t)(S * n->nparam) * sizeof(float));
        n->dUk = malloc((size_t)(S * 2 * 2 * B * n->H1) * sizeof(float));
        if (!n->part || !n->gbuf || !n->dUk) {
            free(n->part);
            free(n->dUk);
            free(n->gbuf);
            n->part = n->dUk = n->gbuf = NULL;
            n->capS = n->capSrows = 0;
            return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for %lld gradient shards of a batch of %lld "
                             "pairs (hint: lower train.batch)", (long long)S, (long long)B);
        }
        n->capS = S;
        n->capSrows = 2 * B;
    }
    return RDML_OK;
}

/* The gradient of the batch loss into n->grad, unsharded (S <= 1: one pass over the batch) or as
 * the sum of S shard gradients in shard order: shard k runs the tower on the k-th S-th of the
 * batch's images and the head on the k-th S-th of its pairs; with comm of g > 1 ranks the rank
 * owning shard k computes it and every rank adds all of them in the same order, so the result
 * is the same for every g. Collective over comm when g > 1. */
static int batch_grad(rdml_ctx *ctx, rdml_pairnet *n, const float *E, int64_t B, const int64_t *ij,
                      const float *y, int train, uint64_t drop_seed, uint64_t key, int64_t S,
                      MPI_Comm comm, double *loss) {
    int g = 1, rank = 0;
    if (comm != NULL && comm != MPI_COMM_NULL) {
        MPI_Comm_size(comm, &g);
        MPI_Comm_rank(comm, &rank);
    }
    if (S > RDML_FIT_MAX_SHARDS)
        return RDML_FAIL(ctx, RDML_ECONFIG, "%lld gradient shards: at most %d", (long long)S, RDML_FIT_MAX_SHARDS);
    if (g > 1 && S <= 1) S = 1; /* every rank runs the whole batch */
    if (g > 1 && S > 1 && S * n->nparam > INT_MAX)
        return RDML_FAIL(ctx, RDML_ECONFIG, "a data-parallel step of %lld parameters in %lld shards exchanges "
                         "more than %d values (hint: fewer shards)", (long long)n->nparam, (long long)S, INT_MAX);
    int dedup = n->p.mode == RDML_PAIRNET_DECOMPOSED;
    int rc = B < 1 ? RDML_FAIL(ctx, RDML_EDATA, "empty batch") : RDML_OK;
    if (!rc) rc = ensure_work(ctx, n, B);
    if (!rc) rc = plan_rows(ctx, n, B, ij, dedup);
    if (!rc && S > 1) rc = ensure_shards(ctx, n, S, B, g);
    if (g > 1) RDML_TRY(rdml_agree(ctx, comm, rc));
    else RDML_TRY(rc);
    const int64_t m = n->m, H1 = n->H1, np = n->nparam;
    set_outs(n, train);
    if (S <= 1) { /* today's arithmetic: one pass (the gradients are zeroed next to the forward) */
        float *zero[3] = {n->grad, n->dU, n->dV};
        const int64_t nzero[3] = {np, m * H1, m * H1};
        tower_fwd_par(n, E, 0, m, train, dedup, drop_seed, key, zero, nzero);
        head_fwd_par(n, 0, B, train, drop_seed, key);
        *loss = loss_of(n, y, B);
        loss_backward(n, y, B);
        head_bwd_par(n, 0, B, n->grad, n->dU, n->dV);
        tower_bwd_par(n, 0, m, n->grad);
        return RDML_OK;
    }
    /* forward: the own shards' images, then everybody's [U | V] rows (the only exchange of the
     * forward); the head of every shard on every rank (it costs ~B H1 operations per layer
     * against the tower's ~m million, and saves exchanging predictions and dU, dV) */
    for (int64_t k = 0; k < S; k++)
        if (rdml_nn_shard_owner(k, g, S) == rank)
            tower_fwd_par(n, E, rdml_nn_shard_lo(k, m, S), rdml_nn_shard_lo(k + 1, m, S), train, dedup, drop_seed, key, NULL, NULL);
    if (g > 1) RDML_TRY(allgather(ctx, n, comm, g, S, m, 2 * H1, n->U));
    for (int64_t k = 0; k < S; k++) head_fwd_par(n, rdml_nn_shard_lo(k, B, S), rdml_nn_shard_lo(k + 1, B, S), train, drop_seed, key);
    *loss = loss_of(n, y, B);
    loss_backward(n, y, B);
    /* backward: shard k's head into its gradient part (the head's region, from b1 on) and its
     * dU_k, dV_k, on every rank; dU, dV = their sum in shard order; then the own shards' tower
     * into their parts (the region before b1: the tower and W1); grad = the parts' sum as a
     * fixed tree over the shards, of which only the tower's region is exchanged */
    const int64_t du_sz = 2 * m * H1, nt = n->hb[0];
    for (int64_t k = 0; k < S; k++) {
        float *part = n->part + k * np, *duk = n->dUk + k * du_sz;
        if (rdml_nn_shard_owner(k, g, S) == rank) memset(part, 0, (size_t)np * sizeof(float));
        else memset(part + nt, 0, (size_t)(np - nt) * sizeof(float)); /* the head's region only */
        memset(duk, 0, (size_t)du_sz * sizeof(float));
        head_bwd_par(n, rdml_nn_shard_lo(k, B, S), rdml_nn_shard_lo(k + 1, B, S), part, duk, duk + m * H1);
    }
    memcpy(n->dU, n->dUk, (size_t)(m * H1) * sizeof(float));
    memcpy(n->dV, n->dUk + m * H1, (size_t)(m * H1) * sizeof(float));
    for (int64_t k = 1; k < S; k++) {
        const float *du = n->dUk + k * du_sz, *dv = du + m * H1;
        for (int64_t i = 0; i < m * H1; i++) n->dU[i] += du[i];
        for (int64_t i = 0; i < m * H1; i++) n->dV[i] += dv[i];
    }
    for (int64_t k = 0; k < S; k++)
        if (rdml_nn_shard_owner(k, g, S) == rank) tower_bwd_par(n, rdml_nn_shard_lo(k, m, S), rdml_nn_shard_lo(k + 1, m, S), n->part + k * np);
    tree_own(n, 0, S, nt, np - nt); /* the head's region: every rank has every part */
    RDML_TRY(tree_sum(ctx, n, S, g, rank, comm, nt));
    memcpy(n->grad, n->part, (size_t)np * sizeof(float));
    return RDML_OK;
}

int rdml_pairnet_grad(rdml_ctx *ctx, rdml_pairnet *net, const float *E, int64_t B,
                      const int64_t *ij, const float *y, int train, uint64_t drop_seed,
                      uint64_t key, double *loss) {
    int bt = par_begin(net);
    int rc = batch_grad(ctx, net, E, B, ij, y, train, drop_seed, key, 1, NULL, loss);
    par_end(net, bt);
    return rc;
}

int rdml_pairnet_step_sharded(rdml_ctx *ctx, rdml_pairnet *net, const rdml_optim *opt, const float *E,
                              int64_t B, const int64_t *ij, const float *y, uint64_t drop_seed,
                              uint64_t key, int64_t shards, MPI_Comm comm, double *loss) {
    int bt = par_begin(net);
    int rc = batch_grad(ctx, net, E, B, ij, y, 1, drop_seed, key, shards, comm, loss);
    /* a loss beyond float range means float predictions are about to overflow (the loss is the
     * same on every rank: every rank stops alike) */
    if (!rc && (!isfinite(*loss) || *loss > 3.0e38))
        rc = RDML_FAIL(ctx, RDML_EDATA, "the training loss became %g at step %lld (diverged; "
                       "hint: lower train.lr)", *loss, (long long)net->t + 1);
    if (!rc) { /* rdml_optim_update, in pieces on the team */
        net->t++;
        opt_job j = {.n = net, .opt = opt, .parts = team_n(net)};
        rdml_nn_team_run(net->team, j.parts, optim_task, &j);
    }
    par_end(net, bt);
    return rc;
}

int rdml_pairnet_step(rdml_ctx *ctx, rdml_pairnet *net, const rdml_optim *opt, const float *E,
                      int64_t B, const int64_t *ij, const float *y, uint64_t drop_seed,
                      uint64_t key, double *loss) {
    return rdml_pairnet_step_sharded(ctx, net, opt, E, B, ij, y, drop_seed, key, 1, NULL, loss);
}

int rdml_pairnet_predict(rdml_ctx *ctx, rdml_pairnet *net, const float *E, int64_t P,
                         const int64_t *ij, float *pred) {
    const int64_t chunk = 4096;
    int bt = par_begin(net), rc = RDML_OK;
    for (int64_t s = 0; s < P && !rc; s += chunk) {
        int64_t b = P - s < chunk ? P - s : chunk;
        rc = forward(ctx, net, E, b, ij + 2 * s, 0, 1, 0, 0);
        if (!rc) memcpy(pred + s, net->pred, (size_t)b * sizeof *pred);
    }
    par_end(net, bt);
    return rc;
}

int rdml_nn_collapsed(double pred_std, double target_std) {
    if (!isfinite(pred_std)) return 1;
    if (!(target_std > 0)) return 0; /* constant targets: a constant prediction is right */
    return pred_std <= RDML_NN_COLLAPSE_SPREAD * target_std;
}

int rdml_pairnet_diagnose(rdml_ctx *ctx, rdml_pairnet *net, const float *E, int64_t P,
                        const int64_t *ij, float *pred, rdml_pairnet_health *h) {
    const rdml_pairnet_params *p = &net->p;
    memset(h, 0, sizeof *h);
    h->nlayers = p->ntower + p->nhead;
    h->dead_layer = -1;
    int64_t off[2 * ML + 1];
    off[0] = 0;
    for (int l = 0; l < h->nlayers; l++) {
        h->width[l] = l < p->ntower ? p->tower[l] : p->head[l - p->ntower];
        off[l + 1] = off[l] + h->width[l];
    }
    h->units = off[h->nlayers];
    unsigned char *alive = rdml_calloc(ctx, (size_t)h->units, 1, "unit activity");
    if (!alive) return ctx->code;
    const int64_t chunk = 4096;
    double mean = 0, m2 = 0; /* Welford */
    int rc = RDML_OK, bt = par_begin(net);
    for (int64_t s = 0; s < P && !rc; s += chunk) {
        int64_t b = P - s < chunk ? P - s : chunk;
        rc = forward(ctx, net, E, b, ij + 2 * s, 0, 1, 0, 0);
        if (rc) break;
        for (int l = 0; l < h->nlayers; l++) {
            int tower = l < p->ntower;
            const float *a = tower ? net->tr[l] : net->hr[l - p->ntower];
            int64_t rows = tower ? net->m : b, w = h->width[l];
            unsigned char *al = alive + off[l];
            for (int64_t i = 0; i < rows; i++)
                for (int64_t k = 0; k < w; k++) al[k] |= a[i * w + k] > 0.0f;
        }
        for (int64_t q = 0; q < b; q++) {
            double v = net->pred[q], dlt = v - mean;
            mean += dlt / (double)(s + q + 1);
            m2 += dlt * (v - mean);
            if (pred) pred[s + q] = net->pred[q];
        }
    }
    par_end(net, bt);
    if (!rc) {
        for (int l = 0; l < h->nlayers; l++) {
            for (int64_t k = 0; k < h->width[l]; k++) h->dead[l] += !alive[off[l] + k];
            h->dead_units += h->dead[l];
            if (h->dead[l] == h->width[l] && h->dead_layer < 0) h->dead_layer = l;
        }
        h->pred_mean = P > 0 ? mean : NAN;
        h->pred_std = P > 0 ? sqrt(m2 / (double)P) : NAN;
    }
    free(alive);
    return rc;
}
