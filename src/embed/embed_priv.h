/* Private pieces shared by the embedding backends (src/embed). */
#ifndef RDML_EMBED_PRIV_H
#define RDML_EMBED_PRIV_H

#include "rdml/embed.h"

/* Pillow convert('L') of any channel count (1: copy, 2: the gray channel, 3/4: ITU-R 601-2
 * luma in 16-bit fixed point); out has w * h bytes. */
void rdml_embed_gray(const rdml_image *im, uint8_t *out);

/* A parallel loop (par.c): fn(arg, thread, begin, end) over [0, n) in chunks of `grain`
 * indices, on rdml_par_threads() threads (OpenBLAS's thread count; thread = 0 .. that - 1, the
 * calling thread is 0). blas_single: the body calls OpenBLAS, which then runs one thread per
 * caller for the duration. Results must not depend on which thread runs an index. */
typedef void (*rdml_par_fn)(void *arg, int thread, int64_t begin, int64_t end);
void rdml_par_for(int64_t n, int64_t grain, int blas_single, rdml_par_fn fn, void *arg);
int rdml_par_threads(void);

/* Transformer steps on rdml_par_for (tfops.c), rows of (B T) x D activations.
 * attention: qkv is (B T) x 3D (q | k | v, heads of D / H columns each); its bias qkv_b (3D,
 * or NULL) is added in place, then per image and head out = softmax(scale Q K^T) V into the
 * head's columns of out ((B T) x D); scratch holds rdml_par_threads() T x T floats.
 * layer_norm: out = LayerNorm(in) (out may be in). bias_act: y = act(y + b) per row of n.
 * residual: h += (y + b) * gamma (gamma NULL: 1). */
enum { RDML_TF_NONE, RDML_TF_GELU, RDML_TF_QUICK_GELU };
void rdml_tf_attention(float *qkv, const float *qkv_b, float *out, float *scratch, int64_t B,
                       int64_t T, int64_t D, int64_t H, float scale);
void rdml_tf_layer_norm(float *out, float *in, const float *w, const float *b, int64_t rows,
                        int64_t D, double eps);
void rdml_tf_bias_act(float *y, const float *b, int64_t rows, int64_t n, int act);
void rdml_tf_residual(float *h, const float *y, const float *b, const float *gamma, int64_t rows,
                      int64_t D);

#endif
