/* Partition arithmetic: contiguous blocks and ScaLAPACK block-cyclic maps. Pure functions,
 * 64-bit sizes, testable without MPI. */
#include <ctype.h>
#include <string.h>

#include "rdml/core.h"

void rdml_part_block(int64_t n, int part, int nparts, int64_t *lo, int64_t *hi) {
    if (nparts <= 0 || part < 0 || part >= nparts || n <= 0) {
        *lo = *hi = 0;
        return;
    }
    int64_t q = n / nparts, r = n % nparts;
    *lo = part * q + (part < r ? part : r);
    *hi = *lo + q + (part < r ? 1 : 0);
}

int rdml_part_owner(int64_t n, int nparts, int64_t i) {
    int64_t q = n / nparts, r = n % nparts;
    int64_t big = r * (q + 1); /* indices held by the first r (larger) parts */
    if (i < big) return (int)(i / (q + 1));
    return (int)(r + (i - big) / q);
}

int64_t rdml_part_numroc(int64_t n, int64_t nb, int iproc, int isrc, int nprocs) {
    int mydist = (nprocs + iproc - isrc) % nprocs;
    int64_t nblocks = n / nb;
    int64_t num = (nblocks / nprocs) * nb;
    int64_t extra = nblocks % nprocs;
    if (mydist < extra)
        num += nb;
    else if (mydist == extra)
        num += n % nb;
    return num;
}

int64_t rdml_part_l2g(int64_t il, int64_t nb, int iproc, int nprocs) {
    return (il / nb) * nb * nprocs + (int64_t)iproc * nb + il % nb;
}

int rdml_part_g2p(int64_t ig, int64_t nb, int nprocs) { return (int)((ig / nb) % nprocs); }

int64_t rdml_part_g2l(int64_t ig, int64_t nb, int nprocs) {
    return (ig / (nb * nprocs)) * nb + ig % nb;
}

void rdml_part_grid(int nranks, int *pr, int *pc) {
    int c = 1;
    for (int d = 1; (int64_t)d * d <= nranks; d++)
        if (nranks % d == 0) c = d;
    *pc = c;
    *pr = nranks / c;
}

int rdml_edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (lb > 255) lb = 255;
    int row[256];
    for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int prev = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int cur = row[j];
            int cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            int best = prev + cost;
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            prev = cur;
        }
    }
    return row[lb];
}

int rdml_nearest(const char *s, const char *const *candidates, int n) {
    int best = -1, bestd = 1 << 30;
    int limit = (int)strlen(s) / 3;
    if (limit < 2) limit = 2;
    for (int i = 0; i < n; i++) {
        int d = rdml_edit_distance(s, candidates[i]);
        if (d < bestd) {
            bestd = d;
            best = i;
        }
    }
    return bestd <= limit ? best : -1;
}
