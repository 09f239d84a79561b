/* The paper's first baseline, a siamese CNN on grayscale images: per branch conv C1 3x3 +
 * ReLU + 2x2 max-pool, conv C2 3x3 + ReLU + 2x2 max-pool, flatten; the two branches'
 * features concatenated into one Dense(1), linear or 2 * sigmoid, trained on MSE or the mix
 * of -Pearson and MSE. Each pair runs both branches (PyTorch batching: 2B images per batch of
 * B pairs); the network is built from the layer kernels in layers.c. Left out: padding,
 * dropout and the pair decomposition (the paper's CNN has no per-image head to split). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rdml/nn.h"

struct rdml_cnn {
    rdml_cnn_params p;
    int64_t S, O1, P1, O2, P2, F; /* input, conv1 out, pool1 out, conv2 out, pool2 out, features */
    int64_t nparam, t, capB;
    float *param, *grad, *state;
    int64_t w1, b1, w2, b2, wd, bd; /* offsets */
    float *x, *c1, *p1, *c2, *p2, *cat, *out, *pred, *dpred;
    float *dc1, *dp1, *dc2, *dp2, *dcat, *col;
};

void rdml_cnn_defaults(rdml_cnn_params *p) {
    p->size = 128;
    p->c1 = 32;
    p->c2 = 64;
    p->sigmoid_out = 0;
    p->pearson_mix = 0.0;
}

static void cnn_free_work(rdml_cnn *n) {
    float **b[] = {&n->x, &n->c1, &n->p1, &n->c2, &n->p2, &n->cat, &n->out, &n->pred, &n->dpred,
                   &n->dc1, &n->dp1, &n->dc2, &n->dp2, &n->dcat, &n->col};
    for (size_t i = 0; i < sizeof b / sizeof b[0]; i++) {
        free(*b[i]);
        *b[i] = NULL;
    }
    n->capB = 0;
}

static int cnn_work(rdml_ctx *ctx, rdml_cnn *n, int64_t B) {
    if (B <= n->capB) return RDML_OK;
    cnn_free_work(n);
    int64_t M = 2 * B, C1 = n->p.c1, C2 = n->p.c2;
    int64_t colsz = n->O1 * n->O1 * 9;
    if (C1 * 9 * n->O2 * n->O2 > colsz) colsz = C1 * 9 * n->O2 * n->O2;
    struct { float **p; int64_t c; } a[] = {
        {&n->x, M * n->S * n->S}, {&n->c1, M * C1 * n->O1 * n->O1}, {&n->p1, M * C1 * n->P1 * n->P1},
        {&n->c2, M * C2 * n->O2 * n->O2}, {&n->p2, M * n->F}, {&n->cat, M * n->F}, {&n->out, B},
        {&n->pred, B}, {&n->dpred, B}, {&n->dc1, M * C1 * n->O1 * n->O1},
        {&n->dp1, M * C1 * n->P1 * n->P1}, {&n->dc2, M * C2 * n->O2 * n->O2}, {&n->dp2, M * n->F},
        {&n->dcat, M * n->F}, {&n->col, colsz}};
    for (size_t i = 0; i < sizeof a / sizeof a[0]; i++)
        if (!(*a[i].p = malloc((size_t)a[i].c * sizeof(float)))) {
            cnn_free_work(n);
            return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for a CNN batch of %lld pairs of "
                             "%lldx%lld images (hint: lower train.batch)", (long long)B,
                             (long long)n->S, (long long)n->S);
        }
    n->capB = B;
    return RDML_OK;
}

