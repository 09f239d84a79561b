/* Preparation of the local block before the Gram matrix: reading my rows x columns of the
 * input through the reader (in chunks of at most 64 rows, straight into the row-major local
 * block, which is the column-major local block of the transposed V x N matrix ScaLAPACK is
 * given, so nothing is transposed), the finiteness check (naming global row and column), optional
 * per-vertex standardisation (sklearn StandardScaler: population std, zero-variance vertex to
 * 0, sums along process columns in double, the same formula as rdml_fmri_standardize), the
 * spearman rank transform (full image rows are gathered chunk by chunk inside the process
 * row, each image is ranked by one member with an LSD radix sort, ranks averaged over ties,
 * then scattered back), and the per-image step of each metric: correlation / spearman centre
 * and normalise rows, cosine normalises, euclidean metrics subtract the column means (the
 * distances do not change) and then the row means (added back exactly as V (mean_a -
 * mean_b)^2), so the cancellation in |a|^2 + |b|^2 - 2ab is as small as the data allow, and
 * keep the squared norms and means of the rows. Row and column sums are in double; on the
 * 1 x P grid the row sums are kept per vertex chunk and added in chunk order, so they are the
 * same bits on any number of ranks (rdm_priv.h). A zero-variance image is an
 * error naming the lowest such row, or (policy) a zero row whose distances become 1. Left
 * out: missing-value handling (a NaN or inf is an error), weights, and rank methods other
 * than 'average'. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/radix.h"
#include "rdm/rdm_priv.h"
#include "rdml/mpiutil.h"

#define READ_ROWS 64
#define CHUNK_ELEMS ((int64_t)1 << 22)

static int allreduce_f64(rdml_ctx *ctx, MPI_Comm comm, double *v, int64_t n, MPI_Op op,
                         const char *what) {
    const int64_t step = (int64_t)1 << 27;
    for (int64_t off = 0; off < n; off += step) {
        int cnt = (int)(n - off < step ? n - off : step);
        int rc = MPI_Allreduce(MPI_IN_PLACE, v + off, cnt, MPI_DOUBLE, op, comm);
        if (rc != MPI_SUCCESS) return rdml_mpi_check(ctx, rc, what);
    }
    return RDML_OK;
}

void rdm_stats_free(rdm_stats *st) {
    if (!st) return;
    free(st->sq);
    free(st->mean);
    st->sq = st->mean = NULL;
}

/* Column groups of the local block whose row statistics are kept apart: on the 1 x P grid the
 * vertex chunks (rdm_chunk_width; each rank holds whole ones, local chunk k is global chunk
 * gcols[0] / width + k), on a grid with pr > 1 the whole local block. */
static int64_t group_width(const rdm_layout *L) {
    return L->pr == 1 ? rdm_chunk_width(L->v) : (L->nloc > 0 ? L->nloc : 1);
}
static int64_t group_count(const rdm_layout *L) {
    const int64_t w = group_width(L);
    return L->nloc > 0 ? (L->nloc + w - 1) / w : 0;
}

/* ---- reading ---- */

/* Sum and sum of squared deviations about the row's own mean of x[0..n), in double with 8
 * independent partial sums (so the compiler can keep them in vector registers; the order is
 * fixed, so the bits depend only on the row). */
static void row_sum_m2(const float *x, int64_t n, double *sum_out, double *m2_out) {
    double s[8] = {0};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int q = 0; q < 8; q++) s[q] += x[j + q];
    double sum = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
    for (; j < n; j++) sum += x[j];
    const double c = n > 0 ? sum / (double)n : 0.0;
    double m[8] = {0};
    for (j = 0; j + 8 <= n; j += 8)
        for (int q = 0; q < 8; q++) {
            double d = (double)x[j + q] - c;
            m[q] += d * d;
        }
    double m2 = ((m[0] + m[4]) + (m[1] + m[5])) + ((m[2] + m[6]) + (m[3] + m[7]));
    for (; j < n; j++) {
        double d = (double)x[j] - c;
        m2 += d * d;
    }
    *sum_out = sum;
    *m2_out = m2;
}

