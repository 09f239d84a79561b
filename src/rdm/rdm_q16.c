/* The int16 Gram engine of the 1 x P grid ([rdm] arithmetic = int16, docs/rdm.md
 * "Arithmetic"). The prepared rows (unit norm for correlation, cosine and spearman) are
 * rounded to integers q = rint(a * s_i), s_i = Q16_MAX / max_k |a_ik| (the row's largest
 * magnitude over all ranks), so |q| <= 4095 fits 13 signed bits; the Gram entries are then
 * integer dot products, accumulated in int32 over Q16_FLUSH vertices (128 * 4095^2 < 2^31:
 * no overflow whatever the data) and in double beyond (exact: every partial is an integer
 * below 2^53). r_ij = G_ij / sqrt(G_ii G_jj), the cosine of the rounded rows, so |r| <= 1
 * and r_ii = 1 exactly.
 *
 * Why: an int16 multiply-add (AVX-512 VNNI's VPDPWSSD: 32 products per instruction, twice
 * the float32 FMA's 16) runs at about twice the float32 rate, the block takes half the
 * memory, and since integer sums are exact in any order, the RDM is the same bits on any
 * number of ranks, threads, panels or CPUs (the generic C kernel gives the VNNI kernel's
 * bits). The price is precision: the rounding of a row to 13 bits moves a correlation by
 * about 0.4 c / (4095 sqrt(V)) rms (c = sqrt(V) max|a|, ~4-5 for Gaussian data: 3e-6 at
 * V = 20,000), against ~2e-8 for float32 (docs/rdm.md has the measurements).
 *
 * Kernel: a 12 x 32 tile of the lower triangle per call, 24 zmm accumulators, the 32
 * columns packed as k-pairs (one 32-bit lane = two consecutive vertices of one image, the
 * layout VPDPWSSD multiplies), the 12 rows broadcast as 32-bit k-pairs straight from the
 * row-major block. GCC 12's _mm512_dpwssd_epi32 spills its accumulators (half speed), so
 * the instruction is one line of inline assembly and the compiler allocates the registers.
 * Work is split over the caller's BLAS threads by blocks of Q16_NC columns: a thread packs
 * its block and owns its columns of the panel, so there are no races and no reductions. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rdm/rdm_priv.h"
#include "rdml/mpiutil.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define Q16_HAVE_VNNI 1
#endif

int openblas_get_num_threads(void);

#define Q16_MAX 4095  /* |q| <= 2^12 - 1 */
#define Q16_FLUSH 128 /* vertices per int32 accumulation: Q16_FLUSH * Q16_MAX^2 < 2^31 */
#define Q16_MR 12     /* rows of a tile (broadcast) */
#define Q16_NR 32     /* columns of a tile (two zmm of 16 int32 lanes) */
#define Q16_NC 256    /* columns of one packed block: one task */
#define Q16_KB 512    /* vertices of one packed block (a multiple of Q16_FLUSH) */

_Static_assert((int64_t)Q16_FLUSH * Q16_MAX * Q16_MAX < INT32_MAX, "int32 accumulation overflows");
_Static_assert(Q16_KB % Q16_FLUSH == 0 && Q16_NC % Q16_NR == 0, "block shapes");

/* Packs columns (images) [j0, j0 + nj) of q, vertices [k0, k0 + 2 np), into tiles of Q16_NR
 * columns: tile t, pair p is Q16_NR int32 lanes at pk + (t Q16_NR) np + p Q16_NR, lane x =
 * (q[j0 + t Q16_NR + x][k0 + 2p], ... + 1); columns past nj are zero. */
static void q16_pack(const int16_t *q, int64_t ld, int64_t j0, int64_t nj, int64_t k0, int64_t np,
                     int32_t *pk) {
    for (int64_t jt = 0; jt < nj; jt += Q16_NR) {
        int32_t *o = pk + jt * np;
        const int64_t w = nj - jt < Q16_NR ? nj - jt : Q16_NR;
        for (int64_t x = 0; x < w; x++) {
            const int16_t *src = q + (j0 + jt + x) * ld + k0;
            for (int64_t p = 0; p < np; p++) memcpy(o + p * Q16_NR + x, src + 2 * p, 4);
        }
        for (int64_t x = w; x < Q16_NR; x++)
            for (int64_t p = 0; p < np; p++) o[p * Q16_NR + x] = 0;
    }
}

