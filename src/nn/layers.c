/* Layer kernels of the nn module as forward/backward pairs over flat, row-major float arrays
 * (llm.c style): linear (SGEMM), ReLU, sigmoid, inverted dropout with counter-based masks,
 * 3x3-style "valid" conv2d by im2col + SGEMM, 2x2 max-pool, flatten, concat, the MSE and
 * Pearson-correlation losses, PyTorch's default initialisation, and the Adam / SGD updates
 * with PyTorch's arithmetic. Backwards accumulate into their gradient outputs. Left out:
 * strides and padding other than the paper's, batch norm, and any threading beyond BLAS's. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "rdml/nn.h"
#include "nn_priv.h"

void rdml_nn_linear_forward(float *out, const float *inp, const float *w, const float *b,
                            int64_t B, int64_t C, int64_t OC) {
    if (B <= 0 || OC <= 0) return;
    for (int64_t r = 0; r < B; r++)
        for (int64_t o = 0; o < OC; o++) out[r * OC + o] = b ? b[o] : 0.0f;
    if (C > 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)OC, (int)C, 1.0f, inp,
                    (int)C, w, (int)C, 1.0f, out, (int)OC);
}

void rdml_nn_linear_backward(float *dinp, float *dw, float *db, const float *dout,
                             const float *inp, const float *w, int64_t B, int64_t C, int64_t OC) {
    if (B <= 0 || OC <= 0 || C <= 0) return;
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)C, (int)OC, 1.0f,
                    dout, (int)OC, w, (int)C, 1.0f, dinp, (int)C);
    if (dw)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)OC, (int)C, (int)B, 1.0f, dout,
                    (int)OC, inp, (int)C, 1.0f, dw, (int)C);
    if (db)
        for (int64_t r = 0; r < B; r++)
            for (int64_t o = 0; o < OC; o++) db[o] += dout[r * OC + o];
}

void rdml_nn_relu_forward(float *out, const float *inp, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

void rdml_nn_relu_backward(float *dinp, const float *dout, const float *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) dinp[i] += out[i] > 0.0f ? dout[i] : 0.0f;
}

void rdml_nn_sigmoid_forward(float *out, const float *inp, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = 1.0f / (1.0f + expf(-inp[i]));
}

void rdml_nn_sigmoid_backward(float *dinp, const float *dout, const float *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) dinp[i] += dout[i] * out[i] * (1.0f - out[i]);
}

/* Inverted dropout with rate p: a draw u keeps its unit when rdml_rng_uniform's (u >> 11) *
 * 2^-53 >= p; with u >> 11 an integer below 2^53 that is (u >> 11) >= ceil(p * 2^53), i.e.
 * u >= thr = ceil(p * 2^53) * 2^11 (thr = 2^64 when p >= 1: never kept). */
float rdml_nn_dropout_scale(double p) { return p <= 0.0 ? 1.0f : p < 1.0 ? (float)(1.0 / (1.0 - p)) : 0.0f; }

/* The element-wise kernels below have no data-dependent branches (rdml_nn_sel), so that the
 * compiler vectorises them. */

/* m (k values) <- the mask values (0 or scale) of the next k draws of g. The 64-bit
 * comparison u >= thr is done on 32-bit halves, which SSE2 vectorises. */
RDML_NN_CLONES static void dropout_mask_chunk(float *restrict m, rdml_rng *g, int64_t k, double p, float scale) {
    uint64_t u[256];
    rdml_rng_fill_u64(g, k, u);
    if (p >= 1.0) {
        for (int64_t c = 0; c < k; c++) m[c] = 0.0f;
        return;
    }
    const uint64_t thr = (uint64_t)ceil(p * 0x1.0p53) << 11;
    const uint32_t th = (uint32_t)(thr >> 32), tl = (uint32_t)thr;
    for (int64_t c = 0; c < k; c++) {
        uint32_t hi = (uint32_t)(u[c] >> 32), lo = (uint32_t)u[c];
        int keep = (hi > th) | ((hi == th) & (lo >= tl));
        m[c] = rdml_nn_sel(keep, scale);
    }
}

