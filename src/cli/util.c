/* Helpers shared by subcommands: turning [data] keys into subject ids and selections. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "rdml/dataset.h"
#include "rdml/h5.h"

int rdml_cli_subjects(rdml_ctx *ctx, const rdml_config *cfg, const rdml_dataset *ds, int **ids,
                      int *n) {
    char **items;
    int nitems;
    RDML_TRY(rdml_config_list(ctx, cfg, "data", "subjects", &items, &nitems));
    int nds = rdml_dataset_nsubjects(ds);
    int all = nitems == 1 && strcmp(items[0], "all") == 0;
    int cap = all ? nds : nitems;
    *ids = rdml_calloc(ctx, (size_t)(cap ? cap : 1), sizeof **ids, "subject list");
    if (!*ids) {
        free(items);
        return ctx->code;
    }
    *n = 0;
    for (int i = 0; i < cap; i++) (*ids)[(*n)++] = all ? rdml_dataset_subject_id(ds, i) : atoi(items[i]);
    free(items);
    return RDML_OK;
}

int rdml_cli_selections(rdml_ctx *ctx, const rdml_config *cfg, char ***specs, int *n) {
    char **items;
    int nitems;
    RDML_TRY(rdml_config_list(ctx, cfg, "data", "rois", &items, &nitems));
    *specs = rdml_calloc(ctx, (size_t)nitems + 1, sizeof **specs, "selection list");
    if (!*specs) {
        free(items);
        return ctx->code;
    }
    for (int i = 0; i < nitems; i++) {
        (*specs)[i] = rdml_strdup(ctx, items[i]);
        if (!(*specs)[i]) {
            rdml_cli_free_list(*specs, i);
            free(items);
            return ctx->code;
        }
        for (char *p = (*specs)[i]; *p; p++)
            if (*p == '+') *p = ',';
    }
    *n = nitems;
    free(items);
    return RDML_OK;
}

void rdml_cli_free_list(char **items, int n) {
    if (!items) return;
    for (int i = 0; i < n; i++) free(items[i]);
    free(items);
}

int rdml_cli_find_inputs(rdml_ctx *ctx, struct rdml_h5 *h, int id, const char *name,
                         const char *embedding, char *rpath, size_t rlen, char *epath,
                         size_t elen, int64_t *n, int64_t *d) {
    int ex = 0, ndim = 0;
    int64_t dims[8], edims[8];
    snprintf(rpath, rlen, "/subjects/subj%02d/rdm/%s", id, name);
    snprintf(epath, elen, "/subjects/subj%02d/embeddings/%s", id, embedding ? embedding : "");
    RDML_TRY(rdml_h5_exists(ctx, h, rpath, &ex));
    if (!ex)
        return RDML_FAIL(ctx, RDML_EDATA, "%s has no RDM %s (hint: run `rdmlearn rdm` with the same "
                         "data.rois and run.output first)", rdml_h5_path(h), rpath);
    RDML_TRY(rdml_h5_dims(ctx, h, rpath, &ndim, dims));
    *n = dims[0];
    *d = 0;
    if (!embedding) return RDML_OK;
    RDML_TRY(rdml_h5_exists(ctx, h, epath, &ex));
    if (!ex)
        return RDML_FAIL(ctx, RDML_EDATA, "%s has no embeddings %s (hint: run `rdmlearn embed` "
                         "first, or set embed.name to the embedding to use)", rdml_h5_path(h), epath);
    RDML_TRY(rdml_h5_dims(ctx, h, epath, &ndim, edims));
    if (ndim != 2 || edims[0] < *n)
        return RDML_FAIL(ctx, RDML_EDATA, "embeddings %s have %lld rows but the RDM %s has %lld "
                         "images (hint: compute both with the same data.images)", epath,
                         (long long)edims[0], rpath, (long long)*n);
    *d = edims[1];
    return RDML_OK;
}
