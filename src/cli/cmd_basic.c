/* The small subcommands: synth, info, config, version. Each validates its inputs, runs the
 * library call and returns a status; main() agrees it across ranks and reports it. */
#include <hdf5.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "rdml/dataset.h"
#include "rdml/mpiutil.h"
#include "rdml/synth.h"

int rdml_cmd_synth(rdml_cli *cli) {
    rdml_ctx *ctx = &cli->ctx;
    rdml_synth_params p;
    RDML_TRY(rdml_synth_from_config(ctx, cli->cfg, &p));
    RDML_TRY(rdml_synth_check(ctx, &p));
    char *text = rdml_config_dump(cli->cfg, 0); /* stored with the dataset */
    if (!text) return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory dumping the config");
    p.provenance = text;
    double t0 = rdml_now();
    rdml_info(ctx, "synth: %lld subject(s), %lld images of %lldx%lld px, %lld+%lld vertices -> %s",
              (long long)p.subjects, (long long)p.images, (long long)p.image_size,
              (long long)p.image_size, (long long)p.lh_vertices, (long long)p.rh_vertices,
              cli->pos[0]);
    int rc = rdml_synth_write(ctx, cli->comm, &p, cli->pos[0]);
    free(text);
    if (!rc) rdml_info(ctx, "synth: done in %.1f s", rdml_now() - t0);
    return rc;
}

int rdml_cmd_info(rdml_cli *cli) {
    rdml_ctx *ctx = &cli->ctx;
    const char *root;
    if (cli->npos > 0) {
        root = cli->pos[0];
    } else {
        RDML_TRY(rdml_config_str(ctx, cli->cfg, "data", "root", &root));
    }
    int rc = RDML_OK;
    if (ctx->rank == 0) { /* metadata only: one rank reads and prints */
        rdml_dataset *ds = NULL;
        rc = rdml_dataset_open(ctx, root, &ds);
        if (!rc) rc = rdml_dataset_describe(ctx, ds, stdout);
        rdml_dataset_close(&ds);
    }
    return rc;
}

int rdml_cmd_config(rdml_cli *cli) {
    if (cli->ctx.rank != 0) return RDML_OK;
    char *text = cli->defaults_flag ? rdml_config_defaults_text() : rdml_config_dump(cli->cfg, 0);
    if (!text) return RDML_FAIL(&cli->ctx, RDML_ENOMEM, "out of memory printing the configuration");
    fputs(text, stdout);
    free(text);
    return RDML_OK;
}

int rdml_cmd_version(rdml_cli *cli) {
    if (cli->ctx.rank != 0) return RDML_OK;
    char mpi[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(mpi, &len);
    char *nl = strchr(mpi, '\n');
    if (nl) *nl = '\0';
    unsigned maj, min, rel;
    H5get_libversion(&maj, &min, &rel);
    printf("rdmlearn %s\nMPI: %s\nHDF5: %u.%u.%u (parallel)\nlibpng: %s\n", RDML_VERSION, mpi,
           maj, min, rel, png_get_libpng_ver(NULL));
    return RDML_OK;
}
