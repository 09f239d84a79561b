/* `rdmlearn evaluate`: does a model explain the brain? Reads run.output only.
 *
 * Part 1 (/evaluate/rdm): for each selection of data.rois, each subject with that RDM and
 * each embedding of evaluate.embeddings, the embedding's model RDM (evaluate.metric) is
 * compared with the brain RDM on the images both cover (matched by NSD id) by every method of
 * evaluate.methods: the score, a percentile interval from a bootstrap over images, the
 * permutation p of score > 0, the paired differences between embeddings with their intervals
 * and p, and the noise ceiling of the selection (leave one subject out on the images every
 * subject saw) with its interval. p-values are corrected (evaluate.correction) across
 * subjects x selections x models per method, and across every pair of models for the
 * differences.
 *
 * Part 2 (/evaluate/folds): every experiment's models on the same footing. For each outer
 * test fold of /experiments/<e>, the fold's brain test pairs are scored against each model's
 * predictions (networks' pred, the SVR's prediction, the C-SVC's decision values), against
 * each embedding RDM's values on the same pairs, and against the encoding model's predicted
 * RDM of the fold's test images (/encode/<embedding>/subjNN/<selection>/fold_<f>) when
 * present; with the noise ceiling on the fold's test images that every subject saw, or NaN
 * and the reason.
 *
 * The stage goes subject by subject: every rank holds one subject's brain RDM and model RDMs
 * at a time, the model RDMs computed once (the same DSYRK on every rank, so they do not
 * depend on the rank count) and reused for all the subject's selections; then the
 * selections' group analyses on the images every subject saw. The statistics are
 * rdml_stats_evaluate's (rdml/stats.h; the resamples spread over the ranks, each a function of
 * run.seed and a key hashed from the analysis' names), so every number is the same for any
 * rank count and any order of data.rois. Errors (a missing RDM or embedding, image sets that
 * differ, too few images, a constant model RDM) abort the results file, so run.output stays
 * as it was. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval_priv.h"
#include "exp_priv.h"
#include "rdml/h5.h"
#include "rdml/mpiutil.h"
#include "rdml/rdm.h"
#include "rdml/sched.h"
#include "rdml/rsa.h"

/* Fewer images than this make a bootstrap sample too often degenerate (a resample of a
 * handful of images has few distinct pairs). */
#define EVAL_MIN_BOOT_IMAGES 8

typedef struct ev_opts {
    rdml_rsa_method methods[3];
    int nmethods;
    rdml_rdm_metric metric;
    char **emb;          /* NULL: all */
    int nemb;
    char **exps;         /* NULL: all */
    int nexps, no_exps;
    int shared;          /* image_sets = shared */
    int64_t nboot, nperm;
    double ci, alpha;
    int correction;
    int boot_subjects, save_boot;
    uint64_t seed;
    rdml_rsa_pool pool;
} ev_opts;

static const char *const correction_names[] = {"bh", "bonferroni", "none"};

static int read_opts(rdml_exp *ex, ev_opts *o) {
    rdml_ctx *ctx = ex->ctx;
    const rdml_config *cfg = ex->cfg;
    memset(o, 0, sizeof *o);
    char **items = NULL;
    int n = 0, b = 0;
    const char *s;
    RDML_TRY(rdml_config_list(ctx, cfg, "evaluate", "methods", &items, &n));
    int rc = RDML_OK;
    for (int i = 0; i < n && !rc; i++) {
        rdml_rsa_method m;
        rc = rdml_rsa_method_parse(ctx, items[i], &m);
        int dup = 0;
        for (int j = 0; j < o->nmethods; j++) dup |= o->methods[j] == m;
        if (!rc && !dup && o->nmethods < 3) o->methods[o->nmethods++] = m;
    }
    free(items);
    if (rc) return rdml_ctx_prefix(ctx, "[evaluate] methods");
    if (!o->nmethods)
        return RDML_FAIL(ctx, RDML_ECONFIG, "[evaluate] methods is empty (hint: methods = spearman)");
    RDML_TRY(rdml_config_str(ctx, cfg, "evaluate", "metric", &s));
    RDML_TRY(rdml_rdm_metric_parse(ctx, s, &o->metric));
    RDML_TRY(rdml_config_list(ctx, cfg, "evaluate", "embeddings", &items, &n));
    if (!(n == 1 && strcmp(items[0], "all") == 0)) {
        o->emb = items;
        o->nemb = n;
    } else {
        free(items);
    }
    RDML_TRY(rdml_config_list(ctx, cfg, "evaluate", "fold_experiments", &items, &n));
    if (n == 1 && strcmp(items[0], "none") == 0) {
        o->no_exps = 1;
        free(items);
    } else if (!(n == 1 && strcmp(items[0], "all") == 0)) {
        o->exps = items;
        o->nexps = n;
    } else {
        free(items);
    }
    RDML_TRY(rdml_config_str(ctx, cfg, "evaluate", "image_sets", &s));
    o->shared = strcmp(s, "shared") == 0;
    RDML_TRY(rdml_config_int(ctx, cfg, "evaluate", "bootstrap", &o->nboot));
    RDML_TRY(rdml_config_int(ctx, cfg, "evaluate", "permutations", &o->nperm));
    RDML_TRY(rdml_config_real(ctx, cfg, "evaluate", "ci", &o->ci));
    RDML_TRY(rdml_config_real(ctx, cfg, "evaluate", "alpha", &o->alpha));
    RDML_TRY(rdml_config_str(ctx, cfg, "evaluate", "correction", &s));
    o->correction = !strcmp(s, "bh") ? EVAL_BH : !strcmp(s, "bonferroni") ? EVAL_BONFERRONI : EVAL_NONE;
    RDML_TRY(rdml_config_bool(ctx, cfg, "evaluate", "bootstrap_subjects", &b));
    o->boot_subjects = b;
    RDML_TRY(rdml_config_bool(ctx, cfg, "evaluate", "save_bootstrap", &b));
    o->save_boot = b;
    int64_t seed;
    RDML_TRY(rdml_config_int(ctx, cfg, "run", "seed", &seed));
    o->seed = (uint64_t)seed;
    RDML_TRY(rdml_config_str(ctx, cfg, "rdm", "noise_ceiling", &s));
    return rdml_rsa_pool_parse(ctx, s, &o->pool);
}

static void free_opts(ev_opts *o) {
    free(o->emb);
    free(o->exps);
}

/* A string list that grows. */
typedef struct strlist {
    char **s;
    int n, cap;
} strlist;

static int sl_has(const strlist *l, const char *x) {
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->s[i], x) == 0) return i;
    return -1;
}

static int sl_add(rdml_ctx *ctx, strlist *l, const char *x) {
    if (sl_has(l, x) >= 0) return RDML_OK;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 8;
        char **s = realloc(l->s, (size_t)cap * sizeof *s);
        if (!s) return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
        l->s = s;
        l->cap = cap;
    }
    l->s[l->n] = rdml_strdup(ctx, x);
    if (!l->s[l->n]) return ctx->code;
    l->n++;
    return RDML_OK;
}

static void sl_free(strlist *l) {
    for (int i = 0; i < l->n; i++) free(l->s[i]);
    free(l->s);
    memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int pick_names(rdml_ctx *ctx, rdml_h5 *h, const char *group, char **want, int nwant,
                      const char *what, const char *hint, strlist *out);

/* Collective. The m x m model RDM of an embedding's first m rows, on every rank. Every rank
 * computes the whole matrix with the same BLAS call on the same data (rows centred for
 * correlation, scaled to unit norm for correlation and cosine, in double; the Gram matrix by
 * DSYRK), so the matrix does not depend on the number of ranks; it costs m^2 D / 2
 * multiply-adds per rank (a second for 600 images x 16,384 pixel features). A constant row
 * (correlation, cosine) has distance 1 to every other row (its r taken as 0, the RDM
 * module's policy); euclidean: sqrt(|a|^2 + |b|^2 - 2 a.b), clamped at 0. */
static int model_rdm(rdml_exp *ex, rdml_h5 *h, const ev_opts *o, const char *epath, int64_t m,
                     int64_t d, float *out) {
    rdml_ctx *ctx = ex->ctx;
    float *x = rdml_malloc(ctx, (size_t)(m * d + 1) * sizeof *x, "embedding rows");
    double *z = x ? rdml_malloc(ctx, (size_t)(m * d + 1) * sizeof *z, "embedding rows") : NULL;
    double *gram = z ? rdml_malloc(ctx, (size_t)(m * m + 1) * sizeof *gram, "Gram matrix") : NULL;
    double *sq = gram ? rdml_malloc(ctx, (size_t)(m + 1) * sizeof *sq, "row norms") : NULL;
    int rc = sq ? RDML_OK : ctx->code;
    rc = rdml_agree(ctx, ex->comm, rc);
    if (!rc) rc = rdml_h5_read_rows_f32(ctx, h, epath, 0, m, x);
    const int eucl = o->metric == RDML_RDM_EUCLIDEAN;
    for (int64_t i = 0; i < m && !rc; i++) {
        double mu = 0, ss = 0;
        const float *xi = x + i * d;
        double *zi = z + i * d;
        for (int64_t k = 0; k < d; k++)
            if (!isfinite(xi[k]))
                rc = RDML_FAIL(ctx, RDML_EDATA, "%s: the value of image row %lld, dimension %lld is "
                               "not finite (hint: recompute the embedding, or leave it out with "
                               "evaluate.embeddings)", epath, (long long)i, (long long)k);
        if (o->metric == RDML_RDM_CORRELATION) {
            for (int64_t k = 0; k < d; k++) mu += xi[k];
            mu /= (double)d;
        }
        for (int64_t k = 0; k < d; k++) {
            zi[k] = (double)xi[k] - mu;
            ss += zi[k] * zi[k];
        }
        sq[i] = ss; /* > 0: a unit row after scaling (correlation, cosine) */
        if (!eucl && ss > 0) {
            double inv = 1.0 / sqrt(ss);
            for (int64_t k = 0; k < d; k++) zi[k] *= inv;
        }
    }
    rc = rdml_agree(ctx, ex->comm, rc);
    if (!rc) {
        /* row-major Z (m x d) is column-major Z^T (d x m): G = Z Z^T, upper triangle in
         * column-major = lower in row-major: G[i * m + j] for j <= i */
        cblas_dsyrk(CblasColMajor, CblasUpper, CblasTrans, (int)m, (int)d, 1.0, z, (int)d, 0.0, gram, (int)m);
        for (int64_t i = 0; i < m; i++) {
            out[i * m + i] = 0;
            for (int64_t j = 0; j < i; j++) {
                double g = gram[i * m + j], dist;
                if (eucl) {
                    double d2 = sq[i] + sq[j] - 2 * g;
                    dist = sqrt(d2 > 0 ? d2 : 0);
                } else if (!(sq[i] > 0) || !(sq[j] > 0)) {
                    dist = 1;
                } else {
                    dist = 1 - g;
                    if (dist < 0) dist = 0;
                }
                out[i * m + j] = out[j * m + i] = (float)dist;
            }
        }
    }
    free(x);
    free(z);
    free(gram);
    free(sq);
    return rc;
}

/* "1234, 5678, ... (N in all)" of up to 8 NSD ids of rows [lo, hi) (row numbers when the
 * file does not hold a row's id). */
static void name_ids(const int64_t *ids, int64_t nids, int64_t lo, int64_t hi, char *buf, size_t len) {
    size_t k = 0;
    buf[0] = 0;
    for (int64_t r = lo; r < hi && r < lo + 8 && k + 40 < len; r++) {
        if (r < nids) k += (size_t)snprintf(buf + k, len - k, "%s%lld", r > lo ? ", " : "", (long long)ids[r]);
        else k += (size_t)snprintf(buf + k, len - k, "%s(row %lld)", r > lo ? ", " : "", (long long)r);
    }
    if (hi - lo > 8 && k + 40 < len) snprintf(buf + k, len - k, ", ... (%lld in all)", (long long)(hi - lo));
}

/* The brain RDM's and the embeddings' image sets: every matrix of a subject covers the first
 * rows of the subject's image list (/subjects/subjNN/images), so two sets differ by the rows
 * one of them lacks. Sets *m to the images all share; with image_sets = equal a difference
 * is an error naming the NSD ids. */
static int image_set(rdml_ctx *ctx, const ev_opts *o, int id, const char *sel, int64_t n,
                     const char *const *names, const int64_t *ne, int M, const int64_t *ids,
                     int64_t nids, int64_t *m) {
    *m = n;
    for (int e = 0; e < M; e++) {
        if (ne[e] == n) continue;
        if (!o->shared) {
            char buf[600];
            int more_rdm = n > ne[e];
            name_ids(ids, nids, more_rdm ? ne[e] : n, more_rdm ? n : ne[e], buf, sizeof buf);
            return RDML_FAIL(ctx, RDML_EDATA, "subj%02d %s: the brain RDM covers %lld images but "
                             "the embedding %s covers %lld: NSD ids %s %s (hint: compute both "
                             "with the same data.images, or set evaluate.image_sets = shared to "
                             "compare them on the %lld images both have)", id, sel, (long long)n,
                             names[e], (long long)ne[e], buf,
                             more_rdm ? "have no embedding row" : "are not in the RDM",
                             (long long)(n < ne[e] ? n : ne[e]));
        }
        if (ne[e] < *m) *m = ne[e];
    }
    if (*m < n) rdml_info(ctx, "subj%02d %s: comparing on the %lld images the RDM and every embedding "
                          "share (of %lld in the RDM; evaluate.image_sets = shared)", id, sel,
                          (long long)*m, (long long)n);
    return RDML_OK;
}

/* Is the strict upper triangle of an m x m matrix constant? */
static int is_constant(const float *R, int64_t m) {
    if (m < 2) return 1;
    float v0 = R[1];
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = i + 1; j < m; j++)
            if (R[i * m + j] != v0) return 0;
    return 1;
}

