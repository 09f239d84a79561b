/* The encoding model's predicted RDM of one outer fold's test images, from predictions
 * distributed over vertex blocks (each rank holds all m test images x its blocks' vertices).
 *
 * Nothing m x V moves, only m x m sums: per block the image Gram matrix (SSYRK on the block's
 * float predictions) and per-image sums. To make the result the same bits for any number of
 * ranks (a floating-point sum depends on its order, and the order of an MPI reduction on the
 * ranks), every block's contribution is rounded to 62-bit fixed point with a scale that
 * depends only on global maxima (an MPI_MAX, which is exact) and the sums are integer sums,
 * exact in any order. The scale leaves at least 62 - log2(2 x blocks) bits for the largest
 * entry: finer than a double's 53. Correlation and spearman centre each image's vector first
 * (its mean over all vertices, from a first fixed-point pass), so nothing cancels later;
 * spearman rank-transforms each image's vector over all vertices first: the rows are dealt
 * to the ranks (MPI_Alltoallv), ranked (ties get their average rank, scipy's rankdata) and
 * sent back. Distances as rdm/rdm_gram.c computes them: 1 - r clamped to [0, 2], an image
 * with a constant prediction has distance 1 to every other image, exact zero diagonal,
 * exactly symmetric. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "enc_priv.h"
#include "rdml/mpiutil.h"

/* Global column range of block b. */
static void block_cols(int64_t b, int64_t B, int64_t V, int64_t *lo, int64_t *hi) {
    *lo = b * B;
    *hi = (b + 1) * B < V ? (b + 1) * B : V;
}

/* The scale exponent e so that nterms values of magnitude <= bound sum to < 2^62. */
static int fixed_exp(double bound, int64_t nterms) {
    if (!(bound > 0) || !isfinite(bound)) return 0;
    int ex;
    frexp(bound * 2.0 * (double)(nterms > 0 ? nterms : 1), &ex); /* value < 2^ex */
    return 61 - ex;
}

static int64_t to_fixed(double v, int e) { return (int64_t)llrint(ldexp(v, e)); }

typedef struct { double v; int64_t i; } ranked;
static int cmp_ranked(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->v < y->v) return -1;
    if (x->v > y->v) return 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* Collective. Replace every image's predictions by their ranks over all V vertices. */
