/* rdml/dataset.h — the Algonauts 2023 (NSD) dataset layout: subjects, images, ROIs, fMRI.
 *
 * Example:
 *
 *   #include "rdml/mpiutil.h"
 *
 *   // Each rank reads its contiguous block of subj01's images, V1 and hV4 vertices only.
 *   int read_block(rdml_ctx *ctx, MPI_Comm comm, const char *root, float **x, int64_t *nrows,
 *                  int64_t *ncols) {
 *       rdml_dataset *ds = NULL;
 *       rdml_subject *s = NULL;
 *       rdml_selection sel = {0};
 *       int64_t lo = 0, hi = 0;
 *       *x = NULL;
 *       int rc = rdml_dataset_open(ctx, root, &ds);              // e.g. "/data/algonauts_2023"
 *       if (!rc) rc = rdml_subject_open(ctx, ds, 1, &s);         // subj01
 *       if (!rc) rc = rdml_subject_select(ctx, s, "V1,hV4", &sel);  // V1 = V1v + V1d
 *       if (!rc) {
 *           rdml_part_block(rdml_subject_nimages(s), ctx->rank, ctx->nranks, &lo, &hi);
 *           *x = rdml_malloc(ctx, (size_t)((hi - lo) * sel.n + 1) * sizeof **x, "fMRI block");
 *           rc = *x ? rdml_subject_read_fmri(ctx, s, &sel, lo, hi, *x) : ctx->code;  // my rows,
 *       }                                                        // only sel's columns
 *       rc = rdml_agree(ctx, comm, rc);       // opening and reading are per rank: agree first
 *       if (!rc) rc = rdml_fmri_standardize(ctx, comm, hi - lo, sel.n, *x);  // collective
 *       *nrows = hi - lo;
 *       *ncols = sel.n;
 *       if (rc) {
 *           free(*x);
 *           *x = NULL;
 *       }
 *       rdml_selection_free(&sel);
 *       rdml_subject_close(&s);
 *       rdml_dataset_close(&ds);
 *       return rc;
 *   }
 *
 * The file layout is the Algonauts 2023 release's (docs/synth.md, "What is written", lists
 * every file, its dtype and shape). Column order of a selection: the union of the selected
 * vertices without duplicates, lh vertices first (ascending), then rh vertices (ascending,
 * numbered from n_lh). Opening is not collective (every rank reads
 * the small metadata itself); rdml_fmri_standardize is collective.
 */
#ifndef RDML_DATASET_H
#define RDML_DATASET_H

#include <mpi.h>
#include <stdint.h>

#include "rdml/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The six ROI classes: index, user-facing name, file tag. */
enum { RDML_ROI_VISUAL = 0, RDML_ROI_BODIES, RDML_ROI_FACES, RDML_ROI_PLACES, RDML_ROI_WORDS,
       RDML_ROI_STREAMS, RDML_NROICLASS };
const char *rdml_roi_class_name(int cls); /* "Visual", "Bodies", ..., "Streams" */
const char *rdml_roi_class_tag(int cls);  /* "prf-visualrois", "floc-bodies", ..., "streams" */
/* Class index of a user-facing name or file tag, case-insensitive ("faces", "floc-faces"), or -1. */
int rdml_roi_class_find(const char *name);

typedef struct rdml_dataset rdml_dataset;
typedef struct rdml_subject rdml_subject;

/* Open a dataset root: lists subjNN folders. Error if the root is missing or has none. */
int rdml_dataset_open(rdml_ctx *ctx, const char *root, rdml_dataset **out);
void rdml_dataset_close(rdml_dataset **ds);
int rdml_dataset_nsubjects(const rdml_dataset *ds);
int rdml_dataset_subject_id(const rdml_dataset *ds, int i); /* e.g. 1 for subj01 */
const char *rdml_dataset_root(const rdml_dataset *ds);

/* Open subject `id` (1 = subj01): image list (sorted names, NSD ids), fMRI headers, masks and
 * mappings. A missing subject is an error listing the available ones. Checked: image numbers
 * run 1..N and N equals the rows of both fMRI files (2-D, float); every mask has one label per
 * vertex of its hemisphere and every non-zero label is named in the class's mapping. A class
 * whose three files (mapping_<tag>.npy, {lh,rh}.<tag>_challenge_space.npy) are all missing is
 * absent: it has 0 ROIs and selecting it is an error; a class with only some of them is an
 * error here. Not collective. */
