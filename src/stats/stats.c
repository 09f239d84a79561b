/* rdml/stats.h: scores, noise ceiling, bootstrap over images / subjects, permutation test and
 * paired comparisons of models against brain RDM values on a pair list. The definitions are
 * in the header; docs/evaluate.md ("Statistics") explains them for users. */
#include <limits.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rdml/mpiutil.h"
#include "stats_priv.h"

/* ---- names for messages ---- */

static const char *model_name(const rdml_stats_data *d, int k, char *buf, size_t len) {
    if (d->model_names && d->model_names[k]) return d->model_names[k];
    snprintf(buf, len, "model %d", k);
    return buf;
}

static const char *subject_name(const rdml_stats_data *d, int s, char *buf, size_t len) {
    if (d->subject_names && d->subject_names[s]) return d->subject_names[s];
    snprintf(buf, len, "subject %d", s);
    return buf;
}

static int nvec_models(const rdml_stats_data *d) {
    return d->models_per_subject ? d->nmodels * d->nsubj : d->nmodels;
}
static int mvi(const rdml_stats_data *d, int k, int s) {
    return d->models_per_subject ? k * d->nsubj + s : k;
}

/* ---- checks ---- */

static int check_vector(rdml_ctx *ctx, const rdml_stats_data *d, const double *x,
                        const char *what) {
    if (!x) return RDML_FAIL(ctx, RDML_EINTERNAL, "stats: %s: NULL value vector", what);
    for (int64_t p = 0; p < d->npairs; p++)
        if (!isfinite(x[p]))
            return RDML_FAIL(ctx, RDML_EDATA,
                             "stats: %s has %s at pair %lld (images %lld, %lld) (hint: check "
                             "the RDM or the model's predictions for undefined values)",
                             what, isnan(x[p]) ? "a NaN" : "an infinite value", (long long)p,
                             (long long)d->pi[p], (long long)d->pj[p]);
    for (int64_t p = 1; p < d->npairs; p++)
        if (x[p] != x[0]) return RDML_OK;
    return RDML_FAIL(ctx, RDML_EDATA,
                     "stats: %s is constant (all %lld pair values equal %.9g): its correlation "
                     "with the brain is undefined (hint: a model RDM with a single distinct "
                     "value carries no structure; check its features or leave it out)",
                     what, (long long)d->npairs, x[0]);
}

int rdml_stats_images(rdml_ctx *ctx, const rdml_stats_data *d, int64_t **images, int64_t *u) {
    *images = NULL;
    *u = 0;
    if (d->n < 1 || d->npairs < 1 || !d->pi || !d->pj)
        return RDML_FAIL(ctx, RDML_EINTERNAL, "stats: no pairs (n = %lld, P = %lld)",
                         (long long)d->n, (long long)d->npairs);
    uint8_t *seen = rdml_calloc(ctx, (size_t)d->n, 1, "image flags");
    if (!seen) return ctx->code;
    for (int64_t p = 0; p < d->npairs; p++) {
        const int64_t i = d->pi[p], j = d->pj[p];
        if (i < 0 || i >= d->n || j < 0 || j >= d->n || i == j) {
            free(seen);
            return RDML_FAIL(ctx, RDML_EDATA,
                             "stats: pair %lld is (%lld, %lld): image indices must be distinct "
                             "and in [0, %lld)",
                             (long long)p, (long long)i, (long long)j, (long long)d->n);
        }
        seen[i] = seen[j] = 1;
    }
    int64_t m = 0;
    for (int64_t i = 0; i < d->n; i++) m += seen[i];
    int64_t *im = rdml_malloc(ctx, (size_t)m * sizeof *im, "image list");
    if (im) {
        m = 0;
        for (int64_t i = 0; i < d->n; i++)
            if (seen[i]) im[m++] = i;
        *images = im;
        *u = m;
    }
    free(seen);
    return im ? RDML_OK : ctx->code;
}

int rdml_stats_check(rdml_ctx *ctx, const rdml_stats_data *d, const rdml_stats_opts *o) {
    char nb[64], sb[64], what[300];
    if (!d) return RDML_FAIL(ctx, RDML_EINTERNAL, "stats: NULL data");
    if (o) {
        if ((int)o->method < 0 || (int)o->method > 2)
            return RDML_FAIL(ctx, RDML_ECONFIG,
                             "stats: unknown comparison method %d (valid: spearman, pearson, "
                             "kendall_tau_a)",
                             (int)o->method);
        if ((int)o->pool < 0 || (int)o->pool > 1)
            return RDML_FAIL(ctx, RDML_ECONFIG,
                             "stats: unknown noise-ceiling pooling %d (valid: mean, rsatoolbox)",
                             (int)o->pool);
        if (!(o->level > 0 && o->level < 1))
            return RDML_FAIL(ctx, RDML_ECONFIG,
                             "stats: interval level %g is not in (0, 1) (hint: 0.95 for 95%% "
                             "intervals)",
                             o->level);
        if (o->nboot < 0 || o->nperm < 0)
            return RDML_FAIL(ctx, RDML_ECONFIG,
                             "stats: negative number of bootstrap samples (%lld) or "
                             "permutations (%lld)",
                             (long long)o->nboot, (long long)o->nperm);
        if (o->boot_subjects && d->nsubj < 2)
            return RDML_FAIL(ctx, RDML_ECONFIG,
                             "stats: a bootstrap over subjects needs at least 2 subjects, got %d "
                             "(hint: turn the subject bootstrap off for one subject)",
                             d->nsubj);
    }
    if (d->npairs < 3)
        return RDML_FAIL(ctx, RDML_EDATA,
                         "stats: %lld pairs; a comparison needs at least 3 (3 images)",
                         (long long)d->npairs);
    if ((uint64_t)d->npairs > UINT32_MAX)
        return RDML_FAIL(ctx, RDML_EDATA, "stats: %lld pairs exceed the supported %llu",
                         (long long)d->npairs, (unsigned long long)UINT32_MAX);
    if (d->nsubj < 1 || !d->brain)
        return RDML_FAIL(ctx, RDML_EINTERNAL, "stats: %d brain vectors", d->nsubj);
    if (d->nmodels < 1 || !d->models)
        return RDML_FAIL(ctx, RDML_EDATA, "stats: no model to evaluate (%d models)",
                         d->nmodels);
    int64_t *im = NULL, u = 0;
    RDML_TRY(rdml_stats_images(ctx, d, &im, &u));
    free(im);
    if (u < RDML_STATS_MIN_IMAGES)
        return RDML_FAIL(ctx, RDML_EDATA,
                         "stats: the %lld pairs touch only %lld images; a comparison and its "
                         "bootstrap need at least %d distinct images (3 pairs: rsatoolbox drops "
                         "bootstrap samples with fewer) (hint: evaluate on more images)",
                         (long long)d->npairs, (long long)u, RDML_STATS_MIN_IMAGES);
    for (int s = 0; s < d->nsubj; s++) {
        snprintf(what, sizeof what, "the brain RDM of %s", subject_name(d, s, sb, sizeof sb));
        RDML_TRY(check_vector(ctx, d, d->brain[s], what));
    }
    for (int k = 0; k < d->nmodels; k++)
        for (int s = 0; s < (d->models_per_subject ? d->nsubj : 1); s++) {
            if (d->models_per_subject)
                snprintf(what, sizeof what, "model '%s' (%s)", model_name(d, k, nb, sizeof nb),
                         subject_name(d, s, sb, sizeof sb));
            else
                snprintf(what, sizeof what, "model '%s'", model_name(d, k, nb, sizeof nb));
            RDML_TRY(check_vector(ctx, d, d->models[mvi(d, k, s)], what));
        }
    return RDML_OK;
}

/* ---- observed scores ---- */

