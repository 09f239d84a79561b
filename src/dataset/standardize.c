/* Column standardisation of a row-distributed fMRI matrix (sklearn's StandardScaler over
 * images). Each rank holds a contiguous block of rows; the column means come from one
 * allreduce of per-rank column sums, then the population variances from a second allreduce of
 * sums of squared deviations around those means (two passes, both in double, so the result
 * does not depend on how the rows are split beyond reduction-order rounding, ~1e-15
 * relative). Columns whose variance is zero (up to rounding of the mean) become 0, where
 * sklearn would keep scale 1: (x - mean) / 1 = 0 as well, so the two agree. Left out: NaN
 * handling (a NaN makes its whole column NaN, as in numpy), weights, and keeping the
 * means/scales for a later transform. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "rdml/dataset.h"
#include "rdml/mpiutil.h"

/* MPI counts are int: reduce long vectors in chunks. */
static int allreduce_sum_f64(rdml_ctx *ctx, MPI_Comm comm, double *v, int64_t n) {
    const int64_t chunk = (int64_t)1 << 28;
    for (int64_t off = 0; off < n; off += chunk) {
        int cnt = (int)(n - off < chunk ? n - off : chunk);
        int rc = MPI_Allreduce(MPI_IN_PLACE, v + off, cnt, MPI_DOUBLE, MPI_SUM, comm);
        if (rc != MPI_SUCCESS) return rdml_mpi_check(ctx, rc, "MPI_Allreduce (standardize)");
    }
    return RDML_OK;
}

int rdml_fmri_standardize(rdml_ctx *ctx, MPI_Comm comm, int64_t nrows, int64_t ncols,
                          float *x) {
    int rc = RDML_OK;
    double *sum = NULL, *ssd = NULL;
    if (nrows < 0 || ncols < 0)
        rc = RDML_FAIL(ctx, RDML_EINTERNAL,
                       "standardize: negative size (%lld rows x %lld columns)",
                       (long long)nrows, (long long)ncols);
    else if (nrows > 0 && ncols > 0 && !x)
        rc = RDML_FAIL(ctx, RDML_EINTERNAL, "standardize: no data for %lld x %lld block",
                       (long long)nrows, (long long)ncols);

    /* Every rank must bring the same columns; compare before the vector reductions so a
     * mismatch fails everywhere instead of mixing columns or hanging. */
    int64_t mine[3] = {rc == RDML_OK ? ncols : -1, rc == RDML_OK ? -ncols : 1,
                       rc == RDML_OK ? nrows : 0};
    int64_t agg[3];
    int mrc = MPI_Allreduce(mine, agg, 2, MPI_INT64_T, MPI_MIN, comm);
    if (mrc == MPI_SUCCESS) mrc = MPI_Allreduce(&mine[2], &agg[2], 1, MPI_INT64_T, MPI_SUM, comm);
    if (mrc != MPI_SUCCESS && rc == RDML_OK) rc = rdml_mpi_check(ctx, mrc, "MPI_Allreduce (standardize sizes)");
    if (rc == RDML_OK && agg[0] != -agg[1] && agg[0] >= 0)
        rc = RDML_FAIL(ctx, RDML_EINTERNAL,
                       "standardize: ranks disagree on the number of columns (%lld to %lld)",
                       (long long)agg[0], (long long)-agg[1]);
    if (rc == RDML_OK) {
        sum = rdml_calloc(ctx, (size_t)(ncols ? ncols : 1), sizeof *sum, "column sums");
        ssd = rdml_calloc(ctx, (size_t)(ncols ? ncols : 1), sizeof *ssd, "column deviations");
        if (!sum || !ssd) rc = ctx->code;
    }
    rc = rdml_agree(ctx, comm, rc);
    if (rc != RDML_OK) goto done;

    const int64_t ntot = agg[2];
    if (ntot == 0 || ncols == 0) goto done; /* nothing to scale anywhere */

    for (int64_t i = 0; i < nrows; i++) {
        const float *row = x + i * ncols;
        for (int64_t j = 0; j < ncols; j++) sum[j] += row[j];
    }
    rc = allreduce_sum_f64(ctx, comm, sum, ncols);
    rc = rdml_agree(ctx, comm, rc);
    if (rc != RDML_OK) goto done;
    for (int64_t j = 0; j < ncols; j++) sum[j] /= (double)ntot; /* now the means */

    for (int64_t i = 0; i < nrows; i++) {
        const float *row = x + i * ncols;
        for (int64_t j = 0; j < ncols; j++) {
            double d = (double)row[j] - sum[j];
            ssd[j] += d * d;
        }
    }
    rc = allreduce_sum_f64(ctx, comm, ssd, ncols);
    rc = rdml_agree(ctx, comm, rc);
    if (rc != RDML_OK) goto done;

    /* ssd becomes the multiplier 1/std, or 0 for a constant column. The threshold only
     * absorbs double rounding of the mean: float data varying by one ulp stays non-constant. */
    for (int64_t j = 0; j < ncols; j++) {
        double sd = sqrt(ssd[j] / (double)ntot);
        ssd[j] = (sd > 1e-12 * fabs(sum[j]) && sd > 0.0) ? 1.0 / sd : 0.0;
    }
    for (int64_t i = 0; i < nrows; i++) {
        float *row = x + i * ncols;
        for (int64_t j = 0; j < ncols; j++)
            row[j] = (float)(((double)row[j] - sum[j]) * ssd[j]);
    }

done:
    free(sum);
    free(ssd);
    return rc;
}