/* ---- part 1: the results of one subject x selection, kept until the correction ---- */
typedef struct ev_unit {
    int sel, subj;
    int64_t m;
    int M;                 /* models: the selection's embeddings */
    rdml_stats_result res[3]; /* per method */
    double *q[3], *dq[3];  /* corrected p (M) and differences' p (M x M) */
} ev_unit;

typedef struct ev_sel {
    char name[256];
    strlist models;        /* embedding names */
    int *subj;             /* subject ids with this RDM */
    int nsubj;
    double nc[3][6];       /* per method: lower, upper, their intervals */
    int64_t nc_images;
    char nc_reason[512];
    float **shared;        /* per subject: the shared images' sub-RDM (nc_images^2) */
    int64_t **shared_ids;  /* per subject: NSD ids of the shared images, ascending */
    int64_t **shared_rows; /* per subject: their rows */
    float **shmod;         /* [s * M + k]: subject s's model RDM k on the shared images */
    rdml_stats_result grp[3]; /* per method: the subjects together on the shared images */
    int has_grp[3];
    char grp_reason[3][512];
} ev_sel;

static void sel_free(ev_sel *s) {
    for (int i = 0; i < s->nsubj; i++) {
        if (s->shared) free(s->shared[i]);
        if (s->shared_ids) free(s->shared_ids[i]);
        if (s->shared_rows) free(s->shared_rows[i]);
    }
    for (int i = 0; s->shmod && i < s->nsubj * s->models.n; i++) free(s->shmod[i]);
    free(s->shmod);
    for (int mi = 0; mi < 3; mi++) rdml_stats_result_free(&s->grp[mi]);
    free(s->shared);
    free(s->shared_ids);
    free(s->shared_rows);
    free(s->subj);
    sl_free(&s->models);
}

/* The resampling key of an analysis: a hash of what it is (the selection by name, the
 * subject, the method), so that its resamples do not depend on the order or number of the
 * other selections, subjects or methods. subj 0: the subjects together. */
static uint64_t key_of(const char *sel, int subj, rdml_rsa_method method) {
    char t[600];
    snprintf(t, sizeof t, "rdm:%s:subj%02d:%s", sel, subj, rdml_rsa_method_name(method));
    return rdml_hash_str(t, 0);
}

/* Collective. Reads ids (the subject's image list) into a malloc'd array. */
static int read_ids(rdml_ctx *ctx, MPI_Comm comm, rdml_h5 *h, int id, int64_t **ids, int64_t *n) {
    char path[256];
    snprintf(path, sizeof path, "/subjects/subj%02d/images/nsd_id", id);
    int ex = 0, nd = 0;
    int64_t dims[8] = {0};
    *ids = NULL;
    *n = 0;
    RDML_TRY(rdml_h5_exists(ctx, h, path, &ex));
    if (!ex) {
        *ids = calloc(1, sizeof **ids);
        return *ids ? RDML_OK : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
    }
    RDML_TRY(rdml_h5_dims(ctx, h, path, &nd, dims));
    *ids = rdml_malloc(ctx, (size_t)(dims[0] + 1) * sizeof **ids, "image ids");
    RDML_TRY(rdml_agree(ctx, comm, *ids ? RDML_OK : ctx->code));
    *n = dims[0];
    return rdml_h5_read_rows_i64(ctx, h, path, 0, dims[0], *ids);
}

/* Collective. The selection's subjects (data.subjects filtered to those with the RDM), the
 * images they all share and each one's sub-RDM on them, and the noise ceilings. */
static int prepare_sel(rdml_exp *ex, rdml_h5 *h, const ev_opts *o, const int *subjects, int ns,
                       int explicit_subjects, int k, ev_sel *S) {
    rdml_ctx *ctx = ex->ctx;
    S->subj = calloc((size_t)ns + 1, sizeof *S->subj);
    if (!S->subj) return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
    char path[600];
    for (int i = 0; i < ns; i++) {
        int e = 0;
        snprintf(path, sizeof path, "/subjects/subj%02d/rdm/%s", subjects[i], S->name);
        RDML_TRY(rdml_h5_exists(ctx, h, path, &e));
        if (e) S->subj[S->nsubj++] = subjects[i];
        else if (explicit_subjects)
            return RDML_FAIL(ctx, RDML_EDATA, "%s has no RDM %s (hint: run `rdmlearn rdm` with the "
                             "same data.subjects and data.rois first)", rdml_h5_path(h), path);
    }
    if (!S->nsubj)
        return RDML_FAIL(ctx, RDML_EDATA, "%s holds no RDM of selection %s for any subject of "
                         "data.subjects (hint: run `rdmlearn rdm` with the same data.rois first)",
                         rdml_h5_path(h), S->name);
    const int ns2 = S->nsubj;
    for (int m = 0; m < 3; m++)
        for (int t = 0; t < 6; t++) S->nc[m][t] = NAN;
    if (ns2 < 2) {
        snprintf(S->nc_reason, sizeof S->nc_reason, "one subject only (subj%02d): a noise ceiling "
                 "needs the RDMs of at least two subjects on the same images", S->subj[0]);
        return RDML_OK;
    }
    /* the images every subject's RDM covers, by NSD id */
    int64_t **lists = calloc((size_t)ns2, sizeof *lists), *lens = calloc((size_t)ns2, sizeof *lens);
    S->shared_rows = calloc((size_t)ns2, sizeof *S->shared_rows);
    S->shared_ids = calloc((size_t)ns2, sizeof *S->shared_ids);
    S->shared = calloc((size_t)ns2, sizeof *S->shared);
    int rc = lists && lens && S->shared_rows && S->shared_ids && S->shared ? RDML_OK
                                                                          : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
    for (int i = 0; i < ns2 && !rc; i++) {
        int nd = 0;
        int64_t dims[8], nids = 0;
        snprintf(path, sizeof path, "/subjects/subj%02d/rdm/%s", S->subj[i], S->name);
        rc = rdml_h5_dims(ctx, h, path, &nd, dims);
        if (!rc) rc = read_ids(ctx, ex->comm, h, S->subj[i], &lists[i], &nids);
        lens[i] = dims[0] < nids ? dims[0] : nids;
    }
    int64_t m = 0;
    if (!rc) rc = rdml_rsa_match_ids_all(ctx, (const int64_t *const *)lists, lens, ns2, S->shared_rows, &m);
    S->nc_images = m;
    if (!rc && m < 3) {
        snprintf(S->nc_reason, sizeof S->nc_reason, "the %d subjects share only %lld images (at "
                 "least 3 needed)", ns2, (long long)m);
        S->nc_images = 0;
    }
    for (int i = 0; i < ns2 && !rc && S->nc_images; i++) {
        int nd = 0;
        int64_t dims[8];
        snprintf(path, sizeof path, "/subjects/subj%02d/rdm/%s", S->subj[i], S->name);
        rc = rdml_h5_dims(ctx, h, path, &nd, dims);
        float *full = rc ? NULL : rdml_malloc(ctx, (size_t)(dims[0] * dims[0] + 1) * sizeof *full, "RDM");
        S->shared_ids[i] = rdml_malloc(ctx, (size_t)m * sizeof **S->shared_ids + 8, "ids");
        S->shared[i] = rdml_malloc(ctx, (size_t)(m * m) * sizeof **S->shared + 8, "shared RDM");
        if (!rc && (!full || !S->shared_ids[i] || !S->shared[i])) rc = ctx->code;
        rc = rdml_agree(ctx, ex->comm, rc);
        if (!rc) rc = rdml_h5_read_rows_f32(ctx, h, path, 0, dims[0], full);
        if (!rc) {
            rdml_rsa_subrdm(full, dims[0], S->shared_rows[i], m, S->shared[i]);
            for (int64_t t = 0; t < m; t++) S->shared_ids[i][t] = lists[i][S->shared_rows[i][t]];
        }
        free(full);
    }
    (void)k;
    (void)o;
    for (int i = 0; lists && i < ns2; i++) free(lists[i]);
    free(lists);
    free(lens);
    return rc;
}

/* Collective. The selection's subjects together on the images they all saw: the noise
 * ceiling with its interval and, with embeddings, the mean score over subjects with its
 * interval (images, and with evaluate.bootstrap_subjects subjects, resampled), p and the
 * paired differences (rdml_stats_evaluate with one model RDM per subject). Without
 * embeddings, or when a model RDM is constant on the shared images, the noise ceiling alone
 * (no interval) and the reason. */
