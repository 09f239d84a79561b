/* `rdmlearn submit JOB.ini [--array N] [--dry-run]`: turns a job file into SLURM batch scripts
 * and submits them. It resolves the job as `rdmlearn run` would (JOB.ini, --config, --set) to
 * read [slurm] and run.output, records that resolution in <script_dir>/resolved.ini, fills the
 * sbatch template (the same text as slurm/rdmlearn.sbatch.in: resources from [slurm], srun
 * --mpi=... or mpirun, one BLAS thread per rank, the time-limit warning and SIGTERM passed on
 * to the ranks, self-requeue, a log per job) once per job, writes submit.sh (the driver of
 * slurm/submit.sh.in that chains the jobs with --dependency=afterok), and unless --dry-run
 * runs `sbatch --parsable` for each script, each job depending on the previous one. Every job
 * runs `rdmlearn run JOB.ini` with the same --config/--set (absolute paths, from the submit
 * folder), so it resolves exactly as a direct run. A single submission is one job; an array
 * submission is three: prepare (`run --until embed`), an N-element array (`run --array I/N`)
 * and a merge (`run`). Serial: every rank checks the options, rank 0 writes and submits.
 * Left out: array concurrency limits, heterogeneous jobs, watching the queue (squeue does
 * that), site module systems (slurm.setup runs whatever the site needs), and freezing JOB.ini
 * (the jobs read it when they start).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <spawn.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "rdml/strbuf.h"
#include "rdml/dataset.h"

extern char **environ;

/* The templates, kept identical to slurm/rdmlearn.sbatch.in and slurm/submit.sh.in (the test
 * tests/cli/test_submit.sh fills those files by hand and compares). Placeholders: @NAME@ in a
 * line is replaced by a value; a line holding only @SBATCH@ or @SETUP@ becomes zero or more
 * lines. */
static const char sbatch_template[] =
    "#!/bin/bash\n"
    "# @ROLE@ job of an rdmlearn run, written by `rdmlearn submit` from slurm/rdmlearn.sbatch.in.\n"
    "# Submit it with sbatch, or run ./submit.sh in this folder to submit every job in order.\n"
    "@SBATCH@\n"
    "\n"
    "# ---- filled in by rdmlearn submit ----\n"
    "RDMLEARN=@RDMLEARN@\n"
    "JOB=@JOB@\n"
    "WORKDIR=@WORKDIR@\n"
    "LAUNCHER=@LAUNCHER@\n"
    "SRUN_MPI=@SRUN_MPI@\n"
    "MPIRUN=@MPIRUN@\n"
    "THREADS=@THREADS@\n"
    "REQUEUE=@REQUEUE@\n"
    "RDML_ARGS=(@ARGS@)\n"
    "\n"
    "# Relative paths in the job file (run.output, data.root) start where `rdmlearn submit` ran.\n"
    "cd \"$WORKDIR\" || { echo \"rdmlearn job: cannot enter $WORKDIR\" >&2; exit 1; }\n"
    "@SETUP@\n"
    "# One BLAS/OpenMP thread per rank unless run.threads says otherwise: the ranks fill the cores.\n"
    "export OPENBLAS_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS\n"
    "# srun steps do not inherit the job's --cpus-per-task by themselves (Slurm 22.05 and later).\n"
    "if [[ -n \"${SLURM_CPUS_PER_TASK:-}\" ]]; then export SRUN_CPUS_PER_TASK=$SLURM_CPUS_PER_TASK; fi\n"
    "\n"
    "ntasks=${SLURM_NTASKS:-1}\n"
    "case $LAUNCHER in\n"
    "  srun) launch=(srun --mpi=\"$SRUN_MPI\" --kill-on-bad-exit=1) ;;\n"
    "  mpirun)\n"
    "    launch=(\"$MPIRUN\" -n \"$ntasks\")\n"
    "    if [[ \"${SLURM_CPUS_PER_TASK:-1}\" -gt 1 ]]; then\n"
    "      launch+=(--map-by \"slot:PE=$SLURM_CPUS_PER_TASK\" --bind-to core)\n"
    "    fi ;;\n"
    "  *) echo \"rdmlearn job: unknown launcher \\\"$LAUNCHER\\\" (srun or mpirun)\" >&2; exit 1 ;;\n"
    "esac\n"
    "\n"
    "stamp() { date -u +%Y-%m-%dT%H:%M:%SZ; }\n"
    "echo \"rdmlearn job: $(stamp) job ${SLURM_JOB_ID:-?}${SLURM_ARRAY_TASK_ID:+ (array index $SLURM_ARRAY_TASK_ID)} on ${SLURM_JOB_NODELIST:-$(hostname)}: $ntasks rank(s) x $THREADS thread(s)\"\n"
    "echo \"rdmlearn job: ${launch[*]} $RDMLEARN ${RDML_ARGS[*]}\"\n"
    "\n"
    "# Stopping early. slurm.signal seconds before the time limit SLURM sends SIGUSR1 to this shell\n"
    "# only (--signal=B:USR1@N); srun and mpirun forward SIGUSR1 to every rank on every node, and\n"
    "# rdmlearn takes it like SIGTERM: the ranks finish the task in progress, record it in the\n"
    "# journal and exit with status 10, and the job may requeue itself (below). On scancel or\n"
    "# preemption SLURM sends SIGTERM to every process of the job itself, so it is not passed on\n"
    "# again (a second SIGTERM would stop rdmlearn at once).\n"
    "child=\"\" stop=\"\"\n"
    "on_usr1() {\n"
    "  stop=timelimit\n"
    "  echo \"rdmlearn job: $(stamp) time limit near (SIGUSR1): passing it on to the ranks\"\n"
    "  if [[ -n \"$child\" ]]; then kill -USR1 \"$child\" 2>/dev/null; fi\n"
    "}\n"
    "trap on_usr1 USR1\n"
    "trap 'stop=term; echo \"rdmlearn job: $(stamp) SIGTERM (scancel or preemption)\"' TERM\n"
    "\"${launch[@]}\" \"$RDMLEARN\" \"${RDML_ARGS[@]}\" &\n"
    "child=$!\n"
    "if [[ $stop == timelimit ]]; then kill -USR1 \"$child\" 2>/dev/null; fi\n"
    "wait \"$child\"\n"
    "rc=$?\n"
    "# A trapped signal interrupts wait (status > 128) while the ranks still finish: wait again,\n"
    "# until wait answers 127 (the child's status was already collected).\n"
    "while [[ -n \"$stop\" && $rc -gt 128 ]]; do\n"
    "  wait \"$child\" 2>/dev/null\n"
    "  r=$?\n"
    "  if [[ $r -eq 127 ]]; then break; fi\n"
    "  rc=$r\n"
    "done\n"
    "echo \"rdmlearn job: $(stamp) exit status $rc\"\n"
    "restarts=${SLURM_RESTART_COUNT:-0}\n"
    "if [[ $stop == timelimit && $rc -eq 10 && -n \"${SLURM_JOB_ID:-}\" ]]; then\n"
    "  if ((restarts < REQUEUE)); then\n"
    "    echo \"rdmlearn job: $(stamp) requeueing job $SLURM_JOB_ID (restart $((restarts + 1)) of at most $REQUEUE)\"\n"
    "    scontrol requeue \"$SLURM_JOB_ID\" && exit 0\n"
    "  else\n"
    "    echo \"rdmlearn job: stopped at the time limit after $restarts restart(s); submit again to continue\"\n"
    "  fi\n"
    "fi\n"
    "exit $rc\n";