static int spearman_ranks(rdml_ctx *ctx, MPI_Comm comm, const enc_opts *o, int64_t m, int64_t V,
                          int64_t nbt, int nblk, float *const *pred) {
    int rank, P;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &P);
    const int64_t B = o->block;
    int64_t vmine = 0;
    for (int k = 0; k < nblk; k++) {
        int64_t lo, hi;
        block_cols((int64_t)rank + (int64_t)k * P, B, V, &lo, &hi);
        vmine += hi - lo;
    }
    int64_t rlo, rhi;
    rdml_part_block(m, rank, P, &rlo, &rhi);
    const int64_t myrows = rhi - rlo;
    int *sc = calloc((size_t)P, sizeof *sc), *sd = calloc((size_t)P, sizeof *sd);
    int *rcn = calloc((size_t)P, sizeof *rcn), *rd = calloc((size_t)P, sizeof *rd);
    float *sbuf = malloc((size_t)(m * vmine + 1) * sizeof *sbuf);
    float *rows = malloc((size_t)(myrows * V + 1) * sizeof *rows);
    float *rbuf = malloc((size_t)(myrows * V + 1) * sizeof *rbuf);
    ranked *tmp = malloc((size_t)(V + 1) * sizeof *tmp);
    int rc = sc && sd && rcn && rd && sbuf && rows && rbuf && tmp
                 ? RDML_OK
                 : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory ranking the predictions (%lld x "
                             "%lld)", (long long)m, (long long)V);
    rc = rdml_agree(ctx, comm, rc);
    if (rc) goto out;
    /* send: to rank q my blocks' values of q's rows, row by row, blocks in order */
    int64_t pos = 0;
    for (int q = 0; q < P; q++) {
        int64_t a, b;
        rdml_part_block(m, q, P, &a, &b);
        sd[q] = (int)pos;
        for (int64_t i = a; i < b; i++)
            for (int k = 0; k < nblk; k++) {
                int64_t lo, hi;
                block_cols((int64_t)rank + (int64_t)k * P, B, V, &lo, &hi);
                memcpy(sbuf + pos, pred[k] + i * (hi - lo), (size_t)(hi - lo) * sizeof *sbuf);
                pos += hi - lo;
            }
        sc[q] = (int)(pos - sd[q]);
    }
    /* receive: from rank p my rows x p's vertices */
    pos = 0;
    for (int p = 0; p < P; p++) {
        int64_t vp = 0;
        for (int64_t b = p; b < nbt; b += P) {
            int64_t lo, hi;
            block_cols(b, B, V, &lo, &hi);
            vp += hi - lo;
        }
        rd[p] = (int)pos;
        rcn[p] = (int)(myrows * vp);
        pos += myrows * vp;
    }
    rc = rdml_mpi_check(ctx, MPI_Alltoallv(sbuf, sc, sd, MPI_FLOAT, rbuf, rcn, rd, MPI_FLOAT, comm),
                        "MPI_Alltoallv");
    if (rc) goto out;
    for (int p = 0; p < P; p++) {
        const float *src = rbuf + rd[p];
        for (int64_t i = 0; i < myrows; i++)
            for (int64_t b = p; b < nbt; b += P) {
                int64_t lo, hi;
                block_cols(b, B, V, &lo, &hi);
                memcpy(rows + i * V + lo, src, (size_t)(hi - lo) * sizeof *src);
                src += hi - lo;
            }
    }
    for (int64_t i = 0; i < myrows; i++) {
        float *r = rows + i * V;
        for (int64_t v = 0; v < V; v++) tmp[v] = (ranked){r[v], v};
        qsort(tmp, (size_t)V, sizeof *tmp, cmp_ranked);
        for (int64_t a = 0; a < V;) {
            int64_t b = a + 1;
            while (b < V && tmp[b].v == tmp[a].v) b++;
            float avg = (float)(0.5 * (double)(a + 1 + b)); /* ranks a+1..b, exact in float */
            for (int64_t t = a; t < b; t++) r[tmp[t].i] = avg;
            a = b;
        }
    }
    /* and back: the reverse exchange */
    for (int p = 0; p < P; p++) {
        float *dst = rbuf + rd[p];
        for (int64_t i = 0; i < myrows; i++)
            for (int64_t b = p; b < nbt; b += P) {
                int64_t lo, hi;
                block_cols(b, B, V, &lo, &hi);
                memcpy(dst, rows + i * V + lo, (size_t)(hi - lo) * sizeof *dst);
                dst += hi - lo;
            }
    }
    rc = rdml_mpi_check(ctx, MPI_Alltoallv(rbuf, rcn, rd, MPI_FLOAT, sbuf, sc, sd, MPI_FLOAT, comm),
                        "MPI_Alltoallv");
    if (rc) goto out;
    pos = 0;
    for (int q = 0; q < P; q++) {
        int64_t a, b;
        rdml_part_block(m, q, P, &a, &b);
        for (int64_t i = a; i < b; i++)
            for (int k = 0; k < nblk; k++) {
                int64_t lo, hi;
                block_cols((int64_t)rank + (int64_t)k * P, B, V, &lo, &hi);
                memcpy(pred[k] + i * (hi - lo), sbuf + pos, (size_t)(hi - lo) * sizeof *sbuf);
                pos += hi - lo;
            }
    }
out:
    free(sc);
    free(sd);
    free(rcn);
    free(rd);
    free(sbuf);
    free(rows);
    free(rbuf);
    free(tmp);
    return rc;
}

