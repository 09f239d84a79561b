/* From the prepared local block to finished RDM row slabs. Two engines, both ending with the
 * lower triangle (j <= i) of each rank's rows [lo, hi) in place as distances:
 *  - 1 x P grid (every rank has all images and whole vertex chunks, rdm_priv.h): the lower
 *    triangle is cut into panels of rows at fixed places; for each panel every rank runs
 *    SGEMM (columns left of the panel) + SSYRK (the diagonal block) on each of its chunks,
 *    adds the chunk results exactly (rounded in double to a common quantum: chunk_quantum),
 *    and MPI_Reduce (in place on the owner) sums the partial Grams onto the owners of the
 *    panel's rows, which turn them into distances. Every entry is computed by the same BLAS
 *    call shapes and summed exactly, so the result is the same bits on any number of ranks.
 *    Flops are N^2 V / (2P) per rank, nothing but the N x N result is communicated.
 *  - pr x pc grid with pr > 1: PSSYRK('U', 'T') of S = A^T (the row-major local blocks
 *    are S's column-major local blocks on a pc x pr BLACS grid) on K chunks accumulated in
 *    double in the block-cyclic layout, distances there, then PSGEMR2D copies the columns [lo, hi) of that
 *    upper triangle to the slab owner on a 1 x 1 BLACS grid: column c of a symmetric matrix
 *    stored column-major is row c stored row-major, so no transpose is needed, and the
 *    upper triangle of the columns is the lower triangle of the rows.
 * Then the common end: the upper triangle of each slab is filled from the other ranks' lower
 * triangles (MPI_Scatterv of row chunks from their owners, transposed on arrival), which
 * makes the output exactly symmetric, with exact zeros on the diagonal. The input block is
 * freed as soon as the Gram matrix is complete. Left out: overlapping the reductions with
 * the next panel's SGEMM (the reduction is a few percent of the time on shared memory) and
 * GPU BLAS. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rdm/rdm_priv.h"
#include "rdml/mpiutil.h"

double rdm_distance(rdml_rdm_metric m, double g, const rdm_stats *st, int64_t i, int64_t j) {
    switch (m) {
    case RDML_RDM_EUCLIDEAN:
    case RDML_RDM_SQEUCLIDEAN: {
        double dm = st->mean[i] - st->mean[j];
        double d2 = st->sq[i] + st->sq[j] - 2.0 * g + st->v * dm * dm;
        if (!(d2 > 0.0)) d2 = 0.0; /* rounding can make near-duplicates slightly negative */
        return m == RDML_RDM_EUCLIDEAN ? sqrt(d2) : d2;
    }
    default: {
        double d = 1.0 - g;
        if (d < 0.0) d = 0.0; /* |r| can exceed 1 by rounding */
        if (d > 2.0) d = 2.0;
        return d;
    }
    }
}

/* ---- 1 x P engine ---- */

/* The quantum of the exact accumulation: every chunk's float32 partial Gram is rounded to a
 * multiple q of a power of two (in double, as (x + C) - C with C = 1.5 * 2^52 q), so that
 * every sum of them, in any order and over any ranks, is exact while below 2^52 q. By
 * Cauchy-Schwarz any sum of chunk partials of G[i, j] is at most |a_i| |a_j| <= S = the
 * largest squared norm of a prepared image (1 for the normalised metrics; the centred
 * squared norms for euclidean), and a chunk's float32 rounding is far smaller; q = 2^(e + 2
 * - 52) with S < 2^e leaves twice that room. S is the same bits on every rank and for any
 * rank count, so is C; the rounding error q / 2 per chunk is about 2^-51 S, far below the
 * float32 result. Returns C (1.5 * 2^52 when S = 0). */
static double chunk_quantum(const rdm_layout *L, const rdml_rdm_params *p, const rdm_stats *st) {
    double s = 1.0;
    if (p->metric == RDML_RDM_EUCLIDEAN || p->metric == RDML_RDM_SQEUCLIDEAN) {
        s = 0;
        for (int64_t i = 0; i < L->n; i++)
            if (st->sq[i] > s) s = st->sq[i];
    }
    int e = 0;
    if (s > 0) frexp(s, &e); /* s < 2^e */
    return ldexp(1.5, s > 0 ? e + 2 : 52);
}

