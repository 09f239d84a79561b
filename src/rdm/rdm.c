/* The distributed RDM driver (rdml/rdm.h): metric names, parameters, the process grid and
 * block size the parameters resolve to, the per-rank memory plan and its check against the
 * memory a rank may use, and rdml_rdm_compute_from, which sets up the BLACS grid and the
 * row / column communicators, then runs preparation (rdm_prep.c) and the Gram / distance /
 * redistribution stage (rdm_gram.c), agreeing on errors across ranks between phases. The
 * auto grid is 1 x P (every rank holds all images and a contiguous run of whole vertex
 * chunks, fixed by V alone so that the result is the same bits on any number of ranks)
 * because that lets each rank run large local SSYRK/SGEMM calls panel by panel and only the
 * N x N result is communicated; an explicit pr x pc grid with pr > 1 goes through ScaLAPACK's
 * PSSYRK and PSGEMR2D instead (docs/rdm.md compares the two). Left out: out-of-core
 * computation when the input share does not fit (refused with the numbers instead), and
 * threads inside a rank (BLAS threading is the caller's setting). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rdm/rdm_priv.h"
#include "rdml/mpiutil.h"

static const char *const metric_names[] = {"correlation", "euclidean", "cosine", "sqeuclidean",
                                           "spearman"};
#define NMETRIC ((int)(sizeof metric_names / sizeof metric_names[0]))

const char *rdml_rdm_metric_name(rdml_rdm_metric m) {
    return (int)m >= 0 && (int)m < NMETRIC ? metric_names[m] : "unknown";
}

int rdml_rdm_metric_parse(rdml_ctx *ctx, const char *name, rdml_rdm_metric *out) {
    for (int i = 0; name && i < NMETRIC; i++) {
        if (strcmp(name, metric_names[i]) == 0) {
            *out = (rdml_rdm_metric)i;
            return RDML_OK;
        }
    }
    int near = name ? rdml_nearest(name, metric_names, NMETRIC) : -1;
    return RDML_FAIL(ctx, RDML_ECONFIG,
                     "unknown RDM metric '%s' (valid: correlation, euclidean, cosine, "
                     "sqeuclidean, spearman)%s%s%s",
                     name ? name : "(null)", near >= 0 ? "; did you mean '" : "",
                     near >= 0 ? metric_names[near] : "", near >= 0 ? "'?" : "");
}

const char *rdml_rdm_arith_name(rdml_rdm_arith a) {
    return a == RDML_RDM_INT16 ? "int16" : a == RDML_RDM_FLOAT32 ? "float32" : "unknown";
}

void rdml_rdm_defaults(rdml_rdm_params *p) {
    memset(p, 0, sizeof *p);
    p->metric = RDML_RDM_CORRELATION;
    p->standardize = 0;
    p->zero_variance_error = 1;
    p->block = 0;
    p->grid_rows = p->grid_cols = 0;
    p->max_bytes_per_rank = 0;
    p->panel_rows = 0;
    p->arithmetic = RDML_RDM_FLOAT32;
}

void rdml_rdm_free(rdml_rdm *r) {
    if (!r) return;
    free(r->rows);
    memset(r, 0, sizeof *r);
}

void rdm_fmt_bytes(char *buf, size_t len, double bytes) {
    if (bytes >= 1e9)
        snprintf(buf, len, "%.1f GB", bytes / 1e9);
    else if (bytes >= 1e6)
        snprintf(buf, len, "%.0f MB", bytes / 1e6);
    else
        snprintf(buf, len, "%.0f kB", bytes / 1e3);
}

int rdm_resolve(int64_t n, int64_t v, int nranks, const rdml_rdm_params *p, int *pr, int *pc,
                int64_t *b) {
    int r = p ? p->grid_rows : 0, c = p ? p->grid_cols : 0;
    if (nranks < 1) nranks = 1;
    if (r <= 0 && c <= 0) {
        r = 1; /* auto: all images on every rank, vertices split (see the file comment) */
        c = nranks;
    } else if (r <= 0) {
        r = c > 0 && nranks % c == 0 ? nranks / c : 0;
    } else if (c <= 0) {
        c = nranks % r == 0 ? nranks / r : 0;
    }
    *pr = r;
    *pc = c;
    if (r < 1 || c < 1 || (int64_t)r * c != nranks) return 0;
    int64_t blk = p ? p->block : 0;
    if (r == 1) {
        /* Columns only: one contiguous run of whole vertex chunks per rank (rdm_chunk_width;
         * rdm.block does not apply), so each rank's read of a row is one span of the file,
         * and the chunks, hence the bits of the result, do not depend on the rank count. */
        const int64_t nch = rdm_nchunks(v);
        blk = rdm_chunk_width(v) * ((nch + c - 1) / c);
    } else if (blk <= 0) {
        blk = 64; /* PBLAS panels: 64 was within 10% of the best of 32..1024 on 2 ranks */
    }
    (void)n;
    *b = blk;
    return 1;
}

