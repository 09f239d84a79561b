/* The evaluate stage's use of the statistics library (rdml/stats.h): a brain RDM against
 * model RDMs on every pair of their images, and the corrections. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval_priv.h"
#include "rdml/mpiutil.h"

int eval_all_pairs(rdml_ctx *ctx, int64_t m, int64_t **pi, int64_t **pj, int64_t *P) {
    *P = rdml_rsa_ntri(m);
    *pi = rdml_malloc(ctx, (size_t)(*P + 1) * sizeof **pi, "pair list");
    *pj = *pi ? rdml_malloc(ctx, (size_t)(*P + 1) * sizeof **pj, "pair list") : NULL;
    if (!*pi || !*pj) {
        free(*pi);
        *pi = NULL;
        return ctx->code;
    }
    int64_t k = 0;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = i + 1; j < m; j++) {
            (*pi)[k] = i;
            (*pj)[k++] = j;
        }
    return RDML_OK;
}

int eval_rdm_stats(rdml_ctx *ctx, MPI_Comm comm, int64_t m, const float *brain,
                   const float *const *models, int M, const char *const *names,
                   const rdml_stats_opts *so, rdml_stats_result *r) {
    memset(r, 0, sizeof *r);
    int64_t *pi = NULL, *pj = NULL, P = 0;
    double **vec = calloc((size_t)M + 1, sizeof *vec);
    int rc = vec ? eval_all_pairs(ctx, m, &pi, &pj, &P) : RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
    for (int k = 0; k <= M && !rc; k++) {
        vec[k] = rdml_malloc(ctx, (size_t)(P + 1) * sizeof **vec, "RDM values");
        if (!vec[k]) rc = ctx->code;
        else rdml_rsa_upper(k == 0 ? brain : models[k - 1], m, vec[k]);
    }
    rc = rdml_agree(ctx, comm, rc);
    if (!rc) {
        rdml_stats_data d = {0};
        d.n = m;
        d.npairs = P;
        d.pi = pi;
        d.pj = pj;
        d.nsubj = 1;
        d.brain = (const double *const *)vec;
        d.nmodels = M;
        d.models = (const double *const *)(vec + 1);
        d.model_names = names;
        rc = rdml_stats_evaluate(ctx, comm, &d, so, r);
    }
    for (int k = 0; vec && k <= M; k++) free(vec[k]);
    free(vec);
    free(pi);
    free(pj);
    return rc;
}

void eval_correct(int how, const double *p, int64_t n, double *q) {
    if (how == EVAL_BH) {
        rdml_stats_fdr_bh(p, n, q);
    } else if (how == EVAL_BONFERRONI) {
        rdml_stats_bonferroni(p, n, q);
    } else {
        for (int64_t i = 0; i < n; i++) q[i] = p[i];
    }
}