void rdml_nn_dropout_forward(float *out, float *mask, const float *inp, int64_t B, int64_t C,
                             double p, uint64_t seed, const uint64_t *row_key) {
    const float scale = rdml_nn_dropout_scale(p);
    for (int64_t r = 0; r < B; r++) {
        float *m = mask + r * C;
        if (p <= 0.0) {
            for (int64_t c = 0; c < C; c++) m[c] = 1.0f;
        } else {
            rdml_rng g = rdml_rng_make(seed, rdml_rng_substream(RDML_STREAM_DROPOUT, row_key[r]), 0);
            for (int64_t c0 = 0; c0 < C; c0 += 256)
                dropout_mask_chunk(m + c0, &g, C - c0 < 256 ? C - c0 : 256, p, scale);
        }
        for (int64_t c = 0; c < C; c++) out[r * C + c] = inp[r * C + c] * m[c];
    }
}

void rdml_nn_dropout_backward(float *dinp, const float *dout, const float *mask, int64_t n) {
    for (int64_t i = 0; i < n; i++) dinp[i] += dout[i] * mask[i];
}

void rdml_nn_relu_dropout_forward(float *out, const float *inp, int64_t B, int64_t C, double p,
                                  uint64_t seed, const uint64_t *row_key) {
    if (p <= 0.0) {
        rdml_nn_relu_forward(out, inp, B * C);
        return;
    }
    const float scale = rdml_nn_dropout_scale(p);
    float m[256];
    for (int64_t r = 0; r < B; r++) {
        rdml_rng g = rdml_rng_make(seed, rdml_rng_substream(RDML_STREAM_DROPOUT, row_key[r]), 0);
        for (int64_t c0 = 0; c0 < C; c0 += 256) {
            int64_t k = C - c0 < 256 ? C - c0 : 256;
            dropout_mask_chunk(m, &g, k, p, scale);
            const float *x = inp + r * C + c0;
            float *o = out + r * C + c0;
            for (int64_t c = 0; c < k; c++) o[c] = rdml_nn_sel(x[c] > 0.0f, x[c]) * m[c];
        }
    }
}

RDML_NN_CLONES void rdml_nn_relu_dropout_backward(float *restrict dinp, const float *restrict dout,
                                   const float *restrict out, float scale, int64_t n) {
    for (int64_t i = 0; i < n; i++) dinp[i] = rdml_nn_sel(out[i] > 0.0f, dout[i] * scale);
}

/* col (C*K*K, OH*OW): row (c, ki, kj), column (y, x) = inp[c][y+ki][x+kj]. */
static void im2col(float *col, const float *img, int64_t C, int64_t H, int64_t W, int64_t K) {
    int64_t OH = H - K + 1, OW = W - K + 1;
    for (int64_t c = 0; c < C; c++)
        for (int64_t ki = 0; ki < K; ki++)
            for (int64_t kj = 0; kj < K; kj++) {
                float *dst = col + ((c * K + ki) * K + kj) * OH * OW;
                for (int64_t y = 0; y < OH; y++)
                    memcpy(dst + y * OW, img + (c * H + y + ki) * W + kj, (size_t)OW * sizeof *dst);
            }
}

static void col2im_add(float *img, const float *col, int64_t C, int64_t H, int64_t W, int64_t K) {
    int64_t OH = H - K + 1, OW = W - K + 1;
    for (int64_t c = 0; c < C; c++)
        for (int64_t ki = 0; ki < K; ki++)
            for (int64_t kj = 0; kj < K; kj++) {
                const float *src = col + ((c * K + ki) * K + kj) * OH * OW;
                for (int64_t y = 0; y < OH; y++) {
                    float *d = img + (c * H + y + ki) * W + kj;
                    for (int64_t x = 0; x < OW; x++) d[x] += src[y * OW + x];
                }
            }
}

void rdml_nn_conv2d_forward(float *out, float *col, const float *inp, const float *w,
                            const float *b, int64_t B, int64_t C, int64_t H, int64_t W,
                            int64_t OC, int64_t K) {
    int64_t OH = H - K + 1, OW = W - K + 1, S = OH * OW, CKK = C * K * K;
    for (int64_t i = 0; i < B; i++) {
        float *o = out + i * OC * S;
        im2col(col, inp + i * C * H * W, C, H, W, K);
        for (int64_t oc = 0; oc < OC; oc++)
            for (int64_t s = 0; s < S; s++) o[oc * S + s] = b ? b[oc] : 0.0f;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)OC, (int)S, (int)CKK, 1.0f, w,
                    (int)CKK, col, (int)S, 1.0f, o, (int)S);
    }
}

