/* rdml/stats.h: scores, noise ceiling, bootstrap, permutation test (work in progress). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rdml/mpiutil.h"
#include "rdml/stats.h"

void rdml_stats_result_free(rdml_stats_result *r) {
    if (!r) return;
    free(r->score);
    free(r->score_subject);
    free(r->ci_lo);
    free(r->ci_hi);
    free(r->boot_p_zero);
    free(r->boot_p_nc);
    free(r->diff);
    free(r->diff_lo);
    free(r->diff_hi);
    free(r->pair_p);
    free(r->boot_scores);
    free(r->boot_nc);
    free(r->perm_p);
    free(r->perm_null);
    memset(r, 0, sizeof *r);
}

int rdml_stats_check(rdml_ctx *ctx, const rdml_stats_data *d, const rdml_stats_opts *o) {
    (void)d;
    (void)o;
    return RDML_FAIL(ctx, RDML_EINTERNAL, "rdml_stats_check: not implemented yet");
}

int rdml_stats_scores(rdml_ctx *ctx, const rdml_stats_data *d, rdml_rsa_method method,
                      double *score, double *per_subject) {
    (void)d, (void)method, (void)score, (void)per_subject;
    return RDML_FAIL(ctx, RDML_EINTERNAL, "rdml_stats_scores: not implemented yet");
}

int rdml_stats_noise_ceiling(rdml_ctx *ctx, const rdml_stats_data *d, rdml_rsa_method method,
                             rdml_rsa_pool pool, double *lower, double *upper) {
    (void)d, (void)method, (void)pool, (void)lower, (void)upper;
    return RDML_FAIL(ctx, RDML_EINTERNAL, "rdml_stats_noise_ceiling: not implemented yet");
}

int rdml_stats_evaluate(rdml_ctx *ctx, MPI_Comm comm, const rdml_stats_data *d,
                        const rdml_stats_opts *o, rdml_stats_result *out) {
    (void)comm, (void)d, (void)o;
    memset(out, 0, sizeof *out);
    return RDML_FAIL(ctx, RDML_EINTERNAL, "rdml_stats_evaluate: not implemented yet");
}

int rdml_stats_images(rdml_ctx *ctx, const rdml_stats_data *d, int64_t **images, int64_t *u) {
    (void)d;
    *images = NULL;
    *u = 0;
    return RDML_FAIL(ctx, RDML_EINTERNAL, "rdml_stats_images: not implemented yet");
}

int rdml_stats_compare_weighted(rdml_ctx *ctx, const double *a, const double *b,
                                const int64_t *w, int64_t p, rdml_rsa_method m, double *out) {
    (void)a, (void)b, (void)w, (void)p, (void)m;
    *out = NAN;
    return RDML_FAIL(ctx, RDML_EINTERNAL, "rdml_stats_compare_weighted: not implemented yet");
}
