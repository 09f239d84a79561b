/* Inside the encode stage (encode.c, enc_*.c): its options and the predicted RDM of a
 * fold. docs/encode.md describes the stage. */
#ifndef RDML_ENC_PRIV_H
#define RDML_ENC_PRIV_H

#include <mpi.h>
#include <stdint.h>

#include "rdml/core.h"
#include "rdml/pairs.h"
#include "rdml/rdm.h"

enum { ENC_LOO = 0, ENC_KFOLD = 1 };

typedef struct enc_opts {
    char **embeddings;      /* encode.embeddings; NULL = every embedding of the subject */
    int nemb;
    double *alphas;         /* the penalty grid, ascending as given */
    int nalpha;
    int mode;               /* ENC_LOO / ENC_KFOLD */
    int64_t inner_folds;
    int std_features;       /* encode.standardize_features */
    int standardize;        /* data.standardize: z-score vertices on the training images */
    int64_t block;          /* vertices per block */
    rdml_rdm_metric metric; /* rdm.metric: the predicted RDM's */
    rdml_split_params sp;   /* [split] (scheme pairs -> image kfold, docs/encode.md) */
    const char *scheme_note;
    int64_t nimages;        /* data.images (0 = all) */
    int64_t pair_images;    /* pairs.images (0 = all) */
    uint64_t seed;
    double min_nc;          /* noise ceilings below this (percent) get no normalised accuracy */
} enc_opts;

/* Collective. The m x m predicted RDM of a fold's test images (metric o->metric) from the
 * predictions each rank holds: nblk of its vertex blocks, block k at pred[k] (m x w[k],
 * row-major), V vertices in all and nblocks_total blocks. The cross-vertex sums are
 * accumulated in 62-bit fixed point, so the result is the same bits for any number of
 * ranks. On rank 0 *rdm gets m x m floats (malloc'd), NULL elsewhere. spearman: each
 * image's predictions are rank-transformed over all vertices first (rows redistributed). */
int enc_pred_rdm(rdml_ctx *ctx, MPI_Comm comm, const enc_opts *o, int64_t m, int64_t V,
                 int64_t nblocks_total, int nblk, const int64_t *blk_lo, const int64_t *w,
                 float *const *pred, float **rdm);

#endif
