/* Weighted comparisons: pair p counted w[p] times (the bootstrap's expanded vector, where a
 * pair of images sampled c_i and c_j times appears c_i c_j times). The sort order of a
 * vector does not depend on the weights, so it is computed once (stats_wsort) and every
 * bootstrap sample ranks in O(P): average ranks with multiplicity, C + (T + 1) / 2 for a tie
 * group of total weight T after total weight C, exactly scipy.stats.rankdata of the
 * materialised vector (half-integers, exact in double). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/radix.h"
#include "stats_priv.h"

int stats_wsort_make(rdml_ctx *ctx, const double *x, int64_t p, stats_wsort *out) {
    memset(out, 0, sizeof *out);
    out->p = p;
    const size_t np = (size_t)(p > 0 ? p : 1);
    uint32_t *o0 = rdml_malloc(ctx, np * sizeof *o0, "sort order");
    uint32_t *o1 = o0 ? rdml_malloc(ctx, np * sizeof *o1, "sort order") : NULL;
    uint64_t *k0 = o1 ? rdml_malloc(ctx, np * sizeof *k0, "sort keys") : NULL;
    uint64_t *k1 = k0 ? rdml_malloc(ctx, np * sizeof *k1, "sort keys") : NULL;
    uint32_t *dense = k1 ? rdml_malloc(ctx, np * sizeof *dense, "tie groups") : NULL;
    if (!dense) {
        free(o0);
        free(o1);
        free(k0);
        free(k1);
        return ctx->code;
    }
    for (int64_t i = 0; i < p; i++) {
        k0[i] = rdml_radix_key_double(x[i]);
        o0[i] = (uint32_t)i;
    }
    /* the sort order (a radix sort: the bootstrap sorts a pooled RDM per subject and sample,
     * several times faster than a comparison sort) */
    rdml_radix_sort_u64(&k0, &k1, &o0, &o1, p, 0);
    uint32_t *order = o0, *spare = o1;
    /* group[t]: the tie group of sorted position t (in the spare buffer); dense in input order */
    uint32_t g = 0;
    for (int64_t t = 0; t < p; t++) {
        if (t > 0 && x[order[t]] != x[order[t - 1]]) g++;
        spare[t] = g;
    }
    for (int64_t t = 0; t < p; t++) dense[order[t]] = spare[t];
    out->order = order;
    out->group = spare;
    out->dense = dense;
    out->ngroups = p ? (int64_t)g + 1 : 0;
    free(k0);
    free(k1);
    return RDML_OK;
}

int stats_wsort_attach_pairs(rdml_ctx *ctx, stats_wsort *s, const int64_t *la, const int64_t *lb) {
    s->sa = rdml_malloc(ctx, (size_t)(s->p ? s->p : 1) * sizeof *s->sa, "sorted pairs");
    s->sb = s->sa ? rdml_malloc(ctx, (size_t)(s->p ? s->p : 1) * sizeof *s->sb, "sorted pairs")
                  : NULL;
    if (!s->sb) return ctx->code;
    for (int64_t t = 0; t < s->p; t++) {
        s->sa[t] = (uint32_t)la[s->order[t]];
        s->sb[t] = (uint32_t)lb[s->order[t]];
    }
    return RDML_OK;
}

int stats_wrank_counts(const stats_wsort *s, const int64_t *c, int64_t n, double *rg, double *out,
                       double *norm) {
    const int64_t p = s->p;
    const double mean = 0.5 * (double)(n + 1);
    int64_t cum = 0, used = 0;
    double ss = 0;
    for (int64_t t = 0; t < p;) {
        int64_t e = t, tw = 0;
        const uint32_t g = s->group[t];
        for (; e < p && s->group[e] == g; e++) tw += c[s->sa[e]] * c[s->sb[e]];
        const double r = (double)cum + 0.5 * (double)(tw + 1) - mean;
        rg[g] = r;
        ss += (double)tw * r * r;
        used += tw > 0;
        cum += tw;
        t = e;
    }
    /* entries of weight 0 get their group's value too: every use multiplies by the weight */
    for (int64_t i = 0; i < p; i++) out[i] = rg[s->dense[i]];
    *norm = sqrt(ss);
    return used >= 2 && *norm > 0;
}

