/* MPI tests of rdml_fmri_standardize: rows of a deterministic matrix (rdml_rng, so every rank
 * can build the whole matrix) are split over the ranks with rdml_part_block; after the
 * collective call each rank's rows must match a serial double-precision two-pass computation
 * done in this test to 1e-6, whatever the rank count (1..4). Also: a constant column becomes
 * exactly 0, ranks holding no rows take part, a column-count mismatch fails on every rank
 * instead of hanging, and end to end on tests/fixtures/algonauts_mini: each rank reads its
 * rows of a selection with rdml_subject_read_fmri, and the standardised rows equal sklearn's
 * StandardScaler output stored in expected.json (tools/make_dataset_fixture.py). */
#include <jansson.h>
#include <math.h>
#include <mpi.h>
#include <stdint.h>

#include "rdml/dataset.h"
#include "rdml/mpiutil.h"
#include "test.h"

/* Column j: offset (up to ~1000, so a one-pass E[x^2]-E[x]^2 in float would lose digits) plus
 * a scaled normal draw; column `constcol` is constant. */
static void make_matrix(int64_t n, int64_t c, int64_t constcol, float *x) {
    rdml_rng r = rdml_rng_make(2023, RDML_STREAM_USER + 7, 0);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < c; j++) {
            double v = (double)(j * 137 % 1000) + (0.1 + (double)j) * rdml_rng_normal(&r);
            x[i * c + j] = (j == constcol) ? 3.75f : (float)v;
        }
}

/* Serial reference: mean, then population std, in double. */
static void reference(int64_t n, int64_t c, const float *x, double *z) {
    for (int64_t j = 0; j < c; j++) {
        double m = 0, s = 0;
        for (int64_t i = 0; i < n; i++) m += x[i * c + j];
        m /= (double)n;
        for (int64_t i = 0; i < n; i++) s += ((double)x[i * c + j] - m) * ((double)x[i * c + j] - m);
        double sd = sqrt(s / (double)n);
        for (int64_t i = 0; i < n; i++) z[i * c + j] = sd > 0 ? ((double)x[i * c + j] - m) / sd : 0.0;
    }
}

/* Standardise an n x c matrix split over the ranks by (lo, hi) and compare with the reference.
 * Returns the number of mismatching entries on this rank. */
static int64_t run_case(int64_t n, int64_t c, int64_t constcol, int64_t lo, int64_t hi) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_ctx_set_comm(&ctx, MPI_COMM_WORLD);
    float *all = malloc((size_t)(n * c) * sizeof *all);
    double *z = malloc((size_t)(n * c) * sizeof *z);
    make_matrix(n, c, constcol, all);
    reference(n, c, all, z);
    float *mine = all + lo * c; /* standardise this rank's rows in place */
    int rc = rdml_fmri_standardize(&ctx, MPI_COMM_WORLD, hi - lo, c, mine);
    CHECK_EQ_I(rc, RDML_OK);
    if (rc) fprintf(stderr, "%s\n", ctx.msg);
    int64_t bad = 0;
    for (int64_t i = lo; i < hi; i++)
        for (int64_t j = 0; j < c; j++) {
            double got = all[i * c + j], want = z[i * c + j];
            if (!(fabs(got - want) <= 1e-6)) {
                if (bad < 5)
                    fprintf(stderr, "row %lld col %lld: %.9g vs %.9g\n", (long long)i,
                            (long long)j, got, want);
                bad++;
            }
            if (j == constcol && got != 0.0f) bad++;
        }
    free(all);
    free(z);
    return bad;
}

static void test_block_rows_match_serial(void) {
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int64_t n = 37, c = 11, lo, hi;
    rdml_part_block(n, rank, size, &lo, &hi);
    CHECK_EQ_I(run_case(n, c, 4, lo, hi), 0);
}

static void test_gathered_columns_are_unit(void) {
    /* After gathering all ranks' rows: every non-constant column has mean 0 and std 1. */
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const int64_t n = 23, c = 5;
    int64_t lo, hi;
    rdml_part_block(n, rank, size, &lo, &hi);
    float *all = malloc((size_t)(n * c) * sizeof *all);
    make_matrix(n, c, 0, all);
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    CHECK_EQ_I(rdml_fmri_standardize(&ctx, MPI_COMM_WORLD, hi - lo, c, all + lo * c), RDML_OK);
    int counts[4] = {0}, displs[4] = {0};
    int *cnt = size <= 4 ? counts : malloc((size_t)size * sizeof *cnt);
    int *dsp = size <= 4 ? displs : malloc((size_t)size * sizeof *dsp);
    for (int r = 0; r < size; r++) {
        int64_t l, h;
        rdml_part_block(n, r, size, &l, &h);
        cnt[r] = (int)((h - l) * c);
        dsp[r] = (int)(l * c);
    }
    float *g = malloc((size_t)(n * c) * sizeof *g);
    MPI_Allgatherv(all + lo * c, (int)((hi - lo) * c), MPI_FLOAT, g, cnt, dsp, MPI_FLOAT,
                   MPI_COMM_WORLD);
    for (int64_t j = 0; j < c; j++) {
        double m = 0, s = 0;
        for (int64_t i = 0; i < n; i++) m += g[i * c + j];
        m /= (double)n;
        for (int64_t i = 0; i < n; i++) s += (g[i * c + j] - m) * (g[i * c + j] - m);
        CHECK_NEAR(m, 0.0, 1e-6);
        CHECK_NEAR(sqrt(s / (double)n), j == 0 ? 0.0 : 1.0, 1e-6);
    }
    if (cnt != counts) free(cnt);
    if (dsp != displs) free(dsp);
    free(g);
    free(all);
}

