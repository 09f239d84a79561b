/* rdml/rsa.h — representational similarity analysis on RDMs: comparison of two RDMs,
 * inter-subject noise ceiling, matching images across subjects by NSD id, binary thresholds
 * and summaries (histogram, most similar / dissimilar pairs) of a distributed RDM.
 *
 * Example:
 *
 *   // Two subjects' RDMs (n1 x n1 and n2 x n2, NSD ids ids1 / ids2) over their shared images.
 *   int compare_subjects(rdml_ctx *ctx, const float *rdm1, const int64_t *ids1, int64_t n1,
 *                        const float *rdm2, const int64_t *ids2, int64_t n2, double *rho) {
 *       int64_t *ia, *ib, m;
 *       RDML_TRY(rdml_rsa_match_ids(ctx, ids1, n1, ids2, n2, &ia, &ib, &m));
 *       float *a = rdml_malloc(ctx, (size_t)(m * m + 1) * sizeof *a, "sub-RDM");
 *       float *b = rdml_malloc(ctx, (size_t)(m * m + 1) * sizeof *b, "sub-RDM");
 *       int rc = a && b ? RDML_OK : ctx->code;
 *       if (!rc) {
 *           rdml_rsa_subrdm(rdm1, n1, ia, m, a);  // m x m sub-RDMs on the shared images
 *           rdml_rsa_subrdm(rdm2, n2, ib, m, b);
 *           rc = rdml_rsa_compare(ctx, a, b, m, RDML_RSA_SPEARMAN, rho);
 *       }
 *       free(a);
 *       free(b);
 *       free(ia);
 *       free(ib);
 *       return rc;
 *   }
 *
 *   // A row-slab-distributed RDM (rows [lo, hi) of n on this rank): collective summary.
 *   int summary(rdml_ctx *ctx, MPI_Comm comm, int64_t n, int64_t lo, int64_t hi,
 *               const float *rows) {
 *       rdml_rdm_summary s;
 *       RDML_TRY(rdml_rsa_summarize(ctx, comm, n, lo, hi, rows, 50, 10, &s));
 *       if (ctx->rank == 0)  // s.hist[], s.low[] (the 10 most similar pairs), s.high[]
 *           printf("median %.4f, most similar pair (%lld, %lld)\n", s.median,
 *                  (long long)s.low[0].i, (long long)s.low[0].j);
 *       rdml_rdm_summary_free(&s);
 *       return RDML_OK;
 *   }
 *
 * Comparisons use the strict upper triangle (i < j) in row-major order, values in double.
 * Spearman ranks ties by their average rank (scipy.stats.spearmanr); Kendall is tau-a
 * (ties count as neither concordant nor discordant; denominator n(n-1)/2), computed in
 * O(P log P) for P pairs so 9841-image RDMs (48 million pairs) compare in seconds
 * (bench/rsa/bench_rsa.py: ~4-5 s each on one core, 7-9x faster than scipy).
 * Limits: at most 2^32 - 1 values (n <= 92681 images); a NaN is an error naming its index.
 * Everything is serial except rdml_rsa_summarize and rdml_rsa_median (collective).
 * docs/rsa.md has the definitions and how they relate to scipy / rsatoolbox.
 */
#ifndef RDML_RSA_H
#define RDML_RSA_H

#include <mpi.h>
#include <stdint.h>

#include "rdml/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum rdml_rsa_method {
    RDML_RSA_SPEARMAN = 0,
    RDML_RSA_PEARSON,
    RDML_RSA_KENDALL_A
} rdml_rsa_method;
const char *rdml_rsa_method_name(rdml_rsa_method m); /* "spearman", "pearson", "kendall_tau_a" */
/* Parse a method name; error names the value and lists the valid ones. Also accepted:
 * "kendall", "tau-a", "tau_a" (kendall_tau_a) and "corr", "correlation" (pearson). */
int rdml_rsa_method_parse(rdml_ctx *ctx, const char *name, rdml_rsa_method *out);

