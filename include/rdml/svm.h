/* rdml/svm.h — C-SVC and epsilon-SVR on image pairs, with every kernel value taken from the
 * image Gram matrix, and the pieces of a nested cross-validated grid search.
 *
 * Example:
 *
 *   // E: n x d embeddings. G = E E^T once; a pair (a, b) stands for the vector [e_a ; e_b].
 *   // Train on ntrain pairs ij_train (rows of E) with labels y_train (0/1), score ntest pairs.
 *   int svm_pairs(rdml_ctx *ctx, int64_t n, int64_t d, const float *E, int64_t ntrain,
 *                 const int64_t *ij_train, const int8_t *y_train, int64_t ntest,
 *                 const int64_t *ij_test, double *dec) {
 *       rdml_svm_params sp;
 *       rdml_svm_defaults(&sp);                         // sklearn SVC(): rbf, C=1, 'scale'
 *       sp.kernel = RDML_SVM_POLY;                      // the paper's SVC(kernel='poly', degree=2)
 *       sp.degree = 2;
 *       if (ntrain > 100000) sp.solver = RDML_SVM_LOWRANK; // rank-50 factor + dual CD (sp.rank)
 *       rdml_svm_images im;                             // G (smo) or the embeddings (lowrank)
 *       RDML_TRY(rdml_svm_images_make_ex(ctx, n, d, E, rdml_svm_images_needs(&sp), &im));
 *       rdml_svm_model *m = NULL;
 *       int rc = rdml_svm_train(ctx, &sp, &im, ntrain, ij_train, y_train, &m);
 *       if (!rc) rc = rdml_svm_decision(ctx, m, &im, ntest, ij_test, dec);  // > 0: class 1
 *       rdml_svm_free(&m);
 *       rdml_svm_images_free(&im);
 *       return rc;
 *   }
 *
 * <[e_a;e_b], [e_c;e_d]> = G[a][c] + G[b][d] and |[e_a;e_b]|^2 = G[a][a] + G[b][b], so
 * linear, poly, rbf and sigmoid kernels cost O(1) per pair and pair features (2D values per
 * pair) are never built. Training is libsvm's SMO: second-order working-set selection (WSS3
 * of Fan, Chen and Lin 2005), shrinking, and an LRU cache of kernel rows; the stopping rule,
 * rho and the class weights are libsvm's, so results match sklearn.svm.SVC on the
 * concatenated pairs. gamma = 'scale' is 1 / (2D * X.var()) over the training pairs'
 * concatenated features, computed from the images' squared norms and row sums. A model owns
 * copies of its support pairs and coefficients; it does not keep pointers into the caller's
 * data. epsilon-SVR (rdml_svm_train_svr, p.type = RDML_SVM_EPSILON_SVR) is libsvm's, solved by
 * the same SMO over 2l variables, and matches sklearn.svm.SVR. Nothing here is collective;
 * train and decision are re-entrant.
 */
#ifndef RDML_SVM_H
#define RDML_SVM_H

#include <mpi.h>
#include <stdint.h>

#include "rdml/core.h"
#include "rdml/cv.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum rdml_svm_kernel {
    RDML_SVM_LINEAR = 0, /* <x, y> */
    RDML_SVM_POLY,       /* (gamma <x, y> + coef0)^degree */
    RDML_SVM_RBF,        /* exp(-gamma |x - y|^2) */
    RDML_SVM_SIGMOID     /* tanh(gamma <x, y> + coef0) */
} rdml_svm_kernel;

enum { RDML_GAMMA_SCALE = 0, RDML_GAMMA_AUTO, RDML_GAMMA_VALUE };

typedef enum rdml_svm_type {
    RDML_SVM_C_SVC = 0,   /* classification of 0/1 labels (sklearn SVC) */
    RDML_SVM_EPSILON_SVR  /* regression of a real target (sklearn SVR): libsvm's epsilon-SVR */
} rdml_svm_type;

/* How a model is fitted: exact SMO on the pair kernel (the reference), or a linear SVM on the
 * explicit feature map of a rank-K factor of the image Gram matrix (src/svm/lowrank.c). */
typedef enum rdml_svm_solver {
    RDML_SVM_SMO = 0,     /* libsvm's SMO on the exact kernel (sklearn.svm.SVC) */
    RDML_SVM_LOWRANK      /* rank-K image factor + dual coordinate descent (scales to ~1M pairs) */
} rdml_svm_solver;

/* lowrank: the rank-K factor F = E P of the images (P: D x K) */
typedef enum rdml_svm_factor {
    RDML_SVM_FACTOR_EIGEN = 0, /* top-K eigenvectors of the training images' Gram (truncated SVD) */
    RDML_SVM_FACTOR_NYSTROM    /* K landmark training images drawn by the counter RNG */
} rdml_svm_factor;

