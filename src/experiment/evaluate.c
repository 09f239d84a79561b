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
 * All ranks hold the RDMs of one subject at a time (the model RDMs are computed on the
 * ranks' 2-D grid by rdml_rdm_compute_from and gathered); the resamples are spread over the
 * ranks (eval_stats.c), so every number is the same for any rank count. Errors (a missing
 * RDM or embedding, image sets that differ, too few images, a constant model RDM) abort the
 * results file, so run.output stays as it was. */
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
    RDML_TRY(rdml_config_list(ctx, cfg, "evaluate", "experiments", &items, &n));
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

/* An in-memory embedding (m x D) as the RDM module's reader. */
typedef struct emb_src {
    const float *x;
    int64_t d;
} emb_src;

static int emb_read(rdml_ctx *ctx, void *user, int64_t r0, int64_t r1, const int64_t *cols,
                    int64_t ncols, float *out) {
    (void)ctx;
    const emb_src *e = user;
    for (int64_t r = r0; r < r1; r++)
        for (int64_t c = 0; c < ncols; c++) out[(r - r0) * ncols + c] = e->x[r * e->d + cols[c]];
    return RDML_OK;
}

/* Collective. The m x m model RDM of an embedding's first m rows, on every rank. */
static int model_rdm(rdml_exp *ex, rdml_h5 *h, const ev_opts *o, const char *epath, int64_t m,
                     int64_t d, float *out) {
    rdml_ctx *ctx = ex->ctx;
    float *x = rdml_malloc(ctx, (size_t)(m * d + 1) * sizeof *x, "embedding rows");
    RDML_TRY(rdml_agree(ctx, ex->comm, x ? RDML_OK : ctx->code));
    int rc = rdml_h5_read_rows_f32(ctx, h, epath, 0, m, x);
    rdml_rdm_params p;
    rdml_rdm_defaults(&p);
    p.metric = o->metric;
    p.standardize = 0;
    p.zero_variance_error = 0; /* a constant embedding row: distances 1 (the documented policy) */
    rdml_rdm r = {0};
    emb_src src = {x, d};
    if (!rc) rc = rdml_rdm_compute_from(ctx, ex->comm, m, d, emb_read, &src, &p, &r);
    free(x);
    if (rc) return rc;
    int *counts = calloc((size_t)ctx->nranks, sizeof *counts), *displs = calloc((size_t)ctx->nranks, sizeof *displs);
    rc = counts && displs ? RDML_OK : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
    rc = rdml_agree(ctx, ex->comm, rc);
    if (!rc) {
        int mine = (int)((r.row_hi - r.row_lo) * m);
        MPI_Allgather(&mine, 1, MPI_INT, counts, 1, MPI_INT, ex->comm);
        for (int k = 1; k < ctx->nranks; k++) displs[k] = displs[k - 1] + counts[k - 1];
        MPI_Allgatherv(r.rows, mine, MPI_FLOAT, out, counts, displs, MPI_FLOAT, ex->comm);
    }
    free(counts);
    free(displs);
    rdml_rdm_free(&r);
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
    eval_res res[3];       /* per method */
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
} ev_sel;

static void sel_free(ev_sel *s) {
    for (int i = 0; i < s->nsubj; i++) {
        if (s->shared) free(s->shared[i]);
        if (s->shared_ids) free(s->shared_ids[i]);
        if (s->shared_rows) free(s->shared_rows[i]);
    }
    free(s->shared);
    free(s->shared_ids);
    free(s->shared_rows);
    free(s->subj);
    sl_free(&s->models);
}

static uint64_t key_of(int sel, int subj, int method, int part) {
    return ((uint64_t)part << 48) ^ ((uint64_t)(sel & 0xffff) << 24) ^ ((uint64_t)subj << 8) ^ (uint64_t)method;
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
    for (int mi = 0; mi < o->nmethods && !rc && S->nc_images; mi++)
        rc = eval_noise_ceiling(ctx, ex->comm, (const float *const *)S->shared, ns2, m, o->methods[mi],
                                o->pool, o->nboot, o->ci, o->seed, key_of(k, 0, mi, 1), S->nc[mi]);
    for (int i = 0; lists && i < ns2; i++) free(lists[i]);
    free(lists);
    free(lens);
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

static void subj_free(ev_subj *d) {
    for (int e = 0; d->models && e < d->M; e++) free(d->models[e]);
    free(d->models);
    free(d->brain);
    free(d->ids);
    memset(d, 0, sizeof *d);
}

/* Collective. Load subject id's brain RDM and compute its model RDMs. */
static int load_subject(rdml_exp *ex, rdml_h5 *h, const ev_opts *o, const ev_sel *S, int id,
                        ev_subj *d) {
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
        if (!rc && !ok)
            rc = RDML_FAIL(ctx, RDML_EDATA, "%s has no embedding %s for subj%02d (hint: run `rdmlearn "
                           "embed` for this subject, or list the embeddings to compare in "
                           "evaluate.embeddings)", rdml_h5_path(h), S->models.s[e], id);
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
        d->models[e] = rdml_malloc(ctx, (size_t)(m * m) * sizeof **d->models + 8, "model RDM");
        rc = rdml_agree(ctx, ex->comm, d->models[e] ? RDML_OK : ctx->code);
        snprintf(epath, sizeof epath, "/subjects/subj%02d/embeddings/%s", id, S->models.s[e]);
        if (!rc) rc = model_rdm(ex, h, o, epath, m, de[e], d->models[e]);
        if (!rc && is_constant(d->models[e], m))
            rc = RDML_FAIL(ctx, RDML_EDATA, "subj%02d %s: the model RDM of embedding %s (%s "
                           "distance) is constant (every pair %g), so its correlation with the "
                           "brain RDM is undefined (hint: check the embedding %s, e.g. identical "
                           "rows; leave it out with evaluate.embeddings)", id, S->name,
                           S->models.s[e], rdml_rdm_metric_name(o->metric), (double)d->models[e][1],
                           epath);
    }
    free(ne);
    free(de);
    if (rc) subj_free(d);
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
                      const ev_subj *d, const char *exp, const strlist *encodes, int *wrote) {
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
    int64_t *ntest = calloc((size_t)F + 1, sizeof *ntest), *ncimg = calloc((size_t)F + 1, sizeof *ncimg);
    int64_t *folds = calloc((size_t)F + 1, sizeof *folds);
    char **reasons = calloc((size_t)F + 1, sizeof *reasons);
    /* row -> position among the selection's shared images, for the noise ceiling */
    int64_t *shpos = calloc((size_t)d->n + 1, sizeof *shpos);
    if (!rc && (!score || !ncv || !ntest || !ncimg || !folds || !reasons || !shpos))
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
        double *tgt = malloc((size_t)(T + 1) * sizeof *tgt), *col = malloc((size_t)(T + 1) * sizeof *col);
        int64_t *buf = malloc((size_t)(T + 1) * sizeof *buf);
        rc = tgt && col && buf ? RDML_OK : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
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
            for (int mi = 0; mi < NM && !rc; mi++)
                score[(f * NM + mi) * C + c] = score_vec(ctx, o->methods[mi], tgt, col, T);
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
        free(col);
        free(buf);
        free(tp);
        rc = rdml_agree(ctx, ex->comm, rc);
    }
    /* write */
    char g[1000];
    snprintf(g, sizeof g, "/evaluate/folds/%s/%s/subj%02d", exp, S->name, d->id);
    if (!rc && nfound) {
        *wrote = 1;
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
        }
        free(tmp);
    }
    free(ij);
    free(value);
    free(score);
    free(ncv);
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

