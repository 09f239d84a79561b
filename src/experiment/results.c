/* The run's results file: opened (or created) under a temporary name by the first stage of a
 * command and committed at its end, with provenance under /meta: the version, and per stage
 * the resolved configuration, ranks, BLAS threads and start time. A file at run.output is
 * therefore always complete; a failed command leaves the previous file as it was. */
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "eval_priv.h"
#include "exp_priv.h"
#include "rdml/dataset.h"
#include "rdml/h5.h"
#include "rdml/lock.h"
#include "rdml/pairs.h"
#include "rdml/mpiutil.h"

void rdml_exp_remove_tmp(const char *path) {
    char dir[4096], base[4096], p[8400];
    rdml_strlcpy(dir, path, sizeof dir);
    rdml_strlcpy(base, path, sizeof base);
    const char *d = dirname(dir), *b = basename(base);
    char prefix[4200];
    snprintf(prefix, sizeof prefix, "%s.tmp-", b);
    DIR *dp = opendir(d);
    if (!dp) return;
    struct dirent *e;
    while ((e = readdir(dp)))
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
            snprintf(p, sizeof p, "%s/%s", d, e->d_name);
            unlink(p);
        }
    closedir(dp);
}

/* Rank 0: an existing output that does not open as HDF5 (truncated, overwritten) is an error
 * with a hint, or with --force is moved aside with its CSV tables. */
static int check_damaged(rdml_exp *ex, const char *output, int may_move) {
    rdml_ctx *ctx = ex->ctx;
    struct stat st;
    if (stat(output, &st) != 0) return RDML_OK;
    rdml_h5 *h = NULL;
    int rc = rdml_h5_open(ctx, MPI_COMM_SELF, output, 0, &h);
    rdml_h5_abort(&h);
    if (rc != RDML_EFORMAT) return rc;
    char why[2048];
    rdml_strlcpy(why, ctx->msg, sizeof why);
    rdml_ctx_clear(ctx);
    char when[32], aside[4200];
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y%m%dT%H%M%SZ", gmtime(&now));
    snprintf(aside, sizeof aside, "%s.damaged-%s", output, when);
    if (!ex->opts.force || !may_move)
        return RDML_FAIL(ctx, RDML_EFORMAT, "run.output = %s is damaged: it does not open as an "
                         "HDF5 file (%s) (hint: run the same command again with --force to start "
                         "a fresh results file, the damaged one is then kept as %s.damaged-<time>; "
                         "or restore %s from a copy)", output, why, output, output);
    if (rename(output, aside) != 0)
        return RDML_FAIL(ctx, RDML_EIO, "run.output = %s is damaged (%s) and cannot be moved "
                         "aside to %s: %s", output, why, aside, strerror(errno));
    char csv[2][4200], csv_aside[4300];
    rdml_exp_csv_paths(output, csv[0], csv[1], sizeof csv[0]);
    for (int i = 0; i < 3; i++) {
        if (i == 2) rdml_exp_eval_csv_path(output, csv[0], sizeof csv[0]); /* <stem>.evaluate.csv */
        const char *c = csv[i == 2 ? 0 : i];
        snprintf(csv_aside, sizeof csv_aside, "%s.damaged-%s", c, when);
        if (access(c, F_OK) == 0 && rename(c, csv_aside) != 0)
            rdml_warn(ctx, "cannot move %s aside to %s: %s", c, csv_aside, strerror(errno));
    }
    rdml_warn(ctx, "run.output = %s was damaged (%s); --force: kept it as %s (its CSV tables "
              "likewise) and starting a fresh results file", output, why, aside);
    return RDML_OK;
}