typedef struct rdml_svm_params {
    rdml_svm_type type;  /* C-SVC (default) or epsilon-SVR */
    rdml_svm_kernel kernel;
    int degree;          /* poly: exponent (sklearn 3; the paper 2) */
    int gamma_mode;      /* RDML_GAMMA_SCALE: 1/(n_features X.var()); AUTO: 1/n_features; VALUE */
    double gamma;        /* used when gamma_mode == RDML_GAMMA_VALUE; > 0 */
    double coef0;        /* poly, sigmoid: additive constant */
    double C;            /* box constraint, > 0 */
    double epsilon;      /* epsilon-SVR: half-width of the insensitive tube (sklearn 0.1), >= 0 */
    double weight[2];    /* class weights multiplying C for class 0 and class 1 (1, 1) */
    int balanced;        /* class_weight = 'balanced': weight[c] = n / (2 n_c), overrides weight */
    double tol;          /* stopping tolerance on the KKT violation (sklearn tol 1e-3) */
    int shrinking;       /* libsvm's shrinking heuristic (sklearn default on) */
    double cache_mb;     /* kernel-row cache in MB (sklearn cache_size 200) */
    int64_t max_iter;    /* 0: libsvm's default max(10^7, 100 l) */
    int symmetric;       /* order-symmetric pair kernel: (k(ab, cd) + k(ab, dc)) / 2 */
    /* solver = RDML_SVM_LOWRANK only (rdml_svm_defaults: smo, rank 50, eigen, 1.0, 1000) */
    rdml_svm_solver solver;
    int rank;            /* K: columns of the image factor, 1 <= K <= training images (and D) */
    rdml_svm_factor factor;
    double lr_tol;       /* dual CD stop: max - min projected gradient over an epoch (LIBLINEAR eps) */
    int64_t max_epochs;  /* dual CD epoch cap; hitting it sets info.converged = 0 */
    uint64_t seed;       /* landmarks and the coordinate order (counter RNG); never the rank */
    int64_t split_min;   /* rdml_svm_fit_comm splits a C-SVC fit of at least this many pairs
                          * (default RDML_SVM_SPLIT_MIN_PAIRS: an iteration on fewer is too
                          * short to share between ranks) */
    int split_mode;      /* rdml_svm_fit_comm after the first min(l, 1000) iterations: 0
                          * measures and hands the fit to the group's first rank when the split
                          * does not pay (the ranks' compute time summed < 1.2 x the wall
                          * time, e.g. on oversubscribed cores); 1 always splits; 2 always hands
                          * it over (tests) */
} rdml_svm_params;

/* sklearn.svm.SVC()'s defaults: rbf, degree 3, gamma 'scale', coef0 0, C 1, tol 1e-3,
 * shrinking on, cache 200 MB; epsilon 0.1 (SVR's default, used by epsilon-SVR only). */
void rdml_svm_defaults(rdml_svm_params *p);
/* A readable error for an invalid parameter set (libsvm's svm_check_parameter). */
int rdml_svm_check(rdml_ctx *ctx, const rdml_svm_params *p);
/* "linear" ... "sigmoid" -> kernel, -1 when unknown. */
int rdml_svm_kernel_parse(const char *name);
const char *rdml_svm_kernel_name(rdml_svm_kernel k);
/* "smo" / "lowrank" -> solver, "eigen" / "nystrom" -> factor; -1 when unknown. */
int rdml_svm_solver_parse(const char *name);
const char *rdml_svm_solver_name(rdml_svm_solver s);
int rdml_svm_factor_parse(const char *name);
const char *rdml_svm_factor_name(rdml_svm_factor f);
/* "c_svc" / "epsilon_svr" -> type, -1 when unknown. */
int rdml_svm_type_parse(const char *name);
const char *rdml_svm_type_name(rdml_svm_type t);

/* The per-image quantities every pair kernel needs. */
typedef struct rdml_svm_images {
    int64_t n;       /* N images */
    int64_t d;       /* D embedding width (a pair has 2D features) */
    double *gram;    /* N x N, G = E E^T (double sums of float products); NULL without GRAM */
    float *emb;      /* N x D copy of the embeddings (only with RDML_SVM_IMAGES_EMB: lowrank) */
    double *sqnorm;  /* N: |e_i|^2 */
    double *rowsum;  /* N: sum_k e_ik (for gamma = 'scale') */
} rdml_svm_images;

/* From N x D float embeddings (row-major), with one DSYRK. */
int rdml_svm_images_make(rdml_ctx *ctx, int64_t n, int64_t d, const float *emb,
                         rdml_svm_images *out);
/* What to keep: the Gram matrix (SMO needs it: 8 N^2 bytes) and/or a copy of the embeddings
 * (the lowrank solver needs only these: 4 N D bytes). Norms and sums are always made. */
