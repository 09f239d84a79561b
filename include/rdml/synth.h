/* rdml/synth.h — a synthetic dataset in the Algonauts 2023 layout with planted structure.
 *
 * Example:
 *
 *   int make_data(rdml_ctx *ctx, MPI_Comm comm) {
 *       rdml_synth_params p;
 *       rdml_synth_defaults(&p);
 *       p.subjects = 2;
 *       p.images = 600;
 *       return rdml_synth_write(ctx, comm, &p, "/tmp/synth");  // collective
 *   }
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

struct rdml_config;

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
    const char *provenance; /* text stored as ROOT/synth_truth/config.ini (the resolved
                               configuration), or NULL; not owned */
} rdml_synth_params;

void rdml_synth_defaults(rdml_synth_params *p);
/* Fill p from the [synth] section and run.seed of a resolved configuration (not collective).
 * Starts from rdml_synth_defaults, so keys the schema lacks keep their defaults. */
int rdml_synth_from_config(rdml_ctx *ctx, const struct rdml_config *cfg, rdml_synth_params *p);
/* A readable message if a parameter is out of range (like libsvm's svm_check_parameter). */
int rdml_synth_check(rdml_ctx *ctx, const rdml_synth_params *p);
/* Collective. Write the dataset under root (created if absent; refuses to overwrite an
 * existing subjNN folder). Ranks split the images; the .npy files are created by rank 0 and
 * filled by all ranks with pwrite. Also writes root/synth_truth/subjNN_{category,color}.npy
 * and subjNN_test_{category,color}.npy (int64 per image: primary object category 0..6 =
 * face, body, place, word, circle, rectangle, triangle; colour class 0 none, 1 red, 2 green,
 * 3 blue by rdml_synth_color_class). Built in root.tmp-<pid> (or root/.synth-tmp-<pid> when
 * root exists) and renamed into place at the end, so a subjNN folder that exists is
 * complete; on error every rank returns the same status and the temporary folder is
 * removed. All ranks must share the filesystem. Output bytes do not depend on the number of
 * ranks. */
int rdml_synth_write(rdml_ctx *ctx, MPI_Comm comm, const rdml_synth_params *p,
                     const char *root);

/* The paper's colour rule, as the generator checks it: each RGB pixel goes to the nearest of
 * pure red (255,0,0), green (0,255,0) and blue (0,0,255) in Euclidean distance, which is the
 * channel holding the strict maximum (ties: unclassified). The image's class is the colour
 * with the most pixels if that count is >= 70% of all pixels, else 0. Returns 0 none,
 * 1 red, 2 green, 3 blue; *fraction (may be NULL) = that colour's count / npix. Not
 * collective, pure. */
int rdml_synth_color_class(const uint8_t *rgb, int64_t npix, double *fraction);

#ifdef __cplusplus
}
#endif
#endif
