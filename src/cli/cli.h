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
    const char *array_arg; /* --array VALUE, checked by the command (submit: N; run: I/N) */
    const char *until;     /* run --until STAGE */
    const char **cfg_files; /* the --config files, in order */
    int ncfg_files;
    const char **sets;      /* the --set assignments, in order */
    int nsets;
    int dry_run;       /* --dry-run (submit) */
    const char *out_dir; /* report -o DIR */
    int json;          /* ls --json */
    struct rdml_lock *output_lock; /* run.output's lock while the command holds it */
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
/* Collective. The model-independent part of a nested grid search's results under group gg
 * (existing): per outer fold f (S->nfolds of them) fold_f/{inner_scores, mean, std,
 * inner_fold} and attribute chosen, then chosen, mean_inner_score and the attributes
 * scoring, axes, n_settings, inner_folds. scores[f] is fold f's ns x K inner scores; chosen
 * (nfolds) gets each fold's setting (best mean, first on ties). */
struct rdml_split;
int rdml_cli_write_grid_scores(rdml_ctx *ctx, struct rdml_h5 *h, const char *gg,
                               const struct rdml_split *S, const int64_t *ifold, int64_t ns,
                               int64_t K, const double *const *scores, const char *scoring,
                               const char *axes, int64_t *chosen);
/* The outer folds of one subject x selection (folds.c): pair lists per fold and, with a
 * grid, the inner fold of every unit per outer fold (nf x nunits). */
struct rdml_pairs;
typedef struct rdml_cli_folds {
    int64_t nf, **tr, **te, *ntr, *nte;
    int64_t *ifold; /* grid only, else NULL */
} rdml_cli_folds;
/* A stage's check of outer fold f (its training list and the test count) or of inner fold k
 * of outer fold f (the inner training list and test count); non-OK stops with its message. */
typedef int (*rdml_cli_fold_check)(rdml_ctx *ctx, const void *user, int64_t f, int64_t nf,
                                   const int64_t *train, int64_t ntrain, int64_t ntest);
typedef int (*rdml_cli_inner_check)(rdml_ctx *ctx, const void *user, int64_t f, int64_t k,
                                    int64_t K, const int64_t *train, int64_t ntrain,
                                    int64_t ntest);
/* Not collective. Every fold of S over the pairs P; with inner_folds > 0 also the inner folds
 * (rdml_svm_inner_folds, seeded by seed and the outer fold). Free with rdml_cli_folds_free
 * (also after an error). */
int rdml_cli_folds_make(rdml_ctx *ctx, const struct rdml_split *S, const struct rdml_pairs *P,
                        int64_t inner_folds, uint64_t seed, rdml_cli_fold_check outer,
                        rdml_cli_inner_check inner, const void *user, rdml_cli_folds *F);
void rdml_cli_folds_free(rdml_cli_folds *F);
/* Collective. Take the lock on run.output for the rest of the command (exclusive, or shared
 * for readers such as `run --array` shares; see rdml/lock.h); a no-op if held already. Then,
 * check that an existing run.output opens as HDF5: a damaged file is an error with a hint, or
 * with --force (not shared) is renamed to <output>.damaged-<UTC time> (its CSV tables too)
 * so that the command starts a fresh file. The folder of run.output must exist. */
int rdml_cli_output_lock(rdml_cli *cli, int shared);
void rdml_cli_output_unlock(rdml_cli *cli);
/* Collective. Make <stem>.sweep.csv and <stem>.summary.csv (stem: run.output without .h5)
 * equal the sweep tables /sweep/<experiment>/<model> of the committed run.output: written
 * when missing or different, removed when the file holds no table; temporary CSV files left
 * by a killed command are removed. Call with the output lock held. */
int rdml_cli_tables_sync(rdml_cli *cli);
/* Rank 0, with the output lock held: remove "<path>.tmp-*", the temporary files of a
 * command killed while writing path. */
void rdml_cli_remove_tmp(const char *path);
/* The two CSV tables of a results file (each len bytes). */
void rdml_cli_csv_paths(const char *output, char *sweep, char *summary, size_t len);
/* Collective. Remove the journal records of stage's tasks for config hash hex (records left
 * when a command died between committing its results and clearing the journal), the
 * journal's temporary files, and the journal folder if that empties it. */
int rdml_cli_journal_prune(rdml_cli *cli, const char *stage, const char *hex);
/* Collective. Record stage's provenance in run.output (for stages that write elsewhere,
 * e.g. the report). */
int rdml_cli_mark_stage(rdml_cli *cli, const char *stage);
/* Collective. The RDM /subjects/subjNN/rdm/<name> (n images) and, unless embedding is NULL,
 * the embeddings /subjects/subjNN/embeddings/<embedding> (at least n rows, d columns) in the
 * results file; their paths go to rpath / epath. Errors say which stage to run first.
 * max_images > 0 (pairs.images) caps n at the first max_images images. */
int rdml_cli_find_inputs(rdml_ctx *ctx, struct rdml_h5 *h, int id, const char *name,
                         const char *embedding, char *rpath, size_t rlen, char *epath,
                         size_t elen, int64_t max_images, int64_t *n, int64_t *d);
/* Not collective. [pairs] and [split] of a model stage, seeded by run.seed: the experiment
 * name (checked), the pair-set parameters, pairs.images, pairs.color_fraction, the split. */
struct rdml_pairs_params;
struct rdml_split_params;
int rdml_cli_pairs_opts(rdml_ctx *ctx, const rdml_config *cfg, uint64_t seed, const char **experiment,
                        struct rdml_pairs_params *pp, int64_t *pair_images, double *color_fraction,
                        struct rdml_split_params *sp);
