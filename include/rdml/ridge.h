/* rdml/ridge.h — ridge regression from image features to many targets (vertices), with a
 * regularisation strength chosen per target.
 *
 * Example (one outer fold: factor the training features once, then fit vertex blocks):
 *
 *   // X: n x d features (row-major), Y: n x v responses (row-major, same image rows).
 *   // train / test: image rows of this fold. Fills alpha index, r and R^2 per vertex.
 *   int fit_fold(rdml_ctx *ctx, const float *X, int64_t n, int64_t d, const float *Y,
 *                int64_t v, const int64_t *train, int64_t ntrain, const int64_t *test,
 *                int64_t ntest, int32_t *alpha_index, double *r, double *r2) {
 *       double alphas[9], a0 = 0.01;
 *       for (int a = 0; a < 9; a++, a0 *= 10) alphas[a] = a0;      // 1e-2 .. 1e6
 *       rdml_ridge_opts o;
 *       rdml_ridge_opts_default(&o);
 *       o.alphas = alphas;
 *       o.nalphas = 9;
 *       o.cv = RDML_RIDGE_LOO;                                    // or RDML_RIDGE_KFOLD
 *       o.standardize = 1;
 *       rdml_ridge_fact *f = NULL;
 *       RDML_TRY(rdml_ridge_fact_new(ctx, X, n, d, d, train, ntrain, test, ntest, &o, &f));
 *       int rc = RDML_OK;
 *       for (int64_t c0 = 0; c0 < v && !rc; c0 += 1000) {       // a block of vertices
 *           int64_t vb = v - c0 < 1000 ? v - c0 : 1000;
 *           rdml_ridge_out out = {0};
 *           out.alpha_index = alpha_index + c0;
 *           out.r = r + c0;
 *           out.r2 = r2 + c0;
 *           rc = rdml_ridge_fit(ctx, f, Y + c0, v, vb, c0, &out);
 *       }
 *       rdml_ridge_fact_free(f);
 *       return rc;
 *   }
 *
 * Model. For the training rows of X (ntrain x d) and a block of targets Y (vb columns):
 * features are centred on the training rows (standardize = 1 also divides them by their
 * population standard deviation on the training rows, sklearn's StandardScaler; a constant
 * feature keeps scale 1), targets are centred (fit_intercept=True), and for each target t
 * with its chosen alpha a_t
 *     w_t = argmin ||Xc w - yc_t||^2 + a_t ||w||^2,   prediction(x) = x . w_t + b_t,
 * which is scikit-learn's Ridge(alpha=a_t) (after StandardScaler when standardize = 1).
 * Weights and intercepts are returned on the ORIGINAL feature scale: prediction = x_raw . w
 * + b for a raw feature row x_raw (the scaling and centring are folded into w and b).
 *
 * Choosing alpha per target, from the user's grid (every alpha > 0 and finite, else
 * RDML_ECONFIG naming the value; the grid may be in any order):
 *  - RDML_RIDGE_LOO: efficient leave-one-out, exactly scikit-learn
 *    RidgeCV(alphas, alpha_per_target=True, fit_intercept=True) with its default scoring:
 *    the mean over training rows of the squared LOO residual
 *        e_i(a) = (y_i - yhat_i(a)) / (1 - h_i(a)),  h_i(a) = 1/ntrain + sum_j U_ij^2 s_j^2/(s_j^2 + a)
 *    (Xc = U S V' thin SVD; the 1/ntrain term is the intercept column sklearn appends to X
 *    and leaves unpenalised, in both its "svd" and "eigen" modes). The alpha with the smallest
 *    mean squared LOO residual wins; ties go to the first alpha of the grid (sklearn updates
 *    only on a strictly better score). cv_scores holds minus that mean (sklearn's score).
 *    Alphas that provably cannot win are pruned (see Cost): the result is the same.
 *  - RDML_RIDGE_KFOLD: himalaya's solve_ridge_cv_svd semantics: for each inner fold k the
 *    features and targets are centred on the inner training rows (the standardisation stays
 *    the outer training rows' one, as in a Pipeline(StandardScaler, RidgeCV)), ridge is fit
 *    for every alpha, and the held-out rows are scored per target with `score`:
 *    RDML_RIDGE_SCORE_NEG_MSE (himalaya's default l2_neg_loss: minus the mean squared error
 *    over the held-out rows) or RDML_RIDGE_SCORE_R2 (himalaya's r2_score: 1 - SSE/SST of the
 *    held-out rows, 0 when they are constant). Scores are averaged over the inner folds
 *    (cv_scores), 1e-10 * ln(alpha) is added (himalaya's tie-break towards larger alphas) and
 *    the first maximum wins; then the model is refit on all training rows. Inner folds are
 *    the caller's (inner_fold: one fold id per training row, in the order of `train`) or
 *    rdml_cv_inner_folds(seed, outer_fold) over the training images, the same inner folds as
 *    the pair models' nested grid search of that outer fold.
 *
 * Test outputs (rows `test` of the fact): predictions (float32), Pearson r per target
 * (scipy.stats.pearsonr; NaN when the test responses or the predictions are constant, as
 * scipy returns nan) and R^2 per target (sklearn r2_score per column: 1 - SSE/SST; for a
 * constant test column 1 when the predictions equal it exactly and 0 otherwise, sklearn's
 * force_finite). With ntest = 0 they are NaN and pred is not written.
 *
 * Cost. Let n = ntrain, r = min(n, d) (the rank kept: eigenvalues above lam_max * max(n,d) *
 * DBL_EPSILON), A = nalphas, V = targets in total, nt = ntest. The factorisation
 * (rdml_ridge_fact_new, once per outer fold) forms the smaller Gram matrix, Xc'Xc (d x d) when
 * n > d as sklearn's "svd" mode, else XcXc' (n x n) as its "eigen" mode, and its
 * eigendecomposition, in double: n d min(n, d) + ~9 min(n, d)^3 flops, plus U (n x r) and the
 * leverages h_i(a) of every alpha (n r A). Per target, the LOO mode costs
 *     2 n r (1 + E) + 4 A n E flops (E = alphas evaluated exactly, 1 <= E <= A):
 * Z = U'y (2 n r), and for each evaluated alpha a the exact LOO residuals
 * y - U diag(lam/(lam + a)) Z (or, when U and the constant vector span all n rows, exactly
 * U diag(a/(lam + a)) Z, which avoids the cancellation of y against its near-perfect fit), as
 * float32 SGEMMs of 256-row panels of U against the c_a Z columns of all targets at once
 * (2 n r), divided by 1 - h_i(a), squared and summed per panel; plus bounds on every other
 * alpha's LOO error from that residual (one (2A x n) x (n x w) SGEMM, 4 A n per target, and
 * r-space sums). Alpha selection: evaluate the alpha with the best estimate, bound the others
 * from its residual, evaluate the best remaining candidate while some lower bound can still
 * beat the best exact LOO error (docs/encode.md "Ridge solver" gives the bounds). The chosen
 * alpha and its LOO error are the exhaustive evaluation's (up to float32 rounding, as for
 * another block width: two alphas within rounding of each other may swap). On embedding-like
 * features E is about 1.2-1.4 (bench/encode), so the LOO mode costs about 2.3 n r instead of
 * the exhaustive 2 n r (A + 1), sklearn's own count (2 n (r+1) per target and alpha in
 * float64). With opts.loo_exhaustive, or when cv_scores is asked for (every alpha's score is
 * then needed), E = A: one SGEMM of each 256-row panel against [c_1 Z ... c_A Z].
 * The refit costs 2 r (d + nt) per target (weights and test predictions). The k-fold mode
 * costs, per target, 2 n r (A + K) for K inner folds (U_k'y on each inner training side,
 * every alpha's held-out predictions, the refit), plus K factorisations per fact.
 *
 * Memory. A fact holds 4 (n r + d r + nt r + 3 A n) + 16 A r bytes (LOO; k-fold: 4 (n r +
 * d r + nt r) plus K inner facts of 4 (n_k r + n_te,k r)), plus 2 d doubles;
 * rdml_ridge_fact_new needs 8 (n d + nt d + g^2 + n r + d r) bytes of double scratch while
 * factoring (g = min(n, d)). rdml_ridge_fit allocates rdml_ridge_fit_bytes(f, vb) bytes,
 * freed on return: for the pruned LOO about
 * 4 w (2 n + nt + d + 3 r) + 16 w r for its internal target sub-block w (opts.block; default
 * 512), for the exhaustive LOO and k-fold about 4 w (n + r (A + 1) + 256 A + nt + d) (w =
 * opts.block, default 1024 / A rounded to 16); the caller's Y block (n x vb) is read in place
 * (only rows train and test). The LOO pruning adds 4 (2 A n) + 16 A r bytes to the fact. So
 * a rank that keeps the 5 facts of a 9,841-image subject (d = 512, 20 alphas) and reads
 * 2,048-vertex blocks needs about 5 x 22 MB + 45 MB + its 80 MB block of Y.
 *
 * Threads: the GEMMs use OpenBLAS's threads (OPENBLAS_NUM_THREADS); the rest is serial. A
 * fact is read-only after rdml_ridge_fact_new: several threads may fit blocks with it at once.
 * Nothing here is collective or uses MPI: the caller decides which rank fits which block.
 * Bad input: NaN or Inf in X (rows train or test) or in Y (rows train or test) is
 * RDML_EDATA naming the row (image) and column (feature, or vertex col0 + j); vb < 1,
 * ntrain < 2, a row index outside [0, n), a training row given twice, a k-fold with more
 * folds than training images, an inner fold id out of range, an empty inner fold or fewer
 * than 2 inner training rows are RDML_EDATA/RDML_ECONFIG with the numbers. d > ntrain is
 * allowed (the ridge penalty makes it well posed). Test rows may be any rows.
 * Each target is computed from its own column only: another cut of the targets into blocks
 * changes its results only by float32 rounding (OpenBLAS may sum in another order for another
 * matrix width); the same blocks give the same bits. A caller whose results must not depend
 * on the number of ranks cuts the targets into fixed blocks and deals those out (the encode
 * stage does).
 */
