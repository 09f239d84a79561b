/* The run's results file: opened (or created) under a temporary name by the first stage of a
 * command and committed at its end, with provenance under /meta: the version, and per stage
 * the resolved configuration, ranks, BLAS threads and start time. A file at run.output is
 * therefore always complete; a failed command leaves the previous file as it was. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "rdml/dataset.h"
#include "rdml/h5.h"
#include "rdml/mpiutil.h"

int rdml_cli_results_open(rdml_cli *cli, const char *stage, rdml_h5 **h) {
    rdml_ctx *ctx = &cli->ctx;
    const char *path;
    int64_t threads;
    RDML_TRY(rdml_config_str(ctx, cli->cfg, "run", "output", &path));
    RDML_TRY(rdml_config_int(ctx, cli->cfg, "run", "threads", &threads));
    int exists = 0;
    if (ctx->rank == 0) {
        struct stat st;
        exists = stat(path, &st) == 0;
    }
    MPI_Bcast(&exists, 1, MPI_INT, 0, cli->comm);
    if (exists) {
        RDML_TRY(rdml_h5_open(ctx, cli->comm, path, 1, h));
    } else {
        RDML_TRY(rdml_h5_create(ctx, cli->comm, path, h));
    }
    char *text = rdml_config_dump(cli->cfg, 0);
    char group[256], when[64];
    snprintf(group, sizeof group, "/meta/stages/%s", stage);
    /* rank 0's clock, so every rank writes the same attribute value */
    int64_t now = (int64_t)time(NULL);
    MPI_Bcast(&now, 1, MPI_INT64_T, 0, cli->comm);
    time_t tt = (time_t)now;
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&tt));
    int64_t ranks = ctx->nranks;
    int rc = text ? RDML_OK : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory dumping the config");
    if (!rc) rc = rdml_h5_group(ctx, *h, group);
    if (!rc) rc = rdml_h5_attr_str(ctx, *h, "/meta", "rdmlearn_version", RDML_VERSION);
    if (!rc) rc = rdml_h5_attr_str(ctx, *h, group, "config", text);
    if (!rc) rc = rdml_h5_attr_i64(ctx, *h, group, "ranks", &ranks, 1);
    if (!rc) rc = rdml_h5_attr_i64(ctx, *h, group, "blas_threads_per_rank", &threads, 1);
    if (!rc) rc = rdml_h5_attr_str(ctx, *h, group, "started", when);
    char hex[17];
    if (!rc && rdml_cli_stage_hash(cli->cfg, stage, hex) != RDML_OK)
        rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory hashing the config");
    if (!rc) rc = rdml_h5_attr_str(ctx, *h, group, "config_hash", hex);
    char key[512];
    rdml_cli_stage_key(cli->cfg, stage, key, sizeof key);
    if (!rc) rc = rdml_h5_group(ctx, *h, "/meta/done");
    if (!rc) rc = rdml_h5_attr_str(ctx, *h, "/meta/done", key, hex);
    free(text);
    if (rc) rdml_h5_abort(h);
    return rc;
}

int rdml_cli_write_images(rdml_ctx *ctx, struct rdml_h5 *h, const rdml_subject *s,
                          int64_t n) {
    char path[256];
    int64_t *ids = rdml_calloc(ctx, (size_t)n + 1, sizeof *ids, "image ids");
    const char **names = rdml_calloc(ctx, (size_t)n + 1, sizeof *names, "image names");
    int rc = ids && names ? RDML_OK : ctx->code;
    for (int64_t i = 0; i < n && !rc; i++) {
        ids[i] = rdml_subject_nsd_id(s, i);
        const char *p = rdml_subject_image_path(s, i), *slash = strrchr(p, '/');
        names[i] = slash ? slash + 1 : p;
    }
    snprintf(path, sizeof path, "/subjects/subj%02d/images/nsd_id", rdml_subject_id(s));
    if (!rc) rc = rdml_h5_write_vec_i64(ctx, h, path, n, ids);
    if (!rc)
        rc = rdml_h5_attr_str(ctx, h, path, "meaning",
                              "NSD image id (0-based) of each row of this subject's matrices");
    snprintf(path, sizeof path, "/subjects/subj%02d/images/names", rdml_subject_id(s));
    if (!rc) rc = rdml_h5_delete(ctx, h, path);
    if (!rc) rc = rdml_h5_write_strings(ctx, h, path, names, n);
    free(ids);
    free(names);
    return rc;
}

int rdml_cli_mark_stage(rdml_cli *cli, const char *stage) {
    rdml_h5 *h = NULL;
    RDML_TRY(rdml_cli_results_open(cli, stage, &h));
    return rdml_h5_commit(&cli->ctx, &h);
}