static int group_stats(rdml_exp *ex, const ev_opts *o, ev_sel *S) {
    rdml_ctx *ctx = ex->ctx;
    const int ns = S->nsubj, M = S->models.n;
    const int64_t m = S->nc_images;
    if (ns < 2 || !m) return RDML_OK;
    int64_t *pi = NULL, *pj = NULL, P = 0;
    double **vec = calloc((size_t)(ns + ns * M) + 1, sizeof *vec);
    int rc = vec ? eval_all_pairs(ctx, m, &pi, &pj, &P) : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
    int models_ok = M > 0 && S->shmod;
    for (int i = 0; models_ok && i < ns * M; i++) models_ok = S->shmod[i] != NULL;
    for (int i = 0; i < ns + (models_ok ? ns * M : 0) && !rc; i++) {
        vec[i] = rdml_malloc(ctx, (size_t)(P + 1) * sizeof **vec, "RDM values");
        if (!vec[i]) rc = ctx->code;
        /* models[k * S + s]: model k of subject s */
        else if (i < ns) rdml_rsa_upper(S->shared[i], m, vec[i]);
        else {
            int kk = (i - ns) / ns, s = (i - ns) % ns;
            rdml_rsa_upper(S->shmod[s * M + kk], m, vec[i]);
        }
    }
    rc = rdml_agree(ctx, ex->comm, rc);
    char names[8][16];
    const char *snames[8];
    for (int i = 0; i < ns && i < 8; i++) {
        snprintf(names[i], sizeof names[i], "subj%02d", S->subj[i]);
        snames[i] = names[i];
    }
    for (int mi = 0; mi < o->nmethods && !rc; mi++) {
        rdml_stats_data d = {0};
        d.n = m;
        d.npairs = P;
        d.pi = pi;
        d.pj = pj;
        d.nsubj = ns;
        d.brain = (const double *const *)vec;
        d.subject_names = ns <= 8 ? snames : NULL;
        double *nc = S->nc[mi];
        if (models_ok) {
            d.nmodels = M;
            d.models = (const double *const *)(vec + ns);
            d.models_per_subject = 1;
            d.model_names = (const char *const *)S->models.s;
            rdml_stats_opts so;
            rdml_stats_opts_default(&so);
            so.method = o->methods[mi];
            so.pool = o->pool;
            so.seed = o->seed;
            so.key = key_of(S->name, 0, o->methods[mi]);
            so.nboot = o->nboot;
            so.boot_subjects = o->boot_subjects;
            so.nperm = o->nperm;
            so.level = o->ci;
            so.keep_samples = o->save_boot;
            rc = rdml_stats_evaluate(ctx, ex->comm, &d, &so, &S->grp[mi]);
            if (rc == RDML_EDATA) {
                /* e.g. a model RDM constant on the few shared images: the ceiling alone */
                snprintf(S->grp_reason[mi], sizeof S->grp_reason[mi], "%s", ctx->msg);
                rdml_ctx_clear(ctx);
                rdml_stats_result_free(&S->grp[mi]);
                rc = RDML_OK;
            } else if (!rc) {
                S->has_grp[mi] = 1;
                const rdml_stats_result *g = &S->grp[mi];
                nc[0] = g->nc_lower;
                nc[1] = g->nc_upper;
                nc[2] = g->nc_lower_ci[0];
                nc[3] = g->nc_lower_ci[1];
                nc[4] = g->nc_upper_ci[0];
                nc[5] = g->nc_upper_ci[1];
            }
        } else {
            snprintf(S->grp_reason[mi], sizeof S->grp_reason[mi], "%s",
                     M ? "an embedding does not cover every shared image (evaluate.image_sets = shared)"
                       : "no embeddings to score");
        }
        if (!rc && !S->has_grp[mi]) {
            /* rdml_stats_noise_ceiling checks the data as a whole comparison, which needs a
             * model: the first subject's brain vector stands in (the ceiling ignores it) */
            d.nmodels = 1;
            d.models = (const double *const *)vec;
            d.models_per_subject = 0;
            d.model_names = NULL;
            int r2 = ctx->rank == 0 ? rdml_stats_noise_ceiling(ctx, &d, o->methods[mi], o->pool, &nc[0], &nc[1]) : RDML_OK;
            rc = rdml_agree(ctx, ex->comm, r2);
            MPI_Bcast(nc, 2, MPI_DOUBLE, 0, ex->comm);
        }
    }
    for (int i = 0; vec && i < ns + ns * M; i++) free(vec[i]);
    free(vec);
    free(pi);
    free(pj);
    return rc;
}

/* One subject of a selection: its brain RDM and its model RDMs on the same m images. */
typedef struct ev_subj {
    int id;
    int64_t n, m;        /* RDM images; images compared */
    int64_t *ids, nids;  /* the subject's image list */
    float *brain;        /* m x m */
    float **models;      /* M of m x m */
    int M;
} ev_subj;

/* One subject's model RDMs, kept across its selections (computing them is the costly part:
 * m^2 D / 2 multiply-adds each); an entry is recomputed only when a selection compares on a
 * different number of images. */
typedef struct ev_cache {
    int n;
    char *name[64];
    int64_t m[64];
    float *rdm[64];
} ev_cache;

static void cache_free(ev_cache *c) {
    for (int i = 0; i < c->n; i++) {
        free(c->name[i]);
        free(c->rdm[i]);
    }
    memset(c, 0, sizeof *c);
}

static void subj_free(ev_subj *d) {
    /* the model RDMs belong to the subject's cache */
    free(d->models);
    free(d->brain);
    free(d->ids);
    memset(d, 0, sizeof *d);
}

/* Collective. Load subject id's brain RDM and compute its model RDMs. */
static int load_subject(rdml_exp *ex, rdml_h5 *h, const ev_opts *o, ev_sel *S, int si, int id,
                        ev_cache *cache, ev_subj *d) {
    rdml_ctx *ctx = ex->ctx;
    memset(d, 0, sizeof *d);
    d->id = id;
    d->M = S->models.n;
    char rpath[600], epath[600];
    int nd = 0;
    int64_t dims[8];
    snprintf(rpath, sizeof rpath, "/subjects/subj%02d/rdm/%s", id, S->name);
    RDML_TRY(rdml_h5_dims(ctx, h, rpath, &nd, dims));
    d->n = dims[0];
    RDML_TRY(read_ids(ctx, ex->comm, h, id, &d->ids, &d->nids));
    int64_t *ne = calloc((size_t)d->M + 1, sizeof *ne), *de = calloc((size_t)d->M + 1, sizeof *de);
    d->models = calloc((size_t)d->M + 1, sizeof *d->models);
    int rc = ne && de && d->models ? RDML_OK : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
    for (int e = 0; e < d->M && !rc; e++) {
        snprintf(epath, sizeof epath, "/subjects/subj%02d/embeddings/%s", id, S->models.s[e]);
        int ok = 0;
        rc = rdml_h5_exists(ctx, h, epath, &ok);
        if (!rc && !ok) {
            strlist have = {0};
            char g[256], list[600] = "";
            snprintf(g, sizeof g, "/subjects/subj%02d/embeddings", id);
            rc = pick_names(ctx, h, g, NULL, 0, "", "", &have);
            for (int i = 0; !rc && i < have.n && strlen(list) + strlen(have.s[i]) + 4 < sizeof list; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", have.s[i]);
            sl_free(&have);
            if (!rc)
                rc = RDML_FAIL(ctx, RDML_EDATA, "%s has no embedding %s for subj%02d (it has: %s; hint: "
                               "run `rdmlearn embed` for this subject, or list the embeddings to "
                               "compare in evaluate.embeddings)", rdml_h5_path(h), S->models.s[e], id,
                               *list ? list : "none");
        }
        if (!rc) rc = rdml_h5_dims(ctx, h, epath, &nd, dims);
        if (!rc && nd != 2)
            rc = RDML_FAIL(ctx, RDML_EFORMAT, "%s: %s is not a matrix", rdml_h5_path(h), epath);
        if (!rc) {
            ne[e] = dims[0];
            de[e] = dims[1];
        }
    }
    if (!rc) rc = image_set(ctx, o, id, S->name, d->n, (const char *const *)S->models.s, ne, d->M,
                            d->ids, d->nids, &d->m);
    const int64_t m = d->m;
    if (!rc && m < 3)
        rc = RDML_FAIL(ctx, RDML_EDATA, "subj%02d %s: %lld images are too few to compare RDMs (at "
                       "least 3 needed; hint: raise data.images)", id, S->name, (long long)m);
    if (!rc && o->nboot > 0 && m < EVAL_MIN_BOOT_IMAGES)
        rc = RDML_FAIL(ctx, RDML_EDATA, "subj%02d %s: %lld images are too few for the bootstrap over "
                       "images (at least %d needed: a resample of fewer has too few distinct pairs; "
                       "hint: raise data.images, or set evaluate.bootstrap = 0 to leave the "
                       "intervals out)", id, S->name, (long long)m, EVAL_MIN_BOOT_IMAGES);
    if (!rc) {
        d->brain = rdml_malloc(ctx, (size_t)(m * m) * sizeof *d->brain + 8, "brain RDM");
        rc = d->brain ? RDML_OK : ctx->code;
    }
    rc = rdml_agree(ctx, ex->comm, rc);
    if (!rc) rc = rdml_exp_read_rdm(ctx, ex->comm, h, rpath, m, d->brain);
    if (!rc && is_constant(d->brain, m))
        rc = RDML_FAIL(ctx, RDML_EDATA, "subj%02d %s: the brain RDM %s is constant on its %lld "
                       "images: no comparison is defined (hint: check the selection's vertices)",
                       id, S->name, rpath, (long long)m);
    for (int e = 0; e < d->M && !rc; e++) {
        int c = 0;
        while (c < cache->n && strcmp(cache->name[c], S->models.s[e]) != 0) c++;
        if (c < cache->n && cache->m[c] == m) {
            d->models[e] = cache->rdm[c];
            continue;
        }
        if (c == cache->n) {
            if (c == 64) {
                rc = RDML_FAIL(ctx, RDML_ECONFIG, "more than 64 embeddings to compare (hint: list "
                               "fewer in evaluate.embeddings)");
                break;
            }
            cache->name[c] = rdml_strdup(ctx, S->models.s[e]);
            cache->n++;
        }
        free(cache->rdm[c]);
        cache->m[c] = m;
        cache->rdm[c] = d->models[e] = rdml_malloc(ctx, (size_t)(m * m) * sizeof **d->models + 8, "model RDM");
        rc = rdml_agree(ctx, ex->comm, d->models[e] && cache->name[c] ? RDML_OK : ctx->code);
        if (rc) cache->m[c] = -1;
        snprintf(epath, sizeof epath, "/subjects/subj%02d/embeddings/%s", id, S->models.s[e]);
        if (!rc) rc = model_rdm(ex, h, o, epath, m, de[e], d->models[e]);
        if (rc) cache->m[c] = -1; /* not a valid entry */
        if (!rc && is_constant(d->models[e], m))
            rc = RDML_FAIL(ctx, RDML_EDATA, "subj%02d %s: the model RDM of embedding %s (%s "
                           "distance) is constant (every pair %g), so its correlation with the "
                           "brain RDM is undefined (hint: check the embedding %s, e.g. identical "
                           "rows; leave it out with evaluate.embeddings)", id, S->name,
                           S->models.s[e], rdml_rdm_metric_name(o->metric), (double)d->models[e][1],
                           epath);
    }
    /* the model RDMs on the images every subject saw, for the group statistics */
    int cover = S->nc_images > 0 && S->shmod;
    for (int64_t t = 0; cover && t < S->nc_images; t++) cover = S->shared_rows[si][t] < m;
    for (int e = 0; e < d->M && !rc && cover; e++) {
        float *sub = malloc((size_t)(S->nc_images * S->nc_images) * sizeof *sub + 8);
        if (!sub) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
        else rdml_rsa_subrdm(d->models[e], m, S->shared_rows[si], S->nc_images, sub);
        S->shmod[si * d->M + e] = sub;
    }
    rc = rdml_agree(ctx, ex->comm, rc);
    free(ne);
    free(de);
    if (rc) subj_free(d);
    return rc;
}

/* ---- writing ---- */

static int write_f64_2d(rdml_ctx *ctx, rdml_h5 *h, const char *g, const char *name, int64_t r,
                        int64_t c, const double *v, const char *meaning) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", g, name);
    int rc = rdml_h5_delete(ctx, h, path);
    if (!rc) rc = rdml_h5_write_rows_f64(ctx, h, path, r, c, 0, ctx->rank == 0 ? r : 0, v);
    if (!rc && meaning) rc = rdml_h5_attr_str(ctx, h, path, "meaning", meaning);
    return rc;
}

