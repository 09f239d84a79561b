/* Inside the experiment layer (src/experiment): the running stage's state, and the pieces
 * the stages share (results file, output lock, stage hashes and stamps, sweep engine, folds,
 * inputs). Public entry points: rdml/experiment.h. */
#ifndef RDML_EXP_PRIV_H
#define RDML_EXP_PRIV_H

#include <mpi.h>

#include "rdml/config.h"
#include "rdml/core.h"
#include "rdml/cv.h"
#include "rdml/experiment.h"

struct rdml_dataset;

/* One call of a public stage or job: what every stage function takes. */
typedef struct rdml_exp {
    rdml_ctx *ctx;
    MPI_Comm comm;
    const rdml_config *cfg;  /* the stage's configuration (run: one experiment's) */
    rdml_exp_opts opts;
    const char *stage_name;  /* for the lock holder's default text */
    struct rdml_lock *output_lock; /* run.output's lock while the call holds it */
} rdml_exp;

/* Start / end a public call: fills ex (opts NULL: defaults). */
void rdml_exp_begin(rdml_exp *ex, rdml_ctx *ctx, MPI_Comm comm, const rdml_config *cfg,
                    const rdml_exp_opts *o, const char *name);
void rdml_exp_end(rdml_exp *ex);

/* The stages, called with the output lock held (run.c runs them in turn). */
int rdml_exp_rdm_stage(rdml_exp *ex);
int rdml_exp_embed_stage(rdml_exp *ex);
int rdml_exp_encode_stage(rdml_exp *ex);
/* Model comparison over the results file (evaluate.c, docs/evaluate.md). */
int rdml_exp_evaluate_stage(rdml_exp *ex);
/* A job (rdml_exp_run): takes the output lock itself. */
int rdml_exp_run_job(rdml_exp *ex, const char *job);

/* Collective. Open run.output for writing (a copy under a temporary name if it exists, else a
 * new file) and record the stage's provenance under /meta/stages/<stage>. Commit with
 * rdml_exp_results_commit; on error nothing at run.output changes. */
struct rdml_h5;
int rdml_exp_results_open(rdml_exp *ex, const char *stage, struct rdml_h5 **h);
/* Collective. Commit *h (rdml_h5_commit) and log "<stage>: results in <run.output>". */
int rdml_exp_results_commit(rdml_ctx *ctx, struct rdml_h5 **h, const char *stage);
/* Collective. The results of a nested grid search under <gs>/grid (created): the settings'
 * columns (ns values each: float, integer or text, with an optional meaning), then per outer
 * fold f (S->nfolds of them) fold_f/{inner_scores, mean, std, inner_fold} and attribute
 * chosen, then chosen, mean_inner_score and the attributes scoring, axes, n_settings,
 * inner_folds. scores[f] is fold f's ns x K inner scores; chosen (nfolds) gets each fold's
 * setting (best mean, first on ties). */
struct rdml_split;
typedef struct rdml_exp_grid_col {
    const char *name;
    const double *f64;       /* one of f64, i64, str */
    const int64_t *i64;
    const char *const *str;
    const char *meaning;     /* NULL: no meaning attribute */
} rdml_exp_grid_col;
int rdml_exp_write_grid(rdml_ctx *ctx, struct rdml_h5 *h, const char *gs,
                        const rdml_exp_grid_col *cols, int ncols, const struct rdml_split *S,
                        const int64_t *ifold, int64_t ns, int64_t K, const double *const *scores,
                        const char *scoring, const char *axes, int64_t *chosen);
/* Collective. A model stage's pairs group g (replacing an earlier one): ij, value (with
 * value_meaning unless NULL) and fold, and the attributes n_images, n_pairs, n_folds, set
 * and scheme; the stage adds what is its own. */
struct rdml_pairs;
int rdml_exp_write_pairs(rdml_ctx *ctx, struct rdml_h5 *h, const char *g, const struct rdml_pairs *P,
                         const struct rdml_split *S, int64_t n_images, const char *set,
                         const char *value_meaning);
