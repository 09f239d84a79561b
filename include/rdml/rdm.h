/* rdml/rdm.h — distributed representational dissimilarity matrices.
 *
 * Example:
 *
 *   #include "rdml/h5.h"
 *
 *   // Collective over comm: subj01's correlation RDM of a selection, written to an open file.
 *   int write_rdm(rdml_ctx *ctx, MPI_Comm comm, const rdml_subject *subj,
 *                 const rdml_selection *sel, rdml_h5 *h) {
 *       rdml_rdm_params p;
 *       rdml_rdm_defaults(&p);
 *       p.metric = RDML_RDM_CORRELATION;
 *       rdml_rdm r;
 *       RDML_TRY(rdml_rdm_compute(ctx, comm, subj, sel, 0, &p, &r));  // all images of subj
 *       // r.rows: this rank's rows [r.row_lo, r.row_hi) of the n x n RDM (rdml_part_block split)
 *       int rc = rdml_h5_write_rows_f32(ctx, h, "/subjects/subj01/rdm/V1", r.n, r.n, r.row_lo,
 *                                       r.row_hi - r.row_lo, r.rows);
 *       rdml_rdm_free(&r);
 *       return rc;
 *   }
 *
 * How: a pr x pc BLACS process grid over (images x vertices), block-cyclic; each rank reads
 * only its blocks of the .npy files; optional per-vertex standardisation (reductions along
 * process columns), per-image centring/normalisation (reductions along process rows, in
 * double); the Gram matrix in float32 BLAS over chunks of 2048 vertices accumulated in
 * double; distances from it (clamped, exact zero diagonal, exactly symmetric); the result in
 * contiguous row slabs. The auto grid is 1 x P: every rank holds all images and a share of
 * the vertices, runs SSYRK/SGEMM on its share panel by panel, and an MPI_Reduce sums each
 * panel onto the rank whose rows it is (no input moves, only the result). A grid with
 * pr > 1 uses ScaLAPACK's PSSYRK and PSGEMR2D. The input block is freed before the slabs
 * are mirrored, so peak memory stays near the input + output share (docs/rdm.md).
 * Results agree across rank counts and grid shapes within 1e-6 (relative for euclidean).
 */
#ifndef RDML_RDM_H
#define RDML_RDM_H

#include <mpi.h>
#include <stdint.h>

#include "rdml/core.h"
#include "rdml/dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum rdml_rdm_metric {
    RDML_RDM_CORRELATION = 0, /* 1 - Pearson r between images' vertex vectors (the paper's) */
    RDML_RDM_EUCLIDEAN,       /* ||x_i - x_j|| (the paper's alternative) */
    RDML_RDM_COSINE,          /* 1 - cos angle */
    RDML_RDM_SQEUCLIDEAN,     /* ||x_i - x_j||^2 */
    RDML_RDM_SPEARMAN         /* 1 - Spearman rho: rank-transform each image's vector, then Pearson */
} rdml_rdm_metric;

const char *rdml_rdm_metric_name(rdml_rdm_metric m); /* scipy's names: "correlation", ... */

/* The Gram matrix's arithmetic ([rdm] arithmetic). */
typedef enum rdml_rdm_arith {
    RDML_RDM_FLOAT32 = 0, /* float32 BLAS, chunks accumulated exactly in double */
    RDML_RDM_INT16        /* rows rounded to |q| <= 4095, exact integer Gram (rdm_q16.c) */
} rdml_rdm_arith;
const char *rdml_rdm_arith_name(rdml_rdm_arith a); /* "float32", "int16" */
int rdml_rdm_metric_parse(rdml_ctx *ctx, const char *name, rdml_rdm_metric *out);

typedef struct rdml_rdm_params {
    rdml_rdm_metric metric;
    int standardize;            /* z-score each vertex over the images first (StandardScaler) */
    int zero_variance_error;    /* 1: a constant image vector under correlation/cosine/spearman
                                   is an error naming the image; 0: its distances are 1
                                   (r taken as 0), documented policy */
    int64_t block;              /* block-cyclic block size (0 = auto: ceil(v / P) on a 1 x P
                                   grid, i.e. one contiguous block per rank; 64 when pr > 1) */
    int grid_rows, grid_cols;   /* process grid rows (image blocks) x columns (vertex blocks);
                                   0, 0 = auto = 1 x P (the fastest, see above); one of them 0
                                   = derived from the other and the rank count */
    int64_t max_bytes_per_rank; /* refuse (with the numbers) when the plan needs more than this
                                   per rank; 0 = MemAvailable / ranks on the node */
    rdml_rdm_arith arithmetic;  /* RDML_RDM_FLOAT32 (default) or RDML_RDM_INT16: rows rounded
                                   to 13-bit integers, exact integer Gram (about twice as fast
                                   on AVX-512 VNNI, half the memory, the same bits on any
                                   number of ranks and threads; correlations within ~1e-5,
                                   docs/rdm.md "Arithmetic"); correlation, cosine and spearman
                                   on the 1 x P grid only */
    int64_t panel_rows;         /* rows of one Gram panel (1 x P grid) and of one mirror chunk;
                                   <= 0 = auto (about 2^21 entries, 512..1024 rows); the result
                                   does not depend on it beyond rounding (tests use small
                                   values to cross panel and chunk edges) */
} rdml_rdm_params;

void rdml_rdm_defaults(rdml_rdm_params *p);

/* The result on each rank: contiguous rows [row_lo, row_hi) (rdml_part_block of n over the
 * communicator), row-major (row_hi - row_lo) x n float32. */
typedef struct rdml_rdm {
    int64_t n, row_lo, row_hi;
    float *rows;
} rdml_rdm;

/* Reads rows [r0, r1) x the given columns (global column indices of the N x V input) into
 * out (row-major (r1 - r0) x ncols). Called by every rank for its own blocks only. */
typedef int (*rdml_rdm_reader)(rdml_ctx *ctx, void *user, int64_t r0, int64_t r1,
                               const int64_t *cols, int64_t ncols, float *out);

/* Collective. The n x n RDM of an n x v input read through `read`. Errors (zero-variance
 * image: "image row R has zero variance ..."; non-finite value: "input value at image row R,
 * vertex column C is NaN"; memory plan; read failure on any rank) are agreed on every rank,
 * and out->rows is NULL then. A stop request (SIGTERM, rdml_stop_requested) on any rank ends
 * the call on every rank with RDML_ECANCELLED while reading, after the reading, or before
 * the next Gram panel (vertex chunk on a 2-D grid): within about a second for the real
 * data's sizes. */
int rdml_rdm_compute_from(rdml_ctx *ctx, MPI_Comm comm, int64_t n, int64_t v,
                          rdml_rdm_reader read, void *user, const rdml_rdm_params *p,
                          rdml_rdm *out);

/* Collective. The RDM of a subject's selected vertices over its first nimages images
 * (0 = all). Messages name the subject and the image file. */
int rdml_rdm_compute(rdml_ctx *ctx, MPI_Comm comm, const rdml_subject *s,
                     const rdml_selection *sel, int64_t nimages, const rdml_rdm_params *p,
                     rdml_rdm *out);

/* Bytes per rank the plan needs for an n x v input on nranks ranks (input share, result,
 * ScaLAPACK workspace), for the memory check and for users planning a job. */
int64_t rdml_rdm_plan_bytes(int64_t n, int64_t v, int nranks, const rdml_rdm_params *p);

void rdml_rdm_free(rdml_rdm *r);

#ifdef __cplusplus
}
#endif
#endif
