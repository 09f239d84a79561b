/* rdm_priv.h — internals of the distributed RDM shared by rdm.c (parameters, plan, driver),
 * rdm_prep.c (reading the local block, per-vertex standardisation, rank transform, per-image
 * centring and normalisation), rdm_gram.c (Gram matrix, distances, row slabs, mirroring) and
 * rdm_subject.c (the reader over a subject's lh/rh .npy files). Also the BLACS / PBLAS
 * prototypes, which Debian's libscalapack-openmpi exports without a header. */
#ifndef RDML_RDM_PRIV_H
#define RDML_RDM_PRIV_H

#include <mpi.h>
#include <stdint.h>

#include "rdml/core.h"
#include "rdml/rdm.h"

/* ---- BLACS / PBLAS / ScaLAPACK (Fortran calling convention, 32-bit integers) ---- */
int Csys2blacs_handle(MPI_Comm comm);
void Cfree_blacs_system_handle(int handle);
void Cblacs_gridinit(int *ctxt, const char *order, int nprow, int npcol);
void Cblacs_gridmap(int *ctxt, int *usermap, int ldumap, int nprow, int npcol);
void Cblacs_gridinfo(int ctxt, int *nprow, int *npcol, int *myrow, int *mycol);
void Cblacs_gridexit(int ctxt);
void descinit_(int *desc, const int *m, const int *n, const int *mb, const int *nb,
               const int *irsrc, const int *icsrc, const int *ictxt, const int *lld, int *info);
void pssyrk_(const char *uplo, const char *trans, const int *n, const int *k, const float *alpha,
             const float *a, const int *ia, const int *ja, const int *desca, const float *beta,
             float *c, const int *ic, const int *jc, const int *descc);
void psgemr2d_(const int *m, const int *n, const float *a, const int *ia, const int *ja,
               const int *desca, float *b, const int *ib, const int *jb, const int *descb,
               const int *ictxt);

/* K-dimension chunk (vertices) whose float32 Gram is accumulated in double: see docs/rdm.md
 * "Accuracy" for the measurement behind the value. */
#ifndef RDM_KCHUNK
#define RDM_KCHUNK 2048
#endif

/* The 1 x P grid's vertex chunks: global, fixed by v alone (never by the rank count), so
 * that the RDM is the same bits on any number of ranks: max(12, ceil(v / RDM_KCHUNK)) chunks
 * of nearly equal width (a multiple of 8, at least 256), so that 2, 3, 4 or 6 ranks get the
 * same number of chunks when v is below 12 RDM_KCHUNK; chunk c is vertices [c w, (c+1) w),
 * each rank holds a contiguous run of whole chunks, and every per-chunk result (a float32
 * partial Gram, a row sum) is combined with the others exactly or in chunk order
 * (docs/rdm.md "Determinism"). */
static inline int64_t rdm_chunk_width(int64_t v) {
    const int64_t want = (v + RDM_KCHUNK - 1) / RDM_KCHUNK, nch = want > 12 ? want : 12;
    int64_t w = ((v + nch - 1) / nch + 7) / 8 * 8;
    if (w < 256) w = 256;
    if (w > RDM_KCHUNK) w = RDM_KCHUNK;
    return w;
}
static inline int64_t rdm_nchunks(int64_t v) {
    const int64_t w = rdm_chunk_width(v);
    return (v + w - 1) / w;
}

/* Where one rank stands in the computation. Logical grid pr x pc over (images x vertices),
 * rank = myrow*pc + mycol. The local block is row-major mloc x nloc (ld = nloc), which is the
 * column-major local block of the transposed V x N matrix S = A^T; ScaLAPACK therefore sees
 * a pc x pr BLACS grid (column-major order, so BLACS coordinates are (mycol, myrow)) and
 * computes A A^T as PSSYRK('U', 'T') of S. */
typedef struct rdm_layout {
    MPI_Comm comm;       /* the caller's communicator (not owned) */
    MPI_Comm rowcomm;    /* ranks of my process row (same images, other vertices), by mycol */
    MPI_Comm colcomm;    /* ranks of my process column (same vertices, other images), by myrow */
    int rank, nranks;
    int pr, pc, myrow, mycol;
    int sys, ctxt;       /* BLACS system handle and grid context */
    int64_t n, v;        /* global images x vertices */
    int64_t b;           /* block-cyclic block size (rows of images, columns of vertices) */
    int64_t mloc, nloc;  /* local rows (images) and columns (vertices) */
    int64_t *gcols;      /* nloc global vertex indices of my local columns, ascending */
    int64_t *grows;      /* mloc global image indices of my local rows, ascending */
} rdm_layout;

/* Per-image statistics every rank holds for all n images after preparation. */
typedef struct rdm_stats {
    /* Euclidean metrics only (else NULL): rows are centred (after the column centring), so
     * |a - b|^2 = |a'|^2 + |b'|^2 - 2 a'.b' + V (mean_a - mean_b)^2 with smaller norms. */
    double *sq;   /* n squared norms of the centred rows */
    double *mean; /* n row means that were removed */
    double v;     /* vertex count */
} rdm_stats;

