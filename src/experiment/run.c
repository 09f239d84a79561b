/* `rdmlearn run JOB.ini`: the whole pipeline from one job file. The stages of run.stages run
 * in the fixed order rdm -> embed -> encode -> svm -> train -> evaluate -> report (in a job
 * with run.experiments: the job's rdm and embed, then each experiment's stages, then the
 * job's encode, evaluate and report, which see every experiment's embeddings); each is
 * skipped when run.output already holds its output made from the same configuration and input files (the stage's
 * stamp, rdml_exp_stage_stamp, stored by every stage in /meta/done), unless --force. The
 * model stages are sweeps on the task farm with a journal (sweep.c), so a run killed at any
 * moment resumes where it stopped; SIGTERM stops any stage at its next task, batch or panel
 * boundary, no further stage starts, and the exit status is "cancelled" (10). SLURM arrays: `--until embed` prepares, `--array I/N`
 * runs one share of the model tasks into the journal without writing run.output, and a plain
 * run merges. Before anything, the run takes the lock on run.output (rdml_exp_output_lock:
 * a second command on the same output is refused, naming this one), then rank 0 removes
 * temporary results files a killed run left beside run.output (results.h5.tmp-*; the
 * committed file is never touched) and brings the CSV tables up to date with it. Leaves out:
 * several train models per run (train.model is one model; use one job per model). */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exp_priv.h"
#include "rdml/h5.h"
#include "rdml/mpiutil.h"
#include "rdml/report.h"


static const char *const stage_order[] = {"rdm",   "embed",    "encode", "svm",
                                          "train", "evaluate", "report"};
enum { NSTAGES = 7 };

/* The index of a stage in stage_order. */
static int stage_index(const char *name) {
    for (int s = 0; s < NSTAGES; s++)
        if (strcmp(stage_order[s], name) == 0) return s;
    return -1;
}

/* want[s] = 1 for each stage of cfg's run.stages (the others 0). */
static int stage_mask(rdml_ctx *ctx, const rdml_config *cfg, int want[NSTAGES]) {
    char **items = NULL;
    int nitems = 0;
    RDML_TRY(rdml_config_list(ctx, cfg, "run", "stages", &items, &nitems));
    for (int s = 0; s < NSTAGES; s++) want[s] = 0;
    for (int i = 0; i < nitems; i++)
        for (int s = 0; s < NSTAGES; s++)
            if (strcmp(items[i], stage_order[s]) == 0) want[s] = 1;
    free(items);
    return RDML_OK;
}

/* Collective. Is stage's output in run.output made from the current configuration? (The
 * registry /meta/done holds one attribute per stage key with the config hash.) */
static int stage_current(rdml_exp *ex, const char *stage, const char *hex, int *current) {
    rdml_ctx *ctx = ex->ctx;
    const char *output;
    *current = 0;
    RDML_TRY(rdml_config_str(ctx, ex->cfg, "run", "output", &output));
    int exists = 0;
    if (ctx->rank == 0) {
        struct stat st;
        exists = stat(output, &st) == 0;
    }
    MPI_Bcast(&exists, 1, MPI_INT, 0, ex->comm);
    if (!exists) return RDML_OK;
    rdml_h5 *h = NULL;
    int rc = rdml_h5_open(ctx, ex->comm, output, 0, &h);
    if (rc) return rdml_ctx_prefix(ctx, "reading the stages done so far");
    char key[512];
    rdml_exp_stage_key(ex->cfg, stage, key, sizeof key);
    int found = 0;
    rc = rdml_h5_exists(ctx, h, "/meta/done", &found);
    char *v = NULL;
    if (!rc && found && rdml_h5_get_attr_str(ctx, h, "/meta/done", key, &v) == RDML_OK && v)
        *current = strcmp(v, hex) == 0;
    rdml_ctx_clear(ctx); /* no such attribute: not done */
    free(v);
    rdml_h5_abort(&h);
    return rc;
}

/* The stages of ex->cfg's run.stages up to `until` (report excluded: the caller runs it
 * once at the end). */