enum { RDML_SVM_IMAGES_GRAM = 1, RDML_SVM_IMAGES_EMB = 2 };
int rdml_svm_images_make_ex(rdml_ctx *ctx, int64_t n, int64_t d, const float *emb, int what,
                            rdml_svm_images *out);
/* The `what` a solver needs: GRAM for smo, EMB for lowrank. */
int rdml_svm_images_needs(const rdml_svm_params *p);
void rdml_svm_images_free(rdml_svm_images *im);

typedef struct rdml_svm_model rdml_svm_model;

/* Train a C-SVC on l pairs: ij is l x 2 image rows, y is l labels 0/1. Both classes must be
 * present (RDML_EDATA naming the counts otherwise). p->type must be RDML_SVM_C_SVC. */
int rdml_svm_train(rdml_ctx *ctx, const rdml_svm_params *p, const rdml_svm_images *im,
                   int64_t l, const int64_t *ij, const int8_t *y, rdml_svm_model **out);
/* Train an epsilon-SVR on l pairs with real targets (libsvm's formulation: 2l dual variables
 * alpha, alpha* with linear terms epsilon -/+ target, the same SMO solver; rows of the l x l
 * pair kernel are cached once and signed per variable). Non-finite targets are RDML_EDATA.
 * p->type must be RDML_SVM_EPSILON_SVR. */
int rdml_svm_train_svr(rdml_ctx *ctx, const rdml_svm_params *p, const rdml_svm_images *im,
                       int64_t l, const int64_t *ij, const double *target, rdml_svm_model **out);
/* C-SVC by the lowrank solver (p->solver = RDML_SVM_LOWRANK; im made with
 * RDML_SVM_IMAGES_EMB): the images' rank-K factor F = E P (P from the training pairs' images
 * only), the explicit feature map of the kernel on the pair vectors z = [f_a; f_b] (linear:
 * z; poly degree 1 or 2 with coef0 >= 0: [gamma z (x) z, sqrt(2 gamma coef0) z, coef0]), a
 * constant bias feature 1 (LIBLINEAR's -B 1), and LIBLINEAR's dual coordinate descent for
 * the L1 (hinge) loss with C_i = C weight[y_i] and shrinking. The weight vector is kept as a
 * 2K x 2K symmetric matrix, so a coordinate step costs O(K^2) and pair features are never
 * built (docs/svm.md: method, cost, accuracy against K). Supported kernels: linear, poly with degree <= 2 and coef0 >= 0 (rdml_svm_check);
 * no SVR, no symmetric_kernel. info.n_sv counts alpha > 0; rdml_svm_support gives them. */
int rdml_svm_train_lowrank(rdml_ctx *ctx, const rdml_svm_params *p, const rdml_svm_images *im,
                           int64_t l, const int64_t *ij, const int8_t *y, rdml_svm_model **out);
/* Either of the two by p->type: target is 0/1 (C-SVC, > 0.5 is class 1) or real (SVR);
 * p->solver = lowrank goes to rdml_svm_train_lowrank. */
int rdml_svm_fit(rdml_ctx *ctx, const rdml_svm_params *p, const rdml_svm_images *im,
                 int64_t l, const int64_t *ij, const double *target, rdml_svm_model **out);
/* Collective over comm: rdml_svm_fit with the work of one fit split over the ranks of comm.
 * For C-SVC with the smo solver on at least p->split_min pairs (rdml_svm_fit_splits) every SMO iteration's working-set scans,
 * gradient updates and kernel rows are split into contiguous blocks of the training pairs and
 * the choices reduced in a fixed order (two small allgathers per iteration; the gradients are
 * gathered only when the solver shrinks), so every rank gets the model of rdml_svm_fit bit
 * for bit, for any size of comm. A split that does not pay is handed to rank 0 of comm, which
 * goes on alone from the same state (p->split_mode; info.waited on the others). Other types and solvers run rdml_svm_fit on every rank. */
int rdml_svm_fit_comm(rdml_ctx *ctx, MPI_Comm comm, const rdml_svm_params *p,
                      const rdml_svm_images *im, int64_t l, const int64_t *ij,
                      const double *target, rdml_svm_model **out);
/* Does rdml_svm_fit_comm split a fit of p on l training pairs over its ranks? */
#define RDML_SVM_SPLIT_MIN_PAIRS 4096
int rdml_svm_fit_splits(const rdml_svm_params *p, int64_t l);
/* Decision values f(x) = sum_i coef_i K(sv_i, x) - rho for n pairs (same image set `im` as
 * in training); for C-SVC f > 0 predicts class 1, as sklearn's decision_function; for
 * epsilon-SVR f is the prediction, as sklearn SVR's predict. */
int rdml_svm_decision(rdml_ctx *ctx, const rdml_svm_model *m, const rdml_svm_images *im,
                      int64_t n, const int64_t *ij, double *out);