void rdml_nn_conv2d_backward(float *dinp, float *dw, float *db, float *col, const float *dout,
                             const float *inp, const float *w, int64_t B, int64_t C, int64_t H,
                             int64_t W, int64_t OC, int64_t K) {
    int64_t OH = H - K + 1, OW = W - K + 1, S = OH * OW, CKK = C * K * K;
    for (int64_t i = 0; i < B; i++) {
        const float *d = dout + i * OC * S;
        if (db)
            for (int64_t oc = 0; oc < OC; oc++)
                for (int64_t s = 0; s < S; s++) db[oc] += d[oc * S + s];
        if (dw) {
            im2col(col, inp + i * C * H * W, C, H, W, K);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)OC, (int)CKK, (int)S, 1.0f, d,
                        (int)S, col, (int)S, 1.0f, dw, (int)CKK);
        }
        if (dinp) {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)CKK, (int)S, (int)OC, 1.0f, w,
                        (int)CKK, d, (int)S, 0.0f, col, (int)S);
            col2im_add(dinp + i * C * H * W, col, C, H, W, K);
        }
    }
}

void rdml_nn_maxpool2_forward(float *out, const float *inp, int64_t B, int64_t C, int64_t H,
                              int64_t W) {
    int64_t PH = H / 2, PW = W / 2;
    for (int64_t bc = 0; bc < B * C; bc++) {
        const float *x = inp + bc * H * W;
        float *o = out + bc * PH * PW;
        for (int64_t y = 0; y < PH; y++)
            for (int64_t xx = 0; xx < PW; xx++) {
                const float *p = x + 2 * y * W + 2 * xx;
                float m = p[0];
                if (p[1] > m) m = p[1];
                if (p[W] > m) m = p[W];
                if (p[W + 1] > m) m = p[W + 1];
                o[y * PW + xx] = m;
            }
    }
}

void rdml_nn_maxpool2_backward(float *dinp, const float *dout, const float *inp, int64_t B,
                               int64_t C, int64_t H, int64_t W) {
    int64_t PH = H / 2, PW = W / 2;
    for (int64_t bc = 0; bc < B * C; bc++) {
        const float *x = inp + bc * H * W;
        float *dx = dinp + bc * H * W;
        const float *d = dout + bc * PH * PW;
        for (int64_t y = 0; y < PH; y++)
            for (int64_t xx = 0; xx < PW; xx++) {
                int64_t base = 2 * y * W + 2 * xx, off[4] = {0, 1, W, W + 1}, best = base;
                float m = x[base];
                for (int k = 1; k < 4; k++)
                    if (x[base + off[k]] > m) {
                        m = x[base + off[k]];
                        best = base + off[k];
                    }
                dx[best] += d[y * PW + xx];
            }
    }
}

void rdml_nn_flatten_forward(float *out, const float *inp, int64_t n) {
    if (out != inp) memcpy(out, inp, (size_t)n * sizeof *out);
}

void rdml_nn_flatten_backward(float *dinp, const float *dout, int64_t n) {
    for (int64_t i = 0; i < n; i++) dinp[i] += dout[i];
}

void rdml_nn_concat_forward(float *out, const float *a, const float *b, int64_t B, int64_t C1,
                            int64_t C2) {
    for (int64_t r = 0; r < B; r++) {
        memcpy(out + r * (C1 + C2), a + r * C1, (size_t)C1 * sizeof *out);
        memcpy(out + r * (C1 + C2) + C1, b + r * C2, (size_t)C2 * sizeof *out);
    }
}

void rdml_nn_concat_backward(float *da, float *db, const float *dout, int64_t B, int64_t C1,
                             int64_t C2) {
    for (int64_t r = 0; r < B; r++) {
        const float *d = dout + r * (C1 + C2);
        if (da)
            for (int64_t c = 0; c < C1; c++) da[r * C1 + c] += d[c];
        if (db)
            for (int64_t c = 0; c < C2; c++) db[r * C2 + c] += d[C1 + c];
    }
}