/* Reads my block in chunks of rows of about 256 kB (so a chunk is still in cache when it is
 * checked) and checks every value is finite. With rs (2 mloc group_count doubles), also the
 * sum and squared deviations about the group's own mean (row_sum_m2) of each row and column
 * group while it is in cache, so row_stats needs no pass of its own over the block. */
static int read_block(rdml_ctx *ctx, const rdm_layout *L, rdml_rdm_reader read, void *user,
                      float *a, double *rs, double *t_read) {
    const int64_t nloc = L->nloc, gw = group_width(L), ng = group_count(L);
    if (rs) memset(rs, 0, (size_t)(2 * L->mloc * (ng > 0 ? ng : 1)) * sizeof *rs); /* no columns: empty sums */
    if (L->mloc == 0 || nloc == 0) return RDML_OK;
    int64_t per = ((int64_t)1 << 16) / nloc;
    if (per < 1) per = 1;
    if (per > READ_ROWS) per = READ_ROWS;
    int rc = RDML_OK;
    for (int64_t il = 0; il < L->mloc && rc == RDML_OK;) {
        /* Local rows inside one block map to consecutive global rows. */
        int64_t cnt = L->b - il % L->b;
        if (cnt > L->mloc - il) cnt = L->mloc - il;
        if (cnt > per) cnt = per;
        int64_t g = L->grows[il];
        float *dst = a + il * nloc;
        /* no collective in this loop: a local stop, spread by rdm_prepare's next agree */
        rc = rdml_stop_check(ctx, "while reading image rows [%lld, %lld)", (long long)g,
                             (long long)(g + cnt));
        if (rc) break;
        double t0 = rdml_now();
        rc = read(ctx, user, g, g + cnt, L->gcols, nloc, dst);
        *t_read += rdml_now() - t0;
        if (rc != RDML_OK) {
            if (ctx->code == RDML_OK)
                rc = RDML_FAIL(ctx, rc, "RDM reader failed on rows [%lld, %lld)", (long long)g,
                               (long long)(g + cnt));
            break;
        }
        for (int64_t r = 0; r < cnt && rc == RDML_OK; r++) {
            const float *row = dst + r * nloc;
            int64_t j = 0;
            if (rs) {
                /* a NaN or inf makes the sum NaN or inf: one loop checks and sums; a non-finite
                 * sum of finite values (overflow) is found finite by the scan below */
                int fin = 1;
                for (int64_t k = 0; k < ng; k++) {
                    double *q = &rs[2 * ((il + r) * ng + k)];
                    const int64_t c0 = k * gw, len = nloc - c0 < gw ? nloc - c0 : gw;
                    row_sum_m2(row + c0, len, &q[0], &q[1]);
                    fin &= isfinite(q[0]) && isfinite(q[1]);
                }
                if (fin) continue;
            } else {
                int bad = 0;
                for (j = 0; j < nloc; j++) bad |= !isfinite(row[j]);
                if (!bad) continue;
            }
            for (j = 0; j < nloc && isfinite(row[j]);) j++;
            if (j == nloc) continue;
            rc = RDML_FAIL(ctx, RDML_EDATA,
                           "input value at image row %lld, vertex column %lld is %s (hint: RDMs "
                           "need finite data; check the file)",
                           (long long)(g + r), (long long)L->gcols[j], isnan(row[j]) ? "NaN" : "infinite");
        }
        il += cnt;
    }
    return rc;
}

/* ---- per-vertex standardisation (columns) ---- */

