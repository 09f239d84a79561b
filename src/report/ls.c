/* `rdmlearn ls RESULTS.h5`: what a results file holds, at a glance. One pass over the file
 * (docs/results.md) builds a JSON document (jansson): provenance (/meta: version, stages with
 * their start time, ranks and config hash, the outputs done), subjects with their image
 * counts and RDMs (selection, size, vertices, metric, threshold), the inter-subject RSA,
 * embeddings (name, backend, dims per subject), experiments x models with the headline metric
 * of every subject x selection (mean and std over folds: accuracy for the C-SVC, R^2 for the
 * SVR and the networks; folds finished / diverged / collapsed / not converged, as the fold
 * groups say), grid searches, sweep tables, the encoding models (sizes and the statistics of
 * the whole selection from roi_summary) and the model comparison of /evaluate (each subject's
 * and the group's score per selection x method x model with interval, p, q and the noise
 * ceiling; the folds' mean and std per column). `--json` prints that document; the text form
 * is rendered from the same document as aligned tables, so the two never disagree.
 * Read-only and serial: only rank 0 opens the file (HDF5 read-only, no lock), nothing is
 * written. Left out: per-fold numbers and RDM values (rdmlearn report draws those). */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rdml/mpiutil.h"
#include "rdml/report.h"
#include "report/report_priv.h"

/* ---- JSON helpers: NaN / absent become null ---- */

