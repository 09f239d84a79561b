/* Collective summaries of a row-slab-distributed RDM (each rank holds full rows [row_lo,
 * row_hi) of n): min, max, mean and population std (ddof = 0) of the strict upper triangle
 * (std two-pass around the allreduced mean); an equal-width histogram that reproduces
 * numpy.histogram on the values as float64 (edges from numpy.linspace, the fast-path bin
 * index with its one-ulp edge corrections, last bin closed, [min - 0.5, max + 0.5] when all
 * values are equal); the exact median of the off-diagonal entries by a radix select on
 * monotone 32-bit keys of the floats (four passes of 256-bucket histograms reduced over the
 * ranks, plus one pass for the second middle value), so the matrix is never gathered; and
 * the k smallest and k largest upper-triangle pairs, selected per rank with a bounded heap,
 * gathered and merged under the total order (value, i, j), so the answer does not depend on
 * the rank count. Also the paper's binary labels. Left out: NaN/inf tolerance (a non-finite
 * off-diagonal value is an error naming its position), weighted statistics, and slabs that
 * are not whole rows. */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rdml/mpiutil.h"
#include "rdml/rsa.h"

/* ---- argument checks shared by summarize and median ---- */

/* Local checks, agreement, then one allgather of (n, lo, hi, nbins, k) so every rank sees the
 * same layout and fails the same way if the slabs do not tile [0, n). */
static int check_layout(rdml_ctx *ctx, MPI_Comm comm, const char *what, int64_t n,
                        int64_t row_lo, int64_t row_hi, const float *rows, int nbins, int k) {
    int rc = RDML_OK;
    if (n < 2)
        rc = RDML_FAIL(ctx, RDML_EDATA, "%s: an RDM of %lld images has no off-diagonal pairs",
                       what, (long long)n);
    else if (row_lo < 0 || row_hi < row_lo || row_hi > n)
        rc = RDML_FAIL(ctx, RDML_EINTERNAL, "%s: row slab [%lld, %lld) is outside [0, %lld)",
                       what, (long long)row_lo, (long long)row_hi, (long long)n);
    else if (row_hi > row_lo && !rows)
        rc = RDML_FAIL(ctx, RDML_EINTERNAL, "%s: no data for rows [%lld, %lld)", what,
                       (long long)row_lo, (long long)row_hi);
    else if (nbins < 1)
        rc = RDML_FAIL(ctx, RDML_EDATA, "%s: histogram needs at least 1 bin, got %d", what, nbins);
    else if (k < 0)
        rc = RDML_FAIL(ctx, RDML_EDATA, "%s: number of extreme pairs k = %d is negative", what, k);
    for (int64_t i = row_lo; rc == RDML_OK && i < row_hi; i++) {
        const float *r = rows + (i - row_lo) * n;
        for (int64_t j = 0; j < n; j++)
            if (j != i && !isfinite(r[j])) {
                rc = RDML_FAIL(ctx, RDML_EDATA,
                               "%s: RDM entry (%lld, %lld) is %s; summaries need finite "
                               "dissimilarities (hint: check for zero-variance images)",
                               what, (long long)i, (long long)j, isnan(r[j]) ? "NaN" : "infinite");
                break;
            }
    }
    rc = rdml_agree(ctx, comm, rc);
    if (rc) return rc;

    int nr = 1;
    MPI_Comm_size(comm, &nr);
    int64_t mine[5] = {n, row_lo, row_hi, nbins, k};
    int64_t *all = malloc((size_t)nr * sizeof mine);
    rc = all ? RDML_OK : RDML_FAIL(ctx, RDML_ENOMEM, "%s: no memory for the slab table", what);
    rc = rdml_agree(ctx, comm, rc);
    if (rc) {
        free(all);
        return rc;
    }
    int mrc = MPI_Allgather(mine, 5, MPI_INT64_T, all, 5, MPI_INT64_T, comm);
    if (mrc != MPI_SUCCESS) {
        free(all);
        return rdml_agree(ctx, comm, rdml_mpi_check(ctx, mrc, "MPI_Allgather (RDM slabs)"));
    }
    /* every rank evaluates the same table, so no further agreement is needed */
    int64_t covered = 0;
    for (int r = 0; r < nr && rc == RDML_OK; r++) {
        const int64_t *t = all + 5 * r;
        if (t[0] != n || t[3] != nbins || t[4] != k)
            rc = RDML_FAIL(ctx, RDML_EINTERNAL,
                           "%s: ranks disagree on the arguments: rank 0 has n=%lld nbins=%lld "
                           "k=%lld, rank %d has n=%lld nbins=%lld k=%lld",
                           what, (long long)all[0], (long long)all[3], (long long)all[4], r,
                           (long long)t[0], (long long)t[3], (long long)t[4]);
        covered += t[2] - t[1];
    }
    /* the slabs tile [0, n) when they cover n rows and none overlaps another */
    for (int r = 0; r < nr && rc == RDML_OK; r++)
        for (int q = r + 1; q < nr && rc == RDML_OK; q++) {
            const int64_t *a = all + 5 * r, *b = all + 5 * q;
            if (a[1] < a[2] && b[1] < b[2] && a[1] < b[2] && b[1] < a[2])
                rc = RDML_FAIL(ctx, RDML_EINTERNAL,
                               "%s: row slabs overlap: rank %d has [%lld, %lld), rank %d has "
                               "[%lld, %lld)",
                               what, r, (long long)a[1], (long long)a[2], q, (long long)b[1],
                               (long long)b[2]);
        }
    if (rc == RDML_OK && covered != n)
        rc = RDML_FAIL(ctx, RDML_EINTERNAL,
                       "%s: the ranks' row slabs cover %lld rows of an RDM with %lld (each row "
                       "must be on exactly one rank)",
                       what, (long long)covered, (long long)n);
    free(all);
    return rc;
}

