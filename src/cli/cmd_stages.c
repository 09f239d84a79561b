/* The commands that run stages: each turns the command line into the experiment layer's
 * options (rdml/experiment.h) and calls it; main() has installed the stop-signal handlers
 * and turns the status into the exit code. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "rdml/experiment.h"

/* --force, and who holds run.output as another command is told ("rdmlearn svm DIR"). */
static void stage_opts(const rdml_cli *cli, rdml_exp_opts *o, char *holder, size_t len) {
    rdml_exp_opts_init(o);
    o->force = cli->force;
    const char *arg = cli->npos > 0 ? cli->pos[0] : "";
    snprintf(holder, len, "rdmlearn %s%s%s", cli->command, *arg ? " " : "", arg);
    o->holder = holder;
}

typedef int (*stage_fn)(rdml_ctx *ctx, MPI_Comm comm, const rdml_config *cfg,
                        const rdml_exp_opts *o);

static int stage_cmd(rdml_cli *cli, stage_fn fn) {
    rdml_exp_opts o;
    char holder[1200];
    stage_opts(cli, &o, holder, sizeof holder);
    return fn(&cli->ctx, cli->comm, cli->cfg, &o);
}

int rdml_cmd_rdm(rdml_cli *cli) { return stage_cmd(cli, rdml_exp_rdm); }
int rdml_cmd_embed(rdml_cli *cli) { return stage_cmd(cli, rdml_exp_embed); }
int rdml_cmd_encode(rdml_cli *cli) { return stage_cmd(cli, rdml_exp_encode); }
int rdml_cmd_svm(rdml_cli *cli) { return stage_cmd(cli, rdml_exp_svm); }
int rdml_cmd_train(rdml_cli *cli) { return stage_cmd(cli, rdml_exp_train); }
int rdml_cmd_evaluate(rdml_cli *cli) { return stage_cmd(cli, rdml_exp_evaluate); }

/* `report RESULTS.h5 [-o DIR]`: data.root only when given (--set or --config). */
int rdml_cmd_report(rdml_cli *cli) {
    return rdml_exp_report(&cli->ctx, cli->comm, cli->cfg, cli->pos[0], cli->out_dir);
}

static int parse_array(rdml_ctx *ctx, const char *arg, int64_t *index, int64_t *count) {
    char *end1, *end2;
    long long i = strtoll(arg, &end1, 10);
    long long n = *end1 == '/' ? strtoll(end1 + 1, &end2, 10) : -1;
    if (end1 == arg || *end1 != '/' || *end2 || n < 1 || i < 0 || i >= n)
        return RDML_FAIL(ctx, RDML_EUSAGE, "--array %s: expected I/N with 0 <= I < N, e.g. --array "
                         "2/8 (SLURM: --array $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)", arg);
    *index = i;
    *count = n;
    return RDML_OK;
}

/* `run JOB.ini [--until STAGE] [--array I/N]`: the job file was loaded as the first
 * configuration; every experiment of run.experiments gets the --config files and --set
 * assignments again on top of its own file. */
int rdml_cmd_run(rdml_cli *cli) {
    rdml_exp_opts o;
    char holder[1200];
    stage_opts(cli, &o, holder, sizeof holder);
    o.until = cli->until;
    o.cfg_files = cli->cfg_files;
    o.ncfg_files = cli->ncfg_files;
    o.sets = cli->sets;
    o.nsets = cli->nsets;
    if (cli->array_arg) RDML_TRY(parse_array(&cli->ctx, cli->array_arg, &o.array_index, &o.array_count));
    return rdml_exp_run(&cli->ctx, cli->comm, cli->cfg, cli->pos[0], &o);
}
