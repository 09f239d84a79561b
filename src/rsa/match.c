/* Matching images across subjects by NSD id, sub-RDMs on the matched images, and the
 * leave-one-subject-out noise ceiling. Matching sorts (id, position) pairs of each list and
 * walks them together, so it is O(n log n) and reports the first duplicate id it meets. The
 * noise ceiling follows rsatoolbox's boot_noise_ceiling (Nili et al. 2014) without the
 * bootstrap: upper = mean over subjects of compare(rdm_k, pool of all RDMs), lower = mean of
 * compare(rdm_k, pool of the other RDMs). Two poolings: the arithmetic mean of the raw
 * dissimilarities (summed in subject order, in double; rdmlearn's default), or rsatoolbox's
 * pool_rdm for the method in use (z-scores for pearson, average ranks for spearman and
 * kendall_tau_a, each RDM transformed before averaging; the transformed RDMs are summed once
 * and each leave-one-out pool is (sum - own) / (s - 1), exact for ranks). Left out: the
 * bootstrap over images or subjects, the cross-validated variant, weights per subject,
 * rsatoolbox's NaN-masked entries (a NaN is an error), and its cosine / euclid poolings (no
 * such comparison methods here). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rdml/rsa.h"

typedef struct id_pos {
    int64_t id, pos;
} id_pos;

static int cmp_id_pos(const void *x, const void *y) {
    const id_pos *a = x, *b = y;
    if (a->id != b->id) return a->id < b->id ? -1 : 1;
    return a->pos < b->pos ? -1 : (a->pos > b->pos);
}

/* Sorted (id, pos) of one list; a duplicate id is an error naming it and both positions. */
static int sorted_ids(rdml_ctx *ctx, const int64_t *ids, int64_t n, int which, id_pos **out) {
    *out = NULL;
    if (n < 0)
        return RDML_FAIL(ctx, RDML_EINTERNAL, "matching ids: list %d has negative length %lld",
                         which, (long long)n);
    if (n > 0 && !ids)
        return RDML_FAIL(ctx, RDML_EINTERNAL, "matching ids: list %d is NULL", which);
    id_pos *v = rdml_malloc(ctx, (size_t)(n ? n : 1) * sizeof *v, "sorted image ids");
    if (!v) return ctx->code;
    for (int64_t i = 0; i < n; i++) v[i] = (id_pos){ids[i], i};
    qsort(v, (size_t)n, sizeof *v, cmp_id_pos);
    for (int64_t i = 1; i < n; i++)
        if (v[i].id == v[i - 1].id) {
            int64_t id = v[i].id, p0 = v[i - 1].pos, p1 = v[i].pos;
            free(v);
            return RDML_FAIL(ctx, RDML_EDATA,
                             "matching images by NSD id: id %lld appears twice in list %d (at "
                             "positions %lld and %lld); each image must appear once per subject",
                             (long long)id, which, (long long)p0, (long long)p1);
        }
    *out = v;
    return RDML_OK;
}

int rdml_rsa_match_ids(rdml_ctx *ctx, const int64_t *ids_a, int64_t na, const int64_t *ids_b,
                       int64_t nb, int64_t **ia, int64_t **ib, int64_t *m) {
    const int64_t *ids[2] = {ids_a, ids_b};
    const int64_t n[2] = {na, nb};
    int64_t *idx[2] = {NULL, NULL};
    *ia = *ib = NULL;
    *m = 0;
    RDML_TRY(rdml_rsa_match_ids_all(ctx, ids, n, 2, idx, m));
    *ia = idx[0];
    *ib = idx[1];
    return RDML_OK;
}

int rdml_rsa_match_ids_all(rdml_ctx *ctx, const int64_t *const *ids, const int64_t *n, int s,
                           int64_t **idx, int64_t *m) {
    *m = 0;
    if (s < 1 || !ids || !n || !idx)
        return RDML_FAIL(ctx, RDML_EINTERNAL, "matching ids: need at least one list (got %d)", s);
    for (int k = 0; k < s; k++) idx[k] = NULL;
    id_pos **v = rdml_calloc(ctx, (size_t)s, sizeof *v, "id lists");
    int64_t *cur = rdml_calloc(ctx, (size_t)s, sizeof *cur, "id cursors");
    int rc = (v && cur) ? RDML_OK : ctx->code;
    int64_t nmin = INT64_MAX;
    for (int k = 0; rc == RDML_OK && k < s; k++) {
        rc = sorted_ids(ctx, ids[k], n[k], k, &v[k]);
        if (n[k] < nmin) nmin = n[k];
    }
    for (int k = 0; rc == RDML_OK && k < s; k++) {
        idx[k] = rdml_malloc(ctx, (size_t)(nmin > 0 ? nmin : 1) * sizeof **idx, "matched indices");
        if (!idx[k]) rc = ctx->code;
    }
    int64_t cnt = 0;
    /* advance every list to the largest current id until one runs out */
    while (rc == RDML_OK) {
        int done = 0;
        int64_t hi = INT64_MIN;
        for (int k = 0; k < s; k++) {
            if (cur[k] >= n[k]) {
                done = 1;
                break;
            }
            if (v[k][cur[k]].id > hi) hi = v[k][cur[k]].id;
        }
        if (done) break;
        int all = 1;
        for (int k = 0; k < s; k++) {
            while (cur[k] < n[k] && v[k][cur[k]].id < hi) cur[k]++;
            if (cur[k] >= n[k] || v[k][cur[k]].id != hi) all = 0;
        }
        if (all) {
            for (int k = 0; k < s; k++) idx[k][cnt] = v[k][cur[k]++].pos;
            cnt++;
        }
    }
    for (int k = 0; v && k < s; k++) free(v[k]);
    free(v);
    free(cur);
    if (rc != RDML_OK) {
        for (int k = 0; k < s; k++) {
            free(idx[k]);
            idx[k] = NULL;
        }
        return rc;
    }
    *m = cnt;
    return RDML_OK;
}