/* ---- median ---- */

/* Unsigned order of the key = numeric order of the float; -0.0 keys like 0.0. */
static inline uint32_t fkey(float x) {
    if (x == 0.0f) x = 0.0f;
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return (u >> 31) ? ~u : (u | 0x80000000u);
}

static inline float fkey_inv(uint32_t k) {
    uint32_t u = (k >> 31) ? (k & 0x7fffffffu) : ~k;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

static int median_core(rdml_ctx *ctx, MPI_Comm comm, int64_t n, int64_t row_lo,
                       int64_t row_hi, const float *rows, double *median) {
    const int64_t total = n * (n - 1); /* off-diagonal entries: always even */
    int64_t rank = total / 2 - 1;      /* 0-based position of the lower middle value */
    uint32_t prefix = 0, mask = 0;
    int64_t hist[256], bucket_count = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
        memset(hist, 0, sizeof hist);
        for (int64_t i = row_lo; i < row_hi; i++) {
            const float *r = rows + (i - row_lo) * n;
            for (int64_t j = 0; j < n; j++) {
                if (j == i) continue;
                uint32_t key = fkey(r[j]);
                if ((key & mask) == prefix) hist[(key >> shift) & 255u]++;
            }
        }
        int mrc = MPI_Allreduce(MPI_IN_PLACE, hist, 256, MPI_INT64_T, MPI_SUM, comm);
        if (mrc != MPI_SUCCESS) return rdml_mpi_check(ctx, mrc, "MPI_Allreduce (median)");
        int b = 0;
        while (b < 255 && rank >= hist[b]) rank -= hist[b++];
        bucket_count = hist[b];
        prefix |= (uint32_t)b << shift;
        mask |= 255u << shift;
    }
    const uint32_t k1 = prefix;
    uint32_t k2 = k1;
    if (rank + 1 >= bucket_count) {
        /* the upper middle value is the smallest key above k1 */
        uint32_t next = UINT32_MAX;
        for (int64_t i = row_lo; i < row_hi; i++) {
            const float *r = rows + (i - row_lo) * n;
            for (int64_t j = 0; j < n; j++) {
                if (j == i) continue;
                uint32_t key = fkey(r[j]);
                if (key > k1 && key < next) next = key;
            }
        }
        int mrc = MPI_Allreduce(MPI_IN_PLACE, &next, 1, MPI_UINT32_T, MPI_MIN, comm);
        if (mrc != MPI_SUCCESS) return rdml_mpi_check(ctx, mrc, "MPI_Allreduce (median)");
        k2 = next;
    }
    *median = ((double)fkey_inv(k1) + (double)fkey_inv(k2)) / 2.0;
    return RDML_OK;
}

