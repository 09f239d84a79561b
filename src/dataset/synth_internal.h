/* src/dataset/synth_internal.h — private pieces of the synthetic dataset generator shared by
 * synth.c (parameters, NSD-id plan, the collective writer), synth_render.c (scenes and
 * pixels), synth_model.c (image features, ROI layout, vertex tuning, the fMRI model) and the
 * unit test. Nothing here is public API; docs/synth.md describes the model in equations.
 */
#ifndef RDML_DATASET_SYNTH_INTERNAL_H
#define RDML_DATASET_SYNTH_INTERNAL_H

#include <stdint.h>

#include "rdml/core.h"
#include "rdml/png.h"
#include "rdml/synth.h"

/* ---- scenes (synth_render.c) ---- */

/* Object categories planted in the scenes; synth_truth/subjNN_category.npy holds the
 * category of each image's primary (first, largest) object. */
enum {
    SYN_CAT_FACE = 0,
    SYN_CAT_BODY,
    SYN_CAT_PLACE,
    SYN_CAT_WORD,
    SYN_CAT_CIRCLE,
    SYN_CAT_RECT,
    SYN_CAT_TRIANGLE,
    SYN_NCAT
};
/* Backgrounds. */
enum { SYN_BG_GRADIENT = 0, SYN_BG_STRIPES, SYN_BG_CHECKER, SYN_BG_NOISE, SYN_BG_HORIZON, SYN_NBG };

#define SYN_MAXOBJ 4
#define SYN_NLATENT 8 /* shared (subject-independent) latent factors per NSD id */

typedef struct syn_object {
    int category;        /* SYN_CAT_* */
    double cx, cy, r;    /* centre and radius, fractions of the image side (y down) */
    double ext;          /* radius of a disk that contains the whole object */
    double angle;        /* rotation (rectangles, triangles), radians */
    double aspect;       /* rectangles: half-height / half-width */
    int texture;         /* 0 solid, 1 stripes, 2 dots */
    double tex_angle;    /* stripe orientation, radians */
    double tex_freq;     /* texture cycles per object diameter */
    uint8_t col[3];      /* main colour */
    uint8_t col2[3];     /* texture colour */
    uint64_t detail;     /* seed of the small details (glyph strokes, limb pose) */
} syn_object;

typedef struct syn_scene {
    int64_t nsd;
    int planted_color;   /* 0 none, 1 red, 2 green, 3 blue */
    int bg_type;         /* SYN_BG_* */
    double bg_angle;     /* radians */
    double bg_freq;      /* cycles per image side */
    double horizon;      /* SYN_BG_HORIZON: horizon height as a fraction from the top */
    uint8_t bg_a[3], bg_b[3];
    int attempt;         /* colour re-draws needed to keep an unplanted image undominated */
    int nobj;
    syn_object obj[SYN_MAXOBJ];
    double latent[SYN_NLATENT];
    /* measured on the rendered pixels */
    int64_t color_count[4]; /* pixels nearest to: [0] none (tie), [1] red, [2] green, [3] blue */
    int color_class;        /* paper's rule: dominant fraction >= 0.7, else 0 */
    double cover;           /* fraction of pixels covered by objects */
} syn_scene;

/* Render the scene of NSD id `nsd` (a pure function of seed, nsd, color_fraction and size)
 * into im (allocated here, RGB, size x size) and describe it in sc. Planted-colour images
 * are guaranteed to have >= 72% of their pixels nearest to the planted pure colour; the
 * others have < 68% of their classified pixels nearest to any one pure colour. */
int syn_render(rdml_ctx *ctx, uint64_t seed, double color_fraction, int64_t nsd, int64_t size,
               rdml_image *im, syn_scene *sc);

/* ---- features and the fMRI model (synth_model.c) ---- */

#define SYN_GRID 6 /* receptive-field positions per side */
#define SYN_NORI 4 /* orientations 0, 45, 90, 135 degrees */
#define SYN_NSF 2  /* spatial frequencies: 0 low, 1 high */
#define SYN_NENERGY (SYN_GRID * SYN_GRID * SYN_NORI * SYN_NSF)
enum {
    SYN_F_ENERGY = 0,                    /* log(1 + 20 E) at (gy, gx, ori, sf) */
    SYN_F_COLOR = SYN_NENERGY,           /* mean R,G,B; chromaticity r,g; saturation;
                                            nearest-pure-colour fractions R,G,B;
                                            dominant-colour one-hot R,G,B */
    SYN_F_CAT = SYN_F_COLOR + 12,        /* per category: sum of sqrt(area) of its objects */
    SYN_F_LAYOUT = SYN_F_CAT + SYN_NCAT, /* horizon height (0 none), openness, clutter */
    SYN_F_LUM = SYN_F_LAYOUT + 3,        /* mean gray, gray std (contrast), mean |gradient| */
    SYN_F_LATENT = SYN_F_LUM + 3,        /* shared latent factors */
    SYN_NFEAT = SYN_F_LATENT + SYN_NLATENT
};
static inline int syn_energy_index(int gy, int gx, int ori, int sf) {
    return SYN_F_ENERGY + ((gy * SYN_GRID + gx) * SYN_NORI + ori) * SYN_NSF + sf;
}