void rdml_rsa_subrdm(const float *rdm, int64_t n, const int64_t *idx, int64_t m, float *out) {
    for (int64_t a = 0; a < m; a++) {
        const float *row = rdm + idx[a] * n;
        for (int64_t b = 0; b < m; b++) out[a * m + b] = row[idx[b]];
    }
}

static const char *const pool_names[] = {"mean", "rsatoolbox"};

const char *rdml_rsa_pool_name(rdml_rsa_pool p) {
    if ((int)p < 0 || (int)p > 1) return "unknown";
    return pool_names[p];
}

int rdml_rsa_pool_parse(rdml_ctx *ctx, const char *name, rdml_rsa_pool *out) {
    if (!name) name = "(null)";
    for (int i = 0; i < 2; i++)
        if (strcmp(name, pool_names[i]) == 0) {
            *out = (rdml_rsa_pool)i;
            return RDML_OK;
        }
    int near = rdml_nearest(name, pool_names, 2);
    return RDML_FAIL(ctx, RDML_ECONFIG,
                     "unknown noise-ceiling pooling '%s' (valid: mean, rsatoolbox)%s%s%s", name,
                     near >= 0 ? "; did you mean '" : "", near >= 0 ? pool_names[near] : "",
                     near >= 0 ? "'?" : "");
}

/* Upper triangle of the mean of all RDMs except number `skip` (-1: all), summed in subject
 * order as numpy's mean over a stacked axis does. */
static void mean_upper(const float *const *rdms, int s, int skip, int64_t m, double *out) {
    const int64_t p = rdml_rsa_ntri(m);
    memset(out, 0, (size_t)p * sizeof *out);
    int used = 0;
    for (int k = 0; k < s; k++) {
        if (k == skip) continue;
        const float *r = rdms[k];
        int64_t t = 0;
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = i + 1; j < m; j++) out[t++] += r[i * m + j];
        used++;
    }
    for (int64_t t = 0; t < p; t++) out[t] /= (double)used;
}

/* Blocked sum (partial sums of 256 values), as Pearson sums. */
static double blocked_sum(const double *x, int64_t p, double centre, int squares) {
    double tot = 0;
    for (int64_t b = 0; b < p; b += 256) {
        const int64_t e = b + 256 < p ? b + 256 : p;
        double part = 0;
        for (int64_t t = b; t < e; t++) {
            const double d = x[t] - centre;
            part += squares ? d * d : d;
        }
        tot += part;
    }
    return tot;
}

/* (i, j) of upper-triangle index t of an m x m RDM, for messages. */
static void pair_of(int64_t t, int64_t m, int64_t *i, int64_t *j) {
    int64_t r = 0;
    while (t >= m - 1 - r) {
        t -= m - 1 - r;
        r++;
    }
    *i = r;
    *j = r + 1 + t;
}

/* rsatoolbox's pool_rdm transform of one RDM's upper triangle for the method: z-scores
 * (centred, divided by the population std) for pearson, average ranks otherwise. */