/* q16 == NULL: float32 chunks from a; else the int16 engine's rows (a unused). */
static int gram_panels(rdml_ctx *ctx, const rdm_layout *L, const rdml_rdm_params *p,
                       const float *a, const rdm_q16 *q16, const rdm_stats *st, rdml_rdm *out) {
    const int64_t n = L->n, nloc = L->nloc, ld = nloc > 0 ? nloc : 1;
    int64_t M = rdm_panel_rows(n, p);
    const int64_t w = rdm_chunk_width(L->v);
    /* int16: 85 whole tiles of 12 rows (rdm_q16.c) unless the caller fixed the panel: a
     * panel that ends inside a tile runs one edge tile per column tile, 512-row panels at
     * full size ran 10% slower than 504-row ones; taller panels pack each column block
     * for more rows */
    if (q16 && p->panel_rows <= 0) M = n < RDM_Q16_PANEL_ROWS ? n : RDM_Q16_PANEL_ROWS;
    const int nthreads = q16 ? rdm_q16_threads() : 1;
    float *tmp = q16 ? NULL : rdml_malloc(ctx, (size_t)(M * n) * sizeof *tmp, "Gram panel");
    double *acc = rdml_malloc(ctx, (size_t)(M * n) * sizeof *acc, "Gram panel (double)");
    int rc = ((!q16 && !tmp) || !acc) ? ctx->code : RDML_OK;
    rc = rdml_agree(ctx, L->comm, rc);
    const double C = chunk_quantum(L, p, st);
    double t_blas = 0, t_add = 0, t_red = 0, t_dist = 0, t0;
    const int64_t npanels = (n + M - 1) / M;
    /* Panels of M rows at fixed places (multiples of M) and chunks of w vertices at fixed
     * places: every entry is computed by the same BLAS call shape on any number of ranks
     * (OpenBLAS's float32 sums depend on the call's shape), then reduced exactly. */
    for (int64_t g0 = 0, panel = 0; g0 < n && rc == RDML_OK; g0 += M) {
        /* a stop boundary: every rank runs every panel */
        rc = rdml_stop_agree(ctx, L->comm, rc, "after %lld of %lld RDM panels", (long long)panel++,
                             (long long)npanels);
        if (rc) break;
        const int64_t g1 = g0 + M < n ? g0 + M : n, mp = g1 - g0, wd = g1;
        memset(acc, 0, (size_t)(mp * wd) * sizeof *acc);
        if (q16) { /* exact integers: no chunks, no quantum */
            t0 = rdml_now();
            rc = rdm_q16_panel(ctx, q16, g0, g1, acc, wd, nthreads);
            rc = rdml_agree(ctx, L->comm, rc); /* a failed buffer: no rank enters the reduce */
            t_blas += rdml_now() - t0;
        }
        for (int64_t k0 = 0; !q16 && k0 < nloc; k0 += w) {
            const int64_t kk = nloc - k0 < w ? nloc - k0 : w;
            const float *ak = a + k0; /* rows of a from vertex k0 on */
            t0 = rdml_now();
            /* a is row-major n x nloc = column-major S = A^T (nloc x n). Column-major
             * results with ld wd read as row-major panel rows: tmp[i*wd + j] = G[g0+i, j]. */
            if (g0 > 0)
                cblas_sgemm(CblasColMajor, CblasTrans, CblasNoTrans, (int)g0, (int)mp, (int)kk,
                            1.0f, ak, (int)ld, ak + g0 * ld, (int)ld, 0.0f, tmp, (int)wd);
            cblas_ssyrk(CblasColMajor, CblasUpper, CblasTrans, (int)mp, (int)kk, 1.0f,
                        ak + g0 * ld, (int)ld, 0.0f, tmp + g0, (int)wd);
            t_blas += rdml_now() - t0;
            t0 = rdml_now();
            for (int64_t i = 0; i < mp; i++) {
                double *ar = acc + i * wd;
                const float *tr = tmp + i * wd;
                const int64_t jn = g0 + i + 1;
                for (int64_t j = 0; j < jn; j++) ar[j] += ((double)tr[j] + C) - C;
            }
            t_add += rdml_now() - t0;
        }
        /* rows [g0, g1) to their owners: the panel may cross the boundary of a slab */
        t0 = rdml_now();
        for (int o = 0; o < L->nranks && rc == RDML_OK && L->nranks > 1; o++) {
            int64_t lo, hi;
            rdm_slab(n, o, L->nranks, &lo, &hi);
            const int64_t r0 = lo > g0 ? lo : g0, r1 = hi < g1 ? hi : g1;
            if (r0 >= r1) continue;
            double *part = acc + (r0 - g0) * wd;
            /* in place on the owner: no second panel buffer to fault in */
            int mrc = MPI_Reduce(L->rank == o ? MPI_IN_PLACE : part, L->rank == o ? part : NULL,
                                 (int)((r1 - r0) * wd), MPI_DOUBLE, MPI_SUM, o, L->comm);
            if (mrc != MPI_SUCCESS) rc = rdml_mpi_check(ctx, mrc, "MPI_Reduce (Gram panel)");
        }
        t_red += rdml_now() - t0;
        t0 = rdml_now();
        const int64_t r0 = out->row_lo > g0 ? out->row_lo : g0, r1 = out->row_hi < g1 ? out->row_hi : g1;
        for (int64_t gi = r0; rc == RDML_OK && gi < r1; gi++) {
            float *row = out->rows + (gi - out->row_lo) * n;
            const double *sr = acc + (gi - g0) * wd;
            if (q16)
                for (int64_t j = 0; j < gi; j++)
                    row[j] = (float)rdm_distance(p->metric, sr[j] * q16->rn[gi] * q16->rn[j], st, gi, j);
            else
                for (int64_t j = 0; j < gi; j++)
                    row[j] = (float)rdm_distance(p->metric, sr[j], st, gi, j);
            row[gi] = 0.0f;
        }
        t_dist += rdml_now() - t0;
    }
    rdml_log_any(ctx, RDML_LOG_DEBUG, "RDM Gram panels: %s%s %.2f s, exact accumulation %.2f s, "
                 "reductions %.2f s, distances %.2f s", q16 ? q16->kernel_name : "BLAS",
                 q16 && nthreads > 1 ? " on threads" : "", t_blas, t_add, t_red, t_dist);
    free(tmp);
    free(acc);
    return rdml_agree(ctx, L->comm, rc);
}

