/* rdml/synth.h — a synthetic dataset in the Algonauts 2023 layout with planted structure.
 *
 * Usage:
 *
 *   rdml_synth_params p;
 *   rdml_synth_defaults(&p);
 *   p.subjects = 2; p.images = 600;
 *   RDML_TRY(rdml_synth_write(ctx, comm, &p, "/tmp/synth"));   // collective
 *
 * See docs/synth.md for the generative model. Everything is a pure function of (seed, ...):
 * an image's pixels depend only on (seed, NSD id), so an NSD id shared by several subjects
 * is the same picture; outputs are identical for any number of ranks.
 */
#ifndef RDML_SYNTH_H
#define RDML_SYNTH_H

#include <mpi.h>
#include <stdint.h>

#include "rdml/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rdml_synth_params {
    int64_t subjects;       /* number of subjects, subj01..subjNN (1..8) */
    int64_t images;         /* training images of subject 1 (others may vary, see vary) */
    int64_t test_images;    /* test-split images per subject (no fMRI, as in the release) */
    int64_t image_size;     /* PNG width = height in pixels (real: 425) */
    int64_t lh_vertices;    /* lh challenge-space vertices of subject 1 (real: 19004) */
    int64_t rh_vertices;    /* rh vertices of subject 1 (real: 20544) */
    int vary;               /* 1: later subjects get fewer images/vertices, as in the release */
    double shared_fraction; /* share of NSD ids common to all subjects, [0, 1] */
    double color_fraction;  /* share of images dominated (>= 70% of pixels) by pure R, G or B */
    double noise;           /* measurement noise std relative to signal std (>= 0) */
    int fsaverage;          /* 1: also write the 163842-vertex fsaverage-space masks */
    uint64_t seed;
} rdml_synth_params;

void rdml_synth_defaults(rdml_synth_params *p);
/* A readable message if a parameter is out of range (like libsvm's svm_check_parameter). */
int rdml_synth_check(rdml_ctx *ctx, const rdml_synth_params *p);
/* Collective. Write the dataset under root (created if absent; refuses to overwrite an
 * existing subjNN folder). Ranks split the images; the .npy files are created by rank 0 and
 * filled by all ranks with pwrite. */
int rdml_synth_write(rdml_ctx *ctx, MPI_Comm comm, const rdml_synth_params *p,
                     const char *root);

#ifdef __cplusplus
}
#endif
#endif
