/* Matching images across subjects by NSD id, sub-RDMs on the matched images, and the
 * leave-one-subject-out noise ceiling. Matching sorts (id, position) pairs of each list and
 * walks them together, so it is O(n log n) and reports the first duplicate id it meets. The
 * noise ceiling follows rsatoolbox's boot_noise_ceiling (Nili et al. 2014) without the
 * bootstrap: upper = mean over subjects of compare(rdm_k, mean of all RDMs), lower = mean of
 * compare(rdm_k, mean of the other RDMs). One deliberate difference from rsatoolbox: the
 * pooled RDM is always the arithmetic mean of the raw dissimilarities (summed in subject
 * order, in double), where rsatoolbox's pool_rdm first z-scores (corr) or rank-transforms
 * (spearman, tau) each RDM. Left out: the bootstrap over images or subjects, the
 * cross-validated variant, and weights per subject. */
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

static int correlate(rdml_ctx *ctx, rdml_rsa_method method, const double *a, const double *b,
                     int64_t p, double *out) {
    switch (method) {
    case RDML_RSA_SPEARMAN: return rdml_rsa_spearman(ctx, a, b, p, out);
    case RDML_RSA_PEARSON: return rdml_rsa_pearson(ctx, a, b, p, out);
    case RDML_RSA_KENDALL_A: return rdml_rsa_kendall_tau_a(ctx, a, b, p, out);
    }
    return RDML_FAIL(ctx, RDML_EINTERNAL, "noise ceiling: unknown method %d", (int)method);
}

int rdml_rsa_noise_ceiling(rdml_ctx *ctx, const float *const *rdms, int s, int64_t m,
                           rdml_rsa_method method, double *lower, double *upper,
                           double *per_lower, double *per_upper) {
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
    for (int k = 0; k < s; k++)
        if (!rdms || !rdms[k])
            return RDML_FAIL(ctx, RDML_EINTERNAL, "noise ceiling: RDM %d is NULL", k);
    const int64_t p = rdml_rsa_ntri(m);
    double *all = rdml_malloc(ctx, (size_t)p * sizeof *all, "mean RDM (all subjects)");
    double *oth = all ? rdml_malloc(ctx, (size_t)p * sizeof *oth, "mean RDM (others)") : NULL;
    double *one = oth ? rdml_malloc(ctx, (size_t)p * sizeof *one, "subject RDM") : NULL;
    int rc = one ? RDML_OK : ctx->code;
    double lo = 0, up = 0;
    if (rc == RDML_OK) mean_upper(rdms, s, -1, m, all);
    for (int k = 0; rc == RDML_OK && k < s; k++) {
        double cl = 0, cu = 0;
        rdml_rsa_upper(rdms[k], m, one);
        mean_upper(rdms, s, k, m, oth);
        rc = correlate(ctx, method, one, all, p, &cu);
        if (rc == RDML_OK) rc = correlate(ctx, method, one, oth, p, &cl);
        if (rc != RDML_OK) {
            rdml_ctx_prefix(ctx, "noise ceiling (%s), subject RDM %d of %d",
                            rdml_rsa_method_name(method), k, s);
            break;
        }
        if (per_lower) per_lower[k] = cl;
        if (per_upper) per_upper[k] = cu;
        lo += cl;
        up += cu;
    }
    if (rc == RDML_OK) {
        *lower = lo / s;
        *upper = up / s;
    }
    free(all);
    free(oth);
    free(one);
    return rc;
}