int rdml_exp_output_lock(rdml_exp *ex, int shared) {
    rdml_ctx *ctx = ex->ctx;
    if (ex->output_lock) return RDML_OK;
    const char *output;
    RDML_TRY(rdml_config_str(ctx, ex->cfg, "run", "output", &output));
    char what[1200];
    if (ex->opts.holder) rdml_strlcpy(what, ex->opts.holder, sizeof what);
    else snprintf(what, sizeof what, "rdml_exp_%s", ex->stage_name ? ex->stage_name : "stage");
    RDML_TRY(rdml_lock_acquire(ctx, ex->comm, output,
                               shared ? RDML_LOCK_SHARED : RDML_LOCK_EXCLUSIVE, what,
                               &ex->output_lock));
    int rc = ctx->rank == 0 ? check_damaged(ex, output, !shared) : RDML_OK;
    rc = rdml_root_status(ctx, ex->comm, rc);
    if (rc) rdml_exp_output_unlock(ex);
    return rc;
}

void rdml_exp_output_unlock(rdml_exp *ex) { rdml_lock_release(&ex->output_lock); }

int rdml_exp_results_commit(rdml_ctx *ctx, rdml_h5 **h, const char *stage) {
    char out[4096];
    rdml_strlcpy(out, rdml_h5_path(*h), sizeof out);
    RDML_TRY(rdml_h5_commit(ctx, h));
    rdml_info(ctx, "%s: results in %s", stage, out);
    return RDML_OK;
}

int rdml_exp_results_open(rdml_exp *ex, const char *stage, rdml_h5 **h) {
    rdml_ctx *ctx = ex->ctx;
    const char *path;
    int64_t threads;
    RDML_TRY(rdml_config_str(ctx, ex->cfg, "run", "output", &path));
    RDML_TRY(rdml_config_int(ctx, ex->cfg, "run", "threads", &threads));
    int exists = 0;
    if (ctx->rank == 0) {
        struct stat st;
        exists = stat(path, &st) == 0;
    }
    MPI_Bcast(&exists, 1, MPI_INT, 0, ex->comm);
    if (exists) {
        RDML_TRY(rdml_h5_open(ctx, ex->comm, path, 1, h));
    } else {
        RDML_TRY(rdml_h5_create(ctx, ex->comm, path, h));
    }
    char *text = rdml_config_dump(ex->cfg, 0);
    char group[256], when[64];
    snprintf(group, sizeof group, "/meta/stages/%s", stage);
    /* rank 0's clock, so every rank writes the same attribute value */
    int64_t now = (int64_t)time(NULL);
    MPI_Bcast(&now, 1, MPI_INT64_T, 0, ex->comm);
    time_t tt = (time_t)now;
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&tt));
    int64_t ranks = ctx->nranks;
    char hex[17];
    int src = rdml_exp_stage_stamp(ex, stage, hex); /* collective: every rank, before any skip */
    int rc = text ? src : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory dumping the config");
    if (!rc) rc = rdml_h5_group(ctx, *h, group);
    if (!rc) rc = rdml_h5_attr_str(ctx, *h, "/meta", "rdmlearn_version", RDML_VERSION);
    if (!rc) rc = rdml_h5_attr_str(ctx, *h, group, "config", text);
    if (!rc) rc = rdml_h5_attr_i64(ctx, *h, group, "ranks", &ranks, 1);
    if (!rc) rc = rdml_h5_attr_i64(ctx, *h, group, "blas_threads_per_rank", &threads, 1);
    if (!rc) rc = rdml_h5_attr_str(ctx, *h, group, "started", when);
    if (!rc) rc = rdml_h5_attr_str(ctx, *h, group, "config_hash", hex);
    char key[512];
    rdml_exp_stage_key(ex->cfg, stage, key, sizeof key);
    if (!rc) rc = rdml_h5_group(ctx, *h, "/meta/done");
    if (!rc) rc = rdml_h5_attr_str(ctx, *h, "/meta/done", key, hex);
    free(text);
    if (rc) rdml_h5_abort(h);
    return rc;
}

