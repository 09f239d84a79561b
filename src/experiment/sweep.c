/* The model stages (svm, train) as one sweep: every (subject, selection) group of the config
 * contributes one task per outer fold; the tasks of all groups, listed subject-major in config
 * order, go through the dynamic task farm (src/sched) with a journal beside run.output, so a
 * killed sweep resumes and a SLURM array can split the tasks (--array I/N). A rank that takes
 * a task of a group it has not loaded prepares that group itself (reads the RDM and embeddings
 * from the committed run.output through its own read-only handle, builds pairs and folds:
 * pure and identical on every rank), keeping the last group cached, so consecutive tasks of a
 * group reuse it. After the farm the stage opens run.output for writing and, group by group,
 * prepares the group collectively and writes it from the records. The records are keyed by
 * the stage's config hash, the group and the fold: changing any input key recomputes. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eval_priv.h"
#include "exp_priv.h"
#include "rdml/strbuf.h"
#include "rdml/dataset.h"
#include "rdml/h5.h"
#include "rdml/metrics.h"
#include "rdml/mpiutil.h"
#include "rdml/sched.h"

typedef struct sweep_state {
    rdml_exp *ex;
    const rdml_sweep_model *m;
    const rdml_dataset *ds;
    const char *output;
    int ngroups;
    int *gsubj;       /* per group: subject id */
    char **gname;     /* per group: selection name ('+' unions) */
    int64_t *gfirst;  /* per group: first task index; gfirst[ngroups] = ntasks */
    /* this rank's cache */
    int cached;       /* group index or -1 */
    void *group;
    rdml_h5 *hself;   /* run.output read-only on MPI_COMM_SELF */
} sweep_state;

static int group_of(const sweep_state *s, int64_t t) {
    int lo = 0, hi = s->ngroups - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (s->gfirst[mid] <= t) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

/* The opts of group g: its variant's (groups are subject x selection x variant). */
static const void *group_opts(const sweep_state *s, int g) {
    return s->m->nvariants > 0 ? s->m->variants[g % s->m->nvariants].opts : s->m->opts;
}

/* " embedding <name>" for the messages of a group of several embeddings' sweep, else "". */
static const char *group_emb(const sweep_state *s, int g) {
    static _Thread_local char buf[400];
    if (s->m->nvariants < 2) return "";
    snprintf(buf, sizeof buf, " embedding %s", s->m->variants[g % s->m->nvariants].embedding);
    return buf;
}

static int prepare(rdml_ctx *ctx, MPI_Comm comm, const sweep_state *s, rdml_h5 *h, int g,
                   void *group) {
    rdml_subject *subj = NULL;
    int rc = rdml_subject_open(ctx, s->ds, s->gsubj[g], &subj);
    rc = rdml_agree(ctx, comm, rc);
    if (!rc) rc = s->m->prepare(ctx, comm, h, group_opts(s, g), subj, s->gname[g], group);
    rdml_subject_close(&subj);
    return rc;
}

/* This rank's copy of group g (prepared on this rank alone, kept for the next task). */
static int ensure_group(rdml_ctx *ctx, sweep_state *s, int g) {
    if (s->cached != g) {
        if (s->cached >= 0) s->m->release(s->group);
        s->cached = -1;
        memset(s->group, 0, s->m->group_size);
        if (!s->hself) {
            /* a context of this rank alone: the handle and its errors are not collective */
            RDML_TRY(rdml_h5_open(ctx, MPI_COMM_SELF, s->output, 0, &s->hself));
        }
        int rc = prepare(ctx, MPI_COMM_SELF, s, s->hself, g, s->group);
        if (rc) {
            s->m->release(s->group);
            return rdml_ctx_prefix(ctx, "subj%02d %s%s", s->gsubj[g], s->gname[g], group_emb(s, g));
        }
        s->cached = g;
    }
    return RDML_OK;
}

static int sweep_task(rdml_ctx *ctx, int64_t t, void *user, rdml_rec *out) {
    sweep_state *s = user;
    int g = group_of(s, t);
    RDML_TRY(ensure_group(ctx, s, g));
    int rc = s->m->task(ctx, group_opts(s, g), s->group, t - s->gfirst[g], out);
    if (rc) rdml_ctx_prefix(ctx, "subj%02d %s%s %s fold %lld", s->gsubj[g], s->gname[g], group_emb(s, g), s->m->stage,
                            (long long)(t - s->gfirst[g]));
    return rc;
}

/* A task on a group of ranks (comm): each rank loads the group on its own, then the model's
 * task_group runs collectively. */
static int sweep_task_group(rdml_ctx *ctx, MPI_Comm comm, int64_t t, void *user, rdml_rec *out,
                            double *waited) {
    sweep_state *s = user;
    int g = group_of(s, t);
    int rc = rdml_agree(ctx, comm, ensure_group(ctx, s, g));
    if (!rc) rc = s->m->task_group(ctx, comm, group_opts(s, g), s->group, t - s->gfirst[g], out,
                                   waited);
    if (rc && !strstr(ctx->msg, "fold "))
        rdml_ctx_prefix(ctx, "subj%02d %s%s %s fold %lld", s->gsubj[g], s->gname[g], group_emb(s, g),
                        s->m->stage, (long long)(t - s->gfirst[g]));
    return rc;
}

/* Collective. How busy the ranks were: rank r's busy time is the stage's wall time (since t0)
 * minus the time it waited in the farm without a task; every rank gets every rank's fraction
 * (busy, nranks values) and the stage's seconds. Logs "<stage>: ranks busy NN% ...". */
static int busy_figure(rdml_ctx *ctx, MPI_Comm comm, const char *stage, double t0, double idle,
                       double *busy, double *seconds) {
    int nr = 1;
    MPI_Comm_size(comm, &nr);
    double wall = rdml_now() - t0;
    MPI_Allreduce(MPI_IN_PLACE, &wall, 1, MPI_DOUBLE, MPI_MAX, comm);
    double mine = wall > 0 ? (wall - idle) / wall : 1.0;
    if (mine < 0) mine = 0;
    MPI_Allgather(&mine, 1, MPI_DOUBLE, busy, 1, MPI_DOUBLE, comm);
    char per[512] = "";
    double mean = 0;
    for (int r = 0; r < nr; r++) {
        mean += busy[r] / nr;
        size_t l = strlen(per);
        if (r < 16) snprintf(per + l, sizeof per - l, "%srank %d: %.0f%%", r ? ", " : "", r, 100 * busy[r]);
        else if (r == 16) snprintf(per + l, sizeof per - l, ", ...");
    }
    *seconds = wall;
    rdml_info(ctx, "%s: ranks busy %.0f%% of the stage time (%s; %.1f s)", stage, 100 * mean, per, wall);
    return RDML_OK;
}

void rdml_exp_csv_paths(const char *output, char *sweep, char *summary, size_t len) {
    char stem[4096];
    rdml_strlcpy(stem, output, sizeof stem);
    char *dot = strrchr(stem, '.');
    if (dot && strcmp(dot, ".h5") == 0) *dot = 0;
    snprintf(sweep, len, "%s.sweep.csv", stem);
    snprintf(summary, len, "%s.summary.csv", stem);
}

/* Rank 0: does the file hold exactly text? */
static int same_content(const char *path, const char *text, size_t n) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    int same = 1;
    char buf[65536];
    size_t off = 0, got;
    while (same && (got = fread(buf, 1, sizeof buf, f)) > 0) {
        if (off + got > n || memcmp(buf, text + off, got) != 0) same = 0;
        off += got;
    }
    fclose(f);
    return same && off == n;
}