/* Number of strict-upper-triangle entries, n(n-1)/2. */
int64_t rdml_rsa_ntri(int64_t n);
/* Copy the strict upper triangle of an n x n row-major RDM into out (ntri doubles). */
void rdml_rsa_upper(const float *rdm, int64_t n, double *out);

/* Correlations of two vectors of length p >= 2. A constant vector makes the correlation
 * undefined: RDML_EDATA with a message saying which input is constant ("input a", "input b"
 * or "both inputs"). A NaN is RDML_EDATA naming the input and index. Results are clamped to
 * [-1, 1]. Workspace: Spearman ~24 bytes and Kendall ~16 bytes per value (malloc'd). */
int rdml_rsa_pearson(rdml_ctx *ctx, const double *a, const double *b, int64_t p, double *r);
int rdml_rsa_spearman(rdml_ctx *ctx, const double *a, const double *b, int64_t p, double *rho);
int rdml_rsa_kendall_tau_a(rdml_ctx *ctx, const double *a, const double *b, int64_t p,
                           double *tau);
/* The correlation of a and b (p values) by method: rdml_rsa_spearman, _pearson or
 * _kendall_tau_a, with their errors. */
int rdml_rsa_correlate(rdml_ctx *ctx, rdml_rsa_method method, const double *a, const double *b,
                       int64_t p, double *out);
/* Compare two n x n RDMs (upper triangles, n >= 3) with a method. Works on the float values
 * directly (4 bytes per pair per RDM of extra memory, on top of the method's workspace). */
int rdml_rsa_compare(rdml_ctx *ctx, const float *a, const float *b, int64_t n,
                     rdml_rsa_method m, double *out);

/* Images common to two subjects: ids_a (na NSD ids) and ids_b (nb). On return ia[k], ib[k]
 * index the k-th shared id in each list, in ascending NSD id order; *m shared ids.
 * *ia and *ib are malloc'd (non-NULL even when *m == 0; NULL after an error). Duplicate ids
 * within one list are an error naming the id and both positions. */
int rdml_rsa_match_ids(rdml_ctx *ctx, const int64_t *ids_a, int64_t na, const int64_t *ids_b,
                       int64_t nb, int64_t **ia, int64_t **ib, int64_t *m);
/* Images common to all s lists (ids[k] has n[k] entries); idx[k] (malloc'd, *m entries) index
 * them in list k, in ascending NSD id order. s >= 1; errors as in rdml_rsa_match_ids. */
int rdml_rsa_match_ids_all(rdml_ctx *ctx, const int64_t *const *ids, const int64_t *n, int s,
                           int64_t **idx, int64_t *m);
/* The m x m sub-RDM of an n x n RDM on rows/cols idx (out malloc'd by the caller). */
void rdml_rsa_subrdm(const float *rdm, int64_t n, const int64_t *idx, int64_t m, float *out);

/* Average ranks of x (1-based; tied values share the mean of their positions, as
 * scipy.stats.rankdata's default "average"), p >= 1 values, into ranks (p doubles). A NaN is
 * RDML_EDATA naming its index. ranks may be x (ranked in place). Workspace ~16 bytes per
 * value; deterministic. */
int rdml_rsa_rank(rdml_ctx *ctx, const double *x, int64_t p, double *ranks);

/* How the noise ceiling pools subjects' RDMs into the group RDM.
 *  MEAN:       the arithmetic mean of the raw dissimilarities, for every method.
 *  RSATOOLBOX: rsatoolbox's pool_rdm for the comparison method in use: pearson ('corr')
 *              averages each RDM's z-scores (centred, divided by the population std);
 *              spearman and kendall_tau_a average each RDM's average ranks. */
typedef enum rdml_rsa_pool {
    RDML_RSA_POOL_MEAN = 0,
    RDML_RSA_POOL_RSATOOLBOX
} rdml_rsa_pool;
const char *rdml_rsa_pool_name(rdml_rsa_pool p); /* "mean", "rsatoolbox" */
/* Parse a pooling name; the error names the value and lists the valid ones. */
int rdml_rsa_pool_parse(rdml_ctx *ctx, const char *name, rdml_rsa_pool *out);

