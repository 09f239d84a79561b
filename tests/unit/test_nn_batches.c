/* Block-of-images batching (rdml_nn_block_batches): the order is a permutation of the pairs;
 * every batch but the last holds >= min_batch pairs and is a union of whole block pairs; a
 * block pair's pairs are contiguous and ascending; a batch of one block pair touches at most
 * 2 x block images; the images of a block pair are a contiguous range of the shuffled image
 * list; the same RNG state gives the same order; sparse and dense pair sets, blocks larger
 * than the image count, bad rows and block 0 fail with a message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rdml/nn.h"
#include "test.h"

/* n images, all pairs i < j (dense) or a sparse random subset with some repeats */
static int64_t make_pairs(int64_t n, int sparse, int64_t **ij) {
    int64_t cap = n * (n - 1) / 2 + 2 * n, np = 0;
    *ij = malloc((size_t)(2 * cap) * sizeof **ij);
    rdml_rng r = rdml_rng_make(7, RDML_STREAM_USER, (uint64_t)sparse);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i + 1; j < n; j++)
            if (!sparse || rdml_rng_uniform(&r) < 0.1) {
                (*ij)[2 * np] = (sparse && rdml_rng_uniform(&r) < 0.5) ? j : i; /* either order */
                (*ij)[2 * np + 1] = (*ij)[2 * np] == i ? j : i;
                np++;
            }
    for (int64_t k = 0; sparse && k < n; k++) { /* repeats of earlier pairs */
        (*ij)[2 * np] = (*ij)[2 * k];
        (*ij)[2 * np + 1] = (*ij)[2 * k + 1];
        np++;
    }
    return np;
}

static void check_case(int64_t n, int sparse, int64_t block, int64_t minb) {
    int64_t *ij, np = make_pairs(n, sparse, &ij);
    /* some images take no part: shift rows up so that rows 0..4 are unused */
    for (int64_t q = 0; q < 2 * np; q++) ij[q] += 5;
    const int64_t nimg = n + 5;
    int64_t *order = malloc((size_t)np * sizeof *order), *starts = malloc((size_t)(np + 1) * sizeof *starts);
    int64_t *order2 = malloc((size_t)np * sizeof *order2), *starts2 = malloc((size_t)(np + 1) * sizeof *starts2);
    int64_t nb = 0, nb2 = 0;
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_rng r = rdml_rng_make(42, RDML_STREAM_SHUFFLE, 3), r2 = r;
    CHECK_EQ_I(rdml_nn_block_batches(&ctx, np, ij, nimg, block, minb, &r, order, starts, &nb), RDML_OK);
    CHECK_EQ_I(rdml_nn_block_batches(&ctx, np, ij, nimg, block, minb, &r2, order2, starts2, &nb2), RDML_OK);
    CHECK_EQ_I(nb, nb2);
    CHECK(memcmp(order, order2, (size_t)np * sizeof *order) == 0);
    CHECK(memcmp(starts, starts2, (size_t)(nb + 1) * sizeof *starts) == 0);
    /* a permutation */
    char *seen = calloc((size_t)np, 1);
    int perm_ok = 1;
    for (int64_t q = 0; q < np; q++) {
        if (order[q] < 0 || order[q] >= np || seen[order[q]]) perm_ok = 0;
        else seen[order[q]] = 1;
    }
    CHECK(perm_ok);
    CHECK_EQ_I(starts[0], 0);
    CHECK_EQ_I(starts[nb], np);
    int64_t runs = 0, bad_run = 0, bad_size = 0;
    int64_t *mark = calloc((size_t)nimg, sizeof *mark);
    for (int64_t b = 0; b < nb; b++) {
        int64_t len = starts[b + 1] - starts[b];
        if (b < nb - 1 && len < minb) bad_size++;
        if (len < 1) bad_size++;
    }
    /* split every batch into maximal ascending runs of pair indices: a block pair's pairs are
     * one ascending run, so there are at least as many runs as block pairs; a run that is one
     * block pair touches at most 2 blocks of images (two block pairs may merge into one run
     * only when their indices happen to continue ascending; the cases below avoid that) */
    for (int64_t b = 0; b < nb; b++)
        for (int64_t s = starts[b]; s < starts[b + 1];) {
            int64_t e = s + 1;
            while (e < starts[b + 1] && order[e] > order[e - 1]) e++;
            runs++;
            int64_t distinct = 0;
            for (int64_t q = s; q < e; q++)
                for (int side = 0; side < 2; side++) {
                    int64_t im = ij[2 * order[q] + side];
                    if (mark[im] != runs) {
                        mark[im] = runs;
                        distinct++;
                    }
                }
            if (distinct > 2 * block) bad_run++;
            s = e;
        }
    CHECK_EQ_I(bad_size, 0);
    CHECK_EQ_I(bad_run, 0);
    /* the block pairs: (number of blocks)(number of blocks + 1) / 2 at most, for dense sets
     * exactly that many non-empty ones (diagonal blocks of 1 image have no pair) */
    int64_t nbk = (n + block - 1) / block;
    CHECK(runs >= 1);
    if (!sparse && n % block != 1) CHECK(runs >= nbk * (nbk + 1) / 2);
    free(seen);
    free(mark);
    free(order);
    free(starts);
    free(order2);
    free(starts2);
    free(ij);
}

static void test_block_batches(void) {
    check_case(50, 0, 8, 1);      /* one block pair per batch */
    check_case(50, 0, 8, 100);    /* several block pairs per batch */
    check_case(50, 1, 8, 20);     /* sparse pairs, either order, repeats */
    check_case(30, 0, 64, 10);    /* one block holds every image */
    check_case(41, 0, 5, 1);
}

static void test_block_batches_errors(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    int64_t ij[4] = {0, 1, 1, 9}, order[2], starts[3], nb;
    rdml_rng r = rdml_rng_make(1, RDML_STREAM_SHUFFLE, 0);
    CHECK_EQ_I(rdml_nn_block_batches(&ctx, 2, ij, 5, 2, 1, &r, order, starts, &nb), RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "image row 9");
    rdml_ctx_clear(&ctx);
    ij[3] = 2;
    CHECK_EQ_I(rdml_nn_block_batches(&ctx, 2, ij, 5, 0, 1, &r, order, starts, &nb), RDML_ECONFIG);
    CHECK_STR_HAS(ctx.msg, "block");
}

int main(void) {
    RUN(test_block_batches);
    RUN(test_block_batches_errors);
    return test_summary();
}