static json_t *jnum(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *jint(double v) { return isfinite(v) ? json_integer((json_int_t)v) : json_null(); }

static json_t *jstr(const char *s) {
    json_t *j = s ? json_string(s) : NULL;
    return j ? j : json_null();
}

/* A string attribute as JSON (null when absent). */
static json_t *jattr_str(const rdml_rh5 *r, const char *obj, const char *name) {
    char *s = rdml_rh5_str(r, obj, name);
    json_t *j = jstr(s);
    free(s);
    return j;
}

static void set(json_t *o, const char *key, json_t *v) {
    json_object_set_new(o, key, v ? v : json_null());
}

/* Subject number of "subjNN" (0 when the name is not of that form). */
static int subject_id(const char *name) {
    if (strncmp(name, "subj", 4) != 0) return 0;
    char *end;
    long v = strtol(name + 4, &end, 10);
    return *end == '\0' && v > 0 && v < 1000 ? (int)v : 0;
}

/* ---- reading the file into the document ---- */

static const char *const stage_order[] = {"rdm", "embed", "encode", "svm", "train", "evaluate",
                                           "report", NULL};

static int read_meta(rdml_ctx *ctx, const rdml_rh5 *r, json_t *doc) {
    set(doc, "rdmlearn_version", jattr_str(r, "/meta", "rdmlearn_version"));
    char **st = NULL;
    int ns = 0;
    RDML_TRY(rdml_rh5_list(ctx, r, "/meta/stages", &st, &ns));
    json_t *stages = json_array();
    /* the pipeline's order first, then any other stage in name order */
    int order[512], no = 0;
    for (int k = 0; stage_order[k]; k++)
        for (int i = 0; i < ns; i++)
            if (!strcmp(st[i], stage_order[k]) && no < 512) order[no++] = i;
    for (int i = 0; i < ns; i++) {
        int known = 0;
        for (int q = 0; stage_order[q]; q++)
            known |= !strcmp(st[i], stage_order[q]);
        if (!known && no < 512) order[no++] = i;
    }
    for (int o = 0; o < no; o++) {
        const char *name = st[order[o]];
        char obj[512];
        snprintf(obj, sizeof obj, "/meta/stages/%s", name);
        json_t *s = json_object();
        set(s, "stage", jstr(name));
        set(s, "started", jattr_str(r, obj, "started"));
        set(s, "ranks", jint(rdml_rh5_num(r, obj, "ranks", NAN)));
        set(s, "blas_threads_per_rank", jint(rdml_rh5_num(r, obj, "blas_threads_per_rank", NAN)));
        set(s, "config_hash", jattr_str(r, obj, "config_hash"));
        json_array_append_new(stages, s);
    }
    rdml_rh5_free_names(st, ns);
    set(doc, "stages", stages);
    char **dn = NULL;
    int nd = 0;
    RDML_TRY(rdml_rh5_attr_names(ctx, r, "/meta/done", &dn, &nd));
    json_t *done = json_object();
    for (int i = 0; i < nd; i++)
        set(done, dn[i], jattr_str(r, "/meta/done", dn[i]));
    rdml_rh5_free_names(dn, nd);
    set(doc, "done", done);
    return RDML_OK;
}

/* /subjects: images, RDMs, and the embeddings gathered by name. */
static int read_subjects(rdml_ctx *ctx, const rdml_rh5 *r, json_t *doc) {
    char **subj = NULL;
    int nsubj = 0;
    RDML_TRY(rdml_rh5_list(ctx, r, "/subjects", &subj, &nsubj));
    json_t *subjects = json_array(), *emb = json_object(); /* name -> embedding */
    json_t *emb_order = json_array();
    int rc = RDML_OK;
    for (int s = 0; s < nsubj && !rc; s++) {
        char base[512], obj[1024];
        snprintf(base, sizeof base, "/subjects/%s", subj[s]);
        json_t *js = json_object();
        set(js, "name", jstr(subj[s]));
        set(js, "subject", json_integer(subject_id(subj[s])));
        snprintf(obj, sizeof obj, "%s/images/nsd_id", base);
        int nd = 0;
        int64_t dims[8];
        if (rdml_rh5_kind(r, obj) == 1) {
            rc = rdml_rh5_dims(ctx, r, obj, &nd, dims);
            set(js, "n_images", nd == 1 ? json_integer(dims[0]) : json_null());
        } else {
            set(js, "n_images", json_null());
        }
        /* RDMs */
        char **sel = NULL;
        int nsel = 0;
        snprintf(obj, sizeof obj, "%s/rdm", base);
        if (!rc) rc = rdml_rh5_list(ctx, r, obj, &sel, &nsel);
        json_t *rdms = json_array();
        for (int i = 0; i < nsel && !rc; i++) {
            char ds[1024];
            snprintf(ds, sizeof ds, "%s/rdm/%s", base, sel[i]);
            if (rdml_rh5_kind(r, ds) != 1) continue;
            rc = rdml_rh5_dims(ctx, r, ds, &nd, dims);
            if (rc) break;
            json_t *j = json_object();
            set(j, "selection", jstr(sel[i]));
            set(j, "n_images", nd == 2 ? json_integer(dims[0]) : json_null());
            set(j, "n_vertices", jint(rdml_rh5_num(r, ds, "n_vertices", NAN)));
            set(j, "metric", jattr_str(r, ds, "metric"));
            set(j, "standardized", jint(rdml_rh5_num(r, ds, "standardized", NAN)));
            set(j, "threshold", jnum(rdml_rh5_num(r, ds, "threshold", NAN)));
            set(j, "dissimilar_fraction", jnum(rdml_rh5_num(r, ds, "dissimilar_fraction", NAN)));
            json_array_append_new(rdms, j);
        }
        rdml_rh5_free_names(sel, nsel);
        set(js, "rdms", rdms);
        json_array_append_new(subjects, js);
        /* embeddings */
        char **en = NULL;
        int ne = 0;
        snprintf(obj, sizeof obj, "%s/embeddings", base);
        if (!rc) rc = rdml_rh5_list(ctx, r, obj, &en, &ne);
        for (int i = 0; i < ne && !rc; i++) {
            char ds[1024];
            snprintf(ds, sizeof ds, "%s/embeddings/%s", base, en[i]);
            if (rdml_rh5_kind(r, ds) != 1) continue;
            rc = rdml_rh5_dims(ctx, r, ds, &nd, dims);
            if (rc) break;
            json_t *e = json_object_get(emb, en[i]);
            if (!e) {
                e = json_object();
                set(e, "name", jstr(en[i]));
                set(e, "backend", jattr_str(r, ds, "backend"));
                set(e, "model", jattr_str(r, ds, "model"));
                set(e, "dims", nd == 2 ? json_integer(dims[1]) : json_null());
                set(e, "normalized", jint(rdml_rh5_num(r, ds, "normalized", NAN)));
                set(e, "subjects", json_array());
                json_object_set_new(emb, en[i], e);
                json_array_append_new(emb_order, json_string(en[i]));
            }
            json_t *es = json_object();
            set(es, "subject", json_integer(subject_id(subj[s])));
            set(es, "n_images", nd == 2 ? json_integer(dims[0]) : json_null());
            set(es, "dims", nd == 2 ? json_integer(dims[1]) : json_null());
            json_array_append_new(json_object_get(e, "subjects"), es);
        }
        rdml_rh5_free_names(en, ne);
    }
    rdml_rh5_free_names(subj, nsubj);
    json_t *embeddings = json_array();
    size_t i;
    json_t *name;
    json_array_foreach (emb_order, i, name)
        json_array_append(embeddings, json_object_get(emb, json_string_value(name)));
    json_decref(emb);
    json_decref(emb_order);
    set(doc, "subjects", subjects);
    set(doc, "embeddings", embeddings);
    return rc;
}

static int read_rsa(rdml_ctx *ctx, const rdml_rh5 *r, json_t *doc) {
    char **sel = NULL;
    int nsel = 0;
    RDML_TRY(rdml_rh5_list(ctx, r, "/rsa", &sel, &nsel));
    json_t *rsa = json_array();
    int rc = RDML_OK;
    for (int i = 0; i < nsel && !rc; i++) {
        char g[1024];
        snprintf(g, sizeof g, "/rsa/%s", sel[i]);
        if (rdml_rh5_kind(r, g) != 0) continue;
        json_t *j = json_object();
        set(j, "selection", jstr(sel[i]));
        set(j, "n_shared_images", jint(rdml_rh5_num(r, g, "n_shared_images", NAN)));
        json_t *subs = json_array();
        char ds[1100];
        snprintf(ds, sizeof ds, "%s/subjects", g);
        if (rdml_rh5_kind(r, ds) == 1) {
            int64_t *v = NULL, n = 0;
            rc = rdml_rh5_read_i64(ctx, r, ds, &v, &n);
            for (int64_t k = 0; k < n && !rc; k++)
                json_array_append_new(subs, json_integer(v[k]));
            free(v);
        }
        set(j, "subjects", subs);
        char **m = NULL;
        int nm = 0;
        if (!rc) rc = rdml_rh5_list(ctx, r, g, &m, &nm);
        json_t *methods = json_array();
        for (int k = 0; k < nm && !rc; k++) {
            char mg[1400];
            snprintf(mg, sizeof mg, "%s/%s", g, m[k]);
            if (rdml_rh5_kind(r, mg) != 0) continue;
            json_t *o = json_object();
            set(o, "method", jstr(m[k]));
            set(o, "noise_ceiling_lower", jnum(rdml_rh5_num(r, mg, "noise_ceiling_lower", NAN)));
            set(o, "noise_ceiling_upper", jnum(rdml_rh5_num(r, mg, "noise_ceiling_upper", NAN)));
            set(o, "noise_ceiling_pool", jattr_str(r, mg, "noise_ceiling_pool"));
            json_array_append_new(methods, o);
        }
        rdml_rh5_free_names(m, nm);
        set(j, "methods", methods);
        json_array_append_new(rsa, j);
    }
    rdml_rh5_free_names(sel, nsel);
    set(doc, "rsa", rsa);
    return rc;
}

/* One subject x selection result of a model: the headline metric and what the folds say. */
static int read_result(rdml_ctx *ctx, const rdml_rh5 *r, const char *g, const char *subj,
                       const char *sel, json_t *results, json_t *grids, const char *exp,
                       const char *model) {
    json_t *j = json_object();
    char *type = rdml_rh5_str(r, g, "type"); /* c_svc / epsilon_svr; networks: NULL */
    int network = type == NULL;
    const char *metric = type && !strcmp(type, "c_svc") ? "accuracy" : "r2";
    char key[64];
    set(j, "subject", json_integer(subject_id(subj)));
    set(j, "selection", jstr(sel));
    set(j, "type", network ? jattr_str(r, g, "model") : jstr(type));
    set(j, "embedding", jattr_str(r, g, "embedding"));
    set(j, "metric", jstr(metric));
    snprintf(key, sizeof key, "mean_%s", metric);
    set(j, "mean", jnum(rdml_rh5_num(r, g, key, NAN)));
    snprintf(key, sizeof key, "std_%s", metric);
    set(j, "std", jnum(rdml_rh5_num(r, g, key, NAN)));
    if (network) {
        set(j, "mean_predictor_mean", jnum(rdml_rh5_num(r, g, "mean_predictor_mean_r2", NAN)));
        set(j, "shuffled_mean", jnum(rdml_rh5_num(r, g, "shuffled_mean_r2", NAN)));
    }
    free(type);
    /* the pairs it was trained on */
    char *pp = rdml_rh5_str(r, g, "pairs");
    set(j, "pair_set", pp ? jattr_str(r, pp, "set") : json_null());
    set(j, "n_pairs", pp ? jint(rdml_rh5_num(r, pp, "n_pairs", NAN)) : json_null());
    free(pp);
    /* folds */
    char **kids = NULL;
    int nk = 0;
    RDML_TRY(rdml_rh5_list(ctx, r, g, &kids, &nk));
    int nfold = 0, ok = 0, diverged = 0, collapsed = 0, stopped = 0, not_conv = 0;
    int has_grid = 0;
    for (int i = 0; i < nk; i++) {
        if (!strcmp(kids[i], "grid")) has_grid = 1;
        char *end;
        if (strncmp(kids[i], "fold_", 5) != 0 || (strtol(kids[i] + 5, &end, 10), *end)) continue;
        char fg[1400];
        snprintf(fg, sizeof fg, "%s/%s", g, kids[i]);
        if (rdml_rh5_kind(r, fg) != 0) continue;
        nfold++;
        char *st = rdml_rh5_str(r, fg, "status");
        if (!st || !strcmp(st, "ok"))
            ok++;
        else if (!strncmp(st, "diverged", 8))
            diverged++;
        else if (strstr(st, "collapse"))
            collapsed++;
        else
            stopped++;
        free(st);
        if (rdml_rh5_num(r, fg, "converged", 1) == 0) not_conv++;
    }
    rdml_rh5_free_names(kids, nk);
    double nf = rdml_rh5_num(r, g, "n_folds", NAN);
    double fin = rdml_rh5_num(r, g, "n_folds_finished", NAN);
    json_t *folds = json_object();
    set(folds, "total", json_integer(isfinite(nf) ? (json_int_t)nf : nfold));
    set(folds, "finished", json_integer(isfinite(fin) ? (json_int_t)fin : ok));
    if (network) {
        set(folds, "diverged", json_integer(diverged));
        set(folds, "collapsed", json_integer(collapsed));
        set(folds, "stopped_other", json_integer(stopped));
    } else {
        set(folds, "not_converged", json_integer(not_conv));
    }
    set(j, "folds", folds);
    set(j, "grid_settings", jint(rdml_rh5_num(r, g, "grid_settings", NAN)));
    json_array_append_new(results, j);
    if (!has_grid) return RDML_OK;
    /* the nested grid search */
    char gg[1400];
    snprintf(gg, sizeof gg, "%s/grid", g);
    json_t *o = json_object();
    set(o, "experiment", jstr(exp));
    set(o, "model", jstr(model));
    set(o, "subject", json_integer(subject_id(subj)));
    set(o, "selection", jstr(sel));
    set(o, "n_settings", jint(rdml_rh5_num(r, gg, "n_settings", NAN)));
    set(o, "axes", jattr_str(r, gg, "axes"));
    set(o, "scoring", jattr_str(r, gg, "scoring"));
    set(o, "inner_folds", jint(rdml_rh5_num(r, gg, "inner_folds", NAN)));
    json_t *chosen = json_array();
    char cd[1500];
    snprintf(cd, sizeof cd, "%s/chosen", gg);
    int rc = RDML_OK;
    if (rdml_rh5_kind(r, cd) == 1) {
        int64_t *v = NULL, n = 0;
        rc = rdml_rh5_read_i64(ctx, r, cd, &v, &n);
        for (int64_t k = 0; k < n && !rc; k++)
            json_array_append_new(chosen, json_integer(v[k]));
        free(v);
    }
    set(o, "chosen", chosen);
    json_array_append_new(grids, o);
    return rc;
}

static int read_experiments(rdml_ctx *ctx, const rdml_rh5 *r, json_t *doc) {
    char **ex = NULL;
    int nex = 0;
    RDML_TRY(rdml_rh5_list(ctx, r, "/experiments", &ex, &nex));
    json_t *exps = json_array(), *grids = json_array();
    int rc = RDML_OK;
    for (int e = 0; e < nex && !rc; e++) {
        char eg[512];
        snprintf(eg, sizeof eg, "/experiments/%s", ex[e]);
        if (rdml_rh5_kind(r, eg) != 0) continue;
        json_t *je = json_object();
        set(je, "name", jstr(ex[e]));
        char pg[600];
        snprintf(pg, sizeof pg, "%s/pairs", eg);
        json_t *pairs = json_null();
        if (rdml_rh5_kind(r, pg) == 0) {
            pairs = json_object();
            set(pairs, "stage", jattr_str(r, pg, "stage"));
            set(pairs, "models", jattr_str(r, pg, "models"));
            set(pairs, "pairs_hash", jattr_str(r, pg, "pairs_hash"));
        }
        set(je, "pairs", pairs);
        char **mods = NULL;
        int nm = 0;
        rc = rdml_rh5_list(ctx, r, eg, &mods, &nm);
        json_t *models = json_array();
        for (int m = 0; m < nm && !rc; m++) {
            if (!strcmp(mods[m], "pairs")) continue;
            char mg[1024];
            snprintf(mg, sizeof mg, "%s/%s", eg, mods[m]);
            if (rdml_rh5_kind(r, mg) != 0) continue;
            json_t *jm = json_object(), *results = json_array();
            set(jm, "model", jstr(mods[m]));
            char **subj = NULL;
            int ns = 0;
            rc = rdml_rh5_list(ctx, r, mg, &subj, &ns);
            for (int s = 0; s < ns && !rc; s++) {
                char sg[1400];
                snprintf(sg, sizeof sg, "%s/%s", mg, subj[s]);
                char **sel = NULL;
                int nsel = 0;
                rc = rdml_rh5_list(ctx, r, sg, &sel, &nsel);
                for (int i = 0; i < nsel && !rc; i++) {
                    char g[2048];
                    snprintf(g, sizeof g, "%s/%s", sg, sel[i]);
                    if (rdml_rh5_kind(r, g) != 0) continue;
                    rc = read_result(ctx, r, g, subj[s], sel[i], results, grids, ex[e], mods[m]);
                }
                rdml_rh5_free_names(sel, nsel);
            }
            rdml_rh5_free_names(subj, ns);
            /* the headline metric of the model: the first result's */
            json_t *first = json_array_get(results, 0);
            set(jm, "metric", first ? json_incref(json_object_get(first, "metric")) : json_null());
            set(jm, "results", results);
            json_array_append_new(models, jm);
        }
        rdml_rh5_free_names(mods, nm);
        set(je, "models", models);
        json_array_append_new(exps, je);
    }
    rdml_rh5_free_names(ex, nex);
    set(doc, "experiments", exps);
    set(doc, "grids", grids);
    return rc;
}

static int read_sweeps(rdml_ctx *ctx, const rdml_rh5 *r, json_t *doc) {
    char **ex = NULL;
    int nex = 0;
    RDML_TRY(rdml_rh5_list(ctx, r, "/sweep", &ex, &nex));
    json_t *sw = json_array();
    int rc = RDML_OK;
    for (int e = 0; e < nex && !rc; e++) {
        char eg[512];
        snprintf(eg, sizeof eg, "/sweep/%s", ex[e]);
        char **mods = NULL;
        int nm = 0;
        rc = rdml_rh5_list(ctx, r, eg, &mods, &nm);
        for (int m = 0; m < nm && !rc; m++) {
            char ds[1024];
            snprintf(ds, sizeof ds, "%s/%s/tasks/fold", eg, mods[m]);
            int nd = 0;
            int64_t dims[8] = {0};
            if (rdml_rh5_kind(r, ds) == 1) rc = rdml_rh5_dims(ctx, r, ds, &nd, dims);
            json_t *o = json_object();
            set(o, "experiment", jstr(ex[e]));
            set(o, "model", jstr(mods[m]));
            set(o, "tasks", nd == 1 ? json_integer(dims[0]) : json_null());
            json_array_append_new(sw, o);
        }
        rdml_rh5_free_names(mods, nm);
    }
    rdml_rh5_free_names(ex, nex);
    set(doc, "sweeps", sw);
    return rc;
}

/* A 1-D or 2-D float64 dataset of `want` values (NULL and no error when absent or of
 * another size: the listing shows "-"). */
static int opt_f64(rdml_ctx *ctx, const rdml_rh5 *r, const char *ds, int64_t want, double **v) {
    *v = NULL;
    if (rdml_rh5_kind(r, ds) != 1) return RDML_OK;
    int64_t n = 0;
    RDML_TRY(rdml_rh5_read_f64(ctx, r, ds, v, &n));
    if (n != want) {
        free(*v);
        *v = NULL;
    }
    return RDML_OK;
}

static json_t *jat(const double *v, int64_t i) { return v ? jnum(v[i]) : json_null(); }

/* Calls fn(path, names) for every group `depth` (1..4) levels below root, in name order;
 * names[k] is the name at level k. A missing root holds none. */
typedef int (*walk_fn)(rdml_ctx *ctx, const rdml_rh5 *r, const char *path, char **names,
                       void *user);

static int walk_at(rdml_ctx *ctx, const rdml_rh5 *r, const char *path, int level, int depth,
                   char **names, walk_fn fn, void *user) {
    if (level == depth) return rdml_rh5_kind(r, path) == 0 ? fn(ctx, r, path, names, user) : RDML_OK;
    char **kids = NULL;
    int nk = 0;
    RDML_TRY(rdml_rh5_list(ctx, r, path, &kids, &nk));
    int rc = RDML_OK;
    for (int i = 0; i < nk && !rc; i++) {
        char sub[2048];
        snprintf(sub, sizeof sub, "%s/%s", path, kids[i]);
        names[level] = kids[i];
        rc = walk_at(ctx, r, sub, level + 1, depth, names, fn, user);
    }
    rdml_rh5_free_names(kids, nk);
    return rc;
}

static int walk(rdml_ctx *ctx, const rdml_rh5 *r, const char *root, int depth, walk_fn fn,
                void *user) {
    char *names[4] = {0};
    return walk_at(ctx, r, root, 0, depth, names, fn, user);
}

/* /encode/<embedding>/subjNN/<selection>: sizes, folds and the selection's row of
 * roi_summary (statistics over its vertices of the fold-mean r). */
static int encode_one(rdml_ctx *ctx, const rdml_rh5 *r, const char *g, char **names, void *enc) {
    static const char *const stat[] = {"median_r", "mean_r", "share_positive", "median_r2",
                                       "median_noise_normalized"};
    char rs[2200], ds[2400];
    json_t *j = json_object();
    set(j, "embedding", jstr(names[0]));
    set(j, "subject", json_integer(subject_id(names[1])));
    set(j, "selection", jstr(names[2]));
    set(j, "n_images", jint(rdml_rh5_num(r, g, "n_images", NAN)));
    set(j, "n_features", jint(rdml_rh5_num(r, g, "n_features", NAN)));
    set(j, "n_vertices", jint(rdml_rh5_num(r, g, "n_vertices", NAN)));
    set(j, "n_folds", jint(rdml_rh5_num(r, g, "n_folds", NAN)));
    set(j, "mode", jattr_str(r, g, "mode"));
    set(j, "noise_ceiling_source", jattr_str(r, g, "noise_ceiling_source"));
    json_array_append_new(enc, j);
    /* the roi_summary row of the whole selection: its last row */
    snprintf(rs, sizeof rs, "%s/roi_summary", g);
    snprintf(ds, sizeof ds, "%s/n_vertices", rs);
    int nd = 0, rc = RDML_OK;
    int64_t dims[8] = {0};
    if (rdml_rh5_kind(r, ds) == 1) rc = rdml_rh5_dims(ctx, r, ds, &nd, dims);
    const int64_t rows = nd == 1 ? dims[0] : 0;
    for (size_t k = 0; k < sizeof stat / sizeof *stat && !rc; k++) {
        double *v = NULL;
        snprintf(ds, sizeof ds, "%s/%s", rs, stat[k]);
        if (rows > 0) rc = opt_f64(ctx, r, ds, rows, &v);
        set(j, stat[k], jat(v, rows - 1));
        free(v);
    }
    return rc;
}

static int read_encode(rdml_ctx *ctx, const rdml_rh5 *r, json_t *doc) {
    json_t *enc = json_array();
    set(doc, "encode", enc);
    return walk(ctx, r, "/encode", 3, encode_one, enc);
}

/* The methods of an /evaluate group: its child groups that are not subjects. */
static int is_method(const rdml_rh5 *r, const char *g, const char *name) {
    char m[2048];
    snprintf(m, sizeof m, "%s/%s", g, name);
    return rdml_rh5_kind(r, m) == 0 && subject_id(name) == 0;
}

/* /evaluate/rdm/<selection>/<method>: one row per subject (0: the group) x model. */
static int read_evaluate_rdm(rdml_ctx *ctx, const rdml_rh5 *r, json_t *out) {
    static const char *const q[] = {"score", "ci_low", "ci_high", "p", "q"};
    enum { NQ = sizeof q / sizeof *q };
    char **sel = NULL;
    int nsel = 0;
    RDML_TRY(rdml_rh5_list(ctx, r, "/evaluate/rdm", &sel, &nsel));
    int rc = RDML_OK;
    for (int i = 0; i < nsel && !rc; i++) {
        char g[512], ds[1024];
        snprintf(g, sizeof g, "/evaluate/rdm/%s", sel[i]);
        if (rdml_rh5_kind(r, g) != 0) continue;
        char **models = NULL, **kids = NULL;
        int64_t nm = 0, ns = 0;
        int64_t *subs = NULL;
        int nk = 0;
        snprintf(ds, sizeof ds, "%s/models", g);
        if (rdml_rh5_kind(r, ds) == 1) rc = rdml_rh5_read_strings(ctx, r, ds, &models, &nm);
        snprintf(ds, sizeof ds, "%s/subjects", g);
        if (!rc && rdml_rh5_kind(r, ds) == 1) rc = rdml_rh5_read_i64(ctx, r, ds, &subs, &ns);
        if (!rc) rc = rdml_rh5_list(ctx, r, g, &kids, &nk);
        for (int k = 0; k < nk && !rc; k++) {
            if (!is_method(r, g, kids[k])) continue;
            char mg[1024], gg[1100];
            snprintf(mg, sizeof mg, "%s/%s", g, kids[k]);
            snprintf(gg, sizeof gg, "%s/group", mg);
            double *v[NQ] = {0}, *w[NQ] = {0}, *nc = NULL;
            for (int x = 0; x < NQ && !rc; x++) {
                snprintf(ds, sizeof ds, "%s/%s", mg, q[x]);
                rc = opt_f64(ctx, r, ds, ns * nm, &v[x]);
                snprintf(ds, sizeof ds, "%s/%s", gg, q[x]);
                if (!rc) rc = opt_f64(ctx, r, ds, nm, &w[x]);
            }
            snprintf(ds, sizeof ds, "%s/noise_ceiling", mg);
            if (!rc) rc = opt_f64(ctx, r, ds, 2, &nc);
            /* the subjects' rows, then the group's (subject 0) when it was computed */
            for (int64_t s = 0; s <= ns && !rc; s++) {
                double **src = s < ns ? v : w;
                if (s == ns && !w[0]) break;
                for (int64_t m = 0; m < nm; m++) {
                    json_t *j = json_object();
                    set(j, "selection", jstr(sel[i]));
                    set(j, "method", jstr(kids[k]));
                    set(j, "subject", json_integer(s < ns ? subs[s] : 0));
                    set(j, "model", jstr(models[m]));
                    for (int x = 0; x < NQ; x++)
                        set(j, q[x], jat(src[x], s < ns ? s * nm + m : m));
                    set(j, "noise_ceiling_lower", jat(nc, 0));
                    set(j, "noise_ceiling_upper", jat(nc, 1));
                    json_array_append_new(out, j);
                }
            }
            for (int x = 0; x < NQ; x++) {
                free(v[x]);
                free(w[x]);
            }
            free(nc);
        }
        rdml_rh5_free_names(kids, nk);
        rdml_rh5_free_names(models, (int)nm);
        free(subs);
    }
    rdml_rh5_free_names(sel, nsel);
    return rc;
}

/* /evaluate/folds/<experiment>/<selection>/subjNN/<method>: each column's mean and std over
 * the folds and how many folds have a score. */
static int folds_one(rdml_ctx *ctx, const rdml_rh5 *r, const char *g, char **names, void *out) {
    char **models = NULL, **kids = NULL, ds[2400];
    int64_t nm = 0;
    int nk = 0, nd = 0, rc = RDML_OK;
    int64_t dims[8] = {0};
    snprintf(ds, sizeof ds, "%s/models", g);
    if (rdml_rh5_kind(r, ds) == 1) rc = rdml_rh5_read_strings(ctx, r, ds, &models, &nm);
    snprintf(ds, sizeof ds, "%s/folds", g);
    if (!rc && rdml_rh5_kind(r, ds) == 1) rc = rdml_rh5_dims(ctx, r, ds, &nd, dims);
    const int64_t nf = nd == 1 ? dims[0] : 0;
    if (!rc) rc = rdml_rh5_list(ctx, r, g, &kids, &nk);
    for (int k = 0; k < nk && !rc; k++) {
        if (!is_method(r, g, kids[k])) continue;
        double *mean = NULL, *sd = NULL, *score = NULL;
        snprintf(ds, sizeof ds, "%s/%s/mean", g, kids[k]);
        rc = opt_f64(ctx, r, ds, nm, &mean);
        snprintf(ds, sizeof ds, "%s/%s/std", g, kids[k]);
        if (!rc) rc = opt_f64(ctx, r, ds, nm, &sd);
        snprintf(ds, sizeof ds, "%s/%s/score", g, kids[k]);
        if (!rc) rc = opt_f64(ctx, r, ds, nf * nm, &score);
        for (int64_t m = 0; m < nm && !rc; m++) {
            int64_t scored = 0;
            for (int64_t f = 0; score && f < nf; f++) scored += isfinite(score[f * nm + m]);
            json_t *j = json_object();
            set(j, "experiment", jstr(names[0]));
            set(j, "selection", jstr(names[1]));
            set(j, "subject", json_integer(subject_id(names[2])));
            set(j, "method", jstr(kids[k]));
            set(j, "model", jstr(models[m]));
            set(j, "mean", jat(mean, m));
            set(j, "std", jat(sd, m));
            set(j, "folds_scored", score ? json_integer(scored) : json_null());
            set(j, "folds", json_integer(nf));
            json_array_append_new(out, j);
        }
        free(mean);
        free(sd);
        free(score);
    }
    rdml_rh5_free_names(kids, nk);
    rdml_rh5_free_names(models, (int)nm);
    return rc;
}

/* /evaluate: its settings, the model RDMs against the brain RDMs, the pair models' folds;
 * null when the stage has not run. */
static int read_evaluate(rdml_ctx *ctx, const rdml_rh5 *r, json_t *doc) {
    if (rdml_rh5_kind(r, "/evaluate") != 0) {
        set(doc, "evaluate", json_null());
        return RDML_OK;
    }
    json_t *ev = json_object(), *rdm = json_array(), *folds = json_array();
    set(ev, "methods", jattr_str(r, "/evaluate", "methods"));
    set(ev, "metric", jattr_str(r, "/evaluate", "metric"));
    set(ev, "n_bootstrap", jint(rdml_rh5_num(r, "/evaluate", "n_bootstrap", NAN)));
    set(ev, "n_permutations", jint(rdml_rh5_num(r, "/evaluate", "n_permutations", NAN)));
    set(ev, "ci", jnum(rdml_rh5_num(r, "/evaluate", "ci", NAN)));
    set(ev, "correction", jattr_str(r, "/evaluate", "correction"));
    set(ev, "rdm", rdm);
    set(ev, "folds", folds);
    set(doc, "evaluate", ev);
    RDML_TRY(read_evaluate_rdm(ctx, r, rdm));
    return walk(ctx, r, "/evaluate/folds", 3, folds_one, folds);
}

static int ls_doc(rdml_ctx *ctx, const char *results_path, json_t **out) {
    *out = NULL;
    rdml_rh5 *r;
    RDML_TRY(rdml_rh5_open(ctx, results_path, &r));
    json_t *doc = json_object();
    if (!doc) {
        rdml_rh5_close(&r);
        return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory listing %s", results_path);
    }
    struct stat st;
    set(doc, "file", jstr(results_path));
    set(doc, "size_bytes", stat(results_path, &st) == 0 ? json_integer(st.st_size) : json_null());
    int rc = read_meta(ctx, r, doc);
    if (!rc) rc = read_subjects(ctx, r, doc);
    if (!rc) rc = read_rsa(ctx, r, doc);
    if (!rc) rc = read_experiments(ctx, r, doc);
    if (!rc) rc = read_sweeps(ctx, r, doc);
    if (!rc) rc = read_encode(ctx, r, doc);
    if (!rc) rc = read_evaluate(ctx, r, doc);
    rdml_rh5_close(&r);
    if (rc) {
        json_decref(doc);
        return rc;
    }
    *out = doc;
    return RDML_OK;
}

/* ---- the text form: aligned tables ---- */

#define TBL_MAXCOL 12
typedef struct tbl {
    int ncol, nrow, cap;
    unsigned right; /* bit c: column c right-aligned */
    char **cell;    /* nrow x ncol, row 0 the header */
} tbl;

static void tbl_row(tbl *t, ...) {
    if (t->nrow == t->cap) {
        int cap = t->cap ? 2 * t->cap : 16;
        char **p = realloc(t->cell, (size_t)cap * (size_t)t->ncol * sizeof *p);
        if (!p) return;
        t->cell = p;
        t->cap = cap;
    }
    va_list ap;
    va_start(ap, t);
    for (int c = 0; c < t->ncol; c++) {
        const char *s = va_arg(ap, const char *);
        t->cell[t->nrow * t->ncol + c] = strdup(s ? s : "");
    }
    va_end(ap);
    t->nrow++;
}

/* Display width of UTF-8 text (code points; "±" counts as one). */
static int width(const char *s) {
    int w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

static void tbl_print(FILE *f, tbl *t) {
    int w[TBL_MAXCOL] = {0};
    for (int i = 0; i < t->nrow; i++)
        for (int c = 0; c < t->ncol; c++) {
            const char *s = t->cell[i * t->ncol + c];
            int x = s ? width(s) : 0;
            if (x > w[c]) w[c] = x;
        }
    for (int i = 0; i < t->nrow; i++) {
        fputs("  ", f);
        int pending = 0; /* spaces owed before the next cell (trailing blanks are not printed) */
        for (int c = 0; c < t->ncol; c++) {
            const char *s = t->cell[i * t->ncol + c];
            if (!s) s = "";
            int pad = w[c] - width(s);
            int right = (t->right >> c) & 1 && i > 0;
            if (c) pending += 2;
            if (right) pending += pad;
            if (*s) {
                fprintf(f, "%*s%s", pending, "", s);
                pending = 0;
            }
            if (!right) pending += pad;
        }
        fputc('\n', f);
    }
    for (int i = 0; i < t->nrow * t->ncol; i++)
        free(t->cell[i]);
    free(t->cell);
    memset(t, 0, sizeof *t);
}

static const char *js(const json_t *o, const char *key) {
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* A number of the document as text: integers plainly, reals with `prec` decimals (prec < 0:
 * 4 significant digits), "-" for null. */
static const char *jfmt(const json_t *o, const char *key, int prec, char *buf, size_t n) {
    const json_t *v = json_object_get(o, key);
    if (json_is_integer(v))
        snprintf(buf, n, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v) && prec < 0)
        snprintf(buf, n, "%.4g", json_real_value(v));
    else if (json_is_real(v))
        snprintf(buf, n, "%.*f", prec, json_real_value(v));
    else
        snprintf(buf, n, "-");
    return buf;
}

static void section(FILE *f, const char *title, const char *where) {
    fprintf(f, "\n%s (%s)\n", title, where);
}

static void print_text(FILE *f, const json_t *doc) {
    char b1[64], b2[64], b3[64], b4[64], b5[256];
    double size = (double)json_integer_value(json_object_get(doc, "size_bytes"));
    const char *unit = "B";
    if (size >= 1e9)
        size /= 1e9, unit = "GB";
    else if (size >= 1e6)
        size /= 1e6, unit = "MB";
    else if (size >= 1e3)
        size /= 1e3, unit = "kB";
    fprintf(f, "%s: rdmlearn results, %.1f %s, written by rdmlearn %s\n", js(doc, "file"), size,
            unit,
            json_is_string(json_object_get(doc, "rdmlearn_version")) ? js(doc, "rdmlearn_version")
                                                                     : "(unknown version)");

    /* stages */
    const json_t *stages = json_object_get(doc, "stages"), *s;
    size_t i, k;
    section(f, "Stages", "/meta/stages");
    if (json_array_size(stages) == 0) {
        fputs("  none recorded\n", f);
    } else {
        tbl t = {.ncol = 5, .right = (1u << 2) | (1u << 3)};
        tbl_row(&t, "stage", "started (UTC)", "ranks", "threads", "config hash");
        json_array_foreach (stages, i, s)
            tbl_row(&t, js(s, "stage"), js(s, "started"), jfmt(s, "ranks", 0, b1, sizeof b1),
                    jfmt(s, "blas_threads_per_rank", 0, b2, sizeof b2), js(s, "config_hash"));
        tbl_print(f, &t);
    }
    const json_t *done = json_object_get(doc, "done");
    if (json_object_size(done) > 0) {
        section(f, "Outputs done", "/meta/done: rdmlearn run skips an output whose hash matches");
        tbl t = {.ncol = 2};
        tbl_row(&t, "output", "config hash");
        const char *key;
        const json_t *v;
        json_object_foreach ((json_t *)done, key, v)
            tbl_row(&t, key, json_string_value(v));
        tbl_print(f, &t);
    }

    /* subjects and RDMs */
    const json_t *subjects = json_object_get(doc, "subjects");
    section(f, "Subjects and RDMs", "/subjects/subjNN/rdm/<selection>");
    if (json_array_size(subjects) == 0) {
        fputs("  none (rdmlearn rdm and rdmlearn embed write them)\n", f);
    } else {
        tbl t = {.ncol = 8, .right = (1u << 1) | (1u << 3) | (1u << 4) | (1u << 6) | (1u << 7)};
        tbl_row(&t, "subject", "images", "selection", "RDM", "vertices", "metric", "threshold",
                "dissimilar");
        json_array_foreach (subjects, i, s) {
            const json_t *rdms = json_object_get(s, "rdms"), *q;
            jfmt(s, "n_images", 0, b1, sizeof b1);
            if (json_array_size(rdms) == 0)
                tbl_row(&t, js(s, "name"), b1, "(no RDM)", "", "", "", "", "");
            json_array_foreach (rdms, k, q) {
                const json_t *df = json_object_get(q, "dissimilar_fraction");
                char n[64];
                jfmt(q, "n_images", 0, n, sizeof n);
                snprintf(b2, sizeof b2, "%s x %s", n, n);
                if (json_is_number(df))
                    snprintf(b4, sizeof b4, "%.1f%%", 100 * json_number_value(df));
                else
                    snprintf(b4, sizeof b4, "-");
                tbl_row(&t, k ? "" : js(s, "name"), k ? "" : b1, js(q, "selection"), b2,
                        jfmt(q, "n_vertices", 0, b3, sizeof b3), js(q, "metric"),
                        jfmt(q, "threshold", -1, b5, sizeof b5), b4);
            }
        }
        tbl_print(f, &t);
    }

    /* RSA */
    const json_t *rsa = json_object_get(doc, "rsa");
    if (json_array_size(rsa) > 0) {
        section(f, "Inter-subject RSA and noise ceiling", "/rsa/<selection>/<method>");
        tbl t = {.ncol = 5, .right = 1u << 2};
        tbl_row(&t, "selection", "subjects", "shared images", "method",
                "noise ceiling (lower - upper)");
        json_array_foreach (rsa, i, s) {
            char subs[256] = "";
            const json_t *v;
            size_t q;
            json_array_foreach (json_object_get(s, "subjects"), q, v) {
                size_t l = strlen(subs);
                snprintf(subs + l, sizeof subs - l, "%s%lld", q ? "," : "",
                         (long long)json_integer_value(v));
            }
            jfmt(s, "n_shared_images", 0, b1, sizeof b1);
            const json_t *m;
            json_array_foreach (json_object_get(s, "methods"), k, m) {
                snprintf(b5, sizeof b5, "%s - %s", jfmt(m, "noise_ceiling_lower", 3, b2, sizeof b2),
                         jfmt(m, "noise_ceiling_upper", 3, b3, sizeof b3));
                tbl_row(&t, k ? "" : js(s, "selection"), k ? "" : subs, k ? "" : b1,
                        js(m, "method"), b5);
            }
        }
        tbl_print(f, &t);
    }

    /* embeddings */
    const json_t *emb = json_object_get(doc, "embeddings");
    section(f, "Embeddings", "/subjects/subjNN/embeddings/<name>");
    if (json_array_size(emb) == 0) {
        fputs("  none (rdmlearn embed writes them)\n", f);
    } else {
        tbl t = {.ncol = 4, .right = 1u << 2};
        tbl_row(&t, "name", "backend", "dims", "subjects (images)");
        json_array_foreach (emb, i, s) {
            char subs[1024] = "";
            const json_t *v;
            json_array_foreach (json_object_get(s, "subjects"), k, v) {
                size_t l = strlen(subs);
                if (l + 40 >= sizeof subs) {
                    snprintf(subs + l, sizeof subs - l, ", ...");
                    break;
                }
                snprintf(subs + l, sizeof subs - l, "%ssubj%02lld (%s)", k ? ", " : "",
                         (long long)json_integer_value(json_object_get(v, "subject")),
                         jfmt(v, "n_images", 0, b2, sizeof b2));
            }
            tbl_row(&t, js(s, "name"), js(s, "backend"), jfmt(s, "dims", 0, b1, sizeof b1), subs);
        }
        tbl_print(f, &t);
    }

    /* encoding models */
    const json_t *enc = json_object_get(doc, "encode");
    section(f, "Encoding models", "/encode/<embedding>/subjNN/<selection>; over the selection's "
            "vertices, of the fold-mean test r");
    if (json_array_size(enc) == 0) {
        fputs("  none (rdmlearn encode writes them)\n", f);
    } else {
        tbl t = {.ncol = 11, .right = 0x7f8u};
        tbl_row(&t, "embedding", "subject", "selection", "images", "features", "vertices", "folds",
                "median r", "r > 0", "median R^2", "noise-normalized");
        json_array_foreach (enc, i, s) {
            char c[6][64];
            snprintf(b1, sizeof b1, "subj%02lld",
                     (long long)json_integer_value(json_object_get(s, "subject")));
            const json_t *sp = json_object_get(s, "share_positive"),
                         *nn = json_object_get(s, "median_noise_normalized");
            if (json_is_number(sp)) snprintf(b4, sizeof b4, "%.0f%%", 100 * json_number_value(sp));
            else snprintf(b4, sizeof b4, "-");
            if (json_is_number(nn)) snprintf(b5, sizeof b5, "%.1f%%", json_number_value(nn));
            else snprintf(b5, sizeof b5, "-");
            tbl_row(&t, js(s, "embedding"), b1, js(s, "selection"),
                    jfmt(s, "n_images", 0, c[0], sizeof c[0]), jfmt(s, "n_features", 0, c[1], sizeof c[1]),
                    jfmt(s, "n_vertices", 0, c[2], sizeof c[2]), jfmt(s, "n_folds", 0, c[3], sizeof c[3]),
                    jfmt(s, "median_r", 3, c[4], sizeof c[4]), b4,
                    jfmt(s, "median_r2", 3, c[5], sizeof c[5]), b5);
        }
        tbl_print(f, &t);
    }

    /* experiments */
    const json_t *exps = json_object_get(doc, "experiments");
    section(f, "Experiments",
            "/experiments/<experiment>/<model>; mean ± std over the finished folds");
    if (json_array_size(exps) == 0) {
        fputs("  none (rdmlearn svm and rdmlearn train write them)\n", f);
    } else {
        tbl t = {.ncol = 9, .right = (1u << 4)};
        tbl_row(&t, "experiment", "model", "subject", "selection", "pairs", "set", "metric",
                "mean ± std", "folds");
        const json_t *e;
        json_array_foreach (exps, i, e) {
            const json_t *m;
            int first = 1;
            json_array_foreach (json_object_get(e, "models"), k, m) {
                const json_t *res;
                size_t q;
                json_array_foreach (json_object_get(m, "results"), q, res) {
                    const json_t *fo = json_object_get(res, "folds");
                    long long tot = json_integer_value(json_object_get(fo, "total"));
                    long long fin = json_integer_value(json_object_get(fo, "finished"));
                    char folds[160];
                    int l = snprintf(folds, sizeof folds, "%lld/%lld", fin, tot);
                    const char *extra[] = {"diverged", "collapsed", "stopped_other",
                                           "not_converged"};
                    const char *label[] = {"diverged", "collapsed", "stopped", "not converged"};
                    int any = 0;
                    for (int x = 0; x < 4 && l < (int)sizeof folds - 40; x++) {
                        long long c = json_integer_value(json_object_get(fo, extra[x]));
                        if (c > 0)
                            l += snprintf(folds + l, sizeof folds - (size_t)l, "%s%lld %s",
                                          any++ ? ", " : " (", c, label[x]);
                    }
                    if (any) snprintf(folds + l, sizeof folds - (size_t)l, ")");
                    snprintf(b1, sizeof b1, "subj%02lld",
                             (long long)json_integer_value(json_object_get(res, "subject")));
                    const json_t *mu = json_object_get(res, "mean"),
                                 *sd = json_object_get(res, "std");
                    if (json_is_number(mu))
                        snprintf(b5, sizeof b5, "% .3f ± %.3f", json_number_value(mu),
                                 json_is_number(sd) ? json_number_value(sd) : NAN);
                    else
                        snprintf(b5, sizeof b5, "n/a");
                    const char *metric = js(res, "metric");
                    tbl_row(&t, first ? js(e, "name") : "", q ? "" : js(m, "model"), b1,
                            js(res, "selection"), jfmt(res, "n_pairs", 0, b2, sizeof b2),
                            js(res, "pair_set"), !strcmp(metric, "r2") ? "R^2" : metric, b5, folds);
                    first = 0;
                }
                if (json_array_size(json_object_get(m, "results")) == 0)
                    tbl_row(&t, first ? js(e, "name") : "", js(m, "model"), "(no results)", "", "",
                            "", "", "", "");
                first = 0;
            }
        }
        tbl_print(f, &t);
    }

    /* grid searches */
    const json_t *grids = json_object_get(doc, "grids");
    if (json_array_size(grids) > 0) {
        section(f, "Grid searches", ".../<selection>/grid: nested cross-validation");
        tbl t = {.ncol = 9, .right = (1u << 4) | (1u << 7)};
        tbl_row(&t, "experiment", "model", "subject", "selection", "settings", "axes", "scoring",
                "inner folds", "chosen per fold");
        json_array_foreach (grids, i, s) {
            char ch[256] = "";
            const json_t *v;
            json_array_foreach (json_object_get(s, "chosen"), k, v) {
                size_t l = strlen(ch);
                if (l + 24 >= sizeof ch) break;
                snprintf(ch + l, sizeof ch - l, "%s%lld", k ? "," : "",
                         (long long)json_integer_value(v));
            }
            snprintf(b1, sizeof b1, "subj%02lld",
                     (long long)json_integer_value(json_object_get(s, "subject")));
            tbl_row(&t, js(s, "experiment"), js(s, "model"), b1, js(s, "selection"),
                    jfmt(s, "n_settings", 0, b2, sizeof b2), js(s, "axes"), js(s, "scoring"),
                    jfmt(s, "inner_folds", 0, b3, sizeof b3), ch);
        }
        tbl_print(f, &t);
    }

    /* sweep tables */
    const json_t *sw = json_object_get(doc, "sweeps");
    if (json_array_size(sw) > 0) {
        section(f, "Sweep tables", "/sweep/<experiment>/<model>; also in <output>.sweep.csv");
        tbl t = {.ncol = 3, .right = 1u << 2};
        tbl_row(&t, "experiment", "model", "tasks");
        json_array_foreach (sw, i, s)
            tbl_row(&t, js(s, "experiment"), js(s, "model"), jfmt(s, "tasks", 0, b1, sizeof b1));
        tbl_print(f, &t);
    }
    /* model comparison */
    const json_t *ev = json_object_get(doc, "evaluate");
    if (!json_is_object(ev)) {
        section(f, "Model comparison", "/evaluate");
        fputs("  none (rdmlearn evaluate writes it)\n", f);
    } else {
        const json_t *rdm = json_object_get(ev, "rdm"), *fo = json_object_get(ev, "folds");
        char where[256];
        if (json_is_number(json_object_get(ev, "ci")))
            snprintf(b1, sizeof b1, "%g", 100 * json_number_value(json_object_get(ev, "ci")));
        else
            snprintf(b1, sizeof b1, "-");
        snprintf(where, sizeof where, "/evaluate/rdm/<selection>/<method>: each model's RDM (%s) "
                 "against the brain RDM; %s%% interval; q %s-corrected", js(ev, "metric"), b1,
                 js(ev, "correction"));
        section(f, "Model comparison", where);
        if (json_array_size(rdm) == 0) fputs("  no model RDMs compared\n", f);
        else {
            tbl t = {.ncol = 9, .right = (1u << 4) | (1u << 6) | (1u << 7)};
            tbl_row(&t, "selection", "method", "subject", "model", "score", "interval", "p", "q",
                    "noise ceiling");
            char last[512] = "";
            json_array_foreach (rdm, i, s) {
                /* selection, method and noise ceiling on the first row of their block */
                char key[512], c[4][64], nc[160] = "";
                snprintf(key, sizeof key, "%s/%s", js(s, "selection"), js(s, "method"));
                const int first = strcmp(key, last) != 0;
                if (first) {
                    snprintf(nc, sizeof nc, "%s - %s",
                             jfmt(s, "noise_ceiling_lower", 3, c[0], sizeof c[0]),
                             jfmt(s, "noise_ceiling_upper", 3, c[1], sizeof c[1]));
                    snprintf(last, sizeof last, "%s", key);
                }
                long long sj = (long long)json_integer_value(json_object_get(s, "subject"));
                if (sj) snprintf(b1, sizeof b1, "subj%02lld", sj);
                else snprintf(b1, sizeof b1, "group");
                snprintf(b5, sizeof b5, "[%s, %s]", jfmt(s, "ci_low", 3, c[2], sizeof c[2]),
                         jfmt(s, "ci_high", 3, c[3], sizeof c[3]));
                tbl_row(&t, first ? js(s, "selection") : "", first ? js(s, "method") : "", b1,
                        js(s, "model"), jfmt(s, "score", 3, b2, sizeof b2), b5,
                        jfmt(s, "p", -1, b3, sizeof b3), jfmt(s, "q", -1, b4, sizeof b4), nc);
            }
            tbl_print(f, &t);
        }
        if (json_array_size(fo) > 0) {
            section(f, "Model comparison on the pair models' folds",
                    "/evaluate/folds/<experiment>/<selection>/subjNN/<method>; mean ± std over "
                    "the folds");
            tbl t = {.ncol = 7, .right = 0};
            tbl_row(&t, "experiment", "selection", "subject", "method", "model", "mean ± std",
                    "folds scored");
            json_array_foreach (fo, i, s) {
                const json_t *mu = json_object_get(s, "mean"), *sd = json_object_get(s, "std");
                if (json_is_number(mu))
                    snprintf(b5, sizeof b5, "% .3f ± %.3f", json_number_value(mu),
                             json_is_number(sd) ? json_number_value(sd) : NAN);
                else
                    snprintf(b5, sizeof b5, "n/a");
                snprintf(b1, sizeof b1, "subj%02lld",
                         (long long)json_integer_value(json_object_get(s, "subject")));
                snprintf(b4, sizeof b4, "%s/%s", jfmt(s, "folds_scored", 0, b2, sizeof b2),
                         jfmt(s, "folds", 0, b3, sizeof b3));
                tbl_row(&t, js(s, "experiment"), js(s, "selection"), b1, js(s, "method"),
                        js(s, "model"), b5, b4);
            }
            tbl_print(f, &t);
        }
    }
}

int rdml_report_ls_text(rdml_ctx *ctx, const char *results_path, int json, char **out) {
    *out = NULL;
    json_t *doc;
    RDML_TRY(ls_doc(ctx, results_path, &doc));
    char *text = NULL;
    if (json) {
        text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
        if (text) {
            /* one trailing newline, malloc'd by us so the caller frees it with free() */
            size_t n = strlen(text);
            char *t = malloc(n + 2);
            if (t) {
                memcpy(t, text, n);
                t[n] = '\n';
                t[n + 1] = '\0';
            }
            free(text);
            text = t;
        }
    } else {
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (f) {
            print_text(f, doc);
            if (fclose(f) != 0) {
                free(text);
                text = NULL;
            }
        }
    }
    json_decref(doc);
    if (!text)
        return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory formatting the listing of %s",
                         results_path);
    *out = text;
    return RDML_OK;
}

int rdml_report_ls(rdml_ctx *ctx, MPI_Comm comm, const char *results_path, int json, FILE *out) {
    int rank = 0;
    MPI_Comm_rank(comm, &rank);
    int rc = RDML_OK;
    if (rank == 0) {
        char *text = NULL;
        rc = rdml_report_ls_text(ctx, results_path, json, &text);
        if (!rc) {
            fputs(text, out);
            if (fflush(out) != 0 || ferror(out))
                rc = RDML_FAIL(ctx, RDML_EIO, "cannot write the listing of %s: %s", results_path,
                               strerror(errno));
        }
        free(text);
    }
    return rdml_root_status(ctx, comm, rc);
}