int rdml_stats_scores(rdml_ctx *ctx, const rdml_stats_data *d, rdml_rsa_method method,
                      double *score, double *per_subject) {
    rdml_stats_opts o;
    rdml_stats_opts_default(&o);
    o.method = method;
    o.nboot = o.nperm = 0;
    RDML_TRY(rdml_stats_check(ctx, d, &o));
    const int S = d->nsubj;
    for (int k = 0; k < d->nmodels; k++) {
        double sum = 0;
        for (int s = 0; s < S; s++) {
            double r;
            int rc = rdml_rsa_correlate(ctx, method, d->brain[s], d->models[mvi(d, k, s)],
                                        d->npairs, &r);
            if (rc) {
                char nb[64], sb[64];
                return rdml_ctx_prefix(ctx, "stats: %s of model '%s' with %s",
                                       rdml_rsa_method_name(method),
                                       model_name(d, k, nb, sizeof nb),
                                       subject_name(d, s, sb, sizeof sb));
            }
            if (per_subject) per_subject[(int64_t)k * S + s] = r;
            sum += r;
        }
        score[k] = sum / S;
    }
    return RDML_OK;
}

/* ---- weighted machinery shared by the noise ceiling and the bootstrap ---- */

typedef struct stx {
    const rdml_stats_data *d;
    rdml_rsa_method method;
    rdml_rsa_pool pooling;
    int64_t P, u;
    int S, M, Mv;
    int64_t *images;
    int64_t *la, *lb;    /* local image positions of each pair (0..u-1) */
    stats_wsort *wb;     /* S brain sorts (spearman / kendall) */
    stats_wsort *wm;     /* Mv model sorts */
    /* per-sample work */
    double *cb;          /* S x P: brain transforms, centred */
    double *cm;          /* Mv x P: model transforms, centred */
    double *nb_, *nm;    /* their norms */
    int *okb, *okm;
    double *pt;          /* S x P: pool transforms of each subject */
    double *pool, *poolc, *tmp; /* P each */
    int64_t *w, *c;      /* P weights, u counts */
    int64_t wsum;        /* sum of w */
    int *dcount;         /* S subject counts */
    double *scores;      /* M */
} stx;

static void stx_free(stx *x) {
    free(x->images);
    free(x->la);
    free(x->lb);
    for (int s = 0; x->wb && s < x->S; s++) stats_wsort_free(&x->wb[s]);
    for (int k = 0; x->wm && k < x->Mv; k++) stats_wsort_free(&x->wm[k]);
    free(x->wb);
    free(x->wm);
    free(x->cb);
    free(x->cm);
    free(x->nb_);
    free(x->nm);
    free(x->okb);
    free(x->okm);
    free(x->pt);
    free(x->pool);
    free(x->poolc);
    free(x->tmp);
    free(x->w);
    free(x->c);
    free(x->dcount);
    free(x->scores);
    memset(x, 0, sizeof *x);
}

/* sorts: the sort orders of every vector (the bootstrap's and the noise ceiling's weighted
 * ranks); 0 when neither runs (a P log P radix sort per vector saved). */
static int stx_make(rdml_ctx *ctx, const rdml_stats_data *d, rdml_rsa_method method,
                    rdml_rsa_pool pool, int sorts, stx *x) {
    memset(x, 0, sizeof *x);
    x->d = d;
    x->method = method;
    x->pooling = pool;
    x->P = d->npairs;
    x->S = d->nsubj;
    x->M = d->nmodels;
    x->Mv = nvec_models(d);
    const int64_t P = x->P;
    int rc = rdml_stats_images(ctx, d, &x->images, &x->u);
    if (rc) return rc;
    int64_t *pos = rdml_malloc(ctx, (size_t)d->n * sizeof *pos, "image positions");
    x->la = rdml_malloc(ctx, (size_t)P * sizeof *x->la, "pair positions");
    x->lb = rdml_malloc(ctx, (size_t)P * sizeof *x->lb, "pair positions");
    x->cb = rdml_malloc(ctx, (size_t)(P * x->S) * sizeof *x->cb, "brain transforms");
    x->cm = rdml_malloc(ctx, (size_t)(P * x->Mv) * sizeof *x->cm, "model transforms");
    x->nb_ = rdml_calloc(ctx, (size_t)x->S, sizeof *x->nb_, "norms");
    x->nm = rdml_calloc(ctx, (size_t)x->Mv, sizeof *x->nm, "norms");
    x->okb = rdml_calloc(ctx, (size_t)x->S, sizeof *x->okb, "flags");
    x->okm = rdml_calloc(ctx, (size_t)x->Mv, sizeof *x->okm, "flags");
    x->pt = rdml_malloc(ctx, (size_t)(P * x->S) * sizeof *x->pt, "pool transforms");
    x->pool = rdml_malloc(ctx, (size_t)P * sizeof *x->pool, "pooled RDM");
    x->poolc = rdml_malloc(ctx, (size_t)P * sizeof *x->poolc, "pooled RDM");
    x->tmp = rdml_malloc(ctx, (size_t)P * sizeof *x->tmp, "work vector");
    x->w = rdml_malloc(ctx, (size_t)P * sizeof *x->w, "pair weights");
    x->c = rdml_malloc(ctx, (size_t)x->u * sizeof *x->c, "image counts");
    x->dcount = rdml_malloc(ctx, (size_t)x->S * sizeof *x->dcount, "subject counts");
    x->scores = rdml_malloc(ctx, (size_t)x->M * sizeof *x->scores, "sample scores");
    x->wb = rdml_calloc(ctx, (size_t)x->S, sizeof *x->wb, "sorts");
    x->wm = rdml_calloc(ctx, (size_t)x->Mv, sizeof *x->wm, "sorts");
    if (!pos || !x->la || !x->lb || !x->cb || !x->cm || !x->nb_ || !x->nm || !x->okb ||
        !x->okm || !x->pt || !x->pool || !x->poolc || !x->tmp || !x->w || !x->c ||
        !x->dcount || !x->scores || !x->wb || !x->wm) {
        free(pos);
        stx_free(x);
        return ctx->code;
    }
    for (int64_t a = 0; a < x->u; a++) pos[x->images[a]] = a;
    for (int64_t p = 0; p < P; p++) {
        x->la[p] = pos[d->pi[p]];
        x->lb[p] = pos[d->pj[p]];
    }
    free(pos);
    if (method != RDML_RSA_PEARSON && sorts) {
        for (int s = 0; !rc && s < x->S; s++) rc = stats_wsort_make(ctx, d->brain[s], P, &x->wb[s]);
        for (int k = 0; !rc && k < x->Mv; k++) rc = stats_wsort_make(ctx, d->models[k], P, &x->wm[k]);
    }
    if (method == RDML_RSA_SPEARMAN && sorts) { /* the bootstrap's weights come from image counts */
        for (int s = 0; !rc && s < x->S; s++) rc = stats_wsort_attach_pairs(ctx, &x->wb[s], x->la, x->lb);
        for (int k = 0; !rc && k < x->Mv; k++) rc = stats_wsort_attach_pairs(ctx, &x->wm[k], x->la, x->lb);
    }
    if (rc) stx_free(x);
    return rc;
}

/* Every image once: weights 1 (the observed data). */
static void stx_unit_weights(stx *x) {
    for (int64_t a = 0; a < x->u; a++) x->c[a] = 1;
    for (int64_t p = 0; p < x->P; p++) x->w[p] = 1;
    x->wsum = x->P;
}

/* The method's transform of x under weights w, centred, into out; its norm. 0: constant. */
static int wtransform(const stx *x, const double *v, const stats_wsort *ws, const int64_t *w,
                     double *out, double *norm) {
    if (x->method == RDML_RSA_SPEARMAN) {
        if (w == x->w && ws->sa) /* a bootstrap sample: weights c_i c_j from the counts */
            return stats_wrank_counts(ws, x->c, x->wsum, x->tmp, out, norm);
        return stats_wrank_centered(ws, w, x->tmp, out, norm);
    }
    return stats_wcenter(v, w, x->P, out, norm);
}

/* compare_w(a, b) where a is already prepared (centred transform ca / norm na, sort wa). b is
 * a fresh vector (a pool): prepared here. NaN when undefined. */