/* ---- writing part 1 ---- */

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
        const eval_res *r = &u->res[mi];
        snprintf(mg, sizeof mg, "%s/%s", g, rdml_rsa_method_name(o->methods[mi]));
        rc = rdml_h5_group(ctx, h, mg);
        if (!rc) rc = write_f64_1d(ctx, h, mg, "score", M, r->score, "the method's correlation of the model RDM (embedding, evaluate.metric) with the brain RDM, upper triangles");
        if (!rc) rc = write_f64_1d(ctx, h, mg, "ci_low", M, r->ci_low, "percentile bootstrap interval over images (evaluate.ci), lower end");
        if (!rc) rc = write_f64_1d(ctx, h, mg, "ci_high", M, r->ci_high, "upper end");
        if (!rc) rc = write_f64_1d(ctx, h, mg, "p", M, r->p, "one-sided permutation p of score > 0 (image labels of the model RDM permuted)");
        if (!rc) rc = write_f64_1d(ctx, h, mg, "q", M, u->q[mi], "p corrected across subjects x selections x models (evaluate.correction)");
        if (!rc) rc = write_f64_2d(ctx, h, mg, "diff", M, M, r->diff, "score[row] - score[column]");
        if (!rc) rc = write_f64_2d(ctx, h, mg, "diff_ci_low", M, M, r->diff_low, "percentile bootstrap interval of the difference (the same samples for both models), lower end");
        if (!rc) rc = write_f64_2d(ctx, h, mg, "diff_ci_high", M, M, r->diff_high, "upper end");
        if (!rc) rc = write_f64_2d(ctx, h, mg, "diff_p", M, M, r->diff_p, "two-sided bootstrap p of difference != 0");
        if (!rc) rc = write_f64_2d(ctx, h, mg, "diff_q", M, M, u->dq[mi], "diff_p corrected across every pair of models x subjects x selections (evaluate.correction)");
        if (!rc && r->boot && o->save_boot) rc = write_f64_2d(ctx, h, mg, "bootstrap", r->nboot, M, r->boot, "bootstrap samples x models: each sample's score (NaN: undefined)");
    }
    return rc;
}