/* Rows of one Gram panel in the 1 x P path and of one mirror chunk: about 2^21 entries of an
 * n-wide row, at least 512 rows and at most 1024. Measured at N = 4000, k = 2048, one thread,
 * CPU time, panel scheme against SGEMM: AVX-512 kernel 87% at 256 rows, 91-92% at 512, 91% at
 * 1024; Haswell 95% at 256, 90% at 128. Smaller panel buffers are fewer fresh pages to fault
 * in (the earlier 2^22 entries and a second double panel were 40 MB per rank at N = 2000). */
int64_t rdm_panel_rows(int64_t n, const rdml_rdm_params *p) {
    int64_t m = ((int64_t)1 << 21) / (n > 0 ? n : 1);
    if (m < 512) m = 512;
    if (m > 1024) m = 1024;
    if (p && p->panel_rows > 0) m = p->panel_rows;
    /* counts of one panel's reduction and one mirror chunk stay within MPI's int */
    const int64_t cap = ((int64_t)1 << 28) / (n > 0 ? n : 1);
    if (m > cap) m = cap > 0 ? cap : 1;
    return m < n ? m : (n > 0 ? n : 1);
}

int64_t rdml_rdm_plan_bytes(int64_t n, int64_t v, int nranks, const rdml_rdm_params *p) {
    int pr, pc;
    int64_t b;
    if (n <= 0 || v <= 0) return 0;
    if (!rdm_resolve(n, v, nranks, p, &pr, &pc, &b)) {
        rdml_rdm_params q;
        rdml_rdm_defaults(&q);
        rdm_resolve(n, v, nranks, &q, &pr, &pc, &b);
    }
    if (nranks < 1) nranks = 1;
    const double f = 4.0, d = 8.0;
    double mloc = (double)rdml_part_numroc(n, b, 0, 0, pr); /* rank 0 holds the most */
    double nloc = (double)rdml_part_numroc(v, b, 0, 0, pc);
    double in = mloc * nloc * f;
    double slab = (double)((n + nranks - 1) / nranks) * (double)n * f;
    double m = (double)rdm_panel_rows(n, p);
    /* per-image vectors, index maps, the gathered image statistics of the process row */
    double small = (double)n * d * 3 + (mloc + nloc) * 8 + 2.0 * mloc * (pc + 1) * d;
    if (pr == 1) /* the image statistics per vertex chunk (rdm_prep.c) */
        small += 2.0 * mloc * (double)(rdm_nchunks(v) + nloc / rdm_chunk_width(v) + 2) * d;
    double mirror = 2 * m * (double)n * f;
    double prep = 0;
    if (p && p->metric == RDML_RDM_SPEARMAN) {
        /* Row exchange: chunk buffers of about 2^22 values each, and sort scratch. */
        double chunk = (double)((int64_t)1 << 22);
        prep = 3 * chunk * f + (double)v * (4 + 4 + 8 + 8 + 4);
    }
    double peak;
    if (pr == 1 && p && p->arithmetic == RDML_RDM_INT16) {
        /* rdm_q16.c: the slab is allocated before the rounding, which shrinks the block to
         * int16 rows of a multiple of 32; then a double panel (rdm_gram.c) and per-thread
         * packing buffers */
        double mq = p->panel_rows > 0 ? m : fmin(RDM_Q16_PANEL_ROWS, (double)n);
        double inq = mloc * ceil(nloc / 32.0) * 32.0 * 2.0;
        double panel = mq * (double)n * d + 4.0 * (double)rdm_q16_thread_bytes(); /* <= 4 threads */
        peak = in + fmax(prep, slab);
        peak = fmax(peak, inq + slab + panel);
        peak = fmax(peak, slab + mirror);
    } else if (pr == 1) {
        double panel = m * (double)n * (f + d);
        peak = in + fmax(prep, slab + panel);
        peak = fmax(peak, slab + mirror);
    } else {
        double cf = (double)rdml_part_numroc(n, b, 0, 0, pr) *
                    (double)rdml_part_numroc(n, b, 0, 0, pc) * f;
        double cd = v > RDM_KCHUNK ? 2 * cf : 0;
        peak = in + fmax(prep, cf + cd);
        peak = fmax(peak, cf + slab + cf); /* PSGEMR2D keeps about one more copy in flight */
        peak = fmax(peak, slab + mirror);
    }
    return (int64_t)(peak + small);
}

