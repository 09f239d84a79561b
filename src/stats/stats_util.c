/* Resampling indices, percentiles and multiple-comparison corrections of rdml/stats.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rdml/stats.h"

void rdml_stats_opts_default(rdml_stats_opts *o) {
    memset(o, 0, sizeof *o);
    o->method = RDML_RSA_SPEARMAN;
    o->pool = RDML_RSA_POOL_RSATOOLBOX;
    o->nboot = 1000;
    o->nperm = 10000;
    o->level = 0.95;
    o->keep_samples = 1;
    o->max_matrix_bytes = (int64_t)256 << 20;
}

const char *rdml_stats_perm_scheme_name(rdml_stats_perm_scheme s) {
    switch (s) {
    case RDML_STATS_PERM_NONE: return "none";
    case RDML_STATS_PERM_IMAGES: return "images";
    case RDML_STATS_PERM_IMAGES_FULL: return "images_full";
    case RDML_STATS_PERM_PAIRS: return "pairs";
    }
    return "unknown";
}

static rdml_rng stream_of(uint64_t seed, uint64_t stream, uint64_t key, int64_t b) {
    return rdml_rng_make(seed, rdml_rng_substream(rdml_rng_substream(stream, key), (uint64_t)b),
                         0);
}

void rdml_stats_boot_images(uint64_t seed, uint64_t key, int64_t b, int64_t u, int64_t *idx) {
    rdml_rng r = stream_of(seed, RDML_STREAM_STATS_BOOT, key, b);
    for (int64_t k = 0; k < u; k++) idx[k] = (int64_t)rdml_rng_below(&r, (uint64_t)u);
}

void rdml_stats_boot_subjects(uint64_t seed, uint64_t key, int64_t b, int s, int *idx) {
    rdml_rng r = stream_of(seed, RDML_STREAM_STATS_SUBJ, key, b);
    for (int k = 0; k < s; k++) idx[k] = (int)rdml_rng_below(&r, (uint64_t)s);
}

void rdml_stats_perm_images(uint64_t seed, uint64_t key, int64_t b, int64_t u, int64_t *perm) {
    rdml_rng r = stream_of(seed, RDML_STREAM_STATS_PERM, key, b);
    for (int64_t k = 0; k < u; k++) perm[k] = k;
    rdml_rng_shuffle(&r, perm, u);
}

void rdml_stats_perm_pairs(uint64_t seed, uint64_t key, int64_t b, int64_t p, int64_t *perm) {
    rdml_stats_perm_images(seed, key, b, p, perm);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double rdml_stats_quantile(const double *v, int64_t n, double q) {
    double *s = malloc((size_t)(n > 0 ? n : 1) * sizeof *s);
    if (!s) return NAN;
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++)
        if (!isnan(v[i])) s[m++] = v[i];
    double out = NAN;
    if (m > 0) {
        qsort(s, (size_t)m, sizeof *s, cmp_double);
        /* numpy "linear": virtual index (m - 1) q, then interpolate. */
        double h = (double)(m - 1) * q;
        int64_t lo = (int64_t)floor(h);
        if (lo < 0) lo = 0;
        if (lo > m - 1) lo = m - 1;
        int64_t hi = lo + 1 < m ? lo + 1 : lo;
        double g = h - (double)lo;
        /* numpy's _lerp: a + (b - a) g, switching to b - (b - a)(1 - g) for g >= 0.5. */
        double a = s[lo], bb = s[hi], d = bb - a;
        out = g >= 0.5 ? bb - d * (1.0 - g) : a + d * g;
    }
    free(s);
    return out;
}

typedef struct pidx {
    double p;
    int64_t i;
} pidx;

static int cmp_pidx(const void *a, const void *b) {
    const pidx *x = a, *y = b;
    if (x->p != y->p) return (x->p > y->p) - (x->p < y->p);
    return (x->i > y->i) - (x->i < y->i);
}

void rdml_stats_fdr_bh(const double *p, int64_t m, double *q) {
    pidx *s = malloc((size_t)(m > 0 ? m : 1) * sizeof *s);
    int64_t k = 0;
    if (!s) {
        for (int64_t i = 0; i < m; i++) q[i] = NAN;
        return;
    }
    for (int64_t i = 0; i < m; i++)
        if (!isnan(p[i])) s[k++] = (pidx){p[i], i};
    for (int64_t i = 0; i < m; i++)
        if (isnan(p[i])) q[i] = NAN;
    qsort(s, (size_t)k, sizeof *s, cmp_pidx);
    /* Step-up: running minimum from the largest p down, as statsmodels' fdr_bh
     * (np.minimum.accumulate of p_sorted * m / rank, reversed), capped at 1. */
    double run = 1.0;
    for (int64_t r = k - 1; r >= 0; r--) {
        double v = s[r].p / ((double)(r + 1) / (double)k); /* statsmodels' p / ecdffactor */
        if (v < run) run = v;
        s[r].p = run;
    }
    for (int64_t r = 0; r < k; r++) q[s[r].i] = s[r].p;
    free(s);
}

void rdml_stats_bonferroni(const double *p, int64_t m, double *q) {
    int64_t k = 0;
    for (int64_t i = 0; i < m; i++) k += !isnan(p[i]);
    for (int64_t i = 0; i < m; i++) {
        if (isnan(p[i])) {
            q[i] = NAN;
            continue;
        }
        double v = p[i] * (double)k;
        q[i] = v > 1.0 ? 1.0 : v;
    }
}

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