void rdml_svm_free(rdml_svm_model **m);

typedef struct rdml_svm_info {
    double objective;    /* dual objective 1/2 a'Qa + p'a at the solution (libsvm's obj; C-SVC
                            p = -e; SVR over [alpha; alpha*], p = [eps - y; eps + y]) */
    double rho;          /* f(x) = sum coef K - rho; sklearn's intercept_ = -rho */
    double gamma;        /* the gamma used (after scale/auto) */
    int64_t n_sv;        /* support vectors (alpha > 0) */
    int64_t n_bsv;       /* bounded ones (alpha = C; SVR |alpha - alpha*| = C) */
    int64_t iterations;
    int converged;       /* 0 when max_iter stopped it */
    double seconds;      /* wall time of the fit */
    double waited;       /* rdml_svm_fit_comm: seconds this rank only waited (a fit handed to
                          * the group's first rank) */
} rdml_svm_info;
void rdml_svm_get_info(const rdml_svm_model *m, rdml_svm_info *out);
/* Support vectors in training order: indices into the training set and coefficients y_i
 * alpha_i with y in {-1, +1} (+1 = class 1), or alpha_i - alpha*_i for SVR, as sklearn's
 * support_ and dual_coef_. Pointers owned by the model; *n gets n_sv. */
void rdml_svm_support(const rdml_svm_model *m, int64_t *n, const int64_t **index,
                      const double **coef);

/* ---- hyperparameter grids and nested cross-validation (src/svm/grid.c) ----
 *
 *   rdml_svm_grid_axes ax = {0};                       // an axis with 0 values is not searched
 *   double Cs[] = {0.1, 1, 10};  ax.nC = 3;  ax.C = Cs;
 *   rdml_svm_params *set;  int64_t ns;
 *   RDML_TRY(rdml_svm_grid_make(ctx, &base, &ax, &set, &ns));    // sklearn ParameterGrid order
 *   RDML_TRY(rdml_cv_inner_folds(ctx, n, in_outer_train, 3, seed, f, inner)); // rdml/cv.h
 *   for s, g: rdml_svm_cv_score(ctx, &set[s], &im, P, ij, target, inner, NULL, g, sc, &score[s*3+g], ...);
 *   rdml_cv_grid_select(ns, 3, score, mean, sd, &best);      // best mean, ties -> grid order
 */
typedef struct rdml_svm_grid_axes {
    int nC;       const double *C;
    int ncoef0;   const double *coef0;
    int ndegree;  const int *degree;
    int nepsilon; const double *epsilon;
    int ngamma;   const int *gamma_mode; const double *gamma; /* mode RDML_GAMMA_*; value for VALUE */
    int nkernel;  const rdml_svm_kernel *kernel;
} rdml_svm_grid_axes;

/* Every combination of the axes' values, the other parameters from base, in sklearn's
 * ParameterGrid order (parameter names sorted: C, coef0, degree, epsilon, gamma, kernel; the
 * last varies fastest), so ties broken by grid order choose what GridSearchCV chooses. Each
 * setting is checked (rdml_svm_check). *out is malloc'd (n x params); at least one setting
 * (base alone when no axis has values). */
int rdml_svm_grid_make(rdml_ctx *ctx, const rdml_svm_params *base, const rdml_svm_grid_axes *ax,
                       rdml_svm_params **out, int64_t *n);

/* Does the scoring (rdml/cv.h) fit the SVM type (classification scores for C-SVC,
 * regression for SVR)? */
int rdml_svm_scoring_fits(rdml_cv_scoring s, rdml_svm_type t);

/* Fit setting p on the training pairs tr (indices into ij / target) and score the test
 * pairs te with sc: an rdml_cv_fit_score for rdml_cv_grid_search. *score is finite or NaN
 * (e.g. ROC AUC of a one-class test side). */
int rdml_svm_fit_score(rdml_ctx *ctx, const rdml_svm_params *p, const rdml_svm_images *im,
                       const int64_t *ij, const double *target, const int64_t *tr, int64_t ntr,
                       const int64_t *te, int64_t nte, rdml_cv_scoring sc, double *score);
/* One grid task: fit setting p on the training side of inner fold g (rdml_cv_inner_split)
 * and score its test side. target: l values (0/1 or real by p->type). *score is finite or NaN
 * (e.g. ROC AUC of a one-class test side); ntrain/ntest (may be NULL) get the sizes. */
int rdml_svm_cv_score(rdml_ctx *ctx, const rdml_svm_params *p, const rdml_svm_images *im,
                      int64_t l, const int64_t *ij, const double *target,
                      const int64_t *image_fold, const int64_t *pair_fold, int64_t g,
                      rdml_cv_scoring sc, double *score, int64_t *ntrain, int64_t *ntest);

#ifdef __cplusplus
}
#endif
#endif