void stats_wsort_free(stats_wsort *s) {
    free(s->sa);
    free(s->sb);
    free(s->order);
    free(s->group);
    free(s->dense);
    memset(s, 0, sizeof *s);
}

int stats_wrank(const stats_wsort *s, const int64_t *w, double *ranks) {
    const int64_t p = s->p;
    int64_t c = 0, used = 0;
    for (int64_t t = 0; t < p;) {
        int64_t e = t, tw = 0;
        while (e < p && s->group[e] == s->group[t]) tw += w[s->order[e++]];
        const double r = (double)c + 0.5 * (double)(tw + 1);
        for (int64_t q = t; q < e; q++) ranks[s->order[q]] = r;
        used += tw > 0;
        c += tw;
        t = e;
    }
    return used >= 2;
}

int stats_wrank_centered(const stats_wsort *s, const int64_t *w, double *rg, double *out,
                         double *norm) {
    const int64_t p = s->p;
    int64_t n = 0;
    for (int64_t i = 0; i < p; i++) n += w[i];
    /* the mean of the average ranks 1..N of the expanded vector is (N + 1) / 2 */
    const double mean = 0.5 * (double)(n + 1);
    int64_t c = 0, used = 0;
    double ss = 0;
    for (int64_t t = 0; t < p;) {
        int64_t e = t, tw = 0;
        const uint32_t g = s->group[t];
        while (e < p && s->group[e] == g) tw += w[s->order[e++]];
        const double r = (double)c + 0.5 * (double)(tw + 1) - mean;
        rg[g] = r;
        ss += (double)tw * r * r;
        used += tw > 0;
        c += tw;
        t = e;
    }
    for (int64_t i = 0; i < p; i++) out[i] = w[i] ? rg[s->dense[i]] : 0.0;
    *norm = sqrt(ss);
    return used >= 2 && *norm > 0;
}

int stats_wcenter(const double *x, const int64_t *w, int64_t p, double *out, double *norm) {
    double sw = 0, sx = 0, first = NAN;
    int constant = 1;
    for (int64_t i = 0; i < p; i++) {
        if (!w[i]) continue;
        if (isnan(first)) first = x[i];
        else if (x[i] != first) constant = 0;
        sw += (double)w[i];
        sx += (double)w[i] * x[i];
    }
    if (constant || !(sw > 0)) return 0;
    const double m = sx / sw;
    double ss = 0;
    for (int64_t i = 0; i < p; i++) {
        const double d = w[i] ? x[i] - m : 0.0;
        out[i] = d;
        ss += (double)w[i] * d * d;
    }
    *norm = sqrt(ss);
    return *norm > 0;
}

double stats_wdot(const double *a, const double *b, const int64_t *w, int64_t p) {
    double s = 0;
    for (int64_t i = 0; i < p; i++) s += (double)w[i] * a[i] * b[i];
    return s;
}

double stats_clamp(double r) { return r > 1.0 ? 1.0 : (r < -1.0 ? -1.0 : r); }

/* Fenwick tree over dense ranks with int64 weights. */
static void fw_add(int64_t *f, int64_t n, int64_t i, int64_t v) {
    for (i++; i <= n; i += i & -i) f[i - 1] += v;
}
static int64_t fw_sum(const int64_t *f, int64_t i) { /* sum of [0, i) */
    int64_t s = 0;
    for (; i > 0; i -= i & -i) s += f[i - 1];
    return s;
}