static int standardize_cols(rdml_ctx *ctx, const rdm_layout *L, float *a) {
    const int64_t m = L->mloc, nl = L->nloc;
    double *mean = rdml_calloc(ctx, (size_t)(nl ? nl : 1), sizeof *mean, "column means");
    double *ssd = rdml_calloc(ctx, (size_t)(nl ? nl : 1), sizeof *ssd, "column deviations");
    int rc = (!mean || !ssd) ? ctx->code : RDML_OK;
    rc = rdml_agree(ctx, L->comm, rc);
    if (rc == RDML_OK) {
        for (int64_t i = 0; i < m; i++) {
            const float *row = a + i * nl;
            for (int64_t j = 0; j < nl; j++) mean[j] += row[j];
        }
        rc = allreduce_f64(ctx, L->colcomm, mean, nl, MPI_SUM, "MPI_Allreduce (vertex sums)");
    }
    if (rc == RDML_OK) {
        for (int64_t j = 0; j < nl; j++) mean[j] /= (double)L->n;
        for (int64_t i = 0; i < m; i++) {
            const float *row = a + i * nl;
            for (int64_t j = 0; j < nl; j++) {
                double d = (double)row[j] - mean[j];
                ssd[j] += d * d;
            }
        }
        rc = allreduce_f64(ctx, L->colcomm, ssd, nl, MPI_SUM, "MPI_Allreduce (vertex variances)");
    }
    if (rc == RDML_OK) {
        for (int64_t j = 0; j < nl; j++) {
            double sd = sqrt(ssd[j] / (double)L->n);
            ssd[j] = (sd > 1e-12 * fabs(mean[j]) && sd > 0.0) ? 1.0 / sd : 0.0;
        }
        for (int64_t i = 0; i < m; i++) {
            float *row = a + i * nl;
            for (int64_t j = 0; j < nl; j++) row[j] = (float)(((double)row[j] - mean[j]) * ssd[j]);
        }
    }
    free(mean);
    free(ssd);
    return rdml_agree(ctx, L->comm, rc);
}

/* Subtract column means (euclidean metrics without standardisation). */
static int centre_cols(rdml_ctx *ctx, const rdm_layout *L, float *a) {
    const int64_t m = L->mloc, nl = L->nloc;
    double *mean = rdml_calloc(ctx, (size_t)(nl ? nl : 1), sizeof *mean, "column means");
    int rc = rdml_agree(ctx, L->comm, mean ? RDML_OK : ctx->code);
    if (rc == RDML_OK) {
        for (int64_t i = 0; i < m; i++) {
            const float *row = a + i * nl;
            for (int64_t j = 0; j < nl; j++) mean[j] += row[j];
        }
        rc = allreduce_f64(ctx, L->colcomm, mean, nl, MPI_SUM, "MPI_Allreduce (vertex sums)");
    }
    if (rc == RDML_OK) {
        for (int64_t j = 0; j < nl; j++) mean[j] /= (double)L->n;
        for (int64_t i = 0; i < m; i++) {
            float *row = a + i * nl;
            for (int64_t j = 0; j < nl; j++) row[j] = (float)((double)row[j] - mean[j]);
        }
    }
    free(mean);
    return rdml_agree(ctx, L->comm, rc);
}

/* ---- rank transform ---- */

void rdm_rank_avg(const float *x, int64_t n, float *r, uint32_t *scratch) {
    uint32_t *ka = scratch, *kb = scratch + n, *ia = scratch + 2 * n, *ib = scratch + 3 * n;
    for (int64_t i = 0; i < n; i++) {
        ka[i] = rdml_radix_key_float(x[i]); /* -0 and +0: same key */
        ia[i] = (uint32_t)i;
    }
    /* LSD radix sort, 4 passes of 8 bits; stable, so equal keys keep index order. (Not
     * core/radix.h's 11-bit sort of 64-bit words: on one 39548-vertex row that was 15%
     * slower, 0.305 against 0.265 ms.) */
    for (int shift = 0; shift < 32; shift += 8) {
        int64_t count[257] = {0};
        for (int64_t i = 0; i < n; i++) count[((ka[i] >> shift) & 0xffu) + 1]++;
        if (count[((ka[0] >> shift) & 0xffu) + 1] == n) continue; /* all in one bucket */
        for (int k = 0; k < 256; k++) count[k + 1] += count[k];
        for (int64_t i = 0; i < n; i++) {
            int64_t pos = count[(ka[i] >> shift) & 0xffu]++;
            kb[pos] = ka[i];
            ib[pos] = ia[i];
        }
        uint32_t *t = ka;
        ka = kb;
        kb = t;
        t = ia;
        ia = ib;
        ib = t;
    }
    for (int64_t s = 0; s < n;) {
        int64_t e = s + 1;
        while (e < n && ka[e] == ka[s]) e++;
        /* positions s..e-1 (0-based) share the 1-based rank (s + 1 + e) / 2 */
        float rk = (float)((double)(s + 1 + e) * 0.5);
        for (int64_t k = s; k < e; k++) r[ia[k]] = rk;
        s = e;
    }
}