/* Rank 0: text into path through a synced temporary file and a rename. */
static int write_text(rdml_ctx *ctx, const char *path, const char *text, size_t n,
                      const char *output) {
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
    FILE *out = fopen(tmp, "w");
    int bad = !out || fwrite(text, 1, n, out) != n || fflush(out) != 0 || fsync(fileno(out)) != 0;
    int err = errno;
    if (out && fclose(out) != 0 && !bad) {
        bad = 1;
        err = errno;
    }
    if (!bad && rename(tmp, path) != 0) {
        bad = 1;
        err = errno;
    }
    if (!bad) return RDML_OK;
    unlink(tmp);
    return RDML_FAIL(ctx, RDML_EIO, "cannot write %s: %s (hint: is the disk full? The results are "
                     "safe in %s; the next command on it writes this table)", path, strerror(err),
                     output);
}

/* Rank 0, on a handle of this rank alone: every sweep table of h in long format. */
static int tables_text(rdml_ctx *ctx, rdml_h5 *h, rdml_strbuf *rows, rdml_strbuf *sums, int *ntables) {
    char **exps = NULL, **models = NULL;
    int64_t nexp = 0, nmod = 0;
    *ntables = 0;
    int rc = rdml_h5_list(ctx, h, "/sweep", &exps, &nexp);
    for (int64_t e = 0; e < nexp && !rc; e++) {
        char eg[1200];
        snprintf(eg, sizeof eg, "/sweep/%s", exps[e]);
        rc = rdml_h5_list(ctx, h, eg, &models, &nmod);
        for (int64_t k = 0; k < nmod && !rc; k++) {
            char base[2400], p[2600];
            snprintf(base, sizeof base, "%s/%s", eg, models[k]);
            snprintf(p, sizeof p, "%s/tasks/metrics", base);
            int ex = 0, nd = 0;
            int64_t dims[8] = {0}, gd[8] = {0}, nf = 0, got = 0;
            rc = rdml_h5_exists(ctx, h, p, &ex);
            if (rc || !ex) continue;
            rc = rdml_h5_dims(ctx, h, p, &nd, dims);
            snprintf(p, sizeof p, "%s/summary/mean", base);
            if (!rc) rc = rdml_h5_dims(ctx, h, p, &nd, gd);
            const int64_t T = dims[0], M = nd == 2 ? dims[1] : 1, G = gd[0];
            char *cols = NULL, **tsel = NULL, **gsel = NULL, *names[64];
            int64_t nts = 0, ngs = 0, nnames = 0;
            int64_t *tsubj = calloc((size_t)T + 1, sizeof *tsubj), *tfold = calloc((size_t)T + 1, sizeof *tfold);
            int64_t *gsubj = calloc((size_t)G + 1, sizeof *gsubj);
            double *val = calloc((size_t)(T * M) + 1, sizeof *val), *mean = calloc((size_t)(G * M) + 1, sizeof *mean);
            double *sd = calloc((size_t)(G * M) + 1, sizeof *sd);
            if (!rc && (!tsubj || !tfold || !gsubj || !val || !mean || !sd))
                rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory reading the sweep table %s", base);
            snprintf(p, sizeof p, "%s/tasks/metrics", base);
            if (!rc) rc = rdml_h5_get_attr_str(ctx, h, p, "columns", &cols);
            if (!rc) rc = rdml_h5_read_rows_f64(ctx, h, p, 0, T, val);
            snprintf(p, sizeof p, "%s/tasks/subject", base);
            if (!rc) rc = rdml_h5_read_rows_i64(ctx, h, p, 0, T, tsubj);
            snprintf(p, sizeof p, "%s/tasks/fold", base);
            if (!rc) rc = rdml_h5_read_rows_i64(ctx, h, p, 0, T, tfold);
            snprintf(p, sizeof p, "%s/tasks/selection", base);
            if (!rc) rc = rdml_h5_read_strings(ctx, h, p, &tsel, &nts);
            snprintf(p, sizeof p, "%s/summary/subject", base);
            if (!rc) rc = rdml_h5_read_rows_i64(ctx, h, p, 0, G, gsubj);
            snprintf(p, sizeof p, "%s/summary/selection", base);
            if (!rc) rc = rdml_h5_read_strings(ctx, h, p, &gsel, &ngs);
            snprintf(p, sizeof p, "%s/summary/mean", base);
            if (!rc) rc = rdml_h5_read_rows_f64(ctx, h, p, 0, G, mean);
            snprintf(p, sizeof p, "%s/summary/std", base);
            if (!rc) rc = rdml_h5_read_rows_f64(ctx, h, p, 0, G, sd);
            if (!rc) rc = rdml_h5_get_attr_i64(ctx, h, base, "folds", &nf, 1, &got);
            for (char *sv = NULL, *c = cols && !rc ? strtok_r(cols, ",", &sv) : NULL; c && nnames < 64;
                 c = strtok_r(NULL, ",", &sv))
                names[nnames++] = c;
            if (!rc && (nnames != M || nts != T || ngs != G))
                rc = RDML_FAIL(ctx, RDML_EFORMAT, "%s: the sweep table %s is inconsistent (%lld "
                               "metric names for %lld columns, %lld/%lld selections for %lld/%lld "
                               "rows)", rdml_h5_path(h), base, (long long)nnames, (long long)M,
                               (long long)nts, (long long)ngs, (long long)T, (long long)G);
            rdml_sweep_vcols vc; /* embedding, architecture, layer, depth (pair_emb.c) */
            memset(&vc, 0, sizeof vc);
            if (!rc) rc = rdml_exp_sweep_vcols_read(ctx, h, base, T, G, &vc);
#define VS(a, i) ((a)[i] ? (a)[i] : "")
            for (int64_t t = 0; t < T && !rc; t++)
                for (int64_t i = 0; i < M; i++)
                    rdml_strbuf_printf(rows, "%s,%s,%lld,%s,%lld,%s,%.17g,%s,%s,%s,%.17g,%.17g\n", exps[e],
                              models[k], (long long)tsubj[t], tsel[t], (long long)tfold[t], names[i],
                              val[t * M + i], VS(vc.emb, t), VS(vc.arch, t), VS(vc.layer, t),
                              vc.depth[t], vc.rel[t]);
            for (int64_t g = 0; g < G && !rc; g++)
                for (int64_t i = 0; i < M; i++)
                    rdml_strbuf_printf(sums, "%s,%s,%lld,%s,%s,%.17g,%.17g,%lld,%s,%s,%s,%.17g,%.17g\n",
                              exps[e], models[k], (long long)gsubj[g], gsel[g], names[i],
                              mean[g * M + i], sd[g * M + i], (long long)nf, VS(vc.emb, T + g),
                              VS(vc.arch, T + g), VS(vc.layer, T + g), vc.depth[T + g], vc.rel[T + g]);
#undef VS
            rdml_exp_sweep_vcols_free(&vc);
            if (!rc) {
                ++*ntables;
            } else if (rc != RDML_ENOMEM) {
                /* one unreadable table must not stop every later run: left out, said */
                rdml_warn(ctx, "the CSV tables leave out %s: %s", base, ctx->msg);
                rdml_ctx_clear(ctx);
                rc = RDML_OK;
            }
            free(cols);
            rdml_h5_free_strings(tsel, nts);
            rdml_h5_free_strings(gsel, ngs);
            free(tsubj);
            free(tfold);
            free(gsubj);
            free(val);
            free(mean);
            free(sd);
        }
        rdml_h5_free_strings(models, nmod);
        models = NULL;
        nmod = 0;
    }
    rdml_h5_free_strings(exps, nexp);
    if (!rc && (rows->failed || sums->failed))
        rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory writing the sweep tables");
    return rc;
}