int rdml_rsa_median(rdml_ctx *ctx, MPI_Comm comm, int64_t n, int64_t row_lo, int64_t row_hi,
                    const float *rows, double *median) {
    RDML_TRY(check_layout(ctx, comm, "RDM median", n, row_lo, row_hi, rows, 1, 0));
    return rdml_agree(ctx, comm, median_core(ctx, comm, n, row_lo, row_hi, rows, median));
}

/* ---- extremes: bounded heaps under the total order (value, i, j) ---- */

/* Negative when x comes before y: ascending value for the low end, descending for the high
 * end, then (i, j) ascending in both. */
static int pair_cmp(const rdml_rdm_pair *x, const rdml_rdm_pair *y, int high) {
    if (x->value != y->value) return ((x->value < y->value) != high) ? -1 : 1;
    if (x->i != y->i) return x->i < y->i ? -1 : 1;
    if (x->j != y->j) return x->j < y->j ? -1 : 1;
    return 0;
}

static int cmp_low(const void *x, const void *y) { return pair_cmp(x, y, 0); }
static int cmp_high(const void *x, const void *y) { return pair_cmp(x, y, 1); }

/* Heap with the latest (worst-kept) pair on top. */
static void heap_down(rdml_rdm_pair *h, int64_t len, int64_t at, int high) {
    for (;;) {
        int64_t l = 2 * at + 1, r = l + 1, m = at;
        if (l < len && pair_cmp(&h[l], &h[m], high) > 0) m = l;
        if (r < len && pair_cmp(&h[r], &h[m], high) > 0) m = r;
        if (m == at) return;
        rdml_rdm_pair t = h[m];
        h[m] = h[at];
        h[at] = t;
        at = m;
    }
}

static void heap_up(rdml_rdm_pair *h, int64_t at, int high) {
    while (at > 0) {
        int64_t p = (at - 1) / 2;
        if (pair_cmp(&h[at], &h[p], high) <= 0) return;
        rdml_rdm_pair t = h[p];
        h[p] = h[at];
        h[at] = t;
        at = p;
    }
}

static void heap_offer(rdml_rdm_pair *h, int64_t *len, int64_t cap, rdml_rdm_pair v, int high) {
    if (cap == 0) return;
    if (*len < cap) {
        h[*len] = v;
        heap_up(h, (*len)++, high);
    } else if (pair_cmp(&v, &h[0], high) < 0) {
        h[0] = v;
        heap_down(h, *len, 0, high);
    }
}