/* Member t of the process row ranks rows c0 + t, c0 + t + pc, ... of the chunk [c0, c1). */
static int64_t chunk_rows_of(int64_t c0, int64_t c1, int t, int pc) {
    int64_t len = c1 - c0;
    return len > t ? (len - t + pc - 1) / pc : 0;
}

static int rank_rows(rdml_ctx *ctx, const rdm_layout *L, float *a) {
    const int pc = L->pc, me = L->mycol;
    const int64_t m = L->mloc, nl = L->nloc, v = L->v;
    int64_t ch = CHUNK_ELEMS * pc / v;
    if (ch < pc) ch = pc;
    if (ch > m) ch = m;
    int64_t maxmine = ch > 0 ? (ch + pc - 1) / pc : 0;
    int *scnt = rdml_calloc(ctx, (size_t)pc * 4, sizeof *scnt, "rank exchange counts");
    int64_t *nlq = rdml_calloc(ctx, (size_t)pc, sizeof *nlq, "rank exchange sizes");
    float *bufa = rdml_malloc(ctx, (size_t)(ch * nl > 0 ? ch * nl : 1) * sizeof *bufa, "rank exchange");
    float *bufb = rdml_malloc(ctx, (size_t)(maxmine * v > 0 ? maxmine * v : 1) * sizeof *bufb, "rank exchange");
    float *full = rdml_malloc(ctx, (size_t)(maxmine * v > 0 ? maxmine * v : 1) * sizeof *full, "full image rows");
    uint32_t *scr = rdml_malloc(ctx, (size_t)(4 * v) * sizeof *scr, "rank scratch");
    int rc = (!scnt || !nlq || !bufa || !bufb || !full || !scr) ? ctx->code : RDML_OK;
    rc = rdml_agree(ctx, L->comm, rc);
    if (rc != RDML_OK) goto done;
    int *sdsp = scnt + pc, *rcnt = scnt + 2 * pc, *rdsp = scnt + 3 * pc;
    for (int q = 0; q < pc; q++) nlq[q] = rdml_part_numroc(v, L->b, q, 0, pc);
    if (ch * nl > INT32_MAX || maxmine * v > INT32_MAX) {
        rc = RDML_FAIL(ctx, RDML_EDATA, "spearman: %lld vertices are too many for one exchange",
                       (long long)v);
        goto done;
    }
    for (int64_t c0 = 0; c0 < m; c0 += ch) {
        int64_t c1 = c0 + ch < m ? c0 + ch : m;
        int64_t mine = chunk_rows_of(c0, c1, me, pc);
        /* gather: my columns of the rows member t ranks go to t */
        int off = 0;
        for (int t = 0; t < pc; t++) {
            int64_t k = chunk_rows_of(c0, c1, t, pc);
            sdsp[t] = off;
            scnt[t] = (int)(k * nl);
            for (int64_t q = 0; q < k; q++) {
                int64_t il = c0 + t + q * pc;
                memcpy(bufa + off + q * nl, a + il * nl, (size_t)nl * sizeof *a);
            }
            off += scnt[t];
            rcnt[t] = (int)(mine * nlq[t]);
        }
        off = 0;
        for (int t = 0; t < pc; t++) {
            rdsp[t] = off;
            off += rcnt[t];
        }
        int mrc = MPI_Alltoallv(bufa, scnt, sdsp, MPI_FLOAT, bufb, rcnt, rdsp, MPI_FLOAT,
                                L->rowcomm);
        if (mrc != MPI_SUCCESS) {
            rc = rdml_mpi_check(ctx, mrc, "MPI_Alltoallv (spearman gather)");
            break;
        }
        for (int t = 0; t < pc; t++)
            for (int64_t q = 0; q < mine; q++)
                for (int64_t j = 0; j < nlq[t]; j++)
                    full[q * v + rdml_part_l2g(j, L->b, t, pc)] = bufb[rdsp[t] + q * nlq[t] + j];
        for (int64_t q = 0; q < mine; q++) rdm_rank_avg(full + q * v, v, full + q * v, scr);
        /* scatter back: member t gets its columns of my ranked rows */
        for (int t = 0; t < pc; t++)
            for (int64_t q = 0; q < mine; q++)
                for (int64_t j = 0; j < nlq[t]; j++)
                    bufb[rdsp[t] + q * nlq[t] + j] = full[q * v + rdml_part_l2g(j, L->b, t, pc)];
        mrc = MPI_Alltoallv(bufb, rcnt, rdsp, MPI_FLOAT, bufa, scnt, sdsp, MPI_FLOAT, L->rowcomm);
        if (mrc != MPI_SUCCESS) {
            rc = rdml_mpi_check(ctx, mrc, "MPI_Alltoallv (spearman scatter)");
            break;
        }
        for (int t = 0; t < pc; t++) {
            int64_t k = chunk_rows_of(c0, c1, t, pc);
            for (int64_t q = 0; q < k; q++) {
                int64_t il = c0 + t + q * pc;
                memcpy(a + il * nl, bufa + sdsp[t] + q * nl, (size_t)nl * sizeof *a);
            }
        }
    }
done:
    free(scnt);
    free(nlq);
    free(bufa);
    free(bufb);
    free(full);
    free(scr);
    return rdml_agree(ctx, L->comm, rc);
}