/* Rank 0: the work of rdml_exp_tables_sync. */
static int tables_sync_local(rdml_ctx *ctx, const char *output) {
    char csv[2][4200];
    rdml_exp_csv_paths(output, csv[0], csv[1], sizeof csv[0]);
    rdml_exp_remove_tmp(csv[0]);
    rdml_exp_remove_tmp(csv[1]);
    struct stat st;
    if (stat(output, &st) != 0) return RDML_OK; /* nothing committed yet */
    rdml_strbuf text[2] = {{0}, {0}};
    rdml_strbuf_printf(&text[0], "experiment,model,subject,selection,fold,metric,value,"
                       "embedding,architecture,layer,depth,relative_depth\n");
    rdml_strbuf_printf(&text[1], "experiment,model,subject,selection,metric,mean,std,folds,"
                       "embedding,architecture,layer,depth,relative_depth\n");
    rdml_h5 *h = NULL;
    int ntables = 0;
    int rc = rdml_h5_open(ctx, MPI_COMM_SELF, output, 0, &h);
    if (!rc) rc = tables_text(ctx, h, &text[0], &text[1], &ntables);
    rdml_h5_abort(&h);
    if (rc) rdml_ctx_prefix(ctx, "writing the CSV tables of %s", output);
    for (int i = 0; i < 2 && !rc; i++) {
        if (ntables == 0) {
            /* tables of results the file no longer holds */
            if (unlink(csv[i]) == 0) rdml_info(ctx, "removed %s: %s holds no sweep table", csv[i], output);
        } else if (!same_content(csv[i], text[i].s ? text[i].s : "", text[i].len)) {
            rc = write_text(ctx, csv[i], text[i].s ? text[i].s : "", text[i].len, output);
            if (!rc) rdml_info(ctx, "wrote %s (%d sweep table(s) of %s)", csv[i], ntables, output);
        }
    }
    rdml_strbuf_free(&text[0]);
    rdml_strbuf_free(&text[1]);
    if (!rc) rc = rdml_exp_eval_csv_sync(ctx, output); /* <stem>.evaluate.csv (eval_csv.c) */
    return rc;
}