static int write_f64_1d(rdml_ctx *ctx, rdml_h5 *h, const char *g, const char *name, int64_t n,
                        const double *v, const char *meaning) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", g, name);
    int rc = rdml_h5_write_vec_f64(ctx, h, path, n, v);
    if (!rc && meaning) rc = rdml_h5_attr_str(ctx, h, path, "meaning", meaning);
    return rc;
}

/* ---- part 2: every model of an experiment on the fold's test pairs ---- */

static double mean_finite(const double *x, int64_t n, int64_t stride, double *sd) {
    double s = 0, ss = 0;
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++)
        if (isfinite(x[i * stride])) {
            s += x[i * stride];
            k++;
        }
    if (!k) {
        if (sd) *sd = NAN;
        return NAN;
    }
    double mu = s / (double)k;
    for (int64_t i = 0; i < n; i++)
        if (isfinite(x[i * stride])) ss += (x[i * stride] - mu) * (x[i * stride] - mu);
    if (sd) *sd = sqrt(ss / (double)k);
    return mu;
}

static double score_vec(rdml_ctx *ctx, rdml_rsa_method m, const double *a, const double *b, int64_t p) {
    for (int64_t i = 0; i < p; i++)
        if (!isfinite(a[i]) || !isfinite(b[i])) return NAN;
    double r = NAN;
    int rc = p < 2 ? RDML_EDATA
             : m == RDML_RSA_SPEARMAN ? rdml_rsa_spearman(ctx, a, b, p, &r)
             : m == RDML_RSA_PEARSON  ? rdml_rsa_pearson(ctx, a, b, p, &r)
                                      : rdml_rsa_kendall_tau_a(ctx, a, b, p, &r);
    if (rc) {
        rdml_ctx_clear(ctx); /* constant predictions (a collapsed network): no score */
        r = NAN;
    }
    return r;
}

