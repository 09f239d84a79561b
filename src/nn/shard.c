/* The fixed shard decomposition of a data-parallel training step, shared by the pair network
 * (pairnet.c) and the siamese CNN (cnn.c): a step's items (distinct images, pairs) are cut
 * into S contiguous shards that do not depend on the number of ranks g; rank k g / S computes
 * shard k; per-shard results are exchanged with one MPI_Allgatherv of the ranks' contiguous
 * slices; the shards' parameter-gradient parts are added as a fixed binary tree over the
 * shards, so every rank (and a serial step with the same S) gets the same sums in the same
 * order. Declarations and the contract: nn_priv.h. */
#include <limits.h>
#include <string.h>

#include "rdml/mpiutil.h"
#include "rdml/nn.h"
#include "nn_priv.h"

void rdml_nn_shard_range(int rank, int g, int64_t S, int64_t *k0, int64_t *k1) {
    *k0 = ((int64_t)rank * S + g - 1) / g;
    *k1 = ((int64_t)(rank + 1) * S + g - 1) / g;
}

int rdml_nn_shard_slices(rdml_ctx *ctx, int g, int64_t S, int64_t n, int64_t unit, int *cnt, int *dsp) {
    for (int r = 0; r < g; r++) {
        int64_t k0, k1;
        rdml_nn_shard_range(r, g, S, &k0, &k1);
        int64_t lo = rdml_nn_shard_lo(k0, n, S) * unit, hi = rdml_nn_shard_lo(k1, n, S) * unit;
        if (hi > INT_MAX)
            return RDML_FAIL(ctx, RDML_ENOMEM, "a data-parallel step exchanges %lld values; at most %d "
                             "(hint: lower train.batch)", (long long)hi, INT_MAX);
        cnt[r] = (int)(hi - lo);
        dsp[r] = (int)lo;
    }
    return RDML_OK;
}

int rdml_nn_shard_allgather(rdml_ctx *ctx, MPI_Comm comm, int g, int64_t S, int64_t n, int64_t unit,
                            float *buf, int *cnt) {
    RDML_TRY(rdml_nn_shard_slices(ctx, g, S, n, unit, cnt, cnt + g));
    return rdml_mpi_check(ctx, MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_FLOAT, buf, cnt, cnt + g, MPI_FLOAT, comm),
                          "MPI_Allgatherv");
}

void rdml_nn_tree_own(float *part, int64_t stride, int64_t lo, int64_t hi, int64_t off, int64_t len) {
    if (hi - lo < 2) return;
    int64_t mid = (lo + hi) / 2;
    rdml_nn_tree_own(part, stride, lo, mid, off, len);
    rdml_nn_tree_own(part, stride, mid, hi, off, len);
    float *a = part + lo * stride + off;
    const float *b = part + mid * stride + off;
    for (int64_t i = 0; i < len; i++) a[i] += b[i];
}

/* The maximal nodes inside shards [k0, k1), in order: their count, and (if out) their lo, hi. */
static int64_t tree_nodes(int64_t lo, int64_t hi, int64_t k0, int64_t k1, int64_t *out) {
    if (hi <= k0 || lo >= k1 || hi <= lo) return 0;
    if (k0 <= lo && hi <= k1) {
        if (out) {
            out[0] = lo;
            out[1] = hi;
        }
        return 1;
    }
    int64_t mid = (lo + hi) / 2, c = tree_nodes(lo, mid, k0, k1, out);
    return c + tree_nodes(mid, hi, k0, k1, out ? out + 2 * c : NULL);
}

/* Complete node [lo, hi) into part[lo] from the exchanged maximal nodes (nodes: 2 x nn, their
 * values in gbuf in the same order, len each). */
static void tree_finish(float *part, const float *gbuf, int64_t stride, int64_t lo, int64_t hi,
                        const int64_t *nodes, int64_t nn, int64_t len) {
    for (int64_t j = 0; j < nn; j++)
        if (nodes[2 * j] == lo && nodes[2 * j + 1] == hi) {
            memcpy(part + lo * stride, gbuf + j * len, (size_t)len * sizeof(float));
            return;
        }
    int64_t mid = (lo + hi) / 2;
    tree_finish(part, gbuf, stride, lo, mid, nodes, nn, len);
    tree_finish(part, gbuf, stride, mid, hi, nodes, nn, len);
    float *a = part + lo * stride;
    const float *b = part + mid * stride;
    for (int64_t i = 0; i < len; i++) a[i] += b[i];
}

int rdml_nn_tree_sum(rdml_ctx *ctx, float *part, float *gbuf, int64_t stride, int64_t S, int g, int rank,
                     MPI_Comm comm, int64_t len, int *cnt) {
    if (g <= 1) {
        rdml_nn_tree_own(part, stride, 0, S, 0, len);
        return RDML_OK;
    }
    int64_t nodes[4 * RDML_FIT_MAX_SHARDS], nn = 0;
    for (int r = 0; r < g; r++) {
        int64_t k0, k1;
        rdml_nn_shard_range(r, g, S, &k0, &k1);
        int64_t c = tree_nodes(0, S, k0, k1, nodes + 2 * nn);
        if (r == rank) {
            for (int64_t j = 0; j < c; j++) {
                int64_t lo = nodes[2 * (nn + j)], hi = nodes[2 * (nn + j) + 1];
                rdml_nn_tree_own(part, stride, lo, hi, 0, len);
                memcpy(gbuf + (nn + j) * len, part + lo * stride, (size_t)len * sizeof(float));
            }
        }
        cnt[r] = (int)(c * len);
        cnt[g + r] = (int)(nn * len);
        nn += c;
    }
    int rc = rdml_mpi_check(ctx, MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_FLOAT, gbuf, cnt, cnt + g, MPI_FLOAT, comm),
                            "MPI_Allgatherv");
    if (!rc) tree_finish(part, gbuf, stride, 0, S, nodes, nn, len);
    return rc;
}