int rdml_exp_tables_sync(rdml_exp *ex) {
    rdml_ctx *ctx = ex->ctx;
    const char *output;
    RDML_TRY(rdml_config_str(ctx, ex->cfg, "run", "output", &output));
    return rdml_agree(ctx, ex->comm, ctx->rank == 0 ? tables_sync_local(ctx, output) : RDML_OK);
}

int rdml_exp_journal_prune(rdml_exp *ex, const char *stage, const char *hex) {
    rdml_ctx *ctx = ex->ctx;
    const char *output;
    RDML_TRY(rdml_config_str(ctx, ex->cfg, "run", "output", &output));
    char jdir[4200], prefix[64];
    snprintf(jdir, sizeof jdir, "%s.journal", output);
    snprintf(prefix, sizeof prefix, "%s|%s|", stage, hex);
    struct stat st;
    int exists = ctx->rank == 0 && stat(jdir, &st) == 0 && S_ISDIR(st.st_mode);
    MPI_Bcast(&exists, 1, MPI_INT, 0, ex->comm);
    if (!exists) return RDML_OK;
    rdml_journal *j = NULL;
    RDML_TRY(rdml_journal_open(ctx, ex->comm, jdir, 1, &j));
    int64_t removed = 0;
    int rc = ctx->rank == 0 ? rdml_journal_prune(ctx, j, prefix, &removed) : RDML_OK;
    rc = rdml_agree(ctx, ex->comm, rc);
    if (!rc && removed)
        rdml_info(ctx, "%s: removed %lld journal record(s) of results already in %s", stage,
                  (long long)removed, output);
    rdml_journal_close(&j, ex->comm, !rc);
    return rc;
}

/* Collective. /sweep/<experiment>/<model>/{tasks,summary} (the CSV tables are made from them,
 * rdml_exp_tables_sync). */
