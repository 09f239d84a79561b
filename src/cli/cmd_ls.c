/* `rdmlearn ls RESULTS.h5 [--json]`: what a results file holds, at a glance (rdml/report.h,
 * docs/ls.md). Reads nothing from the configuration; rank 0 prints. */
#include <stdio.h>

#include "cli.h"
#include "rdml/report.h"

int rdml_cmd_ls(rdml_cli *cli) {
    return rdml_report_ls(&cli->ctx, cli->comm, cli->pos[0], cli->json, stdout);
}
