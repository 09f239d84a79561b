/* rdml/experiment.h — the pipeline's stages and jobs as library functions.
 *
 * Example:
 *
 *   int svm_on_v1(rdml_ctx *ctx, MPI_Comm comm, const char *root, const char *out) {
 *       rdml_config *cfg = NULL;
 *       char a[4200];
 *       int rc = rdml_config_create(ctx, &cfg);                  // every key at its default
 *       snprintf(a, sizeof a, "data.root=%s", root);
 *       if (!rc) rc = rdml_config_set(ctx, cfg, a);
 *       snprintf(a, sizeof a, "run.output=%s", out);
 *       if (!rc) rc = rdml_config_set(ctx, cfg, a);
 *       if (!rc) rc = rdml_config_set(ctx, cfg, "data.rois=V1");
 *       if (!rc) rc = rdml_config_check_required(ctx, cfg);
 *       rdml_exp_opts o;
 *       rdml_exp_opts_init(&o);                                  // no --force, whole sweep
 *       if (!rc) rc = rdml_exp_rdm(ctx, comm, cfg, &o);          // collective, each of them
 *       if (!rc) rc = rdml_exp_embed(ctx, comm, cfg, &o);
 *       if (!rc) rc = rdml_exp_svm(ctx, comm, cfg, &o);
 *       rdml_config_destroy(&cfg);
 *       return rc;                                               // the same on every rank
 *   }
 *
 * Every stage of the pipeline (rdm, embed, encode, svm, train, evaluate, report) and a whole
 * job (run: stage caching, includes, run.experiments) is a function over an explicit communicator and a
 * resolved configuration (rdml/config.h), for the command line, tests, benchmarks and other
 * programs alike. A stage reads the dataset at data.root and writes into run.output
 * (docs/results.md); it holds the lock on run.output while it runs and commits the file only
 * when the stage finished, so a failure or a stop request (rdml_stop_requested; the stage
 * returns RDML_ECANCELLED) leaves the previous file as it was.
 *
 * Every function is collective over comm: all ranks call it with the same configuration and
 * options, and all return the same status (errors are agreed, rdml_agree). Nothing here
 * installs signal handlers or ends the process: a program that wants SIGTERM to stop a stage
 * calls rdml_stop_install() itself (the command line does). Results depend neither on the
 * number of ranks nor on how the tasks were spread over them. docs/architecture.md shows
 * where this layer sits.
 */
#ifndef RDML_EXPERIMENT_H
#define RDML_EXPERIMENT_H

#include <mpi.h>
#include <stdint.h>

#include "rdml/config.h"
#include "rdml/core.h"

#ifdef __cplusplus
extern "C" {
#endif

struct rdml_dataset;

/* What a command line adds to the configuration. Zero (rdml_exp_opts_init) is a plain run. */
typedef struct rdml_exp_opts {
    int force;                 /* recompute stages that are up to date; move a damaged
                                * run.output aside instead of refusing it */
    int64_t array_index;       /* with array_count > 0: compute only the model tasks t with */
    int64_t array_count;       /* t % array_count == array_index into the journal (run) */
    const char *until;         /* run: the last stage to run (rdm, embed, encode, svm, train,
                                * evaluate, report) */
    /* run with run.experiments: the layers every experiment's configuration gets on top of
     * the job and experiment files, in order (the command line's --config files, then its
     * --set assignments; a "run.stages=..." assignment is left out) */
    const char *const *cfg_files;
    int ncfg_files;
    const char *const *sets;
    int nsets;
    /* who holds run.output, as a second command on it is told ("rdmlearn svm DIR");
     * NULL: "rdml_exp_<stage>" */
    const char *holder;
} rdml_exp_opts;

void rdml_exp_opts_init(rdml_exp_opts *o);

/* The stages. Each reads data.root and writes run.output (creating it if missing). The model
 * stages (svm, train) need the RDMs (and the embeddings) in run.output: run rdm and embed
 * first. A stage records its provenance under /meta/stages/<stage> and its stamp under
 * /meta/done. */
int rdml_exp_rdm(rdml_ctx *ctx, MPI_Comm comm, const rdml_config *cfg, const rdml_exp_opts *o);
int rdml_exp_embed(rdml_ctx *ctx, MPI_Comm comm, const rdml_config *cfg, const rdml_exp_opts *o);
/* The voxelwise encoding models ([encode], docs/encode.md): per subject x selection x
 * embedding of run.output, ridge from the embedding to each selected vertex over the pair
 * models' image folds; writes /encode/<embedding>/subjNN/<selection>. Needs embed first. */
int rdml_exp_encode(rdml_ctx *ctx, MPI_Comm comm, const rdml_config *cfg, const rdml_exp_opts *o);
int rdml_exp_svm(rdml_ctx *ctx, MPI_Comm comm, const rdml_config *cfg, const rdml_exp_opts *o);
int rdml_exp_train(rdml_ctx *ctx, MPI_Comm comm, const rdml_config *cfg, const rdml_exp_opts *o);
/* Model comparison ([evaluate], docs/evaluate.md): reads only run.output (the RDMs, the
 * embeddings, the experiments' fold predictions, /encode) and writes /evaluate with scores,
 * bootstrap intervals, permutation p, corrected q, paired differences and noise ceilings,
 * and <run.output stem>.evaluate.csv. */
int rdml_exp_evaluate(rdml_ctx *ctx, MPI_Comm comm, const rdml_config *cfg, const rdml_exp_opts *o);
/* The report of results file `results` into out_dir (NULL: <results stem>/report); the image
 * figures read data.root when cfg sets it (else the root stored in the file). */
int rdml_exp_report(rdml_ctx *ctx, MPI_Comm comm, const rdml_config *cfg, const char *results,
                    const char *out_dir);
/* A job (docs/run.md): cfg is the job's resolved configuration, job the job file's path
 * (the folder of run.experiments' relative paths). Creates run.output's folder, runs the
 * stages of run.stages in order, each skipped when up to date (config and input stamps),
 * each experiment of run.experiments with its own configuration, then the report. */
int rdml_exp_run(rdml_ctx *ctx, MPI_Comm comm, const rdml_config *cfg, const char *job,
                 const rdml_exp_opts *o);

/* Helpers for programs that walk the same data as the stages (not collective). */
/* Subject ids of data.subjects ("all" or numbers), in the dataset's order for "all". */
int rdml_exp_subjects(rdml_ctx *ctx, const rdml_config *cfg, const struct rdml_dataset *ds,
                      int **ids, int *n);
/* The selections of data.rois, each in the loader's comma syntax ("V1v+V1d" -> "V1v,V1d");
 * free with rdml_exp_free_list. */
int rdml_exp_selections(rdml_ctx *ctx, const rdml_config *cfg, char ***specs, int *n);
void rdml_exp_free_list(char **items, int n);

#ifdef __cplusplus
}
#endif
#endif