static int pool_transform(rdml_ctx *ctx, rdml_rsa_method method, const float *rdm, int64_t m,
                          double *out) {
    const int64_t p = rdml_rsa_ntri(m);
    rdml_rsa_upper(rdm, m, out);
    if (method != RDML_RSA_PEARSON) return rdml_rsa_rank(ctx, out, p, out);
    const double mean = blocked_sum(out, p, 0.0, 0) / (double)p;
    if (!isfinite(mean)) {
        for (int64_t t = 0; t < p; t++)
            if (!isfinite(out[t])) {
                int64_t i, j;
                pair_of(t, m, &i, &j);
                return RDML_FAIL(ctx, RDML_EDATA,
                                 "the RDM has %s at (%lld, %lld) (hint: check the RDM for "
                                 "undefined distances)",
                                 isnan(out[t]) ? "a NaN" : "an infinite value", (long long)i,
                                 (long long)j);
            }
        return RDML_FAIL(ctx, RDML_EDATA, "the RDM's values overflow their mean");
    }
    const double sd = sqrt(blocked_sum(out, p, mean, 1) / (double)p);
    if (!(sd > 0) || !isfinite(sd))
        return RDML_FAIL(ctx, RDML_EDATA,
                         "the RDM is constant (all %lld values equal %.9g), so it has no "
                         "z-score for rsatoolbox pooling (hint: use rdm.noise_ceiling = mean, "
                         "or leave this subject out)",
                         (long long)p, out[0]);
    for (int64_t t = 0; t < p; t++) out[t] = (out[t] - mean) / sd;
    return RDML_OK;
}


int rdml_rsa_noise_ceiling(rdml_ctx *ctx, const float *const *rdms, int s, int64_t m,
                           rdml_rsa_method method, rdml_rsa_pool pool, double *lower,
                           double *upper, double *per_lower, double *per_upper) {
    if (s < 2)
        return RDML_FAIL(ctx, RDML_EDATA,
                         "noise ceiling: needs at least 2 subjects' RDMs, got %d (hint: "
                         "select more subjects in [data] subjects)",
                         s);
    if (m < 3)
        return RDML_FAIL(ctx, RDML_EDATA,
                         "noise ceiling: the subjects share %lld images; at least 3 are needed "
                         "(hint: use subjects with overlapping NSD images)",
                         (long long)m);
    if ((int)method < 0 || (int)method > 2)
        return RDML_FAIL(ctx, RDML_EINTERNAL, "noise ceiling: unknown method %d", (int)method);
    if ((int)pool < 0 || (int)pool > 1)
        return RDML_FAIL(ctx, RDML_EINTERNAL, "noise ceiling: unknown pooling %d", (int)pool);
    for (int k = 0; k < s; k++)
        if (!rdms || !rdms[k])
            return RDML_FAIL(ctx, RDML_EINTERNAL, "noise ceiling: RDM %d is NULL", k);
    const int tb = pool == RDML_RSA_POOL_RSATOOLBOX;
    const int64_t p = rdml_rsa_ntri(m);
    double *all = rdml_malloc(ctx, (size_t)p * sizeof *all, "pooled RDM (all subjects)");
    double *oth = all ? rdml_malloc(ctx, (size_t)p * sizeof *oth, "pooled RDM (others)") : NULL;
    double *one = oth ? rdml_malloc(ctx, (size_t)p * sizeof *one, "subject RDM") : NULL;
    double *sum = one && tb ? rdml_malloc(ctx, (size_t)p * sizeof *sum, "sum of transformed RDMs")
                            : NULL;
    int rc = one && (sum || !tb) ? RDML_OK : ctx->code;
    int bad = -1; /* subject whose transform or comparison failed */
    double lo = 0, up = 0;
    if (rc == RDML_OK && !tb) mean_upper(rdms, s, -1, m, all);
    for (int k = 0; rc == RDML_OK && tb && k < s; k++) { /* sum in subject order */
        rc = pool_transform(ctx, method, rdms[k], m, k ? oth : sum);
        if (rc) bad = k;
        for (int64_t t = 0; rc == RDML_OK && k && t < p; t++) sum[t] += oth[t];
    }
    for (int64_t t = 0; rc == RDML_OK && tb && t < p; t++) all[t] = sum[t] / (double)s;
    for (int k = 0; rc == RDML_OK && k < s; k++) {
        double cl = 0, cu = 0;
        rdml_rsa_upper(rdms[k], m, one);
        if (!tb) mean_upper(rdms, s, k, m, oth);
        else {
            rc = pool_transform(ctx, method, rdms[k], m, oth);
            for (int64_t t = 0; rc == RDML_OK && t < p; t++)
                oth[t] = (sum[t] - oth[t]) / (double)(s - 1);
        }
        if (rc == RDML_OK) rc = rdml_rsa_correlate(ctx, method, one, all, p, &cu);
        if (rc == RDML_OK) rc = rdml_rsa_correlate(ctx, method, one, oth, p, &cl);
        if (rc != RDML_OK) {
            bad = k;
            break;
        }
        if (per_lower) per_lower[k] = cl;
        if (per_upper) per_upper[k] = cu;
        lo += cl;
        up += cu;
    }
    if (rc != RDML_OK && bad >= 0)
        rdml_ctx_prefix(ctx, "noise ceiling (%s, %s pooling), subject RDM %d of %d",
                        rdml_rsa_method_name(method), rdml_rsa_pool_name(pool), bad, s);
    if (rc == RDML_OK) {
        *lower = lo / s;
        *upper = up / s;
    }
    free(all);
    free(oth);
    free(one);
    free(sum);
    return rc;
}