/* The selection's group /evaluate/rdm/<sel>: the subjects x models tables, the noise
 * ceiling, and the group mean. */
static int write_sel(rdml_ctx *ctx, rdml_h5 *h, const ev_opts *o, const ev_sel *S, ev_unit *const *units,
                     int nu) {
    char g[800], mg[900], path[1000];
    snprintf(g, sizeof g, "/evaluate/rdm/%s", S->name);
    const int M = S->models.n;
    int rc = rdml_h5_group(ctx, h, g);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, g, "selection", S->name);
    int64_t *sid = calloc((size_t)nu + 1, sizeof *sid), *nim = calloc((size_t)nu + 1, sizeof *nim);
    double *tab = calloc((size_t)(5 * nu * M + 4 * M) + 1, sizeof *tab);
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
                const eval_res *r = &units[i]->res[mi];
                t[0][i * M + e] = r->score[e];
                t[1][i * M + e] = r->ci_low[e];
                t[2][i * M + e] = r->ci_high[e];
                t[3][i * M + e] = r->p[e];
                t[4][i * M + e] = units[i]->q[mi][e];
            }
        static const char *const names[5] = {"score", "ci_low", "ci_high", "p", "q"};
        for (int k = 0; k < 5 && !rc; k++)
            rc = write_f64_2d(ctx, h, mg, names[k], nu, M, t[k],
                              k == 0 ? "subjects x models (rows: ../subjects, columns: ../models); the "
                                       "same values as subjNN/<method>/ (docs/evaluate.md)" : NULL);
        /* the group: mean over subjects, interval from a bootstrap over subjects */
        double *gm = tab + 5 * nu * M, *glo = gm + M, *ghi = glo + M;
        for (int e = 0; e < M; e++) {
            gm[e] = mean_finite(t[0] + e, nu, M, NULL);
            glo[e] = ghi[e] = NAN;
        }
        if (o->boot_subjects && nu >= 2 && o->nboot > 0) {
            double *bs = malloc((size_t)(o->nboot * M + 1) * sizeof *bs);
            if (!bs) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
            for (int64_t b = 0; b < o->nboot && !rc; b++) {
                rdml_rng gr = rdml_rng_make(o->seed, rdml_rng_substream(RDML_STREAM_SHUFFLE, key_of(0, 0, mi, 3)),
                                            (uint64_t)b * (uint64_t)nu * 4);
                for (int e = 0; e < M; e++) bs[b * M + e] = 0;
                for (int i = 0; i < nu; i++) {
                    int s = (int)rdml_rng_below(&gr, (uint64_t)nu);
                    /* the subject's score in this bootstrap sample of its images too */
                    const eval_res *r = &units[s]->res[mi];
                    for (int e = 0; e < M; e++)
                        bs[b * M + e] += (r->boot ? r->boot[b * M + e] : r->score[e]) / nu;
                }
            }
            for (int e = 0; e < M && !rc; e++) eval_percentile_ci(bs + e, o->nboot, M, o->ci, &glo[e], &ghi[e]);
            free(bs);
        }
        if (!rc) rc = write_f64_1d(ctx, h, mg, "group_score", M, gm, "mean score over the subjects");
        if (!rc) rc = write_f64_1d(ctx, h, mg, "group_ci_low", M, glo, "percentile interval of the mean from a bootstrap over subjects and images (evaluate.bootstrap_subjects; NaN when off or one subject)");
        if (!rc) rc = write_f64_1d(ctx, h, mg, "group_ci_high", M, ghi, "upper end");
        /* noise ceiling */
        const double *nc = S->nc[mi];
        double ncb[2] = {nc[0], nc[1]}, nci[4] = {nc[2], nc[3], nc[4], nc[5]};
        if (!rc) rc = write_f64_1d(ctx, h, mg, "noise_ceiling", 2, ncb, "lower, upper: leave-one-subject-out noise ceiling (rdm.noise_ceiling pooling) on the images every subject saw; NaN with noise_ceiling_reason when unavailable");
        if (!rc) rc = write_f64_2d(ctx, h, mg, "noise_ceiling_ci", 2, 2, nci, "rows lower, upper; columns ci_low, ci_high (bootstrap over the shared images)");
        snprintf(path, sizeof path, "%s/noise_ceiling", mg);
        if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "reason", S->nc_reason);
        if (!rc) rc = rdml_h5_attr_i64(ctx, h, path, "n_images", &S->nc_images, 1);
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
                rc = RDML_FAIL(ctx, RDML_ECONFIG, "%s = %s: %s has no %s %s/%s (it holds: %s; hint: %s)",
                               what, want[i], rdml_h5_path(h), what, group, want[i], *have ? have : "none", hint);
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
    int nunits = 0, wrote_folds = 0;
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
        rc = pick_names(ctx, h, "/experiments", o.exps, o.nexps, "evaluate.experiments",
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
    rdml_progress prog;
    rdml_progress_begin(&prog, ctx, "evaluate", (int64_t)nsel * ns);
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
        if (!rc && sk->nc_images)
            rdml_info(ctx, "%s: noise ceiling (%s) [%.3f, %.3f] on the %lld images all %d subjects saw",
                      sk->name, rdml_rsa_method_name(o.methods[0]), sk->nc[0][0], sk->nc[0][1],
                      (long long)sk->nc_images, sk->nsubj);
        for (int si = 0; si < sk->nsubj && !rc; si++) {
            rc = rdml_stop_agree(ctx, ex->comm, rc, "before subj%02d %s (evaluate)", sk->subj[si], sk->name);
            ev_subj d;
            if (!rc) rc = load_subject(ex, h, &o, sk, sk->subj[si], &d);
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
                eval_cmp c = {d.m, d.brain, (const float *const *)d.models, d.M, o.methods[mi],
                              o.nboot, o.nperm, o.ci, o.seed, key_of(k, d.id, mi, 0)};
                rc = eval_compare_models(ctx, ex->comm, &c, o.save_boot || o.boot_subjects, &u->res[mi]);
                if (!rc && !o.save_boot && !o.boot_subjects) u->res[mi].boot = NULL;
                for (int e = 0; e < d.M && !rc; e++)
                    rdml_info(ctx, "subj%02d %-12s %-12s %s %.4f [%.4f, %.4f] p %.4g (%lld images)", d.id,
                              sk->name, sk->models.s[e], rdml_rsa_method_name(o.methods[mi]),
                              u->res[mi].score[e], u->res[mi].ci_low[e], u->res[mi].ci_high[e],
                              u->res[mi].p[e], (long long)d.m);
            }
            for (int x = 0; x < exps.n && !rc; x++)
                rc = folds_part(ex, h, &o, sk, si, &d, exps.s[x], &encodes, &wrote_folds);
            subj_free(&d);
            rdml_progress_update(&prog, (int64_t)k * ns + si + 1);
        }
    }
    if (!rc) rdml_progress_end(&prog);
    /* the corrections, per method: scores > 0 over subjects x selections x models, and the
     * differences over every pair of models x subjects x selections */
    for (int mi = 0; mi < o.nmethods && !rc; mi++) {
        int64_t np = 0, nd = 0;
        for (int i = 0; i < nunits; i++) {
            np += units[i]->M;
            nd += units[i]->M * (units[i]->M - 1) / 2;
        }
        double *p = calloc((size_t)(np + nd) + 1, sizeof *p), *q = calloc((size_t)(np + nd) + 1, sizeof *q);
        if (!p || !q) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
        int64_t a = 0, b = np;
        for (int i = 0; i < nunits && !rc; i++) {
            const eval_res *r = &units[i]->res[mi];
            for (int e = 0; e < units[i]->M; e++) p[a++] = r->p[e];
            for (int e = 0; e < units[i]->M; e++)
                for (int f = e + 1; f < units[i]->M; f++) p[b++] = r->diff_p[e * units[i]->M + f];
        }
        if (!rc) rc = eval_correct(ctx, o.correction, p, np, q);
        if (!rc) rc = eval_correct(ctx, o.correction, p + np, nd, q + np);
        a = 0;
        b = np;
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
        if (!rc && nu) rc = write_sel(ctx, h, &o, &S[k], us, nu);
        free(us);
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
    (void)wrote_folds;
    for (int i = 0; i < nunits; i++) {
        for (int mi = 0; mi < 3; mi++) {
            eval_res_free(&units[i]->res[mi]);
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