static int wcompare_fresh(rdml_ctx *ctx, stx *x, const double *ca, double na,
                          const stats_wsort *wa, const double *b, const int64_t *w, double *out) {
    *out = NAN;
    const int64_t P = x->P;
    if (x->method == RDML_RSA_PEARSON) {
        double nb;
        if (!stats_wcenter(b, w, P, x->poolc, &nb)) return RDML_OK;
        *out = stats_clamp(stats_wdot(ca, x->poolc, w, P) / (na * nb));
        return RDML_OK;
    }
    stats_wsort sb;
    RDML_TRY(stats_wsort_make(ctx, b, P, &sb));
    if (x->method == RDML_RSA_KENDALL_A) {
        int rc = stats_wkendall(ctx, wa, &sb, w, out);
        stats_wsort_free(&sb);
        return rc;
    }
    double nb;
    int ok = stats_wrank_centered(&sb, w, x->tmp, x->poolc, &nb);
    stats_wsort_free(&sb);
    if (ok) *out = stats_clamp(stats_wdot(ca, x->poolc, w, P) / (na * nb));
    return RDML_OK;
}

/* Prepare the brain vectors of the subjects with dcount > 0 under w (cb / nb_ / okb). */
static void prep_brains(stx *x, const int64_t *w, const int *dc) {
    for (int s = 0; s < x->S; s++) {
        x->okb[s] = 0;
        if (dc && !dc[s]) continue;
        if (x->method == RDML_RSA_KENDALL_A) {
            x->okb[s] = 1;
            continue;
        }
        x->okb[s] = wtransform(x, x->d->brain[s], &x->wb[s], w, x->cb + (int64_t)s * x->P,
                               &x->nb_[s]);
    }
}

/* Noise ceiling under weights w and subject counts dc (NULL: 1 each); needs prep_brains.
 * NaN when undefined (one distinct subject, a constant transform or comparison). */
static int wnoise_ceiling(rdml_ctx *ctx, stx *x, const int64_t *w, const int *dc, double *lower,
                          double *upper) {
    *lower = *upper = NAN;
    const int S = x->S;
    const int64_t P = x->P;
    int distinct = 0;
    for (int s = 0; s < S; s++) distinct += !dc || dc[s] > 0;
    if (distinct < 2) return RDML_OK;
    /* each subject's pool transform (rsatoolbox pool_rdm): ranks / z-scores, or raw values */
    for (int s = 0; s < S; s++) {
        if (dc && !dc[s]) continue;
        double *t = x->pt + (int64_t)s * P;
        const double *v = x->d->brain[s];
        if (x->pooling == RDML_RSA_POOL_MEAN) {
            memcpy(t, v, (size_t)P * sizeof *t);
        } else if (x->method == RDML_RSA_PEARSON) {
            double nrm, sw = 0;
            if (!stats_wcenter(v, w, P, t, &nrm)) return RDML_OK;
            for (int64_t p = 0; p < P; p++) sw += (double)w[p];
            const double sd = nrm / sqrt(sw); /* population std of the expanded vector */
            for (int64_t p = 0; p < P; p++) t[p] /= sd;
        } else {
            if (!stats_wrank(&x->wb[s], w, t)) return RDML_OK;
        }
    }
    double lo = 0, up = 0;
    for (int pass = 0; pass < 2; pass++) {
        /* pass 0: pool of all (with multiplicity); pass 1: leave-one-out per subject */
        for (int k = 0; k < (pass ? S : 1); k++) {
            if (pass && dc && !dc[k]) continue;
            double tot = 0;
            memset(x->pool, 0, (size_t)P * sizeof *x->pool);
            for (int s = 0; s < S; s++) {
                const int m = dc ? dc[s] : 1;
                if (!m || (pass && s == k)) continue;
                const double *t = x->pt + (int64_t)s * P;
                for (int64_t p = 0; p < P; p++) x->pool[p] += (double)m * t[p];
                tot += m;
            }
            for (int64_t p = 0; p < P; p++) x->pool[p] /= tot;
            for (int s = 0; s < (pass ? 1 : S); s++) {
                const int kk = pass ? k : s;
                if (!pass && dc && !dc[kk]) continue;
                if (!x->okb[kk]) return RDML_OK;
                double r;
                RDML_TRY(wcompare_fresh(ctx, x, x->cb + (int64_t)kk * P, x->nb_[kk], &x->wb[kk],
                                        x->pool, w, &r));
                if (isnan(r)) return RDML_OK;
                if (pass) lo += r;
                else up += r;
            }
        }
    }
    *lower = lo / distinct;
    *upper = up / distinct;
    return RDML_OK;
}

int rdml_stats_noise_ceiling(rdml_ctx *ctx, const rdml_stats_data *d, rdml_rsa_method method,
                             rdml_rsa_pool pool, double *lower, double *upper) {
    rdml_stats_opts o;
    rdml_stats_opts_default(&o);
    o.method = method;
    o.pool = pool;
    RDML_TRY(rdml_stats_check(ctx, d, &o));
    if (d->nsubj < 2)
        return RDML_FAIL(ctx, RDML_EDATA,
                         "stats: the noise ceiling needs at least 2 subjects' RDMs on the same "
                         "pairs, got %d",
                         d->nsubj);
    stx x;
    RDML_TRY(stx_make(ctx, d, method, pool, 1, &x));
    stx_unit_weights(&x);
    prep_brains(&x, x.w, NULL);
    int rc = wnoise_ceiling(ctx, &x, x.w, NULL, lower, upper);
    stx_free(&x);
    if (!rc && (isnan(*lower) || isnan(*upper)))
        rc = RDML_FAIL(ctx, RDML_EDATA,
                       "stats: the noise ceiling is undefined (a pooled RDM is constant)");
    return rc;
}

/* One bootstrap sample: row[0..M-1] scores, row[M], row[M+1] the noise ceiling (NaN when
 * undefined). Returns RDML_OK; an undefined sample has NaN scores. */
static int boot_sample(rdml_ctx *ctx, stx *x, const rdml_stats_opts *o, int64_t b, int64_t *idx,
                       int *sidx, double *row) {
    const int S = x->S, M = x->M;
    const int64_t P = x->P, u = x->u;
    for (int k = 0; k < M + 2; k++) row[k] = NAN;
    rdml_stats_boot_images(o->seed, o->key, b, u, idx);
    memset(x->c, 0, (size_t)u * sizeof *x->c);
    int64_t distinct = 0;
    for (int64_t a = 0; a < u; a++) distinct += x->c[idx[a]]++ == 0;
    if (distinct < RDML_STATS_MIN_IMAGES) return RDML_OK;
    x->wsum = 0;
    for (int64_t p = 0; p < P; p++) x->wsum += x->w[p] = x->c[x->la[p]] * x->c[x->lb[p]];
    int *dc = NULL;
    if (o->boot_subjects) {
        rdml_stats_boot_subjects(o->seed, o->key, b, S, sidx);
        dc = x->dcount;
        memset(dc, 0, (size_t)S * sizeof *dc);
        for (int s = 0; s < S; s++) dc[sidx[s]]++;
    }
    prep_brains(x, x->w, dc);
    for (int s = 0; s < S; s++)
        if ((!dc || dc[s]) && !x->okb[s]) return RDML_OK;
    /* model transforms */
    for (int v = 0; v < x->Mv; v++) {
        const int s = x->d->models_per_subject ? v % S : -1;
        x->okm[v] = 0;
        if (s >= 0 && dc && !dc[s]) continue;
        if (x->method == RDML_RSA_KENDALL_A) {
            x->okm[v] = 1;
            continue;
        }
        x->okm[v] = wtransform(x, x->d->models[v], &x->wm[v], x->w, x->cm + (int64_t)v * P,
                               &x->nm[v]);
        if (!x->okm[v]) return RDML_OK;
    }
    double *scores = x->scores;
    for (int k = 0; k < M; k++) {
        double sum = 0;
        int tot = 0;
        for (int s = 0; s < S; s++) {
            const int m = dc ? dc[s] : 1;
            if (!m) continue;
            const int v = mvi(x->d, k, s);
            double r;
            if (x->method == RDML_RSA_KENDALL_A)
                RDML_TRY(stats_wkendall(ctx, &x->wb[s], &x->wm[v], x->w, &r));
            else
                r = stats_clamp(stats_wdot(x->cb + (int64_t)s * P, x->cm + (int64_t)v * P, x->w,
                                           P) /
                                (x->nb_[s] * x->nm[v]));
            if (isnan(r)) return RDML_OK;
            sum += m * r;
            tot += m;
        }
        scores[k] = sum / tot;
    }
    double lo = NAN, up = NAN;
    if (S >= 2) RDML_TRY(wnoise_ceiling(ctx, x, x->w, dc, &lo, &up));
    for (int k = 0; k < M; k++) row[k] = scores[k];
    row[M] = lo;
    row[M + 1] = up;
    return RDML_OK;
}

