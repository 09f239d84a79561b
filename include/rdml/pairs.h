/* rdml/pairs.h — image pair sets with labels (the paper's protocol) and image-disjoint folds.
 *
 * Example:
 *
 *   // rdm: an n x n RDM (float, row-major). Pairs of the paper's protocol, then 5 folds.
 *   int folds(rdml_ctx *ctx, int64_t n, const float *rdm, uint64_t seed) {
 *       rdml_pairs_params pp;
 *       rdml_pairs_defaults(&pp);                         // extremes, K = 50
 *       pp.threshold = 1.0;
 *       pp.seed = seed;
 *       rdml_pairs P;
 *       RDML_TRY(rdml_pairs_build(ctx, &pp, n, rdm, NULL, &P));
 *       rdml_split_params sp;
 *       rdml_split_defaults(&sp);                         // 5-fold over images
 *       rdml_split S = {0};
 *       int rc = rdml_split_make(ctx, &sp, n, &P, &S);
 *       for (int64_t f = 0; f < S.nfolds && !rc; f++) {
 *           int64_t *tr, ntr, *te, nte;                   // indices into P
 *           rc = rdml_split_fold(ctx, &S, &P, f, &tr, &ntr, &te, &nte);
 *           if (rc) break;
 *           printf("fold %lld: %lld train, %lld test pairs\n", (long long)f, (long long)ntr,
 *                  (long long)nte);
 *           free(tr);
 *           free(te);
 *       }
 *       rdml_split_free(&S);
 *       rdml_pairs_free(&P);
 *       return rc;
 *   }
 *
 * Everything is a pure function of (inputs, seed): no rank, no global state, so every rank
 * builds the same pairs and folds. Nothing here is collective. Image indices are RDM rows.
 */
#ifndef RDML_PAIRS_H
#define RDML_PAIRS_H

#include <stdint.h>

#include "rdml/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum rdml_pairs_set {
    RDML_PAIRS_ALL = 0,    /* every (i, j) with i < j */
    RDML_PAIRS_EXTREMES,   /* per image i: its k lowest, then its k highest partners j (ordered) */
    RDML_PAIRS_BALANCED,   /* extremes, then per image up to mid_count partners in [mid_lo, mid_hi] */
    RDML_PAIRS_COLORS,     /* two colour classes equalised to m images each, listed colour a
                            * first: every pair (s < t) of that list (a-b pairs: a image first) */
    RDML_PAIRS_PERCENTILE  /* all i < j with value <= pct_lo-th or >= pct_hi-th percentile */
} rdml_pairs_set;

enum { RDML_COLOR_NONE = -1, RDML_COLOR_RED = 0, RDML_COLOR_GREEN, RDML_COLOR_BLUE, RDML_NCOLORS };

typedef struct rdml_pairs_params {
    rdml_pairs_set set;
    int64_t k;             /* extremes/balanced: partners per side and image (paper: 50) */
    double mid_lo, mid_hi; /* balanced: the mid-range band of RDM values (paper: 0.85, 1.15) */
    int64_t mid_count;     /* balanced: band partners sampled per image; 0 = floor(k / 0.3) (166) */
    double pct_lo, pct_hi; /* percentile: bands in percent, numpy's linear interpolation */
    int color_a, color_b;  /* colors: RDML_COLOR_* of the two classes (paper: red, blue) */
    int dedup;             /* drop a repeated ordered pair (the first occurrence stays) */
    int symmetric;         /* (i,j) and (j,i) are one pair: stored as (min, max), then deduplicated */
    int continuous;        /* label = RDM value instead of 0/1 */
    double threshold;      /* binary labels: 1 (dissimilar) when value > threshold */
    uint64_t seed;         /* run.seed: the balanced band sample */
} rdml_pairs_params;

void rdml_pairs_defaults(rdml_pairs_params *p);

typedef struct rdml_pairs {
    int64_t n;       /* P */
    int64_t *ij;     /* P x 2: image rows (a, b) of each pair, in construction order */
    double *value;   /* P: RDM[a][b] */
    double *label;   /* P: 0/1 (binary) or the value (continuous) */
    int continuous;
    int64_t n_images_used; /* colors: images kept per colour (after equalising); else 0 */
} rdml_pairs;

