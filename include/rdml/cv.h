/* rdml/cv.h — model-independent cross-validation over image pairs.
 *
 * Example (a nested grid search over two ridge penalties of a toy model):
 *
 *   typedef struct toy { const double *target; } toy;
 *   // fit-and-score: predict every test pair by the training mean shrunk by the setting
 *   static int toy_fit_score(rdml_ctx *ctx, void *user, int64_t setting, int64_t inner_fold,
 *                            const int64_t *tr, int64_t ntr, const int64_t *te, int64_t nte,
 *                            double *score) {
 *       const toy *t = user;
 *       double m = rdml_cv_train_mean(t->target, tr, ntr) / (1.0 + (double)setting);
 *       double *pred = malloc((size_t)nte * sizeof *pred), *y = malloc((size_t)nte * sizeof *y);
 *       if (!pred || !y) { free(pred); free(y); return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory"); }
 *       for (int64_t q = 0; q < nte; q++) { pred[q] = m; y[q] = t->target[te[q]]; }
 *       int rc = rdml_cv_score(ctx, RDML_SCORE_NEG_MSE, nte, y, pred, score);
 *       free(pred); free(y);
 *       return rc;
 *   }
 *   int toy_grid(rdml_ctx *ctx, int64_t l, const int64_t *ij, const double *target,
 *                int64_t nimages, int64_t *chosen) {
 *       int8_t *use = malloc((size_t)nimages);
 *       int64_t *fold = malloc((size_t)nimages * sizeof *fold);
 *       double scores[2 * 3];                                    // 2 settings x 3 inner folds
 *       toy t = {target};
 *       int rc = use && fold ? RDML_OK : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
 *       for (int64_t i = 0; i < nimages && !rc; i++) use[i] = 1;  // all images train here
 *       if (!rc) rc = rdml_cv_inner_folds(ctx, nimages, use, 3, 42, 0, fold);
 *       if (!rc) rc = rdml_cv_grid_search(ctx, 2, 3, l, ij, fold, NULL, toy_fit_score, &t,
 *                                         scores, chosen);
 *       free(use); free(fold);
 *       return rc;
 *   }
 *
 * The pieces: the outer folds of a split as pair lists (rdml_cv_folds_make), the seeded
 * inner K-fold of a nested grid search, the inner train/test pairs, the grid search itself
 * with a fit-and-score callback (any model: the pair SVM's rdml_svm_fit_score, the pair
 * networks' fits in the train stage), the scores that select a setting, and the chance
 * levels of a regression fold (the training mean as prediction; the predictions against
 * shuffled test targets). Everything is a pure function of its inputs and the seed, not
 * collective: which rank runs which fold is the caller's business (the experiment layer's
 * task farm).
 */
#ifndef RDML_CV_H
#define RDML_CV_H

#include <stdint.h>

#include "rdml/core.h"