/* ---- permutation test ---- */

typedef struct ptx {
    rdml_stats_perm_scheme scheme;
    int64_t P, u, n;
    int S, M, Mv;
    rdml_rsa_method method;
    const rdml_stats_data *d;
    const int64_t *la, *lb, *images;
    double *T;      /* IMAGES: S x u x u brain values (normalised transforms; raw for kendall),
                     * or with tri S x P in canonical upper-triangle order */
    int tri;
    /* IMAGES above max_matrix_bytes: the full S x u x u matrix of the transforms before
     * normalisation in 4 bytes per value when they are exact there (spearman: twice the
     * average rank, a uint32; pearson and kendall: the value as a float, true of float32
     * RDMs); a permuted row is then read from one place, as with T, and decoded by the
     * normalisation's own arithmetic, so the null scores are T's bit for bit. The triangle
     * (tri) indexes across rows: a cache miss per value, ~5x slower at 9841 images. */
    uint32_t *Tk;   /* spearman: 2 x rank */
    float *Tf;      /* pearson, kendall */
    double *cmean, *cnrm; /* S: the normalisation of each subject's transform (kendall: 0, 1) */
    double *zm;     /* Mv x P: models, normalised transforms (canonical order for IMAGES) */
    double *zb;     /* PAIRS: S x P normalised brain transforms (raw for kendall) */
    double *mraw;   /* kendall: Mv x P raw model values (canonical order for IMAGES) */
    double *g;      /* P gathered brain values */
    int64_t *q;     /* PAIRS: permutation of P / IMAGES*: of u */
} ptx;

static void ptx_free(ptx *t) {
    free(t->T);
    free(t->Tk);
    free(t->Tf);
    free(t->cmean);
    free(t->cnrm);
    free(t->zm);
    free(t->zb);
    free(t->mraw);
    free(t->g);
    free(t->q);
    memset(t, 0, sizeof *t);
}

/* The mean of x and the norm of x - mean; 0 when x is constant. normalise's arithmetic, which
 * the compact permutation matrices (ptx.Tk, .Tf) repeat value by value. */
static int moments(const double *x, int64_t p, double *mean, double *nrm) {
    double s = 0;
    int constant = 1;
    for (int64_t i = 0; i < p; i++) {
        s += x[i];
        constant &= x[i] == x[0];
    }
    if (constant) return 0;
    *mean = s / (double)p;
    double ss = 0;
    for (int64_t i = 0; i < p; i++) {
        const double v = x[i] - *mean;
        ss += v * v;
    }
    *nrm = sqrt(ss);
    return 1;
}

/* x -> (t(x) - mean) / sqrt(sum (t(x) - mean)^2) with t = average ranks (spearman) or
 * identity (pearson), into out (may be x). 0 when constant. */
static int normalise(rdml_ctx *ctx, rdml_rsa_method m, const double *x, int64_t p, double *out,
                     int *err) {
    *err = 0;
    if (m == RDML_RSA_SPEARMAN) {
        if (rdml_rsa_rank(ctx, x, p, out)) {
            *err = 1;
            return 0;
        }
        x = out;
    }
    double mean, nrm;
    if (!moments(x, p, &mean, &nrm)) return 0;
    for (int64_t i = 0; i < p; i++) out[i] = (x[i] - mean) / nrm;
    return 1;
}

static double dot4(const double *a, const double *b, int64_t n) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

/* Is the pair list complete over its u images (each unordered pair exactly once)? If so,
 * canon[t] = the pair at canonical (row-major upper-triangle) position t. */
static int complete_pairs(rdml_ctx *ctx, const stx *x, int64_t **canon, int *complete) {
    *complete = 0;
    *canon = NULL;
    const int64_t u = x->u, P = x->P;
    if (P != u * (u - 1) / 2) return RDML_OK;
    int64_t *c = rdml_malloc(ctx, (size_t)P * sizeof *c, "canonical pair order");
    if (!c) return ctx->code;
    for (int64_t t = 0; t < P; t++) c[t] = -1;
    for (int64_t p = 0; p < P; p++) {
        int64_t a = x->la[p], b = x->lb[p];
        if (a > b) {
            int64_t t = a;
            a = b;
            b = t;
        }
        const int64_t t = a * (2 * u - a - 1) / 2 + (b - a - 1);
        if (c[t] >= 0) {
            free(c);
            return RDML_OK; /* a repeated pair: not complete */
        }
        c[t] = p;
    }
    *canon = c;
    *complete = 1;
    return RDML_OK;
}

/* The compact full matrices of the IMAGES scheme (ptx.Tk / .Tf): 1 when built, 0 when some
 * value is not exact in 4 bytes (nothing kept; the caller indexes the triangle), -1 on an
 * error (ctx set). t->g is the P-long scratch. */
static int ptx_compact(rdml_ctx *ctx, const stx *x, const int64_t *canon, ptx *t) {
    const rdml_stats_data *d = x->d;
    const int64_t P = t->P, u = t->u, uu = u * u;
    const int S = x->S;
    const int spear = x->method == RDML_RSA_SPEARMAN, kendall = x->method == RDML_RSA_KENDALL_A;
    double *o = t->g;
    t->cmean = rdml_malloc(ctx, (size_t)S * sizeof *t->cmean, "permutation norms");
    t->cnrm = t->cmean ? rdml_malloc(ctx, (size_t)S * sizeof *t->cnrm, "permutation norms") : NULL;
    if (!t->cnrm) return -1;
    if (spear) t->Tk = rdml_malloc(ctx, (size_t)(S * uu) * sizeof *t->Tk, "brain matrices");
    else t->Tf = rdml_malloc(ctx, (size_t)(S * uu) * sizeof *t->Tf, "brain matrices");
    if (!t->Tk && !t->Tf) return -1;
    int exact = 1;
    for (int s = 0; s < S && exact; s++) {
        for (int64_t q = 0; q < P; q++) o[q] = d->brain[s][canon[q]];
        if (spear && rdml_rsa_rank(ctx, o, P, o)) return -1;
        if (kendall) {
            t->cmean[s] = 0;
            t->cnrm[s] = 1;
        } else if (!moments(o, P, &t->cmean[s], &t->cnrm[s])) {
            RDML_FAIL(ctx, RDML_EINTERNAL, "stats: constant brain");
            return -1;
        }
        uint32_t *K = spear ? t->Tk + (int64_t)s * uu : NULL;
        float *F = spear ? NULL : t->Tf + (int64_t)s * uu;
        int64_t q = 0;
        for (int64_t a = 0; a < u && exact; a++) {
            if (K) K[a * u + a] = 0;
            else F[a * u + a] = 0;
            for (int64_t b = a + 1; b < u; b++, q++) {
                if (K) {
                    const double k2 = 2.0 * o[q];
                    const uint32_t k = k2 >= 0 && k2 < 4294967296.0 ? (uint32_t)k2 : 0;
                    exact &= (double)k * 0.5 == o[q];
                    K[a * u + b] = K[b * u + a] = k;
                } else {
                    const float f = (float)o[q];
                    exact &= (double)f == o[q];
                    F[a * u + b] = F[b * u + a] = f;
                }
            }
        }
    }
    if (exact) {
        t->tri = 0;
        return 1;
    }
    free(t->Tk);
    free(t->Tf);
    free(t->cmean);
    free(t->cnrm);
    t->Tk = NULL;
    t->Tf = NULL;
    t->cmean = t->cnrm = NULL;
    return 0;
}