/* Gather every rank's local candidates (sorted or not), keep the first kk under the order. */
static int merge_extremes(rdml_ctx *ctx, MPI_Comm comm, const rdml_rdm_pair *loc, int64_t len,
                          int64_t kk, int high, rdml_rdm_pair *out) {
    int nr = 1;
    MPI_Comm_size(comm, &nr);
    int rc = RDML_OK;
    int mine = (int)(3 * len);
    int *counts = calloc((size_t)nr, sizeof *counts), *displs = calloc((size_t)nr, sizeof *displs);
    int64_t *send = calloc((size_t)(3 * len + 1), sizeof *send);
    int64_t *recv = NULL;
    rdml_rdm_pair *cand = NULL;
    if (!counts || !displs || !send)
        rc = RDML_FAIL(ctx, RDML_ENOMEM, "RDM summary: no memory to gather %lld extreme pairs",
                       (long long)len);
    rc = rdml_agree(ctx, comm, rc);
    if (rc) goto done;
    int mrc = MPI_Allgather(&mine, 1, MPI_INT, counts, 1, MPI_INT, comm);
    if (mrc != MPI_SUCCESS) {
        rc = rdml_agree(ctx, comm, rdml_mpi_check(ctx, mrc, "MPI_Allgather (extreme pairs)"));
        goto done;
    }
    int64_t tot = 0;
    for (int r = 0; r < nr; r++) {
        displs[r] = (int)tot;
        tot += counts[r];
    }
    recv = malloc((size_t)(tot + 1) * sizeof *recv);
    cand = malloc((size_t)(tot / 3 + 1) * sizeof *cand);
    if (!recv || !cand)
        rc = RDML_FAIL(ctx, RDML_ENOMEM, "RDM summary: no memory to merge %lld extreme pairs",
                       (long long)(tot / 3));
    rc = rdml_agree(ctx, comm, rc);
    if (rc) goto done;
    /* pairs travel as (i, j, float bits) triples of int64: no struct padding on the wire */
    for (int64_t t = 0; t < len; t++) {
        uint32_t bits;
        memcpy(&bits, &loc[t].value, sizeof bits);
        send[3 * t] = loc[t].i;
        send[3 * t + 1] = loc[t].j;
        send[3 * t + 2] = (int64_t)bits;
    }
    mrc = MPI_Allgatherv(send, mine, MPI_INT64_T, recv, counts, displs, MPI_INT64_T, comm);
    if (mrc != MPI_SUCCESS) {
        rc = rdml_agree(ctx, comm, rdml_mpi_check(ctx, mrc, "MPI_Allgatherv (extreme pairs)"));
        goto done;
    }
    for (int64_t t = 0; t < tot / 3; t++) {
        uint32_t bits = (uint32_t)recv[3 * t + 2];
        cand[t].i = recv[3 * t];
        cand[t].j = recv[3 * t + 1];
        memcpy(&cand[t].value, &bits, sizeof bits);
    }
    qsort(cand, (size_t)(tot / 3), sizeof *cand, high ? cmp_high : cmp_low);
    memcpy(out, cand, (size_t)kk * sizeof *out);
done:
    free(counts);
    free(displs);
    free(send);
    free(recv);
    free(cand);
    return rc;
}

/* ---- histogram (numpy.histogram, float64, equal-width fast path) ---- */

static void hist_edges(double first, double last, int nbins, double *edges) {
    const double delta = last - first, step = delta / nbins;
    for (int b = 0; b <= nbins; b++)
        edges[b] = step == 0 ? ((double)b / nbins) * delta + first : (double)b * step + first;
    edges[nbins] = last; /* linspace sets the endpoint exactly */
}

static inline int hist_bin(double x, double first, double norm, const double *edges, int nbins) {
    int64_t b = (int64_t)((x - first) * norm);
    if (b >= nbins) b = nbins - 1; /* x == last; guards a rounding overshoot as well */
    if (b < 0) b = 0;
    if (x < edges[b]) b--;
    else if (x >= edges[b + 1] && b != nbins - 1) b++;
    return (int)b;
}

/* ---- summary ---- */

void rdml_rdm_summary_free(rdml_rdm_summary *s) {
    if (!s) return;
    free(s->edges);
    free(s->hist);
    free(s->low);
    free(s->high);
    memset(s, 0, sizeof *s);
}

/* Collective. The sum over the rows 0..n-1 of rs[i - row_lo] (each rank holds the rows
 * row_lo..row_hi - 1; the slabs are disjoint), added in row order on every rank, so the
 * result does not depend on how the rows are split over the ranks. */
