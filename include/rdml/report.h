/* rdml/report.h — figures (SVG + PNG) and an HTML report drawn from a results file alone.
 *
 * Example:
 *
 *   // The last stage of `rdmlearn run`, or `rdmlearn report RESULTS.h5 [-o DIR]`:
 *   int reports(rdml_ctx *ctx, MPI_Comm comm) {
 *       RDML_TRY(rdml_report_write(ctx, comm, "results.h5", NULL));  // -> results dir/report/
 *       // report/report.html links report/fig*.png (each also as .svg); open it in a browser.
 *
 *       rdml_report_params p;
 *       rdml_report_params_defaults(&p);
 *       p.image_root = "/data/algonauts_2023";  // where the stimulus PNGs are (Figures 2, 3)
 *       return rdml_report_write_params(ctx, comm, "results.h5", "out/report", &p);
 *   }
 *
 * Everything is read from the results file (docs/results.md): RDMs and their summaries,
 * inter-subject RSA, embeddings, SVM and neural-model experiments, grid searches, sweep
 * tables and the provenance under /meta. Nothing is recomputed; the only other input is the
 * dataset's images for the example-pair and colour-class figures, found at data.root of the
 * stored configuration (or p.image_root). Parts the file does not hold are listed in the
 * report as absent and the rest is rendered. See docs/report.md.
 */
#ifndef RDML_REPORT_H
#define RDML_REPORT_H

#include <mpi.h>
#include <stdint.h>
#include <stdio.h>

#include "rdml/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rdml_report_params {
    const char *image_root; /* dataset root for the stimulus images; NULL: data.root of the
                               configuration stored in the results file */
    int64_t max_heatmap;    /* largest heat-map edge in cells; bigger RDMs are block-averaged
                               (default 1000) */
    int max_rdm_figures;    /* RDM figures drawn; further subject x selection RDMs are only
                               listed in a table (default 24) */
    int pair_examples;      /* most similar / most dissimilar pairs shown per RDM (default 3) */
    int64_t max_scatter;    /* points drawn per scatter plot; more are thinned by a fixed
                               stride, stated in the caption (default 20000) */
    int color_scan;         /* images classified for the colour-class figure (default 400) */
} rdml_report_params;

void rdml_report_params_defaults(rdml_report_params *p);

/* Collective over comm (rank 0 reads and draws; the others wait). Writes out_dir/report.html
 * and the figures beside it; out_dir NULL or "" means "report" beside the results file; it is
 * created if missing. Errors (agreed across ranks) name the file: a path that does not exist
 * (RDML_EIO), a file that is not HDF5 or is truncated (RDML_EFORMAT), an unwritable output
 * directory (RDML_EIO). Missing stages are not errors: the report says what is absent. */
int rdml_report_write(rdml_ctx *ctx, MPI_Comm comm, const char *results_path,
                      const char *out_dir);
int rdml_report_write_params(rdml_ctx *ctx, MPI_Comm comm, const char *results_path,
                             const char *out_dir, const rdml_report_params *p);

/* `rdmlearn ls RESULTS.h5 [--json]`: what a results file holds, at a glance: provenance
 * (version, stages with start time, ranks and config hash, /meta/done), subjects with image
 * counts and RDMs (selection, size, vertices, metric, threshold), inter-subject RSA,
 * embeddings (name, backend, dims), experiments x models with the headline metric per
 * subject x selection (mean and std over folds: accuracy for the C-SVC, R^2 for the SVR and
 * the networks; folds finished / diverged / collapsed / not converged), grid searches and
 * sweep tables. json = 0: aligned text tables; json = 1: one JSON object (docs/ls.md lists
 * its keys; NaN and absent values are null).
 *
 * rdml_report_ls_text: serial, read-only (the file is opened read-only and never locked or
 * written); *out is malloc'd. rdml_report_ls: collective over comm; rank 0 reads and prints
 * to out, the others print nothing and return rank 0's status. Errors name the file: missing
 * or unreadable (RDML_EIO), not HDF5 or truncated (RDML_EFORMAT), each with a hint. */
int rdml_report_ls_text(rdml_ctx *ctx, const char *results_path, int json, char **out);
int rdml_report_ls(rdml_ctx *ctx, MPI_Comm comm, const char *results_path, int json, FILE *out);

#ifdef __cplusplus
}
#endif
#endif
