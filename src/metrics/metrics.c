/* Classification and regression metrics with scikit-learn's and scipy's definitions: the
 * binary confusion matrix and the scores derived from it (zero_division = 0), ROC AUC as the
 * tie-aware Mann-Whitney statistic (one sort, O(n log n)), R^2 with sklearn's force_finite
 * rule, MSE, Pearson and Spearman (average ranks). Sums are in double, two-pass where
 * cancellation matters. Left out: multiclass averaging, sample weights, probability
 * calibration and confidence intervals. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rdml/metrics.h"

typedef struct idx_val {
    double v;
    int64_t i;
} idx_val;

static int cmp_idx_val(const void *pa, const void *pb) {
    const idx_val *a = pa, *b = pb;
    if (a->v < b->v) return -1;
    if (a->v > b->v) return 1;
    return (a->i > b->i) - (a->i < b->i);
}

/* Average 1-based ranks; NaN-free input assumed (callers pass finite values). */
static int ranks_of(int64_t n, const double *x, double *out) {
    idx_val *s = malloc((size_t)(n > 0 ? n : 1) * sizeof *s);
    if (!s) return -1;
    for (int64_t i = 0; i < n; i++) s[i] = (idx_val){x[i], i};
    qsort(s, (size_t)n, sizeof *s, cmp_idx_val);
    for (int64_t a = 0; a < n;) {
        int64_t b = a + 1;
        while (b < n && s[b].v == s[a].v) b++;
        double r = 0.5 * (double)(a + 1 + b); /* mean of ranks a+1 .. b */
        for (int64_t t = a; t < b; t++) out[s[t].i] = r;
        a = b;
    }
    free(s);
    return 0;
}

int rdml_metrics_rankdata(rdml_ctx *ctx, int64_t n, const double *x, double *out) {
    if (ranks_of(n, x, out))
        return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory ranking %lld values", (long long)n);
    return RDML_OK;
}

double rdml_metrics_roc_auc(int64_t n, const int8_t *y, const double *score) {
    if (!score || n < 2) return NAN;
    int64_t npos = 0;
    for (int64_t i = 0; i < n; i++) npos += y[i] == 1;
    int64_t nneg = n - npos;
    if (npos == 0 || nneg == 0) return NAN;
    double *r = malloc((size_t)n * sizeof *r);
    if (!r || ranks_of(n, score, r)) {
        free(r);
        return NAN;
    }
    double sum = 0;
    for (int64_t i = 0; i < n; i++)
        if (y[i] == 1) sum += r[i];
    free(r);
    return (sum - 0.5 * (double)npos * (double)(npos + 1)) / ((double)npos * (double)nneg);
}

int rdml_metrics_binary(rdml_ctx *ctx, int64_t n, const int8_t *y_true, const int8_t *y_pred,
                        const double *score, rdml_binary_metrics *out) {
    memset(out, 0, sizeof *out);
    if (n < 1) return RDML_FAIL(ctx, RDML_EDATA, "binary metrics of an empty set (n = 0)");
    for (int64_t i = 0; i < n; i++) {
        if ((y_true[i] != 0 && y_true[i] != 1) || (y_pred[i] != 0 && y_pred[i] != 1))
            return RDML_FAIL(ctx, RDML_EDATA,
                             "binary metrics: label %d / prediction %d at index %lld is not 0 or 1",
                             y_true[i], y_pred[i], (long long)i);
        if (y_true[i]) {
            if (y_pred[i]) out->tp++;
            else out->fn++;
        } else {
            if (y_pred[i]) out->fp++;
            else out->tn++;
        }
    }
    double tp = (double)out->tp, fp = (double)out->fp, fn = (double)out->fn;
    out->accuracy = (double)(out->tp + out->tn) / (double)n;
    out->precision = tp + fp > 0 ? tp / (tp + fp) : 0.0;
    out->recall = tp + fn > 0 ? tp / (tp + fn) : 0.0;
    out->f1 = 2 * tp + fp + fn > 0 ? 2 * tp / (2 * tp + fp + fn) : 0.0;
    out->roc_auc = rdml_metrics_roc_auc(n, y_true, score);
    return RDML_OK;
}

static double mean_of(int64_t n, const double *x) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += x[i];
    return n > 0 ? s / (double)n : NAN;
}

void rdml_metrics_mean_std(int64_t n, const double *x, double *mean, double *std) {
    double m = mean_of(n, x), ss = 0;
    for (int64_t i = 0; i < n; i++) ss += (x[i] - m) * (x[i] - m);
    *mean = m;
    *std = n > 0 ? sqrt(ss / (double)n) : NAN;
}

double rdml_metrics_mse(int64_t n, const double *t, const double *p) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (t[i] - p[i]) * (t[i] - p[i]);
    return n > 0 ? s / (double)n : NAN;
}

double rdml_metrics_r2(int64_t n, const double *t, const double *p) {
    double m = mean_of(n, t), ss_res = 0, ss_tot = 0;
    for (int64_t i = 0; i < n; i++) {
        ss_res += (t[i] - p[i]) * (t[i] - p[i]);
        ss_tot += (t[i] - m) * (t[i] - m);
    }
    if (ss_tot == 0) return ss_res == 0 ? 1.0 : 0.0;
    return 1.0 - ss_res / ss_tot;
}

double rdml_metrics_pearson(int64_t n, const double *x, const double *y) {
    double mx = mean_of(n, x), my = mean_of(n, y), sxy = 0, sxx = 0, syy = 0;
    for (int64_t i = 0; i < n; i++) {
        double a = x[i] - mx, b = y[i] - my;
        sxy += a * b;
        sxx += a * a;
        syy += b * b;
    }
    if (sxx == 0 || syy == 0) return NAN;
    double r = sxy / sqrt(sxx * syy);
    return r > 1 ? 1 : r < -1 ? -1 : r;
}

double rdml_metrics_spearman(int64_t n, const double *x, const double *y) {
    double *rx = malloc((size_t)(n > 0 ? n : 1) * sizeof *rx);
    double *ry = malloc((size_t)(n > 0 ? n : 1) * sizeof *ry);
    double r = NAN;
    if (rx && ry && !ranks_of(n, x, rx) && !ranks_of(n, y, ry)) r = rdml_metrics_pearson(n, rx, ry);
    free(rx);
    free(ry);
    return r;
}