static void test_fewer_rows_than_ranks(void) {
    /* 3 rows: at 4 ranks the last holds none and must still take part. */
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int64_t lo, hi;
    rdml_part_block(3, rank, size, &lo, &hi);
    if (size == 4 && rank == 3) CHECK_EQ_I(hi - lo, 0);
    CHECK_EQ_I(run_case(3, 6, 2, lo, hi), 0);
}

static void test_all_rows_on_last_rank(void) {
    /* Extreme imbalance: every rank but the last has 0 rows. */
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int64_t lo = 0, hi = rank == size - 1 ? 9 : 0;
    CHECK_EQ_I(run_case(9, 4, -1, lo, hi), 0);
}

static void test_no_rows_anywhere(void) {
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    CHECK_EQ_I(rdml_fmri_standardize(&ctx, MPI_COMM_WORLD, 0, 7, NULL), RDML_OK);
}

static void test_column_mismatch_fails_everywhere(void) {
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_ctx_set_comm(&ctx, MPI_COMM_WORLD);
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    int rc;
    if (size > 1) {
        rc = rdml_fmri_standardize(&ctx, MPI_COMM_WORLD, 2, rank == 0 ? 4 : 2, x);
        CHECK(rc != RDML_OK);
        CHECK_STR_HAS(ctx.msg, "disagree on the number of columns");
    } else {
        rc = rdml_fmri_standardize(&ctx, MPI_COMM_WORLD, -1, 2, x);
        CHECK(rc != RDML_OK);
        CHECK_STR_HAS(ctx.msg, "negative size");
    }
    /* a failure on one rank only (bad size there) also reaches every rank */
    rdml_ctx_clear(&ctx);
    rc = rdml_fmri_standardize(&ctx, MPI_COMM_WORLD, rank == size - 1 ? -3 : 2, 4, x);
    CHECK(rc != RDML_OK);
    CHECK_STR_HAS(ctx.msg, "negative size");
    CHECK_EQ_I(x[0], 1); /* nothing was modified */
}

static void test_fixture_matches_sklearn(void) {
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    char root[4096], jp[4200];
    snprintf(root, sizeof root, "%s", test_fixture("algonauts_mini"));
    snprintf(jp, sizeof jp, "%s/expected.json", root);
    json_error_t jerr;
    json_t *e = json_load_file(jp, 0, &jerr);
    CHECK(e != NULL);
    if (!e) return;
    rdml_ctx ctx;
    rdml_ctx_init(&ctx);
    rdml_ctx_set_comm(&ctx, MPI_COMM_WORLD);
    const char *spec = json_string_value(json_object_get(e, "std_spec"));
    for (int id = 1; id <= 3; id += 2) {
        char key[16];
        snprintf(key, sizeof key, "subj%02d", id);
        json_t *z = json_object_get(json_object_get(e, key), "standardized");
        rdml_dataset *ds = NULL;
        rdml_subject *s = NULL;
        rdml_selection sel = {0};
        int rc = rdml_dataset_open(&ctx, root, &ds);
        if (rc == RDML_OK) rc = rdml_subject_open(&ctx, ds, id, &s);
        if (rc == RDML_OK) rc = rdml_subject_select(&ctx, s, spec, &sel);
        CHECK_EQ_I(rc, RDML_OK);
        if (rc) {
            fprintf(stderr, "%s\n", ctx.msg);
            rdml_dataset_close(&ds);
            break;
        }
        int64_t lo, hi, n = rdml_subject_nimages(s);
        rdml_part_block(n, rank, size, &lo, &hi);
        float *x = malloc((size_t)((hi - lo) * sel.n + 1) * sizeof *x);
        CHECK_EQ_I(rdml_subject_read_fmri(&ctx, s, &sel, lo, hi, x), RDML_OK);
        CHECK_EQ_I(rdml_fmri_standardize(&ctx, MPI_COMM_WORLD, hi - lo, sel.n, x), RDML_OK);
        CHECK_EQ_I((int64_t)json_array_size(z), n);
        int64_t bad = 0;
        for (int64_t i = lo; i < hi; i++)
            for (int64_t j = 0; j < sel.n; j++) {
                double want = json_real_value(json_array_get(json_array_get(z, (size_t)i), (size_t)j));
                bad += !(fabs(x[(i - lo) * sel.n + j] - want) <= 1e-6);
            }
        CHECK_EQ_I(bad, 0);
        free(x);
        rdml_selection_free(&sel);
        rdml_subject_close(&s);
        rdml_dataset_close(&ds);
    }
    json_decref(e);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    RUN(test_block_rows_match_serial);
    RUN(test_gathered_columns_are_unit);
    RUN(test_fewer_rows_than_ranks);
    RUN(test_all_rows_on_last_rank);
    RUN(test_no_rows_anywhere);
    RUN(test_column_mismatch_fails_everywhere);
    RUN(test_fixture_matches_sklearn);
    int rc = test_summary_mpi(MPI_COMM_WORLD);
    MPI_Finalize();
    return rc;
}