#ifndef RDML_RIDGE_H
#define RDML_RIDGE_H

#include <stdint.h>

#include "rdml/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum rdml_ridge_cv {
    RDML_RIDGE_LOO = 0,  /* efficient leave-one-out (sklearn RidgeCV, alpha_per_target) */
    RDML_RIDGE_KFOLD = 1 /* inner image k-fold (himalaya solve_ridge_cv_svd) */
} rdml_ridge_cv;

typedef enum rdml_ridge_score {
    RDML_RIDGE_SCORE_NEG_MSE = 0, /* himalaya's default l2_neg_loss */
    RDML_RIDGE_SCORE_R2 = 1       /* himalaya's r2_score */
} rdml_ridge_score;

typedef struct rdml_ridge_opts {
    const double *alphas;  /* nalphas penalties, each > 0 (copied by rdml_ridge_fact_new) */
    int64_t nalphas;       /* >= 1 */
    rdml_ridge_cv cv;      /* default RDML_RIDGE_LOO */
    int standardize;       /* 1: divide centred features by their training std; default 0 */
    /* k-fold mode only: */
    int64_t inner_k;           /* number of inner folds, >= 2; default 5 */
    const int64_t *inner_fold; /* ntrain fold ids in [0, inner_k), in the order of train; or
                                * NULL: rdml_cv_inner_folds(seed, outer_fold) (copied) */
    uint64_t seed;             /* run.seed for the seeded inner folds */
    int64_t outer_fold;        /* the outer fold, keys the seeded inner folds */
    rdml_ridge_score score;    /* default RDML_RIDGE_SCORE_NEG_MSE */
    int64_t block;             /* internal target sub-block of rdml_ridge_fit; 0 = automatic */
    /* LOO only: 1 = evaluate every alpha of every target exactly (no pruning). The default
     * (0) evaluates exactly only the alphas whose bound on the LOO error can still beat the
     * best exact one; the chosen alphas and their LOO errors are the same bits either way. */
    int loo_exhaustive;
} rdml_ridge_opts;

