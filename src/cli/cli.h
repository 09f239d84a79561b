/* The command-line front end: one table of subcommands sharing option parsing, config
 * loading and error reporting. Only src/cli calls MPI_Init/MPI_Finalize and decides the
 * process exit code. */
#ifndef RDML_CLI_H
#define RDML_CLI_H

#include <mpi.h>

#include "rdml/config.h"
#include "rdml/core.h"

typedef struct rdml_cli {
    rdml_ctx ctx;
    MPI_Comm comm;
    const char *command;
    rdml_config *cfg;  /* defaults + --config files + --set overrides, validated */
    int npos;          /* positional arguments after the command */
    char **pos;
    int defaults_flag; /* `config --defaults` */
    int force;         /* --force */
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
int rdml_cmd_config(rdml_cli *cli);
int rdml_cmd_version(rdml_cli *cli);

#endif
