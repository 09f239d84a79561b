/* Inside the evaluate stage (evaluate.c, eval_stats.c, eval_csv.c): the statistics the stage
 * asks for, in the stage's own terms (a brain RDM against M model RDMs on the same images),
 * on top of the statistics library (rdml/stats.h), and the CSV table. */
#ifndef RDML_EVAL_PRIV_H
#define RDML_EVAL_PRIV_H

#include <mpi.h>
#include <stdint.h>

#include "rdml/core.h"
#include "rdml/rsa.h"
#include "rdml/stats.h"

/* Not collective. All n(n-1)/2 pairs i < j of n images, row by row (malloc'd). */
int eval_all_pairs(rdml_ctx *ctx, int64_t n, int64_t **pi, int64_t **pj, int64_t *P);

/* Collective. The brain RDM against M model RDMs (m x m each) on every pair of the m images,
 * one subject: rdml_stats_evaluate with options so (every rank gets *r). */
int eval_rdm_stats(rdml_ctx *ctx, MPI_Comm comm, int64_t m, const float *brain,
                   const float *const *models, int M, const char *const *names,
                   const rdml_stats_opts *so, rdml_stats_result *r);

/* Multiple-comparison correction of n p-values (NaN ones are left out and stay NaN). */
enum { EVAL_BH = 0, EVAL_BONFERRONI = 1, EVAL_NONE = 2 };
void eval_correct(int how, const double *p, int64_t n, double *q);

/* Rank 0: write <stem>.evaluate.csv from the /evaluate group of the committed results file
 * (or remove it when the file holds none). Called by rdml_exp_tables_sync. */
int rdml_exp_eval_csv_sync(rdml_ctx *ctx, const char *output);
void rdml_exp_eval_csv_path(const char *output, char *path, size_t len);

#endif