/* An empty ptx with the sizes and views of x. */
static void ptx_init(ptx *t, const stx *x) {
    memset(t, 0, sizeof *t);
    t->P = x->P;
    t->u = x->u;
    t->n = x->d->n;
    t->S = x->S;
    t->M = x->M;
    t->Mv = x->Mv;
    t->method = x->method;
    t->d = x->d;
    t->la = x->la;
    t->lb = x->lb;
    t->images = x->images;
}

static int ptx_make(rdml_ctx *ctx, const stx *x, int64_t max_matrix_bytes, ptx *t) {
    ptx_init(t, x);
    const rdml_stats_data *d = x->d;
    const int64_t P = t->P, u = t->u;
    const int kendall = x->method == RDML_RSA_KENDALL_A;
    int64_t *canon = NULL;
    int complete = 0, err = 0;
    RDML_TRY(complete_pairs(ctx, x, &canon, &complete));
    t->scheme = complete ? RDML_STATS_PERM_IMAGES
                         : (d->brain_full ? RDML_STATS_PERM_IMAGES_FULL : RDML_STATS_PERM_PAIRS);
    t->g = rdml_malloc(ctx, (size_t)P * sizeof *t->g, "permuted brain values");
    t->q = rdml_malloc(ctx, (size_t)(complete || d->brain_full ? u : P) * sizeof *t->q,
                       "permutation");
    double *mv = rdml_malloc(ctx, (size_t)(P * x->Mv) * sizeof *mv, "model vectors");
    if (!t->g || !t->q || !mv) {
        free(canon);
        free(mv);
        ptx_free(t);
        return ctx->code;
    }
    if (kendall) t->mraw = mv;
    else t->zm = mv;
    /* model vectors: canonical order for IMAGES, pair order otherwise */
    for (int v = 0; v < x->Mv; v++) {
        double *o = mv + (int64_t)v * P;
        for (int64_t q = 0; q < P; q++) o[q] = d->models[v][complete ? canon[q] : q];
        if (!kendall && !normalise(ctx, x->method, o, P, o, &err)) {
            free(canon);
            ptx_free(t);
            return err ? ctx->code
                       : RDML_FAIL(ctx, RDML_EINTERNAL, "stats: a model vector became constant");
        }
    }
    int rc = RDML_OK;
    if (t->scheme == RDML_STATS_PERM_IMAGES) {
        /* the full symmetric matrix reads a permuted row from one place (fast); above the
         * limit the full matrix in 4 bytes per value (the memory of the triangle) when every
         * value is exact there, else the upper triangle is indexed */
        t->tri = (double)x->S * (double)u * (double)u * sizeof(double) > (double)max_matrix_bytes;
        if (t->tri) {
            int crc = ptx_compact(ctx, x, canon, t);
            if (crc < 0) {
                free(canon);
                ptx_free(t);
                return ctx->code;
            }
            if (crc == 1) {
                free(canon);
                return RDML_OK;
            }
        }
        const int64_t per = t->tri ? P : u * u;
        t->T = rdml_malloc(ctx, (size_t)(x->S * per) * sizeof *t->T, "brain matrices");
        if (!t->T) rc = ctx->code;
        for (int s = 0; !rc && s < x->S; s++) {
            double *o = t->tri ? t->T + (int64_t)s * P : t->g, *Ts = t->T + (int64_t)s * per;
            for (int64_t q = 0; q < P; q++) o[q] = d->brain[s][canon[q]];
            if (!kendall && !normalise(ctx, x->method, o, P, o, &err))
                rc = err ? ctx->code : RDML_FAIL(ctx, RDML_EINTERNAL, "stats: constant brain");
            int64_t q = 0;
            for (int64_t a = 0; !rc && !t->tri && a < u; a++) {
                Ts[a * u + a] = 0;
                for (int64_t b = a + 1; b < u; b++, q++) Ts[a * u + b] = Ts[b * u + a] = o[q];
            }
        }
    } else if (t->scheme == RDML_STATS_PERM_PAIRS) {
        t->zb = rdml_malloc(ctx, (size_t)(x->S * P) * sizeof *t->zb, "brain vectors");
        if (!t->zb) rc = ctx->code;
        for (int s = 0; !rc && s < x->S; s++) {
            double *o = t->zb + (int64_t)s * P;
            memcpy(o, d->brain[s], (size_t)P * sizeof *o);
            if (!kendall && !normalise(ctx, x->method, o, P, o, &err))
                rc = err ? ctx->code : RDML_FAIL(ctx, RDML_EINTERNAL, "stats: constant brain");
        }
    } else {
        for (int s = 0; !rc && s < x->S; s++) {
            if (!d->brain_full[s]) {
                rc = RDML_FAIL(ctx, RDML_EINTERNAL, "stats: brain_full[%d] is NULL", s);
                break;
            }
            /* every pair of touched images is reachable by a permutation: check them all */
            for (int64_t a = 0; !rc && a < u; a++)
                for (int64_t b = 0; !rc && b < u; b++) {
                    const float v = d->brain_full[s][x->images[a] * d->n + x->images[b]];
                    if (a != b && !isfinite(v)) {
                        char sb[64];
                        rc = RDML_FAIL(ctx, RDML_EDATA,
                                       "stats: the full brain RDM of %s has %s at (%lld, %lld), "
                                       "needed by the permutation test (hint: check the RDM)",
                                       subject_name(d, s, sb, sizeof sb),
                                       isnan(v) ? "a NaN" : "an infinite value",
                                       (long long)x->images[a], (long long)x->images[b]);
                    }
                }
        }
    }
    free(canon);
    if (rc) ptx_free(t);
    return rc;
}

/* Collective: the permutation test's data (ptx_make's result on `root`) on every rank. The
 * same code made it, so every rank permutes the same bits as if it had made it itself. */
static int ptx_share(rdml_ctx *ctx, MPI_Comm comm, int root, const stx *x, ptx *t) {
    int me = 0;
    MPI_Comm_rank(comm, &me);
    /* what root holds: scheme, tri, and which arrays */
    int64_t h[8] = {0};
    if (me == root)
        h[0] = t->scheme, h[1] = t->tri, h[2] = !!t->T, h[3] = !!t->Tk, h[4] = !!t->Tf,
        h[5] = !!t->cmean, h[6] = !!t->zb, h[7] = !!t->mraw;
    RDML_TRY(rdml_mpi_check(ctx, MPI_Bcast(h, 8, MPI_INT64_T, root, comm), "MPI_Bcast"));
    const int64_t P = x->P, u = x->u, S = x->S, Mv = x->Mv;
    const int64_t perT = h[1] ? P : u * u;
    int rc = RDML_OK;
    if (me != root) {
        ptx_init(t, x);
        t->scheme = (rdml_stats_perm_scheme)h[0];
        t->tri = (int)h[1];
        const int64_t nq = t->scheme == RDML_STATS_PERM_PAIRS ? P : u;
        t->g = rdml_malloc(ctx, (size_t)P * sizeof *t->g, "permuted brain values");
        t->q = t->g ? rdml_malloc(ctx, (size_t)nq * sizeof *t->q, "permutation") : NULL;
        rc = t->q ? RDML_OK : ctx->code;
        if (!rc && h[2] && !(t->T = rdml_malloc(ctx, (size_t)(S * perT) * sizeof *t->T, "brain matrices"))) rc = ctx->code;
        if (!rc && h[3] && !(t->Tk = rdml_malloc(ctx, (size_t)(S * u * u) * sizeof *t->Tk, "brain matrices"))) rc = ctx->code;
        if (!rc && h[4] && !(t->Tf = rdml_malloc(ctx, (size_t)(S * u * u) * sizeof *t->Tf, "brain matrices"))) rc = ctx->code;
        if (!rc && h[5] && (!(t->cmean = rdml_malloc(ctx, (size_t)S * sizeof *t->cmean, "permutation norms")) ||
                            !(t->cnrm = rdml_malloc(ctx, (size_t)S * sizeof *t->cnrm, "permutation norms"))))
            rc = ctx->code;
        if (!rc && h[6] && !(t->zb = rdml_malloc(ctx, (size_t)(S * P) * sizeof *t->zb, "brain vectors"))) rc = ctx->code;
        if (!rc && !(h[7] ? (t->mraw = rdml_malloc(ctx, (size_t)(Mv * P) * sizeof *t->mraw, "model vectors"))
                          : (t->zm = rdml_malloc(ctx, (size_t)(Mv * P) * sizeof *t->zm, "model vectors"))))
            rc = ctx->code;
    }
    RDML_TRY(rdml_agree(ctx, comm, rc));
    if (!rc && h[2]) rc = rdml_bcast_bytes(ctx, comm, t->T, S * perT * (int64_t)sizeof *t->T, root);
    if (!rc && h[3]) rc = rdml_bcast_bytes(ctx, comm, t->Tk, S * u * u * (int64_t)sizeof *t->Tk, root);
    if (!rc && h[4]) rc = rdml_bcast_bytes(ctx, comm, t->Tf, S * u * u * (int64_t)sizeof *t->Tf, root);
    if (!rc && h[5]) rc = rdml_bcast_bytes(ctx, comm, t->cmean, S * (int64_t)sizeof *t->cmean, root);
    if (!rc && h[5]) rc = rdml_bcast_bytes(ctx, comm, t->cnrm, S * (int64_t)sizeof *t->cnrm, root);
    if (!rc && h[6]) rc = rdml_bcast_bytes(ctx, comm, t->zb, S * P * (int64_t)sizeof *t->zb, root);
    if (!rc) rc = rdml_bcast_bytes(ctx, comm, h[7] ? t->mraw : t->zm, Mv * P * (int64_t)sizeof(double), root);
    return rdml_agree(ctx, comm, rc);
}