/* ---- per-image (row) step ---- */

/* Per-row partial results of the local column groups (nv values each) into the global
 * chunk slots of all[m][nch][nv], zero elsewhere, summed over the process row: every slot
 * has one contributor, so the sum is exact and the same bits on any number of ranks. */
static int gather_chunks(rdml_ctx *ctx, const rdm_layout *L, const double *part, int nv,
                         double *all) {
    const int64_t m = L->mloc, ng = group_count(L), nch = rdm_nchunks(L->v);
    const int64_t c0 = L->nloc > 0 ? L->gcols[0] / rdm_chunk_width(L->v) : 0;
    memset(all, 0, (size_t)(m * nch * nv) * sizeof *all);
    for (int64_t i = 0; i < m; i++)
        for (int64_t k = 0; k < ng; k++)
            memcpy(all + (i * nch + c0 + k) * nv, part + (i * ng + k) * nv, (size_t)nv * sizeof *all);
    return allreduce_f64(ctx, L->rowcomm, all, m * nch * nv, MPI_SUM, "MPI_Allreduce (image chunk sums)");
}

/* Sums of squares of the local rows, reduced along the process row; on the 1 x P grid per
 * vertex chunk, added in chunk order. */
static int row_squares(rdml_ctx *ctx, const rdm_layout *L, const float *a, double *s) {
    const int64_t m = L->mloc, nl = L->nloc;
    if (L->pr == 1) {
        const int64_t gw = group_width(L), ng = group_count(L), nch = rdm_nchunks(L->v);
        double *part = rdml_malloc(ctx, (size_t)(m * ng + 1) * sizeof *part, "image chunk sums");
        double *all = rdml_malloc(ctx, (size_t)(m * nch + 1) * sizeof *all, "image chunk sums");
        int rc = rdml_agree(ctx, L->comm, part && all ? RDML_OK : ctx->code);
        for (int64_t i = 0; rc == RDML_OK && i < m; i++)
            for (int64_t k = 0; k < ng; k++) {
                const float *row = a + i * nl + k * gw;
                const int64_t len = nl - k * gw < gw ? nl - k * gw : gw;
                double acc = 0;
                for (int64_t j = 0; j < len; j++) acc += (double)row[j] * row[j];
                part[i * ng + k] = acc;
            }
        if (rc == RDML_OK) rc = gather_chunks(ctx, L, part, 1, all);
        for (int64_t i = 0; rc == RDML_OK && i < m; i++) {
            double acc = 0;
            for (int64_t c = 0; c < nch; c++) acc += all[i * nch + c];
            s[i] = acc;
        }
        free(part);
        free(all);
        return rdml_agree(ctx, L->comm, rc);
    }
    for (int64_t i = 0; i < m; i++) {
        const float *row = a + i * nl;
        double acc = 0;
        for (int64_t j = 0; j < nl; j++) acc += (double)row[j] * row[j];
        s[i] = acc;
    }
    return allreduce_f64(ctx, L->rowcomm, s, m, MPI_SUM, "MPI_Allreduce (image sums)");
}