static const char driver_template[] =
    "#!/bin/bash\n"
    "# Submits the job(s) of this folder in order, each waiting for the previous one to succeed\n"
    "# (--dependency=afterok), and prints their ids. Written by `rdmlearn submit` from\n"
    "# slurm/submit.sh.in: run it to submit by hand, e.g. after `rdmlearn submit --dry-run`.\n"
    "# The sbatch program: $RDML_SBATCH, else sbatch from PATH.\n"
    "set -euo pipefail\n"
    "SBATCH=${RDML_SBATCH:-sbatch}\n"
    "prev=\n"
    "for script in @SCRIPTS@; do\n"
    "  out=$(\"$SBATCH\" --parsable ${prev:+\"--dependency=afterok:$prev\"} \"$script\")\n"
    "  prev=${out%%;*}\n"
    "  echo \"submitted $(basename \"$script\") as job $prev\"\n"
    "done\n";

/* A word for bash: as is when it holds only safe characters, else in single quotes. */
static void sb_quote(rdml_strbuf *b, const char *s) {
    int safe = *s != '\0';
    for (const char *p = s; *p && safe; p++)
        safe = isalnum((unsigned char)*p) || strchr("_-./,:=+@%", *p);
    if (safe) {
        rdml_strbuf_add(b, s);
        return;
    }
    rdml_strbuf_add(b, "'");
    for (const char *p = s; *p; p++) {
        if (*p == '\'') rdml_strbuf_add(b, "'\\''");
        else rdml_strbuf_addn(b, p, 1);
    }
    rdml_strbuf_add(b, "'");
}

/* ---- the options of [slurm] ---- */

typedef struct submit_opts {
    const char *partition, *account, *qos, *time, *mem, *launcher, *srun_mpi, *mpirun;
    const char *setup, *extra, *job_name, *script_dir, *binary, *output;
    int64_t nodes, ntasks, array_ntasks, cpus_per_task, signal, max_requeue, threads;
    int requeue;
} submit_opts;

static int read_opts(rdml_ctx *ctx, const rdml_config *cfg, submit_opts *o) {
    static const struct {
        const char *key;
        size_t off;
    } strs[] = {
        {"partition", offsetof(submit_opts, partition)}, {"account", offsetof(submit_opts, account)},
        {"qos", offsetof(submit_opts, qos)},             {"time", offsetof(submit_opts, time)},
        {"mem", offsetof(submit_opts, mem)},             {"launcher", offsetof(submit_opts, launcher)},
        {"srun_mpi", offsetof(submit_opts, srun_mpi)},   {"mpirun", offsetof(submit_opts, mpirun)},
        {"setup", offsetof(submit_opts, setup)},         {"extra", offsetof(submit_opts, extra)},
        {"job_name", offsetof(submit_opts, job_name)},   {"script_dir", offsetof(submit_opts, script_dir)},
        {"binary", offsetof(submit_opts, binary)},
    };
    static const struct {
        const char *key;
        size_t off;
    } ints[] = {
        {"nodes", offsetof(submit_opts, nodes)},
        {"ntasks", offsetof(submit_opts, ntasks)},
        {"array_ntasks", offsetof(submit_opts, array_ntasks)},
        {"cpus_per_task", offsetof(submit_opts, cpus_per_task)},
        {"signal", offsetof(submit_opts, signal)},
        {"max_requeue", offsetof(submit_opts, max_requeue)},
    };
    memset(o, 0, sizeof *o);
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        RDML_TRY(rdml_config_str(ctx, cfg, "slurm", strs[i].key,
                                 (const char **)((char *)o + strs[i].off)));
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        RDML_TRY(rdml_config_int(ctx, cfg, "slurm", ints[i].key,
                                 (int64_t *)((char *)o + ints[i].off)));
    RDML_TRY(rdml_config_bool(ctx, cfg, "slurm", "requeue", &o->requeue));
    RDML_TRY(rdml_config_int(ctx, cfg, "run", "threads", &o->threads));
    RDML_TRY(rdml_config_str(ctx, cfg, "run", "output", &o->output));
    return RDML_OK;
}

static int all_digits(const char *s, size_t n) {
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i])) return 0;
    return 1;
}

/* sbatch --time: MINUTES, MINUTES:SECONDS, H:M:S, D-H, D-H:M, D-H:M:S, or unlimited. */
static int time_ok(const char *v) {
    if (strcasecmp(v, "unlimited") == 0 || strcasecmp(v, "infinite") == 0) return 1;
    const char *p = v, *dash = strchr(v, '-');
    if (dash) {
        if (!all_digits(v, (size_t)(dash - v))) return 0;
        p = dash + 1;
    }
    int fields = 0;
    int nonzero = dash && strtol(v, NULL, 10) > 0;
    while (1) {
        size_t n = strcspn(p, ":");
        if (!all_digits(p, n) || n > 9) return 0;
        if (strtol(p, NULL, 10) > 0) nonzero = 1;
        fields++;
        if (p[n] == '\0') break;
        p += n + 1;
    }
    return fields <= 3 && nonzero;
}

/* sbatch --mem: a whole number with an optional unit K, M, G or T. */
static int mem_ok(const char *v) {
    size_t n = strlen(v);
    if (n > 0 && strchr("KMGTkmgt", v[n - 1])) n--;
    return all_digits(v, n) && n < 16;
}

/* Names that go into an #SBATCH line: no spaces or shell/pattern characters. */
static int name_ok(const char *v, const char *extra_chars) {
    if (*v == '-') return 0;
    for (const char *p = v; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("_.+-", *p) && !strchr(extra_chars, *p))
            return 0;
    return 1;
}