double rdml_nn_mse_forward(const float *pred, const float *y, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = (double)pred[i] - (double)y[i];
        s += e * e;
    }
    return n > 0 ? s / (double)n : 0.0;
}

void rdml_nn_mse_backward(float *dpred, const float *pred, const float *y, int64_t n, float scale) {
    float k = n > 0 ? 2.0f * scale / (float)n : 0.0f;
    for (int64_t i = 0; i < n; i++) dpred[i] += k * (pred[i] - y[i]);
}

/* centred sums in double: r = Sxy / sqrt(Sxx Syy) */
static void pearson_parts(const float *p, const float *y, int64_t n, double *mp, double *my,
                          double *sxx, double *syy, double *sxy) {
    double a = 0, b = 0;
    for (int64_t i = 0; i < n; i++) {
        a += p[i];
        b += y[i];
    }
    a /= (double)n;
    b /= (double)n;
    double xx = 0, yy = 0, xy = 0;
    for (int64_t i = 0; i < n; i++) {
        double u = p[i] - a, v = y[i] - b;
        xx += u * u;
        yy += v * v;
        xy += u * v;
    }
    *mp = a;
    *my = b;
    *sxx = xx;
    *syy = yy;
    *sxy = xy;
}

double rdml_nn_pearson_forward(const float *pred, const float *y, int64_t n) {
    if (n < 2) return 0.0;
    double mp, my, sxx, syy, sxy;
    pearson_parts(pred, y, n, &mp, &my, &sxx, &syy, &sxy);
    if (sxx <= 0 || syy <= 0) return 0.0;
    return -sxy / sqrt(sxx * syy);
}

void rdml_nn_pearson_backward(float *dpred, const float *pred, const float *y, int64_t n,
                              float scale) {
    if (n < 2) return;
    double mp, my, sxx, syy, sxy;
    pearson_parts(pred, y, n, &mp, &my, &sxx, &syy, &sxy);
    if (sxx <= 0 || syy <= 0) return;
    double norm = sqrt(sxx * syy), r = sxy / norm;
    /* d r / d p_i = (y_i - my) / norm - r (p_i - mp) / Sxx; the loss is -r */
    for (int64_t i = 0; i < n; i++)
        dpred[i] -= scale * (float)((y[i] - my) / norm - r * (pred[i] - mp) / sxx);
}

void rdml_nn_init_uniform(float *w, int64_t n_w, float *b, int64_t n_b, int64_t fan_in,
                          rdml_rng *r) {
    double bound = fan_in > 0 ? 1.0 / sqrt((double)fan_in) : 0.0;
    for (int64_t i = 0; i < n_w; i++) w[i] = (float)((2.0 * rdml_rng_uniform(r) - 1.0) * bound);
    for (int64_t i = 0; i < n_b && b; i++) b[i] = (float)((2.0 * rdml_rng_uniform(r) - 1.0) * bound);
}

void rdml_optim_defaults(rdml_optim *o) {
    o->kind = RDML_OPTIM_ADAM;
    o->lr = 0.01;
    o->beta1 = 0.9;
    o->beta2 = 0.999;
    o->eps = 1e-8;
    o->momentum = 0.0;
    o->weight_decay = 0.0;
    o->warmup = 0;
}

/* The learning rate of step t (1, 2, ...): linear warm-up over the first o->warmup steps. */
static double step_lr(const rdml_optim *o, int64_t t) {
    if (o->warmup <= 0 || t >= o->warmup) return o->lr;
    return o->lr * (double)(t < 1 ? 1 : t) / (double)o->warmup;
}

/* The update of n parameters whose optimiser state is m (SGD's momentum buffer; Adam's first
 * moment) and v (Adam's second moment): rdml_optim_update on a range, so that a step can update
 * disjoint ranges on several threads with the same arithmetic per element. */