static int ordered_row_sum(rdml_ctx *ctx, MPI_Comm comm, int64_t n, int64_t row_lo, int64_t row_hi,
                           const double *rs, double *out) {
    int np;
    MPI_Comm_size(comm, &np);
    /* lay: each rank's (count, first row); then counts and displacements for the gather */
    int *lay = rdml_malloc(ctx, (size_t)(4 * np) * sizeof *lay, "row sums");
    double *all = lay ? rdml_calloc(ctx, (size_t)(n + 1), sizeof *all, "row sums") : NULL;
    int rc = rdml_agree(ctx, comm, all ? RDML_OK : ctx->code);
    int mine[2] = {(int)(row_hi - row_lo), (int)row_lo}, mrc = MPI_SUCCESS;
    if (!rc) mrc = MPI_Allgather(mine, 2, MPI_INT, lay, 2, MPI_INT, comm);
    if (!rc && mrc == MPI_SUCCESS) {
        int *cnt = lay + 2 * np, *displ = lay + 3 * np;
        for (int r = 0; r < np; r++) {
            cnt[r] = lay[2 * r];
            displ[r] = lay[2 * r + 1];
        }
        mrc = MPI_Allgatherv(rs, mine[0], MPI_DOUBLE, all, cnt, displ, MPI_DOUBLE, comm);
    }
    if (!rc && mrc != MPI_SUCCESS) rc = rdml_agree(ctx, comm, rdml_mpi_check(ctx, mrc, "MPI_Allgatherv (RDM summary)"));
    double sum = 0;
    for (int64_t i = 0; i < n && !rc; i++) sum += all[i];
    *out = sum;
    free(lay);
    free(all);
    return rc;
}

