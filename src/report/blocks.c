/* The RDM downsampling rule of the report (report_priv.h): block means and above-threshold
 * shares of f x f blocks, accumulated from row slabs so that a 9841 x 9841 RDM is never held
 * in memory (m x m doubles, about 23 MB for m = 985, plus one slab of f rows). Sums are in
 * double, so the mean of a block does not depend on the slab size. Left out: other pooling
 * rules (max, subsampling); the figure caption states the rule. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report/report_priv.h"

int64_t rdml_report_block_edge(int64_t n, int64_t maxdim) {
    if (maxdim < 1) maxdim = 1;
    if (n <= maxdim) return 1;
    return (n + maxdim - 1) / maxdim;
}

int rdml_blocks_init(rdml_ctx *ctx, rdml_blocks *b, int64_t n, int64_t maxdim, double threshold) {
    memset(b, 0, sizeof *b);
    if (n < 1) return RDML_FAIL(ctx, RDML_EDATA, "an RDM of %lld images cannot be drawn", (long long)n);
    b->n = n;
    b->f = rdml_report_block_edge(n, maxdim);
    b->m = (n + b->f - 1) / b->f;
    b->threshold = threshold;
    size_t mm = (size_t)(b->m * b->m);
    b->sum = rdml_calloc(ctx, mm, sizeof *b->sum, "RDM block sums");
    b->above = rdml_calloc(ctx, mm, sizeof *b->above, "RDM block counts");
    b->count = rdml_calloc(ctx, mm, sizeof *b->count, "RDM block counts");
    if (!b->sum || !b->above || !b->count) {
        rdml_blocks_free(b);
        return ctx->code;
    }
    return RDML_OK;
}

void rdml_blocks_add_rows(rdml_blocks *b, const float *rows, int64_t row_lo, int64_t nrows) {
    for (int64_t r = 0; r < nrows; r++) {
        int64_t i = row_lo + r;
        if (i < 0 || i >= b->n) continue;
        const float *x = rows + r * b->n;
        int64_t bi = (b->pos ? b->pos[i] : i) / b->f;
        double *sum = b->sum + bi * b->m, *above = b->above + bi * b->m,
               *count = b->count + bi * b->m;
        for (int64_t j = 0; j < b->n; j++) {
            double v = x[j];
            if (!isfinite(v)) continue;
            int64_t bj = (b->pos ? b->pos[j] : j) / b->f;
            sum[bj] += v;
            above[bj] += v > b->threshold;
            count[bj] += 1;
        }
    }
}

int rdml_blocks_finish(rdml_ctx *ctx, const rdml_blocks *b, float **mean, float **share) {
    size_t mm = (size_t)(b->m * b->m);
    *mean = rdml_malloc(ctx, mm * sizeof **mean, "RDM block means");
    *share = *mean ? rdml_malloc(ctx, mm * sizeof **share, "RDM block shares") : NULL;
    if (!*mean || !*share) {
        free(*mean);
        *mean = NULL;
        return ctx->code;
    }
    for (size_t k = 0; k < mm; k++) {
        double c = b->count[k];
        (*mean)[k] = c > 0 ? (float)(b->sum[k] / c) : NAN;
        (*share)[k] = c > 0 ? (float)(b->above[k] / c) : NAN;
    }
    return RDML_OK;
}

void rdml_blocks_free(rdml_blocks *b) {
    free(b->sum);
    free(b->above);
    free(b->count);
    b->sum = b->above = b->count = NULL;
}