static int check_memory(rdml_ctx *ctx, MPI_Comm comm, int64_t n, int64_t v, int nranks,
                        const rdml_rdm_params *p) {
    int64_t plan = rdml_rdm_plan_bytes(n, v, nranks, p);
    /* the configured limit is the same on every rank; the available share is already the
     * smallest over the ranks' nodes */
    int64_t minavail = p->max_bytes_per_rank > 0 ? p->max_bytes_per_rank : rdml_mem_available_share(comm);
    if (minavail < 0) minavail = INT64_MAX; /* unknown: no /proc/meminfo */
    if (plan <= minavail) return RDML_OK;
    char need[32], have[32];
    rdm_fmt_bytes(need, sizeof need, (double)plan);
    rdm_fmt_bytes(have, sizeof have, (double)minavail);
    return RDML_FAIL(ctx, RDML_EDATA,
                     "RDM of %lld images x %lld vertices needs %s per rank on %d ranks but %s "
                     "is available%s (hint: more ranks or nodes, fewer vertices, data.images, "
                     "or rdm.max_memory_gb when more memory is free)",
                     (long long)n, (long long)v, need, nranks, have,
                     p->max_bytes_per_rank > 0 ? " (the configured limit per rank)"
                                               : " (MemAvailable shared by the ranks of the node)");
}

static void layout_free(rdm_layout *L) {
    if (L->rowcomm != MPI_COMM_NULL) MPI_Comm_free(&L->rowcomm);
    if (L->colcomm != MPI_COMM_NULL) MPI_Comm_free(&L->colcomm);
    if (L->ctxt >= 0) Cblacs_gridexit(L->ctxt);
    if (L->sys >= 0) Cfree_blacs_system_handle(L->sys);
    free(L->gcols);
    free(L->grows);
    L->ctxt = L->sys = -1;
    L->gcols = L->grows = NULL;
}