/* Paths written into #SBATCH lines and --output patterns. */
static int path_ok(const char *v) {
    for (const char *p = v; *p; p++)
        if (isspace((unsigned char)*p) || strchr("\"'`$\\%;#", *p) || iscntrl((unsigned char)*p))
            return 0;
    return 1;
}

/* Options rdmlearn submit sets itself and slurm.extra must not repeat. */
static const char *const reserved_opts[] = {
    "--array", "-a", "--dependency", "-d", "--output", "-o", "--error", "-e", "--parsable",
    "--chdir", "-D", "--job-name", "-J", "--wrap"};

static int check_extra(rdml_ctx *ctx, const char *extra) {
    const char *p = extra;
    while (*p) {
        while (isspace((unsigned char)*p)) p++;
        if (!*p) break;
        size_t n = 0;
        while (p[n] && !isspace((unsigned char)p[n])) n++;
        if (p[0] != '-')
            return RDML_FAIL(ctx, RDML_ECONFIG,
                             "slurm.extra: \"%.*s\" is not an sbatch option (each item must "
                             "start with -, e.g. extra = --constraint=skylake --mail-type=END)",
                             (int)n, p);
        for (size_t r = 0; r < sizeof reserved_opts / sizeof reserved_opts[0]; r++) {
            size_t rl = strlen(reserved_opts[r]);
            if (n >= rl && strncmp(p, reserved_opts[r], rl) == 0 &&
                (n == rl || p[rl] == '=' || (rl == 2 && p[1] != '-')))
                return RDML_FAIL(ctx, RDML_ECONFIG,
                                 "slurm.extra: \"%.*s\" is set by rdmlearn submit itself (job "
                                 "name, log, folder, array and dependencies); remove it", (int)n, p);
        }
        for (size_t i = 0; i < n; i++)
            if (strchr("\"'`$\\;#", p[i]))
                return RDML_FAIL(ctx, RDML_ECONFIG,
                                 "slurm.extra: \"%.*s\" holds a quote or shell character; "
                                 "write plain options such as --constraint=skylake", (int)n, p);
        p += n;
    }
    return RDML_OK;
}

static int check_opts(rdml_ctx *ctx, const submit_opts *o) {
    const char *hint = "letters, digits and _ . + -";
    if (!name_ok(o->partition, ","))
        return RDML_FAIL(ctx, RDML_ECONFIG, "slurm.partition = \"%s\": not a partition name "
                         "(%s; several partitions separated by commas)", o->partition, hint);
    if (!name_ok(o->account, ""))
        return RDML_FAIL(ctx, RDML_ECONFIG, "slurm.account = \"%s\": not an account name (%s)",
                         o->account, hint);
    if (!name_ok(o->qos, ""))
        return RDML_FAIL(ctx, RDML_ECONFIG, "slurm.qos = \"%s\": not a QOS name (%s)", o->qos,
                         hint);
    if (!name_ok(o->job_name, ""))
        return RDML_FAIL(ctx, RDML_ECONFIG, "slurm.job_name = \"%s\": not a job name (%s)",
                         o->job_name, hint);
    if (!time_ok(o->time))
        return RDML_FAIL(ctx, RDML_ECONFIG,
                         "slurm.time = \"%s\": not a time limit (write MINUTES, HH:MM:SS or "
                         "D-HH:MM:SS, e.g. 90, 02:00:00 or 1-12:00:00; it must be > 0)", o->time);
    if (*o->mem && !mem_ok(o->mem))
        return RDML_FAIL(ctx, RDML_ECONFIG,
                         "slurm.mem = \"%s\": not a memory size (a whole number with an "
                         "optional unit K, M, G or T, e.g. 16G; empty for the partition default)",
                         o->mem);
    if (o->ntasks < o->nodes)
        return RDML_FAIL(ctx, RDML_ECONFIG,
                         "slurm.ntasks = %lld is less than nodes = %lld: every node needs at "
                         "least one MPI rank (raise ntasks or lower nodes)",
                         (long long)o->ntasks, (long long)o->nodes);
    if (strcmp(o->launcher, "srun") == 0 && (!*o->srun_mpi || !name_ok(o->srun_mpi, "")))
        return RDML_FAIL(ctx, RDML_ECONFIG, "slurm.srun_mpi = \"%s\": not an MPI plugin name "
                         "(e.g. pmix, pmi2; `srun --mpi=list` shows the cluster's)", o->srun_mpi);
    if (strcmp(o->launcher, "mpirun") == 0 && (!*o->mpirun || !path_ok(o->mpirun)))
        return RDML_FAIL(ctx, RDML_ECONFIG, "slurm.mpirun = \"%s\": not a program name or "
                         "path without spaces or quotes", o->mpirun);
    if (*o->script_dir ? !path_ok(o->script_dir) : !path_ok(o->output))
        return RDML_FAIL(ctx, RDML_ECONFIG,
                         "%s = \"%s\": the script folder goes into #SBATCH lines, so it cannot "
                         "hold spaces, quotes or any of $ %% ; # \\ (set slurm.script_dir to "
                         "another folder)", *o->script_dir ? "slurm.script_dir" : "run.output",
                         *o->script_dir ? o->script_dir : o->output);
    return check_extra(ctx, o->extra);
}

/* ---- the job configuration ---- */

/* The job as `rdmlearn run JOB.ini --config ... --set ...` resolves it: the job file (and its
 * includes), then the --config files, then the --set overrides. */
static int resolve_job(rdml_cli *cli, const char *job, rdml_config **out) {
    rdml_ctx *ctx = &cli->ctx;
    rdml_config *cfg = NULL;
    RDML_TRY(rdml_config_create(ctx, &cfg));
    int rc = rdml_config_load(ctx, cfg, job);
    for (int i = 0; i < cli->ncfg_files && !rc; i++) rc = rdml_config_load(ctx, cfg, cli->cfg_files[i]);
    for (int i = 0; i < cli->nsets && !rc; i++) rc = rdml_config_set(ctx, cfg, cli->sets[i]);
    if (!rc) rc = rdml_config_check_required(ctx, cfg);
    if (rc) {
        rdml_config_destroy(&cfg);
        return rc;
    }
    *out = cfg;
    return RDML_OK;
}

/* ---- what the jobs will need, checked from here before anything is submitted ---- */

/* A file a backend reads: set, there, a file and readable. key is "embed.weights" etc. */
static int input_file(rdml_ctx *ctx, const char *key, const char *path, const char *need) {
    struct stat st;
    if (!*path)
        return RDML_FAIL(ctx, RDML_ECONFIG, "%s is empty: %s", key, need);
    if (stat(path, &st) != 0)
        return RDML_FAIL(ctx, RDML_EIO, "%s = %s: %s (%s; a relative path is taken from the "
                         "folder you submit from, where the jobs start)", key, path,
                         strerror(errno), need);
    if (S_ISDIR(st.st_mode))
        return RDML_FAIL(ctx, RDML_EIO, "%s = %s is a folder, not a file (%s)", key, path, need);
    if (access(path, R_OK) != 0)
        return RDML_FAIL(ctx, RDML_EIO, "%s = %s: cannot read it: %s", key, path,
                         strerror(errno));
    return RDML_OK;
}