static int write_table(rdml_ctx *ctx, rdml_h5 *h, const rdml_sweep_model *m,
                       const sweep_state *s, const rdml_rec *recs, int64_t nf, const double *busy,
                       int nr, double seconds) {
    const int64_t T = (int64_t)s->ngroups * nf, M = m->nmetrics, G = s->ngroups;
    double *val = malloc((size_t)(T * M + 1) * sizeof *val);
    double *mean = malloc((size_t)(G * M + 1) * sizeof *mean), *sd = malloc((size_t)(G * M + 1) * sizeof *sd);
    double *col = malloc((size_t)(nf + 1) * sizeof *col);
    int64_t *subj = malloc((size_t)(T + 1) * sizeof *subj), *fold = malloc((size_t)(T + 1) * sizeof *fold);
    int64_t *gsubj = malloc((size_t)(G + 1) * sizeof *gsubj);
    const char **sel = malloc((size_t)(T + 1) * sizeof *sel);
    int rc = val && mean && sd && col && subj && fold && gsubj && sel
                 ? RDML_OK : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory (sweep table)");
    for (int g = 0; g < G && !rc; g++) {
        gsubj[g] = s->gsubj[g];
        for (int64_t f = 0; f < nf; f++) {
            int64_t t = (int64_t)g * nf + f;
            subj[t] = s->gsubj[g];
            fold[t] = f;
            sel[t] = s->gname[g];
            m->metrics(group_opts(s, g), NULL, f, &recs[t], val + t * M);
        }
        for (int64_t i = 0; i < M; i++) {
            int64_t k = 0;
            for (int64_t f = 0; f < nf; f++) {
                double v = val[((int64_t)g * nf + f) * M + i];
                if (v == v) col[k++] = v; /* folds that stopped (NaN) are left out */
            }
            mean[g * M + i] = sd[g * M + i] = NAN;
            if (k) rdml_metrics_mean_std(k, col, &mean[g * M + i], &sd[g * M + i]);
        }
    }
    char cols[1024] = "", base[600], path[800];
    for (int64_t i = 0; i < M; i++) {
        strncat(cols, i ? "," : "", sizeof cols - strlen(cols) - 1);
        strncat(cols, m->metric_names[i], sizeof cols - strlen(cols) - 1);
    }
    snprintf(base, sizeof base, "/sweep/%s/%s", m->experiment, m->model);
    if (!rc) rc = rdml_h5_delete(ctx, h, base);
    snprintf(path, sizeof path, "%s/tasks/subject", base);
    if (!rc) rc = rdml_h5_write_vec_i64(ctx, h, path, T, subj);
    snprintf(path, sizeof path, "%s/tasks/selection", base);
    if (!rc) rc = rdml_h5_write_strings(ctx, h, path, sel, T);
    snprintf(path, sizeof path, "%s/tasks/fold", base);
    if (!rc) rc = rdml_h5_write_vec_i64(ctx, h, path, T, fold);
    snprintf(path, sizeof path, "%s/tasks/metrics", base);
    if (!rc) rc = rdml_h5_write_rows_f64(ctx, h, path, T, M, 0, ctx->rank == 0 ? T : 0, val);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "columns", cols);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "meaning", "test metrics of each task (subject, "
                                   "selection, outer fold); NaN for a fold that stopped");
    snprintf(path, sizeof path, "%s/summary/subject", base);
    if (!rc) rc = rdml_h5_write_vec_i64(ctx, h, path, G, gsubj);
    snprintf(path, sizeof path, "%s/summary/selection", base);
    if (!rc) rc = rdml_h5_write_strings(ctx, h, path, (const char *const *)s->gname, G);
    snprintf(path, sizeof path, "%s/summary/mean", base);
    if (!rc) rc = rdml_h5_write_rows_f64(ctx, h, path, G, M, 0, ctx->rank == 0 ? G : 0, mean);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "columns", cols);
    snprintf(path, sizeof path, "%s/summary/std", base);
    if (!rc) rc = rdml_h5_write_rows_f64(ctx, h, path, G, M, 0, ctx->rank == 0 ? G : 0, sd);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "columns", cols);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "meaning", "population std (ddof 0) over the "
                                   "finished folds");
    int64_t nfl = nf;
    if (!rc) rc = rdml_h5_attr_i64(ctx, h, base, "folds", &nfl, 1);
    if (!rc && m->nvariants > 0) rc = rdml_exp_sweep_variant_cols(ctx, h, base, m, s->ngroups, nf);
    /* how busy the ranks were (docs/results.md): a property of the run, not of the results */
    if (!rc && busy) {
        double bmean = 0;
        for (int r = 0; r < nr; r++) bmean += busy[r] / nr;
        rc = rdml_h5_attr_f64(ctx, h, base, "ranks_busy", busy, nr);
        if (!rc) rc = rdml_h5_attr_f64(ctx, h, base, "ranks_busy_mean", &bmean, 1);
        if (!rc) rc = rdml_h5_attr_f64(ctx, h, base, "stage_seconds", &seconds, 1);
    }
    free(val);
    free(mean);
    free(sd);
    free(col);
    free(subj);
    free(fold);
    free(gsubj);
    free(sel);
    return rc;
}