/* ---- pr x pc engine (ScaLAPACK) ---- */

static int gram_pblas(rdml_ctx *ctx, const rdm_layout *L, const rdml_rdm_params *p,
                      float **ap, const rdm_stats *st, rdml_rdm *out) {
    /* S = A^T (v x n) on the pc x pr BLACS grid; C = S^T S (n x n) on the same grid: its
     * rows over the pc grid rows (my coordinate mycol), columns over pr (myrow). */
    const int n = (int)L->n, v = (int)L->v, b = (int)L->b, zero = 0, one = 1;
    const int64_t mc = rdml_part_numroc(L->n, L->b, L->mycol, 0, L->pc);
    const int64_t nc = rdml_part_numroc(L->n, L->b, L->myrow, 0, L->pr);
    int lldS = (int)(L->nloc > 0 ? L->nloc : 1), lldC = (int)(mc > 0 ? mc : 1), info = 0;
    int descS[9], descC[9];
    descinit_(descS, &v, &n, &b, &b, &zero, &zero, &L->ctxt, &lldS, &info);
    if (info == 0) descinit_(descC, &n, &n, &b, &b, &zero, &zero, &L->ctxt, &lldC, &info);
    int rc = info ? RDML_FAIL(ctx, RDML_EINTERNAL, "descinit failed (info %d)", info) : RDML_OK;
    const int64_t cnt = (mc > 0 ? mc : 1) * (nc > 0 ? nc : 1);
    const int chunked = L->v > RDM_KCHUNK;
    float *cf = rc ? NULL : rdml_calloc(ctx, (size_t)cnt, sizeof *cf, "Gram block");
    double *cd = (rc || !chunked) ? NULL : rdml_calloc(ctx, (size_t)cnt, sizeof *cd, "Gram block (double)");
    int64_t *gr = rc ? NULL : rdml_malloc(ctx, (size_t)(mc > 0 ? mc : 1) * sizeof *gr, "Gram row map");
    int64_t *gc = rc ? NULL : rdml_malloc(ctx, (size_t)(nc > 0 ? nc : 1) * sizeof *gc, "Gram column map");
    if (rc == RDML_OK && (!cf || (chunked && !cd) || !gr || !gc)) rc = ctx->code;
    rc = rdml_agree(ctx, L->comm, rc);
    for (int64_t il = 0; rc == RDML_OK && il < mc; il++) gr[il] = rdml_part_l2g(il, L->b, L->mycol, L->pc);
    for (int64_t jl = 0; rc == RDML_OK && jl < nc; jl++) gc[jl] = rdml_part_l2g(jl, L->b, L->myrow, L->pr);
    const float fone = 1.0f, fzero = 0.0f;
    if (rc == RDML_OK && !chunked) {
        pssyrk_("U", "T", &n, &v, &fone, *ap, &one, &one, descS, &fzero, cf, &one, &one, descC);
    } else if (rc == RDML_OK) {
        /* Chunks of whole block rows of S on every grid row, so each rank's share is even. */
        int64_t step = (int64_t)b * L->pc;
        int64_t kc = (RDM_KCHUNK + step - 1) / step * step;
        for (int64_t k0 = 0; k0 < L->v && rc == RDML_OK; k0 += kc) {
            /* a stop boundary: every rank takes part in every chunk's PSSYRK */
            rc = rdml_stop_agree(ctx, L->comm, rc, "after %lld of %lld RDM vertex chunks",
                                 (long long)(k0 / kc), (long long)((L->v + kc - 1) / kc));
            if (rc) break;
            int kk = (int)(L->v - k0 < kc ? L->v - k0 : kc), ia = (int)k0 + 1;
            pssyrk_("U", "T", &n, &kk, &fone, *ap, &ia, &one, descS, &fzero, cf, &one, &one, descC);
            for (int64_t jl = 0; jl < nc; jl++)
                for (int64_t il = 0; il < mc && gr[il] <= gc[jl]; il++)
                    cd[il + jl * lldC] += cf[il + jl * lldC];
        }
    }
    free(*ap);
    *ap = NULL;
    /* distances on the upper triangle, zero diagonal, zero below */
    for (int64_t jl = 0; rc == RDML_OK && jl < nc; jl++) {
        const int64_t gj = gc[jl];
        for (int64_t il = 0; il < mc; il++) {
            const int64_t gi = gr[il], k = il + jl * lldC;
            if (gi < gj)
                cf[k] = (float)rdm_distance(p->metric, chunked ? cd[k] : (double)cf[k], st, gi, gj);
            else
                cf[k] = 0.0f;
        }
    }
    free(cd);
    free(gr);
    free(gc);
    /* columns [lo_o, hi_o) to rank o, on a 1 x 1 grid of its own */
    for (int o = 0; o < L->nranks && rc == RDML_OK; o++) {
        int64_t lo, hi;
        rdm_slab(L->n, o, L->nranks, &lo, &hi);
        int s = (int)(hi - lo), ja = (int)lo + 1, ctxo = L->sys;
        if (s == 0) continue;
        Cblacs_gridmap(&ctxo, &o, 1, 1, 1);
        int descB[9] = {1, -1, n, s, 1, 1, 0, 0, 1}; /* CTXT -1: not in the target grid */
        if (L->rank == o) {
            int mb = n, nb = s, lldB = n;
            descinit_(descB, &n, &s, &mb, &nb, &zero, &zero, &ctxo, &lldB, &info);
            if (info) rc = RDML_FAIL(ctx, RDML_EINTERNAL, "descinit (slab) failed (info %d)", info);
        }
        float dummy = 0.0f;
        psgemr2d_(&n, &s, cf, &one, &ja, descC, L->rank == o ? out->rows : &dummy, &one, &one,
                  descB, &L->ctxt);
        if (L->rank == o && ctxo >= 0) Cblacs_gridexit(ctxo);
    }
    free(cf);
    return rdml_agree(ctx, L->comm, rc);
}