/* row_stats on the 1 x P grid: the parts are the vertex chunks, combined in chunk order. */
static int row_stats_chunks(rdml_ctx *ctx, const rdm_layout *L, const float *a, int centre,
                            const double *pre, double *mean, double *ssd) {
    const int64_t m = L->mloc, nl = L->nloc, gw = group_width(L), ng = group_count(L);
    const int64_t nch = rdm_nchunks(L->v), cw = rdm_chunk_width(L->v);
    double *part = pre ? NULL : rdml_malloc(ctx, (size_t)(2 * m * ng + 1) * sizeof *part, "image statistics");
    double *all = rdml_malloc(ctx, (size_t)(2 * m * nch + 1) * sizeof *all, "image statistics");
    int rc = rdml_agree(ctx, L->comm, (pre || part) && all ? RDML_OK : ctx->code);
    if (rc == RDML_OK && !pre) {
        for (int64_t i = 0; i < m; i++)
            for (int64_t k = 0; k < ng; k++) {
                const int64_t len = nl - k * gw < gw ? nl - k * gw : gw;
                row_sum_m2(a + i * nl + k * gw, len, &part[2 * (i * ng + k)], &part[2 * (i * ng + k) + 1]);
            }
    }
    if (rc == RDML_OK) rc = gather_chunks(ctx, L, pre ? pre : part, 2, all);
    for (int64_t i = 0; rc == RDML_OK && i < m; i++) {
        const double *q = all + 2 * i * nch;
        double tot = 0, m2 = 0;
        for (int64_t c = 0; c < nch; c++) tot += q[2 * c];
        const double mu = centre ? tot / (double)L->v : 0.0;
        for (int64_t c = 0; c < nch; c++) {
            const double nq = (double)(L->v - c * cw < cw ? L->v - c * cw : cw);
            /* about mu (centre) or about 0: both from the chunk's own mean c */
            const double cm = q[2 * c] / nq, dm = cm - mu;
            m2 += q[2 * c + 1] + nq * dm * dm;
        }
        mean[i] = mu;
        ssd[i] = m2;
    }
    free(part);
    free(all);
    return rdml_agree(ctx, L->comm, rc);
}

/* Mean and sum of squared deviations (about the mean if centre, about 0 otherwise) of every
 * local image row over all v vertices, with one pass over memory: each rank takes the sum
 * and the deviations about its own partial mean while the row is in cache, and the members
 * of the process row combine their parts exactly (Chan et al.'s pairwise update, in member
 * order, so every member gets the same bits). */
static int row_stats(rdml_ctx *ctx, const rdm_layout *L, const float *a, int centre,
                     const double *pre, double *mean, double *ssd) {
    if (L->pr == 1) return row_stats_chunks(ctx, L, a, centre, pre, mean, ssd);
    const int64_t m = L->mloc, nl = L->nloc;
    const int pc = L->pc;
    double *mine = rdml_malloc(ctx, (size_t)(2 * m + 1) * sizeof *mine, "image statistics");
    double *all = rdml_malloc(ctx, (size_t)(2 * m * pc + 1) * sizeof *all, "image statistics");
    int rc = (!mine || !all) ? ctx->code : RDML_OK;
    rc = rdml_agree(ctx, L->comm, rc);
    if (rc == RDML_OK) {
        for (int64_t i = 0; i < m; i++) {
            double sum, m2;
            if (pre) {
                sum = pre[2 * i];
                m2 = pre[2 * i + 1];
            } else {
                row_sum_m2(a + i * nl, nl, &sum, &m2);
            }
            if (!centre && nl > 0) {
                /* about 0: both terms are >= 0, nothing cancels */
                const double c = sum / (double)nl;
                m2 += (double)nl * c * c;
            }
            mine[2 * i] = sum;
            mine[2 * i + 1] = m2;
        }
        if (2 * m > INT32_MAX) {
            rc = RDML_FAIL(ctx, RDML_EDATA, "too many images per rank (%lld)", (long long)m);
        } else {
            int mrc = MPI_Allgather(mine, (int)(2 * m), MPI_DOUBLE, all, (int)(2 * m), MPI_DOUBLE,
                                    L->rowcomm);
            if (mrc != MPI_SUCCESS) rc = rdml_mpi_check(ctx, mrc, "MPI_Allgather (image statistics)");
        }
    }
    if (rc == RDML_OK) {
        for (int64_t i = 0; i < m; i++) {
            double tot = 0, m2 = 0;
            for (int q = 0; q < pc; q++) tot += all[(int64_t)q * 2 * m + 2 * i];
            const double mu = centre ? tot / (double)L->v : 0.0;
            for (int q = 0; q < pc; q++) {
                const double s = all[(int64_t)q * 2 * m + 2 * i], d2 = all[(int64_t)q * 2 * m + 2 * i + 1];
                const int64_t nq = rdml_part_numroc(L->v, L->b, q, 0, pc);
                double dm = centre && nq > 0 ? s / (double)nq - mu : 0.0;
                m2 += d2 + (double)nq * dm * dm;
            }
            mean[i] = mu;
            ssd[i] = m2;
        }
    }
    free(mine);
    free(all);
    return rdml_agree(ctx, L->comm, rc);
}