static int run_stages(rdml_exp *ex, const char *label, const int *job_want, int until,
                      int64_t aidx, int64_t acount, int *ran_any) {
    rdml_ctx *ctx = ex->ctx;
    const char *output, *root;
    RDML_TRY(rdml_config_str(ctx, ex->cfg, "run", "output", &output));
    RDML_TRY(rdml_config_str(ctx, ex->cfg, "data", "root", &root));
    int want[NSTAGES];
    RDML_TRY(stage_mask(ctx, ex->cfg, want));
    for (int s = 0; s < NSTAGES; s++) want[s] = want[s] && job_want[s];
    struct stat st;
    if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode))
        return RDML_FAIL(ctx, RDML_EIO, "%s%sdata.root = %s: no such directory (hint: point "
                         "data.root at the Algonauts folder holding subj01..., or make a "
                         "synthetic one with `rdmlearn synth %s`)", label ? label : "",
                         label ? ": " : "", root, root);
    for (int s = 0; s <= until && s < 5; s++) {
        if (!want[s]) continue;
        const char *name = stage_order[s];
        char hex[17];
        RDML_TRY(rdml_exp_stage_stamp(ex, name, hex)); /* config and input files */
        int current = 0;
        RDML_TRY(stage_current(ex, name, hex, &current));
        if (acount) {
            /* an array element: the preparation must be done, and only model tasks run */
            if (s == 2) continue; /* encode is no sweep: the merging run (no --array) runs it */
            if (s <= 1 && !current)
                return RDML_FAIL(ctx, RDML_EDATA, "run --array: stage %s is not done for this "
                                 "configuration in %s (hint: run `rdmlearn run JOB.ini --until "
                                 "embed` first; `rdmlearn submit --array` does)", name, output);
            if (s == 3) RDML_TRY(rdml_exp_svm_stage(ex, aidx, acount));
            if (s == 4) RDML_TRY(rdml_exp_train_stage(ex, aidx, acount));
            continue;
        }
        if (current && !ex->opts.force) {
            rdml_info(ctx, "run: %s%sstage %s is up to date in %s (config and inputs %s); skipped",
                      label ? label : "", label ? ": " : "", name, output, hex);
            /* records a command killed after its commit left behind */
            if (s >= 3) RDML_TRY(rdml_exp_journal_prune(ex, name, hex));
            continue;
        }
        /* a stop that came while the previous stage finished: do not start this one */
        int rc = rdml_stop_agree(ctx, ex->comm, RDML_OK, "before %s%sstage %s (the stages "
                                 "finished so far are kept in %s; hint: run the same command "
                                 "again to continue)", label ? label : "", label ? ": " : "",
                                 name, output);
        if (rc) return rc;
        rdml_info(ctx, "run: %s%sstage %s", label ? label : "", label ? ": " : "", name);
        double ts = rdml_now();
        switch (s) {
        case 0: rc = rdml_exp_rdm_stage(ex); break;
        case 1: rc = rdml_exp_embed_stage(ex); break;
        case 2: rc = rdml_exp_encode_stage(ex); break;
        case 3: rc = rdml_exp_svm_stage(ex, 0, 0); break;
        default: rc = rdml_exp_train_stage(ex, 0, 0); break;
        }
        if (rc) {
            if (label) return rdml_ctx_prefix(ctx, "%s: stage %s", label, name);
            return rdml_ctx_prefix(ctx, "stage %s", name);
        }
        *ran_any = 1;
        rdml_info(ctx, "run: %s%sstage %s done in %.1f s", label ? label : "", label ? ": " : "",
                  name, rdml_now() - ts);
    }
    return RDML_OK;
}

/* Collective. A configuration for one experiment: defaults, the job file, the experiment
 * file, then the command line's --config files and --set assignments. */
static int experiment_config(rdml_exp *ex, const char *job, const char *exp, rdml_config **out) {
    rdml_ctx *ctx = ex->ctx;
    RDML_TRY(rdml_config_create(ctx, out));
    int rc = rdml_config_load(ctx, *out, job);
    if (!rc) rc = rdml_config_load(ctx, *out, exp);
    for (int i = 0; i < ex->opts.ncfg_files && !rc; i++) rc = rdml_config_load(ctx, *out, ex->opts.cfg_files[i]);
    /* run.stages on the command line selects among the stages (see run_stages), it does not
     * replace the experiment's own list */
    for (int i = 0; i < ex->opts.nsets && !rc; i++)
        if (strncmp(ex->opts.sets[i], "run.stages", 10) != 0) rc = rdml_config_set(ctx, *out, ex->opts.sets[i]);
    if (!rc) rc = rdml_config_check_required(ctx, *out);
    if (rc) rdml_config_destroy(out);
    return rc;
}

