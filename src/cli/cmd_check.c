/* `rdmlearn check`: load the configured data exactly as the pipeline will (subjects, vertex
 * selection, first N images, standardisation) and verify it: every fMRI value finite, every
 * image decodes. Ranks split the images, so a 10k-image subject is checked
 * in parallel and each rank reads only its rows; a bad file on any rank stops all ranks with
 * the file's name. Images of different sizes are fine (every stage resizes each image), as
 * they are for `run`; the sizes are reported. Writes nothing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "rdml/dataset.h"
#include "rdml/mpiutil.h"
#include "rdml/png.h"

/* Decode this rank's images; *sz gets the smallest and largest width and height seen
 * (min w, min h, max w, max h). Sizes may differ: every stage resizes each image on its own
 * (gabor to 128 px, pixels to embed.size, clip-vit to 224, cnn to train.cnn_size, colours
 * count pixel fractions), as `run` does, so check accepts what run accepts. */
static int check_images(rdml_ctx *ctx, const rdml_subject *s, int64_t lo, int64_t hi,
                        int64_t sz[4]) {
    for (int64_t i = lo; i < hi; i++) {
        rdml_image im;
        RDML_TRY(rdml_png_read(ctx, rdml_subject_image_path(s, i), 3, &im));
        int64_t iw = im.w, ih = im.h;
        rdml_image_free(&im);
        if (iw < sz[0]) sz[0] = iw;
        if (ih < sz[1]) sz[1] = ih;
        if (iw > sz[2]) sz[2] = iw;
        if (ih > sz[3]) sz[3] = ih;
    }
    return RDML_OK;
}

static int check_subject(rdml_cli *cli, const rdml_dataset *ds, int id, const char *rois,
                         int64_t nimages, int standardize) {
    rdml_ctx *ctx = &cli->ctx;
    rdml_subject *s = NULL;
    rdml_selection sel = {0};
    float *x = NULL;
    int rc = rdml_subject_open(ctx, ds, id, &s);
    if (!rc) rc = rdml_subject_select(ctx, s, rois, &sel);
    rc = rdml_agree(ctx, cli->comm, rc); /* metadata errors are the same on every rank */
    int64_t n = 0, lo = 0, hi = 0;
    if (!rc) {
        n = rdml_subject_nimages(s);
        if (nimages > 0 && nimages < n) n = nimages;
        rdml_part_block(n, ctx->rank, ctx->nranks, &lo, &hi);
        x = rdml_malloc(ctx, (size_t)((hi - lo) * sel.n + 1) * sizeof *x, "fMRI block");
        if (!x) rc = ctx->code;
    }
    if (!rc) rc = rdml_subject_read_fmri(ctx, s, &sel, lo, hi, x);
    if (!rc) {
        for (int64_t r = 0; r < hi - lo && !rc; r++)
            for (int64_t c = 0; c < sel.n; c++)
                if (!isfinite(x[r * sel.n + c])) {
                    rc = RDML_FAIL(ctx, RDML_EDATA,
                                   "subj%02d image row %lld (%s), column %lld of selection %s "
                                   "is %g (hint: remove or impute non-finite vertices)",
                                   id, (long long)(lo + r), rdml_subject_image_path(s, lo + r),
                                   (long long)sel.cols[c], sel.spec, (double)x[r * sel.n + c]);
                    break;
                }
    }
    rc = rdml_agree(ctx, cli->comm, rc);
    if (!rc && standardize) rc = rdml_fmri_standardize(ctx, cli->comm, hi - lo, sel.n, x);
    int64_t sz[4] = {INT64_MAX, INT64_MAX, 0, 0};
    if (!rc) rc = check_images(ctx, s, lo, hi, sz);
    rc = rdml_agree(ctx, cli->comm, rc);
    if (!rc) {
        int64_t mn[2], mx[2];
        MPI_Allreduce(sz, mn, 2, MPI_INT64_T, MPI_MIN, cli->comm);
        MPI_Allreduce(sz + 2, mx, 2, MPI_INT64_T, MPI_MAX, cli->comm);
        char px[160];
        if (mn[0] == mx[0] && mn[1] == mx[1])
            snprintf(px, sizeof px, "%lldx%lld px", (long long)mx[0], (long long)mx[1]);
        else
            snprintf(px, sizeof px, "sizes from %lldx%lld to %lldx%lld px, each resized by the "
                     "stages", (long long)mn[0], (long long)mn[1], (long long)mx[0],
                     (long long)mx[1]);
        rdml_info(ctx,
                  "subj%02d: %lld images (%s) x %lld vertices (%lld lh, %lld rh) "
                  "for \"%s\": all values finite, all images decode%s",
                  id, (long long)n, px, (long long)sel.n, (long long)sel.n_lh,
                  (long long)(sel.n - sel.n_lh), sel.spec, standardize ? ", standardised" : "");
    }
    free(x);
    rdml_selection_free(&sel);
    rdml_subject_close(&s);
    return rc;
}

int rdml_cmd_check(rdml_cli *cli) {
    rdml_ctx *ctx = &cli->ctx;
    const char *root;
    int64_t nimages;
    int standardize;
    RDML_TRY(rdml_config_str(ctx, cli->cfg, "data", "root", &root));
    if (cli->npos > 0) root = cli->pos[0];
    RDML_TRY(rdml_config_int(ctx, cli->cfg, "data", "images", &nimages));
    RDML_TRY(rdml_config_bool(ctx, cli->cfg, "data", "standardize", &standardize));

    rdml_dataset *ds = NULL;
    int *ids = NULL, nids = 0, nsel = 0;
    char **sels = NULL;
    int rc = rdml_dataset_open(ctx, root, &ds);
    if (!rc) rc = rdml_exp_subjects(ctx, cli->cfg, ds, &ids, &nids);
    if (!rc) rc = rdml_exp_selections(ctx, cli->cfg, &sels, &nsel);
    rc = rdml_agree(ctx, cli->comm, rc);
    for (int i = 0; i < nids && !rc; i++)
        for (int k = 0; k < nsel && !rc; k++)
            rc = check_subject(cli, ds, ids[i], sels[k], nimages, standardize);
    if (!rc) rdml_info(ctx, "check: %d subject(s) x %d selection(s) in %s are usable", nids, nsel, root);
    rdml_exp_free_list(sels, nsel);
    free(ids);
    rdml_dataset_close(&ds);
    return rc;
}
