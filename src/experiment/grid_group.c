/* The nested grid search of one outer fold on a group of ranks (a sweep task run by
 * task_group, sweep.c): the nset x K (setting, inner fold) fits are split into contiguous
 * blocks over the group's ranks, each fit computed whole by one rank, and the scores
 * allgathered. Every score is a pure function of (setting, inner fold), so the scores and the
 * chosen setting are those of the serial rdml_cv_grid_search for any group size. */
#include <stdlib.h>

#include "exp_priv.h"
#include "rdml/mpiutil.h"

int rdml_exp_grid_search(rdml_ctx *ctx, MPI_Comm comm, int64_t nset, int64_t K, int64_t l,
                         const int64_t *ij, const int64_t *image_fold, const int64_t *pair_fold,
                         rdml_cv_fit_score fn, void *user, double *scores, int64_t *chosen) {
    int rank = 0, size = 1;
    if (comm != MPI_COMM_NULL) {
        MPI_Comm_rank(comm, &rank);
        MPI_Comm_size(comm, &size);
    }
    if (size == 1)
        return rdml_cv_grid_search(ctx, nset, K, l, ij, image_fold, pair_fold, fn, user, scores,
                                   chosen);
    /* item i = k * nset + s: an inner fold's split is made once per rank that needs it */
    const int64_t n = nset * K;
    int64_t lo, hi;
    rdml_part_block(n, rank, size, &lo, &hi);
    double *all = malloc((size_t)(n + 1) * sizeof *all);
    int *counts = malloc((size_t)size * sizeof *counts), *displs = malloc((size_t)size * sizeof *displs);
    int rc = all && counts && displs ? RDML_OK : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for the grid");
    if (!rc && n > (int64_t)0x7fffffff)
        rc = RDML_FAIL(ctx, RDML_ECONFIG, "the grid has %lld fits per outer fold; at most 2^31",
                       (long long)n);
    for (int64_t k = lo / (nset ? nset : 1); k < K && k * nset < hi && !rc; k++) {
        int64_t *itr = NULL, *ite = NULL, nitr = 0, nite = 0;
        rc = rdml_cv_inner_split(ctx, l, ij, image_fold, pair_fold, k, &itr, &nitr, &ite, &nite);
        for (int64_t s = 0; s < nset && !rc; s++) {
            const int64_t i = k * nset + s;
            if (i < lo || i >= hi) continue;
            rc = fn(ctx, user, s, k, itr, nitr, ite, nite, &all[i]);
            if (rc) rdml_ctx_prefix(ctx, "grid setting %lld, inner fold %lld", (long long)s, (long long)k);
        }
        free(itr);
        free(ite);
    }
    rc = rdml_agree(ctx, comm, rc);
    if (!rc) {
        rdml_allgather_blocks(comm, all, n, counts, displs);
        for (int64_t k = 0; k < K; k++)
            for (int64_t s = 0; s < nset; s++) scores[s * K + k] = all[k * nset + s];
        if (chosen) rdml_cv_grid_select(nset, K, scores, NULL, NULL, chosen);
    }
    free(all);
    free(counts);
    free(displs);
    return rc;
}
