/* MPI tests of rdml_stats_evaluate (run at 1..4 ranks): the bootstrap and permutation
 * resamples are dealt over the ranks of a communicator and gathered in resample order, so
 * every result must be BIT-identical whatever the rank count. Every rank computes the
 * reference on MPI_COMM_SELF and compares it (memcmp of every array) with the result on
 * the whole communicator and on every split into a first group of k ranks and the rest
 * (k = 1 .. nranks - 1): 1..4 ranks per communicator in one run. Cases: complete pair list
 * with 3 subjects, subject bootstrap and per-subject models (spearman); an incomplete list
 * with full brain RDMs (kendall_tau_a, scheme images_full); pearson on an incomplete list
 * without them (scheme pairs). Errors: one rank with a bad option (the others fine) fails
 * on every rank without a hang, with the failing rank's message; a constant model fails
 * everywhere naming the model. */
#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rdml/mpiutil.h"
#include "rdml/stats.h"
#include "test.h"

static int rank_, nranks_;

typedef struct dataset {
    rdml_stats_data d;
    int64_t *pi, *pj;
    double *vals; /* (S + Mv) x P */
    const double **brain, **models;
    float *full;
    const float **fullp;
} dataset;

static void dataset_free(dataset *x) {
    free(x->pi);
    free(x->pj);
    free(x->vals);
    free(x->brain);
    free(x->models);
    free(x->full);
    free(x->fullp);
}

/* n images; complete: all pairs, else per image its 3 next images (cyclic); S subjects; M
 * models (per subject when mps); every rank builds the same data from rdml_rng. */
static void make_dataset(dataset *x, int64_t n, int complete, int S, int M, int mps, int full) {
    memset(x, 0, sizeof *x);
    const int64_t P = complete ? n * (n - 1) / 2 : 3 * n;
    x->pi = malloc((size_t)P * sizeof *x->pi);
    x->pj = malloc((size_t)P * sizeof *x->pj);
    int64_t t = 0;
    if (complete) {
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = i + 1; j < n; j++, t++) {
                x->pi[t] = (t % 3) ? i : j; /* either orientation */
                x->pj[t] = (t % 3) ? j : i;
            }
    } else {
        for (int64_t i = 0; i < n; i++)
            for (int64_t k = 1; k <= 3; k++, t++) {
                x->pi[t] = i;
                x->pj[t] = (i + k) % n;
            }
    }
    /* latent 2-d positions; subject RDMs = distance + noise, quantised (ties) */
    rdml_rng r = rdml_rng_make(99, RDML_STREAM_USER + 77, 0);
    double *pos = malloc((size_t)(2 * n) * sizeof *pos);
    for (int64_t i = 0; i < 2 * n; i++) pos[i] = rdml_rng_normal(&r);
    const int Mv = mps ? M * S : M;
    float *fullm = calloc((size_t)(S * n * n), sizeof *fullm);
    for (int s = 0; s < S; s++)
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = i + 1; j < n; j++) {
                const double dx = pos[2 * i] - pos[2 * j], dy = pos[2 * i + 1] - pos[2 * j + 1];
                const double v = floor((sqrt(dx * dx + dy * dy) + 0.5 * rdml_rng_normal(&r)) * 8) / 8;
                fullm[(int64_t)s * n * n + i * n + j] = fullm[(int64_t)s * n * n + j * n + i] = (float)v;
            }
    x->vals = malloc((size_t)((S + Mv) * P) * sizeof *x->vals);
    x->brain = malloc((size_t)S * sizeof *x->brain);
    x->models = malloc((size_t)Mv * sizeof *x->models);
    for (int s = 0; s < S; s++) {
        double *b = x->vals + (int64_t)s * P;
        for (int64_t p = 0; p < P; p++) b[p] = fullm[(int64_t)s * n * n + x->pi[p] * n + x->pj[p]];
        x->brain[s] = b;
    }
    for (int v = 0; v < Mv; v++) {
        double *m = x->vals + (int64_t)(S + v) * P;
        const double noise = 0.3 + 1.5 * (v % 3);
        for (int64_t p = 0; p < P; p++) {
            const int64_t i = x->pi[p], j = x->pj[p];
            const double dx = pos[2 * i] - pos[2 * j], dy = pos[2 * i + 1] - pos[2 * j + 1];
            m[p] = sqrt(dx * dx + dy * dy) + noise * rdml_rng_normal(&r);
        }
        x->models[v] = m;
    }
    free(pos);
    if (full) {
        x->full = fullm;
        x->fullp = malloc((size_t)S * sizeof *x->fullp);
        for (int s = 0; s < S; s++) x->fullp[s] = fullm + (int64_t)s * n * n;
    } else {
        free(fullm);
    }
    x->d.n = n;
    x->d.npairs = P;
    x->d.pi = x->pi;
    x->d.pj = x->pj;
    x->d.nsubj = S;
    x->d.brain = x->brain;
    x->d.nmodels = M;
    x->d.models = x->models;
    x->d.models_per_subject = mps;
    x->d.brain_full = x->fullp;
}

