/* algonauts_priv.h — the structs behind rdml_dataset / rdml_subject, shared by algonauts.c
 * (opening, listing, describe) and select.c (vertex selections, fMRI block reads). */
#ifndef RDML_ALGONAUTS_PRIV_H
#define RDML_ALGONAUTS_PRIV_H

#include <stdint.h>

#include "rdml/dataset.h"
#include "rdml/npy.h"

struct rdml_dataset {
    char *root; /* as given, without trailing '/' */
    int n;      /* subject folders found */
    int *ids;   /* n ids, ascending (1 = subj01) */
};

/* One ROI class of one subject: its ROIs (mapping entries with a non-zero code, ascending
 * code) and the challenge-space label of every vertex, per hemisphere. */
typedef struct rdml_roiclass {
    int present;         /* 0: none of its files exist (selecting it is an error) */
    int nroi;
    int64_t *codes;      /* nroi */
    char **names;        /* nroi, owned */
    int64_t *nvert[2];   /* nroi vertex counts, lh and rh */
    int64_t *labels[2];  /* nvert(hemi) labels (0 = Unknown) */
} rdml_roiclass;

struct rdml_subject {
    int id;
    char *dir;              /* ROOT/subjNN */
    int64_t nimg;           /* training images = fMRI rows */
    char **img;             /* nimg full paths, row order */
    int64_t *nsd;           /* nimg NSD ids (0-based) */
    int64_t ntest;          /* test_split/test_images/test-*.png (0 when absent) */
    rdml_npy fmri[2];       /* open lh/rh training fMRI files (headers only) */
    int64_t nv[2];          /* vertices per hemisphere */
    rdml_roiclass cls[RDML_NROICLASS];
};

/* "a/b" in fresh memory (NULL + ENOMEM recorded on failure). */
char *rdml_ds_join(rdml_ctx *ctx, const char *a, const char *b);

#endif