/* Collective. Take the lock on run.output for the rest of the command (exclusive, or shared
 * for readers such as `run --array` shares; see rdml/lock.h); a no-op if held already. Then,
 * check that an existing run.output opens as HDF5: a damaged file is an error with a hint, or
 * with --force (not shared) is renamed to <output>.damaged-<UTC time> (its CSV tables too)
 * so that the command starts a fresh file. The folder of run.output must exist. */
int rdml_exp_output_lock(rdml_exp *ex, int shared);
void rdml_exp_output_unlock(rdml_exp *ex);
/* Collective. Make <stem>.sweep.csv and <stem>.summary.csv (stem: run.output without .h5)
 * equal the sweep tables /sweep/<experiment>/<model> of the committed run.output: written
 * when missing or different, removed when the file holds no table; temporary CSV files left
 * by a killed command are removed. Call with the output lock held. */
int rdml_exp_tables_sync(rdml_exp *ex);
/* Rank 0, with the output lock held: remove "<path>.tmp-*", the temporary files of a
 * command killed while writing path. */
void rdml_exp_remove_tmp(const char *path);
/* The two CSV tables of a results file (each len bytes). */
void rdml_exp_csv_paths(const char *output, char *sweep, char *summary, size_t len);
/* Collective. Remove the journal records of stage's tasks for config hash hex (records left
 * when a command died between committing its results and clearing the journal), the
 * journal's temporary files, and the journal folder if that empties it. */
int rdml_exp_journal_prune(rdml_exp *ex, const char *stage, const char *hex);
/* Collective. Record stage's provenance in run.output (for stages that write elsewhere,
 * e.g. the report). */
int rdml_exp_mark_stage(rdml_exp *ex, const char *stage);
/* Collective. The RDM /subjects/subjNN/rdm/<name> (n images) and, unless embedding is NULL,
 * the embeddings /subjects/subjNN/embeddings/<embedding> (at least n rows, d columns) in the
 * results file; their paths go to rpath / epath. Errors say which stage to run first.
 * max_images > 0 (pairs.images) caps n at the first max_images images. */
int rdml_exp_find_inputs(rdml_ctx *ctx, struct rdml_h5 *h, int id, const char *name,
                         const char *embedding, char *rpath, size_t rlen, char *epath,
                         size_t elen, int64_t max_images, int64_t *n, int64_t *d);
/* Not collective. [pairs] and [split] of a model stage, seeded by run.seed: the experiment
 * name (checked), the pair-set parameters, pairs.images, pairs.color_fraction, the split. */
struct rdml_pairs_params;
struct rdml_split_params;
int rdml_exp_pairs_opts(rdml_ctx *ctx, const rdml_config *cfg, uint64_t seed, const char **experiment,
                        struct rdml_pairs_params *pp, int64_t *pair_images, double *color_fraction,
                        struct rdml_split_params *sp);
/* Collective. The leading m x m block of the N x N RDM rpath (m <= N) into R (m x m). */
int rdml_exp_read_rdm(rdml_ctx *ctx, MPI_Comm comm, struct rdml_h5 *h, const char *rpath, int64_t m,
                      float *R);
/* Collective. /subjects/subjNN/images/{nsd_id,names} for the subject's first n images:
 * the row order of every per-subject matrix in the results file. */
struct rdml_subject;
int rdml_exp_write_images(rdml_ctx *ctx, struct rdml_h5 *h, const struct rdml_subject *s,
                          int64_t n);

/* The hash (16 hex digits) of the resolved config keys that stage's output depends on: a
 * stage whose stored hash (/meta/stages/<stage> attribute config_hash) matches is up to date.
 * Unknown stages hash every section but [slurm] and [synth]. */
/* The hash of the settings that make an experiment's pairs and folds ([data] but its rois
 * and subjects lists, [rdm], [pairs], [split], run.seed), for /experiments/<exp>/pairs. */
int rdml_exp_pairs_hash(const rdml_config *cfg, char hex[17]);
int rdml_exp_stage_hash(const rdml_config *cfg, const char *stage, char hex[17]);
/* Collective. What /meta/done records for a stage and `run` compares (16 hex digits): the
 * stage's config hash combined with the path, size and modification time of every input file
 * the stage reads (stamp.c says which; docs/run.md "Caching"). The config hash alone for a
 * stage that reads no file (report). Every rank gets rank 0's result. */
