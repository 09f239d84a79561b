/* Vector helpers shared by the ViT forward passes (clip.c, vit.c, tfops.c): 8-float vector
 * extensions, a Cephes exp, softmax and LayerNorm. Private to src/embed.
 *
 * The vectors are 8 floats (GCC/clang vector extensions): two SSE2 registers on any x86-64,
 * one AVX register in the functions tfops.c compiles a second time for AVX2 (target_clones,
 * chosen at load time). The clones do the same operations in the same order (no FMA: the
 * "avx2" target does not enable it, so nothing is contracted), so results are the same bits
 * on every CPU. */
#ifndef RDML_EMBED_VECMATH_H
#define RDML_EMBED_VECMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* The helpers are always inlined (the AVX2 clones get the AVX2 code of every one), so the ABI
 * of 32-byte vectors in calls never applies; GCC still warns about returning one without AVX
 * (-Wpsabi: off for the rest of the including file), and notes every function that takes one
 * by value when it writes debug information, so they take a pointer: vf_exp(x) is
 * vf_exp_((vf[1]){x}). */
#pragma GCC diagnostic ignored "-Wpsabi"
#define VM_INLINE static inline __attribute__((always_inline))
#define VF_REF(x) ((const vf[1]){x})

#define VL 8 /* floats per vector */
typedef float vf __attribute__((vector_size(4 * VL)));
typedef int32_t vi __attribute__((vector_size(4 * VL)));

VM_INLINE vf vf_set(float a) { return (vf){a, a, a, a, a, a, a, a}; }
VM_INLINE vf vf_load(const float *p) {
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}
VM_INLINE void vf_store_(float *p, const vf *v) { memcpy(p, v, sizeof *v); }
#define vf_store(p, v) vf_store_(p, VF_REF(v))
/* mask ? a : b */
#define vf_select(mask, a, b) ((vf)(((vi)(a) & (mask)) | ((vi)(b) & ~(mask))))
/* the lanes' sum, pairwise */
VM_INLINE float vf_sum_(const vf *p) {
    const vf v = *p;
    return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}
#define vf_sum(v) vf_sum_(VF_REF(v))
/* the first n < VL floats of p in a vector, the others `fill`; and back */
VM_INLINE vf vf_load_part(const float *p, int64_t n, float fill) {
    float t[VL];
    for (int k = 0; k < VL; k++) t[k] = k < n ? p[k] : fill;
    return vf_load(t);
}
VM_INLINE void vf_store_part_(float *p, int64_t n, const vf *v) {
    float t[VL];
    vf_store_(t, v);
    memcpy(p, t, (size_t)n * sizeof *t);
}
#define vf_store_part(p, n, v) vf_store_part_(p, n, VF_REF(v))

/* exp of each lane, Cephes expf: n = round(x log2 e), r = x - n ln 2 in two parts, a degree-5 polynomial,
 * times 2^n from the exponent bits; within 1 ulp of glibc expf on [-87.3, 88] (inputs
 * outside are clamped, so exp(-inf) gives ~1e-38 instead of 0 and large inputs exp(88)).
 * Scalar expf made quick_gelu ~10% of a ViT-B/32 batch; this cuts it about 3x. */
#define vf_exp(x) vf_exp_(VF_REF(x))
VM_INLINE vf vf_exp_(const vf *xp) {
    vf x = *xp;
    const vf magic = vf_set(12582912.0f); /* 1.5 * 2^23: adding it rounds to an integer */
    x = vf_select(x > vf_set(88.0f), vf_set(88.0f), x);
    x = vf_select(x < vf_set(-87.3f), vf_set(-87.3f), x);
    vf t = x * vf_set(1.44269504088896341f) + magic;
    vf fx = t - magic;
    vi n = (vi)t - (vi)magic;
    vf r = x - fx * vf_set(0.693359375f);
    r = r - fx * vf_set(-2.12194440e-4f);
    vf z = r * r;
    vf y = vf_set(1.9875691500e-4f);
    y = y * r + vf_set(1.3981999507e-3f);
    y = y * r + vf_set(8.3334519073e-3f);
    y = y * r + vf_set(4.1665795894e-2f);
    y = y * r + vf_set(1.6666665459e-1f);
    y = y * r + vf_set(5.0000001201e-1f);
    y = y * z + r + vf_set(1.0f);
    return y * (vf)((n + 127) << 23);
}