/* The pairs of an experiment, /experiments/<exp>/pairs, are shared by the models of one stage
 * made with the same pair settings (the train stage's siamese and mlp on the same pairs); the
 * group's attributes stage, pairs_hash (the settings, rdml_exp_pairs_hash) and models (who
 * wrote results with these pairs) say whose they are. */
typedef struct pairs_owner {
    char *stage, *hash, *models; /* NULL: not recorded */
} pairs_owner;

/* Collective. The owner attributes of /experiments/<exp>/pairs (gp), those there are. */
static void owner_read(rdml_ctx *ctx, rdml_h5 *h, const char *gp, pairs_owner *o) {
    memset(o, 0, sizeof *o);
    if (rdml_h5_get_attr_str(ctx, h, gp, "stage", &o->stage) != RDML_OK) rdml_ctx_clear(ctx);
    if (rdml_h5_get_attr_str(ctx, h, gp, "pairs_hash", &o->hash) != RDML_OK) rdml_ctx_clear(ctx);
    if (rdml_h5_get_attr_str(ctx, h, gp, "models", &o->models) != RDML_OK) rdml_ctx_clear(ctx);
}

static void owner_free(pairs_owner *o) {
    free(o->stage);
    free(o->hash);
    free(o->models);
}

/* Does the comma-separated list name `mine`? The first other name goes to other ("" if none). */
static int owner_scan(const char *models, const char *mine, char *other, size_t len) {
    char buf[1024];
    int have = 0;
    other[0] = 0;
    rdml_strlcpy(buf, models ? models : "", sizeof buf);
    for (char *sv = NULL, *it = strtok_r(buf, ",", &sv); it; it = strtok_r(NULL, ",", &sv)) {
        if (strcmp(it, mine) == 0) have = 1;
        else if (!other[0]) rdml_strlcpy(other, it, len);
    }
    return have;
}

/* Collective: refuse a run that would replace pairs another model's results refer to (the
 * svm and a network in one experiment, or a network with other pair settings). */
static int check_pairs_owner(rdml_ctx *ctx, MPI_Comm comm, const char *output, const rdml_sweep_model *m,
                             const char *phash) {
    rdml_h5 *h = NULL;
    RDML_TRY(rdml_h5_open(ctx, comm, output, 0, &h));
    char gp[600];
    snprintf(gp, sizeof gp, "/experiments/%s/pairs", m->experiment);
    int ex = 0, rc = rdml_h5_exists(ctx, h, gp, &ex);
    pairs_owner o;
    memset(&o, 0, sizeof o);
    if (!rc && ex) owner_read(ctx, h, gp, &o);
    const char *other = NULL, *why = "";
    char buf[256] = "";
    if (o.stage && strcmp(o.stage, m->stage) != 0) {
        other = o.models ? o.models : o.stage;
        why = " (another stage's)";
    } else if (o.hash && strcmp(o.hash, phash) != 0) {
        owner_scan(o.models, m->model, buf, sizeof buf);
        if (buf[0]) other = buf;
        why = ", made with other pair settings";
    }
    if (!rc && other)
        rc = RDML_FAIL(ctx, RDML_ECONFIG, "%s: experiment '%s' in %s holds the pairs and folds of its "
                       "%s results%s; the %s model would replace them (hint: give this model its own "
                       "pairs.experiment, e.g. pairs.experiment = %s-%s)", m->stage, m->experiment,
                       output, other, why, m->model, m->experiment, m->model);
    owner_free(&o);
    rdml_h5_abort(&h);
    return rc;
}

/* Collective: record who owns /experiments/<exp>/pairs after a write (see check_pairs_owner). */
static int mark_pairs_owner(rdml_ctx *ctx, rdml_h5 *h, const rdml_sweep_model *m, const char *phash) {
    char gp[600], list[1024], other[256];
    snprintf(gp, sizeof gp, "/experiments/%s/pairs", m->experiment);
    pairs_owner o;
    owner_read(ctx, h, gp, &o);
    rdml_strlcpy(list, m->model, sizeof list);
    if (o.hash && o.models && strcmp(o.hash, phash) == 0) {
        if (owner_scan(o.models, m->model, other, sizeof other)) rdml_strlcpy(list, o.models, sizeof list);
        else snprintf(list, sizeof list, "%s,%s", o.models, m->model);
    }
    owner_free(&o);
    int rc = rdml_h5_attr_str(ctx, h, gp, "stage", m->stage);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, gp, "pairs_hash", phash);
    if (!rc) rc = rdml_h5_attr_str(ctx, h, gp, "models", list);
    return rc;
}