/* Gabor quadrature filter bank for the downsampled gray image. */
typedef struct syn_fbank {
    int64_t D;     /* side of the downsampled gray image */
    int R;         /* kernel radius in pixels: kernels are (2R+1)^2 */
    double *env;   /* (2R+1)^2 Gaussian envelope */
    double *kc;    /* (SYN_NORI*SYN_NSF, (2R+1)^2) even (cosine) kernels */
    double *ks;    /* odd (sine) kernels */
} syn_fbank;
int syn_fbank_make(rdml_ctx *ctx, int64_t image_size, syn_fbank *fb);
void syn_fbank_free(syn_fbank *fb);
/* The SYN_NFEAT features of a rendered image. Pure; `work` holds >= 2 * D * D doubles. */
void syn_features(const syn_fbank *fb, const rdml_image *im, const syn_scene *sc, double *work,
                  double *f);

/* ROI classes in file order (prf-visualrois floc-bodies floc-faces floc-places floc-words
 * streams) and their names exactly as in the release's mapping files. */
#define SYN_NCLASS 6
const char *syn_class_tag(int cls);
int syn_class_nroi(int cls);                  /* codes 1..n */
const char *syn_roi_name(int cls, int code);  /* code 0 = "Unknown" */

#define SYN_FSAVERAGE 163842

/* Labels of one hemisphere of one subject. */
typedef struct syn_hemi {
    int64_t nv;
    int64_t *label[SYN_NCLASS]; /* nv labels per class (codes as in the mapping) */
    int64_t *fsavg;             /* nv ascending fsaverage vertex indices */
} syn_hemi;
/* Deterministic ROI layout of (seed, subject, hemi) with nv vertices (see docs/synth.md). */
int syn_hemi_make(rdml_ctx *ctx, uint64_t seed, int subject, int hemi, int64_t nv, syn_hemi *h);
void syn_hemi_free(syn_hemi *h);
/* Which (class, code) is forced empty in (subject, hemi), or class -1 when none. */
void syn_empty_roi(int subject, int *hemi, int *cls, int *code);

#define SYN_KMAX 12   /* features a vertex reads */
#define SYN_NNOISE 8  /* brain-wide structured noise factors per trial */
#define SYN_NOISE_SHARED 0.5 /* share of the noise variance that is structured */
typedef struct syn_tuning {
    int64_t nv;
    int32_t *idx;     /* (nv, SYN_KMAX) feature indices, unused slots have weight 0 */
    double *w;        /* (nv, SYN_KMAX) weights on standardised features */
    double *noise_sd; /* nv: measurement-noise std relative to the signal std */
    double *sig_inv;  /* nv: 1 / signal std over the subject's images (syn_tuning_scale) */
    double *noise_load; /* (nv, SYN_NNOISE) unit-norm loadings on the structured noise */
} syn_tuning;
int syn_tuning_make(rdml_ctx *ctx, uint64_t seed, int subject, int hemi, const syn_hemi *h,
                    double noise, syn_tuning *t);
void syn_tuning_free(syn_tuning *t);

/* Feature standardisation over a subject's N images: z = (f - mean) / std (std 0 -> z = 0),
 * and the correlation matrix C of z (SYN_NFEAT^2), all in a fixed order. */
typedef struct syn_fstats {
    double mean[SYN_NFEAT], sd[SYN_NFEAT];
    double *corr; /* SYN_NFEAT x SYN_NFEAT */
} syn_fstats;
int syn_fstats_make(rdml_ctx *ctx, const double *feat, int64_t n, syn_fstats *st);
void syn_fstats_free(syn_fstats *st);
/* Fill t->sig_inv from the feature correlations: var_v = w_v' C w_v. */
void syn_tuning_scale(syn_tuning *t, const syn_fstats *st);

/* Number of simulated repeats (1..3) of NSD id `nsd` for `subject`. */
int syn_repeats(uint64_t seed, int subject, int64_t nsd);

/* fMRI rows of one hemisphere: out (nrows, t->nv) float32. feat holds the raw features of
 * the rows (nrows, SYN_NFEAT); nsd their NSD ids. Pure: a row depends only on its inputs. */
void syn_fmri_rows(uint64_t seed, int subject, int hemi, const syn_tuning *t,
                   const syn_fstats *st, const double *feat, const int64_t *nsd, int64_t nrows,
                   float *out);

/* ---- the plan (synth.c) ---- */

typedef struct syn_subject_plan {
    int id;              /* 1-based */
    int64_t n;           /* training images */
    int64_t ntest;       /* test images */
    int64_t nv[2];       /* lh, rh vertices */
    int64_t *nsd;        /* n ascending NSD ids (row order) */
    int64_t *test_nsd;   /* ntest ascending NSD ids */
} syn_subject_plan;

typedef struct syn_plan {
    int nsub;
    int64_t nshared;
    syn_subject_plan sub[8];
} syn_plan;
int syn_plan_make(rdml_ctx *ctx, const rdml_synth_params *p, syn_plan *plan);
void syn_plan_free(syn_plan *plan);

#endif