/* In-place softmax of a row of n scores. */
VM_INLINE void softmax_row(float *r, int64_t n) {
    float mx = r[0];
    for (int64_t u = 1; u < n; u++) mx = r[u] > mx ? r[u] : mx;
    vf acc = vf_set(0.0f), m = vf_set(mx);
    int64_t u = 0;
    for (; u + VL <= n; u += VL) {
        vf e = vf_exp(vf_load(r + u) - m);
        acc += e;
        vf_store(r + u, e);
    }
    if (u < n) { /* the tail, padded with the max: exp(0) = 1 in the unused lanes, not summed */
        vf e = vf_exp(vf_load_part(r + u, n - u, mx) - m);
        for (int64_t k = 0; k < n - u; k++) acc[k] += e[k];
        vf_store_part(r + u, n - u, e);
    }
    float inv = 1.0f / vf_sum(acc);
    for (int64_t k = 0; k < n; k++) r[k] *= inv;
}

/* LayerNorm of `rows` rows of D: mean and variance (two passes, float with VL partial sums,
 * accurate to ~1e-7 relative for D in the thousands), then (x - mean) rstd w + b. */
VM_INLINE void layer_norm(float *out, const float *in, const float *w, const float *b, int64_t rows,
                       int64_t D, double eps) {
    const int64_t DV = D - D % VL;
    for (int64_t r = 0; r < rows; r++) {
        const float *x = in + r * D;
        float *y = out + r * D;
        vf acc = vf_set(0.0f);
        for (int64_t i = 0; i < DV; i += VL) acc += vf_load(x + i);
        float sum = vf_sum(acc);
        for (int64_t i = DV; i < D; i++) sum += x[i];
        float mu = sum / (float)D;
        vf m = vf_set(mu);
        acc = vf_set(0.0f);
        for (int64_t i = 0; i < DV; i += VL) {
            vf d = vf_load(x + i) - m;
            acc += d * d;
        }
        float ss = vf_sum(acc);
        for (int64_t i = DV; i < D; i++) ss += (x[i] - mu) * (x[i] - mu);
        float rstd = (float)(1.0 / sqrt((double)ss / (double)D + eps));
        vf rs = vf_set(rstd);
        for (int64_t i = 0; i < DV; i += VL)
            vf_store(y + i, (vf_load(x + i) - m) * rs * vf_load(w + i) + vf_load(b + i));
        for (int64_t i = DV; i < D; i++) y[i] = (x[i] - mu) * rstd * w[i] + b[i];
    }
}

/* GELU (the exact, erf form: 0.5 v (1 + erf(v / sqrt 2))): erf from Abramowitz & Stegun
 * 7.1.26 (|error| < 1.5e-7) on vf_exp. */
#define vf_gelu(v) vf_gelu_(VF_REF(v))
VM_INLINE vf vf_gelu_(const vf *vp) {
    const vf v = *vp;
    vf z = v * vf_set(0.70710678118654752f);
    vi neg = z < vf_set(0.0f);
    vf az = vf_select(neg, -z, z);
    vf t = vf_set(1.0f) / (vf_set(1.0f) + vf_set(0.3275911f) * az);
    vf p = vf_set(1.061405429f);
    p = p * t + vf_set(-1.453152027f);
    p = p * t + vf_set(1.421413741f);
    p = p * t + vf_set(-0.284496736f);
    p = p * t + vf_set(0.254829592f);
    p = p * t;
    vf e = vf_set(1.0f) - p * vf_exp(-az * az); /* erf(|z|) */
    e = vf_select(neg, -e, e);
    return vf_set(0.5f) * v * (vf_set(1.0f) + e);
}

/* quick_gelu: v sigmoid(1.702 v) */
#define vf_quick_gelu(v) vf_quick_gelu_(VF_REF(v))
VM_INLINE vf vf_quick_gelu_(const vf *v) { return *v / (vf_set(1.0f) + vf_exp(*v * vf_set(-1.702f))); }

/* The ViT patch embedding's im2col: for B images of 3 x S x S floats (pixels), g x g patches
 * of p x p; row (b, patch row, patch col) of rows (B g^2 rows of 3 p^2) holds the patch's
 * pixels in (channel, y, x) order, the order of a conv weight [D, 3, p, p]. */
VM_INLINE void vit_patches(float *rows, const float *pixels, int64_t B, int64_t g, int64_t p,
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

/* y[i] = act(y[i] + b[i]), i < n; act is vf_gelu or vf_quick_gelu (the tail padded with 0) */
#define BIAS_ACT(y, b, n, act)                                                                     \
    do {                                                                                           \
        int64_t i_ = 0;                                                                            \
        for (; i_ + VL <= (n); i_ += VL)                                                           \
            vf_store((y) + i_, act(vf_load((y) + i_) + vf_load((b) + i_)));                        \
        if (i_ < (n))                                                                              \
            vf_store_part((y) + i_, (n) - i_,                                                      \
                          act(vf_load_part((y) + i_, (n) - i_, 0.0f) +                             \
                              vf_load_part((b) + i_, (n) - i_, 0.0f)));                            \
    } while (0)

#endif
