/* The command-line front end: one table of subcommands sharing option parsing, config
 * loading and error reporting. Only src/cli calls MPI_Init/MPI_Finalize, installs the signal
 * handlers and decides the process exit code; the stages themselves are the experiment
 * layer's (rdml/experiment.h), which the commands call. */
#ifndef RDML_CLI_H
#define RDML_CLI_H

#include <mpi.h>

#include "rdml/config.h"
#include "rdml/core.h"
#include "rdml/experiment.h"

struct rdml_dataset;

typedef struct rdml_cli {
    rdml_ctx ctx;
    MPI_Comm comm;
    const char *command;
    rdml_config *cfg;  /* defaults + --config files + --set overrides, validated */
    int npos;          /* positional arguments after the command */
    char **pos;
    int defaults_flag; /* `config --defaults` */
    int force;         /* --force */
    const char *array_arg; /* --array VALUE, checked by the command (submit: N; run: I/N) */
    const char *until;     /* run --until STAGE */
    const char **cfg_files; /* the --config files, in order */
    int ncfg_files;
    const char **sets;      /* the --set assignments, in order */
    int nsets;
    int dry_run;       /* --dry-run (submit) */
    const char *out_dir; /* report -o DIR */
    int json;          /* ls --json */
} rdml_cli;

typedef struct rdml_command {
    const char *name;
    const char *summary;
    const char *usage; /* full --help text after the common options */
    int min_pos, max_pos;
    int (*run)(rdml_cli *cli);
} rdml_command;

int rdml_cmd_synth(rdml_cli *cli);
int rdml_cmd_info(rdml_cli *cli);
int rdml_cmd_check(rdml_cli *cli);
int rdml_cmd_rdm(rdml_cli *cli);
int rdml_cmd_report(rdml_cli *cli);
int rdml_cmd_ls(rdml_cli *cli);
int rdml_cmd_run(rdml_cli *cli);
int rdml_cmd_submit(rdml_cli *cli);
int rdml_cmd_train(rdml_cli *cli);
int rdml_cmd_evaluate(rdml_cli *cli);
int rdml_cmd_svm(rdml_cli *cli);
int rdml_cmd_encode(rdml_cli *cli);
int rdml_cmd_embed(rdml_cli *cli);
int rdml_cmd_config(rdml_cli *cli);
int rdml_cmd_models(rdml_cli *cli);
int rdml_cmd_version(rdml_cli *cli);

#endif
