/* An outside program running the pipeline's stages through the experiment layer
 * (rdml/experiment.h), with public headers only, as a notebook's C extension or a user's
 * driver would: no command line is built. On the ranks of MPI_COMM_WORLD it resolves a
 * configuration (the defaults, data.root = ROOT, run.output = OUT.h5, then each
 * SECTION.KEY=VALUE argument, like --set) and runs the stages rdm, embed, svm and train into
 * OUT.h5; the assignments after --train apply to the train stage only (e.g. its own
 * pairs.experiment). tests/install/test_install.sh compares the file with `rdmlearn`'s for
 * the same settings (tools/compare_results.py).
 *
 *   mpirun -n 2 rdml_exp_app ROOT OUT.h5 [SECTION.KEY=VALUE ...] [--train SECTION.KEY=VALUE ...]
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rdml/config.h>
#include <rdml/core.h>
#include <rdml/experiment.h>
#include <rdml/h5.h>
#include <rdml/mpiutil.h>

static int set(rdml_ctx *ctx, rdml_config *cfg, const char *key, const char *value) {
    char a[4200];
    snprintf(a, sizeof a, "%s=%s", key, value);
    return rdml_config_set(ctx, cfg, a);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    rdml_h5_quiet();
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_ctx_set_comm(&ctx, MPI_COMM_WORLD);
    rdml_config *cfg = NULL, *tcfg = NULL; /* the stages', the train stage's */
    int rc = argc >= 3 ? RDML_OK
                       : RDML_FAIL(&ctx, RDML_EUSAGE, "usage: rdml_exp_app ROOT OUT.h5 [SECTION.KEY=VALUE ...] "
                                   "[--train SECTION.KEY=VALUE ...]");
    for (int k = 0; k < 2 && !rc; k++) {
        rdml_config **c = k ? &tcfg : &cfg;
        rc = rdml_config_create(&ctx, c);
        if (!rc) rc = set(&ctx, *c, "data.root", argv[1]);
        if (!rc) rc = set(&ctx, *c, "run.output", argv[2]);
        for (int i = 3; i < argc && !rc; i++) {
            if (strcmp(argv[i], "--train") == 0) {
                if (!k) break;
                continue;
            }
            rc = rdml_config_set(&ctx, *c, argv[i]);
        }
        if (!rc) rc = rdml_config_check_required(&ctx, *c);
    }
    rc = rdml_agree(&ctx, MPI_COMM_WORLD, rc);
    /* each stage is collective and returns the same status on every rank */
    rdml_exp_opts o;
    rdml_exp_opts_init(&o);
    o.holder = "rdml_exp_app";
    if (!rc) rc = rdml_exp_rdm(&ctx, MPI_COMM_WORLD, cfg, &o);
    if (!rc) rc = rdml_exp_embed(&ctx, MPI_COMM_WORLD, cfg, &o);
    if (!rc) rc = rdml_exp_svm(&ctx, MPI_COMM_WORLD, cfg, &o);
    if (!rc) rc = rdml_exp_train(&ctx, MPI_COMM_WORLD, tcfg, &o);
    if (!rc && ctx.rank == 0)
        printf("rdml_exp_app %s: rdm, embed, svm, train on %d ranks -> %s\n", RDML_VERSION,
               ctx.nranks, argv[2]);
    if (rc && ctx.rank == 0) fprintf(stderr, "rdml_exp_app: error: %s\n", ctx.msg);
    rdml_config_destroy(&tcfg);
    rdml_config_destroy(&cfg);
    MPI_Finalize();
    return rc ? 1 : 0;
}
