/* Helpers shared by subcommands: turning [data] keys into subject ids and selections. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "rdml/dataset.h"

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
