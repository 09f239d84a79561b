/* The command-line front end: one table of subcommands sharing option parsing, config
 * loading and error reporting. Only src/cli calls MPI_Init/MPI_Finalize and decides the
 * process exit code. */
#ifndef RDML_CLI_H
#define RDML_CLI_H

#include <mpi.h>

#include "rdml/config.h"
#include "rdml/core.h"

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
} rdml_cli;

typedef struct rdml_command {
    const char *name;
    const char *summary;
    const char *usage; /* full --help text after the common options */
    int min_pos, max_pos;
    int (*run)(rdml_cli *cli);
} rdml_command;

/* Subject ids from data.subjects ("all" or numbers), in the dataset's order for "all". */
int rdml_cli_subjects(rdml_ctx *ctx, const rdml_config *cfg, const struct rdml_dataset *ds,
                      int **ids, int *n);
/* The selections of data.rois, each converted to the loader's comma syntax ("V1v+V1d" ->
 * "V1v,V1d"); free with rdml_cli_free_list. */
int rdml_cli_selections(rdml_ctx *ctx, const rdml_config *cfg, char ***specs, int *n);
void rdml_cli_free_list(char **items, int n);
/* Collective. Open run.output for writing (a copy under a temporary name if it exists, else a
 * new file) and record the stage's provenance under /meta/stages/<stage>. Commit with
 * rdml_h5_commit; on error nothing at run.output changes. */
struct rdml_h5;
int rdml_cli_results_open(rdml_cli *cli, const char *stage, struct rdml_h5 **h);
/* Collective. The RDM /subjects/subjNN/rdm/<name> (n images) and, unless embedding is NULL,
 * the embeddings /subjects/subjNN/embeddings/<embedding> (at least n rows, d columns) in the
 * results file; their paths go to rpath / epath. Errors say which stage to run first. */
int rdml_cli_find_inputs(rdml_ctx *ctx, struct rdml_h5 *h, int id, const char *name,
                         const char *embedding, char *rpath, size_t rlen, char *epath,
                         size_t elen, int64_t *n, int64_t *d);
/* Collective. /subjects/subjNN/images/{nsd_id,names} for the subject's first n images:
 * the row order of every per-subject matrix in the results file. */
struct rdml_subject;
int rdml_cli_write_images(rdml_ctx *ctx, struct rdml_h5 *h, const struct rdml_subject *s,
                          int64_t n);

int rdml_cmd_synth(rdml_cli *cli);
int rdml_cmd_info(rdml_cli *cli);
int rdml_cmd_check(rdml_cli *cli);
int rdml_cmd_rdm(rdml_cli *cli);
int rdml_cmd_train(rdml_cli *cli);
int rdml_cmd_svm(rdml_cli *cli);
int rdml_cmd_embed(rdml_cli *cli);
int rdml_cmd_config(rdml_cli *cli);
int rdml_cmd_version(rdml_cli *cli);

#endif
