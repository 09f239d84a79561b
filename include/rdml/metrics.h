/* rdml/metrics.h — classification and regression metrics, as scikit-learn and scipy define them.
 *
 * Example:
 *
 *   // y_true, y_pred: labels 0/1; decision: scores (> 0 means class 1); y, yhat: regression.
 *   int print_scores(rdml_ctx *ctx, int64_t n, const int8_t *y_true, const int8_t *y_pred,
 *                    const double *decision, const double *y, const double *yhat) {
 *       rdml_binary_metrics m;
 *       RDML_TRY(rdml_metrics_binary(ctx, n, y_true, y_pred, decision, &m));
 *       printf("acc %.3f f1 %.3f auc %.3f  [[tn fp] [fn tp]] = [[%lld %lld] [%lld %lld]]\n",
 *              m.accuracy, m.f1, m.roc_auc, (long long)m.tn, (long long)m.fp, (long long)m.fn,
 *              (long long)m.tp);
 *       double r2 = rdml_metrics_r2(n, y, yhat), rho = rdml_metrics_spearman(n, y, yhat);
 *       printf("r2 %.3f spearman %.3f\n", r2, rho);
 *       return RDML_OK;
 *   }
 *
 * Binary metrics take class 1 as the positive class (sklearn's pos_label=1). Where sklearn
 * divides by zero (no predicted positives for precision, no true positives for recall) the
 * value is 0, sklearn's zero_division default. ROC AUC is the Mann-Whitney statistic with
 * ties counted one half (equal to sklearn's trapezoidal roc_auc_score); NaN when only one
 * class is present. Pearson and Spearman return NaN for a constant input (scipy warns and
 * returns nan). None of these functions is collective; all are pure except for the
 * scratch memory of the rank-based ones.
 */
#ifndef RDML_METRICS_H
#define RDML_METRICS_H

#include <stdint.h>

#include "rdml/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rdml_binary_metrics {
    int64_t tn, fp, fn, tp; /* sklearn confusion_matrix: [[tn, fp], [fn, tp]] */
    double accuracy;        /* (tp + tn) / n */
    double precision;       /* tp / (tp + fp), 0 when nothing is predicted positive */
    double recall;          /* tp / (tp + fn), 0 when nothing is truly positive */
    double f1;              /* 2 tp / (2 tp + fp + fn), 0 when that is 0 / 0 */
    double roc_auc;         /* from the scores; NaN when no scores or one class only */
} rdml_binary_metrics;

/* y_true, y_pred: n labels, each 0 or 1 (anything else is RDML_EDATA naming the index);
 * score: n decision values (larger = more likely class 1) or NULL (roc_auc = NaN). n >= 1. */
int rdml_metrics_binary(rdml_ctx *ctx, int64_t n, const int8_t *y_true, const int8_t *y_pred,
                        const double *score, rdml_binary_metrics *out);

/* ROC AUC of scores against 0/1 labels; NaN when a class is absent or memory runs out. */
double rdml_metrics_roc_auc(int64_t n, const int8_t *y_true, const double *score);

/* Regression. r2 follows sklearn's r2_score (1 - SS_res / SS_tot; a constant y_true gives 1
 * for a perfect prediction and 0 otherwise, sklearn's force_finite). mse is the mean squared
 * error; pearson scipy.stats.pearsonr's r; spearman scipy.stats.spearmanr's rho (average
 * ranks for ties). */
double rdml_metrics_r2(int64_t n, const double *y_true, const double *y_pred);
double rdml_metrics_mse(int64_t n, const double *y_true, const double *y_pred);
double rdml_metrics_pearson(int64_t n, const double *x, const double *y);
double rdml_metrics_spearman(int64_t n, const double *x, const double *y);

/* Average ranks (1-based, ties share the mean rank, scipy.stats.rankdata 'average') of x into
 * out. Returns RDML_ENOMEM on allocation failure. */
int rdml_metrics_rankdata(rdml_ctx *ctx, int64_t n, const double *x, double *out);

/* Mean and population standard deviation (ddof = 0, numpy's default) of n values. */
void rdml_metrics_mean_std(int64_t n, const double *x, double *mean, double *std);

#ifdef __cplusplus
}
#endif
#endif
