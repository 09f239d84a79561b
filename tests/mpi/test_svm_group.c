/* One C-SVC fit split over the ranks (rdml_svm_fit_comm) equals the serial fit bit for bit at
 * 1-4 ranks: support vectors, coefficients, rho, objective and iterations, for the paper's
 * poly-2 kernel and the others, with shrinking (and the gradient reconstruction it needs),
 * class weights, a kernel cache too small for two rows of every rank's slice, and an
 * iteration limit; split to the end (split_mode 1) and handed to rank 0 after the first 1000
 * iterations (split_mode 2, as when the split does not pay: the others report their wait).
 * Other types fall back to the serial fit on every rank. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rdml/mpiutil.h"
#include "rdml/svm.h"
#include "test.h"

#define N 90
#define D 12

static void same_model(const rdml_svm_model *a, const rdml_svm_model *b) {
    rdml_svm_info ia, ib;
    rdml_svm_get_info(a, &ia);
    rdml_svm_get_info(b, &ib);
    CHECK_EQ_I(ia.n_sv, ib.n_sv);
    CHECK_EQ_I(ia.n_bsv, ib.n_bsv);
    CHECK_EQ_I(ia.iterations, ib.iterations);
    CHECK_EQ_I(ia.converged, ib.converged);
    CHECK(memcmp(&ia.rho, &ib.rho, sizeof ia.rho) == 0);
    CHECK(memcmp(&ia.objective, &ib.objective, sizeof ia.objective) == 0);
    int64_t na, nb;
    const int64_t *xa, *xb;
    const double *ca, *cb;
    rdml_svm_support(a, &na, &xa, &ca);
    rdml_svm_support(b, &nb, &xb, &cb);
    CHECK_EQ_I(na, nb);
    if (na == nb) {
        CHECK(memcmp(xa, xb, (size_t)na * sizeof *xa) == 0);
        CHECK(memcmp(ca, cb, (size_t)na * sizeof *ca) == 0);
    }
}

static void test_fit_comm_equals_serial(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_ctx_set_comm(&ctx, MPI_COMM_WORLD);
    ctx.log_level = RDML_LOG_ERROR;
    /* embeddings and pairs: a deterministic function of the indices, the same on every rank */
    float *E = malloc(N * D * sizeof *E);
    for (int i = 0; i < N * D; i++) E[i] = (float)sin(0.37 * i + 0.11 * (i % 7)) + (float)(i % D == 0) * (float)(i / D % 3);
    int64_t l = 0, ij[2 * N * 30];
    double y[N * 30], ysvr[N * 30];
    for (int a = 0; a < N; a++)
        for (int k = 1; k <= 30; k++) {
            int b = (a * 7 + k * 13) % N;
            if (b == a) continue;
            ij[2 * l] = a;
            ij[2 * l + 1] = b;
            double v = E[a * D + 1] * E[b * D + 2] + 0.3 * sin(a + 2.0 * b);
            y[l] = v > 0.05;
            ysvr[l] = v;
            l++;
        }
    rdml_svm_images im;
    memset(&im, 0, sizeof im);
    CHECK(rdml_svm_images_make_ex(&ctx, N, D, E, RDML_SVM_IMAGES_GRAM, &im) == RDML_OK);
    struct { rdml_svm_kernel k; int deg, sym, bal, shrink; double C, cache_mb; int64_t max_iter; } cases[] = {
        {RDML_SVM_POLY, 2, 0, 0, 1, 1.0, 200, 0},    /* the paper's */
        {RDML_SVM_POLY, 2, 0, 1, 1, 10.0, 0.01, 0},  /* balanced, a tiny cache */
        {RDML_SVM_RBF, 3, 0, 0, 1, 3.0, 200, 0},
        {RDML_SVM_LINEAR, 3, 0, 0, 0, 0.5, 200, 0},  /* no shrinking */
        {RDML_SVM_POLY, 3, 1, 0, 1, 1.0, 200, 0},    /* symmetric, degree 3 */
        {RDML_SVM_SIGMOID, 3, 0, 0, 1, 1.0, 200, 0},
        {RDML_SVM_POLY, 2, 0, 0, 1, 100.0, 200, 700}, /* stopped by the iteration limit */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        rdml_svm_params p;
        rdml_svm_defaults(&p);
        p.kernel = cases[c].k;
        p.degree = cases[c].deg;
        p.symmetric = cases[c].sym;
        p.balanced = cases[c].bal;
        p.shrinking = cases[c].shrink;
        p.C = cases[c].C;
        p.cache_mb = cases[c].cache_mb;
        p.max_iter = cases[c].max_iter;
        p.gamma_mode = cases[c].k == RDML_SVM_SIGMOID ? RDML_GAMMA_VALUE : RDML_GAMMA_SCALE;
        p.gamma = 0.01;
        p.tol = 1e-4;
        CHECK(rdml_svm_fit_splits(&p, RDML_SVM_SPLIT_MIN_PAIRS) && !rdml_svm_fit_splits(&p, l));
        p.split_min = 0; /* split this small set too */
        rdml_svm_model *ms = NULL, *mg = NULL;
        CHECK(rdml_svm_fit(&ctx, &p, &im, l, ij, y, &ms) == RDML_OK);
        CHECK(rdml_svm_fit_splits(&p, l));
        for (int mode = 1; mode <= 2; mode++) {
            p.split_mode = mode;
            CHECK(rdml_svm_fit_comm(&ctx, MPI_COMM_WORLD, &p, &im, l, ij, y, &mg) == RDML_OK);
            if (ms && mg) same_model(ms, mg);
            if (c == 0 && ms && mg) {
                rdml_svm_info info, ig;
                rdml_svm_get_info(ms, &info);
                rdml_svm_get_info(mg, &ig);
                CHECK(info.iterations > 1000); /* long enough to shrink and to hand over */
                CHECK(mode == 2 && ctx.rank > 0 ? ig.waited > 0 : ig.waited == 0);
            }
            rdml_svm_free(&mg);
        }
        rdml_svm_free(&ms);
    }
    /* epsilon-SVR: not split, every rank fits it; the same model */
    rdml_svm_params p;
    rdml_svm_defaults(&p);
    p.type = RDML_SVM_EPSILON_SVR;
    p.kernel = RDML_SVM_RBF;
    p.split_min = 0;
    CHECK(!rdml_svm_fit_splits(&p, l));
    rdml_svm_model *ms = NULL, *mg = NULL;
    CHECK(rdml_svm_fit(&ctx, &p, &im, l, ij, ysvr, &ms) == RDML_OK);
    CHECK(rdml_svm_fit_comm(&ctx, MPI_COMM_WORLD, &p, &im, l, ij, ysvr, &mg) == RDML_OK);
    if (ms && mg) same_model(ms, mg);
    rdml_svm_free(&ms);
    rdml_svm_free(&mg);
    /* one class only: the same error on every rank, nobody hangs */
    for (int64_t t = 0; t < l; t++) y[t] = 1;
    rdml_svm_defaults(&p);
    p.split_min = 0;
    CHECK_EQ_I(rdml_svm_fit_comm(&ctx, MPI_COMM_WORLD, &p, &im, l, ij, y, &mg), RDML_EDATA);
    CHECK_STR_HAS(ctx.msg, "a classifier needs both");
    rdml_ctx_clear(&ctx);
    rdml_svm_images_free(&im);
    free(E);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    RUN(test_fit_comm_equals_serial);
    int rc = test_summary_mpi(MPI_COMM_WORLD);
    MPI_Finalize();
    return rc;
}
