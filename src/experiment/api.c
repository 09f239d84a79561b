/* The public entry points of the experiment layer (rdml/experiment.h): each sets up the
 * call's state, holds the lock on run.output while the stage runs, agrees on the status
 * across the ranks, and releases the lock. */
#include <string.h>

#include "exp_priv.h"
#include "rdml/mpiutil.h"
#include "rdml/report.h"

void rdml_exp_opts_init(rdml_exp_opts *o) { memset(o, 0, sizeof *o); }

void rdml_exp_begin(rdml_exp *ex, rdml_ctx *ctx, MPI_Comm comm, const rdml_config *cfg,
                    const rdml_exp_opts *o, const char *name) {
    memset(ex, 0, sizeof *ex);
    ex->ctx = ctx;
    ex->comm = comm;
    ex->cfg = cfg;
    if (o) ex->opts = *o;
    ex->stage_name = name;
}

void rdml_exp_end(rdml_exp *ex) { rdml_exp_output_unlock(ex); }

/* One stage under the exclusive lock on run.output. */
static int locked_stage(rdml_ctx *ctx, MPI_Comm comm, const rdml_config *cfg, const rdml_exp_opts *o,
                        const char *name, int (*stage)(rdml_exp *ex)) {
    rdml_exp ex;
    rdml_exp_begin(&ex, ctx, comm, cfg, o, name);
    int rc = rdml_exp_output_lock(&ex, 0);
    if (!rc) rc = stage(&ex);
    rc = rdml_agree(ctx, comm, rc);
    rdml_exp_end(&ex);
    return rc;
}

static int svm_whole(rdml_exp *ex) { return rdml_exp_svm_stage(ex, 0, 0); }
static int train_whole(rdml_exp *ex) { return rdml_exp_train_stage(ex, 0, 0); }

int rdml_exp_rdm(rdml_ctx *ctx, MPI_Comm comm, const rdml_config *cfg, const rdml_exp_opts *o) {
    return locked_stage(ctx, comm, cfg, o, "rdm", rdml_exp_rdm_stage);
}

int rdml_exp_embed(rdml_ctx *ctx, MPI_Comm comm, const rdml_config *cfg, const rdml_exp_opts *o) {
    return locked_stage(ctx, comm, cfg, o, "embed", rdml_exp_embed_stage);
}

int rdml_exp_encode(rdml_ctx *ctx, MPI_Comm comm, const rdml_config *cfg, const rdml_exp_opts *o) {
    return locked_stage(ctx, comm, cfg, o, "encode", rdml_exp_encode_stage);
}

int rdml_exp_svm(rdml_ctx *ctx, MPI_Comm comm, const rdml_config *cfg, const rdml_exp_opts *o) {
    return locked_stage(ctx, comm, cfg, o, "svm", svm_whole);
}

int rdml_exp_train(rdml_ctx *ctx, MPI_Comm comm, const rdml_config *cfg, const rdml_exp_opts *o) {
    return locked_stage(ctx, comm, cfg, o, "train", train_whole);
}

int rdml_exp_evaluate(rdml_ctx *ctx, MPI_Comm comm, const rdml_config *cfg, const rdml_exp_opts *o) {
    return locked_stage(ctx, comm, cfg, o, "evaluate", rdml_exp_evaluate_stage);
}

int rdml_exp_report(rdml_ctx *ctx, MPI_Comm comm, const rdml_config *cfg, const char *results,
                    const char *out_dir) {
    rdml_report_params p;
    rdml_report_params_defaults(&p);
    int rc = RDML_OK;
    if (cfg && rdml_config_is_set(cfg, "data", "root"))
        rc = rdml_config_str(ctx, cfg, "data", "root", &p.image_root);
    if (!rc) rc = rdml_report_write_params(ctx, comm, results, out_dir, &p);
    return rdml_agree(ctx, comm, rc);
}

int rdml_exp_run(rdml_ctx *ctx, MPI_Comm comm, const rdml_config *cfg, const char *job,
                 const rdml_exp_opts *o) {
    rdml_exp ex;
    rdml_exp_begin(&ex, ctx, comm, cfg, o, "run");
    int rc = rdml_exp_run_job(&ex, job); /* takes the lock once run.output's folder exists */
    rc = rdml_agree(ctx, comm, rc);
    rdml_exp_end(&ex);
    return rc;
}