int enc_pred_rdm(rdml_ctx *ctx, MPI_Comm comm, const enc_opts *o, int64_t m, int64_t V,
                 int64_t nbt, int nblk, const int64_t *blk_lo, const int64_t *w,
                 float *const *pred, float **rdm) {
    (void)blk_lo;
    int rank, P;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &P);
    *rdm = NULL;
    const rdml_rdm_metric met = o->metric;
    const int centre = met == RDML_RDM_CORRELATION || met == RDML_RDM_SPEARMAN;
    if (met == RDML_RDM_SPEARMAN) RDML_TRY(spearman_ranks(ctx, comm, o, m, V, nbt, nblk, pred));
    int64_t *acc = calloc((size_t)(m * m + 1), sizeof *acc);
    int64_t *sacc = calloc((size_t)(m + 1), sizeof *sacc);
    double *s = calloc((size_t)(m + 1), sizeof *s), *mean = calloc((size_t)(m + 1), sizeof *mean);
    int64_t wmax = 1;
    for (int k = 0; k < nblk; k++) wmax = w[k] > wmax ? w[k] : wmax;
    float *blk = malloc((size_t)(m * wmax + 1) * sizeof *blk), *G = malloc((size_t)(m * m + 1) * sizeof *G);
    int rc = acc && sacc && s && mean && blk && G
                 ? RDML_OK
                 : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for the predicted RDM of %lld test "
                             "images", (long long)m);
    rc = rdml_agree(ctx, comm, rc);
    if (rc) goto out;
    /* pass 1 (correlation, spearman): each image's mean prediction over all vertices */
    if (centre) {
        double bound = 0;
        for (int k = 0; k < nblk; k++)
            for (int64_t i = 0; i < m; i++) {
                double a = 0;
                for (int64_t v = 0; v < w[k]; v++) a += fabs((double)pred[k][i * w[k] + v]);
                bound = a > bound ? a : bound;
            }
        MPI_Allreduce(MPI_IN_PLACE, &bound, 1, MPI_DOUBLE, MPI_MAX, comm);
        int e = fixed_exp(bound, nbt);
        for (int k = 0; k < nblk; k++)
            for (int64_t i = 0; i < m; i++) {
                double a = 0;
                for (int64_t v = 0; v < w[k]; v++) a += (double)pred[k][i * w[k] + v];
                sacc[i] += to_fixed(a, e);
            }
        rc = rdml_mpi_check(ctx, MPI_Allreduce(MPI_IN_PLACE, sacc, (int)m, MPI_INT64_T, MPI_SUM, comm),
                            "MPI_Allreduce");
        for (int64_t i = 0; i < m && !rc; i++) mean[i] = ldexp((double)sacc[i], -e) / (double)V;
        if (rc) goto out;
    }
    /* pass 2: the bound of every block's Gram entries (its largest diagonal) */
    double gb = 0;
    for (int k = 0; k < nblk; k++)
        for (int64_t i = 0; i < m; i++) {
            double a = 0;
            for (int64_t v = 0; v < w[k]; v++) {
                double x = (double)(float)(pred[k][i * w[k] + v] - (float)mean[i]);
                a += x * x;
            }
            gb = a > gb ? a : gb;
        }
    MPI_Allreduce(MPI_IN_PLACE, &gb, 1, MPI_DOUBLE, MPI_MAX, comm);
    const int eg = fixed_exp(gb * 1.001, nbt);
    for (int k = 0; k < nblk; k++) {
        for (int64_t i = 0; i < m; i++)
            for (int64_t v = 0; v < w[k]; v++)
                blk[i * w[k] + v] = pred[k][i * w[k] + v] - (float)mean[i];
        cblas_ssyrk(CblasRowMajor, CblasLower, CblasNoTrans, (int)m, (int)w[k], 1.0f, blk,
                    (int)w[k], 0.0f, G, (int)m);
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j <= i; j++) acc[i * m + j] += to_fixed((double)G[i * m + j], eg);
    }
    rc = rdml_mpi_check(ctx, MPI_Reduce(rank == 0 ? MPI_IN_PLACE : acc, acc, (int)(m * m),
                                        MPI_INT64_T, MPI_SUM, 0, comm), "MPI_Reduce");
    if (rc || rank != 0) goto out;
    float *R = malloc((size_t)(m * m + 1) * sizeof *R);
    if (!R) {
        rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for the predicted RDM");
        goto out;
    }
    for (int64_t i = 0; i < m; i++) s[i] = ldexp((double)acc[i * m + i], -eg);
    for (int64_t i = 0; i < m; i++) {
        R[i * m + i] = 0.0f;
        for (int64_t j = 0; j < i; j++) {
            double g = ldexp((double)acc[i * m + j], -eg), d;
            if (met == RDML_RDM_EUCLIDEAN || met == RDML_RDM_SQEUCLIDEAN) {
                double d2 = s[i] + s[j] - 2.0 * g;
                if (!(d2 > 0.0)) d2 = 0.0;
                d = met == RDML_RDM_EUCLIDEAN ? sqrt(d2) : d2;
            } else {
                double den = sqrt(s[i] * s[j]);
                double r = den > 0 ? g / den : 0.0;
                d = 1.0 - r;
                if (d < 0.0) d = 0.0;
                if (d > 2.0) d = 2.0;
            }
            R[i * m + j] = R[j * m + i] = (float)d;
        }
    }
    *rdm = R;
out:
    free(acc);
    free(sacc);
    free(s);
    free(mean);
    free(blk);
    free(G);
    return rdml_agree(ctx, comm, rc);
}