/* ---- mirror: upper triangle of every slab from the owners' lower triangles ---- */

static int mirror_upper(rdml_ctx *ctx, const rdm_layout *L, const rdml_rdm_params *p,
                        rdml_rdm *out) {
    const int64_t n = L->n, lo = out->row_lo, hi = out->row_hi;
    float *r = out->rows;
    for (int64_t i = lo; i < hi; i++)
        for (int64_t j = i + 1; j < hi; j++) r[(i - lo) * n + j] = r[(j - lo) * n + i];
    if (L->nranks == 1) return RDML_OK;
    const int P = L->nranks;
    const int64_t M = rdm_panel_rows(n, p);
    float *send = rdml_malloc(ctx, (size_t)(M * n) * sizeof *send, "mirror buffer");
    float *recv = rdml_malloc(ctx, (size_t)(M * n) * sizeof *recv, "mirror buffer");
    int *cnt = rdml_calloc(ctx, (size_t)P * 2, sizeof *cnt, "mirror counts");
    int rc = (!send || !recv || !cnt) ? ctx->code : RDML_OK;
    rc = rdml_agree(ctx, L->comm, rc);
    int *dsp = cnt ? cnt + P : NULL;
    for (int q = 1; q < P && rc == RDML_OK; q++) {
        int64_t qlo, qhi;
        rdm_slab(n, q, P, &qlo, &qhi);
        for (int64_t g0 = qlo; g0 < qhi && rc == RDML_OK; g0 += M) {
            const int64_t g1 = g0 + M < qhi ? g0 + M : qhi, k = g1 - g0;
            int off = 0;
            for (int t = 0; t < P; t++) {
                int64_t tlo, thi;
                rdm_slab(n, t, P, &tlo, &thi);
                dsp[t] = off;
                cnt[t] = t < q ? (int)(k * (thi - tlo)) : 0;
                if (L->rank == q && t < q)
                    for (int64_t x = 0; x < k; x++)
                        memcpy(send + off + x * (thi - tlo), r + (g0 + x - lo) * n + tlo,
                               (size_t)(thi - tlo) * sizeof *send);
                off += cnt[t];
            }
            const int mine = cnt[L->rank];
            int mrc = MPI_Scatterv(send, cnt, dsp, MPI_FLOAT, recv, mine, MPI_FLOAT, q, L->comm);
            if (mrc != MPI_SUCCESS) {
                rc = rdml_mpi_check(ctx, mrc, "MPI_Scatterv (RDM mirror)");
                break;
            }
            const int64_t s = hi - lo;
            if (L->rank < q)
                for (int64_t i = 0; i < s; i++)
                    for (int64_t x = 0; x < k; x++) r[i * n + g0 + x] = recv[x * s + i];
        }
    }
    free(send);
    free(recv);
    free(cnt);
    return rdml_agree(ctx, L->comm, rc);
}