int rdml_exp_write_images(rdml_ctx *ctx, struct rdml_h5 *h, const rdml_subject *s,
                          int64_t n) {
    char path[256];
    int64_t *ids = rdml_calloc(ctx, (size_t)n + 1, sizeof *ids, "image ids");
    const char **names = rdml_calloc(ctx, (size_t)n + 1, sizeof *names, "image names");
    int rc = ids && names ? RDML_OK : ctx->code;
    for (int64_t i = 0; i < n && !rc; i++) {
        ids[i] = rdml_subject_nsd_id(s, i);
        const char *p = rdml_subject_image_path(s, i), *slash = strrchr(p, '/');
        names[i] = slash ? slash + 1 : p;
    }
    snprintf(path, sizeof path, "/subjects/subj%02d/images/nsd_id", rdml_subject_id(s));
    if (!rc) rc = rdml_h5_write_vec_i64(ctx, h, path, n, ids);
    if (!rc)
        rc = rdml_h5_attr_str(ctx, h, path, "meaning",
                              "NSD image id (0-based) of each row of this subject's matrices");
    snprintf(path, sizeof path, "/subjects/subj%02d/images/names", rdml_subject_id(s));
    if (!rc) rc = rdml_h5_delete(ctx, h, path);
    if (!rc) rc = rdml_h5_write_strings(ctx, h, path, names, n);
    free(ids);
    free(names);
    return rc;
}

int rdml_exp_mark_stage(rdml_exp *ex, const char *stage) {
    rdml_h5 *h = NULL;
    RDML_TRY(rdml_exp_results_open(ex, stage, &h));
    return rdml_h5_commit(ex->ctx, &h);
}

static int write_grid_scores(rdml_ctx *ctx, rdml_h5 *h, const char *gg, const rdml_split *S,
                               const int64_t *ifold, int64_t ns, int64_t K,
                               const double *const *scores, const char *scoring,
                               const char *axes, int64_t *chosen) {
    const int64_t nf = S->nfolds, nu = S->nunits;
    char path[1200];
    double *mean = malloc((size_t)(nf * ns + 1) * sizeof *mean), *sd = malloc((size_t)(ns + 1) * sizeof *sd);
    int rc = mean && sd ? RDML_OK : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory writing the grid");
    for (int64_t f = 0; f < nf && !rc; f++) {
        rdml_cv_grid_select(ns, K, scores[f], mean + f * ns, sd, &chosen[f]);
        char fg[1100];
        snprintf(fg, sizeof fg, "%s/fold_%lld", gg, (long long)f);
        rc = rdml_h5_group(ctx, h, fg);
        snprintf(path, sizeof path, "%s/inner_scores", fg);
        if (!rc) rc = rdml_h5_write_rows_f64(ctx, h, path, ns, K, 0, ctx->rank == 0 ? ns : 0, scores[f]);
        if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "meaning", "inner test score of each setting (row) in "
                                       "each inner fold (column); NaN: the fit failed or diverged");
        snprintf(path, sizeof path, "%s/mean", fg);
        if (!rc) rc = rdml_h5_write_vec_f64(ctx, h, path, ns, mean + f * ns);
        snprintf(path, sizeof path, "%s/std", fg);
        if (!rc) rc = rdml_h5_write_vec_f64(ctx, h, path, ns, sd);
        snprintf(path, sizeof path, "%s/inner_fold", fg);
        if (!rc) rc = rdml_h5_write_vec_i64(ctx, h, path, nu, ifold + f * nu);
        if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "meaning", S->scheme == RDML_SPLIT_PAIRS
            ? "inner fold of each pair (-1: not in this outer fold's training set)"
            : "inner fold of each image (-1: not in this outer fold's training set)");
        if (!rc) rc = rdml_h5_attr_i64(ctx, h, fg, "chosen", &chosen[f], 1);
    }
    snprintf(path, sizeof path, "%s/chosen", gg);
    if (!rc) rc = rdml_h5_write_vec_i64(ctx, h, path, nf, chosen);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "meaning", "setting chosen in each outer fold (best mean inner score, first on ties)");
    snprintf(path, sizeof path, "%s/mean_inner_score", gg);
    if (!rc) rc = rdml_h5_write_rows_f64(ctx, h, path, nf, ns, 0, ctx->rank == 0 ? nf : 0, mean);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "meaning", "mean inner score: outer fold (row) x setting (column)");
    if (!rc) rc = rdml_h5_attr_str(ctx, h, gg, "scoring", scoring);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, gg, "axes", axes);
    int64_t iv[2] = {ns, K};
    if (!rc) rc = rdml_h5_attr_i64(ctx, h, gg, "n_settings", &iv[0], 1);
    if (!rc) rc = rdml_h5_attr_i64(ctx, h, gg, "inner_folds", &iv[1], 1);
    free(mean);
    free(sd);
    return rc;
}