static int same_doubles(const double *a, const double *b, int64_t n) {
    if (!a || !b) return a == b;
    return memcmp(a, b, (size_t)n * sizeof *a) == 0;
}

/* Bit-identical results. */
static int same_result(const rdml_stats_result *a, const rdml_stats_result *b) {
    const int64_t M = a->nmodels, S = a->nsubj;
    int ok = a->nmodels == b->nmodels && a->nsubj == b->nsubj && a->boot_valid == b->boot_valid &&
             a->boot_dropped == b->boot_dropped && a->nc_valid == b->nc_valid &&
             a->perm_valid == b->perm_valid && a->perm_scheme == b->perm_scheme &&
             a->has_nc == b->has_nc;
    ok = ok && same_doubles(a->score, b->score, M) &&
         same_doubles(a->score_subject, b->score_subject, M * S) &&
         same_doubles(&a->nc_lower, &b->nc_lower, 1) && same_doubles(&a->nc_upper, &b->nc_upper, 1) &&
         same_doubles(a->ci_lo, b->ci_lo, M) && same_doubles(a->ci_hi, b->ci_hi, M) &&
         same_doubles(a->nc_lower_ci, b->nc_lower_ci, 2) &&
         same_doubles(a->nc_upper_ci, b->nc_upper_ci, 2) &&
         same_doubles(a->boot_p_zero, b->boot_p_zero, M) &&
         same_doubles(a->boot_p_nc, b->boot_p_nc, M) && same_doubles(a->diff, b->diff, M * M) &&
         same_doubles(a->diff_lo, b->diff_lo, M * M) &&
         same_doubles(a->diff_hi, b->diff_hi, M * M) &&
         same_doubles(a->pair_p, b->pair_p, M * M) &&
         same_doubles(a->boot_scores, b->boot_scores, a->nboot * M) &&
         same_doubles(a->boot_nc, b->boot_nc, a->nboot * 2) &&
         same_doubles(a->perm_p, b->perm_p, M) &&
         same_doubles(a->perm_null, b->perm_null, a->nperm * M);
    return ok;
}

static void run_case(const char *name, dataset *x, rdml_stats_opts *o,
                     rdml_stats_perm_scheme scheme) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_stats_result ref, got;
    int rc = rdml_stats_evaluate(&ctx, MPI_COMM_SELF, &x->d, o, &ref);
    CHECK_EQ_I(rc, RDML_OK);
    if (rc) {
        fprintf(stderr, "[rank %d] %s: %s\n", rank_, name, ctx.msg);
        return;
    }
    CHECK_EQ_I(ref.perm_scheme, scheme);
    CHECK(o->nboot == 0 || ref.boot_valid > o->nboot / 2);
    CHECK(ref.perm_valid == o->nperm);
    for (int k = 0; k <= nranks_; k++) { /* k = 0: the whole communicator */
        MPI_Comm comm = MPI_COMM_WORLD;
        if (k > 0 && k < nranks_) MPI_Comm_split(MPI_COMM_WORLD, rank_ < k, rank_, &comm);
        else if (k == nranks_) continue;
        int size;
        MPI_Comm_size(comm, &size);
        rdml_ctx c2;
        rdml_ctx_init(&c2);
        rdml_ctx_set_comm(&c2, comm);
        rc = rdml_stats_evaluate(&c2, comm, &x->d, o, &got);
        CHECK_EQ_I(rc, RDML_OK);
        if (!rc && !same_result(&ref, &got)) {
            fprintf(stderr, "[rank %d] %s: result on %d ranks differs from 1 rank\n", rank_, name,
                    size);
            test_failed_checks_++;
        }
        rdml_stats_result_free(&got);
        if (comm != MPI_COMM_WORLD) MPI_Comm_free(&comm);
    }
    rdml_stats_result_free(&ref);
}

