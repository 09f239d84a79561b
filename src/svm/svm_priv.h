/* Private: the pair kernel shared by the solver and the decision function. */
#ifndef RDML_SVM_PRIV_H
#define RDML_SVM_PRIV_H

#include <math.h>
#include <stdint.h>

#include "rdml/svm.h"

typedef struct svm_kern {
    rdml_svm_kernel type;
    int degree, symmetric;
    double gamma, coef0;
    int64_t n;           /* N images: G is n x n */
    const double *G;     /* Gram matrix */
    const double *sq;    /* squared norms */
} svm_kern;

/* libsvm's powi (repeated squaring), so poly values match libsvm's bit for bit. */
static inline double svm_powi(double base, int times) {
    double tmp = base, ret = 1.0;
    for (int t = times; t > 0; t /= 2) {
        if (t % 2 == 1) ret *= tmp;
        tmp = tmp * tmp;
    }
    return ret;
}

/* k of two pair vectors given their dot product and (rbf) their squared norms' sum. */
static inline double svm_kval(const svm_kern *k, double dot, double sqsum) {
    switch (k->type) {
    case RDML_SVM_LINEAR: return dot;
    case RDML_SVM_POLY: return svm_powi(k->gamma * dot + k->coef0, k->degree);
    case RDML_SVM_RBF: return exp(-k->gamma * (sqsum - 2 * dot));
    case RDML_SVM_SIGMOID: return tanh(k->gamma * dot + k->coef0);
    }
    return 0;
}

/* K((a,b), (c,d)) */
static inline double svm_pair_kernel(const svm_kern *k, int64_t a, int64_t b, int64_t c, int64_t d) {
    const double *G = k->G;
    int64_t n = k->n;
    double sqsum = k->type == RDML_SVM_RBF ? k->sq[a] + k->sq[b] + k->sq[c] + k->sq[d] : 0;
    double v = svm_kval(k, G[a * n + c] + G[b * n + d], sqsum);
    if (k->symmetric) v = 0.5 * (v + svm_kval(k, G[a * n + d] + G[b * n + c], sqsum));
    return v;
}

struct svm_lowrank;

struct rdml_svm_model {
    svm_kern k;          /* G and sq pointers are cleared: supplied again at decision time */
    int64_t n_images;
    int64_t nsv;
    int64_t *sv_index;   /* into the training set */
    int64_t *sv_ij;      /* nsv x 2 */
    double *coef;        /* y alpha */
    rdml_svm_info info;
    struct svm_lowrank *lr; /* the lowrank solver's model (NULL for SMO) */
};

/* shared by svm.c and lowrank.c */
double svm_gamma_of(const rdml_svm_params *p, const rdml_svm_images *im, int64_t l,
                    const int64_t *ij);
int svm_make_model(rdml_ctx *ctx, const svm_kern *k, int64_t n_images, int64_t l,
                   const int64_t *ij, const double *coef, const double *bound, double obj,
                   double rho, int64_t iters, int conv, double t0, rdml_svm_model **out);
int svm_check_pairs(rdml_ctx *ctx, const rdml_svm_images *im, int64_t l, const int64_t *ij);
/* The labels y (l pairs) are 0 or 1 and both classes occur: cnt[c] = pairs of class c. */
int svm_check_labels(rdml_ctx *ctx, int64_t l, const int8_t *y, int64_t cnt[2]);
int svm_lowrank_check(rdml_ctx *ctx, const rdml_svm_params *p);
int svm_lowrank_decision(rdml_ctx *ctx, const rdml_svm_model *m, const rdml_svm_images *im,
                         int64_t n, const int64_t *ij, double *out);
void svm_lowrank_free(struct svm_lowrank *lr);

#endif