/* Grid and block the parameters resolve to for nranks ranks (auto rules in docs/rdm.md).
 * Returns 0 when the requested grid does not multiply to nranks. */
int rdm_resolve(int64_t n, int64_t v, int nranks, const rdml_rdm_params *p, int *pr, int *pc,
                int64_t *b);

/* Row slab of rank r: rdml_part_block of n over nranks. */
static inline void rdm_slab(int64_t n, int r, int nranks, int64_t *lo, int64_t *hi) {
    rdml_part_block(n, r, nranks, lo, hi);
}

/* ---- rdm_prep.c ---- */
/* Collective. Reads my block into a (row-major mloc x nloc), checks
 * that every value is finite (error names global row and column), standardises vertices if
 * asked, rank-transforms images for spearman, and centres / normalises rows for the metric.
 * Fills st (allocated here). On a zero-variance image with zero_variance_error, fails with
 * RDML_EDATA on every rank and sets *bad_row to the lowest such global image row (else -1). */
int rdm_prepare(rdml_ctx *ctx, const rdm_layout *L, rdml_rdm_reader read, void *user,
                const rdml_rdm_params *p, float *a, rdm_stats *st, int64_t *bad_row,
                int64_t *nbad);
void rdm_stats_free(rdm_stats *st);

/* Average ranks (1-based, ties get the mean of their positions, as scipy.stats.rankdata's
 * default) of the finite values x[0..n) into r (r may equal x). scratch holds 4n uint32.
 * Exact in float32 for n < 2^22. */
void rdm_rank_avg(const float *x, int64_t n, float *r, uint32_t *scratch);

/* ---- rdm_gram.c ---- */
/* Collective. From the prepared block a (freed here, *a set to NULL) to the finished RDM in
 * row slabs: Gram matrix (K chunks accumulated in double), distances, exact zero diagonal,
 * mirrored upper triangle. out->rows is allocated here. */
int rdm_gram_to_slabs(rdml_ctx *ctx, const rdm_layout *L, const rdml_rdm_params *p,
                      float **a, const rdm_stats *st, rdml_rdm *out);

/* Distance from a Gram entry g between prepared images i and j. */
double rdm_distance(rdml_rdm_metric m, double g, const rdm_stats *st, int64_t i, int64_t j);

/* ---- rdm_q16.c: the int16 Gram engine ([rdm] arithmetic = int16, 1 x P grid) ---- */
/* Rows of an automatic int16 Gram panel: 85 whole tiles of 12 rows (rdm_q16.c). */
#define RDM_Q16_PANEL_ROWS 1020

typedef struct rdm_q16 {
    int16_t *q;              /* n x ld rounded rows (my vertices, zero-padded to ld) */
    int64_t n, ld;
    double *rn;              /* n: 1 / sqrt(sum of q^2 over all vertices), 0 for a zero row */
    int vnni;                /* 1: the AVX-512 VNNI kernel, 0: the generic C one */
    const char *kernel_name;
} rdm_q16;
/* Bytes of one thread's packing buffers in rdm_q16_panel. */
size_t rdm_q16_thread_bytes(void);
/* Collective. Rounds the prepared block *a (freed, *a set to NULL) to int16 rows and picks
 * the kernel (warning once per process when the CPU has no VNNI and none was forced). */
int rdm_q16_quantize(rdml_ctx *ctx, const rdm_layout *L, float **a, rdm_q16 *q);
void rdm_q16_free(rdm_q16 *q);
/* acc[(i - g0) wd + j] += the exact integer Gram entry of my vertices, for the panel rows
 * g0 <= i < g1 and at least every j <= i (some j > i too, which the caller ignores). */
int rdm_q16_panel(rdml_ctx *ctx, const rdm_q16 *q, int64_t g0, int64_t g1, double *acc,
                  int64_t wd, int nthreads);
/* Threads of the int16 kernel: the caller's BLAS thread count. */
int rdm_q16_threads(void);

/* ---- rdm.c ---- */
/* The core of rdml_rdm_compute_from; on a zero-variance error *bad_row names the image row
 * (so rdml_rdm_compute can name the file and NSD id), -1 otherwise. */
int rdm_compute_core(rdml_ctx *ctx, MPI_Comm comm, int64_t n, int64_t v, rdml_rdm_reader read,
                     void *user, const rdml_rdm_params *p, rdml_rdm *out, int64_t *bad_row);

/* Rows of one Gram panel (1 x P path) and of one mirror chunk: about 2^21 entries, 512..1024. */
int64_t rdm_panel_rows(int64_t n, const rdml_rdm_params *p);

/* Human-readable byte count: "1.9 GB", "310 MB", "12 kB". */
void rdm_fmt_bytes(char *buf, size_t len, double bytes);

#endif