void rdml_ridge_opts_default(rdml_ridge_opts *o);

/* The factorisation of one fold's training features, reused for every target block. */
typedef struct rdml_ridge_fact rdml_ridge_fact;

/* X: n x d float32, row-major with leading dimension ldx >= d (row i = image i). train:
 * ntrain row indices (the training images, any order, no repeats); test: ntest row indices
 * (ntest may be 0, test may then be NULL). Copies what it needs (X may be freed after). */
int rdml_ridge_fact_new(rdml_ctx *ctx, const float *X, int64_t n, int64_t d, int64_t ldx,
                        const int64_t *train, int64_t ntrain, const int64_t *test,
                        int64_t ntest, const rdml_ridge_opts *opts, rdml_ridge_fact **out);
void rdml_ridge_fact_free(rdml_ridge_fact *f);

/* Sizes the fact was made for (d, ntrain, ntest, nalphas, r = numerical rank used). */
int64_t rdml_ridge_fact_dim(const rdml_ridge_fact *f, char which);

/* Outputs of one block of vb targets; every pointer may be NULL (not computed/written). */
typedef struct rdml_ridge_out {
    int32_t *alpha_index; /* vb: index into opts.alphas of the chosen alpha */
    double *cv_best;      /* vb: cv_scores at the chosen alpha (larger is better) */
    double *cv_scores;    /* nalphas x vb (row a = alpha a, ld = vb): LOO: minus the mean
                           * squared LOO residual; k-fold: mean inner-fold score */
    float *weights;       /* d x vb (ld = vb): weights on the raw feature scale */
    float *intercept;     /* vb */
    float *pred;          /* ntest x vb (ld = vb): predictions for the test rows */
    double *r;            /* vb: Pearson r on the test rows */
    double *r2;           /* vb: R^2 on the test rows */
    int32_t *loo_evals;   /* vb: LOO: alphas whose LOO error was evaluated exactly (nalphas
                           * when exhaustive); k-fold: nalphas */
} rdml_ridge_out;

/* Fit vb targets: Y is n x vb float32, row-major with leading dimension ldy >= vb, the same
 * image rows as X (only rows train and test are read). col0 is the global index of column 0
 * (for error messages only). */
int rdml_ridge_fit(rdml_ctx *ctx, const rdml_ridge_fact *f, const float *Y, int64_t ldy,
                   int64_t vb, int64_t col0, rdml_ridge_out *out);

/* Bytes rdml_ridge_fit allocates for a block of vb targets (the formula above). */
int64_t rdml_ridge_fit_bytes(const rdml_ridge_fact *f, int64_t vb);

#ifdef __cplusplus
}
#endif
#endif