/* The permuted brain values of canonical row a (pairs (a, b), b > a) of subject s into g.
 * The values of a full matrix are read at random columns of row q[a]; above the caches that
 * is one memory latency per cache line. So while it reads row a it prefetches what row a + 1
 * will read (row q[a + 1] at columns q[a + 2 + bb] = qb[bb + 1], an index it loads anyway):
 * at 9,841 images (a 388 MB matrix) that takes a permutation from 0.14 to ~0.08 s. */
#define PREFETCH_NEXT(nrow, qb, bb, len) \
    do { \
        if ((nrow) && (bb) + 1 < (len)) __builtin_prefetch((nrow) + (qb)[(bb) + 1], 0, 3); \
    } while (0)
static void gather_row(const ptx *t, int s, const int64_t *q, int64_t a, double *g) {
    const int64_t u = t->u, len = u - a - 1;
    const int next = a + 2 < u;
    if (t->Tk || t->Tf) { /* normalise's arithmetic on the exact stored transform */
        const double mean = t->cmean[s], nrm = t->cnrm[s];
        const int64_t *qb = q + a + 1;
        if (t->Tk) {
            const uint32_t *base = t->Tk + (int64_t)s * u * u, *row = base + q[a] * u;
            const uint32_t *nrow = next ? base + q[a + 1] * u : NULL;
            for (int64_t bb = 0; bb < len; bb++) {
                PREFETCH_NEXT(nrow, qb, bb, len);
                g[bb] = ((double)row[qb[bb]] * 0.5 - mean) / nrm;
            }
        } else {
            const float *base = t->Tf + (int64_t)s * u * u, *row = base + q[a] * u;
            const float *nrow = next ? base + q[a + 1] * u : NULL;
            if (t->method == RDML_RSA_KENDALL_A) {
                for (int64_t bb = 0; bb < len; bb++) {
                    PREFETCH_NEXT(nrow, qb, bb, len);
                    g[bb] = (double)row[qb[bb]];
                }
            } else {
                for (int64_t bb = 0; bb < len; bb++) {
                    PREFETCH_NEXT(nrow, qb, bb, len);
                    g[bb] = ((double)row[qb[bb]] - mean) / nrm;
                }
            }
        }
        return;
    }
    if (!t->tri) {
        const double *base = t->T + (int64_t)s * u * u, *row = base + q[a] * u;
        const double *nrow = next ? base + q[a + 1] * u : NULL;
        const int64_t *qb = q + a + 1;
        for (int64_t bb = 0; bb < len; bb++) {
            PREFETCH_NEXT(nrow, qb, bb, len);
            g[bb] = row[qb[bb]];
        }
        return;
    }
    const double *tv = t->T + (int64_t)s * t->P;
    const int64_t pa = q[a];
    const int64_t base_a = pa * (2 * u - pa - 1) / 2 - pa - 1; /* + pb: entry (pa, pb > pa) */
    for (int64_t bb = 0; bb < len; bb++) {
        const int64_t pb = q[a + 1 + bb];
        g[bb] = pb > pa ? tv[base_a + pb] : tv[pb * (2 * u - pb - 1) / 2 + pa - pb - 1];
    }
}

/* Null scores of permutation b (b < 0: the identity, i.e. the observed value through the same
 * kernel) into out[M]; NaN when undefined. */
static int perm_scores(rdml_ctx *ctx, ptx *t, const rdml_stats_opts *o, int64_t b, double *out) {
    const int64_t P = t->P, u = t->u;
    const int S = t->S, M = t->M;
    const rdml_stats_data *d = t->d;
    const int kendall = t->method == RDML_RSA_KENDALL_A;
    int64_t *q = t->q;
    const int64_t nq = t->scheme == RDML_STATS_PERM_PAIRS ? P : u;
    if (b < 0)
        for (int64_t i = 0; i < nq; i++) q[i] = i;
    else if (t->scheme == RDML_STATS_PERM_PAIRS)
        rdml_stats_perm_pairs(o->seed, o->key, b, P, q);
    else
        rdml_stats_perm_images(o->seed, o->key, b, u, q);
    for (int k = 0; k < M; k++) out[k] = 0;
    for (int s = 0; s < S; s++) {
        double *g = t->g;
        if (t->scheme == RDML_STATS_PERM_IMAGES && !kendall) {
            /* row by row: gather the permuted row segment (stays in L1), then every model's
             * dot product with its canonical segment; no P-long temporary */
            double acc[8];
            int64_t c = 0;
            for (int k0 = 0; k0 < M; k0 += 8) {
                const int k1 = k0 + 8 < M ? k0 + 8 : M;
                for (int k = k0; k < k1; k++) acc[k - k0] = 0;
                c = 0;
                for (int64_t a = 0; a + 1 < u; a++) {
                    const int64_t len = u - a - 1;
                    gather_row(t, s, q, a, g);
                    for (int k = k0; k < k1; k++)
                        acc[k - k0] += dot4(g, t->zm + (int64_t)mvi(d, k, s) * P + c, len);
                    c += len;
                }
                for (int k = k0; k < k1; k++) out[k] += stats_clamp(acc[k - k0]);
            }
            continue;
        }
        if (t->scheme == RDML_STATS_PERM_IMAGES) {
            int64_t c = 0;
            for (int64_t a = 0; a + 1 < u; a++) {
                gather_row(t, s, q, a, g + c);
                c += u - a - 1;
            }
        } else if (t->scheme == RDML_STATS_PERM_PAIRS) {
            const double *zb = t->zb + (int64_t)s * P;
            for (int64_t p = 0; p < P; p++) g[p] = zb[q[p]];
        } else {
            const float *F = d->brain_full[s];
            const int64_t n = t->n;
            for (int64_t p = 0; p < P; p++)
                g[p] = (double)F[t->images[q[t->la[p]]] * n + t->images[q[t->lb[p]]]];
            int err = 0;
            if (!kendall && !normalise(ctx, t->method, g, P, g, &err)) {
                if (err) return ctx->code;
                for (int k = 0; k < M; k++) out[k] = NAN;
                return RDML_OK;
            }
        }
        for (int k = 0; k < M; k++) {
            const int v = mvi(d, k, s);
            double r;
            if (kendall) {
                int constant = 1;
                for (int64_t p = 1; p < P && constant; p++) constant = g[p] == g[0];
                if (constant) {
                    out[k] = NAN;
                    continue;
                }
                RDML_TRY(rdml_rsa_kendall_tau_a(ctx, g, t->mraw + (int64_t)v * P, P, &r));
            } else {
                r = stats_clamp(dot4(g, t->zm + (int64_t)v * P, P));
            }
            out[k] += r;
        }
    }
    for (int k = 0; k < M; k++) out[k] /= S;
    return RDML_OK;
}