/* Collective. The fold tables of experiment exp for one subject x selection. */
static int folds_part(rdml_exp *ex, rdml_h5 *h, const ev_opts *o, const ev_sel *S, int si,
                      const ev_subj *d, const char *exp, const strlist *encodes, strlist *fold_groups) {
    rdml_ctx *ctx = ex->ctx;
    char pg[800], path[1200];
    snprintf(pg, sizeof pg, "/experiments/%s/pairs/subj%02d/%s", exp, d->id, S->name);
    int ok = 0;
    RDML_TRY(rdml_h5_exists(ctx, h, pg, &ok));
    if (!ok) return RDML_OK;
    /* the experiment's models with results for this subject x selection */
    char **kids = NULL;
    int64_t nkids = 0;
    snprintf(path, sizeof path, "/experiments/%s", exp);
    RDML_TRY(rdml_h5_list(ctx, h, path, &kids, &nkids));
    strlist mods = {0}, cols = {0}, encs = {0};
    int rc = RDML_OK;
    for (int64_t i = 0; i < nkids && !rc; i++) {
        if (strcmp(kids[i], "pairs") == 0) continue;
        snprintf(path, sizeof path, "/experiments/%s/%s/subj%02d/%s", exp, kids[i], d->id, S->name);
        rc = rdml_h5_exists(ctx, h, path, &ok);
        if (!rc && ok) rc = sl_add(ctx, &mods, kids[i]);
    }
    rdml_h5_free_strings(kids, nkids);
    for (int e = 0; e < encodes->n && !rc; e++) {
        snprintf(path, sizeof path, "/encode/%s/subj%02d/%s", encodes->s[e], d->id, S->name);
        rc = rdml_h5_exists(ctx, h, path, &ok);
        if (!rc && ok) rc = sl_add(ctx, &encs, encodes->s[e]);
    }
    for (int i = 0; i < mods.n && !rc; i++) rc = sl_add(ctx, &cols, mods.s[i]);
    for (int e = 0; e < d->M && !rc; e++) {
        snprintf(path, sizeof path, "embedding:%s", S->models.s[e]);
        rc = sl_add(ctx, &cols, path);
    }
    for (int e = 0; e < encs.n && !rc; e++) {
        snprintf(path, sizeof path, "encode:%s", encs.s[e]);
        rc = sl_add(ctx, &cols, path);
    }
    /* the pairs */
    int nd = 0;
    int64_t dims[8] = {0}, F = 0;
    snprintf(path, sizeof path, "%s/ij", pg);
    if (!rc) rc = rdml_h5_dims(ctx, h, path, &nd, dims);
    const int64_t P = dims[0];
    int64_t *ij = rc ? NULL : rdml_malloc(ctx, (size_t)(2 * P + 2) * sizeof *ij, "pairs");
    double *value = rc ? NULL : rdml_malloc(ctx, (size_t)(P + 1) * sizeof *value, "pair values");
    if (!rc && (!ij || !value)) rc = ctx->code;
    rc = rdml_agree(ctx, ex->comm, rc);
    if (!rc) rc = rdml_h5_read_rows_i64(ctx, h, path, 0, P, ij);
    snprintf(path, sizeof path, "%s/value", pg);
    if (!rc) rc = rdml_h5_read_rows_f64(ctx, h, path, 0, P, value);
    if (!rc) {
        int64_t nf = 0, got = 0;
        if (rdml_h5_get_attr_i64(ctx, h, pg, "n_folds", &nf, 1, &got) != RDML_OK || !got) {
            rdml_ctx_clear(ctx);
            nf = 0;
        }
        F = nf;
    }
    const int C = cols.n, NM = o->nmethods;
    double *score = calloc((size_t)(F * C * NM) + 1, sizeof *score);
    double *ncv = calloc((size_t)(F * 2 * NM) + 1, sizeof *ncv);
    double *fci_lo = malloc((size_t)(F * C * NM) * sizeof *fci_lo + 8);
    double *fci_hi = malloc((size_t)(F * C * NM) * sizeof *fci_hi + 8);
    double *fp = malloc((size_t)(F * C * NM) * sizeof *fp + 8);
    double *fdiff = malloc((size_t)(4 * F * NM * C * C) * sizeof *fdiff + 8);
    char **fscheme = calloc((size_t)(F * NM) + 1, sizeof *fscheme);
    for (int64_t t = 0; fci_lo && fci_hi && fp && t < F * C * NM; t++) fci_lo[t] = fci_hi[t] = fp[t] = NAN;
    for (int64_t t = 0; fdiff && t < 4 * F * NM * C * C; t++) fdiff[t] = NAN;
    int64_t *ntest = calloc((size_t)F + 1, sizeof *ntest), *ncimg = calloc((size_t)F + 1, sizeof *ncimg);
    int64_t *folds = calloc((size_t)F + 1, sizeof *folds);
    char **reasons = calloc((size_t)F + 1, sizeof *reasons);
    /* row -> position among the selection's shared images, for the noise ceiling */
    int64_t *shpos = calloc((size_t)d->n + 1, sizeof *shpos);
    if (!rc && (!score || !ncv || !ntest || !ncimg || !folds || !reasons || !shpos || !fci_lo ||
                !fci_hi || !fp || !fdiff || !fscheme))
        rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory for the fold scores");
    rc = rdml_agree(ctx, ex->comm, rc);
    for (int64_t r = 0; r < d->n && !rc; r++) shpos[r] = -1;
    if (!rc && S->nc_images)
        for (int64_t t = 0; t < S->nc_images; t++) shpos[S->shared_rows[si][t]] = t;
    int64_t nfound = 0;
    for (int64_t f = 0; f < F && !rc; f++) {
        folds[f] = f;
        for (int64_t t = 0; t < C * NM; t++) score[f * C * NM + t] = NAN;
        ncv[f * 2 * NM] = NAN;
        for (int t = 0; t < 2 * NM; t++) ncv[f * 2 * NM + t] = NAN;
        /* the fold's test pairs: the first model that holds the fold */
        int64_t *tp = NULL, T = 0;
        for (int i = 0; i < mods.n && !rc && !tp; i++) {
            snprintf(path, sizeof path, "/experiments/%s/%s/subj%02d/%s/fold_%lld/test_pairs", exp,
                     mods.s[i], d->id, S->name, (long long)f);
            rc = rdml_h5_exists(ctx, h, path, &ok);
            if (rc || !ok) continue;
            rc = rdml_h5_dims(ctx, h, path, &nd, dims);
            T = dims[0];
            tp = rc ? NULL : rdml_malloc(ctx, (size_t)(T + 1) * sizeof *tp, "test pairs");
            rc = rdml_agree(ctx, ex->comm, rc ? rc : tp ? RDML_OK : ctx->code);
            if (!rc) rc = rdml_h5_read_rows_i64(ctx, h, path, 0, T, tp);
        }
        if (rc || !tp) {
            free(tp);
            reasons[f] = rdml_strdup(ctx, "no model holds this fold (it stopped?)");
            continue;
        }
        nfound++;
        ntest[f] = T;
        double *tgt = malloc((size_t)(T + 1) * sizeof *tgt), *colv = malloc((size_t)(C * T + 1) * sizeof *colv);
        int64_t *buf = malloc((size_t)(2 * T + 1) * sizeof *buf);
        rc = tgt && colv && buf ? RDML_OK : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
        rc = rdml_agree(ctx, ex->comm, rc);
        for (int64_t t = 0; t < T && !rc; t++) {
            if (tp[t] < 0 || tp[t] >= P) {
                rc = RDML_FAIL(ctx, RDML_EFORMAT, "%s: fold %lld's test pair %lld is outside the "
                               "%lld pairs of %s", rdml_h5_path(h), (long long)f, (long long)tp[t],
                               (long long)P, pg);
                break;
            }
            tgt[t] = value[tp[t]];
        }
        for (int c = 0; c < C && !rc; c++) {
            double *col = colv + (int64_t)c * T;
            for (int64_t t = 0; t < T; t++) col[t] = NAN;
            if (c < mods.n) {
                char fg[1100];
                snprintf(fg, sizeof fg, "/experiments/%s/%s/subj%02d/%s/fold_%lld", exp, mods.s[c],
                         d->id, S->name, (long long)f);
                /* the same test pairs, else this model's fold is left out */
                snprintf(path, sizeof path, "%s/test_pairs", fg);
                rc = rdml_h5_exists(ctx, h, path, &ok);
                if (rc || !ok) continue;
                rc = rdml_h5_dims(ctx, h, path, &nd, dims);
                if (rc || dims[0] != T) continue;
                rc = rdml_h5_read_rows_i64(ctx, h, path, 0, T, buf);
                if (rc || memcmp(buf, tp, (size_t)T * sizeof *tp) != 0) continue;
                static const char *const preds[] = {"decision", "prediction", "pred"};
                for (int q = 0; q < 3 && !rc; q++) {
                    snprintf(path, sizeof path, "%s/%s", fg, preds[q]);
                    rc = rdml_h5_exists(ctx, h, path, &ok);
                    if (rc || !ok) continue;
                    rc = rdml_h5_read_rows_f64(ctx, h, path, 0, T, col);
                    break;
                }
            } else if (c < mods.n + d->M) {
                const float *R = d->models[c - mods.n];
                for (int64_t t = 0; t < T; t++) {
                    int64_t a = ij[2 * tp[t]], b = ij[2 * tp[t] + 1];
                    if (a >= 0 && b >= 0 && a < d->m && b < d->m) col[t] = R[a * d->m + b];
                }
            } else {
                /* the encoding model's predicted RDM of the fold's test images */
                const char *en = encs.s[c - mods.n - d->M];
                char eg[1100];
                snprintf(eg, sizeof eg, "/encode/%s/subj%02d/%s/fold_%lld", en, d->id, S->name, (long long)f);
                snprintf(path, sizeof path, "%s/test_images", eg);
                rc = rdml_h5_exists(ctx, h, path, &ok);
                if (rc || !ok) continue;
                rc = rdml_h5_dims(ctx, h, path, &nd, dims);
                const int64_t me = dims[0];
                int64_t *rows = rc ? NULL : malloc((size_t)(me + 1) * sizeof *rows);
                float *pr = rc ? NULL : malloc((size_t)(me * me + 1) * sizeof *pr);
                int64_t *pos = rc ? NULL : malloc((size_t)(d->n + 1) * sizeof *pos);
                if (!rc && (!rows || !pr || !pos)) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
                rc = rdml_agree(ctx, ex->comm, rc);
                if (!rc) rc = rdml_h5_read_rows_i64(ctx, h, path, 0, me, rows);
                snprintf(path, sizeof path, "%s/pred_rdm", eg);
                if (!rc) rc = rdml_h5_dims(ctx, h, path, &nd, dims);
                if (!rc && (nd != 2 || dims[0] != me || dims[1] != me))
                    rc = RDML_FAIL(ctx, RDML_EFORMAT, "%s: %s is not %lld x %lld (the fold's test_images)",
                                   rdml_h5_path(h), path, (long long)me, (long long)me);
                if (!rc) rc = rdml_h5_read_rows_f32(ctx, h, path, 0, me, pr);
                for (int64_t r = 0; r < d->n && !rc; r++) pos[r] = -1;
                for (int64_t r = 0; r < me && !rc; r++)
                    if (rows[r] >= 0 && rows[r] < d->n) pos[rows[r]] = r;
                for (int64_t t = 0; t < T && !rc; t++) {
                    int64_t a = ij[2 * tp[t]], b = ij[2 * tp[t] + 1];
                    if (a >= 0 && b >= 0 && a < d->n && b < d->n && pos[a] >= 0 && pos[b] >= 0)
                        col[t] = pr[pos[a] * me + pos[b]];
                }
                free(rows);
                free(pr);
                free(pos);
            }
        }
        /* the fold's statistics (rdml_stats_evaluate) over the models with a value for every
         * test pair: intervals from a bootstrap over the fold's test images, permutation p
         * (image labels through the brain RDM when the pairs are not all pairs of the test
         * images), paired differences */
        int64_t *fpi = buf, *fpj = buf + T;
        int full_ok = 1;
        for (int64_t t = 0; t < T && !rc; t++) {
            fpi[t] = ij[2 * tp[t]];
            fpj[t] = ij[2 * tp[t] + 1];
            full_ok &= fpi[t] >= 0 && fpj[t] >= 0 && fpi[t] < d->m && fpj[t] < d->m;
        }
        for (int mi = 0; mi < NM && !rc; mi++) {
            const double **mv = calloc((size_t)C + 1, sizeof *mv);
            const char **mn = calloc((size_t)C + 1, sizeof *mn);
            int *use = calloc((size_t)C + 1, sizeof *use), nuse = 0;
            if (!mv || !mn || !use) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
            for (int c = 0; c < C && !rc; c++) {
                const double *col = colv + (int64_t)c * T;
                double sc = score_vec(ctx, o->methods[mi], tgt, col, T); /* NaN: missing or constant */
                score[(f * NM + mi) * C + c] = sc;
                if (isfinite(sc)) {
                    use[nuse] = c;
                    mv[nuse] = col;
                    mn[nuse++] = cols.s[c];
                }
            }
            char why_stats[600] = "";
            if (!rc && nuse > 0 && isfinite(score_vec(ctx, o->methods[mi], tgt, tgt, T))) {
                rdml_stats_data sd = {0};
                const double *bv[1] = {tgt};
                const float *bf[1] = {d->brain};
                sd.n = full_ok ? d->m : d->n;
                sd.npairs = T;
                sd.pi = fpi;
                sd.pj = fpj;
                sd.nsubj = 1;
                sd.brain = bv;
                sd.nmodels = nuse;
                sd.models = mv;
                sd.model_names = mn;
                sd.brain_full = full_ok ? bf : NULL;
                rdml_stats_opts so;
                rdml_stats_opts_default(&so);
                so.method = o->methods[mi];
                so.pool = o->pool;
                so.seed = o->seed;
                char kt[1200];
                snprintf(kt, sizeof kt, "folds:%s:%s:subj%02d:fold_%lld:%s", exp, S->name, d->id,
                         (long long)f, rdml_rsa_method_name(o->methods[mi]));
                so.key = rdml_hash_str(kt, 0);
                so.nboot = o->nboot;
                so.nperm = o->nperm;
                so.level = o->ci;
                so.keep_samples = 0;
                rdml_stats_result sr;
                rc = rdml_stats_evaluate(ctx, ex->comm, &sd, &so, &sr);
                if (rc == RDML_EDATA) {
                    snprintf(why_stats, sizeof why_stats, "%s", ctx->msg);
                    rdml_ctx_clear(ctx);
                    rc = RDML_OK;
                } else if (!rc) {
                    for (int a = 0; a < nuse; a++) {
                        int64_t x = (f * NM + mi) * C + use[a];
                        fci_lo[x] = sr.ci_lo[a];
                        fci_hi[x] = sr.ci_hi[a];
                        fp[x] = sr.perm_p[a];
                        for (int b2 = 0; b2 < nuse; b2++) {
                            int64_t y = ((f * NM + mi) * C + use[a]) * C + use[b2];
                            fdiff[4 * y] = sr.diff[a * nuse + b2];
                            fdiff[4 * y + 1] = sr.diff_lo[a * nuse + b2];
                            fdiff[4 * y + 2] = sr.diff_hi[a * nuse + b2];
                            fdiff[4 * y + 3] = sr.pair_p[a * nuse + b2];
                        }
                    }
                    snprintf(why_stats, sizeof why_stats, "%s", rdml_stats_perm_scheme_name(sr.perm_scheme));
                    rdml_stats_result_free(&sr);
                }
            }
            if (!rc) {
                fscheme[f * NM + mi] = rdml_strdup(ctx, why_stats);
                if (!fscheme[f * NM + mi]) rc = ctx->code;
            }
            free(mv);
            free(mn);
            free(use);
        }
        /* the noise ceiling on the fold's test images every subject saw */
        char why[512] = "";
        int64_t cnt = 0, *sel = rc ? NULL : malloc((size_t)(S->nc_images + 1) * sizeof *sel);
        if (!rc && !sel) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
        if (!rc && S->nc_images) {
            char *in = calloc((size_t)S->nc_images + 1, 1);
            if (!in) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
            for (int64_t t = 0; t < T && !rc; t++)
                for (int s = 0; s < 2; s++) {
                    int64_t r = ij[2 * tp[t] + s];
                    if (r >= 0 && r < d->n && shpos[r] >= 0) in[shpos[r]] = 1;
                }
            for (int64_t t = 0; t < S->nc_images && !rc; t++)
                if (in[t]) sel[cnt++] = t;
            free(in);
        }
        ncimg[f] = cnt;
        if (!rc && !S->nc_images) {
            rdml_strlcpy(why, S->nc_reason, sizeof why);
        } else if (!rc && cnt < 3) {
            snprintf(why, sizeof why, "only %lld of the fold's test images are seen by all %d "
                     "subjects (at least 3 needed)", (long long)cnt, S->nsubj);
        } else if (!rc) {
            float **subs = calloc((size_t)S->nsubj, sizeof *subs);
            if (!subs) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
            for (int i = 0; i < S->nsubj && !rc; i++) {
                subs[i] = malloc((size_t)(cnt * cnt) * sizeof **subs);
                if (!subs[i]) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
                else rdml_rsa_subrdm(S->shared[i], S->nc_images, sel, cnt, subs[i]);
            }
            for (int mi = 0; mi < NM && !rc; mi++)
                if (rdml_rsa_noise_ceiling(ctx, (const float *const *)subs, S->nsubj, cnt, o->methods[mi],
                                           o->pool, &ncv[(f * NM + mi) * 2], &ncv[(f * NM + mi) * 2 + 1],
                                           NULL, NULL)) {
                    snprintf(why, sizeof why, "undefined: %s", ctx->msg);
                    rdml_ctx_clear(ctx);
                }
            for (int i = 0; subs && i < S->nsubj; i++) free(subs[i]);
            free(subs);
        }
        free(sel);
        if (!rc) {
            reasons[f] = rdml_strdup(ctx, why);
            if (!reasons[f]) rc = ctx->code;
        }
        free(tgt);
        free(colv);
        free(buf);
        free(tp);
        rc = rdml_agree(ctx, ex->comm, rc);
    }
    /* write */
    char g[1000];
    snprintf(g, sizeof g, "/evaluate/folds/%s/%s/subj%02d", exp, S->name, d->id);
    if (!rc && nfound) {
        rc = sl_add(ctx, fold_groups, g);
        int64_t sid = d->id;
        rc = rdml_h5_group(ctx, h, g);
        if (!rc) rc = rdml_h5_attr_i64(ctx, h, g, "subject", &sid, 1);
        if (!rc) rc = rdml_h5_attr_str(ctx, h, g, "selection", S->name);
        if (!rc) rc = rdml_h5_attr_str(ctx, h, g, "pairs", pg);
        if (!rc) rc = rdml_h5_attr_str(ctx, h, g, "meaning",
                                       "every model scored on each outer fold's test pairs against "
                                       "the brain RDM's values of those pairs: the experiment's "
                                       "models (their test predictions), embedding:<name> (the "
                                       "embedding's model RDM on the same pairs), encode:<name> "
                                       "(the encoding model's predicted RDM); docs/evaluate.md");
        snprintf(path, sizeof path, "%s/models", g);
        if (!rc) rc = rdml_h5_write_strings(ctx, h, path, (const char *const *)cols.s, C);
        snprintf(path, sizeof path, "%s/folds", g);
        if (!rc) rc = rdml_h5_write_vec_i64(ctx, h, path, F, folds);
        snprintf(path, sizeof path, "%s/n_test_pairs", g);
        if (!rc) rc = rdml_h5_write_vec_i64(ctx, h, path, F, ntest);
        snprintf(path, sizeof path, "%s/noise_ceiling_images", g);
        if (!rc) rc = rdml_h5_write_vec_i64(ctx, h, path, F, ncimg);
        snprintf(path, sizeof path, "%s/noise_ceiling_reason", g);
        for (int64_t f = 0; f < F && !rc; f++)
            if (!reasons[f]) reasons[f] = rdml_strdup(ctx, "");
        if (!rc) rc = rdml_h5_write_strings(ctx, h, path, (const char *const *)reasons, F);
        if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "meaning", "why the fold's noise ceiling is NaN (empty: it is available)");
        double *tmp = calloc((size_t)(F * C) + 2 * (size_t)F + 2 * (size_t)C + 1, sizeof *tmp);
        if (!rc && !tmp) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
        for (int mi = 0; mi < NM && !rc; mi++) {
            char mg[1100];
            snprintf(mg, sizeof mg, "%s/%s", g, rdml_rsa_method_name(o->methods[mi]));
            rc = rdml_h5_group(ctx, h, mg);
            for (int64_t f = 0; f < F; f++)
                for (int c = 0; c < C; c++) tmp[f * C + c] = score[(f * NM + mi) * C + c];
            snprintf(path, sizeof path, "%s/score", mg);
            if (!rc) rc = rdml_h5_write_rows_f64(ctx, h, path, F, C, 0, ctx->rank == 0 ? F : 0, tmp);
            if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "meaning", "folds x models: the method's correlation of the fold's brain test-pair values with the model's values of the same pairs; NaN: the model has no (or constant) values for the fold");
            double *mu = tmp + F * C, *sd = mu + C, *nc = sd + C;
            for (int c = 0; c < C; c++) mu[c] = mean_finite(tmp + c, F, C, &sd[c]);
            snprintf(path, sizeof path, "%s/mean", mg);
            if (!rc) rc = rdml_h5_write_vec_f64(ctx, h, path, C, mu);
            snprintf(path, sizeof path, "%s/std", mg);
            if (!rc) rc = rdml_h5_write_vec_f64(ctx, h, path, C, sd);
            for (int64_t f = 0; f < F; f++) {
                nc[2 * f] = ncv[(f * NM + mi) * 2];
                nc[2 * f + 1] = ncv[(f * NM + mi) * 2 + 1];
            }
            snprintf(path, sizeof path, "%s/noise_ceiling", mg);
            if (!rc) rc = rdml_h5_write_rows_f64(ctx, h, path, F, 2, 0, ctx->rank == 0 ? F : 0, nc);
            if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "columns", "lower,upper");
            const double *arr[3] = {fci_lo, fci_hi, fp};
            static const char *const an[3] = {"ci_low", "ci_high", "p"};
            static const char *const am[3] = {
                "folds x models: percentile bootstrap interval over the fold's test images (evaluate.ci), lower end",
                "upper end",
                "folds x models: one-sided permutation p of score > 0 (the test images' labels permuted; see perm_scheme); q: ../q"};
            for (int x = 0; x < 3 && !rc; x++) {
                for (int64_t f = 0; f < F; f++)
                    for (int c = 0; c < C; c++) tmp[f * C + c] = arr[x][(f * NM + mi) * C + c];
                snprintf(path, sizeof path, "%s/%s", mg, an[x]);
                rc = rdml_h5_write_rows_f64(ctx, h, path, F, C, 0, ctx->rank == 0 ? F : 0, tmp);
                if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "meaning", am[x]);
            }
            const char **sch = calloc((size_t)F + 1, sizeof *sch);
            if (!rc && !sch) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
            for (int64_t f = 0; f < F && !rc; f++) sch[f] = fscheme[f * NM + mi] ? fscheme[f * NM + mi] : "";
            snprintf(path, sizeof path, "%s/perm_scheme", mg);
            if (!rc) rc = rdml_h5_write_strings(ctx, h, path, sch, F);
            if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "meaning", "per fold: how the permutation test permuted (images: all pairs of the test images; images_full: through the brain RDM; pairs: values shuffled over pairs, liberal), or why the fold has no statistics");
            free(sch);
            for (int64_t f = 0; f < F && !rc; f++) {
                char fg[1300];
                snprintf(fg, sizeof fg, "%s/fold_%lld", mg, (long long)f);
                rc = rdml_h5_group(ctx, h, fg);
                static const char *const dn[4] = {"diff", "diff_ci_low", "diff_ci_high", "diff_p"};
                double *dm = malloc((size_t)(C * C) * sizeof *dm + 8);
                if (!rc && !dm) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
                for (int x = 0; x < 4 && !rc; x++) {
                    for (int64_t y = 0; y < (int64_t)C * C; y++) dm[y] = fdiff[4 * ((f * NM + mi) * C * C + y) + x];
                    rc = write_f64_2d(ctx, h, fg, dn[x], C, C, dm,
                                      x == 0 ? "models x models: score[row] - score[column] on the fold's test pairs (bootstrap pair test p in diff_p; NaN: a model without values)" : NULL);
                }
                free(dm);
            }
        }
        free(tmp);
    }
    free(ij);
    free(value);
    free(score);
    free(ncv);
    free(fci_lo);
    free(fci_hi);
    free(fp);
    free(fdiff);
    for (int64_t t = 0; fscheme && t < F * NM; t++) free(fscheme[t]);
    free(fscheme);
    free(ntest);
    free(ncimg);
    free(folds);
    for (int64_t f = 0; reasons && f < F; f++) free(reasons[f]);
    free(reasons);
    free(shpos);
    sl_free(&mods);
    sl_free(&cols);
    sl_free(&encs);
    return rc;
}