int rdml_exp_stage_stamp(rdml_exp *ex, const char *stage, char hex[17]);
/* What a stage's output is called in the registry /meta/done (an attribute per key holding
 * the config hash the output was made from): "rdm", "embed:<embed.name>",
 * "svm:<pairs.experiment>", "train:<pairs.experiment>:<train.model>", "report". */
void rdml_exp_stage_key(const rdml_config *cfg, const char *stage, char *out, size_t len);

/* A model stage as the sweep engine (sweep.c) runs it: groups are (subject, selection), each
 * with nfolds tasks. prepare is collective over comm (MPI_COMM_SELF when one rank loads a
 * group for its tasks; take rank and size from comm, never from ctx) and fills the zeroed
 * group struct (group_size bytes) from the results file h; release frees it (also after a
 * failed prepare). task computes one fold into a record and must not call MPI. write is
 * collective and writes the group from its nfolds records; finish (may be NULL) runs once
 * after the last group. After the groups the sweep writes its table:
 * /sweep/<experiment>/<model>/tasks (one row per task: subject, selection, fold, metrics) and
 * .../summary (mean and std per group), commits, and brings <run.output stem>.sweep.csv and
 * .summary.csv up to date with every table of the file (rdml_exp_tables_sync). */
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
    /* Optional (0 / NULL: one model with opts): the model's variants, a sweep axis after the
     * selection (pairs.embeddings: one variant per embedding). Groups are then (subject,
     * selection, variant); every callback of a group gets its variant's opts (nfolds the
     * first variant's: all variants share the pairs and folds), and the sweep table gets the
     * columns embedding, architecture, layer, depth, relative_depth (pair_emb.c). */
    int nvariants;
    const struct rdml_sweep_variant *variants;
    /* Optional (NULL: every task runs on one rank): task collective over comm, a group of the
     * stage's ranks (the farm's tail, rdml/sched.h rdml_farm_opts.group_fn), for the tasks of
     * a stage that has fewer tasks left than ranks. Same record as task for any size of comm
     * (1 included): split the work into shards fixed by the task alone, reduced in a fixed
     * order; rank 0's record counts. Agree on errors over comm. *waited (0 on entry): the
     * seconds this rank only waited for the others (counted as idle in the busy figure). */
    int (*task_group)(rdml_ctx *ctx, MPI_Comm comm, const void *opts, const void *group,
                      int64_t fold, struct rdml_rec *out, double *waited);
} rdml_sweep_model;
typedef struct rdml_sweep_variant {
    const void *opts;
    const char *embedding, *architecture, *layer; /* "" when unknown */
    double depth, relative_depth;                 /* NaN when unknown */
} rdml_sweep_variant;
/* Collective. Run the model over data.subjects x data.rois x folds as a journaled task farm
 * and write the results into run.output; with array_count > 0 only the tasks t with
 * t % array_count == array_index, recorded in the journal and not written. */
int rdml_sweep_run(rdml_exp *ex, const rdml_sweep_model *m, int64_t array_index,
                   int64_t array_count);

/* pairs.embeddings (pair_emb.c): the embeddings a model stage fits one model each on. */
typedef struct rdml_pair_embs {
    int n;            /* >= 1 */
    int explicit_;    /* 0: pairs.embeddings empty, the one embedding is embed.name */
    char **name;      /* n names; result groups <model>@<name> when explicit_ */
    char **arch, **layer;             /* the embeddings' attributes, "" when absent */
    double *depth, *relative_depth;   /* NaN when absent */
} rdml_pair_embs;
/* Collective. Resolve pairs.embeddings against run.output: all (the first subject's
 * embeddings, sorted by name) or the list, each checked for every subject of data.subjects
 * (an unknown name is an error listing the available ones); empty: dflt alone. */