int rdml_cnn_create(rdml_ctx *ctx, const rdml_cnn_params *p, uint64_t seed, uint64_t init_key,
                    rdml_cnn **out) {
    *out = NULL;
    if (p->size < 10 || p->c1 < 1 || p->c2 < 1)
        return RDML_FAIL(ctx, RDML_ECONFIG, "CNN: image size %lld (>= 10) and channels %lld, %lld "
                         "(>= 1) are impossible", (long long)p->size, (long long)p->c1, (long long)p->c2);
    rdml_cnn *n = rdml_calloc(ctx, 1, sizeof *n, "CNN");
    if (!n) return ctx->code;
    n->p = *p;
    n->S = p->size;
    n->O1 = n->S - 2;
    n->P1 = n->O1 / 2;
    n->O2 = n->P1 - 2;
    n->P2 = n->O2 / 2;
    n->F = p->c2 * n->P2 * n->P2;
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

static int cnn_forward(rdml_ctx *ctx, rdml_cnn *n, const float *imgs, int64_t B, const int64_t *ij) {
    RDML_TRY(cnn_work(ctx, n, B));
    int64_t M = 2 * B, S2 = n->S * n->S, C1 = n->p.c1, C2 = n->p.c2;
    for (int64_t q = 0; q < B; q++) {
        memcpy(n->x + q * S2, imgs + ij[2 * q] * S2, (size_t)S2 * sizeof(float));
        memcpy(n->x + (B + q) * S2, imgs + ij[2 * q + 1] * S2, (size_t)S2 * sizeof(float));
    }
    const float *P = n->param;
    rdml_nn_conv2d_forward(n->c1, n->col, n->x, P + n->w1, P + n->b1, M, 1, n->S, n->S, C1, 3);
    rdml_nn_relu_forward(n->c1, n->c1, M * C1 * n->O1 * n->O1);
    rdml_nn_maxpool2_forward(n->p1, n->c1, M, C1, n->O1, n->O1);
    rdml_nn_conv2d_forward(n->c2, n->col, n->p1, P + n->w2, P + n->b2, M, C1, n->P1, n->P1, C2, 3);
    rdml_nn_relu_forward(n->c2, n->c2, M * C2 * n->O2 * n->O2);
    rdml_nn_maxpool2_forward(n->p2, n->c2, M, C2, n->O2, n->O2);
    rdml_nn_concat_forward(n->cat, n->p2, n->p2 + B * n->F, B, n->F, n->F);
    rdml_nn_linear_forward(n->out, n->cat, P + n->wd, P + n->bd, B, 2 * n->F, 1);
    if (n->p.sigmoid_out) {
        rdml_nn_sigmoid_forward(n->pred, n->out, B);
        for (int64_t q = 0; q < B; q++) n->pred[q] *= 2.0f;
    } else {
        memcpy(n->pred, n->out, (size_t)B * sizeof(float));
    }
    return RDML_OK;
}

int rdml_cnn_step(rdml_ctx *ctx, rdml_cnn *n, const rdml_optim *opt, const float *imgs,
                  int64_t B, const int64_t *ij, const float *y, double *loss) {
    if (B < 1) return RDML_FAIL(ctx, RDML_EDATA, "empty batch");
    RDML_TRY(cnn_forward(ctx, n, imgs, B, ij));
    int64_t M = 2 * B, C1 = n->p.c1, C2 = n->p.c2;
    double mix = n->p.pearson_mix;
    *loss = 0;
    if (mix < 1) *loss += (1 - mix) * rdml_nn_mse_forward(n->pred, y, B);
    if (mix > 0) *loss += mix * rdml_nn_pearson_forward(n->pred, y, B);
    float *g = n->grad;
    const float *P = n->param;
    memset(g, 0, (size_t)n->nparam * sizeof *g);
    memset(n->dpred, 0, (size_t)B * sizeof(float));
    if (mix < 1) rdml_nn_mse_backward(n->dpred, n->pred, y, B, (float)(1 - mix));
    if (mix > 0) rdml_nn_pearson_backward(n->dpred, n->pred, y, B, (float)mix);
    if (n->p.sigmoid_out)
        for (int64_t q = 0; q < B; q++) {
            float s = n->pred[q] * 0.5f;
            n->dpred[q] *= 2.0f * s * (1.0f - s);
        }
    memset(n->dcat, 0, (size_t)(M * n->F) * sizeof(float));
    rdml_nn_linear_backward(n->dcat, g + n->wd, g + n->bd, n->dpred, n->cat, P + n->wd, B, 2 * n->F, 1);
    memset(n->dp2, 0, (size_t)(M * n->F) * sizeof(float));
    rdml_nn_concat_backward(n->dp2, n->dp2 + B * n->F, n->dcat, B, n->F, n->F);
    int64_t s2 = M * C2 * n->O2 * n->O2, s1 = M * C1 * n->O1 * n->O1;
    memset(n->dc2, 0, (size_t)s2 * sizeof(float));
    rdml_nn_maxpool2_backward(n->dc2, n->dp2, n->c2, M, C2, n->O2, n->O2);
    for (int64_t i = 0; i < s2; i++)
        if (!(n->c2[i] > 0.0f)) n->dc2[i] = 0.0f; /* ReLU backward in place */
    memset(n->dp1, 0, (size_t)(M * C1 * n->P1 * n->P1) * sizeof(float));
    rdml_nn_conv2d_backward(n->dp1, g + n->w2, g + n->b2, n->col, n->dc2, n->p1, P + n->w2, M, C1, n->P1,
                            n->P1, C2, 3);
    memset(n->dc1, 0, (size_t)s1 * sizeof(float));
    rdml_nn_maxpool2_backward(n->dc1, n->dp1, n->c1, M, C1, n->O1, n->O1);
    for (int64_t i = 0; i < s1; i++)
        if (!(n->c1[i] > 0.0f)) n->dc1[i] = 0.0f;
    rdml_nn_conv2d_backward(NULL, g + n->w1, g + n->b1, n->col, n->dc1, n->x, P + n->w1, M, 1, n->S, n->S,
                            C1, 3);
    if (!isfinite(*loss))
        return RDML_FAIL(ctx, RDML_EDATA, "the CNN training loss became %g at step %lld (diverged; "
                         "hint: lower train.lr)", *loss, (long long)n->t + 1);
    if (opt) {
        n->t++;
        rdml_optim_update(opt, n->param, n->grad, n->state, n->nparam, n->t);
    }
    return RDML_OK;
}

int rdml_cnn_predict(rdml_ctx *ctx, rdml_cnn *net, const float *imgs, int64_t P,
                     const int64_t *ij, float *pred) {
    const int64_t chunk = 64;
    for (int64_t s = 0; s < P; s += chunk) {
        int64_t b = P - s < chunk ? P - s : chunk;
        RDML_TRY(cnn_forward(ctx, net, imgs, b, ij + 2 * s));
        memcpy(pred + s, net->pred, (size_t)b * sizeof *pred);
    }
    return RDML_OK;
}