/* The results of one comparison family (a subject, or the group) under group mg. */
static int write_result(rdml_ctx *ctx, rdml_h5 *h, const char *mg, const ev_opts *o,
                        const rdml_stats_result *r, const double *q, const double *dq,
                        const char *what) {
    const int M = r->nmodels;
    char meaning[600];
    snprintf(meaning, sizeof meaning, "the method's correlation of each model RDM (embedding, "
             "evaluate.metric) with the brain RDM on every pair of the images (%s)", what);
    int rc = rdml_h5_group(ctx, h, mg);
    if (!rc) rc = write_f64_1d(ctx, h, mg, "score", M, r->score, meaning);
    if (!rc) rc = write_f64_1d(ctx, h, mg, "ci_low", M, r->ci_lo, "percentile bootstrap interval (evaluate.ci) over the images (and subjects with evaluate.bootstrap_subjects), lower end");
    if (!rc) rc = write_f64_1d(ctx, h, mg, "ci_high", M, r->ci_hi, "upper end");
    if (!rc) rc = write_f64_1d(ctx, h, mg, "p", M, r->perm_p, "one-sided permutation p of score > 0 (image labels permuted)");
    if (!rc) rc = write_f64_1d(ctx, h, mg, "q", M, q, "p corrected across subjects x selections x models (evaluate.correction)");
    if (!rc) rc = write_f64_1d(ctx, h, mg, "boot_p_zero", M, r->boot_p_zero, "rsatoolbox's bootstrap test of score <= 0");
    if (!rc) rc = write_f64_2d(ctx, h, mg, "diff", M, M, r->diff, "score[row] - score[column]");
    if (!rc) rc = write_f64_2d(ctx, h, mg, "diff_ci_low", M, M, r->diff_lo, "percentile bootstrap interval of the difference (the same samples for both models), lower end");
    if (!rc) rc = write_f64_2d(ctx, h, mg, "diff_ci_high", M, M, r->diff_hi, "upper end");
    if (!rc) rc = write_f64_2d(ctx, h, mg, "diff_p", M, M, r->pair_p, "two-sided bootstrap pair test p (rsatoolbox's bootstrap_pair_tests)");
    if (!rc) rc = write_f64_2d(ctx, h, mg, "diff_q", M, M, dq, "diff_p corrected across every pair of models x subjects x selections (evaluate.correction)");
    int64_t iv[4] = {r->boot_valid, r->boot_dropped, r->perm_valid, r->u};
    if (!rc) rc = rdml_h5_attr_i64(ctx, h, mg, "boot_valid", &iv[0], 1);
    if (!rc) rc = rdml_h5_attr_i64(ctx, h, mg, "boot_dropped", &iv[1], 1);
    if (!rc) rc = rdml_h5_attr_i64(ctx, h, mg, "perm_valid", &iv[2], 1);
    if (!rc) rc = rdml_h5_attr_i64(ctx, h, mg, "n_images", &iv[3], 1);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, mg, "perm_scheme", rdml_stats_perm_scheme_name(r->perm_scheme));
    if (!rc && o->save_boot && r->boot_scores)
        rc = write_f64_2d(ctx, h, mg, "bootstrap", r->nboot, M, r->boot_scores, "bootstrap samples x models: each sample's score (NaN rows: dropped samples)");
    return rc;
}

/* One subject x selection's group /evaluate/rdm/<sel>/subjNN. */
static int write_unit(rdml_ctx *ctx, rdml_h5 *h, const ev_opts *o, const ev_sel *S, const ev_unit *u) {
    char g[800], mg[900], path[1000];
    snprintf(g, sizeof g, "/evaluate/rdm/%s/subj%02d", S->name, u->subj);
    const int M = u->M;
    int64_t sid = u->subj, m = u->m;
    int rc = rdml_h5_group(ctx, h, g);
    if (!rc) rc = rdml_h5_attr_i64(ctx, h, g, "subject", &sid, 1);
    if (!rc) rc = rdml_h5_attr_i64(ctx, h, g, "n_images", &m, 1);
    snprintf(path, sizeof path, "/subjects/subj%02d/rdm/%s", u->subj, S->name);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, g, "rdm", path);
    snprintf(path, sizeof path, "%s/models", g);
    if (!rc) rc = rdml_h5_write_strings(ctx, h, path, (const char *const *)S->models.s, M);
    for (int mi = 0; mi < o->nmethods && !rc; mi++) {
        snprintf(mg, sizeof mg, "%s/%s", g, rdml_rsa_method_name(o->methods[mi]));
        rc = write_result(ctx, h, mg, o, &u->res[mi], u->q[mi], u->dq[mi], "all images of the subject");
    }
    return rc;
}

/* The selection's group /evaluate/rdm/<sel>: the subjects x models tables, the noise ceiling,
 * and the group analysis on the images every subject saw. */