/* c[r ldc + x] += sum over pairs p < np of the tile's products, rows a + r lda (int16, the
 * pairs from a's first vertex on), columns from the packed tile pk. Generic C: the same
 * integers as the VNNI kernel, in the same int32 partials. */
static void q16_kernel_c(int64_t np, const int16_t *a, int64_t lda, const int32_t *pk, double *c,
                         int64_t ldc) {
    for (int64_t p0 = 0; p0 < np; p0 += Q16_FLUSH / 2) {
        const int64_t p1 = p0 + Q16_FLUSH / 2 < np ? p0 + Q16_FLUSH / 2 : np;
        for (int r = 0; r < Q16_MR; r++) {
            int32_t acc[Q16_NR] = {0};
            const int16_t *ar = a + r * lda;
            for (int64_t p = p0; p < p1; p++) {
                const int32_t a0 = ar[2 * p], a1 = ar[2 * p + 1];
                const int32_t *b = pk + p * Q16_NR;
                for (int x = 0; x < Q16_NR; x++) {
                    int16_t b2[2];
                    memcpy(b2, b + x, 4);
                    acc[x] += a0 * b2[0] + a1 * b2[1];
                }
            }
            for (int x = 0; x < Q16_NR; x++) c[r * ldc + x] += acc[x];
        }
    }
}

#ifdef Q16_HAVE_VNNI
#define Q16_TARGET __attribute__((target("avx512f,avx512bw,avx512vnni")))

Q16_TARGET static inline __m512i q16_dp(__m512i c, __m512i a, __m512i b) {
    __asm__("vpdpwssd %2, %1, %0" : "+v"(c) : "v"(a), "v"(b));
    return c;
}

Q16_TARGET static inline void q16_flush(double *c, __m512i acc) {
    __m512d lo = _mm512_cvtepi32_pd(_mm512_castsi512_si256(acc));
    __m512d hi = _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(acc, 1));
    _mm512_storeu_pd(c, _mm512_add_pd(_mm512_loadu_pd(c), lo));
    _mm512_storeu_pd(c + 8, _mm512_add_pd(_mm512_loadu_pd(c + 8), hi));
}

#define Q16_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

