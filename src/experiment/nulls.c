/* The null distribution of a pair model's test R^2 (train and epsilon-SVR folds):
 * rdml_cv_null_r2 draws it, rdml_exp_write_null stores it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp_priv.h"
#include "rdml/cv.h"
#include "rdml/h5.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int rdml_exp_write_null(rdml_ctx *ctx, rdml_h5 *h, const char *obj, const char *name, double observed,
                        const double *null, int64_t n) {
    if (n == 0) return RDML_OK;
    double q[3] = {NAN, NAN, NAN}, p = NAN;
    double *srt = malloc((size_t)n * sizeof *srt);
    if (!srt) return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for the R^2 null");
    memcpy(srt, null, (size_t)n * sizeof *srt);
    if (!isnan(srt[0]) && !isnan(observed)) {
        qsort(srt, (size_t)n, sizeof *srt, cmp_double);
        const double at[3] = {0.025, 0.5, 0.975};
        for (int i = 0; i < 3; i++) {
            double x = at[i] * (double)(n - 1);
            int64_t lo = (int64_t)floor(x), hi = lo + 1 < n ? lo + 1 : lo;
            q[i] = srt[lo] + (x - (double)lo) * (srt[hi] - srt[lo]);
        }
        p = rdml_cv_null_p(observed, null, n);
    }
    free(srt);
    int rc = RDML_OK;
    if (name) {
        char path[1100];
        snprintf(path, sizeof path, "%s/%s", obj, name);
        rc = rdml_h5_write_vec_f64(ctx, h, path, n, null);
        if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "meaning", "R^2 of the predictions against "
                                       "null_shuffles seeded permutations of the test targets (the "
                                       "null distribution; NaN: the fold stopped)");
    }
    if (!rc) rc = rdml_h5_attr_f64(ctx, h, obj, "p_r2", &p, 1);
    const char *qn[3] = {"null_r2_q025", "null_r2_q500", "null_r2_q975"};
    for (int i = 0; i < 3 && !rc; i++) rc = rdml_h5_attr_f64(ctx, h, obj, qn[i], &q[i], 1);
    return rc;
}