/* Collective. The leading m x m block of the N x N RDM rpath (m <= N) into R (m x m). */
int rdml_cli_read_rdm(rdml_ctx *ctx, MPI_Comm comm, struct rdml_h5 *h, const char *rpath, int64_t m,
                      float *R);
/* Collective. /subjects/subjNN/images/{nsd_id,names} for the subject's first n images:
 * the row order of every per-subject matrix in the results file. */
struct rdml_subject;
int rdml_cli_write_images(rdml_ctx *ctx, struct rdml_h5 *h, const struct rdml_subject *s,
                          int64_t n);

/* The hash (16 hex digits) of the resolved config keys that stage's output depends on: a
 * stage whose stored hash (/meta/stages/<stage> attribute config_hash) matches is up to date.
 * Unknown stages hash every section but [slurm] and [synth]. */
/* The hash of the settings that make an experiment's pairs and folds ([data] but its rois
 * and subjects lists, [rdm], [pairs], [split], run.seed), for /experiments/<exp>/pairs. */
int rdml_cli_pairs_hash(const rdml_config *cfg, char hex[17]);
int rdml_cli_stage_hash(const rdml_config *cfg, const char *stage, char hex[17]);
/* Collective. What /meta/done records for a stage and `run` compares (16 hex digits): the
 * stage's config hash combined with the path, size and modification time of every input file
 * the stage reads (stamp.c says which; docs/run.md "Caching"). The config hash alone for a
 * stage that reads no file (report). Every rank gets rank 0's result. */
int rdml_cli_stage_stamp(rdml_cli *cli, const char *stage, char hex[17]);
/* What a stage's output is called in the registry /meta/done (an attribute per key holding
 * the config hash the output was made from): "rdm", "embed:<embed.name>",
 * "svm:<pairs.experiment>", "train:<pairs.experiment>:<train.model>", "report". */
void rdml_cli_stage_key(const rdml_config *cfg, const char *stage, char *out, size_t len);

/* A model stage as the sweep engine (sweep.c) runs it: groups are (subject, selection), each
 * with nfolds tasks. prepare is collective over comm (MPI_COMM_SELF when one rank loads a
 * group for its tasks; take rank and size from comm, never from ctx) and fills the zeroed
 * group struct (group_size bytes) from the results file h; release frees it (also after a
 * failed prepare). task computes one fold into a record and must not call MPI. write is
 * collective and writes the group from its nfolds records; finish (may be NULL) runs once
 * after the last group. After the groups the sweep writes its table:
 * /sweep/<experiment>/<model>/tasks (one row per task: subject, selection, fold, metrics) and
 * .../summary (mean and std per group), commits, and brings <run.output stem>.sweep.csv and
 * .summary.csv up to date with every table of the file (rdml_cli_tables_sync). */
struct rdml_h5;
struct rdml_rec;
typedef struct rdml_sweep_model {
    const char *stage;
    const void *opts;
    size_t group_size;
    int64_t (*nfolds)(const void *opts);
    int (*prepare)(rdml_ctx *ctx, MPI_Comm comm, struct rdml_h5 *h, const void *opts,
                   const struct rdml_subject *subj, const char *name, void *group);
    void (*release)(void *group);
    int (*task)(rdml_ctx *ctx, const void *opts, const void *group, int64_t fold,
                struct rdml_rec *out);
    int (*write)(rdml_ctx *ctx, struct rdml_h5 *h, const void *opts, const void *group,
                 const struct rdml_rec *recs);
    int (*finish)(rdml_ctx *ctx, struct rdml_h5 *h, const void *opts);
    /* the sweep table: the experiment (pairs.experiment), the model's name (svm, siamese,
     * ...) and each fold's test metrics */
    const char *experiment;
    const char *model;
    int nmetrics;
    const char *const *metric_names;
    void (*metrics)(const void *opts, const void *group, int64_t fold, const struct rdml_rec *rec,
                    double *out);
} rdml_sweep_model;
/* Collective. Run the model over data.subjects x data.rois x folds as a journaled task farm
 * and write the results into run.output; with array_count > 0 only the tasks t with
 * t % array_count == array_index, recorded in the journal and not written. */
int rdml_sweep_run(rdml_cli *cli, const rdml_sweep_model *m, int64_t array_index,
                   int64_t array_count);

/* The svm and train stages as sweeps (also what `rdmlearn svm` / `train` run). */
int rdml_cli_svm_stage(rdml_cli *cli, int64_t array_index, int64_t array_count);
int rdml_cli_train_stage(rdml_cli *cli, int64_t array_index, int64_t array_count);

/* After a stage failed and aborted its results file: a cancellation (RDML_ECANCELLED) gets
 * the words saying that nothing of the stage was written and how to continue. Returns
 * ctx->code. Not collective (every rank holds the same message). */
int rdml_cli_stopped(rdml_cli *cli, const char *stage);

int rdml_cmd_synth(rdml_cli *cli);
int rdml_cmd_info(rdml_cli *cli);
int rdml_cmd_check(rdml_cli *cli);
int rdml_cmd_rdm(rdml_cli *cli);
int rdml_cmd_report(rdml_cli *cli);
int rdml_cmd_ls(rdml_cli *cli);
int rdml_cmd_run(rdml_cli *cli);
int rdml_cmd_submit(rdml_cli *cli);
int rdml_cmd_train(rdml_cli *cli);
int rdml_cmd_svm(rdml_cli *cli);
int rdml_cmd_embed(rdml_cli *cli);
int rdml_cmd_config(rdml_cli *cli);
int rdml_cmd_version(rdml_cli *cli);

#endif