/* The inputs one configuration's stages read: the dataset root and its subjects, the
 * embedding backend's weights or feature files, and that run.output is not a folder. Cheap
 * (a folder listing and a few stat calls), so a job that cannot start fails here instead of
 * after waiting in the queue. */
static int check_inputs(rdml_ctx *ctx, const rdml_config *cfg) {
    char **stages;
    int nst, want[5] = {0};
    static const char *const names[] = {"rdm", "embed", "svm", "train", "report"};
    RDML_TRY(rdml_config_list(ctx, cfg, "run", "stages", &stages, &nst));
    for (int i = 0; i < nst; i++)
        for (int s = 0; s < 5; s++) want[s] |= strcmp(stages[i], names[s]) == 0;
    free(stages);
    const char *root, *output, *backend;
    RDML_TRY(rdml_config_str(ctx, cfg, "data", "root", &root));
    RDML_TRY(rdml_config_str(ctx, cfg, "run", "output", &output));
    struct stat st;
    if (stat(output, &st) == 0 && S_ISDIR(st.st_mode))
        return RDML_FAIL(ctx, RDML_EIO, "run.output = %s is a folder, not a results file (hint: "
                         "name a file in it, e.g. %s/results.h5)", output, output);
    if (want[0] || want[1] || want[2] || want[3]) {
        rdml_dataset *ds = NULL;
        int *ids = NULL, nids = 0;
        int rc = rdml_dataset_open(ctx, root, &ds);
        if (rc) return rdml_ctx_prefix(ctx, "data.root");
        rc = rdml_exp_subjects(ctx, cfg, ds, &ids, &nids);
        for (int i = 0; i < nids && !rc; i++) {
            int found = 0;
            for (int k = 0; k < rdml_dataset_nsubjects(ds); k++)
                found |= rdml_dataset_subject_id(ds, k) == ids[i];
            if (!found) {
                char have[256] = "";
                for (int k = 0; k < rdml_dataset_nsubjects(ds); k++) {
                    size_t l = strlen(have);
                    snprintf(have + l, sizeof have - l, "%s%d", k ? ", " : "",
                             rdml_dataset_subject_id(ds, k));
                }
                rc = RDML_FAIL(ctx, RDML_EDATA, "data.subjects lists %d but %s has no subj%02d "
                               "folder (available: %s)", ids[i], root, ids[i], have);
            }
        }
        free(ids);
        rdml_dataset_close(&ds);
        RDML_TRY(rc);
    }
    if (!want[1]) return RDML_OK;
    RDML_TRY(rdml_config_str(ctx, cfg, "embed", "backend", &backend));
    const char *path;
    if (strcmp(backend, "clip-vit") == 0) {
        RDML_TRY(rdml_config_str(ctx, cfg, "embed", "weights", &path));
        RDML_TRY(input_file(ctx, "embed.weights", path, "embed.backend = clip-vit reads the "
                            "CLIP model.safetensors named by embed.weights; see docs/embed.md"));
    } else if (strcmp(backend, "file") == 0) {
        RDML_TRY(rdml_config_str(ctx, cfg, "embed", "file", &path));
        RDML_TRY(input_file(ctx, "embed.file", path, "embed.backend = file imports the N x D "
                            "features of embed.file (.npy or HDF5)"));
        RDML_TRY(rdml_config_str(ctx, cfg, "embed", "ids", &path));
        if (*path)
            RDML_TRY(input_file(ctx, "embed.ids", path, "embed.ids lists the NSD id of every "
                                "row of embed.file"));
    }
    return RDML_OK;
}

/* Everything `rdmlearn run JOB.ini` will read, as far as this node sees it: the job file and
 * its includes (read by resolve_job), each file of run.experiments with its inputs (resolved
 * as run resolves it: the job, the experiment, the --config files, the --set overrides but a
 * run.stages one), and the job's own inputs. */
static int check_job(rdml_cli *cli, const rdml_config *cfg, const char *job) {
    rdml_ctx *ctx = &cli->ctx;
    const char *exps;
    RDML_TRY(check_inputs(ctx, cfg));
    RDML_TRY(rdml_config_str(ctx, cfg, "run", "experiments", &exps));
    if (!*exps) return RDML_OK;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", job);
    char *slash = strrchr(dir, '/');
    if (slash) slash[1] = '\0';
    else dir[0] = '\0';
    char *list = rdml_strdup(ctx, exps);
    if (!list) return ctx->code;
    int rc = RDML_OK;
    for (char *save = NULL, *it = strtok_r(list, ",", &save); it && !rc;
         it = strtok_r(NULL, ",", &save)) {
        while (*it == ' ' || *it == '\t') it++;
        char *e = it + strlen(it);
        while (e > it && (e[-1] == ' ' || e[-1] == '\t')) *--e = '\0';
        if (!*it) continue;
        char path[PATH_MAX + 8];
        rdml_config_locate(dir, it, path, sizeof path); /* as run finds it */
        rdml_config *ecfg = NULL;
        rc = rdml_config_create(ctx, &ecfg);
        if (!rc) rc = rdml_config_load(ctx, ecfg, job);
        if (!rc) rc = rdml_config_load(ctx, ecfg, path);
        for (int i = 0; i < cli->ncfg_files && !rc; i++)
            rc = rdml_config_load(ctx, ecfg, cli->cfg_files[i]);
        for (int i = 0; i < cli->nsets && !rc; i++)
            if (strncmp(cli->sets[i], "run.stages", 10) != 0)
                rc = rdml_config_set(ctx, ecfg, cli->sets[i]);
        if (!rc) rc = rdml_config_check_required(ctx, ecfg);
        if (!rc) rc = check_inputs(ctx, ecfg);
        if (rc) rdml_ctx_prefix(ctx, "run.experiments: %s", it);
        rdml_config_destroy(&ecfg);
    }
    free(list);
    return rc;
}

/* A path made absolute from the current folder (jobs cd there anyway; absolute paths also
 * survive a user's cd in slurm.setup). */
static void absolute(const char *workdir, const char *path, char *out, size_t len) {
    if (path[0] == '/') snprintf(out, len, "%s", path);
    else snprintf(out, len, "%s/%s", workdir, path);
}

/* ---- files ---- */