Q16_TARGET static void q16_kernel_vnni(int64_t np, const int16_t *a, int64_t lda,
                                       const int32_t *pk, double *c, int64_t ldc) {
#define Q16_PTR(r) const int32_t *a##r = (const int32_t *)(const void *)(a + (r) * lda);
    Q16_ROWS(Q16_PTR)
    for (int64_t p0 = 0; p0 < np; p0 += Q16_FLUSH / 2) {
        const int64_t p1 = p0 + Q16_FLUSH / 2 < np ? p0 + Q16_FLUSH / 2 : np;
#define Q16_ZERO(r) __m512i c##r##0 = _mm512_setzero_si512(), c##r##1 = _mm512_setzero_si512();
        Q16_ROWS(Q16_ZERO)
        for (int64_t p = p0; p < p1; p++) {
            const __m512i b0 = _mm512_load_si512(pk + p * Q16_NR);
            const __m512i b1 = _mm512_load_si512(pk + p * Q16_NR + 16);
#define Q16_STEP(r)                                                                               \
    {                                                                                             \
        int32_t w;                                                                                \
        memcpy(&w, a##r + p, 4);                                                                  \
        const __m512i av = _mm512_set1_epi32(w);                                                  \
        c##r##0 = q16_dp(c##r##0, av, b0);                                                        \
        c##r##1 = q16_dp(c##r##1, av, b1);                                                        \
    }
            Q16_ROWS(Q16_STEP)
        }
#define Q16_OUT(r)                                                                                \
    q16_flush(c + (r) * ldc, c##r##0);                                                            \
    q16_flush(c + (r) * ldc + 16, c##r##1);
        Q16_ROWS(Q16_OUT)
    }
}
#endif

typedef void (*q16_kernel_fn)(int64_t, const int16_t *, int64_t, const int32_t *, double *, int64_t);

/* The kernel: VNNI when the CPU has it, unless RDML_RDM_INT16_KERNEL=generic (tests compare
 * the two; the bits are the same). *forced: the generic one was asked for. */
static int q16_has_vnni(int *forced) {
    const char *env = getenv("RDML_RDM_INT16_KERNEL");
    *forced = env && strcmp(env, "generic") == 0;
#ifdef Q16_HAVE_VNNI
    __builtin_cpu_init();
    return !*forced && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw");
#else
    return 0;
#endif
}

static q16_kernel_fn q16_kernel(const rdm_q16 *q) {
#ifdef Q16_HAVE_VNNI
    if (q->vnni) return q16_kernel_vnni;
#endif
    (void)q;
    return q16_kernel_c;
}

int rdm_q16_quantize(rdml_ctx *ctx, const rdm_layout *L, float **ap, rdm_q16 *q) {
    memset(q, 0, sizeof *q);
    const int64_t n = L->n, nloc = L->nloc;
    const int64_t ld = (nloc + 31) / 32 * 32; /* whole 64-byte rows, an even pair count */
    float *a = *ap;
    q->ld = ld;
    q->n = n;
    int forced;
    q->vnni = q16_has_vnni(&forced);
    q->kernel_name = q->vnni ? "AVX-512 VNNI" : "generic C";
    static int warned;
    if (!q->vnni && !forced && !warned) {
        warned = 1;
        rdml_warn(ctx, "[rdm] arithmetic = int16: this CPU has no AVX-512 VNNI, so the integer "
                  "Gram runs a generic C kernel, about 13x slower than float32 (hint: set [rdm] "
                  "arithmetic = float32)");
    }
    float *mx = rdml_malloc(ctx, (size_t)n * sizeof *mx, "int16 row scales");
    int64_t *nn = rdml_malloc(ctx, (size_t)n * sizeof *nn, "int16 row norms");
    q->rn = rdml_malloc(ctx, (size_t)n * sizeof *q->rn, "int16 row norms");
    float *rowf = rdml_malloc(ctx, (size_t)(nloc > 0 ? nloc : 1) * sizeof *rowf, "int16 row");
    int16_t *rowq = rdml_malloc(ctx, (size_t)ld * sizeof *rowq + 64, "int16 row");
    int rc = (!mx || !nn || !q->rn || !rowf || !rowq) ? ctx->code : RDML_OK;
    rc = rdml_agree(ctx, L->comm, rc);
    if (rc == RDML_OK) {
        for (int64_t i = 0; i < n; i++) {
            const float *x = a + i * nloc;
            float m = 0;
            for (int64_t k = 0; k < nloc; k++) {
                const float ax = fabsf(x[k]);
                m = ax > m ? ax : m;
            }
            mx[i] = m;
        }
        int mrc = MPI_Allreduce(MPI_IN_PLACE, mx, (int)n, MPI_FLOAT, MPI_MAX, L->comm);
        if (mrc != MPI_SUCCESS) rc = rdml_mpi_check(ctx, mrc, "MPI_Allreduce (int16 row scales)");
        rc = rdml_agree(ctx, L->comm, rc);
    }
    if (rc == RDML_OK) {
        /* In place when the int16 rows fit in the float rows (ld <= 2 nloc): row i's int16
         * bytes end where row i + 1's floats begin, and it is staged through rowf / rowq. */
        int16_t *dst = ld <= 2 * nloc ? (int16_t *)(void *)a
                                      : rdml_malloc(ctx, (size_t)(n * ld) * sizeof *dst, "int16 block");
        if (!dst) rc = ctx->code;
        const float magic = 12582912.0f; /* 1.5 * 2^23: (v + magic) - magic = rint(v), |v| < 2^22 */
        for (int64_t i = 0; rc == RDML_OK && i < n; i++) {
            memcpy(rowf, a + i * nloc, (size_t)nloc * sizeof *rowf);
            const float s = mx[i] > 0 ? (float)Q16_MAX / mx[i] : 0.0f;
            for (int64_t k = 0; k < nloc; k++) {
                float v = rowf[k] * s; /* |v| <= 4095 (1 + 2^-23): rounds to at most 4095 */
                v = (v + magic) - magic;
                rowq[k] = (int16_t)v;
            }
            for (int64_t k = nloc; k < ld; k++) rowq[k] = 0;
            int64_t ss = 0;
            for (int64_t k = 0; k < nloc; k++) ss += (int32_t)rowq[k] * (int32_t)rowq[k];
            nn[i] = ss;
            memcpy(dst + i * ld, rowq, (size_t)ld * sizeof *rowq);
        }
        if (rc == RDML_OK && dst == (int16_t *)(void *)a) {
            void *shrunk = realloc(a, (size_t)(n * ld > 0 ? n * ld : 1) * sizeof *dst);
            q->q = shrunk ? shrunk : (void *)a;
        } else {
            free(a);
            q->q = dst;
        }
        *ap = NULL;
        rc = rdml_agree(ctx, L->comm, rc);
    }
    if (rc == RDML_OK) {
        int mrc = MPI_Allreduce(MPI_IN_PLACE, nn, (int)n, MPI_INT64_T, MPI_SUM, L->comm);
        if (mrc != MPI_SUCCESS) rc = rdml_mpi_check(ctx, mrc, "MPI_Allreduce (int16 row norms)");
        for (int64_t i = 0; rc == RDML_OK && i < n; i++) q->rn[i] = nn[i] > 0 ? 1.0 / sqrt((double)nn[i]) : 0.0;
        rc = rdml_agree(ctx, L->comm, rc);
    }
    free(mx);
    free(nn);
    free(rowf);
    free(rowq);
    if (rc != RDML_OK) rdm_q16_free(q);
    return rc;
}

void rdm_q16_free(rdm_q16 *q) {
    free(q->q);
    free(q->rn);
    memset(q, 0, sizeof *q);
}

typedef struct q16_job {
    const rdm_q16 *q;
    q16_kernel_fn kern;
    int64_t np;            /* local vertex pairs (ld / 2) */
    int64_t g0, g1, wd;    /* panel rows and the accumulator's row length */
    double *acc;           /* mp x wd */
    _Atomic int64_t next;  /* next column block */
    int64_t nblocks;
} q16_job;

/* Column block jb: columns [jb Q16_NC, ...) of the panel's rows [max(g0, block start), g1). */
static void q16_block(q16_job *J, int64_t jb, int32_t *pk, int16_t *rowsbuf) {
    const rdm_q16 *q = J->q;
    const int64_t j0 = jb * Q16_NC, nj = J->g1 - j0 < Q16_NC ? J->g1 - j0 : Q16_NC;
    /* the first tile row that has a column of this block on or below the diagonal */
    int64_t i0 = j0 > J->g0 ? j0 : J->g0;
    i0 = J->g0 + (i0 - J->g0) / Q16_MR * Q16_MR;
    double edge[Q16_MR * Q16_NR];
    for (int64_t p0 = 0; p0 < J->np; p0 += Q16_KB / 2) {
        const int64_t np = J->np - p0 < Q16_KB / 2 ? J->np - p0 : Q16_KB / 2;
        q16_pack(q->q, q->ld, j0, nj, 2 * p0, np, pk);
        for (int64_t it = i0; it < J->g1; it += Q16_MR) {
            const int64_t mr = J->g1 - it < Q16_MR ? J->g1 - it : Q16_MR;
            const int64_t jend = it + mr < j0 + nj ? it + mr : j0 + nj; /* columns j < it + mr */
            for (int64_t jt = j0; jt < jend; jt += Q16_NR) {
                const int64_t nr = j0 + nj - jt < Q16_NR ? j0 + nj - jt : Q16_NR;
                double *c = J->acc + (it - J->g0) * J->wd + jt;
                const int16_t *a = q->q + it * q->ld + 2 * p0;
                if (mr == Q16_MR && nr == Q16_NR) {
                    J->kern(np, a, q->ld, pk + (jt - j0) * np, c, J->wd);
                    continue;
                }
                /* an edge tile goes through a full-size tile buffer; its rows past the panel
                 * are the next images' (discarded), or past the last image a copy of the
                 * tile's first row */
                const int16_t *rows = a;
                int64_t lda = q->ld;
                if (it + Q16_MR > q->n) {
                    for (int64_t r = 0; r < Q16_MR; r++)
                        memcpy(rowsbuf + r * 2 * np, a + (r < mr ? r : 0) * q->ld,
                               (size_t)(2 * np) * sizeof *rowsbuf);
                    rows = rowsbuf;
                    lda = 2 * np;
                }
                memset(edge, 0, sizeof edge);
                J->kern(np, rows, lda, pk + (jt - j0) * np, edge, Q16_NR);
                for (int64_t r = 0; r < mr; r++)
                    for (int64_t x = 0; x < nr; x++) c[r * J->wd + x] += edge[r * Q16_NR + x];
            }
        }
    }
}

static void *q16_worker(void *arg) {
    q16_job *J = ((void **)arg)[0];
    int32_t *pk = ((void **)arg)[1];
    int16_t *rowsbuf = (int16_t *)(void *)(pk + (size_t)Q16_NC * (Q16_KB / 2));
    for (;;) {
        const int64_t jb = atomic_fetch_add(&J->next, 1);
        if (jb >= J->nblocks) break;
        q16_block(J, jb, pk, rowsbuf);
    }
    return NULL;
}

/* The packed block, then a tile's rows (for the last images' edge tiles): a multiple of 64. */
size_t rdm_q16_thread_bytes(void) {
    return (size_t)Q16_NC * (Q16_KB / 2) * sizeof(int32_t) + (size_t)Q16_MR * Q16_KB * sizeof(int16_t);
}

int rdm_q16_threads(void) {
    int t = openblas_get_num_threads();
    return t < 1 ? 1 : t > 64 ? 64 : t;
}

int rdm_q16_panel(rdml_ctx *ctx, const rdm_q16 *q, int64_t g0, int64_t g1, double *acc,
                  int64_t wd, int nthreads) {
    q16_job J = {.q = q, .kern = q16_kernel(q), .np = q->ld / 2, .g0 = g0, .g1 = g1, .wd = wd,
                 .acc = acc, .nblocks = (g1 + Q16_NC - 1) / Q16_NC};
    atomic_init(&J.next, 0);
    if (nthreads > J.nblocks) nthreads = (int)J.nblocks;
    if (nthreads < 1) nthreads = 1;
    const size_t pkbytes = rdm_q16_thread_bytes();
    int32_t *pk[64];
    void *args[64][2];
    pthread_t th[64];
    int started = 0;
    for (int t = 0; t < nthreads; t++) {
        pk[t] = aligned_alloc(64, pkbytes);
        if (!pk[t]) {
            for (int u = 0; u < t; u++) free(pk[u]);
            return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory: int16 packing buffer (%zu bytes)", pkbytes);
        }
        args[t][0] = &J;
        args[t][1] = pk[t];
    }
    for (int t = 1; t < nthreads; t++) {
        if (pthread_create(&th[t], NULL, q16_worker, args[t]) != 0) break;
        started = t;
    }
    q16_worker(args[0]); /* the caller works too; unstarted threads' blocks are taken here */
    for (int t = 1; t <= started; t++) pthread_join(th[t], NULL);
    for (int t = 0; t < nthreads; t++) free(pk[t]);
    return RDML_OK;
}