int rdml_rsa_summarize(rdml_ctx *ctx, MPI_Comm comm, int64_t n, int64_t row_lo,
                       int64_t row_hi, const float *rows, int nbins, int k,
                       rdml_rdm_summary *out) {
    memset(out, 0, sizeof *out);
    RDML_TRY(check_layout(ctx, comm, "RDM summary", n, row_lo, row_hi, rows, nbins, k));
    int nr = 1;
    MPI_Comm_size(comm, &nr);
    const int64_t count = rdml_rsa_ntri(n);
    const int64_t kk = k < count ? k : count;
    int rc = RDML_OK;
    if (kk * 3 * (int64_t)nr > INT_MAX)
        rc = RDML_FAIL(ctx, RDML_EDATA,
                       "RDM summary: k = %d extreme pairs on %d ranks exceed what one gather "
                       "can carry (hint: ask for fewer pairs)",
                       k, nr);
    /* local upper-triangle pairs bound the local heaps */
    int64_t lcount = 0;
    for (int64_t i = row_lo; i < row_hi; i++) lcount += n - 1 - i;
    const int64_t cap = kk < lcount ? kk : lcount;
    rdml_rdm_pair *hlo = NULL, *hhi = NULL;
    double *rsum = NULL;
    if (rc == RDML_OK) {
        out->edges = rdml_malloc(ctx, (size_t)(nbins + 1) * sizeof *out->edges, "histogram edges");
        out->hist = out->edges ? rdml_calloc(ctx, (size_t)nbins, sizeof *out->hist, "histogram") : NULL;
        out->low = out->hist ? rdml_calloc(ctx, (size_t)(kk + 1), sizeof *out->low, "lowest pairs") : NULL;
        out->high = out->low ? rdml_calloc(ctx, (size_t)(kk + 1), sizeof *out->high, "highest pairs") : NULL;
        hlo = out->high ? rdml_malloc(ctx, (size_t)(cap + 1) * sizeof *hlo, "low heap") : NULL;
        hhi = hlo ? rdml_malloc(ctx, (size_t)(cap + 1) * sizeof *hhi, "high heap") : NULL;
        if (!hhi) rc = ctx->code;
    }
    rc = rdml_agree(ctx, comm, rc);
    if (rc) goto fail;

    /* pass 1: min, max, sum; the extreme-pair heaps */
    double mn = INFINITY, mx = -INFINITY, sum = 0;
    int64_t nlo = 0, nhi = 0;
    rsum = rdml_malloc(ctx, (size_t)(row_hi - row_lo + 1) * sizeof *rsum, "row sums");
    rc = rdml_agree(ctx, comm, rsum ? RDML_OK : ctx->code);
    if (rc) goto fail;
    for (int64_t i = row_lo; i < row_hi; i++) {
        const float *r = rows + (i - row_lo) * n;
        double rs = 0;
        for (int64_t j = i + 1; j < n; j++) {
            const double v = r[j];
            rs += v;
            if (v < mn) mn = v;
            if (v > mx) mx = v;
            if (cap > 0) {
                rdml_rdm_pair pr = {i, j, r[j]};
                heap_offer(hlo, &nlo, cap, pr, 0);
                heap_offer(hhi, &nhi, cap, pr, 1);
            }
        }
        rsum[i - row_lo] = rs;
    }
    /* the sums in row order: the same bits on any number of ranks */
    rc = ordered_row_sum(ctx, comm, n, row_lo, row_hi, rsum, &sum);
    if (rc) goto fail;
    double red[3] = {mn, -mx, sum};
    int mrc = MPI_Allreduce(MPI_IN_PLACE, red, 2, MPI_DOUBLE, MPI_MIN, comm);
    if (mrc != MPI_SUCCESS) {
        rc = rdml_agree(ctx, comm, rdml_mpi_check(ctx, mrc, "MPI_Allreduce (RDM summary)"));
        goto fail;
    }
    out->n = n;
    out->count = count;
    out->min = red[0];
    out->max = -red[1];
    out->mean = red[2] / (double)count;
    out->nbins = nbins;
    out->k = (int)kk;

    /* pass 2: squared deviations and the histogram */
    double first = out->min, last = out->max;
    if (first == last) {
        first -= 0.5;
        last += 0.5;
    }
    hist_edges(first, last, nbins, out->edges);
    const double norm = nbins / (last - first);
    double ssd = 0;
    for (int64_t i = row_lo; i < row_hi; i++) {
        const float *r = rows + (i - row_lo) * n;
        double rs = 0;
        for (int64_t j = i + 1; j < n; j++) {
            const double v = r[j], d = v - out->mean;
            rs += d * d;
            out->hist[hist_bin(v, first, norm, out->edges, nbins)]++;
        }
        rsum[i - row_lo] = rs;
    }
    rc = ordered_row_sum(ctx, comm, n, row_lo, row_hi, rsum, &ssd);
    if (rc) goto fail;
    mrc = MPI_Allreduce(MPI_IN_PLACE, out->hist, nbins, MPI_INT64_T, MPI_SUM, comm);
    if (mrc != MPI_SUCCESS) {
        rc = rdml_agree(ctx, comm, rdml_mpi_check(ctx, mrc, "MPI_Allreduce (RDM histogram)"));
        goto fail;
    }
    out->std = sqrt(ssd / (double)count);

    rc = rdml_agree(ctx, comm, median_core(ctx, comm, n, row_lo, row_hi, rows, &out->median));
    if (rc == RDML_OK) rc = merge_extremes(ctx, comm, hlo, nlo, kk, 0, out->low);
    if (rc == RDML_OK) rc = merge_extremes(ctx, comm, hhi, nhi, kk, 1, out->high);
    if (rc) goto fail;
    free(hlo);
    free(hhi);
    free(rsum);
    return RDML_OK;
fail:
    free(hlo);
    free(hhi);
    free(rsum);
    rdml_rdm_summary_free(out);
    return rc;
}

void rdml_rsa_binarize(const float *rows, int64_t count, double threshold, uint8_t *out) {
    for (int64_t t = 0; t < count; t++) out[t] = (double)rows[t] > threshold;
}