static int make_dirs(rdml_ctx *ctx, const char *path) {
    char tmp[PATH_MAX];
    if (rdml_strlcpy(tmp, path, sizeof tmp) >= sizeof tmp)
        return RDML_FAIL(ctx, RDML_EIO, "path too long: %s", path);
    for (char *p = tmp + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
                return RDML_FAIL(ctx, RDML_EIO, "cannot create folder %s: %s (set "
                                 "slurm.script_dir to a folder you can write)", tmp,
                                 strerror(errno));
            *p = c;
            if (c == '\0') break;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return RDML_FAIL(ctx, RDML_EIO, "%s is not a folder (set slurm.script_dir to a folder)",
                         path);
    return RDML_OK;
}

/* Write under a temporary name, then rename: a script that exists is complete. */
static int write_file(rdml_ctx *ctx, const char *path, const char *text, mode_t mode) {
    char tmp[PATH_MAX + 16];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return RDML_FAIL(ctx, RDML_EIO, "cannot write %s: %s", tmp, strerror(errno));
    int bad = fputs(text, f) < 0;
    bad |= fclose(f) != 0;
    if (bad || chmod(tmp, mode) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        return RDML_FAIL(ctx, RDML_EIO, "cannot write %s: %s", path, strerror(e));
    }
    return RDML_OK;
}

/* ---- the templates ---- */

typedef struct subst {
    const char *name; /* without the @s */
    const char *value;
} subst;

static void render(rdml_strbuf *out, const char *tmpl, const subst *subs, int nsubs) {
    for (const char *line = tmpl; *line;) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) + 1 : strlen(line);
        const subst *whole = NULL;
        for (int i = 0; i < nsubs; i++) {
            size_t k = strlen(subs[i].name);
            if (n == k + 3 && line[0] == '@' && strncmp(line + 1, subs[i].name, k) == 0 &&
                line[k + 1] == '@')
                whole = &subs[i];
        }
        if (whole) { /* a line of its own: zero or more lines */
            rdml_strbuf_add(out, whole->value);
            if (*whole->value && whole->value[strlen(whole->value) - 1] != '\n') rdml_strbuf_add(out, "\n");
        } else {
            for (size_t i = 0; i < n; i++) {
                const subst *hit = NULL;
                if (line[i] == '@') {
                    for (int s = 0; s < nsubs && !hit; s++) {
                        size_t k = strlen(subs[s].name);
                        if (i + k + 1 < n && strncmp(line + i + 1, subs[s].name, k) == 0 &&
                            line[i + k + 1] == '@')
                            hit = &subs[s];
                    }
                }
                if (hit) {
                    rdml_strbuf_add(out, hit->value);
                    i += strlen(hit->name) + 1;
                } else {
                    rdml_strbuf_addn(out, line + i, 1);
                }
            }
        }
        line += n;
    }
}

/* One job of the submission. */
typedef struct job_spec {
    const char *role;  /* "single", "prepare", "array", "merge" */
    const char *file;  /* script file name in the script folder */
    const char *log;   /* log file pattern in the script folder */
    const char *args;  /* rdmlearn's arguments after `run job.ini`, shell text */
    int64_t nodes, ntasks, array_n;
} job_spec;

static void sbatch_lines(rdml_strbuf *b, const submit_opts *o, const job_spec *j, const char *name,
                         const char *dir, const char *workdir) {
    rdml_strbuf_printf(b, "#SBATCH --job-name=%s\n", name);
    rdml_strbuf_printf(b, "#SBATCH --output=%s/%s\n", dir, j->log);
    rdml_strbuf_printf(b, "#SBATCH --chdir=%s\n", workdir);
    if (*o->partition) rdml_strbuf_printf(b, "#SBATCH --partition=%s\n", o->partition);
    if (*o->account) rdml_strbuf_printf(b, "#SBATCH --account=%s\n", o->account);
    if (*o->qos) rdml_strbuf_printf(b, "#SBATCH --qos=%s\n", o->qos);
    rdml_strbuf_printf(b, "#SBATCH --time=%s\n", o->time);
    if (j->nodes > 0) rdml_strbuf_printf(b, "#SBATCH --nodes=%lld\n", (long long)j->nodes);
    rdml_strbuf_printf(b, "#SBATCH --ntasks=%lld\n", (long long)j->ntasks);
    rdml_strbuf_printf(b, "#SBATCH --cpus-per-task=%lld\n", (long long)o->cpus_per_task);
    if (*o->mem) rdml_strbuf_printf(b, "#SBATCH --mem=%s\n", o->mem);
    if (j->array_n > 0) rdml_strbuf_printf(b, "#SBATCH --array=0-%lld\n", (long long)(j->array_n - 1));
    if (o->signal > 0) rdml_strbuf_printf(b, "#SBATCH --signal=B:USR1@%lld\n", (long long)o->signal);
    if (o->requeue) rdml_strbuf_add(b, "#SBATCH --requeue\n#SBATCH --open-mode=append\n");
    const char *p = o->extra;
    while (*p) {
        while (isspace((unsigned char)*p)) p++;
        size_t n = 0;
        while (p[n] && !isspace((unsigned char)p[n])) n++;
        if (n) {
            rdml_strbuf_add(b, "#SBATCH ");
            rdml_strbuf_addn(b, p, n);
            rdml_strbuf_add(b, "\n");
        }
        p += n;
    }
}

/* ---- running sbatch ---- */

/* The sbatch program: $RDML_SBATCH (a path, or a name looked up in PATH), else sbatch from
 * PATH. */
static int find_sbatch(rdml_ctx *ctx, char *out, size_t len) {
    const char *env = getenv("RDML_SBATCH");
    const char *name = env && *env ? env : "sbatch";
    if (strchr(name, '/')) {
        if (access(name, X_OK) != 0)
            return RDML_FAIL(ctx, RDML_EIO, "RDML_SBATCH=\"%s\" is not an executable program (%s)",
                             name, strerror(errno));
        rdml_strlcpy(out, name, len);
        return RDML_OK;
    }
    const char *path = getenv("PATH");
    for (const char *p = path ? path : ""; p;) {
        const char *colon = strchr(p, ':');
        size_t n = colon ? (size_t)(colon - p) : strlen(p);
        snprintf(out, len, "%.*s%s%s", (int)n, p, n ? "/" : "", name);
        struct stat st;
        if (stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0) return RDML_OK;
        p = colon ? colon + 1 : NULL;
    }
    return RDML_FAIL(ctx, RDML_EIO,
                     "%s not found in PATH (%s): submitting needs SLURM's sbatch, as on a "
                     "cluster's login node (on Debian: apt-get install slurm-client); or use "
                     "--dry-run to only write the scripts, or set RDML_SBATCH to the program",
                     name, path ? path : "unset");
}

