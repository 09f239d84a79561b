/* An outside program built against an installed librdml (tests/install/test_install.sh): it
 * uses only the public headers <rdml/...h>, as a user's program would. On the ranks of
 * MPI_COMM_WORLD it writes a small synthetic dataset (rdml/synth.h), computes subject 1's
 * correlation RDM of a vertex selection (rdml/dataset.h, rdml/rdm.h) with the settings
 * `rdmlearn rdm` uses by default, and writes it to an HDF5 file at the path `rdmlearn rdm`
 * uses, /subjects/subj01/rdm/<selection> (rdml/h5.h). The test compares both files.
 *
 *   mpirun -n 2 rdml_app ROOT OUT.h5 SELECTION
 */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include <rdml/core.h>
#include <rdml/dataset.h>
#include <rdml/h5.h>
#include <rdml/mpiutil.h>
#include <rdml/rdm.h>
#include <rdml/synth.h>

static int run(rdml_ctx *ctx, MPI_Comm comm, const char *root, const char *out,
               const char *spec) {
    rdml_synth_params sp;
    rdml_synth_defaults(&sp); /* seed 42 = run.seed's default */
    sp.subjects = 1;
    sp.images = 48;
    sp.test_images = 0;
    sp.image_size = 16;
    sp.lh_vertices = 300;
    sp.rh_vertices = 340;
    RDML_TRY(rdml_synth_write(ctx, comm, &sp, root)); /* collective */

    /* opening is per rank (not collective): agree before the collective steps */
    rdml_dataset *ds = NULL;
    rdml_subject *s = NULL;
    rdml_selection sel;
    memset(&sel, 0, sizeof sel);
    int rc = rdml_dataset_open(ctx, root, &ds);
    if (!rc) rc = rdml_subject_open(ctx, ds, 1, &s);
    if (!rc) rc = rdml_subject_select(ctx, s, spec, &sel);
    rc = rdml_agree(ctx, comm, rc);

    rdml_rdm r = {0};
    if (!rc) {
        rdml_rdm_params p;
        rdml_rdm_defaults(&p); /* [rdm] defaults: correlation, data.standardize = true */
        p.metric = RDML_RDM_CORRELATION;
        p.standardize = 1;
        p.zero_variance_error = 1;
        rc = rdml_rdm_compute(ctx, comm, s, &sel, 0, &p, &r); /* collective */
    }
    rdml_h5 *h = NULL;
    if (!rc) rc = rdml_h5_create(ctx, comm, out, &h);
    if (!rc) {
        char path[512];
        snprintf(path, sizeof path, "/subjects/subj%02d/rdm/%s", rdml_subject_id(s), sel.spec);
        rc = rdml_h5_write_rows_f32(ctx, h, path, r.n, r.n, r.row_lo, r.row_hi - r.row_lo,
                                    r.rows);
        if (!rc) rc = rdml_h5_attr_str(ctx, h, path, "written_by", "rdml_app " RDML_VERSION);
        if (!rc) rc = rdml_h5_commit(ctx, &h);
        else rdml_h5_abort(&h);
    }
    if (!rc && ctx->rank == 0)
        printf("rdml_app %s: %lld x %lld RDM of %s (%lld vertices) on %d ranks -> %s\n",
               RDML_VERSION, (long long)r.n, (long long)r.n, sel.spec, (long long)sel.n,
               ctx->nranks, out);
    rdml_rdm_free(&r);
    rdml_selection_free(&sel);
    rdml_subject_close(&s);
    rdml_dataset_close(&ds);
    return rc;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_ctx_set_comm(&ctx, MPI_COMM_WORLD);
    int rc;
    if (argc != 4) {
        rc = RDML_FAIL(&ctx, RDML_EUSAGE, "usage: rdml_app ROOT OUT.h5 SELECTION");
    } else {
        rdml_h5_quiet();
        rc = run(&ctx, MPI_COMM_WORLD, argv[1], argv[2], argv[3]);
    }
    if (rc && ctx.rank == 0) fprintf(stderr, "rdml_app: error: %s\n", ctx.msg);
    MPI_Finalize();
    return rc ? 1 : 0;
}