int stats_wkendall(rdml_ctx *ctx, const stats_wsort *a, const stats_wsort *b, const int64_t *w,
                   double *tau) {
    const int64_t p = a->p, nb = b->ngroups;
    int64_t *f = rdml_calloc(ctx, (size_t)(nb > 0 ? nb : 1), sizeof *f, "kendall tree");
    if (!f) return ctx->code;
    int64_t s = 0, ins = 0, ga = 0;
    /* a's tie groups in ascending order: score against the earlier (strictly smaller a)
     * entries, then insert; pairs tied in a or b (or both, the same pair's copies) add 0 */
    for (int64_t t = 0; t < p;) {
        int64_t e = t, tw = 0;
        while (e < p && a->group[e] == a->group[t]) {
            const uint32_t q = a->order[e++];
            if (!w[q]) continue;
            const int64_t rb = b->dense[q];
            const int64_t less = fw_sum(f, rb), greater = ins - fw_sum(f, rb + 1);
            s += w[q] * (less - greater);
            tw += w[q];
        }
        for (int64_t q = t; q < e; q++) {
            const uint32_t i = a->order[q];
            if (w[i]) fw_add(f, nb, b->dense[i], w[i]);
        }
        ins += tw;
        ga += tw > 0;
        t = e;
    }
    /* is b constant on the weighted entries? */
    int64_t gb = 0;
    for (int64_t g = 0; g < nb; g++) gb += (fw_sum(f, g + 1) - fw_sum(f, g)) > 0;
    free(f);
    if (ga < 2 || gb < 2 || ins < 2) {
        *tau = NAN;
        return RDML_OK;
    }
    const int64_t n0 = ins * (ins - 1) / 2;
    *tau = (double)s / (double)n0;
    return RDML_OK;
}

int rdml_stats_compare_weighted(rdml_ctx *ctx, const double *a, const double *b,
                                const int64_t *w, int64_t p, rdml_rsa_method m, double *out) {
    *out = NAN;
    if (p < 1 || !a || !b || !w)
        return RDML_FAIL(ctx, RDML_EINTERNAL, "weighted comparison: %lld values or NULL input",
                         (long long)p);
    if ((uint64_t)p > UINT32_MAX)
        return RDML_FAIL(ctx, RDML_EDATA, "weighted comparison: %lld values exceed %llu",
                         (long long)p, (unsigned long long)UINT32_MAX);
    for (int64_t i = 0; i < p; i++) {
        if (isnan(a[i]) || isnan(b[i]))
            return RDML_FAIL(ctx, RDML_EDATA,
                             "weighted comparison: input %s has a NaN at index %lld",
                             isnan(a[i]) ? "a" : "b", (long long)i);
        if (w[i] < 0)
            return RDML_FAIL(ctx, RDML_EDATA, "weighted comparison: weight %lld at index %lld "
                             "is negative", (long long)w[i], (long long)i);
    }
    if ((int)m < 0 || (int)m > 2)
        return RDML_FAIL(ctx, RDML_EDATA, "weighted comparison: unknown method %d", (int)m);
    stats_wsort sa = {0}, sb = {0};
    double *ra = NULL, *rb = NULL;
    int rc = RDML_OK;
    if (m != RDML_RSA_PEARSON) {
        rc = stats_wsort_make(ctx, a, p, &sa);
        if (!rc) rc = stats_wsort_make(ctx, b, p, &sb);
    }
    if (!rc && m != RDML_RSA_KENDALL_A) {
        ra = rdml_malloc(ctx, (size_t)p * sizeof *ra, "weighted comparison");
        rb = ra ? rdml_malloc(ctx, (size_t)p * sizeof *rb, "weighted comparison") : NULL;
        if (!rb) rc = ctx->code;
    }
    if (!rc && m == RDML_RSA_KENDALL_A) rc = stats_wkendall(ctx, &sa, &sb, w, out);
    if (!rc && m != RDML_RSA_KENDALL_A) {
        const double *x = a, *y = b;
        int ok = 1;
        if (m == RDML_RSA_SPEARMAN) {
            ok = stats_wrank(&sa, w, ra) && stats_wrank(&sb, w, rb);
            x = ra;
            y = rb;
        }
        double na = 0, nb = 0;
        /* centre in place: ra / rb hold the centred copies */
        if (ok) ok = stats_wcenter(x, w, p, ra, &na) && stats_wcenter(y, w, p, rb, &nb);
        if (ok) *out = stats_clamp(stats_wdot(ra, rb, w, p) / (na * nb));
    }
    stats_wsort_free(&sa);
    stats_wsort_free(&sb);
    free(ra);
    free(rb);
    return rc;
}
