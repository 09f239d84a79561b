/* Vector helpers shared by the ViT forward passes (clip.c, vit.c): 4-float vector
 * extensions, a Cephes exp, softmax and LayerNorm. Private to src/embed. */
#ifndef RDML_EMBED_VECMATH_H
#define RDML_EMBED_VECMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* exp on 4 floats at a time (GCC/clang vector extensions: SSE2 on any x86-64, NEON on arm64),
 * Cephes expf: n = round(x log2 e), r = x - n ln 2 in two parts, a degree-5 polynomial,
 * times 2^n from the exponent bits; within 1 ulp of glibc expf on [-87.3, 88] (inputs
 * outside are clamped, so exp(-inf) gives ~1e-38 instead of 0 and large inputs exp(88)).
 * Scalar expf made quick_gelu ~10% of a ViT-B/32 batch; this cuts it about 3x. */
typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

static inline v4f v4_set(float a) { return (v4f){a, a, a, a}; }
static inline v4f v4_load(const float *p) {
    v4f v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void v4_store(float *p, v4f v) { memcpy(p, &v, sizeof v); }
static inline v4f v4_select(v4i mask, v4f a, v4f b) { /* mask ? a : b */
    return (v4f)(((v4i)a & mask) | ((v4i)b & ~mask));
}

static inline v4f exp4(v4f x) {
    const v4f magic = v4_set(12582912.0f); /* 1.5 * 2^23: adding it rounds to an integer */
    x = v4_select(x > v4_set(88.0f), v4_set(88.0f), x);
    x = v4_select(x < v4_set(-87.3f), v4_set(-87.3f), x);
    v4f t = x * v4_set(1.44269504088896341f) + magic;
    v4f fx = t - magic;
    v4i n = (v4i)t - (v4i)magic;
    v4f r = x - fx * v4_set(0.693359375f);
    r = r - fx * v4_set(-2.12194440e-4f);
    v4f z = r * r;
    v4f y = v4_set(1.9875691500e-4f);
    y = y * r + v4_set(1.3981999507e-3f);
    y = y * r + v4_set(8.3334519073e-3f);
    y = y * r + v4_set(4.1665795894e-2f);
    y = y * r + v4_set(1.6666665459e-1f);
    y = y * r + v4_set(5.0000001201e-1f);
    y = y * z + r + v4_set(1.0f);
    return y * (v4f)((n + 127) << 23);
}


/* In-place softmax of a row of n scores. */
static inline void softmax_row(float *r, int64_t n) {
    float mx = r[0];
    for (int64_t u = 1; u < n; u++) mx = r[u] > mx ? r[u] : mx;
    v4f acc = v4_set(0.0f), m4 = v4_set(mx);
    int64_t u = 0;
    for (; u + 4 <= n; u += 4) {
        v4f e = exp4(v4_load(r + u) - m4);
        acc += e;
        v4_store(r + u, e);
    }
    if (u < n) {
        float t[4] = {mx, mx, mx, mx};
        memcpy(t, r + u, (size_t)(n - u) * sizeof *t);
        v4f e = exp4(v4_load(t) - m4);
        v4_store(t, e);
        for (int64_t k = 0; k < n - u; k++) acc[k] += t[k];
        memcpy(r + u, t, (size_t)(n - u) * sizeof *t);
    }
    float inv = 1.0f / (acc[0] + acc[1] + acc[2] + acc[3]);
    for (int64_t k = 0; k < n; k++) r[k] *= inv;
}


/* LayerNorm of `rows` rows of D: mean and variance (two passes, float with 4 partial sums,
 * accurate to ~1e-7 relative for D in the thousands), then (x - mean) rstd w + b. */
static inline void layer_norm(float *out, const float *in, const float *w, const float *b, int64_t rows,
                       int64_t D, double eps) {
    const int64_t D4 = D & ~(int64_t)3;
    for (int64_t r = 0; r < rows; r++) {
        const float *x = in + r * D;
        float *y = out + r * D;
        v4f acc = v4_set(0.0f);
        for (int64_t i = 0; i < D4; i += 4) acc += v4_load(x + i);
        float sum = (acc[0] + acc[1]) + (acc[2] + acc[3]);
        for (int64_t i = D4; i < D; i++) sum += x[i];
        float mu = sum / (float)D;
        v4f m4 = v4_set(mu);
        acc = v4_set(0.0f);
        for (int64_t i = 0; i < D4; i += 4) {
            v4f d = v4_load(x + i) - m4;
            acc += d * d;
        }
        float ss = (acc[0] + acc[1]) + (acc[2] + acc[3]);
        for (int64_t i = D4; i < D; i++) ss += (x[i] - mu) * (x[i] - mu);
        float rstd = (float)(1.0 / sqrt((double)ss / (double)D + eps));
        v4f r4 = v4_set(rstd);
        for (int64_t i = 0; i < D4; i += 4)
            v4_store(y + i, (v4_load(x + i) - m4) * r4 * v4_load(w + i) + v4_load(b + i));
        for (int64_t i = D4; i < D; i++) y[i] = (x[i] - mu) * rstd * w[i] + b[i];
    }
}



/* GELU (the exact, erf form: 0.5 v (1 + erf(v / sqrt 2))) on n floats in place after adding
 * the bias b: erf from Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7) on exp4. */
static inline v4f gelu4(v4f v) {
    v4f z = v * v4_set(0.70710678118654752f);
    v4i neg = z < v4_set(0.0f);
    v4f az = v4_select(neg, -z, z);
    v4f t = v4_set(1.0f) / (v4_set(1.0f) + v4_set(0.3275911f) * az);
    v4f p = v4_set(1.061405429f);
    p = p * t + v4_set(-1.453152027f);
    p = p * t + v4_set(1.421413741f);
    p = p * t + v4_set(-0.284496736f);
    p = p * t + v4_set(0.254829592f);
    p = p * t;
    v4f e = v4_set(1.0f) - p * exp4(-az * az); /* erf(|z|) */
    e = v4_select(neg, -e, e);
    return v4_set(0.5f) * v * (v4_set(1.0f) + e);
}

/* The ViT patch embedding's im2col: for B images of 3 x S x S floats (pixels), g x g patches
 * of p x p; row (b, patch row, patch col) of rows (B g^2 rows of 3 p^2) holds the patch's
 * pixels in (channel, y, x) order, the order of a conv weight [D, 3, p, p]. */
static inline void vit_patches(float *rows, const float *pixels, int64_t B, int64_t g, int64_t p,
                               int64_t S) {
    const int64_t pp = 3 * p * p;
    for (int64_t b = 0; b < B; b++)
        for (int64_t gy = 0; gy < g; gy++)
            for (int64_t gx = 0; gx < g; gx++) {
                float *row = rows + ((b * g + gy) * g + gx) * pp;
                for (int64_t c = 0; c < 3; c++)
                    for (int64_t yy = 0; yy < p; yy++)
                        memcpy(row + (c * p + yy) * p,
                               pixels + ((b * 3 + c) * S + gy * p + yy) * S + gx * p,
                               (size_t)p * sizeof *row);
            }
}

static inline void bias_gelu(float *y, const float *b, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) v4_store(y + i, gelu4(v4_load(y + i) + v4_load(b + i)));
    if (i < n) {
        float t[4] = {0}, u[4] = {0};
        memcpy(t, y + i, (size_t)(n - i) * sizeof *t);
        memcpy(u, b + i, (size_t)(n - i) * sizeof *u);
        v4_store(t, gelu4(v4_load(t) + v4_load(u)));
        memcpy(y + i, t, (size_t)(n - i) * sizeof *t);
    }
}

#endif