int rdml_sweep_run(rdml_exp *ex, const rdml_sweep_model *m, int64_t array_index,
                   int64_t array_count) {
    rdml_ctx *ctx = ex->ctx;
    const double t0 = rdml_now();
    const char *root, *output;
    RDML_TRY(rdml_config_str(ctx, ex->cfg, "data", "root", &root));
    RDML_TRY(rdml_config_str(ctx, ex->cfg, "run", "output", &output));
    sweep_state s;
    memset(&s, 0, sizeof s);
    s.ex = ex;
    s.m = m;
    s.output = output;
    s.cached = -1;
    rdml_dataset *ds = NULL;
    int *ids = NULL, nids = 0, nsel = 0;
    char **sels = NULL, **keys = NULL;
    rdml_journal *j = NULL;
    rdml_rec *recs = NULL;
    rdml_h5 *h = NULL;
    int64_t nf = m->nfolds(m->opts), ntasks = 0;
    char hex[17];
    int rc = rdml_exp_stage_stamp(ex, m->stage, hex);
    if (!rc) rc = rdml_dataset_open(ctx, root, &ds);
    if (!rc) rc = rdml_exp_subjects(ctx, ex->cfg, ds, &ids, &nids);
    if (!rc) rc = rdml_exp_selections(ctx, ex->cfg, &sels, &nsel);
    if (!rc) {
        struct stat st;
        if (stat(output, &st) != 0)
            rc = RDML_FAIL(ctx, RDML_EIO, "%s: the results file %s does not exist (hint: run "
                           "`rdmlearn rdm` and `rdmlearn embed` first, or `rdmlearn run`)",
                           m->stage, output);
    }
    rc = rdml_agree(ctx, ex->comm, rc);
    char phash[17] = "";
    if (!rc && rdml_exp_pairs_hash(ex->cfg, phash) != RDML_OK)
        rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory hashing the config");
    if (!rc) rc = check_pairs_owner(ctx, ex->comm, output, m, phash);
    s.ds = ds;
    const int nvar = m->nvariants > 0 ? m->nvariants : 1;
    s.ngroups = nids * nsel * nvar;
    if (!rc) {
        s.gsubj = calloc((size_t)s.ngroups + 1, sizeof *s.gsubj);
        s.gname = calloc((size_t)s.ngroups + 1, sizeof *s.gname);
        s.gfirst = calloc((size_t)s.ngroups + 1, sizeof *s.gfirst);
        s.group = calloc(1, m->group_size);
        ntasks = (int64_t)s.ngroups * nf;
        keys = calloc((size_t)ntasks + 1, sizeof *keys);
        if (!s.gsubj || !s.gname || !s.gfirst || !s.group || !keys)
            rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory listing the sweep");
    }
    for (int i = 0, g = 0; i < nids && !rc; i++)
        for (int k = 0; k < nsel * nvar && !rc; k++, g++) {
            s.gsubj[g] = ids[i];
            s.gname[g] = rdml_strdup(ctx, sels[k / nvar]);
            if (!s.gname[g]) {
                rc = ctx->code;
                break;
            }
            for (char *p = s.gname[g]; *p; p++)
                if (*p == ',') *p = '+';
            s.gfirst[g] = (int64_t)g * nf;
            for (int64_t f = 0; f < nf && !rc; f++) {
                char key[1024];
                snprintf(key, sizeof key, "%s|%s|subj%02d|%s|fold %lld of %lld%s%s", m->stage, hex,
                         ids[i], s.gname[g], (long long)f, (long long)nf, m->nvariants ? "|" : "",
                         m->nvariants ? m->variants[k % nvar].embedding : "");
                keys[g * nf + f] = rdml_strdup(ctx, key);
                if (!keys[g * nf + f]) rc = ctx->code;
            }
        }
    if (!rc) s.gfirst[s.ngroups] = ntasks;
    rc = rdml_agree(ctx, ex->comm, rc);
    if (!rc && ntasks == 0)
        rc = RDML_FAIL(ctx, RDML_ECONFIG, "%s: the sweep is empty (data.subjects x data.rois x "
                       "folds = 0 tasks; hint: check data.subjects and data.rois)", m->stage);
    char jdir[4200];
    snprintf(jdir, sizeof jdir, "%s.journal", output);
    if (!rc) rc = rdml_journal_open(ctx, ex->comm, jdir, array_count == 0, &j);
    if (!rc) {
        recs = array_count ? NULL : calloc((size_t)ntasks, sizeof *recs);
        if (!array_count && !recs) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory (records)");
    }
    rc = rdml_agree(ctx, ex->comm, rc);
    rdml_farm_stats fst;
    memset(&fst, 0, sizeof fst);
    double idle = 0;
    if (!rc) {
        char label[64];
        snprintf(label, sizeof label, "%s folds", m->stage);
        rdml_farm_opts fo = {.journal = j, .keys = (const char *const *)keys,
                             .array_index = array_index, .array_count = array_count,
                             .gather = array_count == 0, .label = label,
                             .group_fn = m->task_group ? sweep_task_group : NULL};
        char xv[64] = "";
        if (m->nvariants > 1) snprintf(xv, sizeof xv, " x %d embeddings", m->nvariants);
        rdml_info(ctx, "%s: %d subject(s) x %d selection(s)%s x %lld fold(s) = %lld tasks on %d "
                  "rank(s)%s", m->stage, nids, nsel, xv, (long long)nf, (long long)ntasks, ctx->nranks,
                  array_count ? " (array share)" : "");
        rc = rdml_farm_run(ctx, ex->comm, ntasks, sweep_task, &s, &fo, recs, &fst);
        if (s.cached >= 0) m->release(s.group);
        s.cached = -1;
        rdml_h5_abort(&s.hself); /* read-only: closing discards nothing */
        rc = rdml_agree(ctx, ex->comm, rc);
        double busy = fst.busy_seconds, tot = 0;
        MPI_Allreduce(&busy, &tot, 1, MPI_DOUBLE, MPI_SUM, ex->comm);
        char grouped[96] = "";
        if (fst.grouped)
            snprintf(grouped, sizeof grouped, ", %lld of them on groups of ranks",
                     (long long)fst.grouped);
        if (!rc)
            rdml_info(ctx, "%s: %lld tasks: %lld from the journal, %lld computed%s in %.1f s (%.0f%% "
                      "of the ranks' time in tasks)", m->stage, (long long)fst.selected,
                      (long long)fst.journaled, (long long)fst.computed, grouped, fst.seconds,
                      fst.seconds > 0 ? 100.0 * tot / (fst.seconds * ctx->nranks) : 0.0);
        /* a rank is idle while it waits in the farm without a task */
        idle = fst.seconds - fst.busy_seconds;
        if (idle < 0) idle = 0;
    }
    int nr = 1;
    MPI_Comm_size(ex->comm, &nr);
    double *busyv = calloc((size_t)nr, sizeof *busyv), stage_s = 0;
    if (!rc && !busyv) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
    rc = rdml_agree(ctx, ex->comm, rc);
    if (!rc && array_count) busy_figure(ctx, ex->comm, m->stage, t0, idle, busyv, &stage_s);
    if (!rc && array_count) {
        rdml_info(ctx, "%s: array share %lld of %lld done; its records are in %s (the merge job, "
                  "`rdmlearn run` without --array, writes the results)", m->stage,
                  (long long)array_index, (long long)array_count, jdir);
        goto out;
    }
    /* the write: collective, group by group */
    if (!rc) rc = rdml_exp_results_open(ex, m->stage, &h);
    for (int g = 0; g < s.ngroups && !rc; g++) {
        memset(s.group, 0, m->group_size);
        rc = prepare(ctx, ex->comm, &s, h, g, s.group);
        if (!rc) rc = m->write(ctx, h, group_opts(&s, g), s.group, recs + s.gfirst[g]);
        if (rc) rdml_ctx_prefix(ctx, "subj%02d %s%s", s.gsubj[g], s.gname[g], group_emb(&s, g));
        m->release(s.group);
    }
    if (!rc && m->finish) rc = m->finish(ctx, h, m->opts);
    if (!rc) rc = mark_pairs_owner(ctx, h, m, phash);
    if (!rc) busy_figure(ctx, ex->comm, m->stage, t0, idle, busyv, &stage_s);
    if (!rc && m->metrics) rc = write_table(ctx, h, m, &s, recs, nf, busyv, nr, stage_s);
    if (!rc) {
        rc = rdml_exp_results_commit(ctx, &h, m->stage);
    } else {
        rdml_h5_abort(&h);
    }
    /* the CSV tables follow the committed file (rewritten from it, all tables) */
    if (!rc && m->metrics) rc = rdml_exp_tables_sync(ex);
    /* the results are safe in run.output: the records are no longer needed */
    if (!rc && ctx->rank == 0)
        for (int64_t t = 0; t < ntasks; t++) rdml_journal_remove(ctx, j, keys[t]);
out:
    free(busyv);
    if (j) rdml_journal_close(&j, ex->comm, !rc && !array_count);
    rdml_recs_free(recs, ntasks);
    for (int64_t t = 0; keys && t < ntasks; t++) free(keys[t]);
    free(keys);
    for (int g = 0; s.gname && g < s.ngroups; g++) free(s.gname[g]);
    free(s.gname);
    free(s.gsubj);
    free(s.gfirst);
    free(s.group);
    rdml_exp_free_list(sels, nsel);
    free(ids);
    rdml_dataset_close(&ds);
    return rc;
}
