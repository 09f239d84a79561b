/* rdml/stats.h — statistics of model-brain RDM comparisons on a pair list: scores, bootstrap
 * over images (and subjects) with percentile intervals for every model and the noise ceiling,
 * permutation tests of each model > 0, paired model comparisons (rsatoolbox's bootstrap pair
 * test), Benjamini-Hochberg / Bonferroni corrections. Resamples come from the counter RNG and
 * are distributed over the ranks of a communicator: identical results for any rank count.
 *
 * Example:
 *
 *   // Two subjects' brain RDM values b0, b1 and two models' values m0, m1 on P pairs
 *   // (pi[p], pj[p]) over n images (all n(n-1)/2 pairs here: a full RDM). Collective.
 *   int evaluate(rdml_ctx *ctx, MPI_Comm comm, int64_t n, int64_t P, const int64_t *pi,
 *                const int64_t *pj, const double *b0, const double *b1, const double *m0,
 *                const double *m1) {
 *       const double *brain[2] = {b0, b1}, *models[2] = {m0, m1};
 *       const char *names[2] = {"gabor", "pixels"};
 *       rdml_stats_data d = {0};
 *       d.n = n;
 *       d.npairs = P;
 *       d.pi = pi;
 *       d.pj = pj;
 *       d.nsubj = 2;
 *       d.brain = brain;
 *       d.nmodels = 2;
 *       d.models = models;
 *       d.model_names = names;
 *       rdml_stats_opts o;
 *       rdml_stats_opts_default(&o);      // spearman, 1000 bootstraps, 10000 permutations, 95%
 *       o.seed = 42;
 *       o.key = 7;                        // e.g. the subject x selection x fold number
 *       rdml_stats_result r;
 *       RDML_TRY(rdml_stats_evaluate(ctx, comm, &d, &o, &r));   // every rank gets r
 *       for (int k = 0; k < r.nmodels; k++)
 *           rdml_info(ctx, "%s: %.3f [%.3f, %.3f] p = %.4g", names[k], r.score[k],
 *                     r.ci_lo[k], r.ci_hi[k], r.perm_p[k]);
 *       rdml_info(ctx, "noise ceiling [%.3f, %.3f]; gabor - pixels: p = %.4g",
 *                 r.nc_lower, r.nc_upper, r.pair_p[0 * r.nmodels + 1]);
 *       double q[2];
 *       rdml_stats_fdr_bh(r.perm_p, 2, q);                     // across models (or more)
 *       rdml_stats_result_free(&r);
 *       return RDML_OK;
 *   }
 *
 * ## Data
 * P pairs (pi[p], pj[p]) over image indices 0 <= i, j < n, i != j (either orientation; a
 * full RDM is all n(n-1)/2 pairs). The "images" of the analysis are the distinct indices
 * the pairs touch, u of them, in ascending order (rdml_stats_images): bootstraps and
 * permutations act on those u images. S >= 1 brain value vectors brain[s][P] and M >= 1
 * model value vectors (models[k][P], or with models_per_subject models[k * S + s][P]: e.g.
 * a pair model trained per subject). Values are doubles; NaN is an error naming the vector
 * and the index.
 *
 * ## Score
 * score_k = mean over subjects s of compare(brain[s], model(k, s)) with the method
 * (rdml_rsa_spearman / pearson / kendall_tau_a of rdml/rsa.h: equal to scipy's spearmanr,
 * pearsonr and tau-a on the same vectors). A constant model vector is RDML_EDATA naming the
 * model (and subject); a constant brain vector names the subject.
 *
 * ## Noise ceiling (S >= 2)
 * rsatoolbox's boot_noise_ceiling on the pair list: the subjects' vectors are pooled as
 * rdml_rsa_pool says (RSATOOLBOX: z-scores for pearson, average ranks for spearman and
 * kendall; MEAN: raw values); upper = mean over subjects of compare(brain[s], pool of all),
 * lower = mean over subjects of compare(brain[s], pool of the others). For S = 1 it is
 * unavailable: nc_* are NaN and has_nc = 0.
 *
 * ## Bootstrap (rsatoolbox's eval_bootstrap_pattern / eval_bootstrap)
 * Sample b draws u images with replacement (rdml_stats_boot_images: counts c over the u
 * images). As rsatoolbox's subsample_pattern, the resampled RDM holds every pair of sampled
 * positions, and a pair whose two positions are the same image becomes NaN and is ignored:
 * so pair p enters c[i_p] * c[j_p] times. The comparison is computed on that expanded vector
 * without materialising it (weighted Pearson; Spearman with average ranks counted with
 * multiplicity; tau-a over the expanded entries, denominator N(N-1)/2 with N = sum of the
 * weights), equal to the materialised computation within ~1e-12. A sample with fewer than 3
 * distinct images is undefined (rsatoolbox's rule), as is one where any model's or subject's
 * expanded vector is constant: such a sample is dropped for all models (so paired
 * comparisons use the same samples) and counted in boot_dropped. With boot_subjects (S >= 2)
 * the S subjects are resampled too (rdml_stats_boot_subjects: counts d over subjects, the
 * same sample b resamples both, as rsatoolbox's bootstrap_sample): the model score is the
 * d-weighted mean over subjects; the noise ceiling pools with multiplicity d and averages
 * over the distinct sampled subjects (rsatoolbox's sets_leave_one_out_rdm leaves out every
 * copy of a subject); a sample with one distinct subject has no noise ceiling (nc_valid
 * counts the samples that have one; its model scores are kept). Intervals are percentiles of the valid samples,
 * numpy.quantile's default ("linear") at (1 - level) / 2 and (1 + level) / 2.
 *
 * ## Permutation test of each model > 0
 * The brain RDM's image labels are permuted (the null distribution is the same as for
 * permuting the model's labels, and the brain is the RDM known on every pair). Permutation
 * b is a permutation perm of the u images (rdml_stats_perm_images): the null value of pair
 * (i, j) is the brain's value of (perm(i), perm(j)), for every subject alike. Which pairs
 * that needs decides the scheme (perm_scheme in the result):
 *  - IMAGES: the pair list is complete over its u images (every unordered pair exactly
 *    once; a full RDM or a test fold's image block): the permuted brain vector is a
 *    re-ordering of the brain vector, so ranks (spearman) and z-scores (pearson) are
 *    computed once and each permutation is a permuted-index dot product (O(P M S));
 *    kendall_tau_a costs O(P log P) per permutation and model (minutes for 10,000
 *    permutations of a 1,000-image RDM: use spearman or fewer permutations).
 *  - IMAGES_FULL: the list is incomplete (e.g. the paper's extreme pairs) but the caller
 *    gives the subjects' full n x n brain RDMs (brain_full): the permuted values come from
 *    there; ranks / z-scores are recomputed per permutation (O(P log P) each).
 *  - PAIRS: incomplete list and no brain_full: the brain values are shuffled over the P
 *    pairs (perm is then a permutation of the P pairs, rdml_stats_perm_pairs). This ignores
 *    the dependence between pairs that share an image, so its p-values are too small
 *    (liberal) when pairs share images; it is reported so that the caller can say so.
 * Null scores are the mean over subjects, as the observed score; the observed score is
 * recomputed with the same kernel (identity permutation) so that a tie with the null is
 * counted exactly. p = (1 + #{null >= observed}) / (1 + valid permutations); a permutation
 * whose score is undefined (IMAGES_FULL: a constant permuted vector) is dropped and counted.
 *
 * ## Paired comparison and tests on the bootstrap samples (rsatoolbox inference_util)
 * For models k != l, on the valid samples: diff = score_k - score_l, its percentile interval,
 * and bootstrap_pair_tests' p: prop = #{e_k < e_l} / (B - #{e_k == e_l}),
 * p = 2 min(prop, 1 - prop), p = (B - 1) / B * p + 1 / B (B valid samples; when every
 * sample ties, prop is taken as 0.5, p = 1, where rsatoolbox would give NaN). Also
 * rsatoolbox's bootstrap tests against 0 (zero_tests: (#{e_k <= 0} + 1) / B) and against the
 * noise ceiling's lower bound (nc_tests: (#{nc_lower_b - e_k <= 0} + 1) / B, on the samples
 * that have a noise ceiling).
 *
 * ## Determinism and ranks
 * Sample b's images are draws b of the stream rdml_rng_substream(rdml_rng_substream(
 * RDML_STREAM_STATS_BOOT, key), b) of seed: u calls of rdml_rng_below(u) (subjects: stream
 * RDML_STREAM_STATS_SUBJ likewise, S calls of rdml_rng_below(S)); permutation b is
 * rdml_rng_shuffle of 0..u-1 (or 0..P-1) on stream RDML_STREAM_STATS_PERM likewise. So every
 * resample is a pure function of (seed, key, b): rdml_stats_evaluate deals the resamples in
 * contiguous blocks over the ranks of comm, gathers them in resample order, and every rank
 * computes the same intervals and p-values: results are bit-identical for any rank count.
 * tools/rsa_stats_reference.py is a numpy port of rsatoolbox's procedures that takes these
 * indices (tools/make_stats_fixtures.py ports the RNG) and agrees within 1e-10.
 *
 * ## Cost
 * Every rank holds the whole problem. Memory per pair and rank, roughly: 8 (2S + Mv) + 40
 * bytes of work vectors (Mv = M, or M S with per-subject models), plus 20 (S + Mv) for
 * spearman's sort orders (12 for kendall), plus for the permutation test 8 Mv + 16 S (the
 * brain matrix cache, see max_matrix_bytes): ~200 bytes per pair for S = 1, M = 3 spearman
 * (100 MB for a 1,000-image RDM; a 9,841-image RDM's 48 million pairs need ~10 GB per rank:
 * evaluate a subset of images). Time (bench/evaluate/run.sh, 1,000 images, 3 models,
 * spearman): ~6 ms of CPU per bootstrap sample and ~0.6 ms per permutation. The noise
 * ceiling re-ranks a pooled RDM per subject and sample: 8 subjects, 300 images, ~17 ms.
 */