/* Collective. Grid, communicators and the index maps of my block. */
static int layout_init(rdml_ctx *ctx, MPI_Comm comm, int64_t n, int64_t v, int pr, int pc,
                       int64_t b, rdm_layout *L) {
    memset(L, 0, sizeof *L);
    L->comm = comm;
    L->rowcomm = L->colcomm = MPI_COMM_NULL;
    L->sys = L->ctxt = -1;
    MPI_Comm_rank(comm, &L->rank);
    MPI_Comm_size(comm, &L->nranks);
    L->pr = pr;
    L->pc = pc;
    L->n = n;
    L->v = v;
    L->b = b;
    L->myrow = L->rank / pc;
    L->mycol = L->rank % pc;
    int rc = RDML_OK;
    if (b > INT32_MAX || n > INT32_MAX || v > INT32_MAX)
        rc = RDML_FAIL(ctx, RDML_EDATA,
                       "RDM of %lld images x %lld vertices exceeds ScaLAPACK's 32-bit sizes",
                       (long long)n, (long long)v);
    if (rc == RDML_OK && pr > 1) {
        /* Only the pr > 1 engine uses ScaLAPACK (the 1 x P one is local BLAS and MPI).
         * ScaLAPACK works on S = A^T (see rdm_priv.h): a pc x pr grid in column-major
         * order puts rank myrow*pc + mycol at BLACS coordinates (mycol, myrow). */
        L->sys = Csys2blacs_handle(comm);
        L->ctxt = L->sys;
        Cblacs_gridinit(&L->ctxt, "C", pc, pr);
        int gr, gc, myr, myc;
        Cblacs_gridinfo(L->ctxt, &gr, &gc, &myr, &myc);
        if (gr != pc || gc != pr || myr != L->mycol || myc != L->myrow)
            rc = RDML_FAIL(ctx, RDML_EINTERNAL,
                           "BLACS grid %d x %d puts rank %d at (%d, %d), expected %d x %d at "
                           "(%d, %d)",
                           gr, gc, L->rank, myr, myc, pc, pr, L->mycol, L->myrow);
    }
    int mrc = MPI_Comm_split(comm, L->myrow, L->mycol, &L->rowcomm);
    if (mrc == MPI_SUCCESS) mrc = MPI_Comm_split(comm, L->mycol, L->myrow, &L->colcomm);
    if (mrc != MPI_SUCCESS && rc == RDML_OK) rc = rdml_mpi_check(ctx, mrc, "MPI_Comm_split (RDM grid)");
    if (rc == RDML_OK) {
        L->mloc = rdml_part_numroc(n, b, L->myrow, 0, pr);
        L->nloc = rdml_part_numroc(v, b, L->mycol, 0, pc);
        L->grows = rdml_malloc(ctx, (size_t)(L->mloc ? L->mloc : 1) * sizeof *L->grows, "RDM row map");
        L->gcols = rdml_malloc(ctx, (size_t)(L->nloc ? L->nloc : 1) * sizeof *L->gcols, "RDM column map");
        if (!L->grows || !L->gcols) rc = ctx->code;
    }
    for (int64_t i = 0; rc == RDML_OK && i < L->mloc; i++)
        L->grows[i] = rdml_part_l2g(i, b, L->myrow, pr);
    for (int64_t j = 0; rc == RDML_OK && j < L->nloc; j++)
        L->gcols[j] = rdml_part_l2g(j, b, L->mycol, pc);
    return rdml_agree(ctx, comm, rc);
}