static void test_identical_any_ranks(void) {
    dataset x;
    rdml_stats_opts o;
    make_dataset(&x, 24, 1, 3, 3, 1, 0);
    rdml_stats_opts_default(&o);
    o.seed = 5;
    o.key = 3;
    o.nboot = 97; /* not a multiple of the rank counts */
    o.nperm = 301;
    o.boot_subjects = 1;
    run_case("complete spearman, subjects", &x, &o, RDML_STATS_PERM_IMAGES);
    /* above max_matrix_bytes: the compact matrix (spearman's 2 x rank), then the triangle
     * (pearson of values not exact in a float); prepared on one rank, shared with the rest */
    o.max_matrix_bytes = 1;
    o.nboot = 0;
    run_case("complete spearman, compact matrix", &x, &o, RDML_STATS_PERM_IMAGES);
    o.method = RDML_RSA_PEARSON;
    run_case("complete pearson, triangle", &x, &o, RDML_STATS_PERM_IMAGES);
    dataset_free(&x);

    make_dataset(&x, 20, 0, 2, 2, 0, 1);
    rdml_stats_opts_default(&o);
    o.method = RDML_RSA_KENDALL_A;
    o.nboot = 41;
    o.nperm = 53;
    run_case("incomplete kendall, full brain RDMs", &x, &o, RDML_STATS_PERM_IMAGES_FULL);
    dataset_free(&x);

    make_dataset(&x, 20, 0, 2, 3, 0, 0);
    rdml_stats_opts_default(&o);
    o.method = RDML_RSA_PEARSON;
    o.pool = RDML_RSA_POOL_MEAN;
    o.nboot = 64;
    o.nperm = 150;
    run_case("incomplete pearson, pairs", &x, &o, RDML_STATS_PERM_PAIRS);
    dataset_free(&x);
}

static void test_errors_agree(void) {
    dataset x;
    make_dataset(&x, 12, 1, 2, 2, 0, 0);
    rdml_stats_opts o;
    rdml_stats_opts_default(&o);
    o.nboot = 20;
    o.nperm = 20;
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_ctx_set_comm(&ctx, MPI_COMM_WORLD);
    rdml_stats_result r;
    /* only the last rank has a bad level: every rank fails (no hang), with its message */
    rdml_stats_opts bad = o;
    if (rank_ == nranks_ - 1) bad.level = 2.0;
    CHECK_EQ_I(rdml_stats_evaluate(&ctx, MPI_COMM_WORLD, &x.d, &bad, &r), RDML_ECONFIG);
    CHECK(strstr(ctx.msg, "level 2") != NULL);
    CHECK(r.score == NULL);
    rdml_ctx_clear(&ctx);
    /* a constant model: every rank, naming it */
    const char *names[2] = {"pixels", "flat"};
    double *flat = malloc((size_t)x.d.npairs * sizeof *flat);
    for (int64_t p = 0; p < x.d.npairs; p++) flat[p] = 0.25;
    x.models[1] = flat;
    x.d.model_names = names;
    CHECK_EQ_I(rdml_stats_evaluate(&ctx, MPI_COMM_WORLD, &x.d, &o, &r), RDML_EDATA);
    CHECK(strstr(ctx.msg, "'flat'") && strstr(ctx.msg, "constant"));
    free(flat);
    dataset_free(&x);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks_);
    RUN(test_identical_any_ranks);
    RUN(test_errors_agree);
    int rc = test_summary_mpi(MPI_COMM_WORLD);
    MPI_Finalize();
    return rc;
}