/* Variables an MPI launcher sets for the process it starts. They describe THIS run of
 * rdmlearn submit (e.g. under `mpirun -n 1`); passed on through sbatch (which exports the
 * environment) they would make the job's own ranks believe they were started by it. */
static int launcher_variable(const char *e) {
    static const char *const drop[] = {
        "PMIX_", "PMI_", "HYDRA_", "HYDI_", "OMPI_COMM_WORLD_", "OMPI_MCA_orte_",
        "OMPI_MCA_ess", "OMPI_MCA_pmix", "OMPI_MCA_initial_wdir=", "OMPI_MCA_shmem_RUNTIME",
        "OMPI_APP_CTX_NUM_PROCS=", "OMPI_COMMAND=", "OMPI_ARGV=", "OMPI_FILE_LOCATION=",
        "OMPI_FIRST_RANKS=", "OMPI_NUM_APP_CTX=", "OMPI_UNIVERSE_SIZE=", "OMPI_MCA_mpi_oversubscribe="};
    for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++)
        if (strncmp(e, drop[i], strlen(drop[i])) == 0) return 1;
    return 0;
}

/* Run prog argv, stdin from /dev/null, collecting stdout and stderr (at most 64 KB each).
 * *status is the waitpid status. */
static int run_program(rdml_ctx *ctx, const char *prog, char *const argv[], rdml_strbuf *out, rdml_strbuf *err,
                       int *status) {
    int po[2], pe[2];
    if (pipe(po) != 0) return RDML_FAIL(ctx, RDML_EIO, "pipe: %s", strerror(errno));
    if (pipe(pe) != 0) {
        close(po[0]);
        close(po[1]);
        return RDML_FAIL(ctx, RDML_EIO, "pipe: %s", strerror(errno));
    }
    int nenv = 0;
    while (environ[nenv]) nenv++;
    char **env = calloc((size_t)nenv + 1, sizeof *env);
    int k = 0;
    for (int i = 0; env && i < nenv; i++)
        if (!launcher_variable(environ[i])) env[k++] = environ[i];
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, po[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
    posix_spawn_file_actions_addclose(&fa, po[0]);
    posix_spawn_file_actions_addclose(&fa, pe[0]);
    if (po[1] > 2) posix_spawn_file_actions_addclose(&fa, po[1]);
    if (pe[1] > 2) posix_spawn_file_actions_addclose(&fa, pe[1]);
    pid_t pid;
    int src = env ? posix_spawn(&pid, prog, &fa, NULL, argv, env) : ENOMEM;
    posix_spawn_file_actions_destroy(&fa);
    free(env);
    close(po[1]);
    close(pe[1]);
    if (src != 0) {
        close(po[0]);
        close(pe[0]);
        return RDML_FAIL(ctx, RDML_EIO, "cannot start %s: %s", prog, strerror(src));
    }
    struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
    rdml_strbuf *bufs[2] = {out, err};
    int open_fds = 2;
    while (open_fds > 0) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char chunk[4096];
            ssize_t n = read(fds[i].fd, chunk, sizeof chunk);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
            } else if (bufs[i]->len < 65536) {
                rdml_strbuf_addn(bufs[i], chunk, (size_t)n);
            }
        }
    }
    for (int i = 0; i < 2; i++)
        if (fds[i].fd >= 0) close(fds[i].fd);
    while (waitpid(pid, status, 0) < 0) {
        if (errno != EINTR) return RDML_FAIL(ctx, RDML_EIO, "waiting for %s: %s", prog, strerror(errno));
    }
    return RDML_OK;
}

/* Trim trailing white space in place. */
static void rstrip(rdml_strbuf *b) {
    while (b->len > 0 && isspace((unsigned char)b->s[b->len - 1])) b->s[--b->len] = '\0';
}

/* `sbatch --parsable [--dependency=afterok:DEP] SCRIPT`: the new job's id in id. */
static int sbatch_submit(rdml_ctx *ctx, const char *sbatch, const char *dep, const char *script,
                         char *id, size_t idlen) {
    char depopt[128];
    char *argv[5];
    int a = 0;
    argv[a++] = (char *)sbatch;
    argv[a++] = "--parsable";
    if (dep) {
        snprintf(depopt, sizeof depopt, "--dependency=afterok:%s", dep);
        argv[a++] = depopt;
    }
    argv[a++] = (char *)script;
    argv[a] = NULL;
    rdml_strbuf out = {0}, err = {0};
    int status = 0;
    int rc = run_program(ctx, sbatch, argv, &out, &err, &status);
    rstrip(&out);
    rstrip(&err);
    if (!rc && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        char how[64];
        if (WIFEXITED(status)) snprintf(how, sizeof how, "exit status %d", WEXITSTATUS(status));
        else snprintf(how, sizeof how, "killed by signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        rc = RDML_FAIL(ctx, RDML_EIO, "%s refused %s (%s): %s", sbatch, script, how,
                       err.len ? rdml_strbuf_str(&err) : out.len ? rdml_strbuf_str(&out) : "(it printed nothing)");
    }
    if (!rc) {
        /* --parsable prints "jobid" or "jobid;cluster", possibly after warning lines */
        const char *last = out.s ? strrchr(out.s, '\n') : NULL;
        last = last ? last + 1 : rdml_strbuf_str(&out);
        size_t n = strcspn(last, ";");
        if (!all_digits(last, n) || n >= idlen)
            rc = RDML_FAIL(ctx, RDML_EIO, "%s accepted %s but printed \"%s\" instead of a job id "
                           "(is it SLURM's sbatch?)", sbatch, script, rdml_strbuf_str(&out));
        else
            snprintf(id, idlen, "%.*s", (int)n, last);
    }
    if (!rc && err.len) rdml_warn(ctx, "sbatch: %s", rdml_strbuf_str(&err));
    free(out.s);
    free(err.s);
    return rc;
}

/* ---- the command ---- */

static int parse_array(rdml_ctx *ctx, const char *s, int64_t *n) {
    *n = 0;
    if (!s) return RDML_OK;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!all_digits(s, strlen(s)) || errno || *end || v < 1 || v > 100000)
        return RDML_FAIL(ctx, RDML_EUSAGE,
                         "--array \"%s\": expected the number of array elements, a whole number "
                         "from 1 to 100000 (e.g. --array 8; `run --array I/N` is what each "
                         "element runs)", s);
    *n = v;
    return RDML_OK;
}