/* Build a pair set from an n x n RDM (row-major, float). colors: n RDML_COLOR_* classes of
 * the images, needed for RDML_PAIRS_COLORS only (else may be NULL); the colour set is the
 * paper's: the first m images of color_a, then the first m of color_b (image order, m the
 * smaller count), and every pair (s < t) of that list, so an a-b pair is (a image, b image). Errors: k >= n, a colour
 * with no images (naming both colours' counts), an empty result, a non-finite RDM value
 * (naming i, j). On error *out is zeroed. */
int rdml_pairs_build(rdml_ctx *ctx, const rdml_pairs_params *p, int64_t n, const float *rdm,
                     const int *colors, rdml_pairs *out);
void rdml_pairs_free(rdml_pairs *p);

/* Number of pairs of each label (binary sets); continuous sets count value > threshold. */
void rdml_pairs_count(const rdml_pairs *p, int64_t *n0, int64_t *n1);

/* The paper's colour rule (classify_images_rgb): each pixel goes to the nearest pure colour
 * (red 255,0,0, green, blue; squared RGB distance), a tie between the nearest two leaves it
 * unclassified; the image takes the colour with the LARGEST share of all its pixels (the
 * first of red, green, blue on a tie) when that share is >= `fraction`, else
 * RDML_COLOR_NONE. rgb: npix x 3. frac (may be NULL) gets the three colours' shares. */
int rdml_pairs_color_of(const uint8_t *rgb, int64_t npix, double fraction, double frac[3]);
/* The class from the three shares, as rdml_pairs_color_of decides it. */
int rdml_pairs_color_class(const double frac[3], double fraction);
/* "red" / "green" / "blue" -> RDML_COLOR_*, -1 when unknown (case-insensitive). */
int rdml_color_parse(const char *name);
const char *rdml_color_name(int color);
/* "all", "extremes", ... -> set; -1 when unknown. */
int rdml_pairs_set_parse(const char *name);
const char *rdml_pairs_set_name(rdml_pairs_set s);

/* ---- splits ---- */
typedef enum rdml_split_scheme {
    RDML_SPLIT_KFOLD = 0, /* K folds over images (shuffled); pairs across folds are dropped */
    RDML_SPLIT_HOLDOUT,   /* one train/test split over images (ceil(test_size * n) test images) */
    RDML_SPLIT_PAIRS      /* K folds over pairs: an image is on both sides (leaks; flagged) */
} rdml_split_scheme;

typedef struct rdml_split_params {
    rdml_split_scheme scheme;
    int64_t folds;        /* kfold, pairs: K >= 2 */
    double test_size;     /* holdout: fraction of images in the test set, in (0, 1) */
    int allow_leakage;    /* must be 1 for RDML_SPLIT_PAIRS */
    uint64_t seed;        /* run.seed */
} rdml_split_params;

void rdml_split_defaults(rdml_split_params *p);

typedef struct rdml_split {
    rdml_split_scheme scheme;
    int64_t nfolds;    /* folds evaluated (1 for holdout) */
    int64_t nunits;    /* images (kfold, holdout) or pairs (pairs) */
    int64_t *fold;     /* nunits: the fold in which a unit is tested; -1 = never (holdout train) */
} rdml_split;

/* Assign images (or pairs) to folds from the seed (stream RDML_STREAM_FOLDS): a permutation,
 * then sklearn KFold's sizes (the first n % K folds one larger) or train_test_split's
 * ceil(test_size * n) test units. Errors: fewer images than folds, a test or training side
 * that would be empty, the pair scheme without allow_leakage. */
int rdml_split_make(rdml_ctx *ctx, const rdml_split_params *p, int64_t nimages,
                    const rdml_pairs *pairs, rdml_split *out);
/* Pairs of fold f: test = both images in fold f (pair scheme: the pair is), train = neither
 * image in fold f. *train and *test are malloc'd index lists into pairs (ascending). A side
 * with no pairs is RDML_EDATA naming the fold and the image counts. */
int rdml_split_fold(rdml_ctx *ctx, const rdml_split *s, const rdml_pairs *pairs, int64_t f,
                    int64_t **train, int64_t *ntrain, int64_t **test, int64_t *ntest);
void rdml_split_free(rdml_split *s);
const char *rdml_split_scheme_name(rdml_split_scheme s);

#ifdef __cplusplus
}
#endif
#endif
