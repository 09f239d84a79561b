/* Block-of-images batch order for pair networks (docs/nn.md, "Block-of-images batches" and
 * "Pair decomposition"): the images of a fold's training pairs are shuffled and cut into blocks, each pair
 * belongs to the unordered pair of blocks of its two images, and a batch is the pairs of one
 * (or a few consecutive) block pairs. In decomposed mode a batch then touches at most two
 * blocks of images per block pair, so the tower work of a batch is shared by up to block^2
 * pairs, where uniformly drawn pairs share almost none. Deterministic: a pure function of the
 * pairs, the block size and the RNG state. Left out: weighting block pairs by their size,
 * blocks that follow image similarity. */
#include <stdlib.h>
#include <string.h>

#include "rdml/nn.h"

int rdml_nn_block_batches(rdml_ctx *ctx, int64_t npairs, const int64_t *ij, int64_t nimg,
                          int64_t block, int64_t min_batch, rdml_rng *r, int64_t *order,
                          int64_t *starts, int64_t *nbatch) {
    *nbatch = 0;
    if (block < 1) return RDML_FAIL(ctx, RDML_ECONFIG, "block of %lld images: must be >= 1", (long long)block);
    if (npairs < 1) {
        starts[0] = 0;
        return RDML_OK;
    }
    int64_t *pos = malloc((size_t)nimg * sizeof *pos), *imgs = malloc((size_t)nimg * sizeof *imgs);
    if (!pos || !imgs) {
        free(pos);
        free(imgs);
        return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for %lld image rows", (long long)nimg);
    }
    for (int64_t i = 0; i < nimg; i++) pos[i] = -1;
    int rc = RDML_OK;
    for (int64_t q = 0; q < 2 * npairs; q++)
        if (ij[q] < 0 || ij[q] >= nimg) {
            rc = RDML_FAIL(ctx, RDML_EDATA, "pair %lld names image row %lld of %lld", (long long)(q / 2),
                           (long long)ij[q], (long long)nimg);
            break;
        } else {
            pos[ij[q]] = 0;
        }
    int64_t m = 0;
    for (int64_t i = 0; i < nimg && !rc; i++)
        if (pos[i] == 0) imgs[m++] = i;
    if (!rc) rdml_rng_shuffle(r, imgs, m);
    for (int64_t k = 0; k < m && !rc; k++) pos[imgs[k]] = k / block;
    const int64_t nb = (m + block - 1) / block;
    if (!rc && nb > 20000)
        rc = RDML_FAIL(ctx, RDML_ECONFIG, "%lld images in blocks of %lld make %lld blocks; at most 20000 "
                       "(hint: raise train.block_images)", (long long)m, (long long)block, (long long)nb);
    int64_t *cnt = rc ? NULL : calloc((size_t)(nb * nb + 1), sizeof *cnt);
    int64_t *keys = rc ? NULL : malloc((size_t)(nb * (nb + 1) / 2 + 1) * sizeof *keys);
    if (!rc && (!cnt || !keys)) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for %lld block pairs", (long long)(nb * nb));
    if (!rc) {
        /* counting sort of the pairs by block pair: ascending pair index inside a block pair */
        for (int64_t t = 0; t < npairs; t++) {
            int64_t a = pos[ij[2 * t]], b = pos[ij[2 * t + 1]];
            cnt[(a < b ? a : b) * nb + (a < b ? b : a) + 1]++;
        }
        int64_t nk = 0;
        for (int64_t k = 0; k < nb * nb; k++)
            if (cnt[k + 1]) keys[nk++] = k;
        for (int64_t k = 0; k < nb * nb; k++) cnt[k + 1] += cnt[k];
        /* cnt[k] is now the start of block pair k; place the pairs (stable) into imgs-free scratch:
         * order is filled in block-pair order first, then the block pairs are visited shuffled */
        int64_t *tmp = malloc((size_t)npairs * sizeof *tmp), *fill = malloc((size_t)(nb * nb) * sizeof *fill);
        if (!tmp || !fill) {
            rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for %lld pairs", (long long)npairs);
        } else {
            memcpy(fill, cnt, (size_t)(nb * nb) * sizeof *fill);
            for (int64_t t = 0; t < npairs; t++) {
                int64_t a = pos[ij[2 * t]], b = pos[ij[2 * t + 1]];
                tmp[fill[(a < b ? a : b) * nb + (a < b ? b : a)]++] = t;
            }
            rdml_rng_shuffle(r, keys, nk);
            int64_t o = 0, nbt = 0, cur = 0;
            starts[0] = 0;
            for (int64_t s = 0; s < nk; s++) {
                int64_t k = keys[s], len = cnt[k + 1] - cnt[k];
                memcpy(order + o, tmp + cnt[k], (size_t)len * sizeof *order);
                o += len;
                cur += len;
                if (cur >= min_batch || s == nk - 1) {
                    starts[++nbt] = o;
                    cur = 0;
                }
            }
            *nbatch = nbt;
        }
        free(tmp);
        free(fill);
    }
    free(cnt);
    free(keys);
    free(pos);
    free(imgs);
    return rc;
}