#ifdef __cplusplus
extern "C" {
#endif

struct rdml_split;
struct rdml_pairs;

/* ---- scoring ---- */
typedef enum rdml_cv_scoring {
    RDML_SCORE_ACCURACY = 0, /* classification: fraction of correct predictions (decision > 0) */
    RDML_SCORE_F1,           /* classification: F1 of class 1 */
    RDML_SCORE_ROC_AUC,      /* classification: ROC AUC of the decision values (NaN with one class) */
    RDML_SCORE_R2,           /* regression: sklearn's r2_score */
    RDML_SCORE_NEG_MSE,      /* regression: minus the mean squared error (larger is better) */
    RDML_SCORE_PEARSON,      /* regression: Pearson r of prediction and target */
    RDML_SCORE_SPEARMAN      /* regression: Spearman rho */
} rdml_cv_scoring;
/* "accuracy", "f1", "roc_auc", "r2", "neg_mse", "pearson", "spearman" -> scoring (any case);
 * -1 if unknown. */
int rdml_cv_scoring_parse(const char *name);
const char *rdml_cv_scoring_name(rdml_cv_scoring s);
/* Is s a classification score (accuracy, f1, roc_auc)? */
int rdml_cv_scoring_is_classification(rdml_cv_scoring s);
/* The score of n predictions (decision values for classification scores: > 0 is class 1)
 * against targets (0/1 for classification scores). */
int rdml_cv_score(rdml_ctx *ctx, rdml_cv_scoring s, int64_t n, const double *target,
                  const double *pred, double *out);

/* ---- outer folds ---- */
/* The outer folds of one subject x selection: pair lists per fold and, with a grid, the
 * inner fold of every unit per outer fold (nf x nunits). */
typedef struct rdml_cv_folds {
    int64_t nf, **tr, **te, *ntr, *nte;
    int64_t *ifold; /* grid only, else NULL */
} rdml_cv_folds;
/* A model's check of outer fold f (its training list and the test count) or of inner fold k
 * of outer fold f (the inner training list and test count); non-OK stops with its message. */
typedef int (*rdml_cv_fold_check)(rdml_ctx *ctx, const void *user, int64_t f, int64_t nf,
                                  const int64_t *train, int64_t ntrain, int64_t ntest);
typedef int (*rdml_cv_inner_check)(rdml_ctx *ctx, const void *user, int64_t f, int64_t k,
                                   int64_t K, const int64_t *train, int64_t ntrain, int64_t ntest);
/* Every fold of S over the pairs P; with inner_folds > 0 also the inner folds
 * (rdml_cv_inner_folds, seeded by seed and the outer fold). Free with rdml_cv_folds_free
 * (also after an error). */
int rdml_cv_folds_make(rdml_ctx *ctx, const struct rdml_split *S, const struct rdml_pairs *P,
                       int64_t inner_folds, uint64_t seed, rdml_cv_fold_check outer,
                       rdml_cv_inner_check inner, const void *user, rdml_cv_folds *F);
void rdml_cv_folds_free(rdml_cv_folds *F);

/* The n pairs idx (indices into ij / value) as contiguous arrays: ij_out (n x 2) and, unless
 * value is NULL, value_out (n): what a model fits or predicts on. */
void rdml_cv_gather(int64_t n, const int64_t *idx, const int64_t *ij, const double *value,
                    int64_t *ij_out, double *value_out);

/* ---- nested grid search ---- */
/* Inner K-fold over the units (images, or pairs for the pair-level split) with use[u] != 0:
 * those units in ascending order are permuted by the stream rdml_rng_substream(
 * RDML_STREAM_FOLDS, 1 + outer_fold) of seed and cut into sklearn KFold's sizes; fold[u] gets
 * the inner fold, -1 for units not used. Fewer used units than k is RDML_EDATA naming both. */
int rdml_cv_inner_folds(rdml_ctx *ctx, int64_t nunits, const int8_t *use, int64_t k,
                        uint64_t seed, int64_t outer_fold, int64_t *fold);
/* The pairs of inner fold g among l pairs: by images (image_fold, N values: test = both images
 * in g, train = neither image in g and both used (>= 0)) or, when image_fold is NULL, by pairs
 * (pair_fold, l values). *train / *test are malloc'd ascending indices into the l pairs; an
 * empty side is RDML_EDATA naming the fold and the counts. */
int rdml_cv_inner_split(rdml_ctx *ctx, int64_t l, const int64_t *ij, const int64_t *image_fold,
                        const int64_t *pair_fold, int64_t g, int64_t **train, int64_t *ntrain,
                        int64_t **test, int64_t *ntest);
/* Fit setting `setting` on the training pairs (indices into the l pairs) and score it on the
 * test pairs into *score (NaN: the fit failed in a way that should rank it last, e.g. it
 * diverged). inner_fold is the inner fold's number (for seeds and messages). */
typedef int (*rdml_cv_fit_score)(rdml_ctx *ctx, void *user, int64_t setting, int64_t inner_fold,
                                 const int64_t *train, int64_t ntrain, const int64_t *test,
                                 int64_t ntest, double *score);
/* The inner loop of a nested grid search over one outer fold: for every inner fold k < K
 * (rdml_cv_inner_split of image_fold / pair_fold) every setting s < nset is fit and scored
 * by fn into scores[s * K + k]; *chosen (may be NULL) gets rdml_cv_grid_select's pick. An
 * error names the setting and the inner fold. */
int rdml_cv_grid_search(rdml_ctx *ctx, int64_t nset, int64_t K, int64_t l, const int64_t *ij,
                        const int64_t *image_fold, const int64_t *pair_fold, rdml_cv_fit_score fn,
                        void *user, double *scores, int64_t *chosen);
/* scores: nset x k (row = setting). mean[s] = the plain sum over folds in order / k (numpy's
 * mean for k < 8), sd = population std (both may be NULL); best = the first setting with the
 * largest mean (GridSearchCV's rank_test_score tie rule); NaN means rank last. */
void rdml_cv_grid_select(int64_t nset, int64_t k, const double *scores, double *mean,
                         double *sd, int64_t *best);

/* ---- chance levels of a regression fold ---- */
/* The mean of target over the ntrain training pairs train (summed in order): the prediction
 * of the training-mean predictor for every test pair. */
double rdml_cv_train_mean(const double *target, const int64_t *train, int64_t ntrain);
/* out[q] = y[perm[q]] for a seeded permutation of the n test targets (the stream
 * rdml_rng_substream(RDML_STREAM_SHUFFLE, fold) of seed): the targets that the model's
 * predictions are scored against for the shuffled-target chance level. */
int rdml_cv_shuffled_targets(rdml_ctx *ctx, uint64_t seed, int64_t fold, int64_t n,
                             const double *y, double *out);
/* The null distribution of a fold's test R^2: null[b] (b < nshuffles) is the R^2
 * (rdml_metrics_r2) of the predictions pred against y[perm_b[q]], where perm_b is a
 * Fisher-Yates permutation of the n test targets drawn from
 * rdml_rng_make(seed, rdml_rng_substream(rdml_rng_substream(RDML_STREAM_NULL, fold), b), 0).
 * Each shuffle is a function of (seed, fold, b) only. The permutation p-value of an observed
 * R^2 is (1 + #{b: null[b] >= observed}) / (1 + nshuffles) (rdml_cv_null_p). */
int rdml_cv_null_r2(rdml_ctx *ctx, uint64_t seed, int64_t fold, int64_t n, const double *y,
                    const double *pred, int64_t nshuffles, double *null);
/* (1 + #{b: null[b] >= observed}) / (1 + n); NaN when observed is NaN. NaN null values count
 * as not exceeding. */
double rdml_cv_null_p(double observed, const double *null, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
