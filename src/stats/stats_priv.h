/* Private helpers of src/stats (weighted comparisons on a pair list). */
#ifndef RDML_STATS_PRIV_H
#define RDML_STATS_PRIV_H

#include <stdint.h>

#include "rdml/stats.h"

/* A vector's ascending order (stable), tie groups and dense ranks: weight-independent. */
typedef struct stats_wsort {
    int64_t p;
    uint32_t *order;  /* sorted position -> index */
    uint32_t *group;  /* sorted position -> tie group 0..ngroups-1 */
    uint32_t *dense;  /* index -> tie group */
    int64_t ngroups;
    uint32_t *sa, *sb; /* optional: the pair's two image positions in sorted order */
} stats_wsort;

/* Attach the pairs' image positions (la, lb: P values in 0..u-1) in sorted order, so that
 * stats_wrank_counts reads them sequentially. */
int stats_wsort_attach_pairs(rdml_ctx *ctx, stats_wsort *s, const int64_t *la, const int64_t *lb);
/* stats_wrank_centered with the weights c[sa] * c[sb] of image counts c (needs
 * stats_wsort_attach_pairs); n = sum of the weights. */
int stats_wrank_counts(const stats_wsort *s, const int64_t *c, int64_t n, double *rg, double *out,
                       double *norm);

int stats_wsort_make(rdml_ctx *ctx, const double *x, int64_t p, stats_wsort *out);
void stats_wsort_free(stats_wsort *s);
/* Average ranks with multiplicity w into ranks (input order); returns 0 when fewer than two
 * tie groups carry weight (a constant expanded vector). */
int stats_wrank(const stats_wsort *s, const int64_t *w, double *ranks);
/* Weighted average ranks minus their mean (N + 1) / 2 into out (0 where w = 0), through the
 * per-group table rg (ngroups doubles); *norm = sqrt(sum w out^2). 0 when constant. Equal
 * to stats_wrank then stats_wcenter up to rounding (the centred ranks are exact here). */
int stats_wrank_centered(const stats_wsort *s, const int64_t *w, double *rg, double *out,
                         double *norm);
/* out = x - weighted mean (0 where w = 0), *norm = sqrt(sum w out^2); returns 0 when the
 * weighted entries are constant. out may be x. */
int stats_wcenter(const double *x, const int64_t *w, int64_t p, double *out, double *norm);
double stats_wdot(const double *a, const double *b, const int64_t *w, int64_t p);
double stats_clamp(double r);
/* Weighted tau-a of the vectors sorted by a and b; NaN (RDML_OK) when undefined. */
int stats_wkendall(rdml_ctx *ctx, const stats_wsort *a, const stats_wsort *b, const int64_t *w,
                   double *tau);

#endif