int rdml_exp_pair_embs(rdml_exp *ex, const char *stage, const char *dflt, rdml_pair_embs *out);
void rdml_exp_pair_embs_free(rdml_pair_embs *e);
/* Collective. Remove the results groups of model in /experiments/<experiment> that this run
 * does not write: <model>@<name> for a name pe does not list, and <model> itself when pe is
 * explicit (so that a changed pairs.embeddings leaves no stale models for evaluate and the
 * report). */
int rdml_exp_prune_model_groups(rdml_ctx *ctx, struct rdml_h5 *h, const char *experiment,
                                const char *model, const rdml_pair_embs *pe);
/* Fill variants[i] (n of them) from e, with opts[i] (each opts_size bytes). */
void rdml_exp_pair_variants(const rdml_pair_embs *e, const void *opts, size_t opts_size,
                            struct rdml_sweep_variant *variants);
/* Rank 0, not collective: a hash of the stamps of the embeddings <section>.embeddings names
 * in run.output (a list or all; 0 when the key is empty): what the svm / train stamp adds for
 * pairs.embeddings and the encode stamp for encode.embeddings, so that a changed or added
 * embedding reruns the stage (stamp.c). */
uint64_t rdml_exp_embs_stamp(const rdml_config *cfg, const char *section);
/* Collective. The variant columns of the sweep table base (/sweep/<exp>/<model>): tasks/ and
 * summary/ {embedding, architecture, layer} (strings) and {depth, relative_depth} (float64),
 * for G groups (subject x selection x variant) of nf tasks each. */
int rdml_exp_sweep_variant_cols(rdml_ctx *ctx, struct rdml_h5 *h, const char *base,
                                const rdml_sweep_model *m, int64_t G, int64_t nf);
/* Rank 0, not collective: the variant columns of the sweep table base for its T task rows
 * and G summary rows, as malloc'd arrays (strings "" and NaN when the table has none). */
typedef struct rdml_sweep_vcols {
    char **emb, **arch, **layer; /* T (tasks) then G (summary) entries each */
    double *depth, *rel;
    int64_t T, G;
} rdml_sweep_vcols;
int rdml_exp_sweep_vcols_read(rdml_ctx *ctx, struct rdml_h5 *h, const char *base, int64_t T, int64_t G,
                              rdml_sweep_vcols *v);
void rdml_exp_sweep_vcols_free(rdml_sweep_vcols *v);
/* Collective over comm (MPI_COMM_NULL or size 1: rdml_cv_grid_search itself). The nested grid
 * search of one outer fold with its nset x K fits split over the ranks of comm (contiguous
 * blocks of the items k * nset + s, each fit by one rank, the scores allgathered): every rank
 * gets the serial search's scores and chosen setting, for any size of comm. */
int rdml_exp_grid_search(rdml_ctx *ctx, MPI_Comm comm, int64_t nset, int64_t K, int64_t l,
                         const int64_t *ij, const int64_t *image_fold, const int64_t *pair_fold,
                         rdml_cv_fit_score fn, void *user, double *scores, int64_t *chosen);

/* Collective. The R^2 null distribution null (n values, e.g. rdml_cv_null_r2; NaN for a
 * stopped fold) of a model whose observed R^2 is observed, under obj: the dataset <obj>/<name>
 * (unless name is NULL) and the attributes p_r2 (the permutation p-value of observed),
 * null_r2_q025, null_r2_q500, null_r2_q975 (numpy's linear percentiles). n = 0: nothing. */
int rdml_exp_write_null(rdml_ctx *ctx, struct rdml_h5 *h, const char *obj, const char *name,
                        double observed, const double *null, int64_t n);

/* The svm and train stages as sweeps (also what `rdmlearn svm` / `train` run). */
int rdml_exp_svm_stage(rdml_exp *ex, int64_t array_index, int64_t array_count);
int rdml_exp_train_stage(rdml_exp *ex, int64_t array_index, int64_t array_count);

/* After a stage failed and aborted its results file: a cancellation (RDML_ECANCELLED) gets
 * the words saying that nothing of the stage was written and how to continue. Returns
 * ctx->code. Not collective (every rank holds the same message). */
int rdml_exp_stopped(rdml_exp *ex, const char *stage);


#endif