/* The job name prefix: slurm.job_name, else rdml- and the job file's name without .ini. */
static void default_name(const char *job, char *out, size_t len) {
    const char *base = strrchr(job, '/');
    base = base ? base + 1 : job;
    size_t n = strlen(base);
    if (n > 4 && strcmp(base + n - 4, ".ini") == 0) n -= 4;
    snprintf(out, len, "rdml-%.*s", (int)n, base);
    for (char *p = out; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("_.+-", *p)) *p = '_';
}

/* Rank 0's part: write the scripts and submit them. o is checked. */
static int submit(rdml_cli *cli, const rdml_config *cfg, const submit_opts *opts,
                  const char *jobfile, int64_t narray) {
    rdml_ctx *ctx = &cli->ctx;
    submit_opts o = *opts;
    if (o.cpus_per_task > 1 && o.threads < o.cpus_per_task)
        rdml_warn(ctx, "slurm.cpus_per_task = %lld but run.threads = %lld: BLAS will use %lld "
                  "core(s) of each rank's %lld (set run.threads = %lld to use them all)",
                  (long long)o.cpus_per_task, (long long)o.threads, (long long)o.threads,
                  (long long)o.cpus_per_task, (long long)o.cpus_per_task);

    char workdir[PATH_MAX], dir[PATH_MAX], binary[PATH_MAX], name[256];
    if (!getcwd(workdir, sizeof workdir))
        return RDML_FAIL(ctx, RDML_EIO, "cannot read the current folder: %s", strerror(errno));
    if (!path_ok(workdir))
        return RDML_FAIL(ctx, RDML_EIO, "the current folder %s holds spaces, quotes or one of "
                         "$ %% ; # \\, which #SBATCH lines cannot carry: submit from another "
                         "folder", workdir);
    char rel[PATH_MAX];
    if (*o.script_dir) snprintf(rel, sizeof rel, "%s", o.script_dir);
    else snprintf(rel, sizeof rel, "%s.slurm", o.output);
    if (rel[0] == '/') snprintf(dir, sizeof dir, "%s", rel);
    else if ((size_t)snprintf(dir, sizeof dir, "%s/%s", workdir, rel) >= sizeof dir)
        return RDML_FAIL(ctx, RDML_EIO, "script folder path too long: %s/%s", workdir, rel);
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/') dir[--dl] = '\0';

    if (*o.binary) {
        snprintf(binary, sizeof binary, "%s", o.binary);
        if (access(binary, X_OK) != 0)
            rdml_warn(ctx, "slurm.binary = %s is not an executable program here; the jobs will "
                      "fail unless the compute nodes have it", binary);
    } else {
        ssize_t n = readlink("/proc/self/exe", binary, sizeof binary - 1);
        if (n <= 0)
            return RDML_FAIL(ctx, RDML_EIO, "cannot find the running rdmlearn program "
                             "(/proc/self/exe: %s); set slurm.binary to its path", strerror(errno));
        binary[n] = '\0';
    }
    if (*o.job_name) snprintf(name, sizeof name, "%s", o.job_name);
    else default_name(jobfile, name, sizeof name);

    RDML_TRY(make_dirs(ctx, dir));

    /* For the record: the configuration as resolved at submission. The jobs do not read it;
     * they run JOB.ini with the same --config/--set, so that a job file's experiments,
     * includes and the command line's precedence behave exactly as in a direct run. */
    char respath[PATH_MAX + 16], jobabs[PATH_MAX];
    snprintf(respath, sizeof respath, "%s/resolved.ini", dir);
    char located[PATH_MAX];
    rdml_config_locate("", jobfile, located, sizeof located); /* maybe the data folder's */
    absolute(workdir, located, jobabs, sizeof jobabs);
    char *dump = rdml_config_dump(cfg, 0);
    if (!dump) return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory writing the job configuration");
    rdml_strbuf jt = {0};
    time_t now = time(NULL);
    char stamp[64];
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    rdml_strbuf_printf(&jt, "; %s with the command line's --config/--set as `rdmlearn submit` resolved it\n"
                   "; at %s (a record: the jobs run %s itself; experiment files are added\n"
                   "; when they run).\n\n", jobabs, stamp, jobabs);
    rdml_strbuf_add(&jt, dump);
    free(dump);
    int rc = jt.failed ? RDML_FAIL(ctx, RDML_ENOMEM, "out of memory") : RDML_OK;
    if (!rc) rc = write_file(ctx, respath, jt.s, 0644);
    free(jt.s);
    if (rc) return rc;
    /* what every job passes to `rdmlearn run` after its own options */
    rdml_strbuf pass = {0};
    for (int i = 0; i < cli->ncfg_files; i++) {
        char abs[PATH_MAX];
        char cfgpath[PATH_MAX];
        rdml_config_locate("", cli->cfg_files[i], cfgpath, sizeof cfgpath);
        absolute(workdir, cfgpath, abs, sizeof abs);
        rdml_strbuf_add(&pass, " --config ");
        sb_quote(&pass, abs);
    }
    for (int i = 0; i < cli->nsets; i++) {
        rdml_strbuf_add(&pass, " --set ");
        sb_quote(&pass, cli->sets[i]);
    }
    if (pass.failed) {
        free(pass.s);
        return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
    }

    job_spec jobs[3];
    int njobs = 0;
    char array_args[128];
    snprintf(array_args, sizeof array_args, "--array \"${SLURM_ARRAY_TASK_ID:?not a job array}/%lld\"",
             (long long)narray);
    const char *first_force = cli->force ? " --force" : "";
    char single_args[32], prepare_args[64];
    snprintf(single_args, sizeof single_args, "%s", first_force);
    snprintf(prepare_args, sizeof prepare_args, "--until embed%s", first_force);
    if (narray == 0) {
        jobs[njobs++] = (job_spec){"single", "run.sbatch", "run-%j.log", single_args, o.nodes,
                                   o.ntasks, 0};
    } else {
        jobs[njobs++] = (job_spec){"prepare", "prepare.sbatch", "prepare-%j.log", prepare_args,
                                   o.nodes, o.ntasks, 0};
        jobs[njobs++] = (job_spec){"array", "array.sbatch", "array-%A_%a.log", array_args, 0,
                                   o.array_ntasks, narray};
        jobs[njobs++] = (job_spec){"merge", "merge.sbatch", "merge-%j.log", "", o.nodes,
                                   o.ntasks, 0};
    }
    /* scripts of the other kind of submission would only confuse */
    static const char *const all_files[] = {"run.sbatch", "prepare.sbatch", "array.sbatch",
                                            "merge.sbatch"};
    for (size_t i = 0; i < 4; i++) {
        int used = 0;
        for (int j = 0; j < njobs; j++) used |= strcmp(jobs[j].file, all_files[i]) == 0;
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/%s", dir, all_files[i]);
        if (!used) remove(path);
    }

    char threads[32], requeue[32];
    snprintf(threads, sizeof threads, "%lld", (long long)o.threads);
    /* self-requeues after the time-limit warning; needs the early signal to happen at all */
    snprintf(requeue, sizeof requeue, "%lld",
             (long long)(o.requeue && o.signal > 0 ? o.max_requeue : 0));
    char paths[3][PATH_MAX + 32];
    rdml_strbuf scripts = {0};
    for (int j = 0; j < njobs && !rc; j++) {
        char jname[300];
        if (narray == 0) snprintf(jname, sizeof jname, "%s", name);
        else snprintf(jname, sizeof jname, "%s-%s", name, jobs[j].role);
        rdml_strbuf hdr = {0}, bin = {0}, jb = {0}, wd = {0}, la = {0}, sm = {0}, mr = {0}, args = {0},
             text = {0};
        sbatch_lines(&hdr, &o, &jobs[j], jname, dir, workdir);
        sb_quote(&bin, binary);
        sb_quote(&jb, jobabs);
        sb_quote(&wd, workdir);
        sb_quote(&la, o.launcher);
        sb_quote(&sm, o.srun_mpi);
        sb_quote(&mr, o.mpirun);
        rdml_strbuf_add(&args, "run \"$JOB\"");
        if (*jobs[j].args) {
            rdml_strbuf_add(&args, " ");
            rdml_strbuf_add(&args, jobs[j].args);
        }
        rdml_strbuf_add(&args, rdml_strbuf_str(&pass));
        char role[64];
        snprintf(role, sizeof role, "%c%s", toupper((unsigned char)jobs[j].role[0]),
                 jobs[j].role + 1);
        const subst subs[] = {
            {"ROLE", role},          {"SBATCH", rdml_strbuf_str(&hdr)}, {"RDMLEARN", rdml_strbuf_str(&bin)},
            {"JOB", rdml_strbuf_str(&jb)},    {"WORKDIR", rdml_strbuf_str(&wd)}, {"LAUNCHER", rdml_strbuf_str(&la)},
            {"SRUN_MPI", rdml_strbuf_str(&sm)}, {"MPIRUN", rdml_strbuf_str(&mr)}, {"THREADS", threads},
            {"ARGS", rdml_strbuf_str(&args)}, {"SETUP", o.setup},     {"REQUEUE", requeue},
        };
        render(&text, sbatch_template, subs, (int)(sizeof subs / sizeof subs[0]));
        int failed = text.failed | hdr.failed | bin.failed | jb.failed | wd.failed | args.failed;
        snprintf(paths[j], sizeof paths[j], "%s/%s", dir, jobs[j].file);
        if (failed) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory writing %s", paths[j]);
        if (!rc) rc = write_file(ctx, paths[j], text.s, 0755);
        if (j) rdml_strbuf_add(&scripts, " ");
        sb_quote(&scripts, paths[j]);
        rdml_strbuf *all[] = {&hdr, &bin, &jb, &wd, &la, &sm, &mr, &args, &text};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]->s);
    }
    char driver[PATH_MAX + 16];
    snprintf(driver, sizeof driver, "%s/submit.sh", dir);
    if (!rc) {
        rdml_strbuf text = {0};
        const subst subs[] = {{"SCRIPTS", rdml_strbuf_str(&scripts)}};
        render(&text, driver_template, subs, 1);
        rc = text.failed ? RDML_FAIL(ctx, RDML_ENOMEM, "out of memory") : RDML_OK;
        if (!rc) rc = write_file(ctx, driver, text.s, 0755);
        free(text.s);
    }
    free(scripts.s);
    free(pass.s);
    if (rc) return rc;

    if (cli->dry_run) {
        printf("wrote %s (the resolved configuration, for the record)\n", respath);
        for (int j = 0; j < njobs; j++) printf("wrote %s\n", paths[j]);
        printf("dry run: nothing submitted; submit with %s\n", driver);
        fflush(stdout);
        return RDML_OK;
    }

    char sbatch[PATH_MAX];
    rc = find_sbatch(ctx, sbatch, sizeof sbatch);
    if (rc)
        return rdml_ctx_prefix(ctx, "the scripts are written (%s), but nothing was submitted",
                               dir);
    char ids[3][32];
    for (int j = 0; j < njobs; j++) {
        rc = sbatch_submit(ctx, sbatch, j ? ids[j - 1] : NULL, paths[j], ids[j], sizeof ids[j]);
        if (rc) {
            if (j == 0) return rc;
            char done[128] = "";
            for (int k = 0; k < j; k++) {
                strncat(done, " ", sizeof done - strlen(done) - 1);
                strncat(done, ids[k], sizeof done - strlen(done) - 1);
            }
            return rdml_ctx_prefix(ctx, "job(s)%s were submitted before this failure and wait "
                                   "for it (cancel them with: scancel%s)", done, done);
        }
        printf("submitted %s as job %s\n", jobs[j].file, ids[j]);
        fflush(stdout);
    }
    rdml_info(ctx, "submit: logs go to %s; follow the jobs with: squeue -u $USER", dir);
    return RDML_OK;
}