int rdm_prepare(rdml_ctx *ctx, const rdm_layout *L, rdml_rdm_reader read, void *user,
                const rdml_rdm_params *p, float *a, rdm_stats *st, int64_t *bad_row,
                int64_t *nbad) {
    const int64_t m = L->mloc, nl = L->nloc, n = L->n;
    const rdml_rdm_metric met = p->metric;
    *bad_row = -1;
    *nbad = 0;
    st->sq = st->mean = NULL;
    double t0 = rdml_now();
    const int euclid = met == RDML_RDM_EUCLIDEAN || met == RDML_RDM_SQEUCLIDEAN;
    /* image statistics taken while reading, when nothing changes the block in between */
    const int fused = !p->standardize && !euclid && met != RDML_RDM_SPEARMAN;
    double *pre = fused ? rdml_malloc(ctx, (size_t)(2 * m * (group_count(L) + 1)) * sizeof *pre,
                                      "image statistics")
                        : NULL;
    int rc = fused && !pre ? ctx->code : RDML_OK;
    double t_read = 0;
    if (rc == RDML_OK) rc = read_block(ctx, L, read, user, a, pre, &t_read);
    rdml_log_any(ctx, RDML_LOG_DEBUG, "RDM read of %lld x %lld block: %.2f s (reader %.2f s, "
                 "finiteness checks%s %.2f s)", (long long)L->mloc, (long long)L->nloc,
                 rdml_now() - t0, t_read, fused ? " and image statistics" : "",
                 rdml_now() - t0 - t_read);
    rc = rdml_agree(ctx, L->comm, rc);
    if (rc != RDML_OK) {
        free(pre);
        return rc;
    }
    t0 = rdml_now();
    if (p->standardize) RDML_TRY(standardize_cols(ctx, L, a));
    if (met == RDML_RDM_SPEARMAN) RDML_TRY(rank_rows(ctx, L, a));
    if (euclid && !p->standardize) RDML_TRY(centre_cols(ctx, L, a));

    double *s1 = rdml_malloc(ctx, (size_t)(m ? m : 1) * sizeof *s1, "image sums");
    double *s2 = rdml_malloc(ctx, (size_t)(m ? m : 1) * sizeof *s2, "image norms");
    double *glob = rdml_calloc(ctx, (size_t)n, sizeof *glob, "image statistics");
    rc = (!s1 || !s2 || !glob) ? ctx->code : RDML_OK;
    rc = rdml_agree(ctx, L->comm, rc);
    if (rc != RDML_OK) goto fail;

    if (euclid) {
        /* centre rows too; keep their means and the centred squared norms */
        double *gmean = rdml_calloc(ctx, (size_t)n, sizeof *gmean, "image means");
        rc = rdml_agree(ctx, L->comm, gmean ? RDML_OK : ctx->code);
        if (rc == RDML_OK) rc = row_stats(ctx, L, a, 1, NULL, s1, s2);
        if (rc == RDML_OK) {
            for (int64_t i = 0; i < m; i++) {
                float *row = a + i * nl;
                for (int64_t j = 0; j < nl; j++) row[j] = (float)((double)row[j] - s1[i]);
            }
            rc = row_squares(ctx, L, a, s2);
        }
        if (rc == RDML_OK && L->mycol == 0)
            for (int64_t i = 0; i < m; i++) {
                glob[L->grows[i]] = s2[i];
                gmean[L->grows[i]] = s1[i];
            }
        if (rc == RDML_OK) rc = allreduce_f64(ctx, L->comm, glob, n, MPI_SUM, "MPI_Allreduce (norms)");
        if (rc == RDML_OK) rc = allreduce_f64(ctx, L->comm, gmean, n, MPI_SUM, "MPI_Allreduce (means)");
        rc = rdml_agree(ctx, L->comm, rc);
        if (rc != RDML_OK) {
            free(gmean);
            goto fail;
        }
        st->sq = glob;
        st->mean = gmean;
        st->v = (double)L->v;
        free(s1);
        free(s2);
        return RDML_OK;
    }

    /* correlation / spearman centre; cosine does not */
    const int centre = met != RDML_RDM_COSINE;
    rc = row_stats(ctx, L, a, centre, pre, s1, s2);
    free(pre);
    pre = NULL;
    if (rc != RDML_OK) goto fail;
    /* s2 becomes the multiplier; zero-variance rows get 0 */
    int64_t first = INT64_MAX, cnt = 0;
    for (int64_t i = 0; i < m; i++) {
        double sd = sqrt(s2[i] / (double)L->v);
        int zero = centre ? !(sd > 1e-12 * fabs(s1[i]) && sd > 0.0) : !(s2[i] > 0.0);
        if (zero) {
            if (L->grows[i] < first) first = L->grows[i];
            cnt++;
            s2[i] = 0.0;
        } else {
            s2[i] = 1.0 / sqrt(s2[i]);
        }
    }
    if (L->mycol != 0) cnt = 0; /* count each image once */
    int64_t agg[2] = {first, cnt}, res[2];
    int mrc = MPI_Allreduce(&agg[0], &res[0], 1, MPI_INT64_T, MPI_MIN, L->comm);
    if (mrc == MPI_SUCCESS) mrc = MPI_Allreduce(&agg[1], &res[1], 1, MPI_INT64_T, MPI_SUM, L->comm);
    if (mrc != MPI_SUCCESS) {
        rc = rdml_agree(ctx, L->comm, rdml_mpi_check(ctx, mrc, "MPI_Allreduce (zero variance)"));
        goto fail;
    }
    if (res[1] > 0) {
        if (p->zero_variance_error) {
            *bad_row = res[0];
            *nbad = res[1];
            char more[64] = "";
            if (res[1] > 1) snprintf(more, sizeof more, " (and %lld more)", (long long)(res[1] - 1));
            /* Every rank knows the same row, so every rank records the same message. */
            rc = RDML_FAIL(ctx, RDML_EDATA,
                           "image row %lld%s has %s over its %lld vertices, so its %s distance "
                           "is undefined (hint: check that image's data or the vertex "
                           "selection, or set rdm.zero_variance = one to give such images "
                           "distance 1 to every other image)",
                           (long long)res[0], more,
                           centre ? "zero variance" : "an all-zero vector", (long long)L->v,
                           rdml_rdm_metric_name(met));
            goto fail;
        }
        *nbad = res[1];
    }
    for (int64_t i = 0; i < m; i++) {
        float *row = a + i * nl;
        for (int64_t j = 0; j < nl; j++) row[j] = (float)(((double)row[j] - s1[i]) * s2[i]);
    }
    free(s1);
    free(s2);
    free(glob);
    rdml_log_any(ctx, RDML_LOG_DEBUG, "RDM image statistics and row scaling: %.2f s", rdml_now() - t0);
    return RDML_OK;
fail:
    free(pre);
    free(s1);
    free(s2);
    free(glob);
    st->sq = NULL;
    return rc;
}
