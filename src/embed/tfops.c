/* The element-wise and attention steps of the zoo's transformer blocks (vit.c, clip.c), each
 * spread over the threads of rdml_par_for (par.c): what runs between the blocks' big GEMMs ran
 * on one core while OpenBLAS's other threads waited, a fifth of a ViT-B batch on 2 cores.
 * Every row (and every image x head of the attention) is computed by the same code on
 * whichever thread takes it, so the results equal the single-threaded ones bit for bit. */
#include <cblas.h>

#include "embed/embed_priv.h"
#include "embed/vecmath.h"

/* the loops below again for AVX2 (vecmath.h: the same operations, the same bits; building
 * with -DCLONES= leaves them out) */
#if !defined(CLONES) && defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef CLONES
#define CLONES
#endif

/* ---- attention ---- */

typedef struct attn_job {
    float *qkv, *out, *scratch;
    const float *qkv_b;
    int64_t T, D, H;
    float scale;
} attn_job;

/* items are (image, head) pairs: add q|k|v's bias to the head's columns of the image's rows
 * (no other item touches them), scores = scale Q K^T, row softmax, out = P V */
CLONES static void attn_items(void *arg, int thread, int64_t i0, int64_t i1) {
    const attn_job *j = arg;
    const int64_t T = j->T, D = j->D, H = j->H, hd = D / H, ld = 3 * D;
    float *att = j->scratch + (int64_t)thread * T * T;
    for (int64_t it = i0; it < i1; it++) {
        const int64_t b = it / H, hh = it % H;
        float *Q = j->qkv + b * T * ld + hh * hd, *K = Q + D, *V = Q + 2 * D;
        if (j->qkv_b)
            for (int64_t t = 0; t < T; t++)
                for (int part = 0; part < 3; part++) {
                    float *row = Q + t * ld + part * D;
                    const float *bias = j->qkv_b + part * D + hh * hd;
                    for (int64_t i = 0; i < hd; i++) row[i] += bias[i];
                }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)T, (int)hd, j->scale, Q,
                    (int)ld, K, (int)ld, 0.0f, att, (int)T);
        for (int64_t t = 0; t < T; t++) softmax_row(att + t * T, T);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)T, (int)hd, (int)T, 1.0f, att,
                    (int)T, V, (int)ld, 0.0f, j->out + b * T * D + hh * hd, (int)D);
    }
}

void rdml_tf_attention(float *qkv, const float *qkv_b, float *out, float *scratch, int64_t B,
                       int64_t T, int64_t D, int64_t H, float scale) {
    attn_job j = {qkv, out, scratch, qkv_b, T, D, H, scale};
    rdml_par_for(B * H, 1, 1, attn_items, &j);
}

/* ---- LayerNorm ---- */

typedef struct ln_job {
    float *out, *in;
    const float *w, *b;
    int64_t D;
    double eps;
} ln_job;

CLONES static void ln_rows(void *arg, int thread, int64_t r0, int64_t r1) {
    const ln_job *j = arg;
    layer_norm(j->out + r0 * j->D, j->in + r0 * j->D, j->w, j->b, r1 - r0, j->D, j->eps);
}

void rdml_tf_layer_norm(float *out, float *in, const float *w, const float *b, int64_t rows,
                        int64_t D, double eps) {
    ln_job j = {out, in, w, b, D, eps};
    rdml_par_for(rows, 16, 0, ln_rows, &j);
}

/* ---- bias + activation ---- */

typedef struct act_job {
    float *y;
    const float *b;
    int64_t n;
    int act;
} act_job;

CLONES static void act_rows(void *arg, int thread, int64_t r0, int64_t r1) {
    const act_job *j = arg;
    for (int64_t r = r0; r < r1; r++) {
        float *y = j->y + r * j->n;
        if (j->act == RDML_TF_GELU) {
            BIAS_ACT(y, j->b, j->n, vf_gelu);
        } else if (j->act == RDML_TF_QUICK_GELU) {
            BIAS_ACT(y, j->b, j->n, vf_quick_gelu);
        } else {
            for (int64_t i = 0; i < j->n; i++) y[i] += j->b[i];
        }
    }
}

void rdml_tf_bias_act(float *y, const float *b, int64_t rows, int64_t n, int act) {
    act_job j = {y, b, n, act};
    rdml_par_for(rows, 8, 0, act_rows, &j);
}

/* ---- residual: h += (y + b) * gamma ---- */

typedef struct res_job {
    float *h;
    const float *y, *b, *gamma;
    int64_t D;
} res_job;

CLONES static void res_rows(void *arg, int thread, int64_t r0, int64_t r1) {
    const res_job *j = arg;
    const int64_t D = j->D;
    for (int64_t r = r0; r < r1; r++) {
        float *hr = j->h + r * D;
        const float *yr = j->y + r * D;
        if (j->gamma)
            for (int64_t i = 0; i < D; i++) hr[i] += (yr[i] + j->b[i]) * j->gamma[i];
        else
            for (int64_t i = 0; i < D; i++) hr[i] += yr[i] + j->b[i];
    }
}

void rdml_tf_residual(float *h, const float *y, const float *b, const float *gamma, int64_t rows,
                      int64_t D) {
    res_job j = {h, y, b, gamma, D};
    rdml_par_for(rows, 16, 0, res_rows, &j);
}
