/* The order in which the report draws an RDM's images: the leaves of an average-linkage
 * (UPGMA) hierarchical clustering of the RDM itself, so that images the RDM calls similar sit
 * next to each other and its structure shows as blocks along the diagonal (file order looks
 * like noise). The algorithm is the one of scipy.cluster.hierarchy.linkage(y, 'average')
 * followed by leaves_list, step for step, so that a Python user gets the same permutation:
 * nearest-neighbour chain on the condensed matrix with the Lance-Williams update
 * (n_x d_xi + n_y d_yi) / (n_x + n_y) in double, the merges sorted by distance (stable), the
 * clusters relabelled with a union-find (the smaller label on the left), and the leaves read
 * left to right. O(n^2) time; the condensed matrix (n (n - 1) / 2 doubles) is the memory. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report/report_priv.h"

static inline int64_t cidx(int64_t n, int64_t i, int64_t j) {
    if (i > j) {
        int64_t t = i;
        i = j;
        j = t;
    }
    return n * i - (i * (i + 1)) / 2 + (j - i - 1);
}

typedef struct merge {
    int64_t x, y;
    double dist;
    int64_t k; /* position in the chain's output, for a stable sort */
} merge;

static int by_dist(const void *a, const void *b) {
    const merge *p = a, *q = b;
    if (p->dist < q->dist) return -1;
    if (p->dist > q->dist) return 1;
    return p->k < q->k ? -1 : p->k > q->k;
}

static int64_t uf_find(int64_t *parent, int64_t x) {
    int64_t r = x;
    while (parent[r] != r) r = parent[r];
    while (parent[x] != r) {
        int64_t nx = parent[x];
        parent[x] = r;
        x = nx;
    }
    return r;
}

int rdml_report_cluster_order(rdml_ctx *ctx, double *D, int64_t n, int64_t *order) {
    if (n < 1) return RDML_FAIL(ctx, RDML_EDATA, "cannot order an RDM of %lld images", (long long)n);
    if (n == 1) {
        order[0] = 0;
        return RDML_OK;
    }
    int64_t *size = rdml_malloc(ctx, (size_t)n * sizeof *size, "cluster sizes");
    int64_t *chain = size ? rdml_malloc(ctx, (size_t)n * sizeof *chain, "cluster chain") : NULL;
    merge *Z = chain ? rdml_malloc(ctx, (size_t)(n - 1) * sizeof *Z, "cluster merges") : NULL;
    int64_t *parent = Z ? rdml_malloc(ctx, (size_t)(2 * n - 1) * sizeof *parent, "cluster labels") : NULL;
    int64_t *left = parent ? rdml_malloc(ctx, (size_t)(n - 1) * 2 * sizeof *left, "cluster tree") : NULL;
    int64_t *stack = left ? rdml_malloc(ctx, (size_t)(2 * n) * sizeof *stack, "cluster stack") : NULL;
    if (!stack) {
        free(size);
        free(chain);
        free(Z);
        free(parent);
        free(left);
        return ctx->code;
    }
    for (int64_t i = 0; i < n; i++) size[i] = 1;
    int64_t len = 0;
    for (int64_t k = 0; k < n - 1; k++) {
        if (len == 0) {
            for (int64_t i = 0; i < n; i++)
                if (size[i] > 0) {
                    chain[len++] = i;
                    break;
                }
        }
        int64_t x, y = -1;
        double cur;
        for (;;) {
            x = chain[len - 1];
            /* prefer the previous element of the chain as the minimum (no cycles) */
            if (len > 1) {
                y = chain[len - 2];
                cur = D[cidx(n, x, y)];
            } else {
                cur = INFINITY;
            }
            for (int64_t i = 0; i < n; i++) {
                if (size[i] == 0 || i == x) continue;
                double dist = D[cidx(n, x, i)];
                if (dist < cur) {
                    cur = dist;
                    y = i;
                }
            }
            if (len > 1 && y == chain[len - 2]) break;
            chain[len++] = y;
        }
        len -= 2;
        if (x > y) {
            int64_t t = x;
            x = y;
            y = t;
        }
        int64_t nx = size[x], ny = size[y];
        Z[k] = (merge){x, y, cur, k};
        size[x] = 0;
        size[y] = nx + ny;
        for (int64_t i = 0; i < n; i++) {
            if (size[i] == 0 || i == y) continue;
            double *dy = &D[cidx(n, i, y)];
            *dy = ((double)nx * D[cidx(n, i, x)] + (double)ny * *dy) / (double)(nx + ny);
        }
    }
    qsort(Z, (size_t)(n - 1), sizeof *Z, by_dist);
    /* relabel: leaf i is i, the k-th merge (by distance) is n + k, smaller root on the left */
    for (int64_t i = 0; i < 2 * n - 1; i++) parent[i] = i;
    for (int64_t k = 0; k < n - 1; k++) {
        int64_t a = uf_find(parent, Z[k].x), b = uf_find(parent, Z[k].y);
        left[2 * k] = a < b ? a : b;
        left[2 * k + 1] = a < b ? b : a;
        parent[a] = parent[b] = n + k;
    }
    /* leaves of the root (label 2n - 2), left subtree first */
    int64_t top = 0, out = 0;
    stack[top++] = 2 * n - 2;
    while (top > 0) {
        int64_t c = stack[--top];
        if (c < n) {
            order[out++] = c;
        } else {
            stack[top++] = left[2 * (c - n) + 1];
            stack[top++] = left[2 * (c - n)];
        }
    }
    free(size);
    free(chain);
    free(Z);
    free(parent);
    free(left);
    free(stack);
    return RDML_OK;
}
