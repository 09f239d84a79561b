/* rdml_rdm_compute: the RDM of one subject's vertex selection. The reader handed to the
 * distributed core maps the core's column indices (positions in the selection) to the
 * subject's global vertex columns and reads them with rdml_subject_read_fmri through a
 * temporary selection holding just those columns (ascending, so lh columns stay first, as
 * read_fmri requires); it rejects non-finite values naming the hemisphere file, the image
 * file and the vertex. Errors from the core are prefixed with the subject and selection,
 * and a zero-variance image is named by its file and NSD id. Left out: test-split images
 * (their fMRI is not released) and caching of the block between metrics. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rdm/rdm_priv.h"
#include "rdml/dataset.h"

typedef struct subj_reader {
    const rdml_subject *s;
    const rdml_selection *sel;
    int64_t *map; /* scratch: global vertex columns of the current request */
    int64_t cap;
} subj_reader;

static const char *base_name(const char *path) {
    const char *b = path ? strrchr(path, '/') : NULL;
    return b ? b + 1 : (path ? path : "?");
}

static int subj_read(rdml_ctx *ctx, void *user, int64_t r0, int64_t r1, const int64_t *cols,
                     int64_t ncols, float *out) {
    subj_reader *R = user;
    const rdml_selection *sel = R->sel;
    if (ncols > R->cap) {
        int64_t *m = rdml_realloc(ctx, R->map, (size_t)ncols * sizeof *m, "RDM column map");
        if (!m) return ctx->code;
        R->map = m;
        R->cap = ncols;
    }
    int64_t nlh = 0;
    for (int64_t k = 0; k < ncols; k++) {
        if (cols[k] < 0 || cols[k] >= sel->n || (k > 0 && cols[k] <= cols[k - 1]))
            return RDML_FAIL(ctx, RDML_EINTERNAL, "RDM reader: bad column request %lld",
                             (long long)cols[k]);
        R->map[k] = sel->cols[cols[k]];
        if (cols[k] < sel->n_lh) nlh++;
    }
    rdml_selection part = {sel->spec, ncols, nlh, R->map};
    RDML_TRY(rdml_subject_read_fmri(ctx, R->s, &part, r0, r1, out));
    const int64_t nv_lh = rdml_subject_nvert(R->s, 0);
    for (int64_t i = 0; i < r1 - r0; i++) {
        for (int64_t k = 0; k < ncols; k++) {
            float x = out[i * ncols + k];
            if (isfinite(x)) continue;
            int rh = R->map[k] >= nv_lh;
            return RDML_FAIL(ctx, RDML_EDATA,
                             "subj%02d %s_training_fmri.npy: the value of image row %lld (%s) at "
                             "%s vertex %lld is %s (hint: RDMs need finite data; exclude that "
                             "vertex with another selection or fix the file)",
                             rdml_subject_id(R->s), rh ? "rh" : "lh", (long long)(r0 + i),
                             base_name(rdml_subject_image_path(R->s, r0 + i)), rh ? "rh" : "lh",
                             (long long)(R->map[k] - (rh ? nv_lh : 0)), isnan(x) ? "NaN" : "infinite");
        }
    }
    return RDML_OK;
}

int rdml_rdm_compute(rdml_ctx *ctx, MPI_Comm comm, const rdml_subject *s,
                     const rdml_selection *sel, int64_t nimages, const rdml_rdm_params *p,
                     rdml_rdm *out) {
    memset(out, 0, sizeof *out);
    const int64_t have = rdml_subject_nimages(s);
    const char *spec = sel && sel->spec ? sel->spec : "?";
    if (nimages < 0 || nimages > have)
        return RDML_FAIL(ctx, RDML_ECONFIG,
                         "data.images = %lld but subj%02d has %lld training images (hint: use 0 "
                         "for all of them, or a number up to %lld)",
                         (long long)nimages, rdml_subject_id(s), (long long)have, (long long)have);
    if (!sel || sel->n <= 0)
        return RDML_FAIL(ctx, RDML_EDATA, "subj%02d: the vertex selection '%s' is empty",
                         rdml_subject_id(s), spec);
    const int64_t n = nimages ? nimages : have;
    subj_reader R = {s, sel, NULL, 0};
    int64_t bad = -1;
    int rc = rdm_compute_core(ctx, comm, n, sel->n, subj_read, &R, p, out, &bad);
    free(R.map);
    if (rc != RDML_OK) {
        if (bad >= 0 && bad < have)
            rdml_ctx_prefix(ctx, "subj%02d, selection '%s', image %s (NSD id %lld)",
                            rdml_subject_id(s), spec, base_name(rdml_subject_image_path(s, bad)),
                            (long long)rdml_subject_nsd_id(s, bad));
        else
            rdml_ctx_prefix(ctx, "RDM of subj%02d, selection '%s'", rdml_subject_id(s), spec);
    }
    return rc;
}