#ifndef RDML_STATS_H
#define RDML_STATS_H

#include <mpi.h>
#include <stdint.h>

#include "rdml/core.h"
#include "rdml/rsa.h"

#ifdef __cplusplus
extern "C" {
#endif

/* RNG stream ids of the resamples (outside core.h's list; never renumber). */
enum {
    RDML_STREAM_STATS_BOOT = 901, /* bootstrap sample b's images */
    RDML_STREAM_STATS_PERM = 902, /* permutation b */
    RDML_STREAM_STATS_SUBJ = 903  /* bootstrap sample b's subjects */
};

/* The smallest number of distinct images a comparison needs (3 images, 3 pairs) and so the
 * smallest u for a bootstrap: rsatoolbox drops bootstrap samples with fewer. */
#define RDML_STATS_MIN_IMAGES 3

typedef struct rdml_stats_data {
    int64_t n;                  /* image index space: 0 <= pi[p], pj[p] < n */
    int64_t npairs;             /* P >= 3 */
    const int64_t *pi, *pj;     /* the P pairs, pi[p] != pj[p] */
    int nsubj;                  /* S >= 1 */
    const double *const *brain; /* S vectors of P brain values */
    int nmodels;                /* M >= 1 */
    const double *const *models; /* M (or M * S, see models_per_subject) vectors of P values */
    int models_per_subject;     /* 0: models[k] for every subject; 1: models[k * S + s] */
    const char *const *model_names; /* M names for messages (NULL: "model k") */
    const char *const *subject_names; /* S names for messages (NULL: "subject s") */
    /* Optional: the S subjects' full n x n brain RDMs (row-major float), used only by the
     * permutation test when the pair list is not complete (scheme IMAGES_FULL). Must agree
     * with brain[s] on the pairs (the caller's responsibility). NULL: not available. */
    const float *const *brain_full;
} rdml_stats_data;

typedef struct rdml_stats_opts {
    rdml_rsa_method method; /* default spearman */
    rdml_rsa_pool pool;     /* noise-ceiling pooling, default RDML_RSA_POOL_RSATOOLBOX */
    uint64_t seed;          /* default 0 */
    uint64_t key;           /* separates analyses under one seed (substream), default 0 */
    int64_t nboot;          /* bootstrap samples, default 1000; 0: no bootstrap */
    int boot_subjects;      /* also resample subjects (needs S >= 2), default 0 */
    int64_t nperm;          /* permutations, default 10000; 0: no permutation test */
    double level;           /* interval level in (0, 1), default 0.95 */
    int keep_samples;       /* keep the bootstrap / null distributions in the result, default 1 */
    int64_t max_matrix_bytes; /* permutation test (complete list): largest S x u x u brain
                             * matrix of doubles, default 256 MiB; above it the full matrix
                             * in 4 bytes per value when every value is exact there (2 x rank
                             * for spearman, float otherwise: half the memory, as fast), else
                             * the upper triangle is indexed (half the memory, ~3x slower);
                             * the same results bit for bit in all three cases */
} rdml_stats_opts;

void rdml_stats_opts_default(rdml_stats_opts *o);

typedef enum rdml_stats_perm_scheme {
    RDML_STATS_PERM_NONE = 0,    /* no permutation test (nperm = 0) */
    RDML_STATS_PERM_IMAGES,      /* complete pair list: image labels permuted */
    RDML_STATS_PERM_IMAGES_FULL, /* incomplete list, labels permuted through brain_full */
    RDML_STATS_PERM_PAIRS        /* incomplete list, no brain_full: pair values shuffled */
} rdml_stats_perm_scheme;
const char *rdml_stats_perm_scheme_name(rdml_stats_perm_scheme s); /* "none", "images", ... */

/* Everything malloc'd; M = nmodels. Matrices are M x M row-major, entry [k * M + l] is about
 * model k minus model l (diagonal: diff 0, p 1). Unavailable values are NaN. */
typedef struct rdml_stats_result {
    int nmodels, nsubj;
    rdml_rsa_method method;
    int64_t u;               /* distinct images the pairs touch */
    double *score;           /* M observed scores (mean over subjects) */
    double *score_subject;   /* M x S observed per-subject scores, [k * S + s] */
    int has_nc;              /* noise ceiling available (S >= 2) */
    double nc_lower, nc_upper;
    /* bootstrap */
    int64_t nboot;           /* samples drawn */
    int64_t boot_valid;      /* B: samples kept */
    int64_t boot_dropped;    /* nboot - boot_valid (undefined samples) */
    int64_t nc_valid;        /* kept samples that also have a noise ceiling */
    double level;
    double *ci_lo, *ci_hi;   /* M percentile interval of each score */
    double nc_lower_ci[2], nc_upper_ci[2]; /* intervals of the noise ceiling's bounds */
    double *boot_p_zero;     /* M: rsatoolbox zero_tests (bootstrap) p */
    double *boot_p_nc;       /* M: rsatoolbox nc_tests (bootstrap) p against the lower bound */
    double *diff;            /* M x M observed score differences */
    double *diff_lo, *diff_hi; /* M x M percentile interval of the difference */
    double *pair_p;          /* M x M bootstrap_pair_tests p (symmetric, diagonal 1) */
    double *boot_scores;     /* keep_samples: nboot x M, row b = sample b (NaN rows dropped) */
    double *boot_nc;         /* keep_samples: nboot x 2 (lower, upper), NaN when undefined */
    /* permutation test */
    rdml_stats_perm_scheme perm_scheme;
    int64_t nperm;           /* permutations drawn */
    int64_t perm_valid;      /* permutations with a defined score */
    double *perm_p;          /* M: (1 + #{null >= observed}) / (1 + perm_valid) */
    double *perm_null;       /* keep_samples: nperm x M null scores (NaN when undefined) */
} rdml_stats_result;

void rdml_stats_result_free(rdml_stats_result *r);

/* Check the data (lengths, indices, NaN naming vector and index, constant vectors naming the
 * model / subject, nmodels / nsubj >= 1, u >= RDML_STATS_MIN_IMAGES) and the options (level
 * in (0, 1), nboot / nperm >= 0, boot_subjects needs S >= 2, a known method). Serial. */
int rdml_stats_check(rdml_ctx *ctx, const rdml_stats_data *d, const rdml_stats_opts *o);

/* Observed scores only: score[M] (mean over subjects) and, if not NULL, per_subject[M x S];
 * serial. Equal to scipy (spearmanr / pearsonr / tau-a) on the same vectors. */
int rdml_stats_scores(rdml_ctx *ctx, const rdml_stats_data *d, rdml_rsa_method method,
                      double *score, double *per_subject);

/* Noise ceiling of the S >= 2 brain vectors on the pair list (see above); serial. */
int rdml_stats_noise_ceiling(rdml_ctx *ctx, const rdml_stats_data *d, rdml_rsa_method method,
                             rdml_rsa_pool pool, double *lower, double *upper);

/* Collective over comm: everything above (scores, noise ceiling, bootstrap, permutation
 * test, paired comparisons), every rank gets the same *out. Same data and options on every
 * rank. On error (agreed over comm, the same message on every rank) *out is empty (safe to
 * free). */
int rdml_stats_evaluate(rdml_ctx *ctx, MPI_Comm comm, const rdml_stats_data *d,
                        const rdml_stats_opts *o, rdml_stats_result *out);

/* ---- resampling indices (pure functions of their arguments) ---- */
/* The u distinct image indices the pairs touch, ascending, into images (malloc'd). */
int rdml_stats_images(rdml_ctx *ctx, const rdml_stats_data *d, int64_t **images, int64_t *u);
/* Bootstrap sample b: u positions in 0..u-1 (into the images list), drawn with replacement. */
void rdml_stats_boot_images(uint64_t seed, uint64_t key, int64_t b, int64_t u, int64_t *idx);
/* Bootstrap sample b's S subjects, drawn with replacement, in 0..S-1. */
void rdml_stats_boot_subjects(uint64_t seed, uint64_t key, int64_t b, int s, int *idx);
/* Permutation b of 0..u-1 (scheme IMAGES / IMAGES_FULL): position a takes the brain values
 * of image perm[a]. */
void rdml_stats_perm_images(uint64_t seed, uint64_t key, int64_t b, int64_t u, int64_t *perm);
/* Permutation b of the P pairs (scheme PAIRS): pair p takes the brain value of pair perm[p].
 * (The same stream as perm_images, over P items.) */
void rdml_stats_perm_pairs(uint64_t seed, uint64_t key, int64_t b, int64_t p, int64_t *perm);

/* ---- weighted comparison (pair p counted w[p] times, w[p] >= 0 integers) ---- */
/* compare(a, b) on the expanded vector where a[p], b[p] appear w[p] times: equal to the
 * method on the materialised vector (spearman ranks by multiplicity; tau-a denominator
 * N(N-1)/2, N = sum w). An undefined result (N < 2 or a constant expanded vector) returns
 * RDML_OK with *out = NaN (no error recorded): the bootstrap's dropped-sample case. */
int rdml_stats_compare_weighted(rdml_ctx *ctx, const double *a, const double *b,
                                const int64_t *w, int64_t p, rdml_rsa_method m, double *out);

/* ---- multiple comparisons (serial, any list of p-values) ---- */
/* Benjamini-Hochberg step-up q-values: q_(i) = min over j >= i of m p_(j) / j, capped at 1
 * (statsmodels' multipletests(method="fdr_bh")[1]). NaN p-values stay NaN in q and are not
 * counted in m. q may be p. */
void rdml_stats_fdr_bh(const double *p, int64_t m, double *q);
/* Bonferroni: min(1, m p); NaN stays NaN and is not counted in m. q may be p. */
void rdml_stats_bonferroni(const double *p, int64_t m, double *q);

/* Percentile of v[0..n-1] at q in [0, 1] with numpy.quantile's default linear interpolation
 * (NaN entries ignored; NaN when none is left). v is not modified. */
double rdml_stats_quantile(const double *v, int64_t n, double q);

#ifdef __cplusplus
}
#endif
#endif