int rdm_gram_to_slabs(rdml_ctx *ctx, const rdm_layout *L, const rdml_rdm_params *p,
                      float **a, const rdm_stats *st, rdml_rdm *out) {
    int64_t lo, hi;
    rdm_slab(L->n, L->rank, L->nranks, &lo, &hi);
    out->n = L->n;
    out->row_lo = lo;
    out->row_hi = hi;
    out->rows = rdml_malloc(ctx, (size_t)((hi - lo) * L->n) * sizeof *out->rows, "RDM rows");
    int rc = rdml_agree(ctx, L->comm, out->rows ? RDML_OK : ctx->code);
    if (rc != RDML_OK) return rc;
    if (L->pr == 1 && p->arithmetic == RDML_RDM_INT16) {
        rdm_q16 q;
        double t0 = rdml_now();
        rc = rdm_q16_quantize(ctx, L, a, &q);
        rdml_log_any(ctx, RDML_LOG_DEBUG, "RDM int16 rounding: %.2f s", rdml_now() - t0);
        if (rc == RDML_OK) rc = gram_panels(ctx, L, p, NULL, &q, st, out);
        rdm_q16_free(&q);
    } else if (L->pr == 1) {
        rc = gram_panels(ctx, L, p, *a, NULL, st, out);
        free(*a);
        *a = NULL;
    } else {
        rc = gram_pblas(ctx, L, p, a, st, out);
    }
    if (rc != RDML_OK) return rc;
    double t0 = rdml_now();
    rc = mirror_upper(ctx, L, p, out);
    rdml_log_any(ctx, RDML_LOG_DEBUG, "RDM mirror: %.2f s", rdml_now() - t0);
    return rc;
}
