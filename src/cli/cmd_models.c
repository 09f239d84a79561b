/* `rdmlearn models [MODEL]`: the model zoo's architectures, their layer names and shapes,
 * preprocessing and where to get weights (rdml_zoo_catalogue). Every rank builds the text
 * (so an unknown name fails on all of them); rank 0 prints it. */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "rdml/zoo.h"

int rdml_cmd_models(rdml_cli *cli) {
    char *text = NULL;
    RDML_TRY(rdml_zoo_catalogue(&cli->ctx, cli->npos > 0 ? cli->pos[0] : NULL, &text));
    if (cli->ctx.rank == 0) fputs(text, stdout);
    free(text);
    return RDML_OK;
}