static int write_sel(rdml_ctx *ctx, rdml_h5 *h, const ev_opts *o, const ev_sel *S, ev_unit *const *units,
                     int nu, double *const *gq, double *const *gdq) {
    char g[800], mg[900], path[1000];
    snprintf(g, sizeof g, "/evaluate/rdm/%s", S->name);
    const int M = S->models.n;
    int rc = rdml_h5_group(ctx, h, g);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, g, "selection", S->name);
    int64_t *sid = calloc((size_t)nu + 1, sizeof *sid), *nim = calloc((size_t)nu + 1, sizeof *nim);
    double *tab = calloc((size_t)(5 * nu * M) + 1, sizeof *tab);
    if (!rc && (!sid || !nim || !tab)) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
    for (int i = 0; i < nu && !rc; i++) {
        sid[i] = units[i]->subj;
        nim[i] = units[i]->m;
    }
    snprintf(path, sizeof path, "%s/subjects", g);
    if (!rc) rc = rdml_h5_write_vec_i64(ctx, h, path, nu, sid);
    snprintf(path, sizeof path, "%s/n_images", g);
    if (!rc) rc = rdml_h5_write_vec_i64(ctx, h, path, nu, nim);
    snprintf(path, sizeof path, "%s/models", g);
    if (!rc) rc = rdml_h5_write_strings(ctx, h, path, (const char *const *)S->models.s, M);
    for (int mi = 0; mi < o->nmethods && !rc; mi++) {
        snprintf(mg, sizeof mg, "%s/%s", g, rdml_rsa_method_name(o->methods[mi]));
        rc = rdml_h5_group(ctx, h, mg);
        double *t[5];
        for (int k = 0; k < 5; k++) t[k] = tab + (int64_t)k * nu * M;
        for (int i = 0; i < nu; i++)
            for (int e = 0; e < M; e++) {
                const rdml_stats_result *r = &units[i]->res[mi];
                t[0][i * M + e] = r->score[e];
                t[1][i * M + e] = r->ci_lo[e];
                t[2][i * M + e] = r->ci_hi[e];
                t[3][i * M + e] = r->perm_p[e];
                t[4][i * M + e] = units[i]->q[mi][e];
            }
        static const char *const names[5] = {"score", "ci_low", "ci_high", "p", "q"};
        for (int k = 0; k < 5 && !rc; k++)
            rc = write_f64_2d(ctx, h, mg, names[k], nu, M, t[k],
                              k == 0 ? "subjects x models (rows: ../subjects, columns: ../models); the "
                                       "same values as subjNN/<method>/ (docs/evaluate.md)" : NULL);
        /* noise ceiling */
        const double *nc = S->nc[mi];
        double ncb[2] = {nc[0], nc[1]}, nci[4] = {nc[2], nc[3], nc[4], nc[5]};
        if (!rc) rc = write_f64_1d(ctx, h, mg, "noise_ceiling", 2, ncb, "lower, upper: leave-one-subject-out noise ceiling (rdm.noise_ceiling pooling) on the images every subject saw; NaN with the attribute reason when unavailable");
        if (!rc) rc = write_f64_2d(ctx, h, mg, "noise_ceiling_ci", 2, 2, nci, "rows lower, upper; columns ci_low, ci_high (bootstrap over the shared images, and subjects with evaluate.bootstrap_subjects); NaN without embeddings or bootstrap");
        snprintf(path, sizeof path, "%s/noise_ceiling", mg);
        if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "reason", S->nc_reason);
        if (!rc) rc = rdml_h5_attr_i64(ctx, h, path, "n_images", &S->nc_images, 1);
        /* the subjects together on the shared images */
        snprintf(path, sizeof path, "%s/group", mg);
        if (!rc && S->has_grp[mi])
            rc = write_result(ctx, h, path, o, &S->grp[mi], gq[mi], gdq[mi],
                              "the images every subject saw; score = mean over the subjects");
        if (!rc && !S->has_grp[mi] && S->nsubj >= 2) {
            rc = rdml_h5_group(ctx, h, path);
            if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "reason", S->grp_reason[mi][0] ? S->grp_reason[mi] : S->nc_reason);
        }
    }
    free(sid);
    free(nim);
    free(tab);
    return rc;
}

/* Collective. The settings as attributes of /evaluate. */
static int write_settings(rdml_ctx *ctx, rdml_h5 *h, const ev_opts *o) {
    char methods[64] = "";
    for (int i = 0; i < o->nmethods; i++) {
        if (i) rdml_strlcpy(methods + strlen(methods), ",", sizeof methods - strlen(methods));
        rdml_strlcpy(methods + strlen(methods), rdml_rsa_method_name(o->methods[i]), sizeof methods - strlen(methods));
    }
    int64_t iv[5] = {o->nboot, o->nperm, o->boot_subjects, (int64_t)o->seed, o->save_boot};
    int rc = rdml_h5_group(ctx, h, "/evaluate");
    if (!rc) rc = rdml_h5_attr_str(ctx, h, "/evaluate", "methods", methods);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, "/evaluate", "metric", rdml_rdm_metric_name(o->metric));
    if (!rc) rc = rdml_h5_attr_i64(ctx, h, "/evaluate", "n_bootstrap", &iv[0], 1);
    if (!rc) rc = rdml_h5_attr_i64(ctx, h, "/evaluate", "n_permutations", &iv[1], 1);
    if (!rc) rc = rdml_h5_attr_i64(ctx, h, "/evaluate", "bootstrap_subjects", &iv[2], 1);
    if (!rc) rc = rdml_h5_attr_i64(ctx, h, "/evaluate", "seed", &iv[3], 1);
    if (!rc) rc = rdml_h5_attr_i64(ctx, h, "/evaluate", "save_bootstrap", &iv[4], 1);
    if (!rc) rc = rdml_h5_attr_f64(ctx, h, "/evaluate", "ci", &o->ci, 1);
    if (!rc) rc = rdml_h5_attr_f64(ctx, h, "/evaluate", "alpha", &o->alpha, 1);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, "/evaluate", "correction", correction_names[o->correction]);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, "/evaluate", "image_sets", o->shared ? "shared" : "equal");
    if (!rc) rc = rdml_h5_attr_str(ctx, h, "/evaluate", "noise_ceiling_pool", rdml_rsa_pool_name(o->pool));
    if (!rc) rc = rdml_h5_attr_str(ctx, h, "/evaluate", "bootstrap_rule",
                                   "images resampled with replacement, the self-pairs of repeated "
                                   "images dropped (rsatoolbox's bootstrap_sample_rdm)");
    if (!rc) rc = rdml_h5_attr_str(ctx, h, "/evaluate", "meaning",
                                   "model comparison (rdmlearn evaluate, docs/evaluate.md): rdm/ "
                                   "embedding model RDMs against the brain RDMs, folds/ every "
                                   "experiment's models on each outer fold's test pairs");
    return rc;
}

/* Collective. The names under a group (all when want is NULL, else want's items, each of
 * which must exist). */
static int pick_names(rdml_ctx *ctx, rdml_h5 *h, const char *group, char **want, int nwant,
                      const char *what, const char *hint, strlist *out) {
    char **names = NULL;
    int64_t n = 0;
    RDML_TRY(rdml_h5_list(ctx, h, group, &names, &n));
    int rc = RDML_OK;
    if (!want) {
        for (int64_t i = 0; i < n && !rc; i++) rc = sl_add(ctx, out, names[i]);
    } else {
        for (int i = 0; i < nwant && !rc; i++) {
            int found = 0;
            for (int64_t j = 0; j < n; j++) found |= strcmp(names[j], want[i]) == 0;
            if (!found) {
                char have[600] = "";
                for (int64_t j = 0; j < n && strlen(have) + strlen(names[j]) + 4 < sizeof have; j++)
                    snprintf(have + strlen(have), sizeof have - strlen(have), "%s%s", j ? ", " : "", names[j]);
                rc = RDML_FAIL(ctx, RDML_ECONFIG, "%s = %s: %s has no %s/%s (it holds: %s; hint: %s)",
                               what, want[i], rdml_h5_path(h), group, want[i], *have ? have : "none", hint);
            } else {
                rc = sl_add(ctx, out, want[i]);
            }
        }
    }
    rdml_h5_free_strings(names, n);
    return rc;
}