/* ---- collective driver ---- */

static int alloc_result(rdml_ctx *ctx, rdml_stats_result *r, int M, int S, int64_t nboot,
                        int64_t nperm, int keep) {
    const size_t mm = (size_t)M * (size_t)M;
    r->score = rdml_malloc(ctx, (size_t)M * sizeof(double), "result");
    r->score_subject = rdml_malloc(ctx, (size_t)M * (size_t)S * sizeof(double), "result");
    r->ci_lo = rdml_malloc(ctx, (size_t)M * sizeof(double), "result");
    r->ci_hi = rdml_malloc(ctx, (size_t)M * sizeof(double), "result");
    r->boot_p_zero = rdml_malloc(ctx, (size_t)M * sizeof(double), "result");
    r->boot_p_nc = rdml_malloc(ctx, (size_t)M * sizeof(double), "result");
    r->perm_p = rdml_malloc(ctx, (size_t)M * sizeof(double), "result");
    r->diff = rdml_malloc(ctx, mm * sizeof(double), "result");
    r->diff_lo = rdml_malloc(ctx, mm * sizeof(double), "result");
    r->diff_hi = rdml_malloc(ctx, mm * sizeof(double), "result");
    r->pair_p = rdml_malloc(ctx, mm * sizeof(double), "result");
    if (keep && nboot > 0) {
        r->boot_scores = rdml_malloc(ctx, (size_t)(nboot * M) * sizeof(double), "result");
        r->boot_nc = rdml_malloc(ctx, (size_t)(nboot * 2) * sizeof(double), "result");
        if (!r->boot_scores || !r->boot_nc) return ctx->code;
    }
    if (keep && nperm > 0) {
        r->perm_null = rdml_malloc(ctx, (size_t)(nperm * M) * sizeof(double), "result");
        if (!r->perm_null) return ctx->code;
    }
    if (!r->score || !r->score_subject || !r->ci_lo || !r->ci_hi || !r->boot_p_zero ||
        !r->boot_p_nc || !r->perm_p || !r->diff || !r->diff_lo || !r->diff_hi || !r->pair_p)
        return ctx->code;
    return RDML_OK;
}

/* Allgatherv of rows [lo, hi) of a (count x width) double table, in order, to every rank. */
static int gather_rows(rdml_ctx *ctx, MPI_Comm comm, int64_t count, int width,
                       const double *mine, double *all) {
    int nr, me;
    MPI_Comm_size(comm, &nr);
    MPI_Comm_rank(comm, &me);
    int *cnt = rdml_malloc(ctx, (size_t)nr * 2 * sizeof *cnt, "gather counts");
    if (!cnt) return ctx->code;
    int *disp = cnt + nr;
    for (int r = 0; r < nr; r++) {
        int64_t lo, hi;
        rdml_part_block(count, r, nr, &lo, &hi);
        cnt[r] = (int)((hi - lo) * width);
        disp[r] = (int)(lo * width);
    }
    int rc = rdml_mpi_check(ctx, MPI_Allgatherv(mine, cnt[me], MPI_DOUBLE, all, cnt, disp,
                                                MPI_DOUBLE, comm),
                            "MPI_Allgatherv (resample results)");
    free(cnt);
    return rc;
}

static void summarise(rdml_stats_result *r, const double *boot, const double *null, int64_t nboot,
                      int64_t nperm, const double *obs_perm, double *col) {
    const int M = r->nmodels;
    const double a = (1.0 - r->level) / 2.0, bq = (1.0 + r->level) / 2.0;
    /* bootstrap: valid rows have finite scores */
    int64_t B = 0, Bn = 0;
    for (int64_t b = 0; b < nboot; b++) {
        const double *row = boot + b * (M + 2);
        if (!isnan(row[0])) {
            B++;
            Bn += !isnan(row[M]);
        }
    }
    r->boot_valid = B;
    r->boot_dropped = nboot - B;
    r->nc_valid = Bn;
    for (int k = 0; k < M; k++) {
        r->ci_lo[k] = r->ci_hi[k] = r->boot_p_zero[k] = r->boot_p_nc[k] = NAN;
        for (int l = 0; l < M; l++) {
            r->diff[k * M + l] = r->score[k] - r->score[l];
            r->diff_lo[k * M + l] = r->diff_hi[k * M + l] = NAN;
            r->pair_p[k * M + l] = k == l ? 1.0 : NAN;
        }
    }
    r->nc_lower_ci[0] = r->nc_lower_ci[1] = r->nc_upper_ci[0] = r->nc_upper_ci[1] = NAN;
    if (B > 0) {
        for (int k = 0; k < M; k++) {
            int64_t m = 0, z = 0, zn = 0;
            for (int64_t b = 0; b < nboot; b++) {
                const double *row = boot + b * (M + 2);
                if (isnan(row[0])) continue;
                col[m++] = row[k];
                z += row[k] <= 0;
                if (!isnan(row[M])) zn += row[M] - row[k] <= 0;
            }
            r->ci_lo[k] = rdml_stats_quantile(col, m, a);
            r->ci_hi[k] = rdml_stats_quantile(col, m, bq);
            r->boot_p_zero[k] = (double)(z + 1) / (double)B;
            if (Bn > 0) r->boot_p_nc[k] = (double)(zn + 1) / (double)Bn;
            for (int l = 0; l < M; l++) {
                if (l == k) continue;
                int64_t less = 0, eq = 0;
                m = 0;
                for (int64_t b = 0; b < nboot; b++) {
                    const double *row = boot + b * (M + 2);
                    if (isnan(row[0])) continue;
                    col[m++] = row[k] - row[l];
                    less += row[k] < row[l];
                    eq += row[k] == row[l];
                }
                r->diff_lo[k * M + l] = rdml_stats_quantile(col, m, a);
                r->diff_hi[k * M + l] = rdml_stats_quantile(col, m, bq);
                /* rsatoolbox bootstrap_pair_tests */
                const double prop = B - eq > 0 ? (double)less / (double)(B - eq) : 0.5;
                double p = 2.0 * (prop < 1.0 - prop ? prop : 1.0 - prop);
                p = (double)(B - 1) / (double)B * p + 1.0 / (double)B;
                r->pair_p[k * M + l] = p;
            }
        }
        for (int w = 0; w < 2 && Bn > 0; w++) {
            int64_t m = 0;
            for (int64_t b = 0; b < nboot; b++) {
                const double *row = boot + b * (M + 2);
                if (!isnan(row[0]) && !isnan(row[M])) col[m++] = row[M + w];
            }
            double *ci = w ? r->nc_upper_ci : r->nc_lower_ci;
            ci[0] = rdml_stats_quantile(col, m, a);
            ci[1] = rdml_stats_quantile(col, m, bq);
        }
    }
    if (r->boot_scores)
        for (int64_t b = 0; b < nboot; b++) {
            const double *row = boot + b * (M + 2);
            for (int k = 0; k < M; k++) r->boot_scores[b * M + k] = isnan(row[0]) ? NAN : row[k];
            r->boot_nc[2 * b] = isnan(row[0]) ? NAN : row[M];
            r->boot_nc[2 * b + 1] = isnan(row[0]) ? NAN : row[M + 1];
        }
    /* permutations */
    int64_t V = 0;
    for (int64_t b = 0; b < nperm; b++) V += !isnan(null[b * M]);
    r->perm_valid = V;
    for (int k = 0; k < M; k++) {
        r->perm_p[k] = NAN;
        if (nperm == 0) continue;
        int64_t ge = 0;
        for (int64_t b = 0; b < nperm; b++) {
            const double v = null[b * M + k];
            if (!isnan(null[b * M]) && v >= obs_perm[k]) ge++;
        }
        r->perm_p[k] = (double)(1 + ge) / (double)(1 + V);
    }
    if (r->perm_null) memcpy(r->perm_null, null, (size_t)(nperm * M) * sizeof *null);
}

