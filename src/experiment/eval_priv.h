/* Inside the evaluate stage (evaluate.c, eval_stats.c, eval_csv.c): the statistics the stage
 * asks for, in the stage's own terms (a brain RDM against M model RDMs on the same images),
 * so that evaluate.c does not depend on how the statistics library spells them. */
#ifndef RDML_EVAL_PRIV_H
#define RDML_EVAL_PRIV_H

#include <mpi.h>
#include <stdint.h>

#include "rdml/core.h"
#include "rdml/rsa.h"

/* One family of comparisons: the brain RDM against M model RDMs on the same m images. */
typedef struct eval_cmp {
    int64_t m;                  /* images (rows of every matrix) */
    const float *brain;         /* m x m */
    const float *const *models; /* M of them, m x m each */
    int nmodels;
    rdml_rsa_method method;
    int64_t nboot, nperm;       /* 0: that part is left out (NaN) */
    double ci;                  /* coverage of the percentile intervals */
    uint64_t seed;              /* run.seed */
    uint64_t key;               /* which comparison (subject, selection, method): the RNG's
                                 * sub-stream, so resamples do not depend on the order */
} eval_cmp;

/* Its results (every rank gets all of them). Arrays are malloc'd by eval_compare_models and
 * freed with eval_res_free. */
typedef struct eval_res {
    int nmodels;
    int64_t nboot;
    double *score, *ci_low, *ci_high, *p;           /* M */
    double *diff, *diff_low, *diff_high, *diff_p;   /* M x M: score[a] - score[b] */
    double *boot;                                   /* nboot x M bootstrap scores (NaN: an
                                                     * undefined sample), or NULL */
} eval_res;
void eval_res_free(eval_res *r);

/* Collective (the resamples are spread over the ranks; the result does not depend on their
 * number). Scores, percentile intervals (bootstrap over images, self-pairs dropped), one-sided
 * permutation p of score > 0 (image labels of the model RDM permuted), and the paired
 * differences with their intervals and two-sided bootstrap p. keep_boot: also fill r->boot. */
int eval_compare_models(rdml_ctx *ctx, MPI_Comm comm, const eval_cmp *c, int keep_boot,
                        eval_res *r);

/* Collective. The leave-one-subject-out noise ceiling of s >= 2 RDMs of the same m images
 * (rdml_rsa_noise_ceiling with pool) and its percentile intervals from nboot bootstrap samples
 * of the images: out = {lower, upper, lower_ci_low, lower_ci_high, upper_ci_low,
 * upper_ci_high}. */
int eval_noise_ceiling(rdml_ctx *ctx, MPI_Comm comm, const float *const *rdms, int s, int64_t m,
                       rdml_rsa_method method, rdml_rsa_pool pool, int64_t nboot, double ci,
                       uint64_t seed, uint64_t key, double out[6]);

/* Percentile interval of the finite values of x (n of them, numpy's linear rule). NaN when
 * fewer than 2 are finite. */
void eval_percentile_ci(const double *x, int64_t n, int64_t stride, double ci, double *lo,
                        double *hi);

/* Multiple-comparison correction of n p-values (NaN ones are left out and stay NaN):
 * 0 Benjamini-Hochberg, 1 Bonferroni, 2 none (q = p). */
enum { EVAL_BH = 0, EVAL_BONFERRONI = 1, EVAL_NONE = 2 };
int eval_correct(rdml_ctx *ctx, int how, const double *p, int64_t n, double *q);

/* Rank 0: write <stem>.evaluate.csv from the /evaluate group of the committed results file
 * (or remove it when the file holds none). Called by rdml_exp_tables_sync. */
int rdml_exp_eval_csv_sync(rdml_ctx *ctx, const char *output);
void rdml_exp_eval_csv_path(const char *output, char *path, size_t len);

#endif