int rdml_exp_write_grid(rdml_ctx *ctx, rdml_h5 *h, const char *gs, const rdml_exp_grid_col *cols,
                        int ncols, const rdml_split *S, const int64_t *ifold, int64_t ns, int64_t K,
                        const double *const *scores, const char *scoring, const char *axes,
                        int64_t *chosen) {
    char g[1000], path[1100];
    snprintf(g, sizeof g, "%s/grid", gs);
    int rc = rdml_h5_group(ctx, h, g);
    for (int c = 0; c < ncols && !rc; c++) {
        snprintf(path, sizeof path, "%s/%s", g, cols[c].name);
        if (cols[c].str) rc = rdml_h5_write_strings(ctx, h, path, cols[c].str, ns);
        else if (cols[c].i64) rc = rdml_h5_write_vec_i64(ctx, h, path, ns, cols[c].i64);
        else rc = rdml_h5_write_vec_f64(ctx, h, path, ns, cols[c].f64);
        if (!rc && cols[c].meaning) rc = rdml_h5_attr_str(ctx, h, path, "meaning", cols[c].meaning);
    }
    if (!rc) rc = write_grid_scores(ctx, h, g, S, ifold, ns, K, scores, scoring, axes, chosen);
    return rc;
}

int rdml_exp_write_pairs(rdml_ctx *ctx, rdml_h5 *h, const char *g, const rdml_pairs *P,
                         const rdml_split *S, int64_t n_images, const char *set,
                         const char *value_meaning) {
    char path[1100];
    int rc = rdml_h5_delete(ctx, h, g);
    if (!rc) rc = rdml_h5_group(ctx, h, g);
    snprintf(path, sizeof path, "%s/ij", g);
    if (!rc) rc = rdml_h5_write_rows_i64(ctx, h, path, P->n, 2, 0, ctx->rank == 0 ? P->n : 0, P->ij);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "meaning", "image rows (a, b) of each pair; rows of ../../../../subjects/subjNN/images");
    snprintf(path, sizeof path, "%s/value", g);
    if (!rc) rc = rdml_h5_write_vec_f64(ctx, h, path, P->n, P->value);
    if (!rc && value_meaning) rc = rdml_h5_attr_str(ctx, h, path, "meaning", value_meaning);
    snprintf(path, sizeof path, "%s/fold", g);
    if (!rc) rc = rdml_h5_write_vec_i64(ctx, h, path, S->nunits, S->fold);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "meaning", S->scheme == RDML_SPLIT_PAIRS
        ? "test fold of each PAIR (pair-level split: images appear on both sides)"
        : "test fold of each image (-1: always training); a pair is tested in fold f when both "
          "images are in f and trains there when neither is");
    int64_t iv[3] = {n_images, P->n, S->nfolds};
    const char *in[3] = {"n_images", "n_pairs", "n_folds"};
    for (int i = 0; i < 3 && !rc; i++) rc = rdml_h5_attr_i64(ctx, h, g, in[i], &iv[i], 1);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, g, "set", set);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, g, "scheme", rdml_split_scheme_name(S->scheme));
    return rc;
}