int rdml_stats_evaluate(rdml_ctx *ctx, MPI_Comm comm, const rdml_stats_data *d,
                        const rdml_stats_opts *o, rdml_stats_result *out) {
    memset(out, 0, sizeof *out);
    int nr = 1, me = 0;
    MPI_Comm_size(comm, &nr);
    MPI_Comm_rank(comm, &me);
    int rc = rdml_stats_check(ctx, d, o);
    const int M = d ? d->nmodels : 0, S = d ? d->nsubj : 0;
    if (!rc && ((o->nboot + 1) * (M + 2) > INT_MAX || (o->nperm + 1) * M > INT_MAX))
        rc = RDML_FAIL(ctx, RDML_ECONFIG,
                       "stats: %lld bootstrap samples / %lld permutations x %d models are "
                       "more than one gather can hold (hint: fewer resamples)",
                       (long long)o->nboot, (long long)o->nperm, M);
    rc = rdml_agree(ctx, comm, rc);
    if (rc) return rc;
    stx x;
    ptx t;
    memset(&t, 0, sizeof t);
    rc = stx_make(ctx, d, o->method, o->pool, o->nboot > 0 || (d && d->nsubj >= 2), &x);
    if (rc) memset(&x, 0, sizeof x);
    const int64_t nboot = o->nboot, nperm = o->nperm;
    double *boot = NULL, *null = NULL, *mine = NULL, *col = NULL;
    int64_t *idx = NULL;
    int *sidx = NULL;
    double obs_perm[1] = {0}, *obsp = NULL;
    if (!rc) {
        out->nmodels = M;
        out->nsubj = S;
        out->method = o->method;
        out->level = o->level;
        out->u = x.u;
        out->nboot = nboot;
        out->nperm = nperm;
        rc = alloc_result(ctx, out, M, S, nboot, nperm, o->keep_samples);
    }
    if (!rc) {
        boot = rdml_malloc(ctx, (size_t)((nboot + 1) * (M + 2)) * sizeof *boot, "bootstrap table");
        null = boot ? rdml_malloc(ctx, (size_t)((nperm + 1) * M) * sizeof *null, "null table")
                    : NULL;
        mine = null ? rdml_malloc(ctx, (size_t)((nboot + nperm + 1) * (M + 2)) * sizeof *mine,
                                  "local resamples")
                    : NULL;
        col = mine ? rdml_malloc(ctx, (size_t)(nboot + 1) * sizeof *col, "column") : NULL;
        idx = col ? rdml_malloc(ctx, (size_t)x.u * sizeof *idx, "sample") : NULL;
        sidx = idx ? rdml_malloc(ctx, (size_t)S * sizeof *sidx, "subject sample") : NULL;
        obsp = sidx ? rdml_malloc(ctx, (size_t)M * sizeof *obsp, "observed") : NULL;
        if (!obsp) rc = ctx->code;
    }
    (void)obs_perm;
    /* observed scores, and the permutation test's data (ptx_make: two more sorts of the pairs
     * for spearman, the largest serial part at 9,841 images): with two ranks or more, rank 0
     * scores while rank 1 prepares, then each shares its part */
    const int split = nr >= 2 && nperm > 0;
    if (!rc && (!split || me == 0))
        rc = rdml_stats_scores(ctx, d, o->method, out->score, out->score_subject);
    if (!rc && split && me == 1) rc = ptx_make(ctx, &x, o->max_matrix_bytes, &t);
    rc = rdml_agree(ctx, comm, rc);
    if (!rc && split) {
        rc = rdml_bcast_bytes(ctx, comm, out->score, (int64_t)M * (int64_t)sizeof(double), 0);
        if (!rc)
            rc = rdml_bcast_bytes(ctx, comm, out->score_subject, (int64_t)M * S * (int64_t)sizeof(double), 0);
        rc = rdml_agree(ctx, comm, rc);
        if (!rc) rc = ptx_share(ctx, comm, 1, &x, &t);
    }
    out->nc_lower = out->nc_upper = NAN;
    if (!rc && S >= 2) {
        stx_unit_weights(&x);
        prep_brains(&x, x.w, NULL);
        rc = wnoise_ceiling(ctx, &x, x.w, NULL, &out->nc_lower, &out->nc_upper);
        out->has_nc = !rc && !isnan(out->nc_lower) && !isnan(out->nc_upper);
    }
    rc = rdml_agree(ctx, comm, rc);
    /* bootstrap: my block of samples */
    double t_boot = rdml_now(), t_perm = 0;
    if (!rc && nboot > 0) {
        int64_t lo, hi;
        rdml_part_block(nboot, me, nr, &lo, &hi);
        for (int64_t b = lo; !rc && b < hi; b++) {
            rc = boot_sample(ctx, &x, o, b, idx, sidx, mine + (b - lo) * (M + 2));
            if (!rc) rc = rdml_stop_check(ctx, "in the bootstrap (sample %lld)", (long long)b);
        }
        rc = rdml_agree(ctx, comm, rc);
        if (!rc) rc = gather_rows(ctx, comm, nboot, M + 2, mine, boot);
        rc = rdml_agree(ctx, comm, rc);
    }
    t_boot = rdml_now() - t_boot;
    /* permutations */
    t_perm = rdml_now();
    if (!rc && nperm > 0) {
        if (!split) rc = ptx_make(ctx, &x, o->max_matrix_bytes, &t);
        out->perm_scheme = t.scheme;
        if (!rc) rc = perm_scores(ctx, &t, o, -1, obsp);
        int64_t lo = 0, hi = 0;
        rdml_part_block(nperm, me, nr, &lo, &hi);
        for (int64_t b = lo; !rc && b < hi; b++) {
            rc = perm_scores(ctx, &t, o, b, mine + (b - lo) * M);
            if (!rc && (b - lo) % 256 == 255)
                rc = rdml_stop_check(ctx, "in the permutation test (permutation %lld)",
                                     (long long)b);
        }
        rc = rdml_agree(ctx, comm, rc);
        if (!rc) rc = gather_rows(ctx, comm, nperm, M, mine, null);
        rc = rdml_agree(ctx, comm, rc);
    }
    if (!rc && nboot > 0 && nperm >= 0) {
        int64_t B = 0;
        for (int64_t b = 0; b < nboot; b++) B += !isnan(boot[b * (M + 2)]);
        if (B == 0)
            rc = RDML_FAIL(ctx, RDML_EDATA,
                           "stats: all %lld bootstrap samples were undefined (fewer than %d "
                           "distinct images or a constant resampled vector) (hint: evaluate "
                           "on more images; the pairs touch %lld)",
                           (long long)nboot, RDML_STATS_MIN_IMAGES, (long long)x.u);
    }
    t_perm = rdml_now() - t_perm;
    if (!rc) {
        summarise(out, boot, null, nboot, nperm, obsp, col);
        rdml_debug(ctx,
                   "stats (%s, %lld pairs over %lld images, %d subjects, %d models, %d ranks): "
                   "%lld bootstrap samples (%lld dropped, %lld with a noise ceiling) in %.2f s; "
                   "%lld permutations (scheme %s) in %.2f s",
                   rdml_rsa_method_name(o->method), (long long)x.P, (long long)x.u, S, M, nr,
                   (long long)nboot, (long long)out->boot_dropped, (long long)out->nc_valid,
                   t_boot, (long long)nperm, rdml_stats_perm_scheme_name(out->perm_scheme),
                   t_perm);
    }
    if (rc) rdml_stats_result_free(out);
    ptx_free(&t);
    stx_free(&x);
    free(boot);
    free(null);
    free(mine);
    free(col);
    free(idx);
    free(sidx);
    free(obsp);
    return rc;
}