int rdml_exp_run_job(rdml_exp *ex, const char *job) {
    rdml_ctx *ctx = ex->ctx;
    const char *output, *exps;
    RDML_TRY(rdml_config_str(ctx, ex->cfg, "run", "output", &output));
    RDML_TRY(rdml_config_str(ctx, ex->cfg, "run", "experiments", &exps));
    int job_want[NSTAGES];
    RDML_TRY(stage_mask(ctx, ex->cfg, job_want));
    const int want_report = job_want[stage_index("report")];
    const int want_evaluate = job_want[stage_index("evaluate")];
    int until = NSTAGES - 1;
    if (ex->opts.until) {
        until = -1;
        for (int s = 0; s < NSTAGES; s++)
            if (strcmp(ex->opts.until, stage_order[s]) == 0) until = s;
        if (until < 0)
            return RDML_FAIL(ctx, RDML_EUSAGE, "--until %s: not a stage (rdm, embed, encode, svm, "
                             "train, evaluate, report)", ex->opts.until);
    }
    int64_t aidx = 0, acount = 0;
    if (ex->opts.array_count > 0) {
        aidx = ex->opts.array_index;
        acount = ex->opts.array_count;
        if (aidx < 0 || aidx >= acount)
            return RDML_FAIL(ctx, RDML_EUSAGE, "array share %lld of %lld: expected 0 <= index < "
                             "count", (long long)aidx, (long long)acount);
    }
    /* the job owns its output folder: create it (with parents) like the journal's */
    int rc0 = RDML_OK;
    if (ctx->rank == 0) {
        char dir[4096];
        rdml_strlcpy(dir, output, sizeof dir);
        char *d = dirname(dir);
        for (char *p = d + 1; *p && !rc0; p++)
            if (*p == '/') {
                *p = 0;
                if (mkdir(d, 0777) != 0 && errno != EEXIST)
                    rc0 = RDML_FAIL(ctx, RDML_EIO, "run.output = %s: cannot create folder %s: %s",
                                    output, d, strerror(errno));
                *p = '/';
            }
        if (!rc0 && mkdir(d, 0777) != 0 && errno != EEXIST)
            rc0 = RDML_FAIL(ctx, RDML_EIO, "run.output = %s: cannot create folder %s: %s (hint: "
                            "point run.output at a writable place)", output, d, strerror(errno));
    }
    RDML_TRY(rdml_agree(ctx, ex->comm, rc0));
    /* run.output is this run's until it ends (array shares only read it: a shared lock);
     * only then are the temporary files beside it certainly a dead command's */
    RDML_TRY(rdml_exp_output_lock(ex, acount != 0));
    if (!acount) {
        if (ctx->rank == 0) {
            rdml_exp_remove_tmp(output);
            rdml_h5_remove_orphans(output); /* side files of a command killed before its commit */
        }
        RDML_TRY(rdml_exp_tables_sync(ex)); /* a command killed before writing them */
    }

    double t0 = rdml_now();
    int ran_any = 0, rc = RDML_OK;
    if (!*exps) {
        rc = run_stages(ex, NULL, job_want, until, aidx, acount, &ran_any);
    } else {
        /* several experiments, each the job plus its own file, in order */
        char *list = rdml_strdup(ctx, exps);
        if (!list) return ctx->code;
        char dir[4096];
        rdml_strlcpy(dir, job, sizeof dir);
        char *slash = strrchr(dir, '/');
        if (slash) slash[1] = 0;
        else dir[0] = 0;
        const rdml_config *base = ex->cfg;
        /* pass 0 reads and validates every experiment file before anything runs (a typo in
         * the last one must not surface after the others' hours of work); then the shared
         * stages run from the job's own configuration; pass 1 runs the experiments in order */
        for (int pass = 0; pass < 2 && !rc; pass++) {
            if (pass == 1) {
                int shared[NSTAGES] = {job_want[0], job_want[1], 0, 0, 0, 0, 0};
                rc = run_stages(ex, NULL, shared, until, aidx, acount, &ran_any);
                rdml_strlcpy(list, exps, strlen(exps) + 1); /* strtok_r cut it in pass 0 */
            }
            for (char *save = NULL, *it = strtok_r(list, ",", &save); it && !rc;
                 it = strtok_r(NULL, ",", &save)) {
                while (*it == ' ' || *it == '\t') it++;
                char *e = it + strlen(it);
                while (e > it && (e[-1] == ' ' || e[-1] == '\t')) *--e = 0;
                if (!*it) continue;
                char path[8300], label[300];
                rdml_config_locate(dir, it, path, sizeof path); /* then the data folder */
                const char *b = strrchr(it, '/');
                snprintf(label, sizeof label, "%s", b ? b + 1 : it);
                char *dot = strrchr(label, '.');
                if (dot) *dot = 0;
                rdml_config *cfg = NULL;
                rc = rdml_agree(ctx, ex->comm, experiment_config(ex, job, path, &cfg));
                /* the job's lock covers the job's run.output only */
                const char *eout = output;
                if (!rc && (rc = rdml_config_str(ctx, cfg, "run", "output", &eout)) == RDML_OK &&
                    strcmp(eout, output) != 0)
                    rc = RDML_FAIL(ctx, RDML_ECONFIG, "run.output = %s differs from the job's %s "
                                   "(hint: the experiments of a job write into the job's "
                                   "run.output; remove run.output from %s, or run it as a job of "
                                   "its own)", eout, output, path);
                if (rc) {
                    rdml_config_destroy(&cfg);
                    rdml_ctx_prefix(ctx, pass ? "experiment %s" : "experiment %s (nothing was run)", it);
                    break;
                }
                if (pass == 1) {
                    ex->cfg = cfg;
                    /* encode is the job's: it runs once after the experiments */
                    int exp_want[NSTAGES];
                    memcpy(exp_want, job_want, sizeof exp_want);
                    exp_want[2] = 0;
                    rc = run_stages(ex, label, exp_want, until, aidx, acount, &ran_any);
                    ex->cfg = base;
                }
                rdml_config_destroy(&cfg);
            }
        }
        free(list);
        /* encode, from the job's configuration, after the experiments: their embed stages may
         * add embeddings (several networks, one per experiment) that encode.embeddings = all
         * covers; its stamp includes those embeddings' stamps (stamp.c) */
        if (!rc && job_want[2]) {
            int enc[NSTAGES] = {0, 0, 1, 0, 0, 0, 0};
            rc = run_stages(ex, NULL, enc, until, aidx, acount, &ran_any);
        }
    }
    if (rc) return rc;
    /* evaluate compares every experiment's models: once, after all of them, from the job's
     * configuration; like the report it reads only run.output, so it reruns whenever a stage
     * before it ran */
    const int ev = stage_index("evaluate");
    if (want_evaluate && until >= ev && !acount) {
        char hex[17];
        int current = 0;
        RDML_TRY(rdml_exp_stage_stamp(ex, "evaluate", hex));
        RDML_TRY(stage_current(ex, "evaluate", hex, &current));
        if (current && !ran_any && !ex->opts.force) {
            rdml_info(ctx, "run: stage evaluate is up to date in %s (config %s); skipped", output, hex);
        } else {
            RDML_TRY(rdml_stop_agree(ctx, ex->comm, RDML_OK, "before stage evaluate (the stages "
                                     "finished so far are kept in %s; hint: run the same command "
                                     "again to continue)", output));
            rdml_info(ctx, "run: stage evaluate");
            double ts = rdml_now();
            rc = rdml_exp_evaluate_stage(ex);
            if (rc) return rdml_ctx_prefix(ctx, "stage evaluate");
            ran_any = 1;
            rdml_info(ctx, "run: stage evaluate done in %.1f s", rdml_now() - ts);
        }
    }
    if (want_report && until >= stage_index("report") && !acount) {
        char hex[17];
        int current = 0;
        RDML_TRY(rdml_exp_stage_stamp(ex, "report", hex));
        RDML_TRY(stage_current(ex, "report", hex, &current));
        /* the report is cheap and reads everything: redo it whenever anything ran */
        if (current && !ran_any && !ex->opts.force) {
            rdml_info(ctx, "run: the report is up to date");
        } else {
            RDML_TRY(rdml_stop_agree(ctx, ex->comm, RDML_OK, "before stage report (the stages "
                                     "are kept in %s; hint: run the same command again to "
                                     "write the report)", output));
            rdml_info(ctx, "run: stage report");
            rc = rdml_report_write(ctx, ex->comm, output, NULL);
            if (!rc) rc = rdml_exp_mark_stage(ex, "report");
            if (rc) return rdml_ctx_prefix(ctx, "stage report");
        }
    }
    rdml_info(ctx, "run: finished in %.1f s; results in %s", rdml_now() - t0, output);
    return RDML_OK;
}