int rdml_subject_open(rdml_ctx *ctx, const rdml_dataset *ds, int id, rdml_subject **out);
void rdml_subject_close(rdml_subject **s);
int rdml_subject_id(const rdml_subject *s);
int64_t rdml_subject_nimages(const rdml_subject *s);
const char *rdml_subject_image_path(const rdml_subject *s, int64_t i); /* full path */
int64_t rdml_subject_nsd_id(const rdml_subject *s, int64_t i);
int64_t rdml_subject_nvert(const rdml_subject *s, int hemi); /* hemi 0 = lh, 1 = rh */
int64_t rdml_subject_ntest(const rdml_subject *s); /* test_split images (0 when absent) */
const char *rdml_subject_dir(const rdml_subject *s); /* ROOT/subjNN */
int rdml_subject_class_present(const rdml_subject *s, int cls); /* 0: no mask files */
/* ROIs of a class: count, and per ROI its code, name and vertex count per hemisphere. */
int rdml_subject_nrois(const rdml_subject *s, int cls);
const char *rdml_subject_roi_name(const rdml_subject *s, int cls, int r);
int64_t rdml_subject_roi_code(const rdml_subject *s, int cls, int r);
int64_t rdml_subject_roi_nvert(const rdml_subject *s, int cls, int r, int hemi);

/* What `rdmlearn info ROOT` prints: per subject its image counts (train, test), lh/rh vertex
 * counts, a table of every ROI of every class with code and vertex count per hemisphere, and
 * the paper's unions. A subject that fails to open is printed as an error and the others are
 * still described; the return is then that error ("k of n subjects could not be opened"). */
int rdml_dataset_describe(rdml_ctx *ctx, const rdml_dataset *ds, FILE *out);

typedef struct rdml_selection {
    char *spec;    /* the spec it came from, normalised (e.g. "V1,hV4") */
    int64_t n;     /* number of columns */
    int64_t n_lh;  /* how many of them are lh vertices (the first n_lh) */
    int64_t *cols; /* n global column indices: lh j -> j, rh j -> n_lh_total + j */
} rdml_selection;

/* Parse a vertex selection: "all"; a comma list of ROI names (exact names from the mapping
 * files, plus the paper's unions V1 = V1v+V1d, V2 = V2v+V2d, V3 = V3v+V3d, FBA = FBA-1+FBA-2,
 * FFA = FFA-1+FFA-2, VWFA = VWFA-1+VWFA-2); "class:Faces" (every vertex with a non-zero
 * label in that class; the class name is case-insensitive, the file tag also works); mixed
 * lists allowed. A union is offered when at least one of its parts exists. Names are
 * case-sensitive; an unknown name is an error listing the valid ones and the nearest. An empty
 * result is an error. The normalised spec trims items, spells classes "class:Faces", drops
 * repeats and empty items, and is "all" when "all" is among the items. On error *out is
 * zeroed (rdml_selection_free is still safe). */
int rdml_subject_select(rdml_ctx *ctx, const rdml_subject *s, const char *spec,
                        rdml_selection *out);
void rdml_selection_free(rdml_selection *sel);

/* Read rows [row_lo, row_hi) of the selected columns into out (row-major,
 * (row_hi - row_lo) x sel->n floats). Reads only those rows from both hemisphere files. */
int rdml_subject_read_fmri(rdml_ctx *ctx, const rdml_subject *s, const rdml_selection *sel,
                           int64_t row_lo, int64_t row_hi, float *out);

/* Collective. StandardScaler over images: each rank holds nrows consecutive images (rows) of
 * the same ncols columns; columns are centred to mean 0 and scaled to population std 1 over
 * all ranks' rows (sums in double, two passes). Zero-variance columns become 0 (sklearn
 * keeps scale 1 for them). */
int rdml_fmri_standardize(rdml_ctx *ctx, MPI_Comm comm, int64_t nrows, int64_t ncols,
                          float *x);

#ifdef __cplusplus
}
#endif
#endif