int rdml_exp_evaluate_stage(rdml_exp *ex) {
    rdml_ctx *ctx = ex->ctx;
    ev_opts o;
    RDML_TRY(read_opts(ex, &o));
    const char *output;
    int rc = rdml_config_str(ctx, ex->cfg, "run", "output", &output);
    int exists = 0;
    if (!rc && ctx->rank == 0) exists = access(output, F_OK) == 0;
    MPI_Bcast(&exists, 1, MPI_INT, 0, ex->comm);
    if (!rc && !exists)
        rc = RDML_FAIL(ctx, RDML_EIO, "run.output = %s does not exist: evaluate compares the RDMs "
                       "and models in it (hint: run `rdmlearn rdm` and `rdmlearn embed` first, or "
                       "point run.output at the results file)", output);
    if (rc) {
        free_opts(&o);
        return rc;
    }
    rdml_h5 *h = NULL;
    char **sels = NULL, **subj_items = NULL;
    int nsel = 0, nsubj_items = 0, *subjects = NULL, ns = 0, explicit_subjects = 0;
    strlist exps = {0}, encodes = {0}, file_subjects = {0};
    ev_sel *S = NULL;
    ev_unit **units = NULL;
    int nunits = 0;
    strlist fold_groups = {0};
    double *gq[3][1] = {{0}}, *gdq[3][1] = {{0}};
    double **selq[3] = {0}, **seldq[3] = {0}; /* per method, per selection: the group's q */
    rc = rdml_exp_results_open(ex, "evaluate", &h);
    if (!rc) rc = rdml_exp_selections(ctx, ex->cfg, &sels, &nsel);
    if (!rc) rc = rdml_config_list(ctx, ex->cfg, "data", "subjects", &subj_items, &nsubj_items);
    /* subjects: data.subjects' numbers, or every subjNN of the file for "all" */
    if (!rc) rc = pick_names(ctx, h, "/subjects", NULL, 0, "subject", "", &file_subjects);
    if (!rc) {
        explicit_subjects = !(nsubj_items == 1 && strcmp(subj_items[0], "all") == 0);
        int cap = explicit_subjects ? nsubj_items : file_subjects.n;
        subjects = calloc((size_t)cap + 1, sizeof *subjects);
        if (!subjects) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
        for (int i = 0; i < cap && !rc; i++) {
            int id = explicit_subjects ? atoi(subj_items[i]) : atoi(file_subjects.s[i] + 4);
            if (!explicit_subjects && strncmp(file_subjects.s[i], "subj", 4) != 0) continue;
            subjects[ns++] = id;
        }
    }
    if (!rc && !o.no_exps)
        rc = pick_names(ctx, h, "/experiments", o.exps, o.nexps, "evaluate.fold_experiments",
                        "list experiments that `rdmlearn svm` or `train` wrote, or all", &exps);
    if (!rc) rc = pick_names(ctx, h, "/encode", NULL, 0, "encode", "", &encodes);
    if (!rc) rc = write_settings(ctx, h, &o);
    if (!rc) rc = rdml_h5_delete(ctx, h, "/evaluate/rdm");
    if (!rc) rc = rdml_h5_delete(ctx, h, "/evaluate/folds");
    if (!rc) {
        S = calloc((size_t)nsel + 1, sizeof *S);
        units = calloc((size_t)(nsel * (ns + 1)) + 1, sizeof *units);
        if (!S || !units) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
    }
    /* the selections: their subjects, shared images and embeddings */
    int64_t nwork = 0;
    for (int k = 0; k < nsel && !rc; k++) {
        ev_sel *sk = &S[k];
        rdml_strlcpy(sk->name, sels[k], sizeof sk->name);
        for (char *p = sk->name; *p; p++)
            if (*p == ',') *p = '+';
        rc = prepare_sel(ex, h, &o, subjects, ns, explicit_subjects, k, sk);
        /* the models: the embeddings of evaluate.embeddings (all: those of any subject) */
        for (int i = 0; i < sk->nsubj && !rc; i++) {
            char g[256];
            snprintf(g, sizeof g, "/subjects/subj%02d/embeddings", sk->subj[i]);
            if (o.emb) {
                for (int e = 0; e < o.nemb && !rc; e++) rc = sl_add(ctx, &sk->models, o.emb[e]);
            } else {
                rc = pick_names(ctx, h, g, NULL, 0, "embedding", "", &sk->models);
            }
        }
        /* the user's order, else by name */
        if (!rc && !o.emb && sk->models.n > 1)
            qsort(sk->models.s, (size_t)sk->models.n, sizeof *sk->models.s, cmp_str);
        if (!rc && !sk->models.n)
            rdml_warn(ctx, "%s: no embeddings in %s: only the experiments' models are scored "
                      "(hint: run `rdmlearn embed` first)", sk->name, output);
        if (!rc && sk->nc_images && sk->models.n) {
            sk->shmod = calloc((size_t)(sk->nsubj * sk->models.n), sizeof *sk->shmod);
            if (!sk->shmod) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
        }
        nwork += sk->nsubj;
    }
    /* subject by subject (each one's model RDMs computed once for all its selections), then
     * the selections' group analyses */
    rdml_progress prog;
    rdml_progress_begin(&prog, ctx, "evaluate", nwork);
    int64_t done = 0;
    for (int i = 0; i < ns && !rc; i++) {
        ev_cache cache;
        memset(&cache, 0, sizeof cache);
        for (int k = 0; k < nsel && !rc; k++) {
            ev_sel *sk = &S[k];
            int si = 0;
            while (si < sk->nsubj && sk->subj[si] != subjects[i]) si++;
            if (si == sk->nsubj) continue;
            rc = rdml_stop_agree(ctx, ex->comm, rc, "before subj%02d %s (evaluate)", sk->subj[si], sk->name);
            ev_subj d;
            if (!rc) rc = load_subject(ex, h, &o, sk, si, sk->subj[si], &cache, &d);
            if (rc) break;
            ev_unit *u = calloc(1, sizeof *u);
            if (!u) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
            else {
                units[nunits++] = u;
                u->sel = k;
                u->subj = d.id;
                u->m = d.m;
                u->M = d.M;
            }
            for (int mi = 0; mi < o.nmethods && !rc && d.M > 0; mi++) {
                rdml_stats_opts so;
                rdml_stats_opts_default(&so);
                so.method = o.methods[mi];
                so.pool = o.pool;
                so.seed = o.seed;
                so.key = key_of(sk->name, d.id, o.methods[mi]);
                so.nboot = o.nboot;
                so.nperm = o.nperm;
                so.level = o.ci;
                so.keep_samples = o.save_boot;
                rc = eval_rdm_stats(ctx, ex->comm, d.m, d.brain, (const float *const *)d.models, d.M,
                                    (const char *const *)sk->models.s, &so, &u->res[mi]);
                if (rc) rdml_ctx_prefix(ctx, "subj%02d %s %s", d.id, sk->name, rdml_rsa_method_name(o.methods[mi]));
                for (int e = 0; e < d.M && !rc; e++)
                    rdml_info(ctx, "subj%02d %-12s %-12s %s %.4f [%.4f, %.4f] p %.4g (%lld images)", d.id,
                              sk->name, sk->models.s[e], rdml_rsa_method_name(o.methods[mi]),
                              u->res[mi].score[e], u->res[mi].ci_lo[e], u->res[mi].ci_hi[e],
                              u->res[mi].perm_p[e], (long long)d.m);
            }
            for (int x = 0; x < exps.n && !rc; x++)
                rc = folds_part(ex, h, &o, sk, si, &d, exps.s[x], &encodes, &fold_groups);
            subj_free(&d);
            rdml_progress_update(&prog, ++done);
        }
        cache_free(&cache);
    }
    for (int k = 0; k < nsel && !rc; k++) {
        ev_sel *sk = &S[k];
        rc = group_stats(ex, &o, sk);
        if (!rc && sk->nc_images)
            rdml_info(ctx, "%s: noise ceiling (%s) [%.3f, %.3f] on the %lld images all %d subjects saw",
                      sk->name, rdml_rsa_method_name(o.methods[0]), sk->nc[0][0], sk->nc[0][1],
                      (long long)sk->nc_images, sk->nsubj);
    }
    if (!rc) rdml_progress_end(&prog);
    /* the corrections, per method: scores > 0 over subjects x selections x models, and the
     * differences over every pair of models x subjects x selections; the group analyses
     * (subjects together) over selections x models, a family of their own */
    for (int mi = 0; mi < o.nmethods && !rc; mi++) {
        int64_t np = 0, nd = 0, gp = 0, gd = 0;
        for (int i = 0; i < nunits; i++) {
            np += units[i]->M;
            nd += units[i]->M * (units[i]->M - 1) / 2;
        }
        for (int k = 0; k < nsel; k++)
            if (S[k].has_grp[mi]) {
                gp += S[k].models.n;
                gd += S[k].models.n * (S[k].models.n - 1) / 2;
            }
        const int64_t tot = np + nd + gp + gd;
        double *p = calloc((size_t)tot + 1, sizeof *p), *q = calloc((size_t)tot + 1, sizeof *q);
        selq[mi] = calloc((size_t)nsel + 1, sizeof *selq[mi]);
        seldq[mi] = calloc((size_t)nsel + 1, sizeof *seldq[mi]);
        if (!p || !q || !selq[mi] || !seldq[mi]) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
        int64_t a = 0, b = np, c = np + nd, e2 = np + nd + gp;
        for (int i = 0; i < nunits && !rc; i++) {
            const rdml_stats_result *r = &units[i]->res[mi];
            const int M = units[i]->M;
            for (int e = 0; e < M; e++) p[a++] = r->perm_p[e];
            for (int e = 0; e < M; e++)
                for (int f = e + 1; f < M; f++) p[b++] = r->pair_p[e * M + f];
        }
        for (int k = 0; k < nsel && !rc; k++) {
            if (!S[k].has_grp[mi]) continue;
            const rdml_stats_result *r = &S[k].grp[mi];
            const int M = S[k].models.n;
            for (int e = 0; e < M; e++) p[c++] = r->perm_p[e];
            for (int e = 0; e < M; e++)
                for (int f = e + 1; f < M; f++) p[e2++] = r->pair_p[e * M + f];
        }
        if (!rc) {
            eval_correct(o.correction, p, np, q);
            eval_correct(o.correction, p + np, nd, q + np);
            eval_correct(o.correction, p + np + nd, gp, q + np + nd);
            eval_correct(o.correction, p + np + nd + gp, gd, q + np + nd + gp);
        }
        a = 0;
        b = np;
        c = np + nd;
        e2 = np + nd + gp;
        for (int i = 0; i < nunits && !rc; i++) {
            const int M = units[i]->M;
            units[i]->q[mi] = calloc((size_t)M + 1, sizeof(double));
            units[i]->dq[mi] = calloc((size_t)(M * M) + 1, sizeof(double));
            if (!units[i]->q[mi] || !units[i]->dq[mi]) {
                rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
                break;
            }
            for (int e = 0; e < M; e++) units[i]->q[mi][e] = q[a++];
            for (int e = 0; e < M; e++) units[i]->dq[mi][e * M + e] = NAN;
            for (int e = 0; e < M; e++)
                for (int f = e + 1; f < M; f++) units[i]->dq[mi][e * M + f] = units[i]->dq[mi][f * M + e] = q[b++];
        }
        for (int k = 0; k < nsel && !rc; k++) {
            if (!S[k].has_grp[mi]) continue;
            const int M = S[k].models.n;
            selq[mi][k] = calloc((size_t)M + 1, sizeof(double));
            seldq[mi][k] = calloc((size_t)(M * M) + 1, sizeof(double));
            if (!selq[mi][k] || !seldq[mi][k]) {
                rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
                break;
            }
            for (int e = 0; e < M; e++) selq[mi][k][e] = q[c++];
            for (int e = 0; e < M; e++) seldq[mi][k][e * M + e] = NAN;
            for (int e = 0; e < M; e++)
                for (int f = e + 1; f < M; f++) seldq[mi][k][e * M + f] = seldq[mi][k][f * M + e] = q[e2++];
        }
        free(p);
        free(q);
    }
    for (int k = 0; k < nsel && !rc; k++) {
        ev_unit **us = calloc((size_t)nunits + 1, sizeof *us);
        int nu = 0;
        if (!us) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
        for (int i = 0; i < nunits && !rc; i++)
            if (units[i]->sel == k && units[i]->M > 0) us[nu++] = units[i];
        for (int i = 0; i < nu && !rc; i++) rc = write_unit(ctx, h, &o, &S[k], us[i]);
        double *kq[3] = {0}, *kdq[3] = {0};
        for (int mi = 0; mi < o.nmethods; mi++) {
            kq[mi] = selq[mi] ? selq[mi][k] : NULL;
            kdq[mi] = seldq[mi] ? seldq[mi][k] : NULL;
        }
        if (!rc && nu) rc = write_sel(ctx, h, &o, &S[k], us, nu, kq, kdq);
        free(us);
    }
    /* the folds' p, corrected per method over every experiment x subject x selection x fold x
     * model, read back from the groups just written */
    for (int mi = 0; mi < o.nmethods && !rc && fold_groups.n; mi++) {
        int64_t tot = 0, *len = calloc((size_t)fold_groups.n, sizeof *len);
        double *p = NULL, *q = NULL;
        char path[1400];
        const char *mn = rdml_rsa_method_name(o.methods[mi]);
        if (!len) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
        for (int i = 0; i < fold_groups.n && !rc; i++) {
            int nd = 0;
            int64_t dims[8] = {0};
            snprintf(path, sizeof path, "%s/%s/p", fold_groups.s[i], mn);
            rc = rdml_h5_dims(ctx, h, path, &nd, dims);
            len[i] = nd == 2 ? dims[0] * dims[1] : 0;
            tot += len[i];
        }
        if (!rc) {
            p = calloc((size_t)tot + 1, sizeof *p);
            q = calloc((size_t)tot + 1, sizeof *q);
            if (!p || !q) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
        }
        int64_t off = 0;
        for (int i = 0; i < fold_groups.n && !rc; i++) {
            snprintf(path, sizeof path, "%s/%s/p", fold_groups.s[i], mn);
            int nd = 0;
            int64_t dims[8] = {0};
            rc = rdml_h5_dims(ctx, h, path, &nd, dims);
            if (!rc) rc = rdml_h5_read_rows_f64(ctx, h, path, 0, dims[0], p + off);
            off += len[i];
        }
        if (!rc) eval_correct(o.correction, p, tot, q);
        off = 0;
        for (int i = 0; i < fold_groups.n && !rc; i++) {
            snprintf(path, sizeof path, "%s/%s/p", fold_groups.s[i], mn);
            int nd = 0;
            int64_t dims[8] = {0};
            rc = rdml_h5_dims(ctx, h, path, &nd, dims);
            snprintf(path, sizeof path, "%s/%s", fold_groups.s[i], mn);
            if (!rc) rc = write_f64_2d(ctx, h, path, "q", dims[0], dims[1], q + off,
                                       "p corrected across every experiment x subject x selection x fold x model (evaluate.correction)");
            off += len[i];
        }
        free(len);
        free(p);
        free(q);
    }
    if (!rc && !nunits)
        rc = RDML_FAIL(ctx, RDML_EDATA, "%s: nothing to evaluate for data.subjects x data.rois",
                       output);
    if (!rc) {
        rc = rdml_exp_results_commit(ctx, &h, "evaluate");
        if (!rc) rc = rdml_exp_tables_sync(ex);
    } else {
        rdml_h5_abort(&h);
        rdml_exp_stopped(ex, "evaluate");
    }
    for (int mi = 0; mi < 3; mi++) {
        for (int k = 0; selq[mi] && k < nsel; k++) free(selq[mi][k]);
        for (int k = 0; seldq[mi] && k < nsel; k++) free(seldq[mi][k]);
        free(selq[mi]);
        free(seldq[mi]);
    }
    (void)gq;
    (void)gdq;
    sl_free(&fold_groups);
    for (int i = 0; i < nunits; i++) {
        for (int mi = 0; mi < 3; mi++) {
            rdml_stats_result_free(&units[i]->res[mi]);
            free(units[i]->q[mi]);
            free(units[i]->dq[mi]);
        }
        free(units[i]);
    }
    free(units);
    for (int k = 0; S && k < nsel; k++) sel_free(&S[k]);
    free(S);
    sl_free(&exps);
    sl_free(&encodes);
    sl_free(&file_subjects);
    free(subjects);
    free(subj_items);
    rdml_exp_free_list(sels, nsel);
    free_opts(&o);
    return rc;
}