RDML_NN_CLONES void rdml_nn_optim_range(const rdml_optim *o, float *param, const float *grad, float *mstate,
                                        float *vstate, int64_t n, int64_t t) {
    float wd = (float)o->weight_decay;
    if (o->kind == RDML_OPTIM_SGD) {
        float lr = (float)step_lr(o, t), mom = (float)o->momentum;
        float *state = mstate;
        for (int64_t i = 0; i < n; i++) {
            float g = grad[i] + wd * param[i];
            if (mom != 0.0f) {
                state[i] = t <= 1 ? g : mom * state[i] + g;
                g = state[i];
            }
            param[i] -= lr * g;
        }
        return;
    }
    /* torch.optim.Adam, single-tensor path: m.lerp_(g, 1 - b1); v = b2 v + (1 - b2) g^2;
     * denom = sqrt(v) / sqrt(1 - b2^t) + eps; p -= lr / (1 - b1^t) * m / denom */
    float *restrict m = mstate, *restrict v = vstate, *restrict pr = param;
    const float *restrict gr = grad;
    /* 1 - beta in double, then rounded (as PyTorch passes Python floats): 1 - 0.999f in float
     * would be off by 1e-5 relative */
    float w1 = (float)(1.0 - o->beta1), b2 = (float)o->beta2, w2 = (float)(1.0 - o->beta2);
    float eps = (float)o->eps;
    double bc1 = 1.0 - pow(o->beta1, (double)t), bc2 = 1.0 - pow(o->beta2, (double)t);
    float step = (float)(step_lr(o, t) / bc1), bc2s = (float)sqrt(bc2);
    for (int64_t i = 0; i < n; i++) {
        float g = gr[i] + wd * pr[i];
        m[i] += w1 * (g - m[i]);
        v[i] = v[i] * b2 + w2 * g * g;
        float denom = sqrtf(v[i]) / bc2s + eps;
        pr[i] -= step * (m[i] / denom);
    }
}

void rdml_optim_update(const rdml_optim *o, float *param, const float *grad, float *state,
                       int64_t n, int64_t t) {
    rdml_nn_optim_range(o, param, grad, state, state + n, n, t);
}

void rdml_nn_im2col(float *col, const float *inp, int64_t C, int64_t H, int64_t W, int64_t K) {
    im2col(col, inp, C, H, W, K);
}

/* Fused bias + ReLU + 2 x 2 max-pool: out = relu(max of the window of inp + b[c]) =
 * maxpool(relu(inp + b)), arg = the window's first maximum (0 (0,0), 1 (0,1), 2 (1,0),
 * 3 (1,1)), so the backward needs neither the input nor the ReLU output. */
void rdml_nn_relu_maxpool2_forward(float *out, uint8_t *arg, const float *inp, const float *b,
                                   int64_t B, int64_t C, int64_t H, int64_t W) {
    int64_t PH = H / 2, PW = W / 2;
    for (int64_t bc = 0; bc < B * C; bc++)
        for (int64_t y = 0; y < PH; y++) {
            float bv = b ? b[bc % C] : 0.0f;
            const float *r0 = inp + (bc * H + 2 * y) * W, *r1 = r0 + W;
            float *o = out + (bc * PH + y) * PW;
            uint8_t *a = arg + (bc * PH + y) * PW;
            for (int64_t x = 0; x < PW; x++) { /* branch-free: the argmax is data-random */
                float v0 = r0[2 * x] + bv, v1 = r0[2 * x + 1] + bv, v2 = r1[2 * x] + bv,
                      v3 = r1[2 * x + 1] + bv;
                int c01 = v1 > v0, c23 = v3 > v2;
                float m01 = c01 ? v1 : v0, m23 = c23 ? v3 : v2;
                int c = m23 > m01; /* ties keep the first (row 0) maximum */
                float m = c ? m23 : m01;
                o[x] = m > 0.0f ? m : 0.0f;
                a[x] = (uint8_t)((c << 1) | (c & c23) | ((c ^ 1) & c01)); /* no branch */
            }
        }
}

void rdml_nn_relu_maxpool2_backward(float *dinp, const float *dout, const float *out,
                                    const uint8_t *arg, int64_t B, int64_t C, int64_t H, int64_t W) {
    int64_t PH = H / 2, PW = W / 2;
    for (int64_t bc = 0; bc < B * C; bc++)
        for (int64_t y = 0; y < PH; y++) {
            int64_t i0 = (bc * PH + y) * PW;
            float *d = dinp + (bc * H + 2 * y) * W;
            for (int64_t x = 0; x < PW; x++)
                if (out[i0 + x] > 0.0f) {
                    uint8_t k = arg[i0 + x];
                    d[(k >> 1) * W + 2 * x + (k & 1)] += dout[i0 + x];
                }
        }
}