/* Leave-one-subject-out noise ceiling over s >= 2 RDMs of the same m images (rsatoolbox's
 * boot_noise_ceiling without the bootstrap, as in Nili et al. 2014 and Net2Brain): upper =
 * mean over subjects of compare(rdm_k, pool of all s RDMs), lower = mean over subjects of
 * compare(rdm_k, pool of the other s-1 RDMs); rdm_k itself enters raw. per_lower / per_upper
 * (s values each) may be NULL. pool says how RDMs are pooled (rdml_rsa_pool above): MEAN sums
 * the raw values in subject order in double; RSATOOLBOX sums the transformed upper triangles
 * once and takes the leave-one-out pool as (sum - transform_k) / (s - 1), which is exact for
 * ranks. For s = 2 the leave-one-out pool is the other subject's (transformed) RDM. A
 * constant RDM under RSATOOLBOX + pearson has no z-score: RDML_EDATA naming the subject.
 * Needs m >= 3. Serial and deterministic. */
int rdml_rsa_noise_ceiling(rdml_ctx *ctx, const float *const *rdms, int s, int64_t m,
                           rdml_rsa_method method, rdml_rsa_pool pool, double *lower,
                           double *upper, double *per_lower, double *per_upper);

/* ---- distributed summaries: rows [row_lo, row_hi) of an n x n RDM on each rank ---- */
typedef struct rdml_rdm_pair {
    int64_t i, j; /* i < j */
    float value;
} rdml_rdm_pair;

typedef struct rdml_rdm_summary {
    int64_t n;            /* images */
    int64_t count;        /* upper-triangle entries, n(n-1)/2 */
    double min, max, mean, std; /* over the upper triangle */
    double median;        /* of the off-diagonal values (numpy.median semantics) */
    int nbins;
    double *edges;        /* nbins + 1 bin edges, equal width over [min, max] (numpy.histogram) */
    int64_t *hist;        /* nbins counts; the last bin includes max */
    int k;
    rdml_rdm_pair *low;   /* the k most similar pairs (smallest values), ascending */
    rdml_rdm_pair *high;  /* the k most dissimilar pairs (largest values), descending */
} rdml_rdm_summary;

/* Collective. Every rank gets the full summary. Ties are broken by (i, j) ascending, so the
 * result does not depend on the number of ranks. The ranks' slabs must tile [0, n) (in any
 * rank order; a rank may hold no rows, rows may then be NULL); n >= 2, nbins >= 1, k >= 0,
 * the same n / nbins / k everywhere. out->k = min(k, count). std is the population std
 * (ddof = 0). The histogram reproduces numpy.histogram(upper.astype(float64), nbins) exactly,
 * edges included. A NaN or infinite off-diagonal entry is RDML_EDATA naming (i, j) on every
 * rank. On error *out is left empty (safe to free). */
int rdml_rsa_summarize(rdml_ctx *ctx, MPI_Comm comm, int64_t n, int64_t row_lo,
                       int64_t row_hi, const float *rows, int nbins, int k,
                       rdml_rdm_summary *out);
void rdml_rdm_summary_free(rdml_rdm_summary *s);

/* Collective. Exact median of the off-diagonal entries (all i != j of the rows held, so a
 * non-symmetric matrix is fine; for a symmetric one it equals the upper triangle's median),
 * numpy.median semantics: the mean of the two middle values (computed in double) for an even
 * count. A radix select on the float bit patterns: five passes over the local rows and five
 * small allreduces, never gathering the matrix. Same layout rules and errors as summarize. */
int rdml_rsa_median(rdml_ctx *ctx, MPI_Comm comm, int64_t n, int64_t row_lo, int64_t row_hi,
                    const float *rows, double *median);

/* The paper's binary labels: 1 = "dissimilar" when value > threshold (NaN gives 0). */
void rdml_rsa_binarize(const float *rows, int64_t count, double threshold, uint8_t *out);

#ifdef __cplusplus
}
#endif
#endif