int rdml_cmd_submit(rdml_cli *cli) {
    rdml_ctx *ctx = &cli->ctx;
    /* Every rank checks the job and the options (no side effects), so a bad value fails on
     * all ranks alike; then rank 0 alone writes and submits, and main() shares its status. */
    int64_t narray;
    RDML_TRY(parse_array(ctx, cli->array_arg, &narray));
    rdml_config *cfg = NULL;
    RDML_TRY(resolve_job(cli, cli->pos[0], &cfg));
    submit_opts o;
    int rc = read_opts(ctx, cfg, &o);
    if (!rc) rc = check_opts(ctx, &o);
    /* What the jobs will read, as this node sees it: a job that cannot start fails now, before
     * anything is written or queued. A dry run only warns (the data may arrive later). */
    if (!rc && check_job(cli, cfg, cli->pos[0]) != RDML_OK) {
        if (cli->dry_run) {
            rdml_warn(ctx, "the jobs would fail as things are: %s", ctx->msg);
            rdml_ctx_clear(ctx);
        } else {
            rc = rdml_ctx_prefix(ctx, "%s cannot run as configured (checked from here before "
                                 "submitting; nothing was submitted; --dry-run writes the "
                                 "scripts anyway)", cli->pos[0]);
        }
    }
    if (!rc && ctx->rank == 0) rc = submit(cli, cfg, &o, cli->pos[0], narray);
    rdml_config_destroy(&cfg);
    return rc;
}
