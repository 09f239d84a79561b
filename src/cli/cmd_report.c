/* `rdmlearn report RESULTS.h5 [-o DIR]`: the figures and report.html of a results file
 * (rdml/report.h). The only configuration it reads is data.root when given on the command
 * line (--set data.root=DIR or a --config file), which overrides the dataset root stored in
 * the results file for the image figures; everything else comes from the file. */
#include "cli.h"
#include "rdml/report.h"

int rdml_cmd_report(rdml_cli *cli) {
    rdml_ctx *ctx = &cli->ctx;
    rdml_report_params p;
    rdml_report_params_defaults(&p);
    if (rdml_config_is_set(cli->cfg, "data", "root"))
        RDML_TRY(rdml_config_str(ctx, cli->cfg, "data", "root", &p.image_root));
    return rdml_report_write_params(ctx, cli->comm, cli->pos[0], cli->out_dir, &p);
}