int rdm_compute_core(rdml_ctx *ctx, MPI_Comm comm, int64_t n, int64_t v, rdml_rdm_reader read,
                     void *user, const rdml_rdm_params *p, rdml_rdm *out, int64_t *bad_row) {
    int nranks, rank;
    MPI_Comm_size(comm, &nranks);
    MPI_Comm_rank(comm, &rank);
    *bad_row = -1;
    memset(out, 0, sizeof *out);
    rdml_rdm_params defp;
    if (!p) {
        rdml_rdm_defaults(&defp);
        p = &defp;
    }
    int rc = RDML_OK;
    int pr = 0, pc = 0;
    int64_t b = 0;
    if (n <= 0 || v <= 0)
        rc = RDML_FAIL(ctx, RDML_EDATA,
                       "RDM of %lld images x %lld vertices: nothing to compare (hint: check "
                       "the vertex selection and data.images)",
                       (long long)n, (long long)v);
    else if ((int)p->metric < 0 || (int)p->metric >= NMETRIC)
        rc = RDML_FAIL(ctx, RDML_ECONFIG, "unknown RDM metric number %d", (int)p->metric);
    else if (!read)
        rc = RDML_FAIL(ctx, RDML_EINTERNAL, "RDM: no reader given");
    else if (!rdm_resolve(n, v, nranks, p, &pr, &pc, &b))
        rc = RDML_FAIL(ctx, RDML_ECONFIG,
                       "RDM process grid %d x %d does not match %d ranks (hint: rows x "
                       "columns must equal the number of ranks, or leave both 0 for auto)",
                       p->grid_rows, p->grid_cols, nranks);
    else if (p->arithmetic != RDML_RDM_FLOAT32 && p->arithmetic != RDML_RDM_INT16)
        rc = RDML_FAIL(ctx, RDML_ECONFIG, "unknown RDM arithmetic number %d", (int)p->arithmetic);
    else if (p->arithmetic == RDML_RDM_INT16 &&
             (p->metric == RDML_RDM_EUCLIDEAN || p->metric == RDML_RDM_SQEUCLIDEAN))
        rc = RDML_FAIL(ctx, RDML_ECONFIG,
                       "[rdm] arithmetic = int16 does not support metric = %s: a distance "
                       "between near images cancels most of the rounded digits (hint: use "
                       "arithmetic = float32, or metric = correlation, cosine or spearman)",
                       rdml_rdm_metric_name(p->metric));
    else if (p->arithmetic == RDML_RDM_INT16 && pr > 1)
        rc = RDML_FAIL(ctx, RDML_ECONFIG,
                       "[rdm] arithmetic = int16 runs on the 1 x P process grid, not %d x %d "
                       "(hint: set [rdm] grid = auto or 1x%d)", pr, pc, nranks);
    /* Parameters are the same on every rank, so the checks above agree without a message
     * exchange; one agree still guards against callers passing different values. */
    rc = rdml_agree(ctx, comm, rc);
    if (rc != RDML_OK) return rc;
    rc = check_memory(ctx, comm, n, v, nranks, p);
    rc = rdml_agree(ctx, comm, rc);
    if (rc != RDML_OK) return rc;

    double t0 = rdml_now();
    rdm_layout L;
    rc = layout_init(ctx, comm, n, v, pr, pc, b, &L);
    rdml_log_any(ctx, RDML_LOG_DEBUG, "RDM layout (grid %d x %d): %.3f s", pr, pc, rdml_now() - t0);
    float *a = NULL;
    rdm_stats st = {0};
    if (rc == RDML_OK) {
        size_t cnt = (size_t)(L.mloc ? L.mloc : 1) * (size_t)(L.nloc ? L.nloc : 1);
        a = rdml_malloc(ctx, cnt * sizeof *a, "RDM input block");
        rc = rdml_agree(ctx, comm, a ? RDML_OK : ctx->code);
    }
    int64_t nbad = 0;
    if (rc == RDML_OK) rc = rdm_prepare(ctx, &L, read, user, p, a, &st, bad_row, &nbad);
    double t1 = rdml_now();
    /* a stop boundary between the phases (the Gram stage has its own per panel or chunk) */
    if (rc == RDML_OK)
        rc = rdml_stop_agree(ctx, comm, rc, "after reading the RDM input, before its Gram matrix");
    if (rc == RDML_OK) {
        if (nbad > 0)
            rdml_warn(ctx, "RDM: %lld image(s) have zero variance; their distances are set to 1",
                      (long long)nbad);
        rc = rdm_gram_to_slabs(ctx, &L, p, &a, &st, out);
    }
    double t2 = rdml_now();
    if (rc == RDML_OK)
        rdml_debug(ctx, "RDM %lld x %lld (%s, grid %d x %d, block %lld): read+prepare %.2f s, "
                   "Gram+distances+slabs %.2f s",
                   (long long)n, (long long)v, rdml_rdm_metric_name(p->metric), pr, pc,
                   (long long)b, t1 - t0, t2 - t1);
    free(a);
    rdm_stats_free(&st);
    layout_free(&L);
    if (rc != RDML_OK) rdml_rdm_free(out);
    return rc;
}

int rdml_rdm_compute_from(rdml_ctx *ctx, MPI_Comm comm, int64_t n, int64_t v,
                          rdml_rdm_reader read, void *user, const rdml_rdm_params *p,
                          rdml_rdm *out) {
    int64_t bad;
    return rdm_compute_core(ctx, comm, n, v, read, user, p, out, &bad);
}
